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
  gives freed memory back to the system (glibc's ``malloc_trim``) once it has been idle 0.5 s.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
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
from .subscriptions import Subscriptions
from ..security.policy import PolicyFile

__all__ = ["BroadcastRelay", "RelayStats"]

_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_SUBSCRIBE, _UNSUBSCRIBE = int(zmq.SUBSCRIBE), int(zmq.UNSUBSCRIBE)
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
_ACCEPTED, _DISCONNECTED = int(zmq.EVENT_ACCEPTED), int(zmq.EVENT_DISCONNECTED)
LOG_INTERVAL = 10.0  # seconds between two WARNING lines of one reason
TRIM_AFTER = 0.5  # seconds idle before freed memory is given back, after a large release
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
        self._peers: dict[int, object] = {}  # file descriptor -> address of the subscriber connection
        self._closed: set[int] = set()  # descriptors of connections gone (none accepted on them since)
        self._shifted = False  # a non-subscription read: libzmq applies subscriptions to the wrong sender
        self._trim_due = False
        self._xsub = xsub  # the thread's, as xpub is
        xpub.setsockopt(zmq.XPUB_MANUAL, 1)  # before the relay reads: no subscription applied unseen
        self._monitor = xpub.get_monitor_socket(_ACCEPTED | _DISCONNECTED)
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
        poller, monitor = zmq.Poller(), self._monitor
        for sock in (control, xsub, xpub, monitor):
            poller.register(sock, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll(int(TRIM_AFTER * 1000) if self._trim_due else None))
                if control in ready:
                    return
                if not ready:
                    self._trim()
                    continue
                try:
                    if monitor in ready:
                        self._connections()
                    if xpub in ready:
                        self._subscriptions(xpub, xsub)
                    if xsub in ready:
                        self._broadcasts(xsub, xpub)
                except zmq.ZMQError:
                    raise
                except Exception:  # noqa: BLE001 - nothing a peer sends may stop the relay
                    _log.exception("the broadcast relay failed on a message; it goes on")
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                _log.exception("the broadcast relay stopped")
        finally:
            control.close(linger=0)
            try:
                xpub.disable_monitor()
            except zmq.ZMQError:
                pass
            monitor.close(linger=0)

    # -- broadcasts -------------------------------------------------------------------------

    def _broadcasts(self, xsub, xpub) -> None:
        """Up to a batch of waiting broadcasts: each passed on, or dropped over a limit or the policy."""
        check = self._check
        if check is not None:
            check.refresh()
        if self.batched:
            return self._broadcasts_batched(xsub, xpub, check)
        recv, send, stats = xsub.recv, fast_send(xpub), self.stats
        max_frames, max_size = self.limits.max_frames, self.limits.max_broadcast_size
        for _ in range(BATCH):
            try:
                frame = recv(_NOBLOCK, False)
            except zmq.Again:
                return
            frames, size = [frame], len(frame)
            while frame.more:
                frame = recv(_NOBLOCK, False)
                frames.append(frame)
                size += len(frame)
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

    def _broadcasts_batched(self, xsub, xpub, check: PolicyCheck | None) -> None:
        """:meth:`_broadcasts` in the compiled I/O: the same limits, in the same order, and the
        same policy decisions; the broadcasts that pass are moved to the XPUB without a copy."""
        relayed, dropped = batchio.native.relay(  # type: ignore[union-attr]
            xsub.underlying, xpub.underlying, BATCH, self.limits.max_frames, self.limits.max_broadcast_size,
            *_LIMITS, None if check is None else check.decide)
        self.stats.relayed += relayed
        for reason, count, size, service, user in dropped:
            self._count_drop(reason, count, size)
            if service is not None and check is not None:
                check.note(user, service, count, reason)

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

    def _subscriptions(self, xpub, xsub) -> None:
        """Up to a batch of (un)subscriptions, each applied or not, and passed upstream or not.

        A message from a subscriber that is no (un)subscription is not part of the protocol, and
        it shifts libzmq's notion of whom the next ones came from (XPUB_MANUAL keeps the sender of
        (un)subscriptions only, but takes one for every message received): until the XPUB's queue
        is empty again, no (un)subscription is applied and each sender is cut off (a libzmq SUB
        connects again and sends all its subscriptions anew).
        """
        recv, book, stats = xpub.recv, self.subscriptions, self.stats
        for _ in range(BATCH):
            self._connections()  # first: a connection gone before one reuses its file descriptor
            try:
                frame = recv(_NOBLOCK, False)
            except zmq.Again:
                self._shifted = False  # libzmq's queue of senders is empty too
                break
            data, conn = frame.bytes, _connection(frame)
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
                       self._peers.get(fd), why)

    def _connections(self) -> None:
        """Read the XPUB's monitor: subscriber connections accepted and gone."""
        monitor = self._monitor
        while monitor.getsockopt(_EVENTS) & _POLLIN:  # cheaper than a recv raising Again
            event = monitor.recv(_NOBLOCK)
            while monitor.getsockopt(zmq.RCVMORE):
                monitor.recv(_NOBLOCK)  # the endpoint
            kind, fd = struct.unpack("=HI", event[:6])
            self._gone(fd)  # accepted: any earlier connection on that descriptor is gone too
            if kind == _ACCEPTED:
                self._peers[fd] = _peer_name(fd)
                self._closed.discard(fd)
            else:
                self._peers.pop(fd, None)
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
        expected = self._peers.get(fd)
        if expected is None:
            return False
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.getpeername() != expected:
                    return False  # the descriptor was closed and reused meanwhile
                sock.shutdown(socket.SHUT_RDWR)  # the connection, not only this duplicate of it
        except OSError:
            return False
        return True

    def _trim(self) -> None:
        self._trim_due = False
        if _malloc_trim is not None:
            _malloc_trim(0)


def _connection(frame) -> int | None:
    """The file descriptor of the connection ``frame`` came by; None without one (inproc, or a
    subscriber gone: libzmq's unsubscriptions then carry no properties)."""
    try:
        return int(frame.get("__fd"))
    except (zmq.ZMQError, ValueError):
        return None


def _peer_name(fd: int):
    """The peer address of connection ``fd`` (to tell it from a later one on the same descriptor)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            return sock.getpeername()
    except OSError:
        return None


def _libc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc


_malloc_trim = _libc_trim()
_MANY = 1000  # subscriptions released at once that make the relay give memory back
