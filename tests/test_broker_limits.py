"""The broker's limits through real sockets: what a peer over a limit gets, and that the
others are served meanwhile (small limits; the long attacks are scripts/attack.py)."""

from __future__ import annotations

import time

import zmq
import pytest

from cauldron_proto import Direction, Message, Text, decode, encode
from cauldron_proto.broker import batchio
from cauldron_proto.testing import (WAIT, NothingReceivedError, ask, broker_process, broker_thread, open_peers, receive,
                                    register_dispatcher, send, send_until_closed, zmtp_connection,
                                    zmtp_frame)

pytestmark = pytest.mark.integration

CHECK = Message.new(Direction.UBQ, command="check")


def alive(peers, broker) -> bool:
    """A fresh ordinary peer (no routing id of its own) is answered by the broker."""
    sock = peers.socket(zmq.DEALER, broker.endpoints["broker"])
    inquiry = Message.new(Direction.UBQ, command="check")
    return ask(sock, inquiry).payload == Text.BROKER_ALIVE


def read(service: str = "KTEST", name: str = "disp1", **fields) -> Message:
    return Message.new(Direction.CDQ, service=service, dispatcher=name, keyword="VALUE", command="update", **fields)


def test_a_request_over_max_message_size_is_answered_with_the_limit_and_others_are_served():
    with broker_thread("tcp", max_message_size=4096) as broker, open_peers() as peers:
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        big = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="modify",
                          payload="x" * 3000)
        frames = encode(big)
        frames[0:0] = [b"y" * 2000]  # two frames each under the limit, the message over it
        client.send_multipart(frames)
        answer = decode(client.recv_multipart()) if client.poll(5000) else None
        assert answer is not None and answer.direction == Direction.CDE
        assert answer.payload == Text.OVER_LIMIT.format(what=f"a message of {sum(map(len, frames))} bytes",
                                                        limit="max_message_size", value=4096)
        assert answer.identifier == big.identifier
        assert broker.core.stats.limited == {"max_message_size": 1}
        assert alive(peers, broker)


def test_a_frame_over_max_message_size_disconnects_its_peer_only():
    with broker_thread("tcp", max_message_size=4096) as broker, open_peers() as peers:
        rogue = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        send(rogue, Message.new(Direction.UBQ, command="check", payload="x" * 10_000))
        assert not rogue.poll(300)  # ZMQ's MAXMSGSIZE: the connection is dropped, nothing answered
        assert alive(peers, broker)


def test_a_message_over_max_frames_is_dropped_counted_and_the_next_is_served():
    with broker_thread("tcp", max_frames=10) as broker, open_peers() as peers:
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        client.send_multipart([b"route"] * 20 + encode(CHECK)[1:])
        answer = ask(client, Message.new(Direction.UBQ, command="check"))
        assert answer.payload == Text.BROKER_ALIVE  # the first was dropped: this is the only answer
        assert not client.poll(100)
        assert broker.core.stats.limited == {"max_frames": 1}
        assert broker.core.stats.dropped_by_reason == {"max_frames": 1}


def test_a_request_for_a_dispatcher_whose_connection_closed_is_answered_at_once():
    with broker_thread("tcp", timeout=60.0) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(dispatcher, "KTEST", "disp1")
        dispatcher.close(linger=0)
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        gone = Text.DISPATCHER_GONE.format(dispatcher="disp1", service="KTEST")
        answer = None
        for _ in range(50):  # until the broker's ZMQ has seen the connection close (a few ms): a
            try:             # request forwarded before that is lost with the connection, and answered
                answer = ask(client, read(), timeout=0.2)  # 'Dispatcher Timed Out' at expiry
            except NothingReceivedError:
                continue
            break
        assert answer is not None and (answer.direction, answer.payload) == (Direction.CDE, gone)  # not after 5 T


