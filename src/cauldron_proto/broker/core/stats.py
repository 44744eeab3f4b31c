"""Counters of the routing core, and the rate-limited debug log of what it drops.

Time enters only as ``now`` (the caller's clock), so the rate limit is as testable as the
rest of the core: at most one log line per drop reason per ``interval`` seconds of ``now``,
saying how many drops of that reason were not logged since the last line.
"""

from __future__ import annotations

import logging
from typing import Protocol

import msgspec

log = logging.getLogger("cauldron_proto.broker.core")


class Stats(msgspec.Struct):
    """What the core has done since it was made; every field only grows."""

    received: int = 0  #: multipart messages handed to ``handle``
    sent: int = 0  #: multipart messages returned by ``handle`` and ``tick``
    dropped: int = 0  #: messages received and neither answered nor relayed
    dropped_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    refused: int = 0  #: requests answered with an error reply because their frames broke a rule
    registered: int = 0  #: welcomes that registered a dispatcher (new or from a new socket)
    replaced: int = 0  #: dispatchers that registered again from a new socket
    readmitted: int = 0  #: dispatchers registered again by a ready or heartbeat answer, without welcome
    expired: int = 0  #: dispatchers forgotten after EXPIRY_MULTIPLE T of silence
    heartbeats: int = 0  #: heartbeats sent
    timed_out: int = 0  #: requests answered 'Dispatcher Timed Out'
    fanouts: int = 0  #: fan-outs answered (merged, by deadline or after expiries)
    cache_hits: int = 0  #: identify fan-outs answered from the cache
    registrations_refused: int = 0  #: welcomes and re-admissions refused by the key rules (CURVE)
    #: messages, registrations and keywords over each limit, by the limit's name (``max_*``)
    limited: dict[str, int] = msgspec.field(default_factory=dict)
    #: error replies the broker itself sent, by the name of their text in the spec (``texts``)
    errors: dict[str, int] = msgspec.field(default_factory=dict)

    def error(self, kind: str, count: int = 1) -> None:
        """Count ``count`` error replies of the spec's text ``kind``."""
        self.errors[kind] = self.errors.get(kind, 0) + count

    def over_limit(self, limit: str) -> None:
        """Count one message, registration or keyword over the limit named ``limit``."""
        self.limited[limit] = self.limited.get(limit, 0) + 1


class DropCounts(Protocol):
    """What a :class:`DropLog` counts in: drops in all and by reason (:class:`Stats`, the relay's)."""

    dropped: int
    dropped_by_reason: dict[str, int]


class LogLimit:
    """At most one log line per key per ``interval`` seconds of the caller's clock (``now``).

    Keys may come from peers (a reason naming a key, a refused key), so at most ``bound`` are
    remembered: past that, all are forgotten at once.
    """

    def __init__(self, interval: float, bound: int = 4096):
        self.interval, self.bound = interval, bound
        self._last: dict[object, float] = {}

    def due(self, key: object, now: float) -> bool:
        """Whether a line of ``key`` may be logged at ``now`` (if so, it counts as logged)."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.bound:
            self._last.clear()
        self._last[key] = now
        return True


class DropLog:
    """Counts drops by reason and logs them at DEBUG, rate-limited per reason."""

    def __init__(self, stats: DropCounts, interval: float = 10.0, logger: logging.Logger = log):
        self.stats = stats
        self.interval = interval
        self.logger = logger
        self._limit = LogLimit(interval)
        self._unlogged: dict[object, int] = {}

    def drop(self, reason: str, now: float, peer: bytes, detail: object = "",
             level: int = logging.DEBUG) -> None:
        """Count a drop; log it unless one of ``reason`` was logged in the last ``interval``.

        At ERROR level (the core's own failure) the line carries the current exception.
        """
        stats = self.stats
        stats.dropped += 1
        stats.dropped_by_reason[reason] = stats.dropped_by_reason.get(reason, 0) + 1
        if self.logger.isEnabledFor(level):
            self.note(reason, now, level, "dropped from peer %s: %s %s", _hex(peer), reason, detail,
                      exc_info=level >= logging.ERROR)

    def note(self, reason: object, now: float, level: int, text: str, *args: object,
             exc_info: bool = False) -> None:
        """Log ``text % args`` unless a line of ``reason`` was logged in the last ``interval``
        (then count it, and say how many were not logged on the next line of ``reason``)."""
        if not self.logger.isEnabledFor(level):
            return
        if not self._limit.due(reason, now):
            if len(self._unlogged) >= self._limit.bound:  # reasons may name keys: bounded too
                self._unlogged.clear()
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        skipped = self._unlogged.pop(reason, 0)
        more = f" ({skipped} more since the last line)" if skipped else ""
        self.logger.log(level, text + "%s", *args, more, exc_info=exc_info)


def _hex(peer: object) -> str:
    return peer.hex() if isinstance(peer, bytes) else repr(peer)
