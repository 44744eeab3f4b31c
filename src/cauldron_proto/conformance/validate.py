"""Static checks of a loaded case, so that a bad case fails at load time with a clear message.

Checked: the id's form; peers named by steps exist and can do the step (a SUB cannot send, a
PUB receives nothing); a REQ peer alternates send and receive; every variable a frame reads
is declared, bound earlier or a required setting; deadlines in T require the heartbeat
timeout; hex and regular expressions are well formed.
"""

from __future__ import annotations

import re

from .frames import CaseError, Frame
from .case_format import (
    CLIENT_SETTINGS,
    DISPATCHER_SETTINGS,
    SETTINGS,
    AwaitSubscription,
    Case,
    Expect,
    Finish,
    Nothing,
    Run,
    Send,
    Wait,
    binds,
    names_used,
    seconds,
    step_peers,
)

_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
#: The sockets each suite's peers may be: toward a broker, or the sides of the broker the runner plays.
_SOCKETS = {"broker": ("REQ", "DEALER", "SUB", "PUB"), "dispatcher": ("ROUTER", "XSUB"), "client": ("ROUTER", "XPUB")}
_SENDS, _RECEIVES = ("REQ", "DEALER", "PUB", "ROUTER", "XPUB"), ("REQ", "DEALER", "SUB", "ROUTER", "XSUB")
_KNOWN = {"broker": SETTINGS, "dispatcher": DISPATCHER_SETTINGS, "client": CLIENT_SETTINGS}


def validate(case: Case) -> None:
    where = case.source or case.id
    if not _ID.match(case.id):
        raise CaseError(f"{where}: id {case.id!r} must be lower-case letters, digits, '.' and '-'")
    known = _KNOWN[case.suite]
    for name in case.requires:
        if name not in known:
            raise CaseError(f"{where}: requires {name!r}: a {case.suite} case may require {', '.join(known)}")
    for name, var in case.vars.items():
        if sum(x is not None for x in (var.random, var.value, var.setting)) != 1:
            raise CaseError(f"{where}: vars.{name}: give exactly one of random, value or setting")
        if var.setting is not None and var.setting not in known:
            raise CaseError(f"{where}: vars.{name}: no setting {var.setting!r}")
    if case.opening and case.suite != "dispatcher":
        raise CaseError(f"{where}: only a dispatcher case is an opening case")
    bound = {n for n, v in case.vars.items() if v.setting is None} | {f"settings.{s}" for s in case.requires}
    if case.suite in ("dispatcher", "client"):
        bound |= {"settings.service", "settings.dispatcher"}  # learned from its welcome, or given
    lazy = {name: peer.address for name, peer in case.peers.items() if peer.address is not None}  # the lazy peers
    for name, peer in case.peers.items():
        if peer.socket not in _SOCKETS[case.suite]:
            raise CaseError(f"{where}: peers.{name}: a {case.suite} case's peers are {', '.join(_SOCKETS[case.suite])}")
        for spec in [peer.routing_id, *peer.subscribe]:
            if spec is not None:
                _check_frame(spec, bound | (set(case.vars) if peer.lazy else set()), case, f"peers.{name}")
        if peer.socket not in ("SUB", "XSUB") and peer.subscribe:
            raise CaseError(f"{where}: peers.{name}: only a SUB or XSUB peer subscribes")
    outstanding: set[str] = set()
    running: set[str] = set()
    for index, step in enumerate(case.steps, 1):
        at = f"step {index}"
        _check_deadlines(step, case, at)
        for name in step_peers(step):
            if name in lazy:
                _check_frame(lazy.pop(name), bound, case, f"{at} (opens peer {name!r} at its address)")
        if isinstance(step, Send):
            peer = _peer(case, step.send, at, _SENDS)
            if peer.socket == "REQ":
                if step.send in outstanding:
                    raise CaseError(f"{where}: {at}: REQ peer {step.send!r} sends again before its reply")
                outstanding.add(step.send)
            for spec in step.frames:
                _check_frame(spec, bound, case, at, sending=True)
        elif isinstance(step, Expect):
            peer = _peer(case, step.expect, at, _RECEIVES)
            if not step.alternatives or (step.frames is not None and step.one_of is not None):
                raise CaseError(f"{where}: {at}: expect needs frames or one_of (not both)")
            new = [_check_message(alternative, bound, case, at) for alternative in step.alternatives]
            if not step.optional:
                bound |= set.intersection(*new)
                outstanding.discard(step.expect)
        elif isinstance(step, Nothing):
            for name in step.peers:
                _peer(case, name, at, _RECEIVES)
        elif isinstance(step, AwaitSubscription):
            _peer(case, step.await_subscription, at, ("PUB", "XPUB"))
            _check_frame(step.topic, bound, case, at, sending=True)
        elif isinstance(step, (Run, Finish)):
            name = step.run if isinstance(step, Run) else step.finish
            if case.suite != "client" or f"{name}_command" not in case.requires:
                raise CaseError(f"{where}: {at}: a client case that requires {name}_command runs {name!r}")
            if isinstance(step, Run):
                if name in running:
                    raise CaseError(f"{where}: {at}: {name!r} runs again before it finished")
                running.add(name)
            else:
                if name not in running:
                    raise CaseError(f"{where}: {at}: {name!r} finishes before it runs")
                running.discard(name)
                if step.output is not None:
                    _check_frame(step.output, bound, case, at)


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
            hint = " (add it to requires)" if name.removeprefix("settings.") in SETTINGS + DISPATCHER_SETTINGS else ""
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