@pytest.mark.parametrize("limit, value, welcomes, refused_at", [
    ("max_dispatchers_per_connection", 2, [("KTEST", "a"), ("KTEST", "b"), ("KTEST", "c")], 2),
    ("max_dispatchers", 2, [("KTEST", "a"), ("OTHER", "b"), ("THIRD", "c")], 2),
    ("max_name_length", 8, [("KTEST", "short"), ("KTEST", "muchtoolongname")], 1),
])
def test_registrations_past_a_limit_are_refused_naming_it(limit, value, welcomes, refused_at):
    with broker_thread("tcp", **{limit: value}) as broker, open_peers() as peers:
        sock = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        answers = [ask(sock, Message.new(Direction.DBQ, service=service, dispatcher=name, command="welcome"))
                   for service, name in welcomes]
        assert [a.payload for a in answers[:refused_at]] == [Text.CONFIRMED] * refused_at
        refused = answers[refused_at]
        assert refused.direction == Direction.DBE
        assert refused.payload.endswith(f"over the broker's limit {limit} = {value}")
        assert broker.core.stats.limited == {limit: 1}


def test_keywords_past_max_keywords_per_dispatcher_are_relayed_but_not_learned():
    with broker_thread("tcp", max_keywords_per_dispatcher=2) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(dispatcher, "KTEST", "disp1")
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        for keyword in ("A", "B", "C"):
            request = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword=keyword,
                                  command="update")
            send(client, request)
            forwarded = receive(dispatcher)
            dispatcher.send_multipart(encode(forwarded.reply("1", dispatcher="disp1")))
            assert receive(client).payload == "1"  # relayed, learned or not
        assert sorted(broker.get_service("KTEST").keywords) == ["A", "B"]
        assert broker.core.stats.limited == {"max_keywords_per_dispatcher": 1}


def test_a_welcome_for_a_live_dispatchers_name_is_refused_and_reads_stay_with_the_holder():
    """Without CURVE: an impostor's welcome for a live name does not take it (the holder
    answers the heartbeat the welcome makes the broker send it)."""
    from cauldron_proto import client, dispatcher
    from cauldron_proto.testing import config_for
    # T = 2 s: the holder answers the check within T even on a loaded machine
    with broker_thread("tcp", timeout=2.0) as broker, open_peers() as peers:
        with dispatcher.Service("KTEST", config_for(broker), dispatcher="disp1") as service:
            service.add_keyword("VALUE", "string", "honest")
            with client.Service("KTEST", config_for(broker)) as svc:
                assert svc["VALUE"].read() == "honest"
                impostor = peers.socket(zmq.DEALER, broker.endpoints["broker"])
                welcome = Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome")
                refused = ask(impostor, welcome)
                assert (refused.direction, refused.payload) == (
                    Direction.DBE, Text.NAME_HELD.format(dispatcher="disp1", service="KTEST"))
                assert svc["VALUE"].read() == "honest"
                assert broker.core.stats.replaced == 0


def test_a_peer_that_claims_the_next_automatic_routing_ids_cannot_end_the_broker():
    """The crash of issue 19: libzmq 4.3 aborts the process when it gives a new peer an
    automatic routing id (0x00 + a counter) that another peer chose for itself. An attacker
    that registers a dispatcher learns (without aliases) a client's id from a forwarded
    request and claims the ids after it, and the unseeded counter's start; then ordinary
    peers connect. On 3906033 the broker process died (SIGABRT) here."""
    with broker_process(timeout=5.0) as broker, open_peers() as peers:
        router = broker.endpoints["broker"]
        attacker = peers.socket(zmq.DEALER, router)
        register_dispatcher(attacker, "EVIL", "evil")
        victim = peers.socket(zmq.DEALER, router)
        send(victim, Message.new(Direction.CDQ, service="EVIL", dispatcher="evil", keyword="K", command="update"))
        seen = receive(attacker).prefix[1]  # what a dispatcher sees of the client's routing id
        assert len(seen) == 5 and seen[0] == 0
        start = int.from_bytes(seen[1:], "big")
        claims = [b"\x00" + ((start + k) % 2**32).to_bytes(4, "big") for k in range(1, 65)]
        claims += [b"\x00" + (0x6B8B4567 + k).to_bytes(4, "big") for k in range(64)]  # libc rand()'s first value
        for claim in claims:
            peers.socket(zmq.DEALER, router, identity=claim)
        for _ in range(16):
            assert alive(peers, broker), "the broker did not answer"
        assert broker.popen.poll() is None, broker.stderr_text()


