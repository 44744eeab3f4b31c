"""cauldron_proto: a broker, codecs and helpers for the Cauldron ZMQ keyword protocol.

The codecs are generated from ``spec/protocol.yaml`` (see ``python -m codegen``);
``decode(frames)`` and ``encode(message)`` are the only way frames are read and written.

The protocol (codec, tables, payloads, kinds), configuration and the I/O-free routing core
import no zmq; the broker, the helpers and security load it, on first use of their names
(PEP 562 lazy exports), so ``import cauldron_proto.routing`` stays free of I/O libraries.
"""

from ._generated import *  # noqa: F401,F403
from ._generated import __all__ as _generated_all
from .config import ConfigError, read_configuration
from .ktl import KTLValueError
from ._lazy import lazy_exports
from .routing import BrokerCore

__version__ = "0.1.0"

#: Names loaded on first use: name -> (module, attribute or None for the module itself).
_LAZY = {
    "ZMQBroker": (".broker", "ZMQBroker"),
    "BindError": (".broker", "BindError"),
    "BrokerError": (".broker", "BrokerError"),
    "client": (".client", None),
    "dispatcher": (".dispatcher", None),
    "security": (".security", None),
}

__all__ = [*_generated_all, "BindError", "BrokerCore", "BrokerError", "ConfigError", "ZMQBroker",
           "read_configuration", "__version__", "client", "dispatcher", "ktl", "security", "KTLValueError",
           "kinds", "payloads"]


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(__all__))
