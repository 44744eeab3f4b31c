"""The client's I/O thread: a DEALER to the broker's ROUTER and a SUB for broadcasts.

Theory of operation
-------------------
Any thread may call :meth:`ClientIO.request`: it files a :class:`_Slot` under the request's
identifier (in the core's :class:`~cauldron_proto.client.core.Pending` table), posts the
frames to the I/O thread and waits on the slot. The I/O thread sends
``[b"", *envelope]`` on the DEALER; each answer ``[b"", *envelope]`` is decoded and handed
to the slot filed under its identifier (answers nobody waits for any more are dropped), so
any number of requests may be in flight from any number of threads. The SUB socket is made
on the first :meth:`subscribe`; broadcasts the core says are this service's go to the
``on_broadcast`` callback (which must not block: it queues them for the notifier thread).

The DEALER's monitor (:class:`~cauldron_proto.security.handshake.HandshakeWatch`) reports
its handshakes. When the broker refuses the connection for good (a CURVE key it does not
authorize, CURVE on one side only), libzmq never reconnects, so every request in flight
fails at once with :class:`~cauldron_proto.client.BrokerRefusedError`, and the DEALER is
closed. The next request connects again on a new one, since the broker may authorize the key
meanwhile. A refusal libzmq retries by itself (a wrong ``curve_server_key``) is logged
(at INFO, once until a success or another reason), and requests wait as usual.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable, Optional

import zmq

from ..protocol import Message, encode
from ..peer import IOThread, ShutDownError
from ..security import PeerCurve
from ..security.handshake import HandshakeWatch, TellOnce
from .core import ClientCore, Pending, is_broadcast_for, received, topics_for

__all__ = ["ClientIO", "is_broadcast_for", "topics_for"]

_BATCH = 500


class _Slot:
    __slots__ = ("event", "message", "error", "refusal")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.message: Optional[Message] = None
        self.error: Optional[BaseException] = None
        self.refusal: Optional[str] = None  # why the broker refused the connection


class ClientIO(IOThread):
    """Sockets of one client service, and its requests in flight."""

    def __init__(self, core: ClientCore, broker: str, context: zmq.Context, log: logging.Logger,
                 on_broadcast: Callable[[Message], None], curve: Optional[PeerCurve] = None):
        super().__init__(f"cauldron-client-{core.name}", context, log)
        self.curve = curve  # CURVE keys for every socket to the broker, or None
        self.core = core
        self.broker = broker
        self.on_broadcast = on_broadcast
        self.dealer: Optional[zmq.Socket] = None
        self.sub: Optional[zmq.Socket] = None
        self._watch: Optional[HandshakeWatch] = None
        self._told = TellOnce()  # the handshake failures logged
        self._pending: Pending[_Slot] = Pending()
        self._lock = threading.Lock()

    # Called from any thread --------------------------------------------------------------
    def request(self, message: Message, timeout: Optional[float]) -> Optional[Message]:
        """Send ``message`` and wait for its answer; None if none came within ``timeout``."""
        slot = _Slot()
        with self._lock:
            key = self._pending.file(message, slot)
        if not self.post(("send", encode(message))):
            self._forget(key)
            raise ShutDownError("the client service was shut down")
        slot.event.wait(timeout)
        self._forget(key)
        if slot.error is not None:
            raise slot.error
        if slot.refusal is not None:
            raise self.core.refused_error(message, slot.refusal)
        return slot.message

    @property
    def handshake_failure(self) -> Optional[str]:
        """Why the last handshake with the broker failed; None once one succeeds."""
        return self._told.reason

    def subscribe(self, address: str, topics: Iterable[bytes]) -> None:
        """Connect the SUB socket to ``address`` (once) and subscribe to ``topics``."""
        if not self.post(("subscribe", address, tuple(topics))):
            raise ShutDownError("the client service was shut down")

    def _forget(self, key: bytes) -> None:
        with self._lock:
            self._pending.forget(key)

    # The I/O thread ----------------------------------------------------------------------
    def setup(self) -> None:
        self._connect()

    def _connect(self) -> None:
        self.dealer = self._socket(zmq.DEALER)
        self._watch = HandshakeWatch(self.dealer, self.curve is not None)
        self.dealer.connect(self.broker)
        self._watch.register(self.poller)

    def _disconnect(self) -> None:
        if self._watch is not None:
            self._watch.close(self.poller)  # its monitor, then the DEALER
            self._watch = self.dealer = None

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        if self.curve is not None:
            self.curve.client_socket(sock)
        return sock

    def on_item(self, item) -> None:
        if item[0] == "send":
            if self.dealer is None:  # the broker refused the last connection: try a new one
                self._connect()
            assert self.dealer is not None
            try:
                self.dealer.send_multipart([b"", *item[1]], zmq.NOBLOCK)
            except zmq.Again:  # the queue is full, or the broker just refused the connection:
                self._handshakes()  # its monitor says so first (and that fails the request)
                if self.dealer is not None:
                    self.log.warning("request to %s not sent: its send queue is full", self.broker)
        else:
            self._subscribe(item[1], item[2])

    def _subscribe(self, address: str, topics: tuple[bytes, ...]) -> None:
        if self.sub is None:
            self.sub = self._socket(zmq.SUB)
            self.sub.connect(address)
            self.poller.register(self.sub, zmq.POLLIN)
            self.log.debug("subscribed to broadcasts at %s", address)
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)

    def on_ready(self, events: dict) -> None:
        if self.dealer is not None and self.dealer in events:
            self._drain(self.dealer, self._answer)
        if self._watch is not None and self._watch.socket in events:
            self._handshakes()
        if self.sub is not None and self.sub in events:
            self._drain(self.sub, self._broadcast)

    def _drain(self, sock: zmq.Socket, handle: Callable[[Message], None]) -> None:
        for _ in range(_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            message = received(frames, self.log)
            if message is not None:
                handle(message)

    def _answer(self, message: Message) -> None:
        with self._lock:
            slot = self._pending.answer(message)
        if slot is None:
            self.log.debug("dropped an answer nobody waits for: %r", message)
            return
        slot.message = message
        slot.event.set()

    def _handshakes(self) -> None:
        if self._watch is None:
            return  # no connection: nothing to tell
        for succeeded, failure in self._watch.read():
            if succeeded and self._told.reason is not None:
                self.log.info("%s: connected to the broker at %s", self.core.name, self.broker)
            # at INFO: the requests' BrokerRefusedError tells the user
            if self._told.heard(succeeded, failure) and failure is not None:
                self.log.info("%s: %s", self.core.name, failure.describe(self.broker))
            if failure is not None and failure.permanent:
                self._refused(failure.reason)
                return

    def _refused(self, reason: str) -> None:
        """libzmq gave the connection up: fail every request in flight, and close the DEALER."""
        self._disconnect()
        with self._lock:
            slots = self._pending.drain()
        for slot in slots:
            slot.refusal = reason
            slot.event.set()

    def _broadcast(self, message: Message) -> None:
        if self.core.is_broadcast(message):
            self.on_broadcast(message)

    def teardown(self) -> None:
        self._disconnect()
        if self.sub is not None:
            self.sub.close(linger=0)
        self.sub = None
        with self._lock:
            slots = self._pending.drain()
        for slot in slots:
            slot.error = ShutDownError("the client service was shut down")
            slot.event.set()
