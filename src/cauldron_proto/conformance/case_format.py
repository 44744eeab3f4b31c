"""The conformance case format: YAML files, loaded into frozen msgspec Structs and checked.

A case (one YAML file) names its peers, its variables and its steps (:mod:`.loading` reads
and validates them). The format is documented in
``conformance/README.md``; frames are described in :mod:`.frames`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from ..protocol import DISPATCHER_LIVENESS, EXPIRY_MULTIPLE
from .frames import CaseError, Frame, FramePattern, names_used

__all__ = ["Case", "Peer", "Var", "Send", "Expect", "Nothing", "Wait", "AwaitSubscription",
           "Step", "Run", "Finish", "SETTINGS", "DISPATCHER_SETTINGS", "CLIENT_SETTINGS", "Suite", "seconds",
           "step_frames", "step_peers", "binds", "names_used", "Frame", "FramePattern"]

#: Broker settings a case may require, and the ``${settings.NAME}`` variables they give.
SETTINGS = ("heartbeat_timeout", "lookup")
#: What the dispatcher suite knows of the dispatcher under test: learned from its welcome
#: (``service``, ``dispatcher``) and its keywords (``keyword``, ``keyword_type``,
#: ``enumerated``), or given (``write_*``, ``refuse_*``); ``${settings.NAME}`` in its cases.
DISPATCHER_SETTINGS = ("heartbeat_timeout", "service", "dispatcher", "keyword", "keyword_type", "enumerated",
                       "write_keyword", "write_value", "refuse_keyword", "refuse_value")
#: What the client suite knows: the commands that drive the client under test (``run: read``
#: starts ``read_command``), and the service, keyword and value they are given.
CLIENT_SETTINGS = ("service", "dispatcher", "keyword", "write_value", "read_command", "write_command",
                   "monitor_command")
Suite = Literal["broker", "dispatcher", "client"]

Level = Literal["MUST", "SHOULD"]
Deadline = float | str
#: A term of a deadline: seconds, or a number of heartbeat periods (``T``, ``2T``, ``EXPIRY``).
_TERM = re.compile(r"^(?:(\d+(?:\.\d+)?)\s*\*?\s*)?(T|EXPIRY|LIVENESS)$|^(\d+(?:\.\d+)?)$")
#: Heartbeat periods of each unit a deadline may name: the protocol's own constants.
PERIODS = {"T": 1, "EXPIRY": EXPIRY_MULTIPLE, "LIVENESS": DISPATCHER_LIVENESS}


class Var(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A variable made fresh for each run: ``random`` kind (with a text ``prefix``) or a ``value``."""

    random: Literal["name", "identifier", "routing_id"] | None = None
    prefix: str = ""
    value: str | None = None
    setting: str | None = None  # the setting's value when the run has it, else unbound (for {bind: ...})


