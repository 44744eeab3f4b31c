"""cauldron_proto: a broker, codecs and helpers for the Cauldron ZMQ keyword protocol.

The codecs are generated from ``spec/protocol.yaml`` (see ``python -m codegen``);
``decode(frames)`` and ``encode(message)`` are the only way frames are read and written.
"""

from ._generated import *  # noqa: F401,F403
from ._generated import __all__ as _generated_all
from .config import ConfigError, read_configuration
from .routing import BrokerCore
from .broker import BindError, BrokerError, ZMQBroker
from . import client, dispatcher, ktl, security  # the KTL-style helpers; CURVE (security)
from .ktl import KTLValueError

__version__ = "0.1.0"

__all__ = [*_generated_all, "BindError", "BrokerCore", "BrokerError", "ConfigError", "ZMQBroker",
           "read_configuration", "__version__", "client", "dispatcher", "ktl", "security", "KTLValueError"]
