"""The recording proxy: a transparent man in the middle between peers and a real broker.

Theory of operation: the proxy binds the three addresses peers connect to and connects to
the broker's three. Router side: a ROUTER in front; for each peer routing id it sees, a
DEALER toward the broker's ROUTER with the *same* routing id, so the broker sees the
peer's own id and the frames are passed unchanged both ways. Publish side: an XSUB in
front (publishers connect) and an XPUB toward the broker's XSUB; subscribe side: an XPUB
in front (subscribers connect, verbose so every subscription passes) and an XSUB toward
the broker's XPUB. Data goes downstream and subscriptions upstream, as in the broker.

Every frame list is written, as it passes, to a JSON Lines trace: a header line, then one
line per message with the time since the start, the socket side, the peer (its routing
id in hex on the router side; ``publish``/``subscribe`` on the relay, whose sockets do not
name peers), the direction (``in``: peer to broker, ``out``: broker to peer) and the frames
(hex, and readable text). One thing is changed on the way (unless ``rewrite_lookup`` is
off): the payload of a ``lookup`` reply becomes the proxy's own subscribe address, so that
clients subscribe through the proxy; the recording keeps the broker's answer. Sockets live in the proxy's thread; ``stop()`` sends a message on
an inproc pipe that the loop polls with the other sockets.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import IO

import zmq

from cauldron_proto import Direction, RemoteProtocolError, decode, encode

from .frames import show

__all__ = ["RecordingProxy", "read_recording"]


class RecordingProxy(threading.Thread):
    """Forward and record; ``endpoints`` gives the bound addresses once ``start()`` returns."""

    def __init__(self, *, router: str, publish: str, subscribe: str, out: IO[str],
                 listen_router: str = "tcp://127.0.0.1:*", listen_publish: str = "tcp://127.0.0.1:*",
                 listen_subscribe: str = "tcp://127.0.0.1:*", context: zmq.Context | None = None,
                 notes: dict | None = None, rewrite_lookup: bool = True):
        super().__init__(name="cauldron-record", daemon=True)
        self.broker = {"router": router, "publish": publish, "subscribe": subscribe}
        self.listen = {"router": listen_router, "publish": listen_publish, "subscribe": listen_subscribe}
        self.out, self.notes, self.rewrite_lookup = out, dict(notes or {}), rewrite_lookup
        self.context = context or zmq.Context.instance()
        self.endpoints: dict[str, str] = {}
        self.count = 0
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self._pipe_address = f"inproc://cauldron-record-{id(self)}"
        self._stopper: zmq.Socket | None = None
        self._t0 = 0.0

    def start(self, timeout: float = 5.0) -> None:
        self._stopper = self.context.socket(zmq.PAIR)
        self._stopper.linger = 0
        self._stopper.connect(self._pipe_address)
        super().start()
        if not self.started.wait(timeout):
            raise TimeoutError("the recording proxy did not start")
        if self.failure is not None:
            self._stopper.close(linger=0)
            self._stopper = None
            raise RuntimeError(f"the recording proxy failed to start: {self.failure}") from self.failure

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopper is not None:
            self._stopper.send(b"stop")
            self.join(timeout)
            self._stopper.close(linger=0)
            self._stopper = None

    def _socket(self, kind: int, bind: str | None = None, connect: str | None = None) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        self._sockets.append(sock)
        if kind == zmq.XPUB and bind is not None:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        if bind is not None:
            sock.bind(bind)
        if connect is not None:
            sock.connect(connect)
        return sock

    def _record(self, side: str, peer: str, direction: str, frames: list[bytes]) -> None:
        line = {"t": round(time.monotonic() - self._t0, 6), "socket": side, "peer": peer, "dir": direction,
                "frames": [f.hex() for f in frames], "text": [show(f) for f in frames]}
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()
        self.count += 1

    def run(self) -> None:
        self._sockets: list[zmq.Socket] = []
        try:
            pipe = self._socket(zmq.PAIR, bind=self._pipe_address)
            front = self._socket(zmq.ROUTER, bind=self.listen["router"])
            pub_front = self._socket(zmq.XSUB, bind=self.listen["publish"])
            pub_back = self._socket(zmq.XPUB, connect=self.broker["publish"])
            sub_front = self._socket(zmq.XPUB, bind=self.listen["subscribe"])
            sub_back = self._socket(zmq.XSUB, connect=self.broker["subscribe"])
            for side, sock in (("router", front), ("publish", pub_front), ("subscribe", sub_front)):
                self.endpoints[side] = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self._t0 = time.monotonic()
            header = {"recording": 1, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "broker": self.broker, "listen": self.endpoints, **self.notes}
            self.out.write(json.dumps(header) + "\n")
            self.out.flush()
        except BaseException as exc:  # reported by start()
            self.failure = exc
            self.started.set()
            self._close()
            return
        self.started.set()
        try:
            self._loop(pipe, front, pub_front, pub_back, sub_front, sub_back)
        except zmq.ContextTerminated:
            pass
        finally:
            self._close()

    def _loop(self, pipe, front, pub_front, pub_back, sub_front, sub_back) -> None:
        poller = zmq.Poller()
        for sock in (pipe, front, pub_front, pub_back, sub_front, sub_back):
            poller.register(sock, zmq.POLLIN)
        dealers: dict[zmq.Socket, bytes] = {}
        by_id: dict[bytes, zmq.Socket] = {}
        relay = {pub_front: (pub_back, "publish", "in"), pub_back: (pub_front, "publish", "out"),
                 sub_front: (sub_back, "subscribe", "in"), sub_back: (sub_front, "subscribe", "out")}
        while True:
            for sock, _ in poller.poll():
                if sock is pipe:
                    return
                frames = sock.recv_multipart()
                if sock is front:
                    peer, rest = frames[0], frames[1:]
                    back = by_id.get(peer)
                    if back is None:
                        back = self._socket(zmq.DEALER)
                        back.setsockopt(zmq.ROUTING_ID, peer)
                        back.connect(self.broker["router"])
                        by_id[peer], dealers[back] = back, peer
                        poller.register(back, zmq.POLLIN)
                    self._record("router", peer.hex(), "in", rest)
                    back.send_multipart(rest)
                elif sock in dealers:
                    self._record("router", dealers[sock].hex(), "out", frames)
                    front.send_multipart([dealers[sock], *self._own_lookup(frames)])
                else:
                    target, side, direction = relay[sock]
                    self._record(side, side, direction, frames)
                    target.send_multipart(frames)

    def _own_lookup(self, frames: list[bytes]) -> list[bytes]:
        """A lookup reply names the proxy's subscribe address, so clients' SUB sockets come
        through the proxy too (the recording keeps what the broker said)."""
        if not self.rewrite_lookup:
            return frames
        try:
            message = decode(frames)
        except RemoteProtocolError:
            return frames
        if message.direction != Direction.CBP or message.command != "lookup":
            return frames
        return encode(message.replace(payload=self.endpoints["subscribe"]))

    def _close(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)
        self._sockets.clear()


_EVENT_KEYS = ("t", "socket", "peer", "dir", "frames")  # what each line after the header holds


def _hex_frames(frames) -> bool:
    try:
        return isinstance(frames, list) and all(isinstance(f, str) and bytes.fromhex(f) is not None for f in frames)
    except ValueError:
        return False


def read_recording(path) -> tuple[dict, list[dict]]:
    """The header and the events of a recording file; ValueError naming the file and the line
    of what cannot be read."""
    lines: list[dict] = []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(line, dict):
                raise ValueError(f"{path}, line {number}: not a JSON object")
            missing = [key for key in _EVENT_KEYS if key not in line]
            if lines and missing:
                raise ValueError(f"{path}, line {number}: a message without {', '.join(missing)}")
            if lines and not _hex_frames(line["frames"]):
                raise ValueError(f"{path}, line {number}: frames must be a list of hex strings")
            lines.append(line)
    if not lines or lines[0].get("recording") != 1:
        raise ValueError(f"{path}: not a cauldron-record recording (no header line)")
    return lines[0], lines[1:]
