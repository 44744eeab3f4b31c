"""The broker's routing core: frames in, frames out, no I/O and no clock.

Theory of operation
-------------------
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
   a service exists only while it has a dispatcher or a fan-out in flight (looking one up,
   or a request naming an unknown one, never creates it); the identify cache lives in its
   service and goes with it, learned keyword owners are kept a while longer (7.). A dispatcher has at most
   ``max_in_flight`` requests in flight: more are answered ``Dispatcher 'X' has N requests
   in flight; try again later`` at once (a fan-out skips it, an unusable answer).
5. A dispatcher is routable from its ``welcome`` (heartbeats start at ``ready``) until it
   expires (5 T without any message from its socket) or is replaced. Afterwards its socket is
   a stranger: its replies are dropped (their requests were answered already). A ``ready`` or
   heartbeat answer from a stranger shows the dispatcher alive: if its name is free it is
   registered again at that socket, ready (an existing Cauldron dispatcher never welcomes
   twice); if another socket holds the name it gets DBE ``Dispatcher 'X' is not registered
   for 'S'; send welcome``, at most once per T per socket (no ping-pong).
6. With CURVE (``handle(..., key=NAME)``), a dispatcher name belongs to the key that
   registered it, and a ``policy`` says which keys may serve which services: see
   :mod:`.keys`. Without CURVE (``key`` None) nothing of that applies.
7. Learned keyword owners outlive their service's last dispatcher by
   ``books.owner_retention`` seconds (a day; at most ``books.max_retained`` services): a
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

from ...protocol import Direction, Kind, Message, RemoteProtocolError, Text, decode, salvage
from .clients import ClientHandlers
from .dispatchers import _ROUTED_REPLY, DispatcherHandlers
from .views import ServicesView, ServiceView

__all__ = ["BrokerCore"]

Handler = Callable[["BrokerCore", bytes, Message], None]


class BrokerCore(ClientHandlers, DispatcherHandlers):
    """The I/O-free routing core of the broker (see the module docstring)."""

    _HANDLERS: dict[Direction, Handler] = {
        Direction.UBQ: ClientHandlers._inquiry,
        Direction.CBQ: ClientHandlers._client_broker,
        Direction.CDQ: ClientHandlers._client_dispatcher,
        Direction.CSQ: ClientHandlers._client_service,
        Direction.DBQ: DispatcherHandlers._dispatcher_query,
        Direction.DBE: DispatcherHandlers._dispatcher_error,
        Direction.CDP: DispatcherHandlers._dispatcher_reply,
        Direction.CDE: DispatcherHandlers._dispatcher_reply,
        Direction.SDP: DispatcherHandlers._dispatcher_reply,
        Direction.SDE: DispatcherHandlers._dispatcher_reply,
    }

    def handle(self, peer: bytes, frames: Sequence[bytes], now: float,
               key: str | None = None) -> list[list[bytes]]:
        """One message from the ROUTER (``frames`` after the routing id); what to send.

        ``key``: with CURVE, the name of the key the sender's connection authenticated with
        (its ZAP User-Id); the key rules of :mod:`.keys` apply. None: no CURVE, no key rules.
        """
        self._out, self._now, self._key = [], now, key
        self.stats.received += 1
        try:
            if peer in self.books.by_peer and (key is None or self._same_key(peer, key)):
                self._seen(peer, now)
            try:
                message = decode(frames)
            except RemoteProtocolError as exc:
                self._refused(peer, frames, exc)
            else:
                handler = self._HANDLERS.get(message.direction)
                if handler is None:
                    self._unhandled(peer, message)
                else:
                    handler(self, peer, message)
        except Exception:  # noqa: BLE001 - the core must never take the broker down
            self._internal_error(peer)
        out, self._out = self._out, []
        self.stats.sent += len(out)
        return out

    def tick(self, now: float) -> list[list[bytes]]:
        """Heartbeats, expiry and fan-out deadlines due at ``now``; what to send."""
        self._out, self._now = [], now
        try:
            if self.heartbeat:
                for record in list(self.books.records()):
                    self._watch(record, now)
            for service in list(self.books.services.values()):
                for fanout in [f for f in service.fanouts.values() if now >= f.deadline]:
                    self._finish_fanout(fanout)
            self.books.purge_retained(now)
            self._schedule_changed()
        except Exception:  # noqa: BLE001
            self._internal_error(b"")
        return self._sent()

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which ``tick`` may have work (None: nothing scheduled).

        Never later than the true next deadline; it may be earlier after traffic postponed
        one (``tick`` then does nothing and the next answer is exact).
        """
        if self._deadline_stale:
            self._deadline_stale = False
            deadlines = [r.deadline(self.heartbeat) for r in self.books.records()]
            deadlines += [f.deadline for s in self.books.services.values() for f in s.fanouts.values()]
            self._deadline = min((d for d in deadlines if d is not None), default=None)
        return self._deadline

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

    def _last_now(self) -> float:
        return self._now

    # -- dispatch helpers ------------------------------------------------------------------

    def _seen(self, peer: bytes, now: float) -> None:
        """Any message from a registered dispatcher's socket is a sign of life."""
        at_peer = self.books.by_peer.get(peer)
        if at_peer:
            for record in at_peer.values():
                record.seen(now, self.timeout)

    def _refused(self, peer: bytes, frames: Sequence[bytes], exc: RemoteProtocolError) -> None:
        """Frames ``decode`` refused: answer them if they are a query or an awaited reply."""
        salvaged = salvage(frames)
        if salvaged is None:
            return self._drop(exc.rule, peer, exc)
        if salvaged.direction.kind == Kind.QUERY:
            return self._refuse(peer, salvaged, exc)
        if salvaged.direction in _ROUTED_REPLY:
            error = Text.MALFORMED_REQUEST.format(reason=f"the dispatcher's reply: {exc}")
            return self._dispatcher_reply(peer, salvaged, error)
        self._drop(exc.rule, peer, exc)

    def _unhandled(self, peer: bytes, message: Message) -> None:
        if message.direction.kind == Kind.QUERY:
            error = Text.NO_HANDLER.format(direction=message.direction)
            return self._answer(peer, message, message.error(error))
        self._drop("unhandled_direction", peer, message)

    def _internal_error(self, peer: bytes) -> None:
        self.drops.drop("internal_error", self._now, peer, "", level=logging.ERROR)

    def _sent(self) -> list[list[bytes]]:
        out, self._out = self._out, []
        self.stats.sent += len(out)
        return out
