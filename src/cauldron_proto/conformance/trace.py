"""The conformance case format: YAML files, loaded into frozen msgspec Structs and checked.

A case (one YAML file) names its peers, its variables and its steps; ``load_case`` reads
and validates one, ``load_cases`` a directory, in run order: ordinary cases by id, then
the cases that may crash a broker (``crash_risk: true``). The format is documented in
``conformance/README.md``; frames are described in :mod:`.frames`.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from .frames import CaseError, Frame, FramePattern, names_used

__all__ = ["Case", "Peer", "Var", "Send", "Expect", "Nothing", "Wait", "AwaitSubscription",
           "Step", "SETTINGS", "load_case", "load_cases", "parse_case", "default_cases_dir", "seconds",
           "step_frames", "binds", "names_used", "Frame", "FramePattern"]

#: Broker settings a case may require, and the ``${settings.NAME}`` variables they give.
SETTINGS = ("heartbeat_timeout", "lookup")

Level = Literal["MUST", "SHOULD"]
Deadline = float | str
_DEADLINE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*\*?\s*T)?\s*(?:\+?\s*(\d+(?:\.\d+)?))?\s*$")


class Var(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A variable made fresh for each run: ``random`` kind (with a text ``prefix``) or a ``value``."""

    random: Literal["name", "identifier", "routing_id"] | None = None
    prefix: str = ""
    value: str | None = None


class Peer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One socket the runner opens toward the broker."""

    socket: Literal["REQ", "DEALER", "SUB", "PUB"]
    role: Literal["client", "dispatcher", "inquirer", "publisher", "subscriber"] = "client"
    routing_id: Frame | None = None
    subscribe: list[Frame] = []
    answer_heartbeats: bool | None = None

    @property
    def connect(self) -> str:
        """The broker address this socket connects to."""
        return {"SUB": "subscribe", "PUB": "publish"}.get(self.socket, "router")

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


Step = Send | Expect | Nothing | Wait | AwaitSubscription
_STEP_KINDS = {"send": Send, "expect": Expect, "nothing": Nothing, "wait": Wait,
               "await_subscription": AwaitSubscription}


class Case(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    description: str
    level: Level
    peers: dict[str, Peer]
    steps: list[Any]  # each a Step (Send, Expect, ...), converted by its key in parse_case
    vars: dict[str, Var] = {}
    requires: list[Literal["heartbeat_timeout", "lookup"]] = []
    crash_risk: bool = False
    covers: list[str] = []
    recorded_from: str | None = None
    source: str | None = None


def seconds(deadline: Deadline, heartbeat_timeout: float | None) -> float:
    """A deadline in seconds: a number, or ``"aT + b"`` with T the broker's heartbeat timeout."""
    if isinstance(deadline, (int, float)):
        return float(deadline)
    found = _DEADLINE.match(deadline)
    if found is None or not any(found.groups()):
        raise CaseError(f"deadline {deadline!r} is not seconds or 'aT + b'")
    factor, extra = found.groups()
    if factor is not None and heartbeat_timeout is None:
        raise CaseError(f"deadline {deadline!r} needs the heartbeat timeout")
    return float(factor or 0) * (heartbeat_timeout or 0) + float(extra or 0)


def _step(raw: object, where: str) -> Step:
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: a step is a mapping, got {raw!r}")
    kinds = [key for key in raw if key in _STEP_KINDS]
    if len(kinds) != 1:
        raise CaseError(f"{where}: a step has exactly one of {', '.join(_STEP_KINDS)}")
    try:
        return msgspec.convert(raw, _STEP_KINDS[kinds[0]])
    except msgspec.ValidationError as exc:
        raise CaseError(f"{where}: {exc}") from None


def parse_case(raw: object, source: str) -> Case:
    """A case from its YAML data, validated; errors name the source and the problem."""
    if not isinstance(raw, dict):
        raise CaseError(f"{source}: a case is a mapping")
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise CaseError(f"{source}: a case needs a list of steps")
    data = {**raw, "steps": [], "source": source}
    try:
        case = msgspec.convert(data, Case)
    except msgspec.ValidationError as exc:
        raise CaseError(f"{source}: {exc}") from None
    case = msgspec.structs.replace(case, steps=[_step(s, f"{source}: step {i + 1}") for i, s in enumerate(steps)])
    from .validate import validate

    validate(case)
    return case


def load_case(path: str | Path) -> Case:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseError(f"{path}: not valid YAML: {exc}") from None
    return parse_case(raw, str(path))


def default_cases_dir() -> Path:
    """The cases shipped with the package (``cauldron_proto/conformance/cases``)."""
    return Path(str(resources.files("cauldron_proto.conformance") / "cases"))


def load_cases(directory: str | Path | None = None) -> list[Case]:
    """Every ``*.yaml`` case in a directory, in run order (crash-risk cases last)."""
    directory = Path(directory) if directory is not None else default_cases_dir()
    cases = [load_case(path) for path in sorted(directory.glob("*.yaml"))]
    seen: dict[str, str] = {}
    for case in cases:
        if case.id in seen:
            raise CaseError(f"{case.source}: case id {case.id!r} already used by {seen[case.id]}")
        seen[case.id] = case.source or ""
    return sorted(cases, key=lambda c: (c.crash_risk, c.id))


def step_frames(step: Step) -> list[Frame]:
    """Every frame spec a step holds (for validation and coverage)."""
    if isinstance(step, Send):
        return list(step.frames)
    if isinstance(step, Expect):
        return [f for alternative in step.alternatives for f in alternative]
    if isinstance(step, AwaitSubscription):
        return [step.topic]
    return []


def binds(spec: Frame) -> set[str]:
    """Variables a frame spec binds."""
    if isinstance(spec, str):
        return set()
    found = {spec.bind} if spec.bind else set()
    for alternative in spec.one_of or ():
        found |= binds(alternative)
    return found

