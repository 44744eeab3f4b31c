"""The broker the dispatcher suite plays, for one dispatcher under test.

Theory of operation: a :class:`BrokerStandIn` binds what a broker binds (a ROUTER for
dispatchers, an XSUB for their broadcasts, an XPUB) and lives for the whole run; the
dispatcher under test connects to it once. The stand-in

- learns the dispatcher's routing id, service and name from its ``welcome`` (and adopts the
  routing id of any later ``welcome``: a dispatcher that registers again may do so on a new socket);
- answers inquiries (``UBQ``) as a broker does, and, while ``heartbeats`` is on and a
  period ``T`` is known, sends ``DBP heartbeat`` every ``T`` and consumes the answers to its
  own heartbeats, so a case sees neither;
- outside a case, completes a registration itself (``confirmed`` for a ``welcome``), and
  ``discover()``s the keywords (``SDQ enumerate``, then ``SDQ identify`` of each), consuming
  the answers.

Everything else the dispatcher sends is queued in ``inbox`` for the running case
(:class:`~.dispatcher_link.DispatcherLink`).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO

import msgspec
import zmq

from cauldron_proto import Direction, Message, RemoteProtocolError, decode, encode, kinds

from .frames import show
from .settings import Settings

__all__ = ["BrokerStandIn", "NoDispatcher", "ANY"]

ANY = "tcp://127.0.0.1:*"
_DISCOVERY_CLIENT = b"conformance-discovery"
_MAX_IDENTIFY = 64


class NoDispatcher(RuntimeError):
    """The dispatcher under test did not connect and welcome within the startup timeout."""


def _decoded(frames: list[bytes]) -> Message | None:
    try:
        return decode(frames)
    except RemoteProtocolError:
        return None


class BoundSockets:
    """A broker's three bound sockets, as a suite playing the broker binds them: the ROUTER,
    the XSUB (publishers connect) and the XPUB (subscribers connect); ``close()`` when done."""

    def __init__(self, context: zmq.Context, router: str = ANY, publish: str = ANY, subscribe: str = ANY):
        self.context = context
        self.sockets: list[zmq.Socket] = []
        self.router = self._bind(zmq.ROUTER, router)
        self.xsub = self._bind(zmq.XSUB, publish)
        self.xpub = self._bind(zmq.XPUB, subscribe)
        self.endpoints = {name: sock.getsockopt_string(zmq.LAST_ENDPOINT) for name, sock in
                          (("router", self.router), ("publish", self.xsub), ("subscribe", self.xpub))}

    def _bind(self, kind: int, address: str) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        self.sockets.append(sock)
        sock.bind(address)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets.clear()


class BrokerStandIn(BoundSockets):
    """The sockets and bookkeeping of the broker the runner plays; ``close()`` when done."""

    def __init__(self, context: zmq.Context, *, router: str = ANY, publish: str = ANY,
                 subscribe: str = ANY, heartbeat_timeout: float | None = None, record: IO[str] | None = None):
        super().__init__(context, router, publish, subscribe)
        self.period, self.record = heartbeat_timeout, record
        self.xsub.send(b"\x01")  # every broadcast, from every publisher that connects
        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)
        self.poller.register(self.xsub, zmq.POLLIN)
        self.peer_id: bytes | None = None
        self.service: str | None = None
        self.name: str | None = None
        self.ready = False
        self.heartbeats = True
        self.welcome: Message | None = None  # a welcome not answered yet
        self.inbox: deque[tuple[str, list[bytes]]] = deque()
        self._beats: set[bytes] = set()
        self._next_beat = float("inf")
        self._waiting: dict[bytes, Message | None] = {}  # discovery requests and their answers
        self._t0 = time.monotonic()
        if record is not None:
            header = {"recording": 1, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "broker": self.endpoints, "listen": self.endpoints, "heartbeat_timeout": heartbeat_timeout,
                      "note": "the broker played by cauldron-conformance dispatcher"}
            record.write(json.dumps(header) + "\n")

    # -- traffic ------------------------------------------------------------------------
    def _log(self, side: str, peer: str, direction: str, frames: list[bytes]) -> None:
        """A line of the recording (``cauldron-record``'s format), when one is kept."""
        if self.record is not None:
            line = {"t": round(time.monotonic() - self._t0, 6), "socket": side, "peer": peer, "dir": direction,
                    "frames": [f.hex() for f in frames], "text": [show(f) for f in frames]}
            self.record.write(json.dumps(line) + "\n")

    def _to(self, peer: bytes, frames: list[bytes]) -> None:
        self._log("router", peer.hex(), "out", frames)
        self.router.send_multipart([peer, *frames])

    def send(self, frames: list[bytes]) -> None:
        """Frames as the dispatcher's DEALER is to receive them (delimiter first)."""
        if self.peer_id is None:
            raise NoDispatcher("no dispatcher has connected yet")
        self._to(self.peer_id, frames)

    def receive(self, timeout: float) -> None:
        """Wait up to ``timeout`` for traffic; handle what is the broker's business, queue the rest."""
        until = time.monotonic() + timeout
        while True:
            self._beat()
            left = min(until, self._next_beat) - time.monotonic()
            self.poller.poll(int(max(0.0, left) * 1000))
            got = False
            while self.router.poll(0, zmq.POLLIN):
                got = True
                self._from_router(self.router.recv_multipart())
            while self.xsub.poll(0, zmq.POLLIN):
                got = True
                frames = self.xsub.recv_multipart()
                self._log("publish", "publish", "in", frames)
                self.inbox.append(("xsub", frames))
            if got or self.inbox or time.monotonic() >= until:
                return

    def _from_router(self, frames: list[bytes]) -> None:
        peer, rest = frames[0], frames[1:]
        self._log("router", peer.hex(), "in", rest)
        message = _decoded(rest)
        if message is not None:
            if message.direction == Direction.UBQ:
                self._to(peer, encode(message.reply("Broker Alive")))
                return
            if message.direction == Direction.DBQ and message.identifier in self._beats:
                self._beats.discard(message.identifier)
                return
            if message.identifier in self._waiting and message.direction in (Direction.SDP, Direction.SDE,
                                                                             Direction.CDP, Direction.CDE):
                self._waiting[message.identifier] = message
                return
            if message.direction == Direction.DBQ and message.command == "welcome":
                self.peer_id, self.ready, self.welcome = peer, False, message
                self.service, self.name = message.service, message.dispatcher
            elif message.direction == Direction.DBQ and message.command == "ready":
                self.ready, self.welcome = True, None
                self._next_beat = time.monotonic() + (self.period or float("inf"))
        if self.peer_id is None:
            self.peer_id = peer
        self.inbox.append(("router", rest))

    def _beat(self) -> None:
        if self.period is None or not self.ready or time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self.period
        if not self.heartbeats:
            return
        beat = kinds.heartbeat(self.service, self.name)
        self._beats.add(beat.identifier)
        self.send([b"", *encode(beat)])

    # -- outside the cases --------------------------------------------------------------
    def await_welcome(self, timeout: float, gone: Callable[[], str | None] = lambda: None) -> None:
        """Wait for the dispatcher's welcome; ``gone()`` says why it never will (its process exited)."""
        until = time.monotonic() + timeout
        while self.service is None:
            left = until - time.monotonic()
            if (why := gone()) is not None:
                raise NoDispatcher(f"the dispatcher exited before it sent welcome: {why}")
            if left <= 0:
                raise NoDispatcher(f"no dispatcher sent welcome to {self.endpoints['router']} within {timeout:g} s")
            self.receive(min(left, 0.1))
            if self.service is None:
                self.inbox.clear()

    def settle(self, timeout: float = 5.0) -> None:
        """Between cases: drop what no case took, and complete a registration left open."""
        self.receive(0)
        self.inbox.clear()
        self.heartbeats = True
        until = time.monotonic() + timeout
        while not self.ready and time.monotonic() < until:
            if self.welcome is not None:
                self.send(encode(self.welcome.reply("confirmed")))
                self.welcome = None
            self.receive(until - time.monotonic())
            self.inbox.clear()

    def ask(self, command: str, keyword: str | None = None, payload: str | None = None,
            timeout: float = 5.0) -> Message | None:
        """A fan-out copy (SDQ) to the dispatcher, as the broker sends it; its answer or None."""
        request = Message.new(Direction.SDQ, service=self.service, keyword=keyword, command=command,
                              payload=payload)
        self._waiting[request.identifier] = None
        self.send([b"", _DISCOVERY_CLIENT, b"", *encode(request)])
        until = time.monotonic() + timeout
        while self._waiting[request.identifier] is None and time.monotonic() < until:
            self.receive(until - time.monotonic())
            self.inbox.clear()
        return self._waiting.pop(request.identifier)

    def discover(self, settings: Settings) -> Settings:
        """The settings with what the dispatcher says of itself: its keywords and their types."""
        learned = {"service": self.service, "dispatcher": self.name}
        answer = self.ask("enumerate")
        names = answer.payload.split(":") if answer is not None and answer.direction == Direction.SDP \
            and isinstance(answer.payload, str) and answer.payload else []
        types = {}
        for name in names[:_MAX_IDENTIFY]:
            found = self.ask("identify", keyword=name, payload=name)
            if found is not None and isinstance(found.payload, str):
                types[name] = found.payload
        if types:
            keyword = next((k for k, t in types.items() if t == "string"), next(iter(types)))
            learned |= {"keyword": keyword, "keyword_type": types[keyword]}
            learned["enumerated"] = next((k for k, t in types.items() if t == "enumerated"), None)
        given = {k: v for k, v in msgspec.structs.asdict(settings).items() if v is not None}
        return Settings(**{**{k: v for k, v in learned.items() if v is not None}, **given})

