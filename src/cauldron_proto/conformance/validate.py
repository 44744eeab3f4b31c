"""Static checks of a loaded case, so that a bad case fails at load time with a clear message.

Checked: the id's form; peers named by steps exist and can do the step (a SUB cannot send, a
PUB receives nothing); a REQ peer alternates send and receive; every variable a frame reads
is declared, bound earlier or a required setting; deadlines in T require the heartbeat
timeout; hex and regular expressions are well formed.
"""

from __future__ import annotations

import re

from .frames import CaseError, Frame
from .trace import (
    SETTINGS,
    AwaitSubscription,
    Case,
    Expect,
    Nothing,
    Send,
    Wait,
    binds,
    names_used,
    seconds,
)

_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def validate(case: Case) -> None:
    where = case.source or case.id
    if not _ID.match(case.id):
        raise CaseError(f"{where}: id {case.id!r} must be lower-case letters, digits, '.' and '-'")
    for name, var in case.vars.items():
        if (var.random is None) == (var.value is None):
            raise CaseError(f"{where}: vars.{name}: give exactly one of random or value")
    bound = set(case.vars) | {f"settings.{s}" for s in case.requires}
    for name, peer in case.peers.items():
        for spec in [peer.routing_id, *peer.subscribe]:
            if spec is not None:
                _check_frame(spec, bound, case, f"peers.{name}")
        if peer.socket not in ("SUB",) and peer.subscribe:
            raise CaseError(f"{where}: peers.{name}: only a SUB peer subscribes")
    outstanding: set[str] = set()
    for index, step in enumerate(case.steps, 1):
        at = f"step {index}"
        _check_deadlines(step, case, at)
        if isinstance(step, Send):
            peer = _peer(case, step.send, at, ("REQ", "DEALER", "PUB"))
            if peer.socket == "REQ":
                if step.send in outstanding:
                    raise CaseError(f"{where}: {at}: REQ peer {step.send!r} sends again before its reply")
                outstanding.add(step.send)
            for spec in step.frames:
                _check_frame(spec, bound, case, at, sending=True)
        elif isinstance(step, Expect):
            peer = _peer(case, step.expect, at, ("REQ", "DEALER", "SUB"))
            if not step.alternatives or (step.frames is not None and step.one_of is not None):
                raise CaseError(f"{where}: {at}: expect needs frames or one_of (not both)")
            new = [_check_message(alternative, bound, case, at) for alternative in step.alternatives]
            if not step.optional:
                bound |= set.intersection(*new)
                outstanding.discard(step.expect)
        elif isinstance(step, Nothing):
            for name in step.peers:
                _peer(case, name, at, ("REQ", "DEALER", "SUB"))
        elif isinstance(step, AwaitSubscription):
            _peer(case, step.await_subscription, at, ("PUB",))
            _check_frame(step.topic, bound, case, at, sending=True)


def _peer(case: Case, name: str, at: str, sockets: tuple[str, ...]):
    peer = case.peers.get(name)
    if peer is None:
        raise CaseError(f"{case.source or case.id}: {at}: no peer named {name!r}")
    if peer.socket not in sockets:
        raise CaseError(f"{case.source or case.id}: {at}: a {peer.socket} peer ({name!r}) cannot do this step")
    return peer


def _check_deadlines(step, case: Case, at: str) -> None:
    deadline = step.wait if isinstance(step, Wait) else getattr(step, "within", None)
    if deadline is None:
        return
    timeout = 1.0 if "heartbeat_timeout" in case.requires else None
    try:
        if seconds(deadline, timeout) < 0:
            raise CaseError("negative deadline")
    except CaseError as exc:
        raise CaseError(f"{case.source or case.id}: {at}: {exc} (add heartbeat_timeout to requires?)") from None


def _check_message(specs: list[Frame], bound: set[str], case: Case, at: str) -> set[str]:
    scope = set(bound)
    for spec in specs:
        _check_frame(spec, scope, case, at)
        scope |= binds(spec)
    return scope - bound


def _check_frame(spec: Frame, bound: set[str], case: Case, at: str, sending: bool = False) -> None:
    where = f"{case.source or case.id}: {at}"
    for name in names_used(spec):
        if name not in bound:
            hint = " (add it to requires)" if name.removeprefix("settings.") in SETTINGS else ""
            raise CaseError(f"{where}: variable {name!r} is not declared or bound before this step{hint}")
    if isinstance(spec, str):
        return
    if spec.hex is not None:
        try:
            bytes.fromhex(spec.hex)
        except ValueError:
            raise CaseError(f"{where}: {spec.hex!r} is not hex") from None
        return
    if sending and (spec.bind not in bound or spec.match or spec.one_of or spec.any):
        raise CaseError(f"{where}: a frame to send is text, hex or a bound {{bind: NAME}}")
    if spec.match is not None:
        try:
            re.compile(spec.match)
        except re.error as exc:
            raise CaseError(f"{where}: bad regular expression {spec.match!r}: {exc}") from None
    for alternative in spec.one_of or ():
        _check_frame(alternative, bound, case, at)
