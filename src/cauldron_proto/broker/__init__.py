"""The broker: an I/O-free routing core, and the ZMQ shell around it.

- :mod:`.core`: :class:`BrokerCore`, frames and a time in, frames out; no I/O, no clock.
- :mod:`.sockets`: binding the ROUTER, XPUB and XSUB; send helpers.
- :mod:`.zmq_broker`: :class:`ZMQBroker`, the seed-compatible broker thread (its loop hands
  every ROUTER message to the core and sends what it returns).
- :mod:`.relay`: the broadcast relay (XSUB to XPUB and back, within the broker's limits), with
  :mod:`.subscriptions` (its book of subscriptions held, no I/O) and :mod:`.broadcast_policy`
  (its check under a ``curve_dispatchers`` policy).
- :mod:`.launch`: the broker from a configuration (``from_config``, ``serve``, ``setup``...).
- :mod:`.process`: a broker in a child process (``ZMQBroker.daemon``).

Only the core is imported eagerly; the shell's names load zmq on first use (PEP 562), so
``import cauldron_proto.broker.core`` loads no I/O library.
"""

from .._lazy import lazy_exports
from .core import BrokerCore

__all__ = ["BindError", "BrokerCore", "BrokerError", "DEFAULT_MAX_MESSAGE_SIZE", "ZMQBroker"]

__getattr__ = lazy_exports(__name__, {name: (".zmq_broker", name)
                                      for name in ("BindError", "BrokerError", "DEFAULT_MAX_MESSAGE_SIZE", "ZMQBroker")})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
