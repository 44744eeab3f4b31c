"""ZMQBroker: the broker thread, a thin shell of ZMQ sockets around the routing core.

Theory of operation
-------------------
Every routing decision is made by :class:`cauldron_proto.broker.core.BrokerCore`, which does
no I/O and reads no clock. This module owns the sockets and the clock:

* ``prepare()`` binds, in the calling thread (the sockets are thread-local), the ROUTER
  (``address``), the XPUB (``pub_address``: subscribers connect), the XSUB
  (``sub_address``: publishers connect) and an inproc PULL control socket, and starts the
  broadcast relay (:class:`~cauldron_proto.broker.relay.BroadcastRelay`, a thread of its own)
  until ``close()``: it moves broadcasts and subscriptions within the broker's limits, and with
  a ``curve_dispatchers`` policy drops the broadcasts of a key not allowed to serve their service.
* ``respond()`` polls the ROUTER and the control socket at most until the core's next
  deadline (and, called by hand, at most ``timeout``), serves one ROUTER message (it goes
  through ``core.handle(peer, frames, now)`` and the answers go back out of the ROUTER),
  then runs the timers that are due: "a single message on each socket", as the seed says,
  so a test driving the broker by hand sees one step per call. With CURVE (``security``) the
  step reads each message's key name (ZAP User-Id on the received frame) and hands it to
  ``core.handle(peer, frames, now, key)``, and keeps ``core.policy`` current before each DBQ;
  without CURVE the step is the same as it always was.
* ``run()`` is ``prepare()``, then the same step until ``stop()``, but serving up to
  ``BATCH`` ROUTER messages per poll (forever when no timer is due, so an idle broker
  sleeps). ``stop()`` sets a flag and writes to the control socket so a blocked poll wakes
  at once. Sockets close in ``finally``; a terminated context (``ETERM``/``ENOTSOCK``) is a
  clean exit.

Other threads (the HTTP monitor, :mod:`.http`) read the core's books only under
``books``, a lock each step holds from the end of its poll to its end (never while it
polls); each step also stamps ``beat`` (when it will step again) for :meth:`ZMQBroker.health`.

Invariants: the core never raises, so nothing a peer sends ends the loop; no send blocks
(ROUTER and XPUB drop toward a peer that is gone or full); ``time.monotonic()`` is the only
clock; the hot path formats no log text.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING

import msgspec
import zmq

from . import batchio, launch
from .. import __version__
from ..protocol import ENVELOPE_SIZE, FRAME_NAMES, Direction, Text, encode
from .sockets import (BATCH, FLUSH, BindError, BrokerError, BrokerSockets, connect_form, drain, host_of, is_wildcard,
                      peer_address, poke, seed_routing_ids, transmit_all, user_id)
from .core import BrokerCore
from .core.limits import Limits
from .relay import BroadcastRelay
from .subscriptions import SUBSCRIPTIONS_AHEAD, subscription_size
from .unfinished import FRAME_OVERHEAD, ConnectionWatch, allowance_for, connection_of
from .core.stats import LogLimit
from ..config import is_ipv6

if TYPE_CHECKING:
    from ..security.curve import BrokerCurve

__all__ = ["ZMQBroker", "BrokerError", "BindError", "DEFAULT_MAX_MESSAGE_SIZE"]

DEFAULT_MAX_MESSAGE_SIZE = Limits().max_message_size  # bytes; the `max_message_size` config key
#: Pending tcp connections a bound socket queues (ZMQ's default, 100, makes the 101st of a
#: burst of clients connecting at once wait about 1 s for the kernel to retry its SYN).
LISTEN_BACKLOG = 1024
_NOBLOCK = int(zmq.NOBLOCK)  # a plain int: cheaper than the enum
_DIRECTION_AT = FRAME_NAMES.index("direction") - ENVELOPE_SIZE  # where a message's direction frame is
_DBQ = Direction.DBQ.encode("ascii")  # the direction of every registration (welcome, ready, heartbeat answer)
#: A stall shorter than this is never one, whatever T (a scheduler's or the garbage collector's
#: pause is not the broker being stopped).
STALL_AT_LEAST = 0.5
_log = logging.getLogger("cauldron_proto.broker")
#: Frames of a message over a limit larger than this are not kept (None): enough for any
#: routing id (255 bytes) and name, so the core can still answer a request over the size.
_KEPT_FRAME = 4096


class ZMQBroker(threading.Thread):
    """A broker routing between Cauldron clients and dispatchers, and relaying broadcasts.

    ``address``: where the ROUTER binds (config key ``broker``). ``pub_address``: where the
    XPUB binds, i.e. where *subscribers* connect (config key ``subscribe``). ``sub_address``:
    where the XSUB binds, i.e. where *publishers* connect (config key ``publish``).
    ``mon_address``: the text a ``lookup`` answers (the subscribe address clients connect to).
    """

    daemon = launch.DaemonFlagOrLauncher()  # class: daemon(config, daemon); instance: the flag
    #: CURVE for the ROUTER, XPUB and XSUB (a :class:`~cauldron_proto.security.BrokerCurve`, or
    #: None): set before ``start()``/``prepare()``; ``from_config`` sets it from the config.
    security: BrokerCurve | None = None
    #: the broadcast relay once prepared (``relay.BroadcastRelay``: its ``stats``; ``relayed``,
    #: ``refused`` by a ``curve_dispatchers`` policy)
    relay = None
    #: the HTTP monitor serving this broker (:class:`~cauldron_proto.broker.http.HTTPMonitor`),
    #: or None; ``cauldron-broker --http`` sets it
    http = None
    #: the ROUTER's I/O: True, the compiled batched I/O (:mod:`.batchio`, when it loads); False,
    #: the pure-Python loop (the same behaviour, a frame per call); set before ``start()``
    batched: bool = batchio.native is not None

    def __init__(self, name, address, pub_address, sub_address, mon_address, context=None,
                 timeout=1.0, heartbeat=True):
        super().__init__(name=name)
        if not float(timeout) > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.context = context if context is not None else zmq.Context.instance()
        self.address, self.pub_address, self.sub_address = address, pub_address, sub_address
        self.mon_address = mon_address
        self.timeout, self.heartbeat = float(timeout), bool(heartbeat)
        self.core = BrokerCore(mon_address, timeout=self.timeout, heartbeat=self.heartbeat, name=name)
        self.running = threading.Event()
        self.endpoints: dict[str, str] = {}
        #: By config key, the endpoint each socket really bound (``0.0.0.0``: every interface).
        self.bound: dict[str, str] = {}
        self.error: BaseException | None = None
        self.log = _log.getChild(name)
        self._hosts: dict[str, str | None] = {}  # config key -> host peers connect to (from_config)
        self._configured: dict[str, str] = {}  # config key -> "key = value" (from_config)
        self._local = threading.local()
        self._stop_requested = threading.Event()
        self._ready = threading.Event()  # set once serving, or once starting failed
        self._control_address = f"inproc://cauldron_proto.broker.control.{uuid.uuid4().hex}"
        self._turned_at: float | None = None  # in run(): when the last step ended
        #: (when, until): the loop stepped at ``when`` and will step again by ``until`` (a poll's
        #: end; ``when`` itself while it serves); read by ``health`` from any thread
        self.beat: tuple[float, float] | None = None
        self.started_at: float | None = None  #: when ``prepare()`` bound the sockets (monotonic)
        #: held by the loop while it changes the core's books (not while it polls): other
        #: threads read them under it (:meth:`status`)
        self.books = threading.Lock()
        self.core.about = self._about
        self._log_limit = LogLimit(10.0)  # a line per 10 s: connections cut off, a failed step

    # Seed classmethods (implemented in launch).
    default_configuration = classmethod(launch.default_configuration)
    check = classmethod(launch.check)
    from_config = classmethod(launch.from_config)
    serve = classmethod(launch.serve)
    setup = classmethod(launch.setup)
    sub = classmethod(launch.sub)
    thread = classmethod(launch.thread)

    @property
    def limits(self) -> Limits:
        """The broker's limits (:class:`~cauldron_proto.broker.core.limits.Limits`); set them before
        ``start()``/``prepare()`` (the sockets take theirs when they bind; the core at once)."""
        return self.core.limits

    @limits.setter
    def limits(self, value: Limits) -> None:
        self.core.limits = value

    @property
    def max_message_size(self) -> int:
        """The largest message in bytes the ROUTER takes (the ``max_message_size`` limit)."""
        return self.core.limits.max_message_size

    @max_message_size.setter
    def max_message_size(self, value: int) -> None:
        self.limits = self.limits.replace(max_message_size=int(value))

    @property
    def services(self):
        """The services by upper-cased name: live read-only views (see ``routing.views``)."""
        return self.core.views(time.monotonic)

    def configured_as(self, connect: dict[str, str]) -> None:
        """Remember the configured (connect-form) address of each socket by config key: bind
        errors then name the configuration line, and wildcard endpoints the configured host."""
        self._hosts = {key: host_of(value) for key, value in connect.items()}
        self._configured = {key: f"{key} = {value}" for key, value in connect.items()}

    def get_service(self, service):
        """A live read-only view of the service named ``service`` (any case), or None; never creates one."""
        return self.core.service(service, time.monotonic)

    def connect(self, address, mode="ROUTER"):
        """Create a socket of type ``mode`` in the broker's context and bind it to ``address``.

        Raises :class:`BindError` naming the address when the bind fails.
        """
        if mode.upper() == "ROUTER":
            seed_routing_ids()  # before the ROUTER is made: its automatic ids start where nobody can guess
        sock = self.context.socket(getattr(zmq, mode.upper()))
        sock.linger = 0
        if self.security is not None and mode.upper() in ("ROUTER", "XPUB", "XSUB"):
            self.security.server_socket(sock)  # before bind: a CURVE server, its keys checked by ZAP
        limits = self.limits
        if mode.upper() == "ROUTER":
            sock.maxmsgsize = limits.max_message_size  # a larger frame: its peer is disconnected
            # A send to a peer whose queue is full (max_queued_messages), or whose connection is
            # gone, raises instead of vanishing: the serve loop answers a request it could not
            # forward (core.undelivered) and counts the rest.
            sock.sndhwm = limits.max_queued_messages
            sock.router_mandatory = 1
        elif mode.upper() == "XSUB":
            sock.maxmsgsize = limits.max_broadcast_size  # a larger frame: its publisher is disconnected
        elif mode.upper() == "XPUB":
            sock.sndhwm = limits.max_queued_broadcasts  # toward a subscriber that does not read
            # a subscription longer than any service frame (a name of max_name_length characters,
            # 4 bytes each at most, behind a sentinel byte) disconnects its subscriber: libzmq holds
            # each one it reads at about 45 bytes per byte of topic, applied or not
            sock.maxmsgsize = subscription_size(limits)
            sock.rcvhwm = SUBSCRIPTIONS_AHEAD  # libzmq reads no faster than the relay applies them
        sock.backlog = LISTEN_BACKLOG
        sock.ipv6 = is_ipv6(address)
        try:
            sock.bind(address)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise BindError(mode.upper(), address, exc.errno) from None
        return sock

    def prepare(self):
        """Bind the broker's sockets in the calling thread (idempotent per thread)."""
        if getattr(self._local, "sockets", None) is not None:
            return
        opened = []
        if self.security is not None:
            self.security.start(self.context)  # the ZAP authenticator, before any socket binds
        try:
            for addr, mode, key in ((self.address, "ROUTER", "broker"), (self.pub_address, "XPUB", "subscribe"),
                                    (self.sub_address, "XSUB", "publish"), (self._control_address, "PULL", None)):
                try:
                    opened.append(self.connect(addr, mode))
                except BindError as exc:
                    if key not in self._configured:
                        raise
                    raise BindError(exc.mode, exc.address, exc.errno, self._configured[key]) from None
        except BaseException:
            for sock in opened:
                sock.close(linger=0)
            if self.security is not None:
                self.security.stop()
            raise
        policy = None if self.security is None else self.security.policy
        self.core.policy = None if policy is None else policy.current()  # the rules, as data
        # Called by hand, respond() waits at most `timeout`; run() lifts the limit.
        router, xpub, xsub, control = opened
        relay = BroadcastRelay(xsub, xpub, self.limits, policy, batched=self.batched)
        watch = None
        if self.address.startswith("tcp://"):  # the kernel counts bytes of TCP connections only
            watch = ConnectionWatch(router, allowance_for(self.limits.max_message_size, self.limits.max_frames))
        self._local.sockets = BrokerSockets(router, xpub, xsub, control, relay, watch,
                                            longest_wait=math.ceil(self.timeout * 1000))
        self.relay = self._local.sockets.relay
        self._record_endpoints(opened[0], opened[1], opened[2])
        self.started_at = time.monotonic()

    def _record_endpoints(self, router, xpub, xsub) -> None:
        for key, sock in (("broker", router), ("publish", xsub), ("subscribe", xpub)):
            self.bound[key] = bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self.endpoints[key] = connect_form(bound, self._hosts.get(key))
        if is_wildcard(self.mon_address):
            self.core.lookup_address = self.endpoints["subscribe"]

    def _about(self) -> dict:
        """What the core's ``status`` answers take from this layer (called in the broker thread)."""
        stats = None if self.relay is None else msgspec.to_builtins(self.relay.stats)  # the broadcast relay's counters
        uptime = None if self.started_at is None else round(time.monotonic() - self.started_at, 3)
        return {"version": __version__, "uptime": uptime, "addresses": dict(self.endpoints),
                "bound": dict(self.bound), "curve": self.security is not None, "io": self.io, "relay": stats}

    @property
    def io(self) -> str:
        """The I/O the ROUTER's loop runs: ``compiled`` (batched) or ``pure Python`` (see :attr:`batched`)."""
        return batchio.IO if self.batched else "pure Python"

    def status(self, service: str | None = None) -> dict:
        """The status a ``status`` query is answered with (every service, or the one named),
        read under :attr:`books`: safe from any thread."""
        with self.books:
            return self.core.status(time.monotonic(), None if service is None else service.upper())

    def health(self, now: float | None = None) -> tuple[bool, str]:
        """Whether the routing loop turns (``run()``), and why; safe from any thread.

        The loop stamps :attr:`beat` before each poll, with when the poll will end (never,
        when no timer is due and nothing arrives: an idle broker is healthy), and again when
        it wakes. Healthy while it runs and ``now`` is within max(2 T, 1 s) of the time it
        said it would step again: a poll overdue by that much, or a step serving that long,
        is a loop that does not turn.
        """
        now = time.monotonic() if now is None else now
        beat, grace = self.beat, max(2 * self.timeout, 1.0)
        if not self.running.is_set() or beat is None:
            return False, "the routing loop is not running"
        late = now - beat[1]
        if late > grace:
            return False, f"the routing loop has not turned for {now - beat[0]:.1f} s"
        return True, "the routing loop turns"

    def close(self):
        """Close the sockets this thread prepared (safe to call more than once)."""
        sockets = getattr(self._local, "sockets", None)
        self._local.sockets = None
        if sockets is not None:
            sockets.close()
            if self.security is not None:
                self.security.stop()

    def respond(self):
        """Respond to a single message on each socket, then run due timers.

        Polls at most until the core's next deadline, and at most ``timeout`` seconds; serves
        one ROUTER message if one is waiting (the broadcast relay moves XSUB/XPUB traffic on
        its own). ``run()`` takes the same step, serving up to ``BATCH`` messages at a time.
        """
        self._step(1, wake=False)

    def _step(self, batch: int, wake: bool = True) -> None:
        """Poll, serve at most ``batch`` ROUTER messages, run due timers (see ``respond``); with
        ``wake``, also wake to look for unfinished messages (:mod:`.unfinished`) while peers are
        connected."""
        s = self._local.sockets
        deadline = self.core.next_deadline()
        watch = s.unfinished
        if wake and watch is not None and (due := watch.due()) is not None:
            deadline = due if deadline is None else min(deadline, due)
        started = time.monotonic()
        wait = None if deadline is None else max(0, math.ceil((deadline - started) * 1000))
        waited = s.waited(wait)
        self.beat = (started, math.inf if waited is None else started + waited / 1000)
        ready = s.poll(wait)
        with self.books:
            woke = self._check_stall(started, waited)
            self.beat = (woke, woke)
            if s.control in ready:
                drain(s.control)
                self._stop_requested.set()
                return
            if watch is not None and watch.monitor in ready:
                watch.events()
            drained = s.router not in ready or self._serve_router(s.router, batch)
            if watch is not None:
                self._cut_unfinished(watch, drained)
            deadline = self.core.next_deadline()
            if deadline is not None and deadline <= time.monotonic():
                self.cleanup(s.router)
        if self._turned_at is not None:
            self._turned_at = time.monotonic()

    def _check_stall(self, started: float, waited: int | None) -> float:
        """After a poll that began at ``started`` and could wait ``waited`` ms: if the broker did
        not run for longer than T (the poll came back more than T late, or, in ``run()``, more
        than T passed since the last step), the process was stopped or starved, not the
        dispatchers silent: the core gives every dispatcher a fresh heartbeat and EXPIRY_MULTIPLE T.
        Returns the time it looked."""
        now = time.monotonic()
        late = 0.0 if waited is None else now - started - waited / 1000
        if self._turned_at is not None:
            late = max(late, started - self._turned_at)
        if late > max(self.timeout, STALL_AT_LEAST):
            self.log.warning("the broker did not run for %.1f s (more than T = %s s)", late, self.timeout)
            self.core.resume(now)
        return now

    def _cut_unfinished(self, watch: ConnectionWatch, drained: bool) -> None:
        """Shut down the connections holding a message not finished past what the broker takes
        (:mod:`.unfinished`; ``drained``: the ROUTER was read to its end), counted as over
        ``max_message_size``."""
        now = time.monotonic()
        for peer in watch.check(now, drained):
            self.core.stats.over_limit("max_message_size")
            if self._log_limit.due("unfinished", now):
                self.log.warning("connection from %s cut off: it sent more of a message than the broker's "
                                 "limit max_message_size = %d, and never its last frame", _address(peer),
                                 self.limits.max_message_size)

    def _serve_router(self, router, batch: int) -> bool:
        """The messages waiting on the ROUTER (at most ``batch``) through the core; their answers
        out. True when the ROUTER was read to its end.

        The hot path: frames are read once, as bytes, and counted against ``max_frames`` and
        ``max_message_size`` as they come; a message over either goes to :meth:`_over_limit`.
        With CURVE (``security``) each message goes to the core with the key name of the
        connection it came by (the ZAP User-Id on its frames), for the core's key rules; with
        a ``curve_dispatchers`` policy, the core's rules are brought up to date (the file looked
        at, read again if it changed) before each DBQ, the direction of every registration.

        The answers to the first message go out at once (an unloaded broker adds no wait);
        after that, every FLUSH messages and when the ROUTER is empty, so a burst of sends wakes
        the ZMQ I/O thread once, not once per message.
        """
        if self.batched:
            return self._serve_batched(router, batch)
        core = self.core
        handle, clock, recv, send = core.handle, time.monotonic, router.recv, batchio.sender(router, False)
        watch = self._local.sockets.unfinished
        counted = None if watch is None else watch.read
        keyed = self.security is not None
        policy = self.security.policy if self.security is not None else None
        max_frames, max_size = core.limits.max_frames, core.limits.max_message_size
        pending: list[list[bytes]] = []
        frames: list[bytes]
        drained = False
        for count in range(batch):
            try:
                frame = recv(_NOBLOCK, False)
            except zmq.Again:
                drained = True
                break
            first, peer, frames, size = frame, frame.bytes, [], 0  # a ROUTER message starts with the sender's routing id
            key = user_id(frame) if keyed else None
            while frame.more:
                frame = recv(_NOBLOCK, False)
                data = frame.bytes
                size += len(data)
                if size > max_size or len(frames) >= max_frames:
                    pending += self._over_limit(router, peer, frames, data, frame, size, clock(),
                                                first if counted is not None else None)
                    break
                frames.append(data)
            else:
                if counted is not None:
                    counted(connection_of(first), size, len(frames))
                if len(frames) >= ENVELOPE_SIZE and frames[_DIRECTION_AT] == _DBQ:  # a registration: the
                    core.registry.note_address(peer, peer_address(first))  # log lines name its address
                    if policy is not None:
                        core.policy = policy.current()
                pending += handle(peer, frames, clock(), key)
            if count % FLUSH == 0:
                self._transmit(send, pending)
                pending = []
        self._transmit(send, pending)
        return drained

    def _serve_batched(self, router, batch: int) -> bool:
        """:meth:`_serve_router` with the compiled I/O (:mod:`.batchio`): the same messages
        through the core, the same drops (read and discarded in C), the same answers; each call
        reads up to FLUSH waiting messages (the first one alone, so its answers go out at once),
        and their answers go out in one call. True when the ROUTER was read to its end."""
        core = self.core
        handle, clock, receive = core.handle, time.monotonic, batchio.native.receive  # type: ignore[union-attr]
        sock, send = router.underlying, batchio.sender(router)
        keyed = self.security is not None
        policy = self.security.policy if self.security is not None else None
        max_frames, max_size = core.limits.max_frames, core.limits.max_message_size
        watch = self._local.sockets.unfinished
        counts = None if watch is None else watch.books.counts  # each message's bytes, added in C
        served, limit = 0, 1
        while served < batch:
            messages = receive(sock, min(limit, batch - served), max_frames, max_size, _KEPT_FRAME, keyed,
                               _DIRECTION_AT, ENVELOPE_SIZE, _DBQ, counts, FRAME_OVERHEAD)
            pending: list[list[bytes]] = []
            for peer, frames, size, count, _fd, over, key, address in messages:
                if over:
                    pending += core.over_limit(peer, frames, size, count, clock())
                    continue
                if address is not None:  # a registration (DBQ): the log lines name its address
                    core.registry.note_address(peer, address)
                    if policy is not None:
                        core.policy = policy.current()
                pending += handle(peer, frames, clock(), key)
            if pending:
                self._transmit(send, pending)
            served += len(messages)
            if len(messages) < limit:
                return True
            limit = FLUSH
        return False

    def _over_limit(self, router, peer: bytes, frames: list[bytes], data: bytes, frame, size: int,
                    now: float, first=None) -> list[list[bytes]]:
        """A message over ``max_frames`` or ``max_message_size``, read up to ``frame`` (whose
        bytes are ``data``): the rest is read and discarded, and the core answers it if it can
        (a request over the size: an error naming the limit) or counts it dropped. ``first``:
        its routing id frame, when the bytes read from each connection are counted."""
        max_frames = self.core.limits.max_frames
        kept: list[bytes | None] = [f if len(f) <= _KEPT_FRAME else None for f in frames]
        kept.append(data if len(data) <= _KEPT_FRAME else None)
        count, recv = len(kept), router.recv
        while frame.more:  # the rest is counted; none of it is kept past max_frames
            frame = recv(_NOBLOCK, False)
            size, count = size + len(frame), count + 1
            if count <= max_frames:
                kept.append(frame.bytes if len(frame) <= _KEPT_FRAME else None)
        if first is not None:
            self._local.sockets.unfinished.read(connection_of(first), size, count)
        return self.core.over_limit(peer, kept if count <= max_frames else None, size, count, now)

    def _transmit(self, send: batchio.Sender, messages: list[list[bytes]]) -> None:
        """Send ``messages`` through ``send`` (:func:`.batchio.sender`); the core answers what could not go (a
        request for a dispatcher that is gone or not reading) and counts the rest; those answers are sent once."""
        failed = send(messages)
        if failed:
            failed = send(self.core.undelivered(failed, time.monotonic()))
            if failed:  # answers to clients that are gone or not reading: counted, nothing more
                self.core.undelivered(failed, time.monotonic())

    def wake_on(self, sock) -> None:
        """After ``prepare()``: poll ``sock`` too (a non-blocking ``socket.socket``, e.g. the read end of
        ``signal.set_wakeup_fd``), so a write to it wakes a blocked poll: no signal waits for traffic."""
        self._local.sockets.watch(sock)

    def cleanup(self, socket):
        """Run the core's timers (heartbeats, expiry, fan-out deadlines); send their output on ``socket``."""
        self._transmit(batchio.sender(socket, self.batched), self.core.tick(time.monotonic()))

    def respond_inquiry(self, message, socket):
        """Answer an inquiry ``message`` (as received, with its routing prefix) on ``socket``."""
        transmit_all(socket.send, [encode(message.reply(Text.BROKER_ALIVE))])

    def run(self):
        """Prepare, then respond until stopped; sockets are closed on the way out.

        In the broker's own thread a failure to start is kept for ``start()`` to raise;
        called directly (``serve``), it raises.
        """
        try:
            self.prepare()
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            if threading.current_thread() is not self:
                raise
            return
        self._local.sockets.longest_wait = None  # only the core's deadlines wake the loop
        self._turned_at = time.monotonic()  # steps follow each other: a long gap is a stall too
        self.running.set()
        self._ready.set()
        try:
            while not self._stop_requested.is_set():
                try:
                    self._step(BATCH)
                except zmq.ZMQError as exc:
                    if exc.errno in (zmq.ETERM, zmq.ENOTSOCK):
                        raise  # the context or the socket is closing: the end
                    self._survive(exc)
                except Exception as exc:  # noqa: BLE001 - the broker is the one process nothing runs without
                    self._survive(exc)
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                self.error = exc
                raise
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.running.clear()
            self.close()

    def _survive(self, exc: Exception) -> None:
        """A step failed (a defect, never a peer's doing by design): logged with its traceback at
        most once per 10 s, and the loop goes on; the messages of that step may go unanswered."""
        if self._log_limit.due(("failed", type(exc).__name__), time.monotonic()):
            self.log.error("a step of the routing loop failed; the broker goes on", exc_info=exc)

    def start(self):
        """Start the broker thread and wait until its sockets are bound.

        Raises the failure (e.g. :class:`BindError`) if the thread could not start.
        """
        super().start()
        self.wait_running(timeout=10.0)

    def wait_running(self, timeout=None) -> bool:
        """Wait until the broker serves: True; False if it was stopped first.

        Raises the start failure (e.g. :class:`BindError`), or TimeoutError.
        """
        if not self._ready.wait(timeout):
            raise TimeoutError(f"broker {self.name!r} did not start within {timeout} s")
        if self.running.is_set():
            return True
        if self.error is not None:
            raise self.error
        return False

    def stop(self, timeout=None):
        """Stop the broker promptly and wait (up to ``timeout`` s) for its thread to end."""
        self._stop_requested.set()
        if self.running.is_set():
            poke(self.context, self._control_address)
        if self.ident is not None and threading.current_thread() is not self:
            self.join(timeout)

    # Thread names from the seed API (some removed or deprecated in Python 3.9+).
    def isAlive(self):
        """Return whether the thread is alive (alias of ``is_alive``)."""
        return self.is_alive()

    def isDaemon(self):
        return self.daemon

    def setDaemon(self, daemonic):
        self.daemon = daemonic

    def getName(self):
        return self.name

    def setName(self, name):
        self.name = name


def _address(peer) -> str:
    """``host:port`` of a TCP peer address tuple."""
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
