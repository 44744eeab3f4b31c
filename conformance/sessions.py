"""Record the sessions the conformance cases are made from.

    .venv/bin/python conformance/sessions.py [SESSION ...]   # all sessions when none named

For each session: start our broker (a ZMQBroker thread on loopback ephemeral ports, with
a short heartbeat period where the session needs it), start ``cauldron-record`` in front
of it, play the session's peers against the recorder's addresses (raw sockets driven by
hand below, or the project's helpers), stop the recorder, and keep its recording as
``conformance/recordings/<session>.jsonl``. ``--draft DIR`` also writes the draft case
``cauldron-record --to-case`` makes of each recording; the cases in the suite are those
drafts, reviewed and edited (ids, descriptions, levels, silences, alternatives).

Raw peers build every message with the codec (``Message.new``); the malformed ones are the
only frames written by hand, on purpose.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import zmq

from cauldron_proto import Direction, Message, decode, encode
from cauldron_proto.broker import ZMQBroker

HERE = Path(__file__).resolve().parent
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
                self.answer(message, f"{time.time():.2f}")
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
def recording(name: str, timeout: float):
    """Our broker and cauldron-record in front of it; yields the recorder's addresses."""
    context = zmq.Context()
    broker = ZMQBroker(f"session-{name}", ANY, ANY, ANY, ANY, context=context, timeout=timeout)
    broker.start()
    out = RECORDINGS / f"{name}.jsonl"
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
        broker.stop()
        context.term()


# -- sessions: the broker ---------------------------------------------------------------

@session()
def inquiry_req(net: Net):
    check = net.req()
    check.send(Direction.UBQ, command="check")
    check.recv()


@session()
def inquiry_any_command(net: Net):
    peer = net.dealer()
    peer.send(Direction.UBQ, service="KTEST", command="ping")
    peer.recv()


@session()
def welcome_confirmed(net: Net):
    disp = net.dealer()
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome")
    disp.recv()


@session()
def ready_and_heartbeat_get_no_reply(net: Net):
    disp = net.dispatcher()
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="heartbeat", payload="1764326400.25")
    disp.quiet(0.3)


@session()
def dispatcher_unknown_command(net: Net):
    disp = net.dispatcher(ready=False)
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="hello")
    disp.recv()


@session()
def dispatcher_error_discarded(net: Net):
    disp = net.dispatcher()
    disp.send(Direction.DBE, service="KTEST", dispatcher="disp1", command="hello", payload="oops")
    disp.send(Direction.UBQ, command="check")
    disp.recv()


@session()
def lookup(net: Net):
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="lookup")
    client.recv()


@session()
def locate_no(net: Net):
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="locate")
    client.recv()


@session()
def locate_yes(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="locate")
    client.recv()


@session()
def client_unknown_command(net: Net):
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="frobnicate")
    client.recv()


# -- sessions: routing to one dispatcher ------------------------------------------------

def _round_trip(disp: Peer, client: Peer, name="disp1", **fields) -> Message:
    client.send(Direction.CDQ, service=fields.pop("service", "KTEST"), **fields)
    query = disp.recv()
    disp.answer(query, "42", dispatcher=name)
    return client.recv()


@session()
def query_by_dispatcher_name(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    _round_trip(disp, client, dispatcher="disp1", keyword="VALUE", command="update")


@session()
def query_from_req_client(net: Net):
    disp, client = net.dispatcher(), net.req()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="modify", payload="43")
    query = disp.recv()
    disp.answer(query, "43", dispatcher="disp1")
    client.recv()


@session()
def query_dispatcher_not_available(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="ghost", keyword="VALUE", command="update")
    client.recv()


