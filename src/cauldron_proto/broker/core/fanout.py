"""A client's question to a whole service (CSQ), sent to every dispatcher and merged.

A :class:`FanOut` waits for one answer per dispatcher it was sent to. An answer is the
dispatcher's SDP/SDE, or, when the dispatcher expires or is replaced first, nothing (an
unusable answer). When every dispatcher has answered, or at ``deadline``, :meth:`result`
merges what came back:

- exactly one usable answer: CSP with that payload, the dispatcher frame naming its dispatcher;
- several: CSP with the payloads joined with ``:`` in the order they arrived;
- none usable: CSP with the fail sentinel.

(No dispatcher at all never makes a FanOut: the core answers CSE ``No dispatchers for 'S'``.)
A usable answer is a non-error reply whose payload is neither blank nor fail.
"""

from __future__ import annotations

from ...protocol import FAIL, Direction, Message
from .books import DispatcherRecord, InFlight, InFlightKey


class FanOut:
    """One fan-out in flight: who still owes an answer, and the usable answers so far."""

    __slots__ = ("request", "client", "service", "deadline", "copy", "waiting", "answers")

    def __init__(self, request: Message, client: bytes, service: str, deadline: float):
        self.request = request  #: the client's CSQ
        self.client = client  #: the client's routing id
        self.service = service  #: the service key
        self.deadline = deadline
        #: the SDQ copy every dispatcher gets, carrying the client's prefix
        self.copy = request.replace(direction=Direction.SDQ, prefix=(client, b""))
        self.waiting: dict[str, DispatcherRecord] = {}  #: dispatcher name -> record owing an answer
        self.answers: dict[str, str] = {}  #: dispatcher name -> usable payload, in arrival order

    @property
    def key(self) -> InFlightKey:
        return ("SD", self.client, self.request.identifier)

    def copy_for(self, record: DispatcherRecord) -> Message:
        """The SDQ copy for ``record``; records it as owing an answer."""
        self.waiting[record.name] = record
        record.in_flight[self.key] = InFlight(self.copy, self)
        return self.copy

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

    def close(self) -> None:
        """Stop waiting: the copies still in flight are withdrawn (late answers are dropped)."""
        for record in self.waiting.values():
            record.in_flight.pop(self.key, None)
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
