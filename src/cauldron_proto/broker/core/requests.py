"""Requests in flight: forwarded to a dispatcher and not answered yet.

A client's routed request (CDQ) goes to the dispatcher it names, or to its keyword's learned
owner (:class:`~.owners.LearnedOwners`), and is remembered at that dispatcher's record under
(pair, client routing id, identifier) until its one answer: the dispatcher's reply (relayed
to the client, teaching the keyword's owner), or an error when the dispatcher leaves first
(answered by the caller from :meth:`Requests.withdraw`). A fan-out's copies are remembered
here too, pointing to their :class:`~.fanouts.FanOut`. A dispatcher has at most
``max_in_flight`` requests in flight.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping

import msgspec

from ...protocol import BLANK, Command, Direction, Message, RemoteProtocolError, Text, decode, encode
from .aliases import ClientAliases
from .latency import Latencies
from .answers import Out, answer, to_client
from .owners import LearnedOwners
from .registry import NOTHING, DispatcherRecord, Registry
from .stats import DropLog, Stats

if TYPE_CHECKING:
    from .fanouts import FanOut

#: What identifies a request in flight at one dispatcher: the pair it travels on ("CD" for
#: a routed request, "SD" for a fan-out copy), the client's routing id and the identifier.
#: Two clients may use the same identifier; one client's requests are told apart by it.
InFlightKey = tuple[str, bytes, bytes]

#: The replies a dispatcher sends for a client, by the pair their request travelled on.
ROUTED_REPLY = {Direction.CDP: "CD", Direction.CDE: "CD", Direction.SDP: "SD", Direction.SDE: "SD"}
_MALFORMED = Text.MALFORMED_REQUEST.split("{", 1)[0]  # an error for a reply's broken frames
#: The requests the broker forwards to a dispatcher, by the pair they travel on.
ROUTED_REQUEST = {Direction.CDQ: "CD", Direction.SDQ: "SD"}
_IDENTIFY = Command.IDENTIFY  # read once: an enum's attribute costs a look-up each time


class InFlight(msgspec.Struct, gc=False):
    """A request forwarded to a dispatcher and not answered yet."""

    request: Message  #: the client's request as received (prefix ``(b"",)``; the client is in the key)
    fanout: "FanOut | None" = None  #: the fan-out this is a copy of (SD only)
    sent_at: float = 0.0  #: the caller's ``now`` when it was forwarded (CD only: its latency)


class Requests:
    """The requests in flight at each dispatcher record (see the module docstring)."""

    #: Requests in flight one dispatcher may have by default.
    MAX_IN_FLIGHT = 10_000

    def __init__(self, registry: Registry, owners: LearnedOwners, stats: Stats, drops: DropLog,
                 latencies: Latencies | None = None):
        self.registry, self.owners, self.stats, self.drops = registry, owners, stats, drops
        #: each relayed reply's time since its request was forwarded, by service
        self.latencies = latencies if latencies is not None else Latencies()
        #: more than this many at one dispatcher get ``Dispatcher 'X' has N requests in flight;
        #: try again later`` at once (a fan-out skips it)
        self.max_in_flight = self.MAX_IN_FLIGHT
        self.at: dict[DispatcherRecord, dict[InFlightKey, InFlight]] = {}  #: record -> its requests
        #: what dispatchers see of clients' routing ids (:mod:`.aliases`)
        self.aliases = ClientAliases()

    # -- looking up ------------------------------------------------------------------------

    def pending(self, record: DispatcherRecord) -> Mapping[InFlightKey, InFlight]:
        """The requests in flight at ``record`` (read-only use)."""
        return self.at.get(record, NOTHING)

    # -- routed requests (CDQ) ----------------------------------------------------------------

    def forward(self, peer: bytes, message: Message, now: float) -> Out | None:
        """Send client ``peer``'s CDQ to its dispatcher and remember it, or say why not; None
        when it has no dispatcher to go to (:meth:`unroutable` says why).

        Its dispatcher: the one it names, else its keyword's learned owner. (Routing is not a
        method of its own: this runs for every routed request, and a call costs.)
        """
        service = message.service_key
        dispatchers = self.registry.services.get(service)  # type: ignore[arg-type]
        if dispatchers is None:
            return None
        name = message.dispatcher
        if name is None:
            keyword = message.keyword_key
            if keyword is None:
                return None
            name = self.owners.owner(service, keyword)  # type: ignore[arg-type]
        record = dispatchers.get(name)  # type: ignore[arg-type]
        if record is None:
            return None
        key = ("CD", peer, message.identifier)
        table = self.at.get(record)
        if table is None:
            table = self.at[record] = {}
        elif key in table:
            # The same request again (a retry): its one answer is on its way already.
            self.drops.drop("duplicate_request", now, peer, message)
            return []
        if len(table) >= self.max_in_flight:
            busy = Text.DISPATCHER_BUSY.format(dispatcher=record.name, count=len(table))
            self.stats.error("dispatcher_busy")
            return [answer(peer, message, message.error(busy))]
        table[key] = InFlight(message, None, now)
        if message.frames[1] == BLANK:  # routed by keyword: name its owner, as the existing broker does
            message = message.with_dispatcher(record.name)
        return [encode(message, (record.peer, b"", self.aliases.alias(peer), b""))]

    @staticmethod
    def unroutable(message: Message) -> tuple[str, str]:
        """Why a CDQ has no dispatcher to go to: (the spec's name of the text, the text)."""
        if message.dispatcher is not None:
            return "dispatcher_not_available", Text.DISPATCHER_NOT_AVAILABLE.format(
                dispatcher=message.dispatcher, service=message.service)
        if message.keyword is not None:
            return "no_dispatcher_for_keyword", Text.NO_DISPATCHER_FOR_KEYWORD.format(
                service=message.service, keyword=message.keyword)
        return "ambiguous_dispatcher", Text.AMBIGUOUS_DISPATCHER.format(fields=message.fields_text())

    # -- replies ----------------------------------------------------------------------------

    def take(self, peer: bytes, message: Message, now: float) -> tuple[DispatcherRecord, bytes, InFlight] | None:
        """The request a dispatcher's reply answers, no longer in flight, with its client's
        routing id; None (the reply dropped, with its reason) when it answers nothing in flight."""
        at_peer = self.registry.by_peer.get(peer)
        if not at_peer:
            self.drops.drop("reply_from_unregistered_peer", now, peer, message)
            return None
        prefix = message.prefix
        if len(prefix) != 3 or prefix[0] or prefix[2]:
            self.drops.drop("reply_without_client_prefix", now, peer, message)
            return None
        found = self._pop(at_peer, ROUTED_REPLY[message.direction], prefix[1], message.identifier)
        if found is not None:
            return found
        self.drops.drop("reply_to_nothing_in_flight", now, peer, message)
        return None

    def relay(self, record: DispatcherRecord, entry: InFlight, client: bytes, reply: Message,
              error: str | None, now: float) -> list[bytes]:
        """The answer to a routed request ``entry`` taken by ``record``'s ``reply``: the reply
        itself (teaching its keyword's owner), or the ``error`` its broken frames deserve; its
        latency counted."""
        self.latencies.observe(record.service, now - entry.sent_at)
        if error is not None:
            self.stats.error("malformed_request" if error.startswith(_MALFORMED) else "over_limit")
            return to_client(client, entry.request.error(error, dispatcher=record.name))
        if reply.is_usable:
            keyword = reply.keyword_key
            if keyword is not None:
                command = reply.command  # the payload is only worth reading for identify
                payload = reply.payload if command == _IDENTIFY else None
                over = self.owners.learn(record.service, keyword, record.name, command, payload)
                if over is not None:
                    self.not_learned(over, record.service, record.name, keyword, now)
        return to_client(client, reply)

    def unsent(self, frames: list[bytes]) -> tuple[DispatcherRecord, bytes, InFlight] | None:
        """The request in flight that ``frames`` (a message the ROUTER could not queue) carried
        to a dispatcher, no longer in flight: (record, client routing id, entry); else None."""
        records = self.registry.at(frames[0])
        if not records or len(frames) < 4 or frames[1] or frames[3]:
            return None
        try:
            message = decode(frames[1:])
        except RemoteProtocolError:
            return None
        pair = ROUTED_REQUEST.get(message.direction)
        if pair is None:
            return None
        return self._pop(records, pair, frames[2], message.identifier)

    def _pop(self, records: Mapping[tuple[str, str], DispatcherRecord], pair: str, alias: bytes,
             identifier: bytes) -> tuple[DispatcherRecord, bytes, InFlight] | None:
        """The request in flight at one of ``records`` (a socket's) under (``pair``, the client
        whose alias is ``alias``, ``identifier``), no longer in flight, with its client; or None."""
        client = self.aliases.client(alias)
        key = (pair, client, identifier)
        for record in records.values():
            table = self.at.get(record)
            entry = None if table is None else table.pop(key, None)
            if entry is not None:
                return record, client, entry
        return None

    def not_learned(self, limit: str, service: str, name: str, keyword: str, now: float) -> None:
        """A keyword's owner not learned (its answer was relayed): counted, logged once per interval."""
        self.stats.over_limit(limit)
        self.drops.note(limit, now, logging.WARNING, "%s: did not learn keyword %.40r of %s from %s: over the "
                        "limit %s = %s", self.registry.name, keyword, service, name, limit,
                        getattr(self.owners.limits, limit))

    # -- fan-out copies, and a dispatcher leaving --------------------------------------------------

    def discard(self, record: DispatcherRecord, key: InFlightKey) -> None:
        table = self.at.get(record)
        if table is not None:
            table.pop(key, None)

    def withdraw(self, record: DispatcherRecord) -> dict[InFlightKey, InFlight]:
        """Everything in flight at ``record``, forgotten: the caller answers each (it left)."""
        return self.at.pop(record, {})


__all__ = ["InFlight", "InFlightKey", "ROUTED_REPLY", "Requests"]
