"""A storm of random multipart messages at a running broker over tcp, from many sockets:
then it must still answer an inquiry, route a real client's request to a real dispatcher,
and forget the dispatchers the storm registered once they fall silent.

The storm: valid messages of every kind, mutated (fuzz/seeds.py), from DEALER and REQ
sockets to the ROUTER; random subscriptions to the XPUB; random broadcasts to the XSUB;
and raw bytes (plain TCP, no ZMTP handshake) at all three ports.
"""

from __future__ import annotations

import random
import socket
import time
from collections import Counter

import zmq

from cauldron_proto import EXPIRY_MULTIPLE, Kind, RemoteProtocolError, client, decode
from cauldron_proto.broker import ZMQBroker
from fuzz.programs import random_mutations
from fuzz.seeds import TEMPLATES, mutate, seed
from cauldron_proto.testing import open_peers

from .keyword_helpers import WAIT, config_for, keyword_broker, serving, wait_for

MESSAGES = 30_000
DEALERS, REQS, PUBS, SUBS, RAWS = 16, 8, 4, 4, 6  # 38 sockets
STORM_SECONDS = 20.0  # a bound, not a target: the storm ends when every message is sent


def storm_frames(rng: random.Random) -> list[bytes]:
    frames = seed(rng.randrange(len(TEMPLATES)), rng.randrange(65536), rng.randbytes(16))
    return mutate(frames, random_mutations(rng)) or [b""]  # ZMQ sends no message of zero frames


def is_answer(frames: list[bytes]) -> bool:
    """A reply or error reply (but a heartbeat) behind at most a delimiter, as answers come back."""
    try:
        message = decode(frames)
    except RemoteProtocolError:
        return False
    return (message.direction.kind in (Kind.REPLY, Kind.ERROR) and message.prefix in ((), (b"",))
            and message.command != "heartbeat")


class Storm:
    """The storm's sockets, what they sent and what came back."""

    def __init__(self, peers, endpoints: dict[str, str], rng: random.Random):
        self.rng = rng
        router = endpoints["broker"]
        self.talkers = [peers.socket(zmq.DEALER, router) for _ in range(DEALERS)]
        for _ in range(REQS):
            req = peers.socket(zmq.REQ)
            req.setsockopt(zmq.REQ_RELAXED, 1)  # may send again without waiting for an answer
            req.connect(router)
            self.talkers.append(req)
        self.pubs = [peers.socket(zmq.PUB, endpoints["publish"]) for _ in range(PUBS)]
        self.subs = [peers.socket(zmq.XSUB, endpoints["subscribe"]) for _ in range(SUBS)]
        self.ports = [int(endpoints[k].rsplit(":", 1)[1]) for k in ("broker", "publish", "subscribe")]
        self.raws: list[socket.socket] = []
        self.sent: Counter = Counter()  # (socket, identifier frame) -> messages sent
        self.answers: Counter = Counter()  # (socket, identifier frame) -> messages received
        self.count = self.to_router = self.refused = self.raw_bytes = 0

    def run(self, messages: int, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.count < messages and time.monotonic() < end:
            roll = self.rng.random()
            if roll < 0.90:
                self._talk()
            elif roll < 0.95:
                self._send(self.rng.choice(self.pubs), storm_frames(self.rng)[1:] or [b"x"])
            elif roll < 0.99:
                head = self.rng.choice([b"\x01", b"\x00", b""])
                self._send(self.rng.choice(self.subs), [head + self.rng.randbytes(self.rng.randrange(8))])
            else:
                self._raw()
            if self.count % 500 == 0:
                self.collect()

    def _talk(self) -> None:
        sock, frames = self.rng.choice(self.talkers), storm_frames(self.rng)
        if sock.type == zmq.REQ:
            frames = frames[1:] if len(frames) > 1 and frames[0] == b"" else frames  # a REQ adds the delimiter
        self._send(sock, frames)

    def _send(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self.refused += 1  # this peer's queue is full: let the broker catch up
            self.collect()
            return
        self.count += 1
        self.to_router += sock.type in (zmq.DEALER, zmq.REQ)
        self.sent[(id(sock), frames[-1])] += 1  # an empty identifier is a value, answered as sent

    def _raw(self) -> None:
        """Random bytes at a random port over plain TCP (a new connection when the broker hung up)."""
        if len(self.raws) < RAWS:
            raw = socket.create_connection(("127.0.0.1", self.rng.choice(self.ports)), timeout=WAIT)
            raw.setblocking(False)
            self.raws.append(raw)
        raw = self.rng.choice(self.raws)
        data = self.rng.randbytes(self.rng.randrange(1, 200))
        try:
            raw.send(data)
            self.raw_bytes += len(data)
            self.count += 1
        except (BlockingIOError, OSError):
            self.raws.remove(raw)
            raw.close()

    def collect(self) -> None:
        for sock in self.talkers:
            while sock.poll(0, zmq.POLLIN):  # a REQ with nothing to receive is not readable
                frames = sock.recv_multipart(zmq.NOBLOCK)
                if is_answer(frames):  # not a heartbeat or a request for a dispatcher the storm registered
                    self.answers[(id(sock), frames[-1])] += 1

    def close(self) -> None:
        for raw in self.raws:
            raw.close()


def test_a_storm_of_random_messages_leaves_the_broker_serving():
    rng = random.Random(20261128)
    with keyword_broker(timeout=0.5) as broker:
        config = config_for(broker)
        with serving("KREAL", config, "real1", VALUE=("integer", 7)) as real:
            with open_peers(zmq.Context()) as peers:
                storm = Storm(peers, broker.endpoints, rng)
                started = time.monotonic()
                try:
                    storm.run(MESSAGES, STORM_SECONDS)
                    stormed = time.monotonic()
                    wait_for(lambda: storm.collect() or broker.core.stats.received >= storm.to_router,
                             message=f"the broker read the storm ({storm.to_router} sent to its ROUTER, "
                                     f"{broker.core.stats.received} received)")
                    print(f"{storm.count} messages ({storm.to_router} to the ROUTER, {storm.raw_bytes} raw bytes) "
                          f"in {stormed - started:.1f} s, read by {time.monotonic() - started:.1f} s; "
                          f"{sum(storm.answers.values())} answers; {storm.refused} sends refused (queue full)")
                    storm.collect()
                finally:
                    storm.close()
                    peers.close()
                    peers.context.term()
            assert storm.count >= 20_000, f"only {storm.count} messages sent"
            for key, answers in storm.answers.items():  # nothing answered more often than sent
                assert answers <= storm.sent[key], (key, answers, storm.sent[key])
            assert broker.is_alive() and broker.error is None
            assert "internal_error" not in broker.core.stats.dropped_by_reason
            assert ZMQBroker.check(address=broker.endpoints["broker"], timeout=WAIT)
            with client.Service("KREAL", config, timeout=WAIT) as svc:
                assert wait_for(lambda: _reads(svc) == "7", message="a real read through the broker")
                assert svc["VALUE"].write(11) == "11" and real["VALUE"].value == 11
            # the storm's dispatchers fall silent and are forgotten; the real one stays
            wait_for(lambda: set(broker.services) == {"KREAL"}, timeout=EXPIRY_MULTIPLE * broker.timeout + WAIT,
                     message=f"only KREAL left (have {set(broker.services)})")


def _reads(svc: client.Service) -> str | None:
    try:
        return svc["VALUE"].read()
    except (client.ClientError, TimeoutError, KeyError):
        return None
