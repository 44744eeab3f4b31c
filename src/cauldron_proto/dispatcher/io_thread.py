"""The dispatcher's I/O thread: its DEALER to the broker's ROUTER and PUB to its XSUB.

The thread moves frames and keeps time; it never runs a keyword handler. Requests
(``CDQ``/``SDQ``) go to the worker pool with the socket generation they arrived on; the
workers post their replies back, and a reply is sent only if its socket is still the
current one (a reply meant for a broker we have since left would reach nobody useful).
Broker messages (``DBP``/``DBE``) go to the :class:`Registration`, whose answers (ready,
heartbeat answers) are sent at once, so a busy pool never delays a heartbeat. When the
registration says to start over, the DEALER is closed and a new one welcomes again.

The DEALER's monitor (:class:`~cauldron_proto.security.handshake.HandshakeWatch`) tells why
a broker refuses the connection (a CURVE key it does not authorize, CURVE on one side only):
logged as an error once, and again only after a success or for another reason. The
registration then starts over on a new socket, as for any welcome left unanswered, so a key
the broker authorizes later is taken without a restart.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import zmq

from ..protocol import Direction, Message, RemoteProtocolError, decode, encode
from ..peer import IOThread
from ..security.handshake import HandshakeWatch, TellOnce
from .core.registration import Registration

if TYPE_CHECKING:
    from .service import Service

__all__ = ["DispatcherIO", "SEND", "PUBLISH"]

SEND, PUBLISH = "send", "publish"
_BATCH = 200
_REQUESTS = frozenset({Direction.CDQ, Direction.SDQ})


class DispatcherIO(IOThread):
    """Sockets, registration and heartbeats of one dispatcher."""

    def __init__(self, service: "Service", context: zmq.Context, log: logging.Logger):
        super().__init__(f"cauldron-dispatcher-{service.dispatcher}", context, log)
        self.service = service
        settings = service.settings
        self.registration = Registration(service.wire_name, service.dispatcher, settings.timeout,
                                         settings.heartbeat, service.liveness)
        self.generation = 0
        self.dealer: zmq.Socket | None = None
        self.pub: zmq.Socket | None = None
        self._watch: HandshakeWatch | None = None
        self._told = TellOnce()  # the handshake failures logged

    # Sockets ---------------------------------------------------------------------------
    def setup(self) -> None:
        self.pub = self.service.settings.socket(self.context, zmq.PUB)
        self.pub.connect(self.service.settings.publish)
        self._register(time.monotonic(), None)

    def _register(self, now: float, reason: str | None) -> None:
        """A new DEALER, and a welcome on it."""
        self._close_dealer()
        address = self.service.settings.broker
        if reason is not None:
            self.log.warning("%s: %s; reconnecting to %s and registering again",
                             self.service.dispatcher, reason, address)
            self.service.registered.clear()
        self.dealer = self.service.settings.socket(self.context, zmq.DEALER)
        self._watch = HandshakeWatch(self.dealer, self.service.settings.curve is not None)
        self.dealer.connect(address)
        self._watch.register(self.poller)
        self.generation += 1
        self._send(self.registration.welcome(now).with_prefix(b""))

    def _close_dealer(self) -> None:
        if self._watch is not None:
            self._watch.close(self.poller)  # its monitor, then the DEALER
            self._watch = self.dealer = None

    def teardown(self) -> None:
        self._close_dealer()
        if self.pub is not None:
            self.pub.close(linger=0)
        self.pub = None

    def _send(self, message: Message) -> None:
        assert self.dealer is not None, "sent after _register()"
        try:
            self.dealer.send_multipart(encode(message), zmq.NOBLOCK)
        except zmq.Again:
            self.log.warning("%s: could not send %s to the broker (queue full); dropped",
                             self.service.dispatcher, message.command)

    # Hooks -----------------------------------------------------------------------------
    def on_item(self, item: Any) -> None:
        kind, generation, frames = item
        if kind == PUBLISH:
            assert self.pub is not None, "items are handled between setup() and teardown()"
            try:
                self.pub.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                self.log.warning("%s: broadcast dropped (queue full)", self.service.dispatcher)
        elif generation == self.generation:
            assert self.dealer is not None, "the current generation's DEALER is open"
            try:
                self.dealer.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                self.log.warning("%s: reply dropped (queue full)", self.service.dispatcher)

    def on_ready(self, events: dict) -> None:
        if self._watch is not None and self._watch.socket in events:
            self._handshakes()
        if self.dealer is None or self.dealer not in events:
            return
        for _ in range(_BATCH):
            try:
                frames = self.dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._received(frames)

    def _handshakes(self) -> None:
        assert self._watch is not None, "called when its socket has events"
        for succeeded, failure in self._watch.read():
            if self._told.heard(succeeded, failure) and failure is not None:
                self.log.log(logging.ERROR if failure.permanent else logging.WARNING,
                             "%s: %s (trying again every %g s)", self.service.dispatcher,
                             failure.describe(self.service.settings.broker), self.registration.welcome_wait)

    def _received(self, frames: list[bytes]) -> None:
        try:
            message = decode(frames)
        except RemoteProtocolError as exc:
            self.log.warning("%s: dropped a malformed message from the broker: %s",
                             self.service.dispatcher, exc)
            return
        now = time.monotonic()
        was_routable = self.registration.routable
        answers, reason = self.registration.heard(message, now, time.time())
        if message.direction in _REQUESTS:
            self.service._submit(message, self.generation)
        for answer in answers:
            self._send(answer.with_prefix(b""))
        disagreement, refusal = self.registration.disagreement(), self.registration.refusal()
        if disagreement is not None:
            self.log.warning("%s: %s", self.service.dispatcher, disagreement)
        if refusal is not None:
            self.log.error("%s: %s", self.service.dispatcher, refusal)
        if reason is not None:
            self._register(now, reason)
        elif not was_routable and self.registration.routable:
            self._registered()

    def _registered(self) -> None:
        count = self.registration.registrations
        again = " again" if count > 1 else ""
        self.log.info("%s: registered%s with the broker at %s for service %s",
                     self.service.dispatcher, again, self.service.settings.broker, self.service.name)
        self.service.registered.set()
        self.service._announce()

    def on_timer(self, now: float) -> None:
        reason = self.registration.overdue(now)
        if reason is not None:
            self._register(now, reason)

    def next_deadline(self) -> float | None:
        return self.registration.expire_at if self.registration.expire_at != float("inf") else None
