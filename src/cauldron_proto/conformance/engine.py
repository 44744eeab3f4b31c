"""Playing one case through a link: the part of the runner shared by every kind of broker.

Theory of operation: a *link* (:class:`Link`) gives the engine sockets-or-not peers: it
opens peers, sends frames for a peer, and ``poll(timeout)`` waits (on a real or fake clock)
for frames arriving at any peer. The engine keeps one inbox per peer, answers the broker's
heartbeats for peers that answer them (as a real dispatcher would, so a case is not
disturbed by a broker's short heartbeat period), and plays the steps in order. Each step
either passes or ends the case with a :class:`Result` saying why, with the expected and the
actual frames and the wire log. At the end, a message still unread by its peer (other than
a heartbeat) fails the case: a broker must not send what the case does not expect.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
import time
import traceback
from collections import deque
from typing import Literal, Protocol

import msgspec

from cauldron_proto import Direction, RemoteProtocolError, decode, encode, kinds

from .frames import CaseError, Env, match_frames, names_used, render, show, show_spec
from .settings import Settings, needs
from .case_format import AwaitSubscription, Case, Expect, Finish, Nothing, Peer, Run, Send, Step, Wait, seconds

__all__ = ["Settings", "Result", "WireEvent", "Link", "BrokerFailure", "run_case", "fresh_env"]

Status = Literal["pass", "fail", "timeout", "skipped", "error"]


#: What a line of the wire log records.
WireWhat = Literal["send", "recv", "auto", "drop", "note"]


class WireEvent(msgspec.Struct, frozen=True):
    """One line of a case's wire log: seconds since the case began, peer, what, frames."""

    t: float
    peer: str
    what: WireWhat
    frames: list[str]


class Result(msgspec.Struct, omit_defaults=True):
    id: str
    level: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    step: int | None = None
    expected: list[list[str]] | None = None
    actual: list[str] | None = None
    wire: list[WireEvent] = []
    defect: str | None = None  # the case's known defect, when it did not pass


class BrokerFailure(AssertionError):
    """The broker under test failed in a way the link saw (for example the core raised)."""


class Link(Protocol):
    def now(self) -> float: ...
    def skip_reason(self, case: Case) -> str | None: ...
    def open(self, name: str, peer: Peer, routing_id: bytes | None, subscriptions: list[bytes],
             address: str | None = None) -> None: ...
    def send(self, name: str, frames: list[bytes]) -> None: ...
    def poll(self, timeout: float) -> list[tuple[str, list[bytes]]]: ...
    def await_subscription(self, name: str, topic: bytes, timeout: float) -> bool: ...
    def close(self) -> None: ...


class _Stop(Exception):
    def __init__(self, status: Status, reason: str, expected=None, actual=None):
        super().__init__(reason)
        self.status, self.reason, self.expected, self.actual = status, reason, expected, actual


def fresh_env(case: Case, settings: Settings) -> Env:
    """The case's variables with fresh random values, and the settings it requires."""
    env: Env = {}
    for name, var in case.vars.items():
        token = secrets.token_hex(4)
        if var.random == "identifier":
            env[name] = secrets.token_bytes(16)
        elif var.random == "routing_id":
            env[name] = f"{var.prefix or 'peer-'}{token}".encode()
        elif var.random == "name":
            env[name] = f"{var.prefix or 'X'}{token.upper() if var.prefix.isupper() else token}".encode()
        elif var.setting is not None:
            found = settings.value(var.setting)
            if found is not None:
                env[name] = found.encode("utf-8")
        else:
            env[name] = (var.value or "").encode("utf-8")
    for key in msgspec.structs.fields(Settings):
        value = settings.value(key.name)
        if value is not None:
            env[f"settings.{key.name}"] = value.encode("utf-8")
    return env


