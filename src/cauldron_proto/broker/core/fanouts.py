"""A client's question to a whole service (CSQ), sent to every dispatcher and merged.

A :class:`FanOut` waits for one answer per dispatcher it was sent to. An answer is the
dispatcher's SDP/SDE, or, when the dispatcher expires or is replaced first, nothing (an
unusable answer). When every dispatcher has answered, or at ``deadline``, :meth:`FanOut.result`
merges what came back:

- exactly one usable answer: CSP with that payload, the dispatcher frame naming its dispatcher;
- several: CSP with the payloads joined with ``:`` in the order they arrived;
- none usable: CSP with the fail sentinel.

No dispatcher at all never makes a FanOut: :meth:`FanOuts.start` answers CSE ``No
dispatchers for 'S'``; an identify the cache knows is answered from it. A usable answer is a
non-error reply whose payload is neither blank nor fail. The copies in flight are kept by
:class:`~.requests.Requests`, like any request; :class:`FanOuts` keeps the fan-outs.
"""

from __future__ import annotations

from ...protocol import FAIL, Command, Direction, Message, Text, encode
from .answers import Out, answer
from .owners import LearnedOwners
from .registry import DispatcherRecord, Registry
from .requests import InFlight, InFlightKey, Requests
from .stats import DropLog, Stats


class FanOut:
    """One fan-out in flight: who still owes an answer, and the usable answers so far."""

    __slots__ = ("request", "client", "service", "deadline", "copy", "key", "waiting", "answers")

    def __init__(self, request: Message, client: bytes, service: str, deadline: float, alias: bytes | None = None):
        self.request = request  #: the client's CSQ
        self.client = client  #: the client's routing id
        self.service = service  #: the service key
        self.deadline = deadline
        #: the SDQ copy every dispatcher gets, carrying the client's prefix (its alias: :mod:`.aliases`)
        self.copy = request.replace(direction=Direction.SDQ, prefix=(client if alias is None else alias, b""))
        #: what its copies are in flight under at each dispatcher
        self.key: InFlightKey = ("SD", client, request.identifier)
        self.waiting: dict[str, DispatcherRecord] = {}  #: dispatcher name -> record owing an answer
        self.answers: dict[str, str] = {}  #: dispatcher name -> usable payload, in arrival order

    def copy_for(self, record: DispatcherRecord, in_flight: dict) -> list[bytes]:
        """The SDQ copy for ``record``, in flight at it in ``in_flight`` (:attr:`Requests.at`)."""
        self.waiting[record.name] = record
        table = in_flight.get(record)
        if table is None:
            table = in_flight[record] = {}
        table[self.key] = InFlight(self.copy, self)
        return encode(self.copy, (record.peer, b"", *self.copy.prefix))

    def answer(self, record: DispatcherRecord, message: Message | None) -> None:
        """``record``'s answer (None: it left without answering)."""
        if self.waiting.get(record.name) is not record:
            return
        del self.waiting[record.name]
        if message is not None and message.is_usable:
            self.answers[record.name] = message.payload  # type: ignore[assignment]

    @property
    def done(self) -> bool:
        return not self.waiting

    def close(self, requests: Requests) -> None:
        """Stop waiting: the copies still in flight are withdrawn (late answers are dropped)."""
        key = self.key
        for record in self.waiting.values():
            requests.discard(record, key)
        self.waiting.clear()

    def single(self) -> tuple[str, str] | None:
        """(dispatcher name, payload) when exactly one usable answer came back."""
        return next(iter(self.answers.items())) if len(self.answers) == 1 else None

    def result(self) -> Message:
        """The merged answer to the client (prefix ``(client, b"")``)."""
        request = self.request
        if len(self.answers) == 1:
            (name, payload), = self.answers.items()
            merged = request.reply(payload, dispatcher=name)
        elif self.answers:
            merged = request.reply(":".join(self.answers.values()))
        else:
            merged = request.reply(FAIL)
        return merged.with_prefix(self.client, b"")


class FanOuts:
    """The fan-outs in flight by service key, then by (client routing id, identifier)."""

    def __init__(self, registry: Registry, requests: Requests, owners: LearnedOwners, stats: Stats,
                 drops: DropLog, *, timeout: float):
        self.registry, self.requests, self.owners, self.stats, self.drops = registry, requests, owners, stats, drops
        self.timeout = float(timeout)  #: seconds a fan-out waits for its answers
        self.by_service: dict[str, dict[tuple[bytes, bytes], FanOut]] = {}

    def start(self, peer: bytes, message: Message, now: float) -> Out:
        """Client ``peer``'s CSQ: a copy to every dispatcher of the service, or the answer at once."""
        service = message.service_key
        dispatchers = self.registry.dispatchers(service)  # type: ignore[arg-type]
        if not dispatchers:
            error = Text.NO_DISPATCHERS_FOR_SERVICE.format(service=message.service)
            self.stats.error("no_dispatchers_for_service")
            return [answer(peer, message, message.error(error))]
        if message.command == Command.IDENTIFY and message.keyword is not None:
            cached = self.owners.type_of(service, message.keyword_key)  # type: ignore[arg-type]
            if cached is not None and cached[0] in dispatchers:
                self.stats.cache_hits += 1
                return [answer(peer, message, message.reply(cached[1], dispatcher=cached[0]))]
        fanouts = self.by_service.setdefault(service, {})  # type: ignore[arg-type]
        if (peer, message.identifier) in fanouts:
            self.drops.drop("duplicate_request", now, peer, message)
            return []
        fanout = fanouts[(peer, message.identifier)] = FanOut(message, peer, service, now + self.timeout,  # type: ignore[arg-type]
                                                              self.requests.aliases.alias(peer))
        in_flight, limit = self.requests.at, self.requests.max_in_flight
        out = [fanout.copy_for(record, in_flight) for record in dispatchers.values()
               if len(in_flight.get(record, ())) < limit]  # a full one counts as unusable
        if fanout.done:
            out += self.finish(fanout, now)
        return out

    def answer(self, fanout: FanOut, record: DispatcherRecord, message: Message | None, now: float) -> Out:
        """``record``'s answer to ``fanout`` (None: it left first); the merged answer when it was the last."""
        fanout.answer(record, message)
        return self.finish(fanout, now) if fanout.done else []

    def due(self, now: float) -> Out:
        """The merged answers of the fan-outs whose deadline is ``now`` or earlier."""
        out: Out = []
        for fanouts in list(self.by_service.values()):
            for fanout in [f for f in fanouts.values() if now >= f.deadline]:
                out += self.finish(fanout, now)
        return out

    def finish(self, fanout: FanOut, now: float) -> Out:
        """The client's merged answer; the fan-out is forgotten (an only usable answer teaches
        its keyword's owner)."""
        fanout.close(self.requests)
        fanouts = self.by_service.get(fanout.service)
        if fanouts is not None:
            fanouts.pop((fanout.client, fanout.request.identifier), None)
            if not fanouts:
                del self.by_service[fanout.service]
        single, request = fanout.single(), fanout.request
        if single is not None and request.keyword is not None:
            over = self.owners.learn(fanout.service, request.keyword_key, single[0], request.command, single[1])  # type: ignore[arg-type]
            if over is not None:
                self.requests.not_learned(over, fanout.service, single[0], request.keyword_key, now)  # type: ignore[arg-type]
        self.stats.fanouts += 1
        return [encode(fanout.result())]

    def deadline(self) -> float | None:
        return min((f.deadline for fanouts in self.by_service.values() for f in fanouts.values()), default=None)

    def count(self, service: str) -> int:
        return len(self.by_service.get(service, ()))