def test_a_second_dispatcher_under_a_live_name_is_refused_and_says_so_at_error(caplog):
    """Two dispatchers started with one name: the first keeps it, the second logs why at ERROR
    (once), naming the conflict, instead of taking the name from the first every few seconds."""
    import logging

    from cauldron_proto import client, dispatcher
    from cauldron_proto.testing import config_for
    with broker_thread("tcp", timeout=2.0) as broker:  # the holder answers the check within T
        with dispatcher.Service("KTEST", config_for(broker), dispatcher="disp1") as first:
            first.add_keyword("VALUE", "string", "first")
            assert first.wait_registered(10)
            with caplog.at_level(logging.ERROR), \
                    dispatcher.Service("KTEST", config_for(broker), dispatcher="disp1") as second:
                second.add_keyword("VALUE", "string", "second")
                held = Text.NAME_HELD.format(dispatcher="disp1", service="ktest")  # as our dispatcher writes it
                for _ in range(100):
                    if any(held in r.getMessage() for r in caplog.records):
                        break
                    second.registered.wait(0.05)
                errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
                assert errors == [f"disp1: the broker refused the registration: {held}"]
                with client.Service("KTEST", config_for(broker)) as svc:
                    assert svc["VALUE"].read() == "first"
                assert not second.registered.is_set() and broker.core.stats.replaced == 0



def test_the_registration_log_line_names_the_dispatchers_address(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="cauldron_proto"), broker_thread("tcp") as broker, \
            open_peers() as peers:
        register_dispatcher(peers.socket(zmq.DEALER, broker.endpoints["broker"]), "KTEST", "disp1")
        lines = [r.getMessage() for r in caplog.records if "registered at" in r.getMessage()]
    assert len(lines) == 1 and "dispatcher KTEST/disp1 registered at 127.0.0.1 (connection 00" in lines[0], lines


def test_a_message_that_never_ends_is_cut_off_and_counted_and_others_are_served(caplog):
    # libzmq holds every frame of an unfinished message; only the kernel's byte count shows it
    with broker_thread("tcp", max_message_size=4096, max_frames=16) as broker, open_peers() as peers:
        honest = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        assert ask(honest, CHECK).payload == Text.BROKER_ALIVE
        rogue = zmtp_connection(broker.endpoints["broker"], b"DEALER")
        sent = send_until_closed(rogue, zmtp_frame(bytes(1000), more=True) * 100, 200_000_000)
        assert sent < 200_000_000, "the broker never closed the connection"
        assert broker.core.stats.limited == {"max_message_size": 1}
        assert ask(honest, CHECK).payload == Text.BROKER_ALIVE
    assert any("cut off: it sent more of a message than the broker's limit max_message_size = 4096" in r.message
               for r in caplog.records)


def test_a_message_arriving_slowly_within_the_limits_is_served():
    with broker_thread("tcp", max_message_size=4096, max_frames=16) as broker:
        conn = zmtp_connection(broker.endpoints["broker"], b"DEALER")
        try:
            frames = encode(CHECK)
            frames[0:0] = [b"x" * 375] * 8  # 3,000 bytes of routing prefix: under both limits
            wire = b"".join(zmtp_frame(f, more=n < len(frames) - 1) for n, f in enumerate(frames))
            for start in range(0, len(wire), 600):  # over several of the broker's checks
                conn.sendall(wire[start:start + 600])
                time.sleep(0.05)
            answer = b""
            conn.settimeout(5.0)
            while Text.BROKER_ALIVE.encode() not in answer:  # the answer, in the raw bytes that come back
                part = conn.recv(65536)
                assert part, f"the broker closed the connection; limits {broker.core.stats.limited}"
                answer += part
            assert broker.core.stats.limited == {}
        finally:
            conn.close()


@pytest.mark.parametrize("batched", [False, True])
def test_a_client_sending_much_more_than_the_allowance_in_all_is_not_cut_off(batched):
    if batched and batchio.native is None:
        pytest.skip(f"the compiled I/O is not running: {batchio.WHY_PURE}")
    with broker_thread("tcp", batched=batched, max_message_size=4096) as broker, open_peers() as peers:
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        sent, began = 0, time.monotonic()
        while sent < 300 or time.monotonic() - began < 0.5:  # 300 KB and more, over 0.5 s: checked meanwhile
            client.send_multipart([b"x" * 1000] + encode(CHECK))
            assert client.poll(WAIT * 1000) and client.recv_multipart()[-2] == Text.BROKER_ALIVE.encode()
            sent += 1
        assert broker.core.stats.limited == {}
