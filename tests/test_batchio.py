"""The broker's two I/O paths, compiled (batched) and pure Python, through real sockets: each
scenario runs on both and what the peers and the broker's books show must be the same (and
what it should be); plus the compiled part's own calls, and how the path is chosen."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import pytest
import zmq

from cauldron_proto import Direction, Message, Text, encode
from cauldron_proto.broker import batchio
from cauldron_proto.broker.zmq_broker import _KEPT_FRAME
from cauldron_proto.security import BrokerCurve, PeerCurve
from cauldron_proto.cli.keygen import generate
from cauldron_proto.testing import (NothingReceivedError, ask, broker_thread, open_peers, register_dispatcher,
                                    WAIT)

from .keyword_helpers import wait_for

pytestmark = pytest.mark.integration

compiled = pytest.mark.skipif(batchio.native is None, reason=f"the compiled I/O is not running: {batchio.WHY_PURE}")
CHECK = Message.new(Direction.UBQ, command="check")


def both(scenario, *args):
    """``scenario(batched, *args)`` on the pure-Python loop, then on the compiled one (when it
    runs); the first's observations, after checking the second saw the same."""
    pure = scenario(False, *args)
    if batchio.native is not None:
        assert scenario(True, *args) == pure
    return pure


def read(payload: str = "", command: str = "modify") -> Message:
    return Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command=command,
                       payload=payload)


def answers(sock: zmq.Socket, count: int) -> list[list[bytes]]:
    got = []
    for _ in range(count):
        if not sock.poll(WAIT * 1000):
            break
        got.append(sock.recv_multipart())
    assert not sock.poll(100)  # nothing more
    return got


def over_limits(batched: bool, messages: list[list[bytes]]):
    with broker_thread("tcp", batched=batched, max_message_size=10_000, max_frames=10) as broker, \
            open_peers() as peers:
        assert broker.io == (batchio.IO if batched else "pure Python")
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        for frames in messages:
            client.send_multipart(frames)
        got = answers(client, 2)
        stats = broker.core.stats
        return got, dict(stats.limited), dict(stats.dropped_by_reason), stats.received


def test_messages_over_the_limits_are_answered_or_dropped_the_same_on_both_paths():
    big = read("x" * 3000)
    not_kept = [b"y" * 7000] + encode(big)  # frames under the limit, the message over it; the first not kept
    kept = [b"z" * 3500, b"z" * 3500] + encode(big)  # over the size, every frame kept
    # one message of 20,000 1-byte frames (60 KB on the wire: more would be an unfinished message
    # past these limits' allowance while it arrives, and its connection cut off, see broker.unfinished)
    flood = [b"."] * 20_000
    messages = [not_kept, [b"route"] * 20 + encode(CHECK)[1:], flood, kept, encode(CHECK)]
    got, limited, dropped, received = both(over_limits, messages)
    size = sum(map(len, kept))  # the one answered: its routing frames were kept
    assert [frames[-2].decode() for frames in got] == [
        Text.OVER_LIMIT.format(what=f"a message of {size} bytes", limit="max_message_size", value=10_000),
        Text.BROKER_ALIVE]
    assert limited == {"max_message_size": 2, "max_frames": 2} and received == 5
    assert dropped == {"max_message_size": 1, "max_frames": 2}  # the frame not kept: nothing to answer


def gone_dispatcher(batched: bool):
    with broker_thread("tcp", batched=batched, timeout=60.0) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(dispatcher, "KTEST", "disp1")
        dispatcher.close(linger=0)
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        for _ in range(50):  # until the broker's ZMQ has seen the connection close (a few ms): a
            request = read(command="update")  # request forwarded before is lost with the connection
            try:
                answer = ask(client, request, timeout=0.2)
            except NothingReceivedError:
                continue
            return answer.direction, answer.payload, answer.identifier == request.identifier
    return None


