"""CURVE security for the broker's sockets and the peers that connect to them.

Theory of operation
-------------------
Keys are files in the format of ``zmq.auth.create_certificates(DIR, NAME)`` (which
``cauldron-keygen DIR NAME`` writes): ``NAME.key`` holds the public key, ``NAME.key_secret``
the public and the secret key.

* The broker (:class:`BrokerCurve`) has its own secret key file and a folder of authorized
  public key files. :meth:`BrokerCurve.start` registers the folder with the ZAP
  authenticator of the broker's own context (see :mod:`cauldron_proto.security.zap`: pyzmq's
  ``zmq.auth`` core in a thread, one per context), under a ZAP domain of its own;
  :meth:`BrokerCurve.server_socket` makes a socket a CURVE server in that domain (before
  it binds); :meth:`BrokerCurve.stop` unregisters it. The folder is read again whenever it
  changes, so a key file added or removed counts for the next connection, without a restart.
* A peer that connects (:class:`PeerCurve`: the helpers, ``ZMQBroker.check``) holds its
  own key pair and the broker's public key; :meth:`PeerCurve.client_socket` makes a socket
  a CURVE client of the broker (before it connects).

A peer whose public key is not in the folder, or that does not speak CURVE, fails the
handshake: it never gets a message through, and ZMQ keeps trying to reconnect it. With
``curve_authorized = *`` any key is accepted: encrypted, but not authenticated.
Nothing here touches frames: CURVE is a property of the connection. What a key may do once
connected is the routing core's (``handle(..., key=User-Id)``: a dispatcher name belongs to
its key) and, with ``curve_dispatchers``, the policy's (:attr:`BrokerCurve.policy`, a
:class:`~cauldron_proto.security.policy.PolicyFile`: who may register and broadcast for what).
"""

from __future__ import annotations

import configparser
import os
import uuid
from typing import Any, Optional

import zmq
import zmq.auth

from . import zap
from ..protocol import CONFIG_SECTION
from ..config import ConfigError
from .policy import PolicyFile
from .zap import ANY_KEY, KeyRing

__all__ = ["ANY_KEY", "BrokerCurve", "PeerCurve", "KeyRing", "load_public_key", "load_secret_key",
           "broker_curve", "peer_curve"]


def load_public_key(path: "str | os.PathLike[str]") -> bytes:
    """The public key (z85) in a key file (``NAME.key`` or ``NAME.key_secret``)."""
    public, _ = _load(path)
    return public


def load_secret_key(path: "str | os.PathLike[str]") -> tuple[bytes, bytes]:
    """(public, secret) keys (z85) from a secret key file (``NAME.key_secret``)."""
    public, secret = _load(path)
    if secret is None:
        raise ConfigError(f"{path}: holds no secret key (a NAME.key_secret file is needed, not NAME.key)")
    return public, secret


