"""The broadcast relay's book of subscriptions: which ones the XPUB may apply (``max_subscriptions``),
which go upstream, and which subscriber must be cut off. No I/O: connections come in as keys.

Theory of operation
-------------------
The XPUB runs with ZMQ_XPUB_MANUAL: libzmq hands every (un)subscription to the relay, and one
is applied (to the subscriber it came from) only by ``setsockopt(SUBSCRIBE)`` right after it was
received. What libzmq 4.3.5 does meanwhile, and what this book follows from it:

* A *subscription held* is one (topic, subscriber connection) pair applied: ``held`` counts them,
  for all subscribers, and :meth:`subscribe` applies one only while ``held < limit``
  (unsubscriptions are always applied). A subscriber is known by its connection's file
  descriptor (the ``__fd`` property of the message; ``None`` for inproc, which has none).
* libzmq keeps *every* subscription it read in a trie of its own (for the unsubscriptions it
  reports when the subscriber goes), applied or not: a refused one still costs the broker
  memory until its subscriber leaves. So the refused ones held are counted too, per connection,
  and when more than ``limit`` are held in all, the subscriber that sent the latest one is to be
  cut off (:meth:`subscribe` says so); libzmq then frees all it held for it.
* A refused subscription cannot be applied later (libzmq applies one only for the sender of
  the message just received), so when there is room again the connections holding refused
  ones are cut off too (:meth:`waiting`): a libzmq SUB connects again and subscribes anew.
* Upstream (to publishers, through the XSUB) goes only a topic's first holder and its last
  leaving, as a non-manual XPUB does: the XSUB's own trie holds each distinct topic once.
* libzmq reads a subscriber's subscriptions into its trie as fast as they come, however fast
  the relay decides, unless the XPUB's RCVHWM (``SUBSCRIPTIONS_AHEAD``, 2) keeps it in lock-step.
* libzmq says neither which subscriber an unsubscription on termination was for (it carries no
  properties) nor that one went: the relay learns that from the XPUB's monitor
  (DISCONNECTED with the file descriptor) and calls :meth:`gone`. Unsubscriptions without
  properties count only for ``None`` (an inproc subscriber), which is kept as a multiset.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

__all__ = ["Subscriptions", "Decision", "SUBSCRIPTIONS_AHEAD", "subscription_size"]

#: Subscriptions the XPUB queues from one subscriber (its RCVHWM): libzmq takes a subscription
#: into its own trie and its unbounded queue for the relay as soon as it reads it, whatever the
#: relay decides. Its reading loop (``xread_activated``) goes on for as long as the I/O thread
#: refills the pipe, which it does each time half the RCVHWM has been read: with 16 (or 1000) it
#: outran the relay without end (a backlog of a million (un)subscriptions after a flood, held
#: 5 s and more after the attacker left); with 2 it reads in lock-step with the relay. Not 1:
#: libzmq counts the credential message that starts a CURVE connection's pipe as written but
#: not as read, and with 1 that pipe stays full for good (no subscription of it arrives).
SUBSCRIPTIONS_AHEAD = 2

#: bytes the XPUB takes in one frame whatever the names: its peers' handshake commands (a CURVE
#: INITIATE with its metadata) must fit
_HANDSHAKE_SIZE = 512


def subscription_size(limits) -> int:
    """The largest frame in bytes the XPUB takes (its MAXMSGSIZE): a subscription to the longest
    service frame (``max_name_length`` characters of at most 4 bytes behind a sentinel byte,
    after the (un)subscribe byte or a ZMTP 3.1 SUBSCRIBE command's name), or a handshake."""
    return max(_HANDSHAKE_SIZE, 4 * limits.max_name_length + 2 + len(b"\x09SUBSCRIBE") + 8)


class Decision(NamedTuple):
    apply: bool  #: setsockopt it on the XPUB (for the subscriber it came from)
    upstream: bool  #: pass it to the XSUB (a topic's first holder, or its last leaving)
    cut_off: bool = False  #: disconnect that subscriber (refused ones held past the limit)


_REFUSED = Decision(False, False)
_REFUSED_CUT = Decision(False, False, True)


class Subscriptions:
    """The subscriptions held, by connection (see the module docstring)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0  #: (topic, connection) pairs applied now
        self.refused_held = 0  #: refused subscriptions libzmq keeps for connections still open
        #: topics by subscriber connection: a set each, and for inproc subscribers (None) a Counter
        self._topics: dict[object, Any] = {None: Counter()}
        self._holders: Counter = Counter()  # topic -> connections holding it
        self._refused: Counter = Counter()  # connection -> refused subscriptions libzmq keeps for it

    def subscribe(self, conn: object, topic: bytes) -> Decision:
        """A subscription ``topic`` received from ``conn``."""
        topics: Any = self._topics.get(conn)
        if topics is not None and conn is not None and topic in topics:
            return Decision(True, False)  # again: libzmq keeps one per subscriber
        if self.held >= self.limit:
            if conn is None:
                return _REFUSED  # inproc: nothing to cut off, and libzmq's count of it is not visible
            self._refused[conn] += 1
            self.refused_held += 1
            return _REFUSED_CUT if self.refused_held > self.limit else _REFUSED
        if topics is None:
            topics = self._topics[conn] = set()
        if conn is None:
            topics[topic] += 1
        else:
            topics.add(topic)
        self.held += 1
        self._holders[topic] += 1
        return Decision(True, self._holders[topic] == 1)

    def unsubscribe(self, conn: object, topic: bytes) -> Decision:
        """An unsubscription ``topic`` received from ``conn`` (None also for a subscriber gone)."""
        topics = self._topics.get(conn)
        if topics is None or topic not in topics:
            if self._refused.get(conn):  # one of its refused ones (or never sent): libzmq forgets it
                self._refused[conn] -= 1
                self.refused_held -= 1
            return _REFUSED  # nothing applied to take back
        if conn is None:
            topics[topic] -= 1
            if not topics[topic]:
                del topics[topic]
        else:
            topics.discard(topic)
        self.held -= 1
        return Decision(True, self._release(topic))

    def gone(self, conn: object) -> list[bytes]:
        """Forget connection ``conn``; the topics nobody holds any longer (to unsubscribe upstream)."""
        self.refused_held -= self._refused.pop(conn, 0)
        topics = self._topics.pop(conn, None) if conn is not None else None
        if not topics:
            return []
        self.held -= len(topics)
        return [topic for topic in topics if self._release(topic)]

    def waiting(self) -> list[object]:
        """Connections with refused subscriptions, when there is room again for some of them."""
        return [conn for conn, refused in self._refused.items() if refused] if self.held < self.limit else []

    def _release(self, topic: bytes) -> bool:
        """One holder of ``topic`` fewer; whether it was the last."""
        self._holders[topic] -= 1
        if self._holders[topic]:
            return False
        del self._holders[topic]
        return True
