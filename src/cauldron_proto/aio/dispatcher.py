"""The asyncio dispatcher: keywords of a service served from an event loop.

Theory of operation
-------------------
A thin layer over the dispatcher's I/O-free core (:mod:`cauldron_proto.dispatcher.core`), as
the threaded dispatcher is: its :class:`~cauldron_proto.dispatcher.Registration` (welcome,
ready, heartbeats, when to start over), its keyword table and answers
(:func:`~cauldron_proto.dispatcher.answering`, run by
:func:`~cauldron_proto.dispatcher.core.steps.run_async`, which awaits a keyword's ``validate``
or ``on_read`` when it is a coroutine function), with the keyword handle
:class:`~cauldron_proto.dispatcher.Keyword`. A change of value sends the broadcast the core
returns, from the loop's one thread, so no lock is needed.

One task owns the DEALER: it receives every message from the broker and tells the
registration, whose answers (``ready``, heartbeat answers) it sends at once, and it waits
for no longer than the registration's ``expire_at`` (loop time), starting over on a new
socket when the registration says so. Each request gets a task of its own, so a handler
that awaits something slow never delays a heartbeat; its reply is sent only if its socket
is still the current one; a request task awaits room in the send queue for its reply (a
burst of a thousand replies is not dropped). Broadcasts go out on the PUB at once when a
value changes, and the serving task's own sends never wait (a full queue drops the message
with a warning, as the threaded dispatcher does). A task per DEALER reads its handshake
monitor (:class:`~cauldron_proto.security.handshake.HandshakeWatch`) and logs why a broker
refuses the connection, once, as the threaded dispatcher does. Nothing starts an event loop
or a thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Mapping, Optional, cast

import zmq
import zmq.asyncio

from ..protocol import DISPATCHER_LIVENESS, Direction, Message, RemoteProtocolError, decode, encode
from ..config import ConfigLike
from ..dispatcher.core.handlers import answering, finish
from ..dispatcher.core.keywords import KeywordState, KeywordTable, default_dispatcher_name
from ..dispatcher.core.registration import Registration
from ..dispatcher.core.steps import run_async
from ..dispatcher.keyword import KeywordOwner
from ..peer import HelperSettings
from ..security.handshake import HandshakeWatch, TellOnce
from ._zmq import async_context, batch, send_now

__all__ = ["Dispatcher"]

_REQUESTS = frozenset({Direction.CDQ, Direction.SDQ})
_BATCH = 200  # messages taken at once before the serving task lets others run


class Dispatcher(KeywordOwner):
    """Asyncio dispatcher ``dispatcher`` of service ``name``; ``async with`` serves it.

    ``config``, ``broker``, ``publish``, ``timeout`` (the broker's heartbeat period),
    ``heartbeat``, ``liveness``, ``curve_key`` and ``curve_server_key`` are those of
    :class:`cauldron_proto.dispatcher.Service`; ``context`` a ``zmq.asyncio`` context or any
    ``zmq.Context`` (shadowed), default a new one. Keywords are
    :class:`cauldron_proto.dispatcher.Keyword` s whose ``validate`` and ``on_read`` may be
    coroutine functions (plain functions run in the loop: keep them quick).
    """

    def __init__(self, name: str, config: "ConfigLike | Mapping[str, Any]" = None,
                 dispatcher: Optional[str] = None, *, context: Optional[zmq.Context] = None,
                 liveness: float = DISPATCHER_LIVENESS, broker: Optional[str] = None, publish: Optional[str] = None,
                 timeout: Optional[float] = None, heartbeat: Optional[bool] = None,
                 curve_key: Optional[str] = None, curve_server_key: Optional[str] = None):
        self.name = name
        self.dispatcher = dispatcher or default_dispatcher_name(name)
        self.table = KeywordTable(name, self.dispatcher)
        self.wire_name = self.table.wire_name
        self.settings = HelperSettings.load(config, broker=broker, publish=publish, timeout=timeout,
                                      heartbeat=None if heartbeat is None else ("yes" if heartbeat else "no"),
                                      curve_key=curve_key, curve_server_key=curve_server_key)
        self.liveness = liveness
        self.log = logging.getLogger(f"cauldron_proto.aio.dispatcher.{name}")
        self.registration = Registration(self.wire_name, self.dispatcher, self.settings.timeout,
                                         self.settings.heartbeat, liveness)
        #: Set while registered with a broker (cleared while registering again).
        self.registered = asyncio.Event()
        self._given_context = context
        self._context: Optional[zmq.asyncio.Context] = None
        self._own_context = False
        self._dealer: Optional[zmq.asyncio.Socket] = None
        self._watch: Optional[HandshakeWatch] = None
        self._watching: Optional[asyncio.Task] = None  # the task reading the DEALER's handshake monitor
        self._told = TellOnce()  # the handshake failures logged
        self._pub: Optional[zmq.asyncio.Socket] = None
        self._generation = 0
        self._serving: Optional[asyncio.Task] = None
        self._requests: set[asyncio.Task] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<aio.Dispatcher {self.name} ({self.dispatcher}) {len(self.table)} keywords>"


    # Lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start serving in the running loop: the sockets, a welcome, the serving task."""
        if self._closed:
            raise RuntimeError(f"{self!r} was shut down")
        if self._serving is not None:
            return
        loop = asyncio.get_running_loop()
        self._context, self._own_context = async_context(self._given_context)
        self._pub = self.settings.socket(self._context, zmq.PUB)
        self._pub.connect(self.settings.publish)
        self._register(loop.time(), None)
        self._serving = loop.create_task(self._serve(), name=f"{self!r}")

    async def wait_registered(self, timeout: Optional[float] = None) -> bool:
        """Wait until registered with a broker; False if ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self.registered.wait()
        except TimeoutError:
            return False
        return True

    @property
    def registrations(self) -> int:
        """How many times this dispatcher registered (more than 1 after a broker restart)."""
        return self.registration.registrations

    async def aclose(self) -> None:
        """Stop serving: cancel the serving and request tasks, close every socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.registered.clear()
        tasks = [task for task in (self._serving, self._watching, *self._requests) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._close_dealer()
        if self._pub is not None:
            self._pub.close(linger=0)
        self._pub = None
        if self._own_context and self._context is not None:
            self._context.term()

    async def __aenter__(self) -> "Dispatcher":
        self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # The serving task ------------------------------------------------------------------
    def _register(self, now: float, reason: Optional[str]) -> None:
        """A new DEALER, and a welcome on it."""
        self._close_dealer()
        if reason is not None:
            self.log.warning("%s: %s; reconnecting to %s and registering again",
                             self.dispatcher, reason, self.settings.broker)
            self.registered.clear()
        assert self._context is not None, "registering once started"
        self._dealer = self.settings.socket(self._context, zmq.DEALER)
        self._watch = HandshakeWatch(self._dealer, self.settings.curve is not None)
        self._dealer.connect(self.settings.broker)
        self._watching = asyncio.get_running_loop().create_task(self._handshakes(self._watch),
                                                                name=f"{self!r} handshakes")
        self._generation += 1
        self._send(self.registration.welcome(now).with_prefix(b""))

    def _close_dealer(self) -> None:
        if self._watching is not None and self._watching is not asyncio.current_task():
            self._watching.cancel()
        self._watching = None
        if self._watch is not None:
            self._watch.close()  # its monitor, then the DEALER
            self._watch = self._dealer = None

    async def _handshakes(self, watch: HandshakeWatch) -> None:
        """Log why the broker refuses the connection (once, until a success or another reason)."""
        while True:
            succeeded, failure = watch.outcome(await cast(zmq.asyncio.Socket, watch.socket).recv_multipart())
            if self._told.heard(succeeded, failure) and failure is not None:
                self.log.log(logging.ERROR if failure.permanent else logging.WARNING,
                             "%s: %s (trying again every %g s)", self.dispatcher,
                             failure.describe(self.settings.broker), self.registration.welcome_wait)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expire_at = self.registration.expire_at
            assert self._dealer is not None, "serving between start() and close()"
            try:
                async with asyncio.timeout_at(None if math.isinf(expire_at) else expire_at):
                    frames = await self._dealer.recv_multipart()
            except TimeoutError:
                now = loop.time()
                reason = self.registration.overdue(now)
                if reason is not None:
                    self._register(now, reason)
                continue
            dealer = self._dealer
            assert dealer is not None
            for frames in batch(frames, zmq.Socket.shadow(dealer.underlying), _BATCH):  # and what else is queued
                if self._dealer is not dealer:  # registering again: the rest came from the broker we left
                    break
                self._received(frames, loop.time())

    def _received(self, frames: list[bytes], now: float) -> None:
        try:
            message = decode(frames)
        except RemoteProtocolError as exc:
            self.log.warning("%s: dropped a malformed message from the broker: %s", self.dispatcher, exc)
            return
        was_routable = self.registration.routable
        answers, reason = self.registration.heard(message, now, time.time())
        if message.direction in _REQUESTS:
            task = asyncio.get_running_loop().create_task(self._answer(message, self._generation))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)
        for answer in answers:
            self._send(answer.with_prefix(b""))
        disagreement, refusal = self.registration.disagreement(), self.registration.refusal()
        if disagreement is not None:
            self.log.warning("%s: %s", self.dispatcher, disagreement)
        if refusal is not None:
            self.log.error("%s: %s", self.dispatcher, refusal)
        if reason is not None:
            self._register(now, reason)
        elif not was_routable and self.registration.routable:
            again = " again" if self.registration.registrations > 1 else ""
            self.log.info("%s: registered%s with the broker at %s for service %s",
                          self.dispatcher, again, self.settings.broker, self.name)
            self.registered.set()
            for broadcast in self.table.announcements():  # monitors get the values of this dispatcher
                self._publish(broadcast)

    async def _answer(self, request: Message, generation: int) -> None:
        try:
            outcome = await run_async(answering(request, self.table, time.time()))
        except Exception:
            self.log.exception("%s: answering %r failed", self.dispatcher, request)
            return
        reply, broadcast = finish(outcome, self.table)
        self._publish(broadcast)
        if generation == self._generation and self._dealer is not None:
            # Awaited: a burst of replies waits for room in the queue rather than being dropped;
            # a socket closed meanwhile (registering again, closing) cancels the wait.
            await self._dealer.send_multipart(encode(reply))

    def _send(self, message: Message) -> None:
        assert self._dealer is not None, "sent once registering"
        send_now(self._dealer, encode(message), self.log, f"{self.dispatcher}: {message.command}")

    # Called by keywords ----------------------------------------------------------------
    def _store(self, keyword: KeywordState, value: Any, force: bool = False) -> str:
        change = self.table.store(keyword, value, force)
        self._publish(change.broadcast)
        return change.text

    def _publish(self, broadcast: Optional[Message]) -> None:
        if broadcast is not None and self._pub is not None:
            send_now(self._pub, encode(broadcast), self.log, f"{self.dispatcher}: broadcast")
