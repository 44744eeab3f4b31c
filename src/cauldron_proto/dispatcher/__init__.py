"""Dispatcher helper, in the KTL style: a service that owns keywords and serves them.

>>> from cauldron_proto import dispatcher
>>> svc = dispatcher.Service("KTEST", {"broker": "tcp://localhost:6513"}, dispatcher="KTEST1")
>>> svc.add_keyword("VALUE", type="integer", value=0, units="counts")
>>> svc["VALUE"].set(42)          # stores "42" and broadcasts it
>>> svc.shutdown()

The service registers with the broker (``welcome``, then ``ready``), answers ``update``,
``modify``, ``identify``, ``enumerate``, ``units`` and the broker's heartbeats, broadcasts
every change of value, and registers again by itself when the broker goes silent.
"""

from .._lazy import lazy_exports
from .core.handlers import HANDLERS, Answer, answer, answering, finish
from .core.keywords import KeywordState, KeywordTable, default_dispatcher_name
from .core.registration import Registration
from .keyword import Keyword, Reader, Validator

#: The I/O layer (zmq, threads), loaded on first use: the cores above load no zmq.
__getattr__ = lazy_exports(__name__, {"Service": (".service", "Service")})

__all__ = ["Service", "Keyword", "KeywordState", "KeywordTable", "Validator", "Reader", "Registration", "HANDLERS",
           "Answer", "answer", "answering", "finish", "default_dispatcher_name"]
