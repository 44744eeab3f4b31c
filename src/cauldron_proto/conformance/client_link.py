"""The client suite: the runner plays the broker and the dispatcher for a client under test.

Theory of operation: the client is driven through commands the runner is given
(``read_command``, ``write_command``, ``monitor_command``, with ``{router}``,
``{subscribe}``, ``{service}``, ``{keyword}`` and ``{value}`` filled in), which a case
starts (``run: read``) and waits for (``finish: read``, its exit status and output). A
:class:`ClientStandIn` binds what a broker binds (a ROUTER, an XSUB and an XPUB, verbose so
every subscription shows) for the whole run, and answers what is the broker's business:
inquiries (``UBQ``), ``lookup`` (its XPUB's address) and ``locate`` (``yes``). Everything
else a client sends goes to the case's ``ROUTER`` peer (frames after the routing id, the
delimiter first), which answers as the broker relaying a dispatcher would; a case's frames
sent to that peer go to the client that spoke last. The ``XPUB`` peer publishes broadcasts
to the clients' SUB sockets and waits for their subscriptions.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import zmq

from cauldron_proto import Direction, RemoteProtocolError, decode, encode

from .broker_standin import ANY, BoundSockets
from .engine import Result, Settings, run_case
from .runner import select_cases
from .case_format import Case, Peer
from .loading import load_cases

__all__ = ["ClientStandIn", "ClientLink", "run_client_suite"]



class ClientStandIn(BoundSockets):
    """The broker's sockets for clients; ``close()`` when done."""

    def __init__(self, context: zmq.Context, *, router: str = ANY, publish: str = ANY, subscribe: str = ANY):
        super().__init__(context, router, publish, subscribe)
        self.xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.inbox: deque[list[bytes]] = deque()
        self.last_client: bytes | None = None

    def receive(self, timeout: float) -> None:
        if self.router.poll(int(max(0.0, timeout) * 1000), zmq.POLLIN):
            while self.router.poll(0, zmq.POLLIN):
                self._from_router(self.router.recv_multipart())

    def _from_router(self, frames: list[bytes]) -> None:
        peer, rest = frames[0], frames[1:]
        try:
            message = decode(rest)
        except RemoteProtocolError:
            message = None
        answer = None
        if message is not None and message.direction == Direction.UBQ:
            answer = message.reply("Broker Alive")
        elif message is not None and message.direction == Direction.CBQ and message.command == "lookup":
            answer = message.reply(self.endpoints["subscribe"])
        elif message is not None and message.direction == Direction.CBQ and message.command == "locate":
            answer = message.reply("yes")
        if answer is not None:
            self.router.send_multipart([peer, *encode(answer)])
            return
        self.last_client = peer
        self.inbox.append(rest)

    def send(self, frames: list[bytes]) -> None:
        if self.last_client is None:
            raise AssertionError("no client has sent anything to answer")
        self.router.send_multipart([self.last_client, *frames])

class ClientLink:
    """One case's peers on the stand-in: its ROUTER side (the clients) and its XPUB side."""

    def __init__(self, broker: ClientStandIn):
        self.broker = broker
        self.router_peer: str | None = None
        self.seen: set[bytes] = set()

    def now(self) -> float:
        return time.monotonic()

    def skip_reason(self, case: Case) -> str | None:
        return None if case.suite == "client" else f"a {case.suite} case"

    def open(self, name: str, peer: Peer, routing_id: bytes | None, subscriptions: list[bytes],
             address: str | None = None) -> None:
        if peer.socket == "ROUTER":
            self.router_peer = name

    def send(self, name: str, frames: list[bytes]) -> None:
        if name == self.router_peer:
            self.broker.send(frames)
        else:
            self.broker.xpub.send_multipart(frames)

    def poll(self, timeout: float) -> list[tuple[str, list[bytes]]]:
        if not self.broker.inbox:
            self.broker.receive(timeout)
        arrived = []
        while self.broker.inbox:
            frames = self.broker.inbox.popleft()
            if self.router_peer is not None:
                arrived.append((self.router_peer, frames))
        return arrived

    def await_subscription(self, name: str, topic: bytes, timeout: float) -> bool:
        until = time.monotonic() + timeout
        while b"\x01" + topic not in self.seen:
            left = until - time.monotonic()
            if left <= 0:
                return False
            if self.broker.xpub.poll(int(min(left, 0.05) * 1000), zmq.POLLIN):
                self.seen.add(self.broker.xpub.recv())
            else:
                self.broker.receive(0)  # inquiries and lookups keep being answered meanwhile
        return True

    def close(self) -> None:
        while self.broker.xpub.poll(0, zmq.POLLIN):
            self.broker.xpub.recv()
        self.broker.inbox.clear()
        self.broker.last_client = None


def run_client_suite(settings: Settings, *, cases: Iterable[Case] | None = None,
                     cases_dir: str | Path | None = None, keep: list[str] | None = None,
                     exclude: list[str] | None = None,
                     on_bound: Callable[[dict[str, str]], None] | None = None,
                     on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Play broker and dispatcher for the client driven by ``settings.*_command``."""
    chosen = select_cases(load_cases(cases_dir, suite="client") if cases is None else cases, keep, exclude)
    context = zmq.Context()
    broker = ClientStandIn(context, router=settings.router or ANY, publish=settings.publish or ANY,
                           subscribe=settings.subscribe or ANY)
    try:
        if on_bound is not None:
            on_bound(dict(broker.endpoints))
        known = msgspec.structs.replace(settings, **broker.endpoints)
        results = []
        for case in chosen:
            result = run_case(case, ClientLink(broker), known)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results
    finally:
        broker.close()
        context.term()
