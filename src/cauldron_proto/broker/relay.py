"""The broadcast relay: XSUB to XPUB (broadcasts) and back (subscriptions), in a thread of its
own, holding every publisher and subscriber to the broker's limits; with a ``curve_dispatchers``
policy, only a key allowed to serve a service may broadcast for it.

Theory of operation
-------------------
:class:`BroadcastRelay` owns the XSUB and the XPUB from its start until :meth:`~BroadcastRelay.stop`
returns (TERMINATE on an inproc PAIR, then join); the routing loop never waits for it. Each
turn polls the control PAIR, the XSUB, the XPUB and the XPUB's monitor, and moves up to
``BATCH`` messages from each ready socket (frames received with ``copy=False``, sent through
the backend's ``send``), so no socket starves the other. Broadcasts go through the compiled
I/O (:mod:`.batchio`, ``batched``) when it runs: the same rules, a batch per call, no copy.

* A broadcast (XSUB to XPUB) is read frame by frame. One of more than ``max_frames`` frames,
  or of more than ``max_broadcast_size`` bytes in all, is dropped (libzmq's MAXMSGSIZE on the
  XSUB only bounds each frame; a larger frame disconnects its publisher). With a policy, a
  broadcast must pass :class:`~cauldron_proto.broker.broadcast_policy.PolicyCheck` too (its
  publisher's key may serve its service; else ``policy``, or ``not_a_broadcast``).
* Toward a subscriber that does not read, the XPUB queues ``max_queued_broadcasts`` (SNDHWM)
  and then drops: one never-reading subscriber holds at most that many broadcasts, each at most
  ``max_broadcast_size`` (shared, not copied, between subscribers).
* Subscriptions (XPUB to XSUB): the XPUB runs with ZMQ_XPUB_MANUAL, and
  :class:`~cauldron_proto.broker.subscriptions.Subscriptions` decides which are applied
  (``max_subscriptions``), which go upstream, and which subscriber is cut off (``shutdown`` of
  its connection, which libzmq then closes as if the peer had) because libzmq would keep its
  refused subscriptions as long as it stays. Connections leaving are read from the monitor.
* Every drop is counted by reason in :attr:`BroadcastRelay.stats` and logged at WARNING at most
  once per reason per ``LOG_INTERVAL`` s (the policy's once per key and service). After the
  relay dropped or released much (a large broadcast, a subscriber's many subscriptions), it
  gives freed memory back to the system (glibc's ``malloc_trim``) 0.5 s later, busy or not.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid

import msgspec
import zmq

from . import batchio
from .core.limits import Limits
from .broadcast_policy import PolicyCheck
from .core.stats import DropLog
from .sockets import BATCH, LARGE, BrokerError, fast_send
from .subscriptions import Subscriptions, subscription_size
from .unfinished import FRAME_OVERHEAD, ConnectionWatch, allowance_for, connection_of, give_memory_back, shut_down
from ..security.policy import PolicyFile

__all__ = ["BroadcastRelay", "RelayStats"]

_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_SUBSCRIBE, _UNSUBSCRIBE = int(zmq.SUBSCRIBE), int(zmq.UNSUBSCRIBE)
_ACCEPTED = int(zmq.EVENT_ACCEPTED)
LOG_INTERVAL = 10.0  # seconds between two WARNING lines of one reason
TRIM_AFTER = 0.5  # seconds from a large release to giving freed memory back
_LIMITS = ("max_frames", "max_broadcast_size")  # the reasons a broadcast is over a limit, in the order checked
_log = logging.getLogger("cauldron_proto.broker.relay")


class RelayStats(msgspec.Struct):
    """What the relay has done since it started (``subscriptions``: now)."""

    relayed: int = 0  #: broadcasts passed on
    dropped: int = 0  #: broadcasts not passed on
    #: by reason: ``max_broadcast_size``, ``max_frames``, ``policy``, ``not_a_broadcast``
    dropped_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    subscriptions: int = 0  #: (topic, subscriber) pairs applied now (at most ``max_subscriptions``)
    subscriptions_refused: int = 0  #: subscriptions not applied: ``max_subscriptions`` held
    #: subscribers disconnected: too many refused subscriptions held, or a message that is no
    #: subscription (then also those subscribing before the broker could tell whose it was)
    subscribers_cut_off: int = 0
    not_subscriptions: int = 0  #: messages from subscribers that are no (un)subscription, dropped
    #: publisher and subscriber connections cut off: a message not finished past the limits
    #: (``max_broadcast_size``; a subscription's size), see :mod:`.unfinished`
    unfinished_cut: int = 0


class BroadcastRelay:
    """The broadcast relay (see the module docstring): started by the constructor."""

    name = "cauldron_proto broadcast relay"

    def __init__(self, xsub, xpub, limits: Limits | None = None, policy: PolicyFile | None = None,
                 clock=time.monotonic, batched: bool = batchio.native is not None):
        limits = Limits() if limits is None else limits
        self.batched = batched  # broadcasts moved by the compiled I/O (:mod:`.batchio`), else frame by frame
        self.limits, self.policy, self._clock = limits, policy, clock
        self.stats = RelayStats()
        self.subscriptions = Subscriptions(limits.max_subscriptions)
        self._check = None if policy is None else PolicyCheck(policy, clock)
        self._log = DropLog(self.stats, LOG_INTERVAL, _log)
        self._closed: set[int] = set()  # descriptors of connections gone (none accepted on them since)
        self._shifted = False  # a non-subscription read: libzmq applies subscriptions to the wrong sender
        self._trim_due = False  # memory was released: give it back at _trim_at
        self._trim_at: float | None = None
        self._xsub = xsub  # the thread's, as xpub is
        xpub.setsockopt(zmq.XPUB_MANUAL, 1)  # before the relay reads: no subscription applied unseen
        # the TCP connections of subscribers (their monitor: accepted and gone) and publishers
        self._subscribers = ConnectionWatch(xpub, allowance_for(subscription_size(limits), 1))
        self._publishers = ConnectionWatch(xsub, allowance_for(limits.max_broadcast_size, limits.max_frames))
        self._monitor = self._subscribers.monitor
        context, address = xsub.context, f"inproc://cauldron_proto.broker.relay.{uuid.uuid4().hex}"
        self._steer = context.socket(zmq.PAIR)
        self._steer.linger = 0
        self._steer.bind(address)
        control = context.socket(zmq.PAIR)
        control.linger = 0
        control.connect(address)
        self._thread = threading.Thread(target=self._run, args=(xsub, xpub, control), daemon=True,
                                        name=self.name)
        self._thread.start()

    @property
    def relayed(self) -> int:
        return self.stats.relayed

    @property
    def refused(self) -> int:
        """Broadcasts dropped by the policy: their key may not serve their service, or not a broadcast."""
        reasons = self.stats.dropped_by_reason
        return reasons.get("policy", 0) + reasons.get("not_a_broadcast", 0)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it; only then may ``xsub`` and ``xpub`` be closed."""
        try:
            self._steer.send(b"TERMINATE", _NOBLOCK)
        except zmq.ZMQError:
            pass  # the context is terminating, which ends the relay too
        self._thread.join(timeout)
        self._steer.close(linger=0)
        if self._thread.is_alive():
            raise BrokerError("the broadcast relay did not stop")

    def _run(self, xsub, xpub, control) -> None:
        poller, monitor, publishers = zmq.Poller(), self._monitor, self._publishers.monitor
        for sock in (control, xsub, xpub, monitor, publishers):
            poller.register(sock, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll(self._wait()))
                if control in ready:
                    return
                if self._trim_at is not None and self._clock() >= self._trim_at:
                    self._trim()
                try:
                    if monitor in ready:
                        self._connections()
                    if publishers in ready:
                        self._publishers.events()
                    drained = xpub not in ready or self._subscriptions(xpub, xsub)
                    self._cut_unfinished(self._subscribers, "subscriber", drained)
                    drained = xsub not in ready or self._broadcasts(xsub, xpub)
                    self._cut_unfinished(self._publishers, "publisher", drained)
                except zmq.ZMQError:
                    raise
                except Exception:  # noqa: BLE001 - nothing a peer sends may stop the relay
                    _log.exception("the broadcast relay failed on a message; it goes on")
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                _log.exception("the broadcast relay stopped")
        finally:
            control.close(linger=0)
            self._subscribers.close(xpub)
            self._publishers.close(xsub)

    def _wait(self) -> int | None:
        """Milliseconds the next poll may wait (None: until a socket is ready): until the next
        trim (:meth:`_until_trim`), or the next look for unfinished messages (while TCP peers
        are connected)."""
        now, trim = self._clock(), self._until_trim()
        waits = [] if trim is None else [trim]
        for watch in (self._subscribers, self._publishers):
            if (due := watch.due()) is not None:
                waits.append(max(0, math.ceil((due - now) * 1000)))
        return min(waits) if waits else None

    def _cut_unfinished(self, watch: ConnectionWatch, who: str, drained: bool) -> None:
        """Shut down the connections holding an unfinished message (``drained``: the socket
        was read to its end)."""
        for peer in watch.check(self._clock(), drained):
            self.stats.unfinished_cut += 1
            self._log.note(("unfinished", who), self._clock(), logging.WARNING,
                           "%s %s cut off: it sent more of a message than the broker takes, and never its "
                           "last frame", who, peer)

    # -- broadcasts -------------------------------------------------------------------------

    def _broadcasts(self, xsub, xpub) -> bool:
        """Up to a batch of waiting broadcasts: each passed on, or dropped over a limit or the
        policy. True when the XSUB was read to its end."""
        check = self._check
        if check is not None:
            check.refresh()
        if self.batched:
            return self._broadcasts_batched(xsub, xpub, check)
        recv, send, stats = xsub.recv, fast_send(xpub), self.stats
        max_frames, max_size = self.limits.max_frames, self.limits.max_broadcast_size
        counted = self._publishers.read
        for _ in range(BATCH):
            try:
                frame = recv(_NOBLOCK, False)
            except zmq.Again:
                return True
            frames, size = [frame], len(frame)
            while frame.more:
                frame = recv(_NOBLOCK, False)
                frames.append(frame)
                size += len(frame)
            counted(connection_of(frames[0]), size, len(frames))
            if len(frames) > max_frames:
                self._drop("max_frames", frames, size)
            elif size > max_size:
                self._drop("max_broadcast_size", frames, size)
            elif check is not None and (reason := check.refusal(frames)) is not None:
                self._drop(reason, frames, size)
            else:
                for part in frames[:-1]:
                    send(part, _MORE)
                send(frames[-1], _NOBLOCK)  # the XPUB drops toward a subscriber at its SNDHWM
                stats.relayed += 1
        return False

    def _broadcasts_batched(self, xsub, xpub, check: PolicyCheck | None) -> bool:
        """:meth:`_broadcasts` in the compiled I/O: the same limits, in the same order, and the
        same policy decisions; the broadcasts that pass are moved to the XPUB without a copy.
        True when the XSUB was read to its end."""
        relayed, dropped = batchio.native.relay(  # type: ignore[union-attr]
            xsub.underlying, xpub.underlying, BATCH, self.limits.max_frames, self.limits.max_broadcast_size,
            *_LIMITS, None if check is None else check.decide, self._publishers.books.counts, FRAME_OVERHEAD)
        self.stats.relayed += relayed
        for reason, count, size, service, user in dropped:
            self._count_drop(reason, count, size)
            if service is not None and check is not None:
                check.note(user, service, count, reason)
        return relayed + len(dropped) < BATCH

    def _drop(self, reason: str, frames, size: int) -> None:
        self._count_drop(reason, len(frames), size)
        if reason not in _LIMITS and self._check is not None:
            self._check.log(frames, reason)

    def _count_drop(self, reason: str, count: int, size: int) -> None:
        """Count a broadcast of ``count`` frames and ``size`` bytes dropped for ``reason``; log one over a limit."""
        stats = self.stats
        stats.dropped += 1
        stats.dropped_by_reason[reason] = stats.dropped_by_reason.get(reason, 0) + 1
        if size >= LARGE:
            self._trim_due = True
        if reason in _LIMITS:
            self._log.note(reason, self._clock(), logging.WARNING,
                           "broadcast not relayed: over the broker's limit %s = %d (%d frames, %d bytes)",
                           reason, getattr(self.limits, reason), count, size)

    # -- subscriptions ----------------------------------------------------------------------

    def _subscriptions(self, xpub, xsub) -> bool:
        """Up to a batch of (un)subscriptions, each applied or not, and passed upstream or not;
        True when the XPUB was read to its end.

        A message from a subscriber that is no (un)subscription is not part of the protocol, and
        it shifts libzmq's notion of whom the next ones came from (XPUB_MANUAL keeps the sender of
        (un)subscriptions only, but takes one for every message received): until the XPUB's queue
        is empty again, no (un)subscription is applied and each sender is cut off (a libzmq SUB
        connects again and sends all its subscriptions anew).
        """
        recv, book, stats, counted = xpub.recv, self.subscriptions, self.stats, self._subscribers.read
        drained = False
        for _ in range(BATCH):
            self._connections()  # first: a connection gone before one reuses its file descriptor
            try:
                frame = recv(_NOBLOCK, False)
            except zmq.Again:
                self._shifted = False  # libzmq's queue of senders is empty too
                drained = True
                break
            data, conn = frame.bytes, _connection(frame)
            if conn is not None:
                counted(conn, len(data), 1)
            if conn in self._closed:
                continue  # read before its connection went: libzmq forgets it with the connection
            if frame.more or not data or data[0] > 1:
                stats.not_subscriptions += 1
                self._shifted = True
                self._cut(conn, "sent a message that is no subscription")
                continue
            if self._shifted:
                self._cut(conn, "subscribed while the broker could not tell whose subscription it was")
                continue
            topic = data[1:]
            if data[0]:
                decision = book.subscribe(conn, topic)
                if not decision.apply:
                    self._refuse(conn, topic, decision.cut_off)
                    continue
                xpub.setsockopt(_SUBSCRIBE, topic)  # for the subscriber this came from
            else:
                decision = book.unsubscribe(conn, topic)
                if not decision.apply:
                    continue  # not held: a refused one, or one of a subscriber gone
                xpub.setsockopt(_UNSUBSCRIBE, topic)
                if book.refused_held:
                    self._make_room()
            if decision.upstream:
                xsub.send(data, _NOBLOCK)
        else:
            self._trim_due = True  # a full batch: libzmq's tries grow or shrink by as much
        stats.subscriptions = book.held
        return drained

    def _refuse(self, conn, topic: bytes, cut_off: bool) -> None:
        self.stats.subscriptions_refused += 1
        self._log.note("max_subscriptions", self._clock(), logging.WARNING,
                       "subscription %r not applied: over the broker's limit max_subscriptions = %d",
                       topic[:64], self.limits.max_subscriptions)
        if cut_off:
            self._cut(conn, f"holds more refused subscriptions than max_subscriptions = {self.limits.max_subscriptions}")

    def _cut(self, fd, why: str) -> None:
        """Disconnect subscriber connection ``fd`` (libzmq sees its peer leave and forgets all it held)."""
        if fd is None or not self._shut_down(fd):
            return
        self._closed.add(fd)  # what more it sent goes with it; its DISCONNECTED event calls _gone
        self.stats.subscribers_cut_off += 1
        self._log.note(("cut off", why), self._clock(), logging.WARNING, "subscriber %s disconnected: it %s",
                       self._subscribers.peers.get(fd), why)

    def _connections(self) -> None:
        """Read the XPUB's monitor: subscriber connections accepted and gone."""
        for kind, fd in self._subscribers.events():
            self._gone(fd)  # accepted: any earlier connection on that descriptor is gone too
            if kind == _ACCEPTED:
                self._closed.discard(fd)
            else:
                self._closed.add(fd)
                self._trim_due = True  # libzmq frees what it queued toward that subscriber

    def _gone(self, fd: int) -> None:
        """Forget connection ``fd``: unsubscribe upstream what nobody holds any longer."""
        book = self.subscriptions
        before = book.held + book.refused_held
        for topic in book.gone(fd):
            self._xsub.send(b"\x00" + topic, _NOBLOCK)
        if before - book.held - book.refused_held >= _MANY:
            self._trim_due = True  # libzmq frees its tries of that subscriber
        self._make_room()
        self.stats.subscriptions = book.held

    def _make_room(self) -> None:
        """Room again under max_subscriptions: cut off the subscribers with refused subscriptions,
        which libzmq cannot apply now, so that they connect again and subscribe anew."""
        for fd in self.subscriptions.waiting():
            if fd not in self._closed:
                self._cut(fd, "had subscriptions refused, and there is room for them again")

    def _shut_down(self, fd) -> bool:
        """Shut connection ``fd`` down (libzmq sees its peer leave); False if it is no longer that one."""
        return shut_down(fd, self._subscribers.peers.get(fd))

    def _until_trim(self) -> int | None:
        """Milliseconds to the next trim (None: none due): TRIM_AFTER after the first release
        since the last one, however busy the relay is (an honest publisher's broadcasts every
        0.1 s left it never idle for 0.5 s, and nothing was given back)."""
        if not self._trim_due:
            return None
        if self._trim_at is None:
            self._trim_at = self._clock() + TRIM_AFTER
        return max(0, math.ceil((self._trim_at - self._clock()) * 1000))

    def _trim(self) -> None:
        self._trim_due, self._trim_at = False, None
        give_memory_back()


def _connection(frame) -> int | None:
    """The file descriptor of the connection ``frame`` came by; None without one (inproc, or a
    subscriber gone: libzmq's unsubscriptions then carry no properties)."""
    fd = connection_of(frame)
    return None if fd < 0 else fd


_MANY = 1000  # subscriptions released at once that make the relay give memory back
