"""The broker's routing core: frames in, frames out, no I/O and no clock.

Theory of operation
-------------------
:class:`BrokerCore` is one class composing small owners of state, each of which returns what
to send and none of which sends or keeps output:

- :class:`~.registry.Registry`: the dispatcher records (by service and name, by socket),
  their registration and their liveness (heartbeats, expiry), asking the
  :class:`~.keys.KeyRules` under CURVE;
- :class:`~.requests.Requests`: the requests in flight at each dispatcher, routed by name
  or by the :class:`~.owners.LearnedOwners` of keywords;
- :class:`~.fanouts.FanOuts`: the questions to a whole service, merged.

The core reads each message, checks the rules every routed request must keep, hands it to
the owner it concerns, and joins what they do when one event touches several of them: a
dispatcher that leaves (expired, replaced, or its routing id reused) is removed from the
registry, and each of its requests in flight is answered (an error to its client, or an
unusable answer to its fan-out).

``handle(peer, frames, now)`` takes one multipart message as the broker's ROUTER received
it (``peer`` is the sender's routing id) and returns the multipart messages to send on the
ROUTER, each starting with its destination's routing id. ``tick(now)`` runs the timers
(heartbeats, expiry, fan-out deadlines); ``next_deadline()`` says when it next has work.
Time is only ever the caller's ``now``. Every frame is read and built by the codec (``protocol.codec``).

Invariants, true after every call:

1. Nothing raises: any frame list from any peer gives a (possibly empty) list of messages.
2. Every request gets exactly one answer. A request the broker serves is answered at once,
   or forwarded and remembered as *in flight* at one dispatcher under (pair, client routing
   id, identifier), so two clients may use the same identifier. An in-flight entry leaves
   exactly once: with the dispatcher's reply, or with an error when the dispatcher expires
   (``Dispatcher Timed Out``) or registers again from another socket
   (``Dispatcher 'X' re-registered before answering``). A reply with nothing in flight (a
   duplicate, or late after expiry) is dropped. The same request again while in flight
   (same client, identifier and dispatcher, or same fan-out) is not sent twice: its one
   answer is on its way.
3. A fan-out (CSQ) is in flight until every dispatcher it was sent to has answered, expired
   or been replaced (those count as unusable answers), or until its deadline; then the
   client gets the merged answer once and late copies are dropped. Dispatchers that register
   during a fan-out are not asked.
4. Memory is bounded by what is registered and in flight: there is no per-client record;
   a service exists only while it has a dispatcher (looking one up, or a request naming an
   unknown one, never creates it; a fan-out ends when the last dispatcher it waits for
   leaves); the identify cache goes with the service, learned keyword owners are kept a
   while longer (7.); :meth:`BrokerCore.audit` checks all of it. A dispatcher has at most
   ``max_in_flight`` requests in flight: more are answered ``Dispatcher 'X' has N requests
   in flight; try again later`` at once (a fan-out skips it, an unusable answer).
5. A dispatcher is routable from its ``welcome`` (heartbeats start at ``ready``) until it
   expires (``EXPIRY_MULTIPLE`` T without any message from its socket) or is replaced. Afterwards its socket is
   a stranger: its replies are dropped (their requests were answered already). A ``ready`` or
   heartbeat answer from a stranger shows the dispatcher alive: if its name is free it is
   registered again at that socket, ready (an existing Cauldron dispatcher never welcomes
   twice); if another socket holds the name it gets DBE ``Dispatcher 'X' is not registered
   for 'S'; send welcome``, at most once per T per socket (no ping-pong).
6. With CURVE (``handle(..., key=NAME)``), a dispatcher name belongs to the key that
   registered it, and a ``policy`` says which keys may serve which services: see
   :mod:`.keys`. Without CURVE (``key`` None) nothing of that applies.
7. Learned keyword owners outlive their service's last dispatcher by
   ``owners.owner_retention`` seconds (a day; at most ``owners.max_retained`` services): a
   dispatcher that comes back under the same name is routed to by keyword again, for
   clients that never identify twice.

Bad input. A message ``decode`` refuses is answered when it can be: if the codec can
:func:`~cauldron_proto.salvage` it (at least 7 frames and a valid direction code) and it is
a query (kind Q), it gets the error reply of its direction, payload
``Malformed message: <the codec's reason>``, back along the route it came by. A dispatcher
reply that breaks a rule answers its in-flight request with that error instead (never lost).
A well-formed query the broker cannot serve gets an error too: ``Malformed message: ...``
for a kind's field rules or a missing delimiter before a routed request (DBQ, CDQ, CSQ need
exactly ``[b""]`` before the envelope), ``The broker does not handle SDQ messages`` for a
query direction it has no handler for. Everything else (fewer than 7 frames, an unknown
direction code, broadcasts and replies nobody waits for, DBE) is dropped, counted in
``stats.dropped_by_reason`` and logged at DEBUG, at most once per reason per 10 s of ``now``.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from ...protocol.payloads import encode_status
from ...protocol import (ENVELOPE_SIZE, EXPIRY_MULTIPLE, Command, Direction, Kind, Message, RemoteProtocolError,
                         Text, check_kind, decode, salvage)
from .answers import DELIMITER, Out, answer, to_client
from .fanouts import FanOuts
from .limits import Limits
from .keys import KeyRules, ServicePolicy
from .latency import Latencies
from .owners import LearnedOwners
from .registry import DispatcherRecord, Registry
from .requests import ROUTED_REPLY, Requests
from .stats import DropLog, Stats, log
from .status import status
from .views import ServicesView, ServiceView

__all__ = ["BrokerCore"]


Handler = Callable[["BrokerCore", bytes, Message, float, "str | None"], Out]

#: The directions of a routed round trip, as names (an enum's attribute costs a look-up each time).
_CDQ, _CDP = Direction.CDQ, Direction.CDP


def _salvage_kept(frames: Sequence[bytes | None]) -> Message | None:
    """The message in the frames kept of one over a limit (a large envelope frame read as
    blank), or None: nothing to answer, or a large routing frame (the answer would carry it)."""
    if len(frames) < ENVELOPE_SIZE or None in frames[:-ENVELOPE_SIZE]:
        return None
    return salvage([b"" if frame is None else frame for frame in frames])


class BrokerCore:
    """The I/O-free routing core of the broker (see the module docstring).

    ``lookup_address``: what ``lookup`` answers (settable); ``timeout``: the heartbeat period
    T; ``heartbeat``: False for no heartbeats and no expiry; ``fanout_timeout``: seconds a
    fan-out waits; ``owner_retention``, ``max_retained``: how long, and for how many
    services, learned keyword owners outlive their service (:mod:`.owners`).
    """

    #: Requests in flight one dispatcher may have (``max_in_flight`` is settable per core).
    MAX_IN_FLIGHT = Requests.MAX_IN_FLIGHT

    def __init__(self, lookup_address: str, *, timeout: float = 1.0, heartbeat: bool = True,
                 fanout_timeout: float = 10.0, name: str = "broker", owner_retention: float = 86_400.0,
                 max_retained: int = 1024, limits: Limits | None = None):
        self.lookup_address = lookup_address  #: what ``lookup`` answers (settable)
        self.name = name
        self.stats = Stats()
        self.drops = DropLog(self.stats)
        self.keys = KeyRules(self.stats, self.drops, timeout=timeout, name=name)
        self.registry = Registry(self.stats, self.drops, self.keys, timeout=timeout, heartbeat=heartbeat, name=name)
        self.owners = LearnedOwners(owner_retention, max_retained)
        self.latencies = Latencies()  #: seconds from forwarding a routed request to relaying its reply
        self.requests = Requests(self.registry, self.owners, self.stats, self.drops, self.latencies)
        self.fanouts = FanOuts(self.registry, self.requests, self.owners, self.stats, self.drops,
                               timeout=fanout_timeout)
        self.now = 0.0  #: the ``now`` of the last call
        self._deadline: float | None = None
        self._deadline_stale = False
        self.limits = limits if limits is not None else Limits()
        #: What only the I/O layer knows, for ``status`` answers (:mod:`.status`): a callable
        #: giving a dict (``version``, ``uptime``, ``addresses``, ``bound``, ``curve``,
        #: ``relay``), called in the thread that calls ``handle``; None: not known.
        self.about: Callable[[], dict] | None = None

    # -- settings, read where their owner keeps them ------------------------------------------

    @property
    def timeout(self) -> float:
        """The heartbeat period T (seconds)."""
        return self.registry.timeout

    @property
    def heartbeat(self) -> bool:
        return self.registry.heartbeat

    @property
    def fanout_timeout(self) -> float:
        return self.fanouts.timeout

    @property
    def limits(self) -> Limits:
        """The limits the core keeps (:class:`~cauldron_proto.broker.core.limits.Limits`). Settable."""
        return self._limits

    @limits.setter
    def limits(self, value: Limits) -> None:
        self._limits = value
        self.requests.max_in_flight = value.max_in_flight
        self.registry.limits = self.owners.limits = value

    @property
    def max_in_flight(self) -> int:
        """Requests in flight one dispatcher may have; more are answered ``Dispatcher 'X' has N
        requests in flight; try again later`` at once (a fan-out skips it). Settable."""
        return self._limits.max_in_flight

    @max_in_flight.setter
    def max_in_flight(self, value: int) -> None:
        self.limits = self._limits.replace(max_in_flight=int(value))

    @property
    def policy(self) -> ServicePolicy | None:
        """With CURVE, who may register dispatchers of what (``allows(key, service)``;
        ``cauldron_proto.security.policy``), or None: any key may register a free name. Settable."""
        return self.keys.policy

    @policy.setter
    def policy(self, value: ServicePolicy | None) -> None:
        self.keys.policy = value

    # -- the three calls -------------------------------------------------------------------------

    def handle(self, peer: bytes, frames: Sequence[bytes], now: float,
               key: str | None = None) -> Out:
        """One message from the ROUTER (``frames`` after the routing id); what to send.

        ``key``: with CURVE, the name of the key the sender's connection authenticated with
        (its ZAP User-Id); the key rules of :mod:`.keys` apply. None: no CURVE, no key rules.
        """
        self.now = now
        stats = self.stats
        stats.received += 1
        try:
            retired = None if key is None else self._reused(peer, key, now)
            if not retired:
                at_peer = self.registry.by_peer.get(peer)
                if at_peer:
                    retired = self.registry.seen(at_peer, now)  # refusals of welcomes waiting on it, if any
            try:
                message = decode(frames)
            except RemoteProtocolError as exc:
                out = self._refused(peer, frames, exc, now)
            else:
                direction = message.direction
                # a routed round trip's two messages go straight to their handlers (the hot path)
                if direction is _CDQ:
                    out = self._client_dispatcher(peer, message, now, key)
                elif direction is _CDP:
                    out = self._dispatcher_reply(peer, message, now, key)
                else:
                    handler = self._HANDLERS.get(direction)
                    out = self._unhandled(peer, message, now) if handler is None else \
                        handler(self, peer, message, now, key)
            if retired:
                out = retired + out
        except Exception:  # noqa: BLE001 - the core must never take the broker down
            self._internal_error(peer, now)
            out = []
        stats.sent += len(out)
        return out

    def over_limit(self, peer: bytes, frames: Sequence[bytes | None] | None, size: int, count: int,
                   now: float) -> Out:
        """A message the serve loop read over ``max_message_size`` or ``max_frames`` (``size``
        bytes in ``count`` frames; ``frames``: its frames, None for each large one it did not
        keep, or None past ``max_frames``); what to send.

        A request over the size is answered ``<what>: over the broker's limit max_message_size
        = N``, and a dispatcher's reply over it answers its request with that error; anything
        else is dropped, counted by the limit's name and logged at WARNING once per interval.
        """
        self.now = now
        self.stats.received += 1
        limits = self._limits
        limit = "max_frames" if frames is None else "max_message_size"
        what = f"a message of {count} frames" if frames is None else f"a message of {size} bytes"
        text = Text.OVER_LIMIT.format(what=what, limit=limit, value=getattr(limits, limit))
        out: Out = []
        salvaged = None if frames is None else _salvage_kept(frames)
        if salvaged is not None:
            if salvaged.direction.kind == Kind.QUERY:
                self.stats.refused += 1
                self.stats.error("over_limit")
                out = [answer(peer, salvaged, salvaged.error(text))]
            elif salvaged.direction in ROUTED_REPLY:
                out = self._dispatcher_reply(peer, salvaged, now, error=text)
        self.limited(limit, now, peer, what, answered=bool(out))
        self.stats.sent += len(out)
        return out

    def limited(self, limit: str, now: float, peer: bytes, what: str, answered: bool) -> None:
        """Count a message over ``limit`` (dropped unless ``answered``) and log it at WARNING,
        at most once per limit per interval."""
        self.stats.over_limit(limit)
        if answered:
            self.drops.note(limit, now, logging.WARNING, "%s: %s from peer %s over the limit %s = %s: answered",
                            self.name, what, peer.hex(), limit, getattr(self._limits, limit))
        else:
            self.drops.drop(limit, now, peer, f"{what}: over the limit {limit} = {getattr(self._limits, limit)}",
                            level=logging.WARNING)

    def undelivered(self, failed: Sequence[tuple[list[bytes], bool]], now: float) -> Out:
        """Messages the ROUTER could not queue: ``(frames, gone)``, ``gone`` when the peer's
        connection is closed, else the peer is not reading (its queue is at
        ``max_queued_messages``). A request forwarded to a dispatcher is answered at once
        (``Dispatcher 'X' of 'S' has gone`` or ``Dispatcher 'X' is not reading``; a fan-out
        counts it unusable); anything else is counted dropped (``peer_gone``,
        ``peer_not_reading``). What to send."""
        out: Out = []
        for frames, gone in failed:
            if gone and self.registry.challenges:  # a holder whose name is waited on has gone
                out += self._conceded(self.registry.holder_gone(frames[0], now), now)
            found = self.requests.unsent(frames)
            if found is None:
                self.drops.drop("peer_gone" if gone else "peer_not_reading", now, frames[0],
                                level=logging.DEBUG if gone else logging.WARNING)
                continue
            record, client, entry = found
            if entry.fanout is not None:
                out += self.fanouts.answer(entry.fanout, record, None, now)
                continue
            if gone:
                text = Text.DISPATCHER_GONE.format(dispatcher=record.name, service=record.service_name)
            else:
                text = Text.DISPATCHER_NOT_READING.format(dispatcher=record.name,
                                                          count=self._limits.max_queued_messages)
            self.stats.error("dispatcher_gone" if gone else "dispatcher_not_reading")
            out.append(to_client(client, entry.request.error(text, dispatcher=record.name)))
        self.stats.sent += len(out)
        return out

    def tick(self, now: float) -> Out:
        """Heartbeats, expiry and fan-out deadlines due at ``now``; what to send."""
        self.now = now
        out: Out = []
        try:
            if self.registry.challenges:  # first: a newcomer silent since its welcome may expire below
                out += self._conceded(self.registry.checks_due(now), now)
            for record, beat in self.registry.due(now):
                if beat is None:
                    out += self._expire(record, now)
                else:
                    out.append(beat)
            out += self.fanouts.due(now)
            self.owners.purge(now)
            self._deadline_stale = True
        except Exception:  # noqa: BLE001
            self._internal_error(b"", now)
        self.stats.sent += len(out)
        return out

    def resume(self, now: float) -> None:
        """The caller's loop did not turn for longer than T (the broker process was stopped or
        starved): every dispatcher gets a fresh heartbeat and its full EXPIRY_MULTIPLE T before it
        may expire (a broker's stall is not the dispatchers' fault)."""
        self.now = now
        self.registry.grace(now)
        self._deadline_stale = True
        log.warning("%s: the broker did not run for a while; every dispatcher gets a fresh heartbeat and %s T",
                    self.name, EXPIRY_MULTIPLE)

    def _conceded(self, conceded: list[tuple[DispatcherRecord | None, Out]], now: float) -> Out:
        """Registrations done (the record each replaced, or None; what to send): a replaced
        record's requests in flight are answered first (re-registered before answering), then
        the confirmations."""
        out: Out = []
        for replaced, sent in conceded:
            if replaced is not None:
                out += self._retire(replaced, "dispatcher_replaced",
                                    Text.DISPATCHER_REPLACED.format(dispatcher=replaced.name), now)
            out += sent
        self._deadline_stale = True
        return out

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which ``tick`` may have work (None: nothing scheduled).

        Never later than the true next deadline; it may be earlier after traffic postponed
        one (``tick`` then does nothing and the next answer is exact).
        """
        if self._deadline_stale:
            self._deadline_stale = False
            deadlines = (self.registry.deadline(), self.fanouts.deadline())
            self._deadline = min((d for d in deadlines if d is not None), default=None)
        return self._deadline

    # -- introspection -------------------------------------------------------------------------

    def service(self, name: str, clock: Callable[[], float] | None = None) -> ServiceView | None:
        """A live read-only view of one service's books, or None; never creates a record.

        ``clock`` gives the time a view's ``lifetime`` counts from (default: the last ``now``).
        """
        return self.views(clock).get(name)

    @property
    def services(self) -> ServicesView:
        """The current services by name (live read-only views; time: the last ``now``)."""
        return self.views()

    def views(self, clock: Callable[[], float] | None = None) -> ServicesView:
        """The services as live read-only views whose times count from ``clock()``."""
        return ServicesView(self, clock if clock is not None else self._last_now)

    def status(self, now: float, service: str | None = None) -> dict:
        """What a ``status`` query is answered with at ``now`` (:mod:`.status`): every service,
        or only the service key ``service``."""
        return status(self, now, service)

    def _last_now(self) -> float:
        return self.now

    def audit(self) -> list[str]:
        """What is inconsistent between the parts' books (nothing, always: for tests and fuzzing).

        The registry's two indexes agree; every request in flight is at a registered record,
        within ``max_in_flight``; every fan-out copy in flight belongs to a fan-out that
        waits for it; learned owners are kept only for registered or retained services.
        """
        problems, registry = [], self.registry
        if registry.count != sum(len(dispatchers) for dispatchers in registry.services.values()):
            problems.append(f"{registry.count} dispatchers counted as registered")
        for service, dispatchers in registry.services.items():
            if not dispatchers:
                problems.append(f"service {service} kept without a dispatcher")
            for name, record in dispatchers.items():
                if registry.at(record.peer).get((service, name)) is not record:
                    problems.append(f"{record} missing from its socket's index")
        for peer, records in registry.by_peer.items():
            if not records:
                problems.append(f"empty socket entry kept for {peer!r}")
            for (service, name), record in records.items():
                if registry.get(service, name) is not record:
                    problems.append(f"{record} at socket {peer!r} is not the registered one")
        for record, table in self.requests.at.items():
            if registry.get(record.service, record.name) is not record and \
                    registry.registered(record.peer, record.service, record.name) is not record:
                problems.append(f"requests kept in flight at {record}, which left")
            if len(table) > self.max_in_flight:
                problems.append(f"{record} has {len(table)} requests in flight, over the limit")
            for entry_key, entry in table.items():
                fanout = entry.fanout
                if fanout is not None and (fanout.waiting.get(record.name) is not record
                                           or self.fanouts.by_service.get(fanout.service, {}).get(
                                               (fanout.client, fanout.request.identifier)) is not fanout):
                    problems.append(f"orphaned fan-out copy {entry_key} at {record}")
        for service, fanouts in self.fanouts.by_service.items():
            if not fanouts:
                problems.append(f"empty fan-out entry kept for {service}")
            for fanout in fanouts.values():
                for record in fanout.waiting.values():
                    if self.requests.pending(record).get(fanout.key, None) is None:
                        problems.append(f"fan-out copy at {record} lost")
        owners, total = self.owners, 0
        for service, learned in owners.owners.items():
            if service not in registry.services and service not in owners.retained:
                problems.append(f"learned owners of {service} kept, neither registered nor retained")
            tally: dict[str, int] = {}
            for name in learned.values():
                tally[name] = tally.get(name, 0) + 1
            if tally != {n: c for n, c in owners.counts.get(service, {}).items() if c}:
                problems.append(f"keywords learned per dispatcher of {service} miscounted")
            total += len(learned)
        if total != owners.total:
            problems.append(f"{owners.total} keywords counted as learned, {total} learned")
        return problems

    # -- handlers: one per direction, each returning what to send --------------------------------

    def _inquiry(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """UB?: the broker is alive (answered along any prefix)."""
        return [answer(peer, message, message.reply(Text.BROKER_ALIVE))]

    def _client_broker(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """CBQ: lookup, locate, status, or 'unknown command'."""
        refused = self._breach(peer, message, routed=False)
        if refused:
            return refused
        command = message.command
        if command == Command.LOOKUP:
            reply = message.reply(self.lookup_address)
        elif command == Command.LOCATE:
            found = bool(self.registry.dispatchers(message.service_key))  # type: ignore[arg-type]
            reply = message.reply(Text.LOCATE_YES if found else Text.LOCATE_NO)
        elif command == Command.STATUS:
            reply = message.reply(encode_status(self.status(now, message.service_key)))
        else:
            self.stats.error("unknown_command")
            reply = message.error(Text.UNKNOWN_COMMAND)
        return [answer(peer, message, reply)]

    def _client_dispatcher(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """CDQ: route to the named dispatcher, or to the keyword's learned owner."""
        if message.prefix != DELIMITER:  # no field rules to check here: the hot path
            return self._refuse_prefix(peer, message)
        out = self.requests.forward(peer, message, now)
        if out is None:
            kind, text = self.requests.unroutable(message)
            self.stats.error(kind)
            return [answer(peer, message, message.error(text))]
        return out

    def _client_service(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """CSQ: fan out to every dispatcher of the service (identify: maybe from the cache)."""
        refused = self._breach(peer, message)
        if refused:
            return refused
        self._deadline_stale = True
        return self.fanouts.start(peer, message, now)

    def _dispatcher_query(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """DBQ: welcome, ready, heartbeat, or 'unknown command'."""
        refused = self._breach(peer, message)
        if refused:
            return refused
        command = message.command
        if command == Command.WELCOME:
            self._deadline_stale = True
            out = self._conceded([self.registry.welcome(peer, message, now, key)], now)
            self._owners_back(message.service_key)  # type: ignore[arg-type]
            return out
        if command in (Command.READY, Command.HEARTBEAT):
            self._deadline_stale = True
            out = self.registry.alive(peer, message, now, key)
            self._owners_back(message.service_key)  # type: ignore[arg-type]
            return out
        return self.registry.unknown_command(peer, message)

    def _dispatcher_error(self, peer: bytes, message: Message, now: float, key: str | None) -> Out:
        """DBE: discarded (its arrival was a sign of life)."""
        self.drops.drop("dispatcher_error_discarded", now, peer, message)
        return []

    def _dispatcher_reply(self, peer: bytes, message: Message, now: float, key: str | None = None,
                          error: str | None = None) -> Out:
        """CDP/CDE relayed to its client, SDP/SDE given to its fan-out; exactly once.

        ``error``: the reply's frames broke a rule; the request gets this error instead.
        """
        found = self.requests.take(peer, message, now)
        if found is None:
            return []
        record, client, entry = found
        if entry.fanout is not None:
            return self.fanouts.answer(entry.fanout, record, None if error is not None else message, now)
        return [self.requests.relay(record, entry, client, message, error, now)]

    _HANDLERS: dict[Direction, Handler] = {
        Direction.UBQ: _inquiry,
        Direction.CBQ: _client_broker,
        Direction.CDQ: _client_dispatcher,
        Direction.CSQ: _client_service,
        Direction.DBQ: _dispatcher_query,
        Direction.DBE: _dispatcher_error,
        Direction.CDP: _dispatcher_reply,
        Direction.CDE: _dispatcher_reply,
        Direction.SDP: _dispatcher_reply,
        Direction.SDE: _dispatcher_reply,
    }

    def _owners_back(self, service: str) -> None:
        """After a registration: a service registered again has its learned owners back."""
        if service in self.registry.services:
            self.owners.back(service)

    # -- dispatchers leaving -------------------------------------------------------------------

    def _retire(self, record: DispatcherRecord, kind: str, text: str, now: float) -> Out:
        """Forget ``record``; answer each of its requests in flight (``text``: the error, of
        the spec's text ``kind``)."""
        self.registry.remove(record)
        out: Out = []
        for (_, client, _), entry in self.requests.withdraw(record).items():
            if entry.fanout is not None:
                out += self.fanouts.answer(entry.fanout, record, None, now)
            else:
                out.append(to_client(client, entry.request.error(text, dispatcher=record.name)))
                self.stats.error(kind)
        if record.service not in self.registry.services:
            self.owners.left(record.service, now)
        return out

    def _expire(self, record: DispatcherRecord, now: float) -> Out:
        """``EXPIRY_MULTIPLE`` T of silence: ``record`` goes, its requests answered ``Dispatcher Timed Out``."""
        self.stats.expired += 1
        self.stats.timed_out += sum(1 for e in self.requests.pending(record).values() if e.fanout is None)
        log.log(logging.INFO, "%s: dispatcher %s/%s at %s expired", self.name, record.service, record.name,
                self.registry.where(record.peer))
        self.owners.forget_types_of(record.service, record.name)
        return self._retire(record, "dispatcher_timed_out", Text.DISPATCHER_TIMED_OUT, now)

    def _reused(self, peer: bytes, key: str, now: float) -> Out | None:
        """Under CURVE: retire the records at ``peer`` registered by another key (rule 3 of
        :mod:`.keys`); what that sends, or None when there were none."""
        stale = self.keys.reused(peer, key, list(self.registry.at(peer).values()), now)
        if not stale:
            return None
        self._deadline_stale = True
        out: Out = []
        for record in stale:
            out += self._expire(record, now)  # as if it had expired: its connection is gone
        return out

    # -- bad input --------------------------------------------------------------------------

    def _breach(self, peer: bytes, request: Message, *, routed: bool = True) -> Out:
        """The error answer of a request that breaks a rule, or nothing: a routed request
        (``routed``) needs exactly one empty delimiter, and every request its kind's field rules."""
        if routed and request.prefix != DELIMITER:
            return self._refuse_prefix(peer, request)
        try:
            check_kind(request)
        except RemoteProtocolError as exc:
            return self._refuse(peer, request, exc)
        return []

    def _refuse(self, peer: bytes, request: Message, reason: object) -> Out:
        """Answer a request that breaks a rule with ``Malformed message: <reason>``."""
        self.stats.refused += 1
        self.stats.error("malformed_request")
        return [answer(peer, request, request.error(Text.MALFORMED_REQUEST.format(reason=reason)))]

    def _refuse_prefix(self, peer: bytes, request: Message) -> Out:
        got = len(request.prefix)
        return self._refuse(peer, request, f"expected one empty delimiter frame before the envelope, got {got} "
                                           f"prefix frame{'s' * (got != 1)}")

    def _refused(self, peer: bytes, frames: Sequence[bytes], exc: RemoteProtocolError, now: float) -> Out:
        """Frames ``decode`` refused: answer them if they are a query or an awaited reply."""
        salvaged = salvage(frames)
        if salvaged is not None:
            if salvaged.direction.kind == Kind.QUERY:
                return self._refuse(peer, salvaged, exc)
            if salvaged.direction in ROUTED_REPLY:
                error = Text.MALFORMED_REQUEST.format(reason=f"the dispatcher's reply: {exc}")
                return self._dispatcher_reply(peer, salvaged, now, error=error)
        self.drops.drop(exc.rule, now, peer, exc)
        return []

    def _unhandled(self, peer: bytes, message: Message, now: float) -> Out:
        if message.direction.kind == Kind.QUERY:
            self.stats.error("no_handler")
            return [answer(peer, message, message.error(Text.NO_HANDLER.format(direction=message.direction)))]
        self.drops.drop("unhandled_direction", now, peer, message)
        return []

    def _internal_error(self, peer: bytes, now: float) -> None:
        self.drops.drop("internal_error", now, peer, "", level=logging.ERROR)
