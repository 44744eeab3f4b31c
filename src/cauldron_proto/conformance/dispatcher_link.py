"""The dispatcher suite: the runner plays the broker for one dispatcher under test.

:func:`run_dispatcher_suite` starts a :class:`~.broker_standin.BrokerStandIn` (the sockets
a broker binds, for the whole run), the dispatcher (``command``, or the caller), and the
cases: the opening case first, then, once the stand-in has completed the registration and
found the keywords, the others. :class:`DispatcherLink` is one case's view of the stand-in:
its ``ROUTER`` peer is the frames the dispatcher's DEALER sends and receives (a routing
delimiter first), its ``XSUB`` peer the broadcasts (all are subscribed; the peer's
``subscribe`` topics filter them).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import msgspec
import zmq

from .broker_standin import ANY, BrokerStandIn, NoDispatcher
from .engine import Result, run_case
from .runner import select_cases
from .settings import Settings
from .case_format import Case, Peer
from .loading import load_cases

__all__ = ["BrokerStandIn", "DispatcherLink", "NoDispatcher", "run_dispatcher_suite"]


class DispatcherLink:
    """One case's peers on the broker stand-in: its ROUTER side and its XSUB side."""

    def __init__(self, broker: BrokerStandIn):
        self.broker = broker
        self.router_peer: str | None = None
        self.xsub_peer: tuple[str, list[bytes]] | None = None

    def now(self) -> float:
        return time.monotonic()

    def skip_reason(self, case: Case) -> str | None:
        return None if case.suite == "dispatcher" else "a broker case (run it with the broker suite)"

    def open(self, name: str, peer: Peer, routing_id: bytes | None, subscriptions: list[bytes],
             address: str | None = None) -> None:
        if peer.socket == "ROUTER":
            self.router_peer = name
            self.broker.heartbeats = peer.send_heartbeats
        else:
            self.xsub_peer = (name, subscriptions)

    def send(self, name: str, frames: list[bytes]) -> None:
        self.broker.send(frames)

    def poll(self, timeout: float) -> list[tuple[str, list[bytes]]]:
        if not self.broker.inbox:
            self.broker.receive(timeout)
        arrived = []
        while self.broker.inbox:
            side, frames = self.broker.inbox.popleft()
            if side == "router" and self.router_peer is not None:
                arrived.append((self.router_peer, frames))
            elif side == "xsub" and self.xsub_peer is not None:
                name, topics = self.xsub_peer
                if any(frames and frames[0].startswith(t) for t in topics or [b""]):
                    arrived.append((name, frames))
        return arrived

    def await_subscription(self, name: str, topic: bytes, timeout: float) -> bool:
        raise AssertionError("the dispatcher suite has no publisher peers")

    def close(self) -> None:
        self.router_peer = self.xsub_peer = None
        self.broker.settle()


def run_dispatcher_suite(settings: Settings, *, command: str | None = None, startup_timeout: float = 10.0,
                         cases: Iterable[Case] | None = None, cases_dir: str | Path | None = None,
                         keep: list[str] | None = None, exclude: list[str] | None = None,
                         on_bound: Callable[[dict[str, str]], None] | None = None,
                         on_result: Callable[[Result], None] | None = None,
                         record: IO[str] | None = None) -> list[Result]:
    """Play the broker for a dispatcher and run the dispatcher suite (or ``cases``) on it.

    The stand-in binds ``settings.router``/``publish``/``subscribe`` (loopback ephemeral ports
    when not given) and calls ``on_bound`` with the addresses; ``command`` (its ``{router}``,
    ``{publish}`` and ``{subscribe}`` filled in) is started as the dispatcher under test and
    stopped at the end; without it, the dispatcher is the caller's to start. ``record``: a
    text file to which every frame the stand-in sends and receives is written, in
    ``cauldron-record``'s format (``cauldron-record --to-case`` drafts cases from it).
    """
    chosen = select_cases(load_cases(cases_dir, suite="dispatcher") if cases is None else cases, keep, exclude)
    context = zmq.Context()
    broker = BrokerStandIn(context, router=settings.router or ANY, publish=settings.publish or ANY,
                           subscribe=settings.subscribe or ANY, heartbeat_timeout=settings.heartbeat_timeout,
                           record=record)
    process = None
    errors = tempfile.TemporaryFile()
    try:
        if on_bound is not None:
            on_bound(dict(broker.endpoints))
        if command:
            process = subprocess.Popen(shlex.split(command.format(**broker.endpoints)),
                                       stdout=subprocess.DEVNULL, stderr=errors)

        def gone() -> str | None:
            if process is None or process.poll() is None:
                return None
            errors.seek(0)
            tail = errors.read().decode("utf-8", "replace").strip()[-400:]
            return f"exit status {process.returncode}" + (f": {tail}" if tail else "")
        try:
            broker.await_welcome(startup_timeout, gone)
        except NoDispatcher as exc:
            return [_not_run(case, str(exc), on_result) for case in chosen]
        return _run(chosen, broker, settings, on_result)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        errors.close()
        broker.close()
        context.term()


def _run(chosen: list[Case], broker: BrokerStandIn, settings: Settings,
         on_result: Callable[[Result], None] | None) -> list[Result]:
    results = []

    def play(case: Case, current: Settings) -> None:
        result = run_case(case, DispatcherLink(broker), current)
        results.append(result)
        if on_result is not None:
            on_result(result)

    known = msgspec.structs.replace(settings, service=broker.service, dispatcher=broker.name)
    for case in (c for c in chosen if c.opening):
        play(case, known)
    broker.settle()
    current = broker.discover(known)
    for case in (c for c in chosen if not c.opening):
        play(case, current)
    return results


def _not_run(case: Case, reason: str, on_result) -> Result:
    result = Result(case.id, case.level, "error", reason=reason)
    if on_result is not None:
        on_result(result)
    return result