def test_a_request_that_cannot_be_delivered_is_answered_the_same_on_both_paths():
    gone = Text.DISPATCHER_GONE.format(dispatcher="disp1", service="KTEST")
    assert both(gone_dispatcher) == (Direction.CDE, gone, True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    made = {name: generate(folder / "keys", name) for name in ("broker", "disp1", "client1", "mallory")}
    (folder / "authorized").mkdir()
    for name in ("disp1", "client1", "mallory"):
        shutil.copy(made[name][0], folder / "authorized")
    (folder / "dispatchers").write_text("disp1: KTEST\n")  # mallory is authorized, but may not serve KTEST
    return {"authorized": folder / "authorized", "policy": folder / "dispatchers", **made}


def curve_peer(peers, keys, broker, name: str, kind: int = zmq.DEALER, where: str = "broker") -> zmq.Socket:
    """A socket of ``kind`` with the CURVE key ``name``, connected to the broker's ``where``."""
    sock = peers.socket(kind)
    PeerCurve.from_files(keys["broker"][0], keys[name][1]).client_socket(sock)
    sock.connect(broker.endpoints[where])
    return sock


def curve_keys(batched: bool, keys, caplog):
    context = zmq.Context()
    try:
        security = BrokerCurve(keys["broker"][1], keys["authorized"])
        with broker_thread("tcp", context=context, security=security, batched=batched) as broker, \
                open_peers(context) as peers:
            caplog.clear()
            register_dispatcher(curve_peer(peers, keys, broker, "disp1"), "KTEST", "disp1")
            alive = ask(curve_peer(peers, keys, broker, "client1"), CHECK).payload
            record = broker.status("KTEST")["services"]["KTEST"]["dispatchers"]["disp1"]
            lines = [r.getMessage().split(" (connection")[0] for r in caplog.records if "registered at" in r.getMessage()]
            return record["key"], alive, lines
    finally:
        context.term()


def test_the_curve_key_name_and_the_peer_address_reach_the_core_the_same_on_both_paths(keys, caplog):
    with caplog.at_level(logging.INFO, logger="cauldron_proto"):
        key, alive, lines = both(curve_keys, keys, caplog)
    assert (key, alive) == ("disp1", Text.BROKER_ALIVE)
    assert lines == ["test-broker: dispatcher KTEST/disp1 registered at 127.0.0.1"]


def broadcasts(batched: bool, messages: list[list[bytes]]):
    with broker_thread("tcp", batched=batched, max_frames=10, max_broadcast_size=1000) as broker, \
            open_peers() as peers:
        assert broker.relay.batched is batched
        publisher = peers.socket(zmq.PUB, broker.endpoints["publish"])
        subscriber = peers.socket(zmq.SUB, broker.endpoints["subscribe"])
        subscriber.subscribe(b"SVC")
        wait_for(lambda: publisher.send_multipart([b"SVC", b"join"]) or subscriber.poll(50),
                 message="the subscription through the relay")
        while subscriber.poll(100):
            subscriber.recv_multipart()
        for frames in messages:
            publisher.send_multipart(frames)
        publisher.send_multipart([b"SVC", b"last"])
        got = []
        while not got or got[-1] != [b"SVC", b"last"]:
            assert subscriber.poll(WAIT * 1000), "the last broadcast did not arrive"
            got.append(subscriber.recv_multipart())
    stats = broker.relay.stats  # once the relay stopped (the compiled one counts a batch's drops after it)
    return got, stats.dropped_by_reason, stats.dropped


def test_broadcasts_over_the_limits_are_dropped_and_the_others_relayed_the_same_on_both_paths():
    messages = [[b"SVC"] * 11, [b"SVC", b"ok"], [b"SVC"] + [b"."] * 9_999, [b"SVC", b"y" * 500] * 2,
                [b"SVC", b"z" * 995], [b"SVC", b"z" * 998]]  # no frame over 1000 bytes: its publisher would go
    got, reasons, dropped = both(broadcasts, messages)
    assert got == [[b"SVC", b"ok"], [b"SVC", b"z" * 995], [b"SVC", b"last"]]
    assert reasons == {"max_broadcast_size": 2, "max_frames": 2} and dropped == 4


def policy_relay(batched: bool, keys, caplog):
    context = zmq.Context()
    try:
        security = BrokerCurve(keys["broker"][1], keys["authorized"], keys["policy"])
        with broker_thread("tcp", context=context, security=security, batched=batched) as broker, \
                open_peers(context) as peers:
            subscriber = curve_peer(peers, keys, broker, "client1", zmq.SUB, "subscribe")
            subscriber.subscribe(b"KTEST")
            real, forger = (curve_peer(peers, keys, broker, name, zmq.PUB, "publish") for name in ("disp1", "mallory"))
            got = set()

            def broadcast(sock, value):
                sock.send_multipart(encode(Message.new(Direction.CDB, service="KTEST", dispatcher="d1",
                                                       keyword="VALUE", command="broadcast", payload=value)))

            def received():
                while subscriber.poll(20):
                    got.add(subscriber.recv_multipart()[-2])
                return got

            caplog.clear()
            wait_for(lambda: broadcast(real, "real") or b"real" in received(), message="disp1's broadcast")
            wait_for(lambda: broadcast(forger, "HIJACKED") or broker.relay.refused, message="the forgery refused")
            real.send_multipart([b"KTEST", b"\xff"])  # not a broadcast
            wait_for(lambda: broker.relay.stats.dropped_by_reason.get("not_a_broadcast"), message="the malformed one")
            broadcast(real, "after")
            wait_for(lambda: b"after" in received(), message="the broadcast after the forgery")
            lines = {r.getMessage() for r in caplog.records if r.name.endswith("relay")}
            return received(), set(broker.relay.stats.dropped_by_reason), lines
    finally:
        context.term()


def test_the_policy_relay_refuses_the_same_broadcasts_on_both_paths(keys, caplog):
    with caplog.at_level(logging.WARNING, logger="cauldron_proto"):
        got, reasons, lines = both(policy_relay, keys, caplog)
    assert got == {b"real", b"after"} and reasons == {"policy", "not_a_broadcast"}
    assert lines == {"broadcast for 'KTEST' from key 'mallory' not relayed: the policy does not let that key serve it "
                     "(7 frames)",
                     "broadcast for 'KTEST' from key 'disp1' not relayed: not a broadcast (a broadcast is 7 frames, "
                     "no prefix) (2 frames)"}


@compiled
def test_receive_gives_each_message_its_frames_connection_and_the_kept_frames_of_one_over_a_limit():
    receive = batchio.native.receive
    with open_peers() as peers:
        router = peers.socket(zmq.ROUTER)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer = peers.socket(zmq.DEALER, f"tcp://127.0.0.1:{port}")
        inproc = peers.socket(zmq.ROUTER)
        inproc.bind("inproc://test-batchio")
        local = peers.socket(zmq.DEALER, "inproc://test-batchio")
        dealer.send_multipart([b"a", b"DBQ", b"c"])
        dealer.send_multipart([b"a", b"b" * (_KEPT_FRAME + 1), b"c" * 10])  # over 100 bytes
        dealer.send_multipart([b"f"] * 5)  # over 4 frames
        local.send_multipart([b"x"])
        assert router.poll(WAIT * 1000) and inproc.poll(WAIT * 1000)
        got, counts = [], {}
        while len(got) < 3 and router.poll(WAIT * 1000):
            got += receive(router.underlying, 3 - len(got), 4, 100, _KEPT_FRAME, False, -2, 3, b"DBQ", counts, 64)
        first, over, many = got
        fd = first[4]
        assert counts == {fd: (5 + 3 * 64) + (4108 + 3 * 64) + (5 + 5 * 64)}  # every message, over or not
        assert fd >= 0 and first[1:] == ([b"a", b"DBQ", b"c"], 5, 3, fd, False, None, "127.0.0.1")
        assert over[1:] == ([b"a", None, b"c" * 10], 4108, 3, fd, True, None, None)
        assert many[1:] == (None, 5, 5, fd, True, None, None)
        assert receive(router.underlying, 10, 4, 100, _KEPT_FRAME) == []  # nothing waits: no wait either
        ((_, frames, _, _, local_fd, _, key, _),) = receive(inproc.underlying, 10, 4, 100, _KEPT_FRAME, True,
                                                             counts=counts, frame_overhead=64)
        assert (frames, local_fd, key) == ([b"x"], -1, "")  # no connection, no ZAP
        assert list(counts) == [fd]  # a message without a connection is counted nowhere


@compiled
def test_transmit_returns_what_could_not_go_and_whether_its_peer_is_gone():
    with open_peers() as peers:
        router = peers.socket(zmq.ROUTER)
        router.router_mandatory = 1
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer = peers.socket(zmq.DEALER, f"tcp://127.0.0.1:{port}")
        dealer.send(b"hello")
        peer = router.recv_multipart()[0]
        send = batchio.sender(router)
        nobody = [b"nobody", b"", b"z"]
        assert send([[peer, b"x", b"y"], nobody, [peer, bytearray(b"b"), memoryview(b"m")]]) == [(nobody, True)]
        assert send([[peer, b"ok"]]) is None
        assert [dealer.recv_multipart() for _ in range(3)] == [[b"x", b"y"], [b"b", b"m"], [b"ok"]]


def test_the_io_is_chosen_at_import_and_cauldron_proto_pure_forces_pure_python():
    code = "from cauldron_proto.broker import batchio; print(batchio.IO); print(batchio.WHY_PURE)"
    env = {**os.environ, "CAULDRON_PROTO_PURE": "1"}
    unforced = {name: value for name, value in os.environ.items() if name != "CAULDRON_PROTO_PURE"}
    forced = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert forced.stdout.splitlines() == ["pure Python", "CAULDRON_PROTO_PURE is set"]
    missing = subprocess.run([sys.executable, "-c", "import sys; sys.modules['cauldron_proto.broker._batchio'] = None; "
                              + code], env=unforced, capture_output=True, text=True, timeout=60)  # not built
    io, why = missing.stdout.splitlines()
    assert io == "pure Python" and why.startswith("the compiled part does not load: ")
    version = subprocess.run([sys.executable, "-c", "from cauldron_proto.cli.broker import main; main(['--version'])"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert version.stdout.strip().endswith("(pure Python I/O)")
