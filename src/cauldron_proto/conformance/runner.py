"""The conformance runner: replay cases against a broker at given addresses.

``run_suite(settings)`` opens fresh sockets for every case (one ZMQ context for the run),
plays the case with :mod:`.engine` and returns one :class:`Result` per case. Peers:
REQ and DEALER connect to the router address, SUB to the subscribe address, and PUB to the
publish address; a PUB peer is an XPUB socket, which sends like a PUB but also sees the
subscriptions the broker forwards upstream, so ``await_subscription`` can wait for them.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import zmq

from .engine import Link, Result, Settings, run_case
from .case_format import Case, Peer
from .loading import load_cases

__all__ = ["ZmqLink", "run_suite", "run_cases", "select_cases"]

_SOCKET_TYPES = {"REQ": zmq.REQ, "DEALER": zmq.DEALER, "SUB": zmq.SUB, "PUB": zmq.XPUB}


class ZmqLink:
    """Real sockets toward a broker; closed (linger 0) when the case ends."""

    def __init__(self, context: zmq.Context, settings: Settings):
        self.context, self.settings = context, settings
        self.sockets: dict[str, zmq.Socket] = {}
        self.seen_subscriptions: dict[str, set[bytes]] = {}
        self.poller = zmq.Poller()

    def now(self) -> float:
        return time.monotonic()

    def skip_reason(self, case: Case) -> str | None:
        for peer in case.peers.values():
            if getattr(self.settings, peer.connect) is None:
                return f"needs --{peer.connect} (a {peer.socket} peer connects there)"
        return None

    def open(self, name: str, peer: Peer, routing_id: bytes | None, subscriptions: list[bytes],
             address: str | None = None) -> None:
        sock = self.context.socket(_SOCKET_TYPES[peer.socket])
        self.sockets[name] = sock
        sock.linger = 0
        if routing_id is not None:
            sock.setsockopt(zmq.ROUTING_ID, routing_id)
        for topic in subscriptions:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        sock.connect(address or getattr(self.settings, peer.connect))
        if peer.socket == "PUB":
            self.seen_subscriptions[name] = set()
        else:
            self.poller.register(sock, zmq.POLLIN)

    def send(self, name: str, frames: list[bytes]) -> None:
        self.sockets[name].send_multipart(frames)

    def poll(self, timeout: float) -> list[tuple[str, list[bytes]]]:
        ready = dict(self.poller.poll(int(timeout * 1000)))
        arrived = []
        for name, sock in self.sockets.items():
            if sock in ready:
                while sock.poll(0, zmq.POLLIN):
                    arrived.append((name, sock.recv_multipart()))
        return arrived

    def await_subscription(self, name: str, topic: bytes, timeout: float) -> bool:
        sock, seen = self.sockets[name], self.seen_subscriptions[name]
        until = time.monotonic() + timeout
        while b"\x01" + topic not in seen:
            left = until - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000), zmq.POLLIN):
                return False
            seen.add(sock.recv())
        return True

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(linger=0)
        self.sockets.clear()


def select_cases(cases: Iterable[Case], keep: list[str] | None = None, exclude: list[str] | None = None) -> list[Case]:
    """Cases whose id matches one of ``keep`` (all when empty) and none of ``exclude`` (globs)."""
    return [case for case in cases
            if (not keep or any(fnmatch.fnmatchcase(case.id, g) for g in keep))
            and not any(fnmatch.fnmatchcase(case.id, g) for g in exclude or ())]


def run_cases(cases: Iterable[Case], settings: Settings, make_link: Callable[[Case], Link],
              on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Play each case through a fresh link from ``make_link``; report each result as it comes."""
    results = []
    for case in cases:
        result = run_case(case, make_link(case), settings)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def run_suite(settings: Settings, *, cases: Iterable[Case] | None = None, cases_dir: str | Path | None = None,
              keep: list[str] | None = None, exclude: list[str] | None = None,
              on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Replay the suite (or ``cases``) against the broker at the addresses in ``settings``."""
    chosen = select_cases(load_cases(cases_dir) if cases is None else cases, keep, exclude)
    context = zmq.Context()
    try:
        return run_cases(chosen, settings, lambda case: ZmqLink(context, settings), on_result)
    finally:
        context.term()