@session()
def query_no_dispatcher_for_keyword(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", keyword="NOPE", command="update")
    client.recv()


@session()
def query_ambiguous(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", command="update")
    client.recv()


@session()
def query_routed_by_learned_keyword(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    _round_trip(disp, client, dispatcher="disp1", keyword="VALUE", command="update")
    _round_trip(disp, client, keyword="VALUE", command="update")
    _round_trip(disp, client, keyword="value", command="update")


@session()
def query_error_relayed(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="frob")
    query = disp.recv()
    disp.error(query, "Bad command 'frob'!", dispatcher="disp1")
    client.recv()


@session()
def service_name_case_insensitive(net: Net):
    disp, client = net.dispatcher(service="ktest"), net.dealer()
    _round_trip(disp, client, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    client.send(Direction.CBQ, service="Ktest", command="locate")
    client.recv()


@session()
def dispatcher_name_case_sensitive(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="DISP1", keyword="VALUE", command="update")
    client.recv()


# -- sessions: fan-out ------------------------------------------------------------------

@session()
def fanout_no_dispatchers(net: Net):
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", command="enumerate")
    client.recv()


def _fanout(net: Net, answers: list[tuple[str, str, object]], command="enumerate", keyword=None):
    disps = [(net.dispatcher(name=name), name, kind, payload) for name, kind, payload in answers]
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", keyword=keyword, command=command, payload=keyword)
    for disp, name, kind, payload in disps:
        copy = disp.recv()
        (disp.answer if kind == "P" else disp.error)(copy, payload, dispatcher=name)
    return client.recv()


@session()
def fanout_one_dispatcher(net: Net):
    _fanout(net, [("disp1", "P", "VALUE:TICK")])


@session()
def fanout_two_joined(net: Net):
    _fanout(net, [("disp1", "P", "ALPHA"), ("disp2", "P", "BETA")])


@session()
def fanout_none_usable(net: Net):
    _fanout(net, [("disp1", "E", "Bad command 'enumerate'!"), ("disp2", "P", None)])


@session()
def fanout_one_usable_of_two(net: Net):
    _fanout(net, [("disp1", "E", "Bad command 'enumerate'!"), ("disp2", "P", "GAMMA")])


@session()
def identify_cache(net: Net):
    disp = net.dispatcher()
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", keyword="VALUE", command="identify", payload="VALUE")
    copy = disp.recv()
    disp.answer(copy, "integer", dispatcher="disp1")
    client.recv()
    client.send(Direction.CSQ, service="KTEST", keyword="value", command="identify", payload="value")
    client.recv()
    disp.quiet(0.3)


# -- sessions: heartbeat and expiry (broker heartbeat period T) -------------------------

@session(timeout=T)
def heartbeat_sent_and_answered(net: Net):
    disp = net.dispatcher(answer_heartbeats=False)
    beat = disp.recv(4 * T)
    disp.answer(beat, f"{time.time():.2f}")
    beat = disp.recv(4 * T)
    disp.answer(beat, f"{time.time():.2f}")


@session(timeout=T)
def no_heartbeat_before_ready(net: Net):
    disp = net.dispatcher(ready=False, answer_heartbeats=False)
    disp.quiet(2 * T)


@session(timeout=T)
def expiry_answers_pending_request(net: Net):
    disp, client = net.dispatcher(answer_heartbeats=False), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    client.recv(8 * T)
    client.send(Direction.CBQ, service="KTEST", command="locate")
    client.recv()
    disp.sock.recv_multipart()  # the forwarded query, left unanswered


@session(timeout=T)
def heartbeat_keeps_dispatcher_alive(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    disp.quiet(7 * T)
    _round_trip(disp, client, dispatcher="disp1", keyword="VALUE", command="update")


@session(timeout=T)
def fanout_completes_on_expiry(net: Net):
    live, silent = net.dispatcher(name="disp1"), net.dispatcher(name="disp2", answer_heartbeats=False)
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", command="enumerate")
    copy = live.recv()
    live.answer(copy, "ALPHA", dispatcher="disp1")
    silent.sock.recv_multipart()
    live_until = time.monotonic() + 8 * T
    while time.monotonic() < live_until:
        try:
            client.recv(0.05)
            break
        except TimeoutError:
            live.quiet(0.01)


@session(timeout=T)
def expired_dispatcher_must_welcome_again(net: Net):
    disp = net.dispatcher(answer_heartbeats=False)
    time.sleep(7 * T)
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="ready")
    while disp.recv(2).direction != Direction.DBE:
        pass
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    client.recv()


# -- sessions: defects of the existing broker that ours avoids --------------------------

@session()
def reregister_answers_pending(net: Net):
    old, client = net.dispatcher(), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    old.recv()
    new = net.dispatcher()
    client.recv()
    _round_trip(new, client, dispatcher="disp1", keyword="VALUE", command="update")


@session()
def duplicate_reply_relayed_once(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    query = disp.recv()
    disp.answer(query, "42", dispatcher="disp1")
    disp.answer(query, "42", dispatcher="disp1")
    client.recv()
    client.quiet(0.3)


@session()
def unregistered_dispatcher_message(net: Net):
    disp = net.dealer()
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="ready")
    disp.recv()


# -- sessions: publish/subscribe relay --------------------------------------------------

@session()
def broadcast_relayed(net: Net):
    sub = net.sub("KTEST")
    pub = net.pub("KTEST")
    pub.send_multipart(encode(Message.new(Direction.CDB, service="KTEST", dispatcher="disp1", keyword="TICK",
                                          command="broadcast", payload="17")))
    assert sub.poll(2000)
    sub.recv_multipart()


@session()
def broadcast_topic_filtering(net: Net):
    ours, other = net.sub("KTEST"), net.sub("KOTHER")
    pub = net.pub("KTEST", "KOTHER")
    pub.send_multipart(encode(Message.new(Direction.CDB, service="KTEST", dispatcher="disp1", keyword="TICK",
                                          command="broadcast", payload="18")))
    assert ours.poll(2000)
    ours.recv_multipart()
    assert not other.poll(300)


# -- sessions: the project's helpers (client.Service, dispatcher.Service) ----------------

@contextmanager
def helper_dispatcher(net: Net, **keywords):
    from cauldron_proto import dispatcher

    config = {"broker": net.addresses["router"], "publish": net.addresses["publish"], "timeout": "5"}
    svc = dispatcher.Service("KTEST", config, "KTEST1", start=False, context=net.context)
    try:
        for name, (ktl_type, value) in keywords.items():
            svc.add_keyword(name, ktl_type, value=value, units="counts" if ktl_type == "integer" else None)
        svc.begin()
        assert svc.wait_registered(5), "the helper dispatcher did not register"
        yield svc
    finally:
        svc.shutdown()


@contextmanager
def helper_client(net: Net):
    from cauldron_proto import client

    config = {"broker": net.addresses["router"], "subscribe": net.addresses["subscribe"], "timeout": "5"}
    with client.Service("KTEST", config, context=net.context) as svc:
        yield svc


@session()
def helpers_read_write(net: Net):
    with helper_dispatcher(net, VALUE=("integer", 1)), helper_client(net) as svc:
        assert svc["VALUE"].read() == "1"
        assert svc["VALUE"].write(43) == "43"
        assert svc["VALUE"].read() == "43"


@session()
def helpers_enumerate_units_locate(net: Net):
    with helper_dispatcher(net, VALUE=("integer", 1), NAME=("string", "hello")), helper_client(net) as svc:
        assert sorted(svc.keywords()) == ["NAME", "VALUE"]
        svc["VALUE"].units()
        assert svc.locate()


@session()
def helpers_monitor_broadcast(net: Net):
    import queue

    seen = queue.Queue()
    with helper_dispatcher(net, TICK=("integer", 0)) as disp, helper_client(net) as svc:
        svc["TICK"].monitor(lambda value: seen.put(value), prime=False)
        time.sleep(0.5)  # let the subscription reach the dispatcher's PUB through the relay
        disp["TICK"].set(17)
        seen.get(timeout=5)


@session()
def tools_dispatcher_show_modify(net: Net):
    """The command-line tools as processes: cauldron-dispatcher, cauldron-show, cauldron-modify."""
    def tool(name, *args):
        return [sys.executable, "-c", f"import sys; from cauldron_proto.cli.keywords import {name}; sys.exit({name}())",
                "--router", net.addresses["router"], "--publish", net.addresses["publish"],
                "--subscribe", net.addresses["subscribe"], *args]

    disp = subprocess.Popen(tool("dispatcher_main", "-s", "KTEST", "-n", "KTEST1", "-k", "VALUE:integer=5"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        disp.stdout.readline()  # it says when it serves
        show = subprocess.run(tool("show_main", "-s", "KTEST", "VALUE"), capture_output=True, text=True, timeout=20)
        assert show.returncode == 0, show.stderr
        modify = subprocess.run(tool("modify_main", "-s", "KTEST", "VALUE=7"), capture_output=True, text=True,
                                timeout=20)
        assert modify.returncode == 0, modify.stderr
    finally:
        disp.send_signal(signal.SIGINT)
        disp.wait(10)


@session()
def helper_dispatcher_bad_command(net: Net):
    with helper_dispatcher(net, VALUE=("integer", 1)):
        client = net.dealer()
        client.send(Direction.CDQ, service="KTEST", dispatcher="KTEST1", keyword="VALUE", command="frob")
        client.recv()


@session()
def helper_dispatcher_refusals(net: Net):
    """A write the keyword's validation refuses, and a keyword the dispatcher does not have."""
    with helper_dispatcher(net, VALUE=("integer", 1)) as disp:
        def at_most_100(keyword, value):
            if value > 100:
                raise ValueError("more than 100")
        disp["VALUE"].validate = at_most_100
        client = net.dealer()
        client.send(Direction.CDQ, service="KTEST", dispatcher="KTEST1", keyword="VALUE", command="modify",
                    payload="500")
        assert client.recv().payload == "Write to VALUE refused: more than 100"
        client.send(Direction.CDQ, service="KTEST", dispatcher="KTEST1", keyword="NOSUCH", command="update")
        assert client.recv().payload == "Unknown keyword 'NOSUCH' for 'KTEST'"


# -- sessions: malformed input, then an inquiry (robustness) ----------------------------

def _then_inquiry(peer: Peer, frames: list[bytes], delimiter=True):
    peer.sock.send_multipart(([b""] if delimiter else []) + frames)
    peer.send(Direction.UBQ, command="check")
    while peer.recv().direction != Direction.UBP:
        pass


_ENVELOPE = [b"KTEST", b"disp1", b"VALUE", b"CDQ", b"update", b"\x01", b"\x10\x11\x12\x13"]


def _malformed(frames, delimiter=True):
    def play(net: Net):
        _then_inquiry(net.dealer(), frames, delimiter)
    return play


for _name, _frames, _delimiter in [
    ("malformed_one_frame", [b"KTEST"], False),
    ("malformed_three_frames", _ENVELOPE[:3], True),
    ("malformed_six_frames", _ENVELOPE[:6], True),
    ("malformed_bad_direction", [*_ENVELOPE[:3], b"XBQ", *_ENVELOPE[4:]], True),
    ("malformed_cdb_to_router", [b"KTEST", b"disp1", b"TICK", b"CDB", b"broadcast", b"17", b"\x20\x21"], True),
    ("malformed_dbp_to_router", [b"KTEST", b"disp1", b"\x01", b"DBP", b"welcome", b"confirmed", b"\x30\x31"], True),
    ("malformed_blank_service_with_keyword", [b"\x01", b"\x01", b"VALUE", b"CDQ", b"update", b"\x01", b"\x40"], True),
    ("malformed_invalid_utf8", [b"KTEST", b"disp1", b"\xc3\x28", b"CDQ", b"update", b"\x01", b"\x50\x51"], True),
    ("malformed_empty_envelope_frame", [b"KTEST", b"disp1", b"VALUE", b"CDQ", b"update", b"", b"\x60"], True),
    ("malformed_no_delimiter", _ENVELOPE, False),
    ("malformed_fail_in_service", [b"\x02", b"\x01", b"\x01", b"UBQ", b"check", b"\x01", b"\x70"], True),
    ("client_sends_sdq", [b"KTEST", b"disp1", b"VALUE", b"SDQ", b"update", b"\x01", b"\x80\x81"], True),
]:
    SESSIONS[_name.replace("_", "-")] = (_malformed(_frames, _delimiter), 5.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="sessions to record (default: all)")
    p.add_argument("--draft", type=Path, help="also write draft cases to this directory")
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(SESSIONS))
        return 0
    RECORDINGS.mkdir(exist_ok=True)
    failures = 0
    for name in args.names or list(SESSIONS):
        play, timeout = SESSIONS[name]
        try:
            with recording(name, timeout) as net:
                play(net)
        except Exception as exc:  # one bad session must not stop the others
            failures += 1
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        print(f"{name}: recorded", file=sys.stderr)
        if args.draft:
            args.draft.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "cauldron_proto.cli.record", "--to-case",
                            str(RECORDINGS / f"{name}.jsonl"), "--id", name,
                            "-o", str(args.draft / f"{name}.yaml")], check=True)
    return 1 if failures else 0


if __name__ == "__main__":
    os.chdir(HERE.parent)
    sys.exit(main())
