"""Client helper, in the KTL style: a service indexed by keyword name.

>>> from cauldron_proto import client
>>> with client.Service("KTEST", {"broker": "tcp://localhost:6513"}) as svc:
...     value = svc["VALUE"].read()             # ascii text; read(binary=True) for the value
...     svc["VALUE"].write(42)                  # the resulting value, as ascii text
...     svc["VALUE"].monitor(print)             # current value, then every broadcast
...     svc.keywords()                          # every keyword of the service (fan-out)

Errors, all :class:`ClientError` s: :class:`RequestTimeoutError` (a ``TimeoutError``) names the keyword that got no
answer in time; :class:`DispatcherError` carries an error reply's text
(:class:`DispatcherTimeoutError`, also a ``TimeoutError``, when the broker says the
dispatcher went silent with the request in flight);
:class:`UnknownKeywordError` (a ``KeyError``) names a keyword no dispatcher has;
:class:`BrokerRefusedError` says why the broker refused the connection (a CURVE key it does
not authorize, CURVE on one side only); :class:`ShutDownError` (a ``RuntimeError``): the
helper was shut down.
"""

from .._lazy import lazy_exports
from .core import ClientCore, KeywordInfo, KeywordState, KeywordValue, is_broadcast_for, topics_for
from .errors import (BrokerRefusedError, ClientError, DispatcherError, DispatcherTimeoutError, RequestTimeoutError,
                     ShutDownError, UnknownKeywordError,
                     InvalidValueError, NoBrokerError, StatusNotServedError)
from .keyword import Keyword, Monitor

#: The I/O layer (zmq, threads), loaded on first use: ``client.core`` and the errors load no zmq.
__getattr__ = lazy_exports(__name__, {"Service": (".service", "Service"),
                                      "broker_status": (".status", "broker_status")})

__all__ = ["Service", "Keyword", "KeywordValue", "KeywordInfo", "Monitor", "ClientCore", "KeywordState", "ClientError",
           "DispatcherError", "DispatcherTimeoutError", "RequestTimeoutError", "UnknownKeywordError", "ShutDownError",
           "InvalidValueError", "BrokerRefusedError", "NoBrokerError", "StatusNotServedError", "broker_status",
           "is_broadcast_for", "topics_for"]
