"""Which dispatcher names are registered at which socket, and whether they are alive.

The registry owns the dispatcher records: by service and name, and by the routing id of
their socket. It decides registrations (``welcome``; a ``ready`` or heartbeat answer from a
socket the name is not registered at), asking the :class:`~.keys.KeyRules` under CURVE, and
runs liveness: a record is alive for 5 T after its socket's last message, and gets a
heartbeat when it is ready and idle for T. What a registration answers comes back as
:data:`~.answers.Out`; a record it replaced, or that expired, goes back to the caller, whose
is the duty of answering that record's requests in flight (:meth:`BrokerCore._retire`).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Iterator, Mapping

from ...protocol import Command, LocalProtocolError, Message, Text, encode, kinds
from .answers import OncePerPeriod, Out, answer
from .keys import KeyRules
from .stats import DropLog, Stats, log


#: What a look-up of nothing gives: empty, and nobody can add to it (shared by the core's parts).
NOTHING: Mapping = MappingProxyType({})


class DispatcherRecord:
    """One dispatcher name of one service, registered at one socket (routing id)."""

    __slots__ = ("service", "service_name", "name", "peer", "key", "ready", "expire_at", "next_beat_at",
                 "unanswered")

    #: The broker's own messages (replies, heartbeats) ``unanswered`` counts at most.
    MAX_UNANSWERED = 64

    def __init__(self, service_name: str, name: str, peer: bytes, now: float, timeout: float,
                 key: str | None = None):
        self.service = service_name.upper()  #: the service key
        self.service_name = service_name  #: the service name as the dispatcher wrote it
        self.name = name  #: the dispatcher name, case-sensitive
        self.peer = peer
        self.key = key  #: the CURVE key its socket authenticated with (None without CURVE)
        self.ready = False  #: heartbeats start once the dispatcher said ``ready``
        #: identifiers of the broker's own messages to it (a welcome's ``confirmed``, heartbeats,
        #: errors) no message from it has carried since: the rest of the existing ``active`` count
        self.unanswered: dict[bytes, None] = {}
        self.expire_at = self.next_beat_at = 0.0
        self.seen(now, timeout)

    def seen(self, now: float, timeout: float) -> None:
        """Something arrived from this dispatcher: it is alive for 5 T more, idle from now."""
        self.expire_at = now + 5 * timeout
        self.next_beat_at = now + timeout

    def sent(self, identifier: bytes) -> None:
        """The broker sent it a message of its own with ``identifier`` (the oldest of too many forgotten)."""
        unanswered = self.unanswered
        if len(unanswered) >= self.MAX_UNANSWERED:
            del unanswered[next(iter(unanswered))]
        unanswered[identifier] = None

    def deadline(self, heartbeat: bool) -> float | None:
        if not heartbeat:
            return None
        return min(self.expire_at, self.next_beat_at) if self.ready else self.expire_at

    def __repr__(self) -> str:
        return f"<Dispatcher {self.service}/{self.name} at {self.peer.hex()}>"


class Registry:
    """The dispatcher records, their registration and their liveness (see the module docstring).

    ``services``: service key -> dispatcher name -> record; ``by_peer``: routing id ->
    (service key, name) -> record. A service is here only while it has a dispatcher.
    """

    def __init__(self, stats: Stats, drops: DropLog, keys: KeyRules, *, timeout: float, heartbeat: bool,
                 name: str):
        self.stats, self.drops, self.keys = stats, drops, keys
        self.timeout = float(timeout)  #: the heartbeat period T
        self.heartbeat = bool(heartbeat)
        self.name = name  #: the broker's name, in log lines
        self.services: dict[str, dict[str, DispatcherRecord]] = {}
        self.by_peer: dict[bytes, dict[tuple[str, str], DispatcherRecord]] = {}
        self._told_to_welcome = OncePerPeriod(self.timeout)

    # -- looking up --------------------------------------------------------------------

    def dispatchers(self, service: str) -> Mapping[str, DispatcherRecord]:
        """The records of service key ``service`` by name (empty when it has none; never created)."""
        return self.services.get(service, NOTHING)

    def get(self, service: str, name: str | None) -> DispatcherRecord | None:
        return self.services.get(service, NOTHING).get(name)  # type: ignore[arg-type]

    def at(self, peer: bytes) -> Mapping[tuple[str, str], DispatcherRecord]:
        """The records registered at the socket ``peer`` (empty for a stranger)."""
        return self.by_peer.get(peer, NOTHING)

    def registered(self, peer: bytes, service: str, name: str) -> DispatcherRecord | None:
        return self.by_peer.get(peer, NOTHING).get((service, name))

    def records(self) -> Iterator[DispatcherRecord]:
        for dispatchers in self.services.values():
            yield from dispatchers.values()

    def deadline(self) -> float | None:
        """The earliest expiry or heartbeat due (None with heartbeats off or nothing registered)."""
        heartbeat = self.heartbeat
        return min((r.deadline(heartbeat) for r in self.records()), default=None) if heartbeat else None

    # -- changing ------------------------------------------------------------------------

    def add(self, record: DispatcherRecord) -> None:
        self.services.setdefault(record.service, {})[record.name] = record
        self.by_peer.setdefault(record.peer, {})[(record.service, record.name)] = record

    def remove(self, record: DispatcherRecord) -> None:
        """Forget ``record`` (its requests in flight are the caller's to answer)."""
        dispatchers = self.services.get(record.service)
        if dispatchers is not None and dispatchers.get(record.name) is record:
            del dispatchers[record.name]
            if not dispatchers:
                del self.services[record.service]
        at_peer = self.by_peer.get(record.peer)
        if at_peer is not None and at_peer.get((record.service, record.name)) is record:
            del at_peer[(record.service, record.name)]
            if not at_peer:
                del self.by_peer[record.peer]

    def seen(self, peer: bytes, now: float) -> None:
        """Any message from a registered dispatcher's socket is a sign of life."""
        at_peer = self.by_peer.get(peer)
        if at_peer:
            timeout = self.timeout
            for record in at_peer.values():
                record.seen(now, timeout)

    # -- what dispatchers send: DBQ ---------------------------------------------------------

    def welcome(self, peer: bytes, message: Message, now: float,
                key: str | None) -> tuple[DispatcherRecord | None, Out]:
        """Register (service, name) at ``peer``; a new socket replaces the old one.

        Gives (the record replaced, whose requests the caller answers; what to send).
        """
        old = self.get(message.service_key, message.dispatcher)  # type: ignore[arg-type]
        record, replaced = old, None
        if old is None or old.peer != peer:
            refused = self._unsendable(peer, message) or self.keys.refusal(peer, message, old, key, now)
            if refused is not None:
                return None, refused
            record = DispatcherRecord(message.service, message.dispatcher, peer, now, self.timeout, key)  # type: ignore[arg-type]
            self.add(record)
            self.stats.registered += 1
            if old is not None:
                self.stats.replaced += 1
                self._log_event("dispatcher %s/%s moved from %s to %s", record.service, record.name,
                                old.peer.hex(), peer.hex())
                replaced = old
        record.sent(message.identifier)  # type: ignore[union-attr]
        return replaced, [answer(peer, message, kinds.confirmed(message))]

    def alive(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """``ready`` or a heartbeat answer: nothing to send, unless it is a stranger's."""
        record = self.registered(peer, message.service_key, message.dispatcher)  # type: ignore[arg-type]
        if record is None:
            return self._stranger(peer, message, now, key)
        record.unanswered.pop(message.identifier, None)  # e.g. its answer to a heartbeat
        if message.command == Command.READY:
            record.ready = True
        return []

    def _stranger(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """``ready`` or a heartbeat answer from a socket the name is not registered at.

        The dispatcher is evidently alive (an existing Cauldron dispatcher welcomes once in
        its life: after it stalled past expiry, or the broker restarted, it only answers
        heartbeats), so a free name is registered again at this socket, ready, with no
        reply. A name held by another socket is not taken without a welcome: the sender is
        told to welcome, at most once per T per socket (an existing dispatcher answers a DBE
        with a DBQ, so answering every one would be an endless ping-pong).
        """
        name = message.dispatcher
        if self.get(message.service_key, name) is None:  # type: ignore[arg-type]
            refused = self._unsendable(peer, message) or self.keys.refusal(peer, message, None, key, now)
            if refused is not None:
                return refused
            record = DispatcherRecord(message.service, name, peer, now, self.timeout, key)  # type: ignore[arg-type]
            record.ready = True
            self.add(record)
            self.stats.readmitted += 1
            self._log_event("dispatcher %s/%s at %s registered again by its %s (no welcome)",
                            record.service, name, peer.hex(), message.command)
            return []
        if not self._told_to_welcome(peer, now):
            self.drops.drop("not_registered_told_already", now, peer, message)
            return []
        text = Text.DISPATCHER_NOT_REGISTERED.format(dispatcher=name, service=message.service)
        return [answer(peer, message, message.error(text))]

    def _unsendable(self, peer: bytes, message: Message) -> Out | None:
        """The refusal of a registration whose service or name no heartbeat could carry (the
        texts "\\x01" and "\\x02" alone, which every reader takes for the sentinels); else None."""
        try:
            kinds.heartbeat(message.service, message.dispatcher)  # what liveness will send it
        except LocalProtocolError as exc:
            self.stats.refused += 1
            return [answer(peer, message, message.error(Text.MALFORMED_REQUEST.format(reason=exc)))]
        return None

    def unknown_command(self, peer: bytes, message: Message) -> Out:
        """A DBQ of a command the broker does not know: an error (counted as unanswered)."""
        record = self.registered(peer, message.service_key, message.dispatcher)  # type: ignore[arg-type]
        if record is not None:
            record.sent(message.identifier)
        return [answer(peer, message, message.error(Text.UNKNOWN_COMMAND))]

    # -- liveness ------------------------------------------------------------------------

    def due(self, now: float) -> list[tuple[DispatcherRecord, list[bytes] | None]]:
        """Each record with something due at ``now``, in registration order: (record, its
        heartbeat) for a ready one idle for T, (record, None) for one silent for 5 T (expired:
        still registered; the caller retires it)."""
        if not self.heartbeat:
            return []
        due: list[tuple[DispatcherRecord, list[bytes] | None]] = []
        for record in list(self.records()):
            if now >= record.expire_at:
                due.append((record, None))
            elif record.ready and now >= record.next_beat_at:
                beat = kinds.heartbeat(record.service_name, record.name)
                record.sent(beat.identifier)
                record.next_beat_at = now + self.timeout
                self.stats.heartbeats += 1
                due.append((record, encode(beat, (record.peer, b""))))
        return due

    def _log_event(self, text: str, *args: object) -> None:
        log.log(logging.INFO, "%s: " + text, self.name, *args)
