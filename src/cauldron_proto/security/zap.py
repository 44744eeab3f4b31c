"""The ZAP authenticator behind CURVE brokers: one per ZMQ context, one domain per broker.

Theory of operation
-------------------
ZMQ asks the single ZAP handler of a context (``inproc://zeromq.zap.01``) about every new
CURVE connection to a socket of that context. pyzmq's authenticator core
(``zmq.auth.base.Authenticator``) answers those requests; :class:`_Authenticator` runs it
in a thread of its own (as pyzmq's ``ThreadAuthenticator`` does, but with a plain poller:
a context terminated under it ends the thread and closes its sockets, so ``term()`` is not
held up). Each broker registers a :class:`KeyRing` (the folder of authorized public key
files, or any key) under a ZAP domain of its own with :func:`register`; the first
registration in a context starts the authenticator, :func:`unregister` of the last stops it.
The User-Id of an accepted connection is the key file's name. A key a folder does not
authorize is logged at WARNING on the ``cauldron_proto.security`` logger, with the peer's
address and the folder, at most once per key per :data:`REFUSAL_LOG_INTERVAL` seconds (a
refused dispatcher tries again every second or so).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

import zmq
import zmq.auth
from zmq.auth.base import Authenticator
from zmq.utils import z85

from ..broker.core.stats import LogLimit
from ..config import ConfigError

__all__ = ["ANY_KEY", "KeyRing", "REFUSAL_LOG_INTERVAL", "register", "unregister"]

#: ``curve_authorized`` value that accepts any client key (encryption without authentication).
ANY_KEY = "*"
#: Seconds between two log lines about the same refused key.
REFUSAL_LOG_INTERVAL = 60.0

log = logging.getLogger("cauldron_proto.security")


class KeyRing:
    """The authorized public keys: a folder of key files (re-read when it changes), or any key."""

    def __init__(self, location: "str | os.PathLike[str]"):
        self.any = os.fspath(location) == ANY_KEY
        self.location = Path(location)
        self._stamp: Optional[int] = None
        self._names: dict[bytes, str] = {}
        if not self.any:
            if not self.location.is_dir():
                raise ConfigError(f"{location}: not a folder of authorized CURVE public key files")
            self._refresh()

    def _refresh(self) -> None:
        stamp = self.location.stat().st_mtime_ns
        if stamp != self._stamp:
            names = {}
            for path in sorted(self.location.glob("*.key")):
                try:
                    public, _ = zmq.auth.load_certificate(path)
                except (OSError, ValueError):
                    continue  # not a key file: ignored, as zmq.auth does
                names[public] = path.stem
            self._stamp, self._names = stamp, names

    def name(self, key: bytes) -> Optional[str]:
        """The name of an authorized z85 ``key`` (its file's stem), or None if not authorized."""
        if self.any:
            return key.decode("ascii")
        try:
            self._refresh()
        except OSError:
            return None  # the folder went away: nobody is authorized
        return self._names.get(key)

    def callback(self, domain: str, key: bytes) -> bool:
        """The credentials-provider hook of pyzmq's authenticator."""
        return self.name(key) is not None

    def __len__(self) -> int:
        return len(self._names)


class _Authenticator(Authenticator):
    """One ZAP handler per context, shared by the CURVE brokers in it (one domain each).

    pyzmq's authenticator core (``zmq.auth.base.Authenticator``) decides; a thread of ours
    runs it, as ``ThreadAuthenticator`` does, but with a plain poller, so that a context
    terminated under it is a clean exit (its sockets closed, ``term()`` not held up).
    The User-Id of an accepted connection is the authorized key's name (file stem).
    """

    def __init__(self, context: zmq.Context):
        super().__init__(context)
        self.rings: dict[str, KeyRing] = {}
        self.pipe: Optional[zmq.Socket] = None
        self.thread: Optional[threading.Thread] = None
        self._log_limit = LogLimit(REFUSAL_LOG_INTERVAL, bound=1024)  # per (domain, refused key)

    def handle_zap_message(self, msg: list[bytes]):
        self._note_refusal(msg)
        return super().handle_zap_message(msg)

    def _note_refusal(self, msg: list[bytes]) -> None:
        """Log a CURVE key that a domain's folder does not authorize (rate-limited per key)."""
        if len(msg) != 7 or msg[5] != b"CURVE" or len(msg[6]) != 32:
            return  # not a CURVE request pyzmq will look up (it answers the malformed ones)
        domain = msg[2].decode("utf-8", "replace")
        ring = self.rings.get(domain)
        key = z85.encode(msg[6])
        if ring is None or ring.name(key) is not None:
            return
        if log.isEnabledFor(logging.WARNING) and self._log_limit.due((domain, key), time.monotonic()):
            log.warning("refused a CURVE connection from %s: its key %s is not in %s",
                        msg[3].decode("utf-8", "replace") or "an unknown address", key.decode("ascii"),
                        ring.location)

    def curve_user_id(self, client_public_key: bytes) -> str:
        key = z85.encode(client_public_key) if len(client_public_key) == 32 else client_public_key
        for ring in list(self.rings.values()):
            name = ring.name(key)
            if name is not None:
                return name
        return key.decode("ascii")

    def start(self) -> None:
        """Bind the ZAP socket, and start the thread that answers on it."""
        super().start()
        endpoint = f"inproc://cauldron-zap-control-{uuid.uuid4().hex}"
        self.pipe = self.context.socket(zmq.PAIR)
        self.pipe.linger = 0
        self.pipe.bind(endpoint)
        thread_end = self.context.socket(zmq.PAIR)
        thread_end.linger = 0
        thread_end.connect(endpoint)
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(thread_end, started),
                                       name="cauldron-zap", daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the CURVE authenticator thread did not start")

    def _serve(self, pipe: zmq.Socket, started: threading.Event) -> None:
        zap, loop = self.zap_socket, None
        poller = zmq.Poller()
        poller.register(pipe, zmq.POLLIN)
        poller.register(zap, zmq.POLLIN)
        started.set()
        try:
            while True:
                events = dict(poller.poll())
                if pipe in events:
                    return  # stop() asked
                if zap in events:
                    done = self.handle_zap_message(zap.recv_multipart())
                    if inspect.isawaitable(done):  # pyzmq >= 25: a coroutine (that never waits here)
                        loop = loop or asyncio.new_event_loop()
                        loop.run_until_complete(done)
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                self.log.exception("the CURVE authenticator stopped")
        finally:
            if loop is not None:
                loop.close()
            zap.close(linger=0)
            pipe.close(linger=0)

    def stop(self) -> None:
        """Stop the thread and close the sockets (also while the context is terminating)."""
        if self.pipe is not None:
            try:
                self.pipe.send(b"STOP", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the context is terminating: the thread ends by itself
            if self.thread is not None and self.thread is not threading.current_thread():
                self.thread.join(10)
            self.pipe.close(linger=0)
            self.pipe = None
        self.zap_socket = None  # type: ignore[assignment]  # closed by the thread (pyzmq's own stop() does this too)


_lock = threading.Lock()
_authenticators: dict[int, _Authenticator] = {}


def register(context: zmq.Context, domain: str, ring: KeyRing) -> None:
    with _lock:
        auth = _authenticators.get(id(context))
        if auth is None or auth.context is not context:
            auth = _Authenticator(context)
            auth.start()
            _authenticators[id(context)] = auth
        auth.rings[domain] = ring
        auth.configure_curve_callback(domain, ring)


def unregister(context: zmq.Context, domain: str) -> None:
    with _lock:
        auth = _authenticators.get(id(context))
        if auth is None or auth.context is not context:
            return
        auth.rings.pop(domain, None)
        auth.credentials_providers.pop(domain, None)
        if not auth.rings:
            del _authenticators[id(context)]
            auth.stop()