class _CaseRun:
    def __init__(self, case: Case, link: Link, settings: Settings):
        self.case, self.link, self.settings = case, link, settings
        self.env = fresh_env(case, settings)
        self.inbox: dict[str, deque[list[bytes]]] = {name: deque() for name in case.peers}
        self.wire: list[WireEvent] = []
        self.unopened: set[str] = set()
        self.processes: dict[str, subprocess.Popen] = {}
        self.start = link.now()

    def log(self, peer: str, what: WireWhat, frames: list[bytes] | list[str]) -> None:
        shown = [f if isinstance(f, str) else show(f) for f in frames]
        self.wire.append(WireEvent(round(self.link.now() - self.start, 4), peer, what, shown))

    def open_peers(self) -> None:
        self.unopened = {name for name, peer in self.case.peers.items() if peer.lazy}
        for name, peer in self.case.peers.items():
            if not peer.lazy:
                self.open(name, peer)

    def open(self, name: str, peer: Peer) -> None:
        rid = render(peer.routing_id, self.env) if peer.routing_id is not None else None
        topics = [render(t, self.env) for t in peer.subscribe]
        if peer.address is not None:  # a lazy peer
            address = render(peer.address, self.env)
            self.log(name, "note", [f"connect to {show(address)}"])
            self.link.open(name, peer, rid, topics, address=address.decode("utf-8", "replace"))
        else:
            self.link.open(name, peer, rid, topics)

    def pump(self, timeout: float) -> None:
        for name, frames in self.link.poll(max(0.0, timeout)):
            if not self._answer_heartbeat(name, frames):
                self.log(name, "recv", frames)
                self.inbox[name].append(frames)

    def _answer_heartbeat(self, name: str, frames: list[bytes]) -> bool:
        peer = self.case.peers[name]
        if not peer.auto_heartbeat or not _is_heartbeat(frames):
            return False
        self.log(name, "auto", frames)
        answer = encode(kinds.heartbeat_answer(decode(frames), time.time()))
        self.log(name, "auto", answer)
        self.link.send(name, answer)
        return True

    def deadline(self, value) -> float:
        return self.link.now() + seconds(value, self.settings.heartbeat_timeout)

    def open_when_bound(self) -> None:
        """Open the peers whose address the steps so far have bound."""
        for name in sorted(self.unopened):
            address = self.case.peers[name].address  # a lazy peer's: not None
            if address is not None and names_used(address) <= self.env.keys():
                self.unopened.discard(name)
                self.open(name, self.case.peers[name])

    def step(self, step: Step) -> None:
        self.open_when_bound()
        if isinstance(step, Send):
            frames = [render(f, self.env) for f in step.frames]
            self.log(step.send, "send", frames)
            self.link.send(step.send, frames)
        elif isinstance(step, Expect):
            self.expect(step)
        elif isinstance(step, Nothing):
            self.nothing(step)
        elif isinstance(step, Wait):
            self.idle(self.deadline(step.wait))
        elif isinstance(step, AwaitSubscription):
            topic = render(step.topic, self.env)
            self.log(step.await_subscription, "note", [f"await subscription {show(topic)}"])
            timeout = seconds(step.within, self.settings.heartbeat_timeout)
            if not self.link.await_subscription(step.await_subscription, topic, timeout):
                raise _Stop("timeout", f"the subscription {show(topic)} did not reach publisher "
                                       f"{step.await_subscription!r} within {timeout:g} s")
        elif isinstance(step, Run):
            self.run(step)
        elif isinstance(step, Finish):
            self.finish(step)

    def run(self, step: Run) -> None:
        """Start a client command, its ``{router}``, ``{service}``, ``{keyword}``, ... filled in."""
        fields = {"router": self.settings.router, "publish": self.settings.publish,
                  "subscribe": self.settings.subscribe, "service": self.settings.service,
                  "keyword": self.settings.keyword, "value": self.settings.write_value}
        command = self.settings.value(f"{step.run}_command")
        assert command is not None, "validate: a case that runs a command requires it, and is skipped without it"
        argv = shlex.split(command.format(**fields))
        self.log(step.run, "note", [f"run {shlex.join(argv)}"])
        self.processes[step.run] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)

    def finish(self, step: Finish) -> None:
        process = self.processes.pop(step.finish)
        until = self.deadline(step.within)
        while process.poll() is None and (left := until - self.link.now()) > 0:
            self.pump(min(left, 0.05))  # the sockets keep being served while the command runs
        if process.poll() is None:
            process.kill()
            process.communicate()
            raise _Stop("timeout", f"{step.finish!r} did not finish within the deadline")
        out, err = process.communicate()
        self.log(step.finish, "note", [f"exit {process.returncode}", show(out.strip()), show(err.strip()[-300:])])
        if (process.returncode == 0) if step.status == "nonzero" else (process.returncode != step.status):
            raise _Stop("fail", f"{step.finish!r} exited {process.returncode}, not {step.status}: "
                                f"{err.decode('utf-8', 'replace').strip()[-300:]}")
        if step.output is not None:
            bound, reason = match_frames([step.output], [out.strip()], self.env)
            if bound is None:
                raise _Stop("fail", f"{step.finish!r} printed something else: {reason}",
                            [[show_spec(step.output, self.env)]], [show(out.strip())])
            self.env.update(bound)

    def stop_processes(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.communicate()
        self.processes.clear()

    def idle(self, until: float) -> None:
        while (left := until - self.link.now()) > 0:
            self.pump(left)

    def expect(self, step: Expect) -> None:
        until, box = self.deadline(step.within), self.inbox[step.expect]
        while True:
            while not box and (left := until - self.link.now()) > 0:
                self.pump(left)
            if not box or not _is_heartbeat(box[0]) or self._matches(step, box[0]):
                break
            box.popleft()  # a heartbeat the case did not ask for, at a peer that does not answer them
        expected = [[show_spec(f, self.env) for f in alt] for alt in step.alternatives]
        if not box:
            if step.optional:
                return
            within = until - self.start
            raise _Stop("timeout", f"{step.expect!r} got nothing within the deadline "
                                   f"(t={within:.2f} s)", expected)
        reasons = []
        for alternative in step.alternatives:
            bound, reason = match_frames(alternative, box[0], self.env)
            if bound is not None:
                self.env.update(bound)
                box.popleft()
                return
            reasons.append(reason)
        if not step.optional:
            raise _Stop("fail", f"{step.expect!r} got an unexpected message: " + "; or ".join(reasons),
                        expected, [show(f) for f in box[0]])

    def _matches(self, step: Expect, frames: list[bytes]) -> bool:
        return any(match_frames(alt, frames, self.env)[0] is not None for alt in step.alternatives)

    def nothing(self, step: Nothing) -> None:
        self.idle(self.deadline(step.within))
        for name in step.peers:
            if self.inbox[name]:
                raise _Stop("fail", f"{name!r} got a message where the case expects none",
                            [], [show(f) for f in self.inbox[name][0]])

    def leftovers(self) -> None:
        self.pump(0)
        for name, box in self.inbox.items():
            for frames in box:
                if not _is_heartbeat(frames):
                    raise _Stop("fail", f"{name!r} got a message the case does not expect",
                                [], [show(f) for f in frames])


def _is_heartbeat(frames: list[bytes]) -> bool:
    try:
        message = decode(frames)
    except RemoteProtocolError:
        return False
    return message.direction == Direction.DBP and message.command == "heartbeat"


def run_case(case: Case, link: Link, settings: Settings) -> Result:
    """Play one case through ``link``; the link is closed afterwards."""
    started = time.monotonic()
    result = Result(case.id, case.level, "pass")
    missing = [name for name in case.requires if settings.value(name) is None]
    skip = link.skip_reason(case) or (needs(missing[0]) if missing else None)
    if skip:
        link.close()
        result.status, result.reason = "skipped", skip
        return result
    run = None
    try:
        run = _CaseRun(case, link, settings)
        run.open_peers()
        for index, step in enumerate(case.steps, 1):
            result.step = index
            run.step(step)
        result.step = None
        run.leftovers()
    except _Stop as stop:
        result.status, result.reason = stop.status, stop.reason
        result.expected, result.actual = stop.expected, stop.actual
    except BrokerFailure as exc:
        result.status, result.reason = "fail", f"the broker failed: {exc}"
    except CaseError as exc:
        result.status, result.reason = "error", f"case error: {exc}"
    except Exception as exc:  # a runner bug must not stop the suite: report it on the case
        result.status = "error"
        result.reason = "".join(traceback.format_exception_only(exc)).strip()
    finally:
        if run is not None:
            run.stop_processes()
            result.wire = run.wire
        link.close()
    if result.status in ("fail", "timeout", "error"):
        result.defect = case.defect
    result.seconds = round(time.monotonic() - started, 3)
    return result