class Peer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One socket the runner opens toward the broker (broker suite), or one side of the
    broker the runner plays (dispatcher and client suites: ``ROUTER``, what the peer's DEALER
    or REQ sends and receives; ``XSUB``, the broadcasts a dispatcher's PUB publishes;
    ``XPUB``, broadcasts to a client's SUB and the subscriptions it sends)."""

    socket: Literal["REQ", "DEALER", "SUB", "PUB", "ROUTER", "XSUB", "XPUB"]
    role: Literal["client", "dispatcher", "inquirer", "publisher", "subscriber", "broker"] = "client"
    routing_id: Frame | None = None
    subscribe: list[Frame] = []
    answer_heartbeats: bool | None = None
    address: Frame | None = None  # connect here (a variable bound by an earlier step) on first use
    send_heartbeats: bool = True  # ROUTER: the runner heartbeats the dispatcher while the case runs

    @property
    def connect(self) -> str:
        """The broker address this socket connects to."""
        return {"SUB": "subscribe", "PUB": "publish"}.get(self.socket, "router")

    @property
    def lazy(self) -> bool:
        """Opened when a step first names it (its address is bound by then)."""
        return self.address is not None

    @property
    def auto_heartbeat(self) -> bool:
        """Whether the runner answers the broker's heartbeats for this peer (dispatchers: yes)."""
        return self.role == "dispatcher" if self.answer_heartbeats is None else self.answer_heartbeats


class Send(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    send: str
    frames: list[Frame]
    note: str | None = None


class Expect(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    expect: str
    frames: list[Frame] | None = None
    one_of: list[list[Frame]] | None = None
    within: Deadline = 2.0
    optional: bool = False
    note: str | None = None

    @property
    def alternatives(self) -> list[list[Frame]]:
        return [self.frames] if self.frames is not None else list(self.one_of or ())


class Nothing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    nothing: str | list[str]
    within: Deadline = 0.3
    note: str | None = None

    @property
    def peers(self) -> list[str]:
        return [self.nothing] if isinstance(self.nothing, str) else list(self.nothing)


class Wait(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    wait: Deadline
    note: str | None = None


class AwaitSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    await_subscription: str
    topic: Frame
    within: Deadline = 2.0
    note: str | None = None


class Run(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Client suite: start the command that drives the client under test (``read``: ``read_command``)."""

    run: str
    note: str | None = None


class Finish(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Client suite: the command started by ``run`` exits within the deadline, with this
    status, its standard output matching ``output`` (a frame pattern, e.g. ``{match: ...}``)."""

    finish: str
    status: int | Literal["nonzero"] = 0
    output: Frame | None = None
    within: Deadline = 10.0
    note: str | None = None


Step = Send | Expect | Nothing | Wait | AwaitSubscription | Run | Finish
STEP_KINDS = {"send": Send, "expect": Expect, "nothing": Nothing, "wait": Wait,
               "await_subscription": AwaitSubscription, "run": Run, "finish": Finish}


class Case(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    description: str
    level: Level
    peers: dict[str, Peer]
    steps: list[Any]  # each a Step (Send, Expect, ...), converted by its key in parse_case
    vars: dict[str, Var] = {}
    requires: list[str] = []
    crash_risk: bool = False
    covers: list[str] = []
    recorded_from: str | None = None
    generated_from: str | None = None  # the spec entry a generated case comes from (python -m codegen)
    defect: str | None = None  # the known defect of an implementation this case catches
    suite: Suite = "broker"    # what the case checks: a broker, a dispatcher or a client (the runner plays the rest)
    opening: bool = False      # dispatcher suite: the dispatcher's first exchange; runs first
    source: str | None = None


def seconds(deadline: Deadline, heartbeat_timeout: float | None) -> float:
    """A deadline in seconds: a number, or a sum such as ``"EXPIRY + 2T + 1"`` of seconds and
    heartbeat periods: ``aT`` (T the broker's heartbeat timeout), ``EXPIRY``
    (:data:`~cauldron_proto.protocol.EXPIRY_MULTIPLE` T), ``LIVENESS``
    (:data:`~cauldron_proto.protocol.DISPATCHER_LIVENESS` T)."""
    if isinstance(deadline, (int, float)):
        return float(deadline)
    total, periods = 0.0, 0.0
    for term in deadline.split("+"):
        found = _TERM.match(term.strip())
        if found is None:
            raise CaseError(f"deadline {deadline!r} is not seconds or a sum such as 'EXPIRY + 2T + 1'")
        factor, unit, plain = found.groups()
        if plain is not None:
            total += float(plain)
        else:
            periods += float(factor or 1) * PERIODS[unit]
    if periods and heartbeat_timeout is None:
        raise CaseError(f"deadline {deadline!r} needs the heartbeat timeout")
    return total + periods * (heartbeat_timeout or 0)


def step_frames(step: Step) -> list[Frame]:
    """Every frame spec a step holds (for validation and coverage)."""
    if isinstance(step, Send):
        return list(step.frames)
    if isinstance(step, Expect):
        return [f for alternative in step.alternatives for f in alternative]
    if isinstance(step, AwaitSubscription):
        return [step.topic]
    if isinstance(step, Finish) and step.output is not None:
        return [step.output]
    return []


def step_peers(step: Step) -> list[str]:
    """The peers a step names."""
    if isinstance(step, Send):
        return [step.send]
    if isinstance(step, Expect):
        return [step.expect]
    if isinstance(step, Nothing):
        return step.peers
    if isinstance(step, AwaitSubscription):
        return [step.await_subscription]
    return []


def binds(spec: Frame) -> set[str]:
    """Variables a frame spec binds."""
    if isinstance(spec, str):
        return set()
    found = {spec.bind} if spec.bind else set()
    for alternative in spec.one_of or ():
        found |= binds(alternative)
    return found

