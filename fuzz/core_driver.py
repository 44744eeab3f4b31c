"""Play a fuzz program against the routing core with a fake clock, checking it step by step.

A program is a list of actions, each a tuple of small ints (and mutations):

- ``(SEND, peer, template, variant, mutations)``: peer ``PEERS[peer]`` sends a seed message
  (see :mod:`fuzz.seeds`) with a fresh identifier, mutated.
- ``(REPLY, pick, how, mutations)``: a dispatcher answers one of the requests the core
  forwarded to it (or an impostor does, or it answers twice), maybe mutated.
- ``(BEAT, pick)``: a dispatcher answers one of the heartbeats the core sent it.
- ``(ADVANCE, step)``: the clock moves by ``STEPS[step]`` heartbeat periods (0 to 10^6).

Checked after every step (an AssertionError says which):

1. Nothing escapes the core, and it logs no internal error.
2. Everything it sends decodes, and goes to a peer that has sent something.
3. Its books agree with themselves; no idle service, no empty peer entry, no orphaned
   fan-out copy; no dispatcher over ``max_in_flight``; requests in flight never outnumber
   requests sent and not answered yet.
4. Its timers: ``tick(t)`` for any ``t`` before ``next_deadline()`` does nothing.

And at the end (:meth:`CoreDriver.finish`: the clock runs on until every dispatcher is
silent for ``EXPIRY_MULTIPLE`` T and every fan-out is past its deadline): every request (a query, well-formed
or salvageable, except ``ready`` and heartbeat answers) got exactly one answer, nothing got
two, and the core remembers nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from cauldron_proto import EXPIRY_MULTIPLE, FAIL, Direction, Kind, Message, RemoteProtocolError, decode, encode, kinds, salvage
from cauldron_proto.broker.core import BrokerCore

from .seeds import NAMES, Mutation, mutate, seed

__all__ = ["SEND", "REPLY", "BEAT", "ADVANCE", "PEERS", "STEPS", "CoreDriver", "run_program"]

SEND, REPLY, BEAT, ADVANCE = range(4)
PEERS = (b"C0", b"C1", b"C2", b"D0", b"D1", b"D2", b"\x00\x80\x00\x00\x01")
STEPS = (0.0, 1e-9, 0.01, 0.25, 0.5, 0.999, 1.0, 1.001, 2.0, 3.0, 4.999, 5.0, 5.001, 7.5, 60.0, 3600.0, 1e6)
_KEEP = 200  # forwarded requests and heartbeats remembered for REPLY and BEAT
_NOT_ANSWERED = {"ready", "heartbeat"}  # DBQ commands the core answers only when refusing them


class CoreDriver:
    """A routing core, a fake clock, the peers' books, and the checks."""

    def __init__(self, *, timeout: float = 1.0, fanout_timeout: float = 4.0, heartbeat: bool = True,
                 max_in_flight: int | None = None):
        self.core = BrokerCore("tcp://localhost:6511", timeout=timeout, heartbeat=heartbeat,
                               fanout_timeout=fanout_timeout, name="fuzz")
        if max_in_flight is not None:
            self.core.max_in_flight = max_in_flight
        self.timeout, self.fanout_timeout = timeout, fanout_timeout
        self.now = 1000.0
        self.sent: Counter = Counter()  # (peer, identifier) -> messages sent with it
        self.must_answer: Counter = Counter()  # (peer, identifier) -> requests that must be answered
        self.answers: Counter = Counter()  # (peer, identifier) -> answers received
        self.waiting = 0  # messages sent minus answers received
        self.forwarded: list[tuple[bytes, Message]] = []
        self.beats: list[tuple[bytes, Message]] = []
        self.peers_seen: set[bytes] = set()
        self.steps = 0
        self._ids = 0

    # Actions ------------------------------------------------------------------------------
    def run(self, program: Sequence[tuple]) -> None:
        for action in program:
            self.step(action)

    def step(self, action: tuple) -> None:
        kind = action[0]
        if kind == SEND:
            _, peer, template, variant, mutations = action
            self._ids += 1
            frames = seed(template, variant, b"id%08d" % self._ids)
            self.send(PEERS[peer % len(PEERS)], mutate(frames, mutations))
        elif kind == REPLY and self.forwarded:
            self._reply(*action[1:])
        elif kind == BEAT and self.beats:
            peer, beat = self.beats[action[1] % len(self.beats)]
            self.send(peer, encode(kinds.heartbeat_answer(beat, 1764326400.25).with_prefix(b"")))
        elif kind == ADVANCE:
            self.advance(STEPS[action[1] % len(STEPS)] * self.timeout)
        self.steps += 1

    def _reply(self, pick: int, how: int, mutations: Sequence[Mutation]) -> None:
        peer, request = self.forwarded[pick % len(self.forwarded)]
        name = request.dispatcher or NAMES[pick % len(NAMES)]
        payload = ("42", None, FAIL, "integer", "err", "")[how % 6]
        if how % 6 == 4:
            reply = request.error(payload, dispatcher=name)
        else:
            reply = request.reply(payload, dispatcher=None if how % 6 == 5 else name)
        frames = mutate(encode(reply), mutations)
        sender = PEERS[(PEERS.index(peer) + 1) % len(PEERS)] if (how // 6) % 3 == 1 and peer in PEERS else peer
        self.send(sender, frames)
        if (how // 6) % 3 == 2:
            self.send(sender, frames)  # a dispatcher that answers twice

    def send(self, peer: bytes, frames: list[bytes]) -> None:
        """``peer`` sends ``frames`` to the core; record what must be answered, check the output."""
        self.peers_seen.add(peer)
        must, identifier = _must_answer(frames)
        key = (peer, identifier)
        self.sent[key] += 1
        self.waiting += 1
        if must:
            self.must_answer[key] += 1
        self._received(self.core.handle(peer, frames, self.now))

    def advance(self, seconds: float) -> None:
        """Move the clock; ``tick`` must do nothing when the core said nothing was due yet."""
        due = self.core.next_deadline()
        self.now += seconds
        out = self.core.tick(self.now)
        if due is None or self.now < due:
            assert out == [], f"tick({self.now}) sent {len(out)} messages before next_deadline() {due}"
        self._received(out)

    def finish(self) -> None:
        """Run the clock on until every dispatcher expired and every fan-out ended; final checks."""
        for _ in range(3):
            self.advance(EXPIRY_MULTIPLE * self.timeout + self.fanout_timeout + 1.0)
        core = self.core
        if core.heartbeat:
            assert core.registry.services == {} and core.registry.by_peer == {} and core.requests.at == {} \
                and core.fanouts.by_service == {}, f"the core still remembers {core.registry.services}"
            assert core.next_deadline() is None
        for key, count in self.must_answer.items():
            got = self.answers[key]
            if self.core.heartbeat:
                assert got >= 1, f"request {key} was never answered"
            if self.sent[key] == 1:
                assert got <= 1, f"request {key} was answered {got} times"
        for key, got in self.answers.items():
            assert got <= self.sent[key], f"{key}: {got} answers to {self.sent[key]} messages"
        stats = self.core.stats
        assert "internal_error" not in stats.dropped_by_reason, stats

    # Checks -------------------------------------------------------------------------------
    def _received(self, out: list[list[bytes]]) -> None:
        for frames in out:
            to = frames[0]
            assert to in self.peers_seen, f"the core sent to {to!r}, a peer that never sent anything"
            try:
                message = decode(frames[1:])
            except RemoteProtocolError as exc:
                raise AssertionError(f"the core sent frames that do not decode ({exc}): {frames}") from None
            kind = message.direction.kind
            if kind in (Kind.REPLY, Kind.ERROR) and (to, message.identifier) in self.sent:
                self.answers[(to, message.identifier)] += 1
                self.waiting -= 1
            elif message.direction in (Direction.CDQ, Direction.SDQ):
                self.forwarded = [*self.forwarded[-_KEEP:], (to, message)]
            elif message.direction == Direction.DBP and message.command == "heartbeat":
                self.beats = [*self.beats[-_KEEP:], (to, message)]
        self._check_books()

    def _check_books(self) -> None:
        core = self.core
        assert "internal_error" not in core.stats.dropped_by_reason, "the core logged an internal error"
        problems = core.audit()
        assert not problems, problems
        requests = 0
        for fanouts in core.fanouts.by_service.values():
            requests += len(fanouts)
            for client, ident in fanouts:
                assert self.answers[(client, ident)] < self.sent[(client, ident)], "answered fan-out kept"
        for table in core.requests.at.values():
            for (_, client, ident), entry in table.items():
                assert self.answers[(client, ident)] < self.sent[(client, ident)], \
                    f"request {(client, ident)} answered but still in flight"
                requests += entry.fanout is None
        assert requests <= self.waiting, f"{requests} requests in flight, only {self.waiting} unanswered"


def _must_answer(frames: list[bytes]) -> tuple[bool, bytes]:
    """Whether the broker must answer: a query, well-formed or salvageable, but not
    ready/heartbeat; and the identifier its answer carries (a salvaged one for bad frames)."""
    try:
        message = decode(frames)
    except RemoteProtocolError:
        salvaged = salvage(frames)
        if salvaged is None:
            return False, frames[-1] if frames else b""
        return salvaged.direction.kind == Kind.QUERY, salvaged.identifier
    if message.direction.kind != Kind.QUERY:
        return False, message.identifier
    quiet = message.direction == Direction.DBQ and message.command in _NOT_ANSWERED and message.prefix == (b"",)
    return not quiet, message.identifier


def run_program(program: Sequence[tuple], **options) -> CoreDriver:
    """Play ``program`` against a new core and finish it; the driver (for its counters)."""
    driver = CoreDriver(**options)
    driver.run(program)
    driver.finish()
    return driver
