"""A harness that plays clients and dispatchers against the routing core, with a fake clock.

    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")            # welcome (checks 'confirmed') + ready
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE")
    forwarded = h.send(b"C1", q, expect=[(b"D1", {"direction": "CDQ", "prefix": (b"", b"C1", b"")})])
    h.send(b"D1", d.answer(forwarded[0], "42"), expect=[(b"C1", q.reply("42", dispatcher="disp1"))])
    h.advance(1.0, expect=[(b"D1", {"command": "heartbeat", "payload": "beat"})])

Every message the core sends is decoded with the codec (so it must be well-formed) and
checked against ``expect``: a list of ``(destination routing id, matcher)`` in send order,
where a matcher is a Message (same prefix and frames), a dict of fields (``prefix``,
``direction``, ``service``, ``dispatcher``, ``keyword``, ``command``, ``payload``,
``identifier``) or a callable taking the Message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from cauldron_proto import BLANK, FAIL, Direction, Message, Text, decode, encode, kinds
from cauldron_proto.broker.core import BrokerCore

LOOKUP = "tcp://localhost:6511"
DELIMITER = (b"",)


@dataclass(frozen=True)
class Sent:
    """One message the core sent: its destination and what the destination receives."""

    to: bytes
    message: Message  #: decoded from the frames after the routing id


Matcher = Message | dict | Callable[[Message], bool]


def query(direction: str, service: str | None = None, **fields: Any) -> Message:
    """A request as a REQ/DEALER peer sends it (prefix ``[b""]``)."""
    return Message.new(direction, service=service, prefix=DELIMITER, **fields)


def matches(message: Message, matcher: Matcher) -> bool:
    if isinstance(matcher, Message):
        return message.prefix == matcher.prefix and message.frames == matcher.frames
    if isinstance(matcher, dict):
        return all(getattr(message, name) == value for name, value in matcher.items())
    return bool(matcher(message))


def check(sent: Sequence[Sent], expect: Sequence[tuple[bytes, Matcher]]) -> None:
    got = [(s.to, s.message) for s in sent]
    assert len(sent) == len(expect), f"expected {len(expect)} messages, got {len(sent)}: {got}"
    for (to, message), (want_to, matcher) in zip(got, expect):
        assert to == want_to, f"sent to {to!r}, expected {want_to!r}: {message!r}"
        assert matches(message, matcher), f"to {to!r}: {message!r} does not match {matcher!r}"


class Harness:
    """The core, a fake clock, and helpers that play its peers."""

    def __init__(self, timeout: float = 1.0, *, heartbeat: bool = True, fanout_timeout: float = 10.0,
                 start: float = 1000.0, lookup: str = LOOKUP):
        self.core = BrokerCore(lookup, timeout=timeout, heartbeat=heartbeat,
                               fanout_timeout=fanout_timeout, name="test")
        self.now = start

    def send(self, peer: bytes, message: Message | Sequence[bytes],
             expect: Sequence[tuple[bytes, Matcher]] | None = None, *, key: str | None = None) -> list[Sent]:
        """``peer`` sends ``message`` (a REQ/DEALER peer's frames); what the core sends back.

        ``key``: the CURVE key name ``peer``'s connection authenticated with (None: no CURVE).
        """
        frames = encode(message) if isinstance(message, Message) else list(message)
        return self._sent(self.core.handle(peer, frames, self.now, key), expect)

    def advance(self, seconds: float, expect: Sequence[tuple[bytes, Matcher]] | None = None) -> list[Sent]:
        """Move the clock and run the timers; what they send."""
        self.now += seconds
        return self._sent(self.core.tick(self.now), expect)

    def unsent(self, sent: Sent, *, gone: bool = True,
               expect: Sequence[tuple[bytes, Matcher]] | None = None) -> list[Sent]:
        """The ROUTER could not send ``sent``: its peer's connection is closed (``gone``), or
        its peer is not reading; what the core sends instead."""
        return self._sent(self.core.undelivered([([sent.to, *encode(sent.message)], gone)], self.now), expect)

    def _sent(self, out: list[list[bytes]], expect) -> list[Sent]:
        sent = [Sent(frames[0], decode(frames[1:])) for frames in out]
        if expect is not None:
            check(sent, expect)
        return sent

    def dispatcher(self, peer: bytes, service: str, name: str, *, ready: bool = True,
                   key: str | None = None) -> "DispatcherPeer":
        """Register a dispatcher at ``peer`` (welcome, checked; then ready unless told not to),
        its connection authenticated as CURVE key ``key`` (None: no CURVE)."""
        welcome = query("DBQ", service, dispatcher=name, command="welcome")
        self.send(peer, welcome, expect=[(peer, {"prefix": DELIMITER, "direction": "DBP",
                                                 "payload": Text.CONFIRMED,
                                                 "identifier": welcome.identifier})], key=key)
        if ready:
            self.send(peer, query("DBQ", service, dispatcher=name, command="ready"), expect=[], key=key)
        return DispatcherPeer(self, peer, service, name, key)

    def books_are_consistent(self) -> None:
        """The core's owners agree with each other, and nothing idle is remembered."""
        assert self.core.audit() == []


@dataclass
class DispatcherPeer:
    """A registered dispatcher, answering what the core forwarded to it."""

    harness: Harness
    peer: bytes
    service: str
    name: str
    key: str | None = None  #: its CURVE key name (None: no CURVE)

    def answer(self, forwarded: Sent | Message, payload: Any = "42", *, error: bool = False,
               dispatcher: Any = "self") -> Message:
        """The reply to a forwarded request: the client prefix kept, own name filled in."""
        request = forwarded.message if isinstance(forwarded, Sent) else forwarded
        assert request.prefix[0] == b"" and len(request.prefix) == 3, request
        name = self.name if dispatcher == "self" else dispatcher
        reply = request.error(payload, dispatcher=name) if error else request.reply(payload, dispatcher=name)
        return reply

    def beat_answer(self, beat: Sent) -> Message:
        """How a dispatcher answers a heartbeat: the reply of the DBP (a DBQ), same identifier."""
        return kinds.heartbeat_answer(beat.message, 1764326400.25).with_prefix(b"")

    def command(self, command: str, **fields: Any) -> Message:
        return query("DBQ", self.service, dispatcher=self.name, command=command, **fields)


__all__ = ["BLANK", "DELIMITER", "FAIL", "Direction", "Harness", "DispatcherPeer", "LOOKUP", "Sent",
           "Text", "check", "matches", "query"]
