"""Security: CURVE for the broker's sockets and its peers, and who may serve what.

- :mod:`.curve`: key files, :class:`BrokerCurve` (the broker's ROUTER, XPUB and XSUB as CURVE
  servers, an authorized-keys folder read again when it changes) and :class:`PeerCurve` (a
  helper's socket as a CURVE client of the broker). Its names are exported here.
- :mod:`.zap`: the ZAP authenticator, one per ZMQ context, and its key rings.
- :mod:`.policy`: the ``curve_dispatchers`` file (which keys may register dispatchers of which
  services), parsed into rules the broker's I/O-free core takes as data. It loads no zmq.

The names of :mod:`.curve` load on first use (PEP 562), so ``import cauldron_proto.security.policy``
loads no zmq.
"""

from .._lazy import lazy_exports

__all__ = ["ANY_KEY", "BrokerCurve", "PeerCurve", "KeyRing", "load_public_key", "load_secret_key",
           "broker_curve", "peer_curve"]

__getattr__ = lazy_exports(__name__, {name: (".curve", name) for name in __all__})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