def _load(path: "str | os.PathLike[str]") -> tuple[bytes, Optional[bytes]]:
    try:
        public, secret = zmq.auth.load_certificate(os.fspath(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read a CURVE key file: {exc}") from None
    if public is None or len(public) != 40:
        raise ConfigError(f"{path}: not a CURVE key file (no 40-character public-key)")
    return public, secret


class BrokerCurve:
    """The broker's CURVE settings: its key pair, the authorized keys, and who may serve what.

    ``dispatchers``: the ``curve_dispatchers`` policy file (None: any authorized key may
    register a free dispatcher name); it needs ``authorized`` to be a folder (its key names).
    """

    def __init__(self, secret_key_file: "str | os.PathLike[str]", authorized: "str | os.PathLike[str]",
                 dispatchers: "str | os.PathLike[str] | None" = None):
        self.secret_key_file, self.authorized = os.fspath(secret_key_file), os.fspath(authorized)
        self.public, self.secret = load_secret_key(secret_key_file)
        self.ring = KeyRing(authorized)
        if dispatchers is not None and self.ring.any:
            raise ConfigError(f"[zmq] curve_dispatchers names keys by their file names: it needs curve_authorized "
                              f"to be a folder of key files, not {ANY_KEY}")
        #: the ``curve_dispatchers`` policy (read again when it changes), or None
        self.policy: Optional[PolicyFile] = PolicyFile(dispatchers) if dispatchers is not None else None
        self.domain = f"cauldron-{uuid.uuid4().hex}"
        self._context: Optional[zmq.Context] = None

    def start(self, context: zmq.Context) -> None:
        """Authenticate this broker's connections in ``context`` (before its sockets bind)."""
        if self._context is None:
            zap.register(context, self.domain, self.ring)
            self._context = context

    def stop(self) -> None:
        if self._context is not None:
            zap.unregister(self._context, self.domain)
            self._context = None

    def server_socket(self, sock: zmq.Socket) -> zmq.Socket:
        """Make ``sock`` a CURVE server with this broker's keys, in its ZAP domain."""
        sock.curve_secretkey, sock.curve_publickey = self.secret, self.public
        sock.zap_domain = self.domain.encode("ascii")
        sock.curve_server = True
        return sock

    def accepting(self) -> str:
        """Whom the broker accepts, in words."""
        if self.ring.any:
            return "accepting any key"
        text = f"accepting {len(self.ring)} authorized key{'s' * (len(self.ring) != 1)} in {self.authorized}"
        if self.policy is None:
            return text + "; any of them may serve a free dispatcher name"
        return text + f"; dispatchers as {self.policy.path} says"

    def __repr__(self) -> str:
        return f"<BrokerCurve {self.public.decode()} {self.accepting()}>"


class PeerCurve:
    """A connecting peer's CURVE settings: its key pair and the broker's public key."""

    def __init__(self, server_key: bytes, public: Optional[bytes] = None, secret: Optional[bytes] = None):
        if (public is None) != (secret is None):
            raise ValueError("give both halves of the key pair, or neither")
        if public is None:
            public, secret = zmq.curve_keypair()  # a throw-away pair: accepted only by curve_authorized = *
        self.server_key, self.public, self.secret = server_key, public, secret

    @classmethod
    def from_files(cls, server_key_file, key_file=None) -> "PeerCurve":
        """From the broker's public key file and this peer's secret key file (or a new pair)."""
        public, secret = load_secret_key(key_file) if key_file else (None, None)
        return cls(load_public_key(server_key_file), public, secret)

    def client_socket(self, sock: zmq.Socket) -> zmq.Socket:
        """Make ``sock`` a CURVE client of the broker (before it connects)."""
        sock.curve_secretkey, sock.curve_publickey = self.secret, self.public
        sock.curve_serverkey = self.server_key
        return sock

    def __repr__(self) -> str:
        return f"<PeerCurve {self.public.decode()} to broker {self.server_key.decode()}>"


def _value(config: Any, key: str) -> str:
    if isinstance(config, configparser.RawConfigParser):
        return config.get(CONFIG_SECTION, key, fallback="").strip()
    return str(config.get(key) or "").strip()  # a mapping of `[zmq]` keys


def broker_curve(config: Any) -> Optional[BrokerCurve]:
    """The broker's CURVE settings from `[zmq]` keys ``curve_secret_key``, ``curve_authorized``
    and ``curve_dispatchers`` (a ConfigParser or a mapping); None when ``curve_secret_key`` is not set."""
    secret, authorized = _value(config, "curve_secret_key"), _value(config, "curve_authorized")
    dispatchers = _value(config, "curve_dispatchers")
    if not secret:
        for key, value in (("curve_authorized", authorized), ("curve_dispatchers", dispatchers)):
            if value:
                raise ConfigError(f"[zmq] {key} is set but curve_secret_key is not: "
                                  "the broker needs its secret key to use CURVE")
        return None
    if not authorized:
        raise ConfigError("[zmq] curve_secret_key is set but curve_authorized is not: give a folder "
                          f"of authorized public key files (or {ANY_KEY} for any key)")
    return BrokerCurve(secret, authorized, dispatchers or None)


def peer_curve(config: Any) -> Optional[PeerCurve]:
    """A peer's CURVE settings from `[zmq]` keys ``curve_server_key`` and ``curve_key``;
    None when ``curve_server_key`` is not set."""
    server, own = _value(config, "curve_server_key"), _value(config, "curve_key")
    if not server:
        if own:
            raise ConfigError("[zmq] curve_key is set but curve_server_key is not: "
                              "a CURVE client needs the broker's public key")
        return None
    return PeerCurve.from_files(server, own or None)
