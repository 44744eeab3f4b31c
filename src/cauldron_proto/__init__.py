"""cauldron_proto: a broker, codecs and helpers for the Cauldron ZMQ keyword protocol.

The protocol tables are generated from ``spec/protocol.yaml`` (see ``python -m codegen``), as
data; the envelope codec, the payload codecs and the message kinds, written by hand, read
them. ``decode(frames)`` and ``encode(message)`` are the only way frames are read
and written.

Layout: ``protocol`` (the tables generated from the spec; the hand-written codec,
``payloads`` and ``kinds``), ``broker`` (``broker.core``: the I/O-free ``BrokerCore``; the ZMQ
shell, ``ZMQBroker``), ``client`` and ``dispatcher`` (each an I/O-free core, an I/O layer
and the public ``Service``), ``aio`` (both on asyncio), ``security`` (CURVE, the
``curve_dispatchers`` policy), ``conformance``, ``cli``, ``testing`` (brokers and raw peers
for tests).

The protocol, configuration and the I/O-free cores import no zmq; the broker shell, the
helpers and security load it on first use of their names (PEP 562 lazy exports), so
``import cauldron_proto.broker.core`` stays free of I/O libraries.
"""

from importlib import metadata as _metadata

from .protocol import *  # noqa: F401,F403
from .protocol import __all__ as _protocol_all
from .config import ConfigError, read_configuration
from .ktl import KTLValueError
from ._lazy import lazy_exports
from .broker.core import BrokerCore

try:  # the one place the version is written is pyproject.toml
    __version__ = _metadata.version("cauldron_proto")
except _metadata.PackageNotFoundError:  # not installed: run from a source tree
    __version__ = "0+unknown"

#: Names loaded on first use: name -> (module, attribute or None for the module itself).
_LAZY = {
    "ZMQBroker": (".broker", "ZMQBroker"),
    "BindError": (".broker", "BindError"),
    "BrokerError": (".broker", "BrokerError"),
    "client": (".client", None),
    "dispatcher": (".dispatcher", None),
    "security": (".security", None),
    "testing": (".testing", None),
    "kinds": (".protocol.kinds", None),
    "payloads": (".protocol.payloads", None),
}

__all__ = [*_protocol_all, "BindError", "BrokerCore", "BrokerError", "ConfigError", "ZMQBroker",
           "read_configuration", "__version__", "client", "dispatcher", "ktl", "security", "KTLValueError",
           "kinds", "payloads"]


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(__all__))
