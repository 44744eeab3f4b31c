#!/usr/bin/env python
"""The attackers of ``scripts/attack.py``: one peer (or one set of sockets) doing one thing a
broker must survive, in its own process, loopback only.

    python scripts/attackers.py NAME --router ADDR --publish ADDR --subscribe ADDR
                                [--broker-pid PID] [--seconds S] [--timeout T]

Each attack runs until it is done, ``--seconds`` pass or SIGTERM comes (every wait is a poll
of at most 0.1 s), then closes its sockets (linger 0) and prints one JSON line: what it did
(messages sent, answers seen, what it learned). ``ATTACKS`` maps each name to its function
and a line saying what it does; the honest peers of the driver serve ``HONEST_SERVICE``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time
from typing import Callable

import zmq

from cauldron_proto import Direction, Message, decode, encode, kinds
from cauldron_proto.protocol import Kind
from cauldron_proto.testing import PeerSockets, receive, register_dispatcher, send, zmtp_connection, zmtp_frame

HONEST_SERVICE, HONEST_DISPATCHER, HONEST_KEYWORD = "KHONEST", "honest", "VALUE"
#: libc rand()'s first value when nothing seeds it: where libzmq's ROUTER starts counting
#: the routing ids it gives peers that choose none (0x00 + a big-endian uint32)
RAND_FIRST = 0x6B8B4567
SQUATTERS = 64  #: routing ids taken ahead of the ROUTER's counter
MB = 1 << 20
STALL_SECONDS = 10.0
IMPOSTOR = "impostor"


class Run:
    """The attack's bounds: a deadline, and SIGTERM (the driver's stop)."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.stopped = False
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, signum, frame) -> None:
        self.stopped = True

    def going(self) -> bool:
        return not self.stopped and time.monotonic() < self.deadline

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` (in steps of 0.1 s) or until the run ends."""
        end = time.monotonic() + seconds
        while self.going() and time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))


class Target:
    """The broker under attack: its endpoints by config key, its pid, its heartbeat period."""

    def __init__(self, args: argparse.Namespace):
        self.endpoints = {"broker": args.router, "publish": args.publish, "subscribe": args.subscribe}
        self.router = args.router
        self.pid, self.timeout = args.broker_pid, args.timeout


def put(sock: zmq.Socket, frames: list, run: Run, copy: bool = True) -> bool:
    """Send ``frames`` when the socket takes them, polling while the run goes on."""
    while run.going():
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=copy)
            return True
        except zmq.Again:
            sock.poll(100, zmq.POLLOUT)
    return False


def take(sock: zmq.Socket, wait_ms: int = 0) -> Message | None:
    """The next message on ``sock`` within ``wait_ms``, decoded (None: none came)."""
    if not sock.poll(wait_ms):
        return None
    return decode(sock.recv_multipart())


def serve_as(sock: zmq.Socket, name: str, payload: str | None, stats: dict) -> None:
    """Play dispatcher ``name`` for what waits on ``sock``: heartbeats answered, requests
    answered with ``payload`` (None: never answered)."""
    while (message := take(sock)) is not None:
        if kinds.is_heartbeat(message):
            send(sock, kinds.heartbeat_answer(message, time.time()), zmq.NOBLOCK)
        elif message.direction.kind == Kind.QUERY and payload is not None:
            sock.send_multipart(encode(message.reply(payload, dispatcher=name)), zmq.NOBLOCK, copy=False)
            stats["answered"] = stats.get("answered", 0) + 1


def read_query(service: str, dispatcher: str | None, keyword: str) -> Message:
    return Message.new(Direction.CDQ, service=service, dispatcher=dispatcher, keyword=keyword, command="update")


# -- routing ids ------------------------------------------------------------------------------

def learn_counter(target: Target, peers: PeerSockets, stats: dict) -> int:
    """The ROUTER's counter as a fresh client got it: a dispatcher of our own sees the
    client's routing id in the prefix of the request the broker forwards."""
    spy = peers.socket(zmq.DEALER, target.router)
    register_dispatcher(spy, "KSPY", "spy", timeout=5)
    fresh = peers.socket(zmq.DEALER, target.router)
    send(fresh, read_query("KSPY", "spy", "X"), timeout=5)
    while True:
        request = receive(spy, 5)
        if not kinds.is_heartbeat(request):
            break
    routing_id = request.prefix[-2]  # (delimiter, the client's routing id, delimiter)
    counter = int.from_bytes(routing_id[1:], "big")
    stats.update(learned_id=routing_id.hex(), learned_after_rand_first=counter - RAND_FIRST)
    return counter


def squat(run: Run, target: Target, peers: PeerSockets, stats: dict, counters: list[int]) -> None:
    """DEALERs with explicit routing ids 0x00 + each counter value, each answered once (so
    the ROUTER holds them), then one ordinary peer that takes the ROUTER's next id."""
    squatters = [peers.socket(zmq.DEALER, target.router, identity=b"\x00" + (c % 2**32).to_bytes(4, "big"))
                 for c in counters]
    for sock in squatters:
        if sock.poll(1000, zmq.POLLOUT):
            send(sock, kinds.inquiry("check"), zmq.NOBLOCK)
    attached = sum(take(sock, 1000) is not None for sock in squatters)
    stats.update(squatters=len(squatters), squatters_answered=attached)
    ordinary = peers.socket(zmq.DEALER, target.router)
    if ordinary.poll(2000, zmq.POLLOUT):
        send(ordinary, kinds.inquiry("check"), zmq.NOBLOCK)
    stats["ordinary_answered"] = take(ordinary, 2000) is not None
    run.pause(1.0)


def routing_id_collision(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    counter = learn_counter(target, peers, stats)
    squat(run, target, peers, stats, [counter + 1 + k for k in range(SQUATTERS)])


def routing_id_guess(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    squat(run, target, peers, stats, [RAND_FIRST + k for k in range(SQUATTERS)])


# -- memory ----------------------------------------------------------------------------------

def huge_prefix_no_read(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """Reads with 8 prefix frames of 15 MB each (each under 16 MiB); the answers never read."""
    sock = peers.socket(zmq.DEALER)
    sock.rcvhwm, sock.sndhwm = 1, 2
    sock.connect(target.router)
    big = b"p" * (15 * MB)
    envelope = encode(read_query(HONEST_SERVICE, HONEST_DISPATCHER, HONEST_KEYWORD))
    stats["sent"] = 0
    while put(sock, [big] * 8 + envelope, run, copy=False):
        stats["sent"] += 1
    stats["sent_mb"] = stats["sent"] * 120


def big_broadcast_slow_subscriber(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """10 MB broadcasts on the XSUB while a SUB subscribed to everything never reads."""
    sub = peers.socket(zmq.SUB)
    sub.rcvhwm = 1
    sub.subscribe(b"")
    sub.connect(target.endpoints["subscribe"])
    pub = peers.socket(zmq.PUB, target.endpoints["publish"])
    run.pause(0.5)  # the subscription reaches the broker (and through it, the PUB)
    frames = encode(Message.new(Direction.CDB, service="kattack", dispatcher="loud", keyword="BIG",
                                command="broadcast", payload="b" * (10 * MB)))
    stats["sent"] = 0
    while run.going():
        pub.send_multipart(frames, copy=False)  # a PUB drops what its queue cannot hold
        stats["sent"] += 1
        time.sleep(0.01)


def subscription_flood(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """Distinct subscriptions (b"\\x01" + topic) sent to the XPUB as fast as it takes them."""
    xsub = peers.socket(zmq.XSUB, target.endpoints["subscribe"])
    stats["sent"] = 0
    while run.going():
        for _ in range(1000):
            if not put(xsub, [b"\x01flood/%012d" % stats["sent"]], run):
                break
            stats["sent"] += 1


def identify_flood(run: Run, target: Target, peers: PeerSockets, stats: dict, window: int = 16) -> None:
    """A dispatcher answering identify with a 1 MB type, asked about ever-new keywords."""
    disp = peers.socket(zmq.DEALER, target.router)
    register_dispatcher(disp, "KFLOOD", "flood", timeout=5)
    asker = peers.socket(zmq.DEALER, target.router)
    big_type = "t" * MB
    stats.update(asked=0, answered=0, client_answers=0)
    poller = zmq.Poller()
    poller.register(disp, zmq.POLLIN)
    poller.register(asker, zmq.POLLIN)
    while run.going():
        while stats["asked"] - stats["client_answers"] < window:
            keyword = f"K{stats['asked']}"
            send(asker, Message.new(Direction.CSQ, service="KFLOOD", keyword=keyword, command="identify",
                                    payload=keyword), zmq.NOBLOCK)
            stats["asked"] += 1
        poller.poll(100)
        serve_as(disp, "flood", big_type, stats)
        while take(asker) is not None:
            stats["client_answers"] += 1


def registration_flood(run: Run, target: Target, peers: PeerSockets, stats: dict, count: int = 100_000) -> None:
    """Welcome (then ready) of ``count`` dispatcher names from one socket, as fast as it takes
    them; heartbeats answered (the socket is never silent, so the broker may send none)."""
    sock = peers.socket(zmq.DEALER, target.router)
    stats.update(welcomed=0, confirmed=0, heartbeats=0)
    while run.going():
        for _ in range(min(1000, count - stats["welcomed"])):
            if not put(sock, encode(kinds.welcome("KREG", f"r{stats['welcomed']}").with_prefix(b"")), run):
                return
            stats["welcomed"] += 1
        sock.poll(10 if stats["welcomed"] < count else 100)
        while run.going() and (message := take(sock)) is not None:
            if kinds.is_kind("confirmed", message):
                stats["confirmed"] += 1
                put(sock, encode(kinds.ready("KREG", message.dispatcher).with_prefix(b"")), run)
            elif kinds.is_heartbeat(message):
                stats["heartbeats"] += 1
                put(sock, encode(kinds.heartbeat_answer(message, time.time())), run)


# -- names and the broker's own time ---------------------------------------------------------

def name_takeover(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """A welcome for the live honest dispatcher's name from a new connection, then its reads
    answered ``impostor`` (``answered``: how many)."""
    sock = peers.socket(zmq.DEALER, target.router)
    register_dispatcher(sock, HONEST_SERVICE, HONEST_DISPATCHER, timeout=5)
    stats["answered"] = 0
    while run.going():
        if sock.poll(100):
            serve_as(sock, HONEST_DISPATCHER, IMPOSTOR, stats)


def welcome_and_vanish(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """Every 0.5 s a new connection welcomes the honest dispatcher's name, then closes."""
    stats.update(welcomed=0, confirmed=0)
    while run.going():
        sock = peers.socket(zmq.DEALER, target.router)
        send(sock, kinds.welcome(HONEST_SERVICE, HONEST_DISPATCHER), timeout=1)
        stats["welcomed"] += 1
        answer = take(sock, 400)
        stats["confirmed"] += answer is not None and kinds.is_kind("confirmed", answer)
        sock.close(linger=0)
        peers.sockets.remove(sock)
        run.pause(0.1)


def broker_stall(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """SIGSTOP the broker for 10 s, then SIGCONT (in any case)."""
    os.kill(target.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        run.pause(STALL_SECONDS)
    finally:
        os.kill(target.pid, signal.SIGCONT)
        stats["stalled_s"] = round(time.monotonic() - started, 2)


# -- our own ------------------------------------------------------------------------------------

def _million_frames(sock: zmq.Socket, run: Run, count: int, last: bool) -> bool:
    for n in range(count - 1):
        while True:
            try:
                sock.send(b"f", zmq.NOBLOCK | zmq.SNDMORE)
                break
            except zmq.Again:
                if not run.going():
                    return False
                sock.poll(100, zmq.POLLOUT)
    return put(sock, encode(read_query(HONEST_SERVICE, HONEST_DISPATCHER, HONEST_KEYWORD)), run) if last else True


def million_frames(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """Messages of a million 1-byte frames (then an envelope), one after the other; the answers read."""
    sock = peers.socket(zmq.DEALER, target.router)
    stats.update(sent=0, answered=0)
    while run.going() and _million_frames(sock, run, 1_000_000, last=True):
        stats["sent"] += 1
        while run.going() and not sock.poll(100):
            pass
        if run.going():
            sock.recv_multipart()
            stats["answered"] += 1


def million_frames_unfinished(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """A million 1-byte frames, every one sent with more to follow, and never the last."""
    sock = peers.socket(zmq.DEALER, target.router)
    stats["frames"] = 1_000_000 if _million_frames(sock, run, 1_000_000, last=False) else None
    run.pause(run.deadline - time.monotonic())


def burst(sock: zmq.Socket, frames: list[bytes], count: int) -> int:
    """Up to ``count`` copies of request ``frames``, each with a new identifier, as long as
    the socket takes them at once: how many were sent."""
    for sent in range(count):
        try:
            sock.send_multipart(frames[:-1] + [os.urandom(16)], zmq.NOBLOCK)
        except zmq.Again:
            return sent
    return count


def mute_dispatcher_flood(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """A client sending reads as fast as it can to a dispatcher that never answers them."""
    disp = peers.socket(zmq.DEALER, target.router)
    register_dispatcher(disp, "KMUTE", "mute", timeout=5)
    asker = peers.socket(zmq.DEALER, target.router)
    frames = encode(read_query("KMUTE", "mute", "X").with_prefix(b""))
    stats.update(sent=0, busy=0)
    while run.going():
        stats["sent"] += burst(asker, frames, 1000)
        serve_as(disp, "mute", None, stats)
        while take(asker) is not None:
            stats["busy"] += 1
        asker.poll(10)


def big_replies_no_read(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """A client that never reads asks, as fast as it can, for a keyword whose value is 1 MB."""
    disp = peers.socket(zmq.DEALER, target.router)
    register_dispatcher(disp, "KBIG", "big", timeout=5)
    asker = peers.socket(zmq.DEALER)
    asker.rcvhwm = 1
    asker.connect(target.router)
    frames = encode(read_query("KBIG", "big", "X").with_prefix(b""))
    value = "v" * MB
    stats.update(sent=0, answered=0)
    while run.going():
        stats["sent"] += burst(asker, frames, 100)
        disp.poll(10)
        serve_as(disp, "big", value, stats)


def _unfinished_raw(run: Run, address: str, socket_type: bytes, stats: dict) -> None:
    """1 KB frames of one message, each with more to follow, over raw ZMTP (libzmq would keep
    them back); connecting again each time the broker closes the connection, or takes nothing
    for 0.5 s (a connection the broker closed may stay open on this side for a minute)."""
    chunk = zmtp_frame(bytes(1000), more=True) * 1000
    stats.update(sent_mb=0, connections=0, closed_by_broker=0)
    while run.going():
        try:
            conn = zmtp_connection(address, socket_type)
        except OSError:
            run.pause(0.1)
            continue
        stats["connections"] += 1
        conn.setblocking(False)
        view, took = memoryview(chunk), time.monotonic()
        try:
            while run.going():
                if not select.select([], [conn], [], 0.1)[1]:
                    if time.monotonic() - took > 0.5:
                        raise ConnectionError("the broker takes nothing more")
                    continue
                try:
                    view = view[conn.send(view):]
                except BlockingIOError:
                    continue
                took = time.monotonic()
                if not view:
                    stats["sent_mb"] += 1
                    view = memoryview(chunk)
        except OSError:
            stats["closed_by_broker"] += 1
        finally:
            conn.close()


def many_frames_raw(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """Over raw ZMTP (as fast as the kernel takes it), complete requests of 700,000 1-byte frames,
    one a second on a new connection: the most frames a message can have and still be finished
    before the broker would cut it off as unfinished (two of the largest messages allowed)."""
    frames = [b"."] * 700_000 + encode(read_query(HONEST_SERVICE, HONEST_DISPATCHER, HONEST_KEYWORD))
    wire = b"".join(zmtp_frame(frame, more=n < len(frames) - 1) for n, frame in enumerate(frames))
    stats.update(sent=0)
    while run.going():
        try:
            conn = zmtp_connection(target.router, b"DEALER")
        except OSError:
            run.pause(0.1)
            continue
        try:
            conn.sendall(wire)
            stats["sent"] += 1
        except OSError:
            pass
        run.pause(1.0)
        conn.close()


def unfinished_message_raw(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """A DEALER over raw ZMTP sending one message's frames for ever, on the ROUTER."""
    _unfinished_raw(run, target.router, b"DEALER", stats)


def unfinished_broadcast_raw(run: Run, target: Target, peers: PeerSockets, stats: dict) -> None:
    """A PUB over raw ZMTP sending one broadcast's frames for ever, on the XSUB."""
    _unfinished_raw(run, target.endpoints["publish"], b"PUB", stats)


Attack = Callable[[Run, Target, PeerSockets, dict], None]
#: name -> (the attack, what it does); the order is the suite's
ATTACKS: dict[str, tuple[Attack, str]] = {
    "routing-id-collision": (routing_id_collision, "explicit routing ids = the ROUTER's next automatic ids "
                                                   "(learned from a forwarded prefix), then an ordinary peer"),
    "routing-id-guess": (routing_id_guess, "the same, ids guessed from rand()'s first value 0x6b8b4567"),
    "huge-prefix-no-read": (huge_prefix_no_read, "reads with 8 prefix frames of 15 MB each, answers never read"),
    "big-broadcast-slow-subscriber": (big_broadcast_slow_subscriber,
                                      "10 MB broadcasts while a SUB of everything never reads"),
    "subscription-flood": (subscription_flood, "distinct subscriptions to the XPUB as fast as it takes them"),
    "identify-flood": (identify_flood, "a dispatcher answering identify with 1 MB types, ever-new keywords"),
    "registration-flood": (registration_flood, "100,000 dispatcher names welcomed from one socket"),
    "name-takeover": (name_takeover, "a welcome for the live honest dispatcher's name, its reads answered"),
    "welcome-and-vanish": (welcome_and_vanish, "a welcome for the honest name from a new connection every 0.5 s"),
    "broker-stall": (broker_stall, "the broker SIGSTOPped for 10 s, then SIGCONT"),
    "million-frames": (million_frames, "messages of a million 1-byte frames, one after another"),
    "million-frames-unfinished": (million_frames_unfinished, "a million frames with more to follow, never ended"),
    "many-frames-raw": (many_frames_raw, "raw ZMTP: a request of 700,000 1-byte frames a second, sent at once"),
    "unfinished-message-raw": (unfinished_message_raw, "raw ZMTP: 1 KB frames of a message never ended, on the ROUTER"),
    "unfinished-broadcast-raw": (unfinished_broadcast_raw,
                                 "raw ZMTP: 1 KB frames of a broadcast never ended, on the XSUB"),
    "mute-dispatcher-flood": (mute_dispatcher_flood, "reads as fast as possible to a dispatcher that never answers"),
    "big-replies-no-read": (big_replies_no_read, "a client that never reads asks for a 1 MB value, fast"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("attack", choices=list(ATTACKS))
    p.add_argument("--router", required=True)
    p.add_argument("--publish", required=True)
    p.add_argument("--subscribe", required=True)
    p.add_argument("--broker-pid", type=int)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--timeout", type=float, default=1.0, help="the broker's heartbeat period T")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run, stats = Run(args.seconds), {}
    context = zmq.Context()
    peers = PeerSockets(context)
    try:
        ATTACKS[args.attack][0](run, Target(args), peers, stats)
    except Exception as exc:  # noqa: BLE001 - what stopped the attack is part of its report
        stats["stopped_by"] = f"{type(exc).__name__}: {exc}"
    finally:
        peers.close()
        context.term()
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
