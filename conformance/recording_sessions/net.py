"""The harness of the recorded sessions: raw socket peers, and our broker with cauldron-record in front.

``recording(name, timeout)`` starts our broker (a ZMQBroker thread on loopback ephemeral
ports) and ``cauldron-record`` in front of it, and yields a :class:`Net` of sockets toward
the recorder's addresses; the recording is kept as ``conformance/recordings/<name>.jsonl``.
``@session(timeout)`` registers a session function in :data:`SESSIONS`.
"""


from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import zmq

from cauldron_proto import Direction, Message, decode, encode, kinds
from cauldron_proto.broker import ZMQBroker

HERE = Path(__file__).resolve().parent.parent  # conformance/
RECORDINGS = HERE / "recordings"
ANY = "tcp://127.0.0.1:*"
T = 0.25  # the heartbeat period of sessions about heartbeats
SESSIONS: dict[str, tuple[object, float]] = {}


def session(timeout: float = 5.0):
    def register(func):
        SESSIONS[func.__name__.replace("_", "-")] = (func, timeout)
        return func
    return register


class Peer:
    """A raw socket peer: DEALER peers send the empty delimiter themselves."""

    def __init__(self, sock: zmq.Socket, dealer: bool, answer_heartbeats: bool = True):
        self.sock, self.dealer, self.answer_heartbeats = sock, dealer, answer_heartbeats

    def send(self, direction, *, prefix=(), **fields) -> Message:
        message = Message.new(direction, **fields)
        self.frames([*prefix, *encode(message)])
        return message

    def frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(([b""] if self.dealer else []) + [bytes(f) for f in frames])

    def answer(self, message: Message, payload, **kw) -> None:
        self.sock.send_multipart(encode(message.reply(payload, **kw)))

    def beat_answer(self, beat: Message) -> None:
        self.sock.send_multipart(encode(kinds.heartbeat_answer(beat, time.time())))

    def error(self, message: Message, payload, **kw) -> None:
        self.sock.send_multipart(encode(message.error(payload, **kw)))

    def recv(self, timeout: float = 2.0) -> Message:
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            if left <= 0 or not self.sock.poll(left * 1000):
                raise TimeoutError("no message")
            message = decode(self.sock.recv_multipart())
            if self.answer_heartbeats and message.direction == "DBP" and message.command == "heartbeat":
                self.beat_answer(message)
                continue
            return message

    def quiet(self, seconds: float) -> None:
        """Answer heartbeats for a while; anything else is a surprise worth seeing."""
        try:
            message = self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {message!r}")


class Net:
    """Sockets toward the recorder's addresses, closed at the end of the session."""

    def __init__(self, context: zmq.Context, addresses: dict[str, str]):
        self.context, self.addresses, self.sockets = context, addresses, []

    def _socket(self, kind, side):
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.connect(self.addresses[side])
        self.sockets.append(sock)
        return sock

    def dealer(self, answer_heartbeats: bool = True) -> Peer:
        return Peer(self._socket(zmq.DEALER, "router"), True, answer_heartbeats)

    def req(self) -> Peer:
        return Peer(self._socket(zmq.REQ, "router"), False)

    def sub(self, *topics: str) -> zmq.Socket:
        sock = self.context.socket(zmq.SUB)
        sock.linger = 0
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sock.connect(self.addresses["subscribe"])
        self.sockets.append(sock)
        return sock

    def pub(self, *topics: str) -> zmq.Socket:
        """An XPUB toward the publish address, returned once the broker forwarded ``topics``."""
        sock = self._socket(zmq.XPUB, "publish")
        seen: set[bytes] = set()
        while not {b"\x01" + t.encode() for t in topics} <= seen:
            if not sock.poll(2000):
                raise TimeoutError(f"subscriptions {topics} did not arrive")
            seen.add(sock.recv())
        return sock

    def dispatcher(self, service="KTEST", name="disp1", ready=True, answer_heartbeats=True) -> Peer:
        peer = self.dealer(answer_heartbeats)
        peer.send(Direction.DBQ, service=service, dispatcher=name, command="welcome")
        assert peer.recv().payload == "confirmed"
        if ready:
            peer.send(Direction.DBQ, service=service, dispatcher=name, command="ready")
        return peer

    def close(self):
        for sock in self.sockets:
            sock.close(linger=0)


@contextmanager
def recording(name: str, timeout: float, folder: Path = RECORDINGS):
    """Our broker and cauldron-record in front of it, recording into ``folder``; yields the
    recorder's addresses."""
    context = zmq.Context()
    broker = ZMQBroker(f"session-{name}", ANY, ANY, ANY, ANY, context=context, timeout=timeout)
    broker.start()
    out = folder / f"{name}.jsonl"
    command = [sys.executable, "-m", "cauldron_proto.cli.record", "--router", broker.endpoints["broker"],
               "--publish", broker.endpoints["publish"], "--subscribe", broker.endpoints["subscribe"],
               "--lookup", broker.core.lookup_address, "--heartbeat-timeout", str(timeout), "-o", str(out)]
    recorder = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        addresses = {}
        while len(addresses) < 3:
            side, address = recorder.stderr.readline().split()
            addresses[side] = address
        net = Net(context, addresses)
        try:
            yield net
            time.sleep(0.1)  # let the last frames pass the recorder
        finally:
            net.close()
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(10)
        recorder.stderr.close()
        broker.stop()
        context.term()

