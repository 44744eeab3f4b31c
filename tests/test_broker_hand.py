"""ZMQBroker driven by hand from the test's thread: prepare(), then respond() (inproc, global context)."""

from __future__ import annotations

import time

import zmq

from cauldron_proto import Direction, Message, Text, decode
from cauldron_proto.broker import ZMQBroker
from cauldron_proto.testing import open_peers, receive, send

from .brokers import hand_broker


def respond_until_answer(broker: ZMQBroker, sock: zmq.Socket) -> Message:
    """Call respond() until something waits on ``sock``; return it. respond() blocks until work arrives."""
    while not sock.poll(0):
        broker.respond()
    return receive(sock, timeout=0)


def test_inquiry_answered_by_respond():
    with hand_broker() as broker, open_peers() as peers:
        client = peers.socket(zmq.REQ, broker.address)
        inquiry = Message.new(Direction.UBQ, command="check")
        send(client, inquiry)
        answer = respond_until_answer(broker, client)
        assert (answer.direction, answer.command, answer.payload) == (Direction.UBP, "check", Text.BROKER_ALIVE)
        assert answer.identifier == inquiry.identifier


def test_request_routed_to_dispatcher_and_back_by_hand():
    with hand_broker() as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.address)
        client = peers.socket(zmq.REQ, broker.address, identity=b"client-1")
        send(dispatcher, Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome"))
        confirmed = respond_until_answer(broker, dispatcher)
        assert (confirmed.direction, confirmed.payload) == (Direction.DBP, "confirmed")
        send(dispatcher, Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="ready"))

        request = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
        send(client, request)
        forwarded = respond_until_answer(broker, dispatcher)
        assert forwarded.prefix == (b"", b"client-1", b"")
        assert (forwarded.direction, forwarded.keyword, forwarded.identifier) == (Direction.CDQ, "VALUE", request.identifier)

        send(dispatcher, forwarded.reply("42", dispatcher="disp1"))
        answer = respond_until_answer(broker, client)
        assert (answer.direction, answer.payload, answer.dispatcher) == (Direction.CDP, "42", "disp1")


def test_lookup_answers_mon_address():
    with hand_broker(lookup="tcp://example.invalid:6511") as broker, open_peers() as peers:
        client = peers.socket(zmq.REQ, broker.address)
        send(client, Message.new(Direction.CBQ, command="lookup"))
        answer = respond_until_answer(broker, client)
        assert (answer.direction, answer.payload) == (Direction.CBP, "tcp://example.invalid:6511")


def test_malformed_frames_do_not_stop_responding():
    junk = [[b"x"], [b"a", b"b", b"c"], [b"1", b"2", b"3", b"4", b"5", b"6"],
            [b"S", b"\x01", b"\x01", b"XYZ", b"c", b"\x01", b"id"],
            [b"\xff\xfe", b"\x01", b"\x01", b"CDQ", b"c", b"\x01", b"id"],
            [b"\x01", b"\x01", b"KEY", b"CDQ", b"update", b"\x01", b"id"],
            [b"S", b"D", b"K", b"CDB", b"broadcast", b"1", b"id"]]
    with hand_broker() as broker, open_peers() as peers:
        dealer = peers.socket(zmq.DEALER, broker.address)
        for frames in junk:
            dealer.send_multipart([b"", *frames])
        inquiry = Message.new(Direction.UBQ, command="check")
        send(dealer, inquiry)
        while True:
            answer = respond_until_answer(broker, dealer)
            if answer.identifier == inquiry.identifier:
                break
        assert answer.payload == Text.BROKER_ALIVE


def test_respond_inquiry_answers_on_the_given_socket():
    with hand_broker() as broker, open_peers() as peers:
        router = peers.socket(zmq.ROUTER)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        client = peers.socket(zmq.REQ, f"tcp://127.0.0.1:{port}")
        inquiry = Message.new(Direction.UBQ, command="check")
        send(client, inquiry)
        assert router.poll(10_000)
        broker.respond_inquiry(decode(router.recv_multipart()), router)
        answer = receive(client)
        assert (answer.direction, answer.payload, answer.identifier) == (Direction.UBP, Text.BROKER_ALIVE, inquiry.identifier)


def test_timers_send_heartbeats_through_respond_and_cleanup():
    with hand_broker(timeout=0.2) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.address)
        welcome = Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome")
        send(dispatcher, welcome)
        respond_until_answer(broker, dispatcher)
        send(dispatcher, Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="ready"))
        beat = respond_until_answer(broker, dispatcher)  # respond() wakes for the heartbeat deadline
        assert (beat.direction, beat.command, beat.payload) == (Direction.DBP, "heartbeat", "beat")

        send(dispatcher, beat.reply(time.strftime("%H:%M:%S")))  # the answer: DBQ heartbeat
        broker.respond()
        while not dispatcher.poll(0):  # next_deadline() may be early once after traffic: tick again
            time.sleep(max(0.0, broker.core.next_deadline() - time.monotonic()))
            broker.cleanup(broker._local.sockets.router)
        again = receive(dispatcher, timeout=0)
        assert (again.direction, again.command) == (Direction.DBP, "heartbeat")
        assert again.identifier != beat.identifier


def test_close_is_idempotent_and_frees_the_addresses():
    with hand_broker() as broker:
        address = broker.address
        broker.close()
        broker.close()
    with open_peers() as peers:
        rebound = peers.socket(zmq.ROUTER)
        rebound.bind(address)  # the broker's ROUTER address is free again


def test_respond_by_hand_returns_when_nothing_arrives():
    # Called by hand with nothing to do and no timer, respond() waits at most `timeout`
    # (in the thread's loop it would sleep until a message or stop()).
    with hand_broker(timeout=0.05, heartbeat=False) as broker:
        assert broker.core.next_deadline() is None
        broker.respond()
        broker.respond()


def test_a_write_to_a_socket_given_to_wake_on_ends_a_blocked_respond():
    """With no timer due for a minute, respond() returns as soon as the woken socket is written
    to, and drains it (the test's timeout, 60 s, would fail a respond() that waited)."""
    import socket

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    try:
        with hand_broker(timeout=60.0, heartbeat=False) as broker:
            broker.wake_on(reader)
            writer.send(b"\x02")  # as signal.set_wakeup_fd writes the signal number
            broker.respond()
            try:
                leftover = reader.recv(16)
            except BlockingIOError:
                leftover = b""
            assert leftover == b"", "respond() returned without draining the woken socket"
    finally:
        reader.close()
        writer.close()
