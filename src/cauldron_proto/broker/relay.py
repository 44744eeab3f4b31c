"""The broadcast relay under a ``curve_dispatchers`` policy: only a key allowed to serve a
service may broadcast for it.

Theory of operation
-------------------
Without a policy the broker relays broadcasts in C (``zmq.proxy_steerable``, see
:class:`cauldron_proto.broker.sockets.Relay`). With one, :class:`PolicyRelay` does the same
job in a Python thread of its own, because a decision needs each message's key (the ZAP
User-Id of the publisher's connection, on the frames received with ``copy=False``) and its
service frame:

* subscriptions (XPUB to XSUB) pass unchanged;
* a broadcast (XSUB to XPUB) is seven frames with no prefix, the first the service (what
  subscribers' topics match): it passes when ``policy.allows(User-Id, service)``; else it is
  dropped, counted in ``refused`` and logged at WARNING (one line per key and service per
  10 s). A message of another length, or whose first frame is not a service name, is dropped
  too. The rest of a message that passes is not read: it is relayed as the C relay would.

Decisions are remembered per (key, service frame) and forgotten when the policy changes; the
policy file is looked at (one ``stat``) at most every ``PolicyFile.relay_interval`` seconds.
The thread owns ``xsub`` and ``xpub`` until :meth:`PolicyRelay.stop` returns, as the C
relay's does; the broker's routing loop never waits for it.
"""

from __future__ import annotations

import logging
import time

import zmq

from ..protocol import BLANK, ENVELOPE_SIZE, Direction, RemoteProtocolError, decode
from .core.stats import LogLimit
from .sockets import Relay, fast_send, user_id
from ..security.policy import PolicyFile

__all__ = ["PolicyRelay"]

_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_BATCH = 1000
_CDB = Direction.CDB.encode("ascii")
_LOG_INTERVAL = 10.0  # seconds between two WARNING lines about one (key, service)
_log = logging.getLogger("cauldron_proto.broker.relay")


class PolicyRelay(Relay):
    """XSUB to XPUB (broadcasts, filtered by the policy) and back (subscriptions), in a thread
    (started and stopped as the C relay's: only ``_run`` differs)."""

    name = "cauldron_proto broadcast relay (policy)"

    def __init__(self, xsub, xpub, policy: PolicyFile, clock=time.monotonic):
        self.policy, self._clock = policy, clock
        self.relayed = 0  #: broadcasts passed on
        self.refused = 0  #: broadcasts dropped: their key may not serve their service (or unreadable)
        self._rules = policy.current()
        self._looked_at = clock()
        self._decisions: dict[tuple[str, bytes], bool] = {}
        self._log_limit = LogLimit(_LOG_INTERVAL)  # per (key, service)
        super().__init__(xsub, xpub)

    def _run(self, xsub, xpub, control) -> None:
        poller = zmq.Poller()
        for sock in (control, xsub, xpub):
            poller.register(sock, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if control in ready:
                    return
                try:
                    if xpub in ready:
                        _move(xpub, xsub)  # subscriptions, unchanged
                    if xsub in ready:
                        self._broadcasts(xsub, xpub)
                except zmq.ZMQError:
                    raise
                except Exception:  # noqa: BLE001 - nothing a publisher sends may stop the relay
                    _log.exception("the broadcast relay failed on a message; it goes on")
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                _log.exception("the broadcast relay stopped")
        finally:
            control.close(linger=0)

    def _broadcasts(self, xsub, xpub) -> None:
        """Up to a batch of waiting broadcasts: each passed on or dropped, as the policy says."""
        self._refresh()
        recv, send, decisions = xsub.recv, fast_send(xpub), self._decisions
        for _ in range(_BATCH):
            try:
                frame = recv(_NOBLOCK, False)
            except zmq.Again:
                return
            frames = [frame]
            while frame.more:
                frame = recv(_NOBLOCK, False)
                frames.append(frame)
            key = (user_id(frames[0]), frames[0].bytes)
            if len(frames) != ENVELOPE_SIZE:
                self._refuse(key[0], key[1], frames, "not a broadcast (a broadcast is 7 frames, no prefix)")
                continue
            allowed = decisions.get(key)
            if allowed is None:
                allowed = self._decide(key)
            if not allowed:
                self._refuse(key[0], key[1], frames, "the policy does not let that key serve it")
                continue
            try:
                for part in frames[:-1]:
                    send(part, _MORE)
                send(frames[-1], _NOBLOCK)
            except zmq.Again:
                pass  # XPUB drops toward a subscriber that cannot take more, as the C relay does
            self.relayed += 1

    def _decide(self, key: tuple[str, bytes]) -> bool:
        """Whether key name ``key[0]`` may broadcast with service frame ``key[1]`` (remembered)."""
        try:  # the service frame read as the codec reads it, in an envelope of blanks
            service = decode([key[1], BLANK, BLANK, _CDB, BLANK, BLANK, BLANK]).service_key
        except RemoteProtocolError:
            service = None  # not a text frame
        allowed = service is not None and self._rules.allows(key[0], service)
        if len(self._decisions) >= 4096:
            self._decisions.clear()
        self._decisions[key] = allowed
        return allowed

    def _refresh(self) -> None:
        """Look at the policy file at most every ``relay_interval`` s; forget decisions if it changed."""
        now = self._clock()
        if now - self._looked_at < self.policy.relay_interval:
            return
        self._looked_at = now
        rules = self.policy.current()
        if rules is not self._rules:
            self._rules, self._decisions = rules, {}

    def _refuse(self, user: str, service: bytes, frames, why: str) -> None:
        self.refused += 1
        now, key = self._clock(), (user, service)
        if _log.isEnabledFor(logging.WARNING) and self._log_limit.due(key, now):
            _log.warning("broadcast for %r from key %r not relayed: %s (%d frames)",
                         service.decode("utf-8", "replace"), user, why, len(frames))


def _move(source, destination) -> None:
    """Pass up to a batch of whole messages from ``source`` to ``destination`` unchanged."""
    recv, send = source.recv, fast_send(destination)
    for _ in range(_BATCH):
        try:
            frame = recv(_NOBLOCK, False)
        except zmq.Again:
            return
        while frame.more:
            send(frame, _MORE)
            frame = recv(_NOBLOCK, False)
        try:
            send(frame, _NOBLOCK)
        except zmq.Again:
            pass
