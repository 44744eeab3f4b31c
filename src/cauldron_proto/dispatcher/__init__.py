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

from importlib import import_module

from .handlers import HANDLERS, answer, answering
from .keyword import Keyword, Reader, Validator
from .registration import Registration

#: The I/O layer (zmq, threads), loaded on first use: the cores above load no zmq.
_LAZY = {"Service": ".service", "default_dispatcher_name": ".service"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value

__all__ = ["Service", "Keyword", "Validator", "Reader", "Registration", "HANDLERS", "answer", "answering",
           "default_dispatcher_name"]
