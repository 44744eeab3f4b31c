"""Replaying cases against the I/O-free routing core: no sockets, a fake clock.

:class:`CoreLink` stands in for the broker's ROUTER socket: a peer is its routing id;
``send`` hands the frames to ``core.handle(routing_id, frames, now)`` the way a ROUTER
would deliver them (a REQ peer's empty delimiter added); every output ``[routing_id,
*frames]`` goes to that peer's inbox (a REQ peer only takes a reply while it waits for
one, and loses the delimiter, as a REQ socket does; frames for an unknown id are dropped,
as a ROUTER drops them). ``poll(timeout)`` moves the fake clock forward, to the core's
``next_deadline()`` when that comes first, calling ``core.tick(now)``.

The pub/sub relay is not part of the core (it is two sockets in the broker's shell), so
cases with SUB or PUB peers are skipped here with that reason. ``lookup`` is answered with
the core's ``lookup_address``, which the link passes on as the ``lookup`` setting.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from .engine import BrokerFailure, Result, Settings
from .runner import run_cases, select_cases
from .case_format import Case, Peer
from .loading import load_cases

__all__ = ["CoreLink", "run_suite_on_core", "FAKE_LOOKUP"]

#: The lookup address given to a core that the caller did not configure.
FAKE_LOOKUP = "tcp://127.0.0.1:6511"


class _FakePeer:
    def __init__(self, peer: Peer, routing_id: bytes):
        self.peer, self.routing_id, self.waiting = peer, routing_id, False


class CoreLink:
    """One case's peers in front of one core; ``now`` starts at ``start`` and only jumps."""

    def __init__(self, core: Any, start: float = 1_000_000.0):
        self.core, self.clock = core, start
        self.peers: dict[str, _FakePeer] = {}
        self.by_id: dict[bytes, str] = {}
        self.arrived: list[tuple[str, list[bytes]]] = []
        self.dropped: list[list[bytes]] = []

    def now(self) -> float:
        return self.clock

    def skip_reason(self, case: Case) -> str | None:
        if any(p.socket in ("SUB", "PUB") for p in case.peers.values()):
            return "pub/sub relay: not part of the routing core"
        return None

    def open(self, name: str, peer: Peer, routing_id: bytes | None, subscriptions: list[bytes],
             address: str | None = None) -> None:
        routing_id = routing_id or b"\x00" + secrets.token_bytes(4)
        self.peers[name] = _FakePeer(peer, routing_id)
        self.by_id[routing_id] = name

    def _call(self, method: str, *args) -> list[list[bytes]]:
        try:
            return getattr(self.core, method)(*args)
        except Exception as exc:
            raise BrokerFailure(f"core.{method}() raised {type(exc).__name__}: {exc}") from exc

    def send(self, name: str, frames: list[bytes]) -> None:
        fake = self.peers[name]
        if fake.peer.socket == "REQ":
            fake.waiting, frames = True, [b"", *frames]
        self._deliver(self._call("handle", fake.routing_id, list(frames), self.clock))

    def _deliver(self, outputs: list[list[bytes]]) -> None:
        for output in outputs:
            name = self.by_id.get(bytes(output[0]))
            frames = [bytes(f) for f in output[1:]]
            if name is None:
                self.dropped.append(frames)
                continue
            fake = self.peers[name]
            if fake.peer.socket == "REQ":
                if not fake.waiting or not frames or frames[0] != b"":
                    self.dropped.append(frames)
                    continue
                fake.waiting, frames = False, frames[1:]
            self.arrived.append((name, frames))

    def poll(self, timeout: float) -> list[tuple[str, list[bytes]]]:
        if not self.arrived:
            until = self.clock + timeout
            deadline = self.core.next_deadline()
            if deadline is not None and deadline <= until:
                # a deadline already past moves the clock a little, so a core that keeps one
                # in the past cannot hold the replay in place
                self.clock = deadline if deadline > self.clock else self.clock + 1e-3
            else:
                self.clock = until
            self._deliver(self._call("tick", self.clock))
        arrived, self.arrived = self.arrived, []
        return arrived

    def await_subscription(self, name: str, topic: bytes, timeout: float) -> bool:
        raise AssertionError("pub/sub cases are skipped on the core")

    def close(self) -> None:
        self.peers.clear()


def run_suite_on_core(make_core: Callable[[str, float], Any], *, heartbeat_timeout: float = 1.0,
                      lookup: str = FAKE_LOOKUP, cases: list[Case] | None = None,
                      keep: list[str] | None = None, exclude: list[str] | None = None) -> list[Result]:
    """Replay the suite against fresh cores: ``make_core(lookup, heartbeat_timeout)`` per case."""
    settings = Settings(lookup=lookup, heartbeat_timeout=heartbeat_timeout)
    chosen = select_cases(load_cases() if cases is None else cases, keep, exclude)
    return run_cases(chosen, settings, lambda case: CoreLink(make_core(lookup, heartbeat_timeout)))
