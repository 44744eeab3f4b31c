"""Asyncio helpers: a client and a dispatcher for event-loop programs, on ``zmq.asyncio``.

>>> from cauldron_proto import aio
>>> async def main(config):
...     async with aio.Dispatcher("KTEST", config, dispatcher="KTEST1") as disp:
...         disp.add_keyword("VALUE", "integer", 0)
...         await disp.wait_registered(5)
...         async with aio.Service("KTEST", config) as svc:
...             await svc["VALUE"].write(7)            # '7'
...             await svc["VALUE"].read()              # '7'; read(binary=True) gives 7
...             async for value in svc["VALUE"].monitor():
...                 print(value)                       # a client.KeywordValue
...                 break                              # leaving the loop stops the monitor

They are thin layers over the threaded helpers' I/O-free cores (the client's
:class:`~cauldron_proto.client.core.ClientCore`, the dispatcher's
:class:`~cauldron_proto.dispatcher.Registration` and answers), so they speak the protocol
exactly as those do and raise the same errors (``client.RequestTimeoutError``,
``client.DispatcherError``, ``client.DispatcherTimeoutError``,
``client.UnknownKeywordError``, ``client.ShutDownError``, ``client.BrokerRefusedError``,
``client.InvalidValueError``; all ``client.ClientError`` s).
They run in a loop someone else owns (a notebook, a RunEngine): nothing here calls
``asyncio.run`` or starts a thread.
"""

from ..client.core import KeywordInfo, KeywordValue
from ..client.errors import (BrokerRefusedError, ClientError, DispatcherError, DispatcherTimeoutError,
                             RequestTimeoutError, ShutDownError, UnknownKeywordError,
                             InvalidValueError)
from .client import Keyword, Monitor, Service
from .dispatcher import Dispatcher

__all__ = ["Service", "Keyword", "Monitor", "Dispatcher", "KeywordInfo", "KeywordValue", "ClientError",
           "DispatcherError", "DispatcherTimeoutError", "RequestTimeoutError", "UnknownKeywordError", "ShutDownError",
           "InvalidValueError", "BrokerRefusedError"]
