"""Which dispatcher names are registered at which socket, and whether they are alive.

The registry owns the dispatcher records: by service and name, and by the routing id of
their socket. It decides registrations (``welcome``; a ``ready`` or heartbeat answer from a
socket the name is not registered at), asking the :class:`~.keys.KeyRules` under CURVE, and
runs liveness: a record is alive for ``EXPIRY_MULTIPLE`` T (5 T) after its socket's last message, and gets a
heartbeat when it is ready and idle for T. What a registration answers comes back as
:data:`~.answers.Out`; a record it replaced, or that expired, goes back to the caller, whose
is the duty of answering that record's requests in flight (:meth:`BrokerCore._retire`).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Iterator, Literal, Mapping, overload

from ...protocol import EXPIRY_MULTIPLE, Command, LocalProtocolError, Message, Text, encode, kinds
from .answers import OncePerPeriod, Out, answer
from .keys import KeyRules
from .limits import Limits
from .stats import DropLog, Stats, log


#: What a look-up of nothing gives: empty, and nobody can add to it (shared by the core's parts).
NOTHING: Mapping = MappingProxyType({})


def heard_from(now: float, timeout: float) -> tuple[float, float]:
    """(``expire_at``, ``next_beat_at``) of a dispatcher something arrived from at ``now``: it
    is alive for EXPIRY_MULTIPLE T more, idle from now (T: ``timeout``)."""
    return now + EXPIRY_MULTIPLE * timeout, now + timeout


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
        self.expire_at, self.next_beat_at = heard_from(now, timeout)

    def sent(self, identifier: bytes) -> None:
        """The broker sent it a message of its own with ``identifier`` (the oldest of too many forgotten)."""
        unanswered = self.unanswered
        if len(unanswered) >= self.MAX_UNANSWERED:
            del unanswered[next(iter(unanswered))]
        unanswered[identifier] = None

    @overload
    def deadline(self, heartbeat: Literal[True]) -> float: ...
    @overload
    def deadline(self, heartbeat: bool) -> float | None: ...

    def deadline(self, heartbeat: bool) -> float | None:
        if not heartbeat:
            return None
        return min(self.expire_at, self.next_beat_at) if self.ready else self.expire_at

    def __repr__(self) -> str:
        return f"<Dispatcher {self.service}/{self.name} at {self.peer.hex()}>"


class Challenge:
    """A welcome for a name another connection holds, waiting for the holder to show it is alive.

    The holder was sent a heartbeat; any message from its socket before ``deadline`` (T) keeps
    it the name and the newcomer is refused; silence (or its connection found closed) gives the
    name to the newcomer.
    """

    __slots__ = ("holder", "peer", "welcomes", "key", "since", "deadline")

    #: Welcomes of the newcomer's one socket that wait together (more are refused at once).
    MAX_WAITING = 8

    def __init__(self, holder: DispatcherRecord, peer: bytes, welcome: Message, key: str | None, now: float,
                 timeout: float):
        self.holder, self.peer, self.key = holder, peer, key
        self.welcomes = [welcome]  #: the newcomer's welcomes, all answered alike
        self.since = now  #: when the welcome came (the newcomer's last sign of life)
        self.deadline = now + timeout


class Registry:
    """The dispatcher records, their registration and their liveness (see the module docstring).

    ``services``: service key -> dispatcher name -> record; ``by_peer``: routing id ->
    (service key, name) -> record. A service is here only while it has a dispatcher.
    """

    #: Addresses of connections without a record kept for log lines, at most.
    MAX_ADDRESSES = 4096

    def __init__(self, stats: Stats, drops: DropLog, keys: KeyRules, *, timeout: float, heartbeat: bool,
                 name: str):
        self.stats, self.drops, self.keys = stats, drops, keys
        self.timeout = float(timeout)  #: the heartbeat period T
        self.heartbeat = bool(heartbeat)
        self.name = name  #: the broker's name, in log lines
        self.services: dict[str, dict[str, DispatcherRecord]] = {}
        self.by_peer: dict[bytes, dict[tuple[str, str], DispatcherRecord]] = {}
        self.count = 0  #: records registered, in all
        #: welcomes for held names, by the holder's (service key, name), waiting on the holder
        self.challenges: dict[tuple[str, str], Challenge] = {}
        self.limits = Limits()  #: the broker's limits (the core sets them)
        #: routing id -> the network address of its connection, for log lines (:meth:`note_address`)
        self.addresses: dict[bytes, str] = {}
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
        """The earliest expiry, heartbeat or name check due (None with heartbeats off or nothing registered)."""
        if not self.heartbeat:
            return None
        due = min((r.deadline(True) for r in self.records()), default=None)
        checks = min((c.deadline for c in self.challenges.values()), default=None)
        return checks if due is None else due if checks is None else min(due, checks)

    # -- changing ------------------------------------------------------------------------

    def add(self, record: DispatcherRecord) -> None:
        self.services.setdefault(record.service, {})[record.name] = record
        self.by_peer.setdefault(record.peer, {})[(record.service, record.name)] = record
        self.count += 1

    def remove(self, record: DispatcherRecord) -> None:
        """Forget ``record`` (its requests in flight are the caller's to answer)."""
        dispatchers = self.services.get(record.service)
        if dispatchers is not None and dispatchers.get(record.name) is record:
            del dispatchers[record.name]
            self.count -= 1
            if not dispatchers:
                del self.services[record.service]
        at_peer = self.by_peer.get(record.peer)
        if at_peer is not None and at_peer.get((record.service, record.name)) is record:
            del at_peer[(record.service, record.name)]
            if not at_peer:
                del self.by_peer[record.peer]

    def seen(self, at_peer: Mapping[tuple[str, str], DispatcherRecord], now: float) -> Out | None:
        """Any message from a registered dispatcher's socket (``at_peer``: its records, as
        :meth:`at` gives them) is a sign of life: a welcome waiting on it for a name it holds
        is refused (what to send; None when no welcome waits)."""
        expire_at, next_beat_at = heard_from(now, self.timeout)
        for record in at_peer.values():
            record.expire_at = expire_at
            record.next_beat_at = next_beat_at
        return self._holder_answered(at_peer, now) if self.challenges else None

    # -- what dispatchers send: DBQ ---------------------------------------------------------

    def welcome(self, peer: bytes, message: Message, now: float,
                key: str | None) -> tuple[DispatcherRecord | None, Out]:
        """Register (service, name) at ``peer``; a new socket takes a name whose holder is gone.

        A name held at another socket by a dispatcher not yet expired is not taken at once:
        the holder is sent a heartbeat, and the welcome waits up to T for it (a
        :class:`Challenge`; see :meth:`seen`, :meth:`checks_due`, :meth:`holder_gone`).
        Gives (the record replaced, whose requests the caller answers; what to send).
        """
        old = self.get(message.service_key, message.dispatcher)  # type: ignore[arg-type]
        if old is not None and old.peer == peer:
            old.sent(message.identifier)
            self._log_event("dispatcher %s/%s at %s welcomed again from the same connection", old.service, old.name,
                            self.where(peer))
            return None, [answer(peer, message, kinds.confirmed(message))]
        refused = self._refusal(peer, message, old, key, now)
        if refused is not None:
            return None, refused
        if old is not None and self.heartbeat and now < old.expire_at:
            return None, self._challenge(old, peer, message, key, now)
        return self._register(peer, message, now, key, old)

    def _register(self, peer: bytes, message: Message, now: float, key: str | None,
                  old: DispatcherRecord | None) -> tuple[DispatcherRecord | None, Out]:
        """Register the welcome's name at ``peer`` (replacing ``old``), alive since ``now``; its confirmation."""
        record = DispatcherRecord(message.service, message.dispatcher, peer, now, self.timeout, key)  # type: ignore[arg-type]
        if old is not None:
            self.remove(old)
        self.add(record)
        self.stats.registered += 1
        if old is not None:
            self.stats.replaced += 1
            self._log_event("dispatcher %s/%s moved from %s to %s", record.service, record.name,
                            self.where(old.peer), self.where(peer))
        else:
            self._log_event("dispatcher %s/%s registered at %s%s", record.service, record.name, self.where(peer),
                            "" if key is None else f" (key {key})")
        record.sent(message.identifier)
        return old, [answer(peer, message, kinds.confirmed(message))]

    def _refusal(self, peer: bytes, message: Message, old: DispatcherRecord | None, key: str | None,
                 now: float) -> Out | None:
        """What to send for a registration refused (maybe nothing: told already), or None."""
        for refused in (self._unsendable(peer, message), self.keys.refusal(peer, message, old, key, now)):
            if refused is not None:
                return refused
        return self._over_limits(peer, message, now)

    def _over_limits(self, peer: bytes, message: Message, now: float) -> Out | None:
        """The refusal of a registration past ``max_name_length``, ``max_dispatchers`` or
        ``max_dispatchers_per_connection``; else None."""
        limits = self.limits
        longest = max(len(message.service or ""), len(message.dispatcher or ""))
        if longest > limits.max_name_length:
            limit, what = "max_name_length", f"a name of {longest} characters"
        elif self.count >= limits.max_dispatchers:
            limit, what = "max_dispatchers", f"dispatcher '{message.dispatcher}' of '{message.service}' not registered"
        elif len(self.by_peer.get(peer, NOTHING)) >= limits.max_dispatchers_per_connection:
            limit, what = ("max_dispatchers_per_connection",
                           f"dispatcher '{message.dispatcher}' of '{message.service}' not registered")
        else:
            return None
        self.stats.registrations_refused += 1
        self.stats.over_limit(limit)
        self.drops.note(limit, now, logging.WARNING, "%s: refused %s of %s/%s at %s: over the limit %s = %s",
                        self.name, message.command, message.service_key, message.dispatcher, self.where(peer), limit,
                        getattr(limits, limit))
        text = Text.OVER_LIMIT.format(what=what[0].upper() + what[1:], limit=limit, value=getattr(limits, limit))
        self.stats.error("over_limit")
        return [answer(peer, message, message.error(text))]

    # -- a welcome for a held name: the holder is checked first --------------------------------

    def _challenge(self, holder: DispatcherRecord, peer: bytes, message: Message, key: str | None,
                   now: float) -> Out:
        """Send the holder a heartbeat; the welcome waits for T (one waiting welcome per name)."""
        name_key = (holder.service, holder.name)
        waiting = self.challenges.get(name_key)
        if waiting is not None:
            if waiting.peer != peer or len(waiting.welcomes) >= Challenge.MAX_WAITING:
                return [self._refuse_challenger(peer, message, holder, now)]
            if any(w.identifier == message.identifier for w in waiting.welcomes):
                self.drops.drop("welcome_waits_for_holder", now, peer, message)  # its one answer is on its way
            else:
                waiting.welcomes.append(message)
            return []
        self.challenges[name_key] = Challenge(holder, peer, message, key, now, self.timeout)
        beat = kinds.heartbeat(holder.service_name, holder.name)
        holder.sent(beat.identifier)
        self.stats.heartbeats += 1
        self._log_event("dispatcher %s/%s: a welcome from %s for the name held at %s; checking the holder",
                        holder.service, holder.name, self.where(peer), self.where(holder.peer))
        return [encode(beat, (holder.peer, b""))]

    def _refuse_challenger(self, peer: bytes, message: Message, holder: DispatcherRecord, now: float) -> list[bytes]:
        self.stats.registrations_refused += 1
        self.stats.error("name_held")
        self.drops.note(("name_held", holder.service, holder.name), now, logging.WARNING,
                        "%s: refused the welcome of %s/%s from %s: the name is held by the live dispatcher at %s",
                        self.name, holder.service, holder.name, self.where(peer), self.where(holder.peer))
        return answer(peer, message, message.error(Text.NAME_HELD.format(dispatcher=holder.name,
                                                                         service=message.service)))

    def _holder_answered(self, at_peer: Mapping[tuple[str, str], DispatcherRecord], now: float) -> Out:
        """The holder of names waited on showed it is alive: the waiting welcomes are refused."""
        out: Out = []
        for name_key, record in at_peer.items():
            challenge = self.challenges.get(name_key)
            if challenge is not None and challenge.holder is record:
                del self.challenges[name_key]
                out += [self._refuse_challenger(challenge.peer, w, record, now) for w in challenge.welcomes]
        return out

    def checks_due(self, now: float) -> list[tuple[DispatcherRecord | None, Out]]:
        """The welcomes whose holder stayed silent for T: each takes its name (the record
        replaced, whose requests the caller answers; the confirmation)."""
        due = [k for k, c in self.challenges.items() if now >= c.deadline]
        return [self._concede(self.challenges.pop(name_key), now) for name_key in due]

    def holder_gone(self, peer: bytes, now: float) -> list[tuple[DispatcherRecord | None, Out]]:
        """The connection of ``peer`` is closed (a send to it failed): welcomes waiting on a
        name it holds take the name at once."""
        gone = [k for k, c in self.challenges.items() if c.holder.peer == peer]
        return [self._concede(self.challenges.pop(name_key), now) for name_key in gone]

    def _concede(self, challenge: Challenge, now: float) -> tuple[DispatcherRecord | None, Out]:
        holder = challenge.holder
        current = self.get(holder.service, holder.name)
        if current is not None and current is not holder:  # another socket registered it meanwhile
            return None, [self._refuse_challenger(challenge.peer, w, current, now) for w in challenge.welcomes]
        self._log_event("dispatcher %s/%s: the holder at %s did not answer; the name goes to %s",
                        holder.service, holder.name, self.where(holder.peer), self.where(challenge.peer))
        first, *more = challenge.welcomes
        replaced, out = self._register(challenge.peer, first, challenge.since, challenge.key, current)
        record = self.get(holder.service, holder.name)
        for welcome in more:  # the same socket's other welcomes: confirmed too
            record.sent(welcome.identifier)  # type: ignore[union-attr]
            out.append(answer(challenge.peer, welcome, kinds.confirmed(welcome)))
        return replaced, out

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
            refused = self._refusal(peer, message, None, key, now)
            if refused is not None:
                return refused
            record = DispatcherRecord(message.service, name, peer, now, self.timeout, key)  # type: ignore[arg-type]
            record.ready = True
            self.add(record)
            self.stats.readmitted += 1
            self._log_event("dispatcher %s/%s at %s registered again by its %s (no welcome)",
                            record.service, name, self.where(peer), message.command)
            return []
        if not self._told_to_welcome(peer, now):
            self.drops.drop("not_registered_told_already", now, peer, message)
            return []
        text = Text.DISPATCHER_NOT_REGISTERED.format(dispatcher=name, service=message.service)
        self.stats.error("dispatcher_not_registered")
        return [answer(peer, message, message.error(text))]

    def _unsendable(self, peer: bytes, message: Message) -> Out | None:
        """The refusal of a registration whose service or name no heartbeat could carry (the
        texts "\\x01" and "\\x02" alone, which every reader takes for the sentinels); else None."""
        try:
            # what liveness will send it (a registration has both names: check_kind)
            kinds.heartbeat(message.service, message.dispatcher)  # type: ignore[arg-type]
        except LocalProtocolError as exc:
            self.stats.refused += 1
            self.stats.error("malformed_request")
            return [answer(peer, message, message.error(Text.MALFORMED_REQUEST.format(reason=exc)))]
        return None

    def unknown_command(self, peer: bytes, message: Message) -> Out:
        """A DBQ of a command the broker does not know: an error (counted as unanswered)."""
        record = self.registered(peer, message.service_key, message.dispatcher)  # type: ignore[arg-type]
        if record is not None:
            record.sent(message.identifier)
        self.stats.error("unknown_command")
        return [answer(peer, message, message.error(Text.UNKNOWN_COMMAND))]

    # -- liveness ------------------------------------------------------------------------

    def grace(self, now: float) -> None:
        """The broker itself was stalled (its loop did not turn for longer than T): no dispatcher
        is expired before it has had a fresh heartbeat (due now) and its full expiry period
        (EXPIRY_MULTIPLE T) to answer it, and a welcome waiting on a holder waits T more."""
        timeout = self.timeout
        for record in self.records():
            record.expire_at = max(record.expire_at, now + EXPIRY_MULTIPLE * timeout)
            record.next_beat_at = now
        for challenge in self.challenges.values():
            challenge.deadline = max(challenge.deadline, now + timeout)

    def due(self, now: float) -> list[tuple[DispatcherRecord, list[bytes] | None]]:
        """Each record with something due at ``now``, in registration order: (record, its
        heartbeat) for a ready one idle for T, (record, None) for one silent for EXPIRY_MULTIPLE T (expired:
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

    def note_address(self, peer: bytes, address: str) -> None:
        """The network address (``Peer-Address``: the IP) of the connection ``peer``, for log
        lines; kept while it has records (at most ``MAX_ADDRESSES`` otherwise)."""
        addresses = self.addresses
        if len(addresses) >= self.MAX_ADDRESSES and peer not in addresses:
            for gone in [p for p in addresses if p not in self.by_peer]:
                del addresses[gone]
        if len(addresses) < self.MAX_ADDRESSES or peer in addresses:
            addresses[peer] = address

    def where(self, peer: bytes) -> str:
        """A connection as a log line names it: its address when known, and its routing id."""
        address = self.addresses.get(peer)
        return f"{address} (connection {peer.hex()})" if address else f"connection {peer.hex()}"

    def _log_event(self, text: str, *args: object) -> None:
        log.log(logging.INFO, "%s: " + text, self.name, *args)
