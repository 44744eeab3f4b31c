"""State and helpers the routing core's handlers share (see :mod:`.core` for the theory)."""

from __future__ import annotations

import logging

from ...protocol import Message, RemoteProtocolError, Text, check_kind, encode
from .books import Books, DispatcherRecord, Service
from .fanout import FanOut
from .stats import DropLog, Stats, log

#: The prefix of a routed request as the core sees it: the peer's empty delimiter.
DELIMITER = (b"",)


class CoreBase:
    """The books, the counters, and the list of messages the current call will send."""

    #: Requests in flight one dispatcher may have; more get ``Dispatcher 'X' has N requests
    #: in flight; try again later`` (a fan-out skips it). Settable per core.
    MAX_IN_FLIGHT = 10_000

    def __init__(self, lookup_address: str, *, timeout: float = 1.0, heartbeat: bool = True,
                 fanout_timeout: float = 10.0, name: str = "broker"):
        self.lookup_address = lookup_address  #: what ``lookup`` answers (settable)
        self.timeout = float(timeout)  #: the heartbeat period T
        self.heartbeat = bool(heartbeat)
        self.fanout_timeout = float(fanout_timeout)
        self.name = name
        self.max_in_flight = self.MAX_IN_FLIGHT
        self.books = Books()
        #: routing id -> when it was last told to welcome (rate limit of that DBE)
        self._told_to_welcome: dict[bytes, float] = {}
        #: routing id -> when a registration from it was last refused (rate limit of that DBE)
        self._told_refused: dict[bytes, float] = {}
        #: with CURVE, who may register dispatchers of what (``allows(key, service)``;
        #: ``cauldron_proto.security.policy``), or None: any key may register a free name
        self.policy = None
        self._key: str | None = None  # the CURVE key of the message being handled (None: no CURVE)
        self.stats = Stats()
        self.drops = DropLog(self.stats)
        self._out: list[list[bytes]] = []
        self._now = 0.0
        self._deadline: float | None = None
        self._deadline_stale = False

    # -- output ------------------------------------------------------------------------

    def _send(self, route: tuple[bytes, ...], message: Message) -> None:
        """Send ``message`` behind ``route`` (the destination routing id first)."""
        self._out.append(encode(message, route))

    def _answer(self, peer: bytes, request: Message, answer: Message) -> None:
        """Answer ``request`` back along the route it came by."""
        self._send((peer, *request.prefix), answer)

    def _refuse(self, peer: bytes, request: Message, reason: object) -> None:
        """Answer a request that breaks a rule with ``Malformed message: <reason>``."""
        self.stats.refused += 1
        self._answer(peer, request, request.error(Text.MALFORMED_REQUEST.format(reason=reason)))

    def _breaks_rules(self, peer: bytes, request: Message, *, routed: bool = True) -> bool:
        """Answer ``request`` with an error if it breaks a rule: a routed request (``routed``)
        needs exactly one empty delimiter, and every request its kind's field rules. True if it did."""
        if routed and request.prefix != DELIMITER:
            self._refuse_prefix(peer, request)
            return True
        try:
            check_kind(request)
        except RemoteProtocolError as exc:
            self._refuse(peer, request, exc)
            return True
        return False

    def _refuse_prefix(self, peer: bytes, request: Message) -> None:
        got = len(request.prefix)
        self._refuse(peer, request, f"expected one empty delimiter frame before the envelope, got {got} prefix frame{'s' * (got != 1)}")

    def _once_per_period(self, told: dict[bytes, float], peer: bytes) -> bool:
        """True (and noted in ``told``) unless ``peer`` was told within the last T."""
        if told.get(peer, -float("inf")) + self.timeout > self._now:
            return False
        if len(told) >= 4096:
            for stale in [p for p, at in told.items() if at + self.timeout <= self._now]:
                del told[stale]
        told[peer] = self._now
        return True

    def _drop(self, reason: str, peer: bytes, detail: object = "") -> None:
        self.drops.drop(reason, self._now, peer, detail)

    def _schedule_changed(self) -> None:
        """A deadline may now be earlier than the one ``next_deadline`` would give."""
        self._deadline_stale = True

    # -- dispatchers leaving, fan-outs finishing ---------------------------------------

    def _retire(self, record: DispatcherRecord, text: str) -> None:
        """Forget ``record``; answer each of its requests in flight with the error ``text``."""
        self.books.remove(record)
        in_flight, record.in_flight = record.in_flight, {}
        for (kind, client, _), entry in in_flight.items():
            if entry.fanout is not None:
                entry.fanout.answer(record, None)
                if entry.fanout.done:
                    self._finish_fanout(entry.fanout)
            else:
                self._send((client, b""), entry.request.error(text, dispatcher=record.name))
        self.books.forget_if_idle(record.service, self._now)

    def _expire(self, record: DispatcherRecord) -> None:
        self.stats.expired += 1
        self.stats.timed_out += sum(1 for e in record.in_flight.values() if e.fanout is None)
        self._log_event("dispatcher %s/%s at %s expired", record.service, record.name, record.peer.hex())
        service = self.books.services.get(record.service)
        if service is not None:
            service.forget_types_of(record.name)
        self._retire(record, Text.DISPATCHER_TIMED_OUT)

    def _finish_fanout(self, fanout: FanOut) -> None:
        """Answer the client with the merged result and forget the fan-out."""
        fanout.close()
        service = self.books.services.get(fanout.service)
        if service is not None:
            service.fanouts.pop((fanout.client, fanout.request.identifier), None)
            self._learn_from_fanout(service, fanout)
        self.stats.fanouts += 1
        self._out.append(encode(fanout.result()))
        self.books.forget_if_idle(fanout.service, self._now)

    @staticmethod
    def _learn_from_fanout(service: Service, fanout: FanOut) -> None:
        single, request = fanout.single(), fanout.request
        if single is not None and request.keyword is not None:
            service.learn(request.keyword_key, single[0], request.command, single[1])

    def _log_event(self, text: str, *args: object) -> None:
        log.log(logging.INFO, "%s: " + text, self.name, *args)
