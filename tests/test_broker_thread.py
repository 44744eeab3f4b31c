"""ZMQBroker as a thread, over inproc and over tcp on ephemeral ports: what peers see."""

from __future__ import annotations

import threading

import pytest
import zmq

from cauldron_proto import FAIL, Direction, Message, Text
from cauldron_proto.broker import BindError, ZMQBroker
from cauldron_proto.testing import (ANY_TCP, answer_request, ask, broker_thread, open_peers, receive,
                                    register_dispatcher, send)


@pytest.fixture
def peers(any_broker):
    with open_peers(any_broker.context) as group:
        yield group


def test_endpoints_are_real_connect_addresses(any_broker):
    assert set(any_broker.endpoints) == {"broker", "publish", "subscribe"}
    for endpoint in any_broker.endpoints.values():
        assert "*" not in endpoint and not endpoint.endswith(":0")
    assert any_broker.running.is_set() and any_broker.is_alive()


def test_check_finds_the_broker(any_broker):
    assert ZMQBroker.check(address=any_broker.endpoints["broker"], ctx=any_broker.context, timeout=10)


def test_inquiry(any_broker, peers):
    client = peers.socket(zmq.REQ, any_broker.endpoints["broker"])
    answer = ask(client, Message.new(Direction.UBQ, command="check"))
    assert (answer.direction, answer.command, answer.payload) == (Direction.UBP, "check", Text.BROKER_ALIVE)


def test_welcome_ready_then_request_routed_and_answered(any_broker, peers):
    dispatcher = peers.socket(zmq.DEALER, any_broker.endpoints["broker"])
    register_dispatcher(dispatcher, "KTEST", "disp1")
    client = peers.socket(zmq.REQ, any_broker.endpoints["broker"])
    request = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE",
                          command="modify", payload="7")
    send(client, request)
    forwarded = answer_request(dispatcher, "disp1", "7")
    assert (forwarded.direction, forwarded.command, forwarded.payload) == (Direction.CDQ, "modify", "7")
    answer = receive(client)
    assert (answer.direction, answer.payload, answer.identifier) == (Direction.CDP, "7", request.identifier)


def test_request_to_unknown_dispatcher_gets_an_error(any_broker, peers):
    client = peers.socket(zmq.REQ, any_broker.endpoints["broker"])
    answer = ask(client, Message.new(Direction.CDQ, service="KTEST", dispatcher="ghost", keyword="VALUE",
                                     command="update"))
    assert answer.direction == Direction.CDE
    assert answer.payload == Text.DISPATCHER_NOT_AVAILABLE.format(dispatcher="ghost", service="KTEST")


def test_fan_out_merges_answers(any_broker, peers):
    router = any_broker.endpoints["broker"]
    first, second = peers.socket(zmq.DEALER, router), peers.socket(zmq.DEALER, router)
    register_dispatcher(first, "KTEST", "disp1")
    register_dispatcher(second, "KTEST", "disp2")
    client = peers.socket(zmq.DEALER, router)
    query = Message.new(Direction.CSQ, service="KTEST", command="enumerate")
    send(client, query)
    copies = [answer_request(first, "disp1", "A:B"), answer_request(second, "disp2", "C")]
    assert {copy.direction for copy in copies} == {Direction.SDQ}
    answer = receive(client)
    assert (answer.direction, answer.identifier) == (Direction.CSP, query.identifier)
    assert sorted(answer.payload.split(":")) == ["A", "B", "C"]


def test_fan_out_with_no_usable_answer_fails(any_broker, peers):
    dispatcher = peers.socket(zmq.DEALER, any_broker.endpoints["broker"])
    register_dispatcher(dispatcher, "KTEST", "disp1")
    client = peers.socket(zmq.REQ, any_broker.endpoints["broker"])
    send(client, Message.new(Direction.CSQ, service="KTEST", keyword="NOPE", command="identify", payload="NOPE"))
    answer_request(dispatcher, "disp1", None)
    assert receive(client).payload is FAIL


def test_lookup_returns_the_real_subscribe_endpoint(any_broker, peers):
    client = peers.socket(zmq.REQ, any_broker.endpoints["broker"])
    answer = ask(client, Message.new(Direction.CBQ, command="lookup"))
    assert (answer.direction, answer.payload) == (Direction.CBP, any_broker.endpoints["subscribe"])


def _lookup(peers, broker) -> str:
    return ask(peers.socket(zmq.REQ, broker.endpoints["broker"]), Message.new(Direction.CBQ, command="lookup")).payload


def test_broadcasts_relayed_to_subscribers_by_topic(any_broker, peers):
    subscriber = peers.socket(zmq.SUB, _lookup(peers, any_broker), subscribe=b"KTEST")
    publisher = peers.socket(zmq.PUB, any_broker.endpoints["publish"])

    def broadcast(service, value):
        return Message.new(Direction.CDB, service=service, dispatcher="disp1", keyword="VALUE",
                           command="broadcast", payload=value)

    while not subscriber.poll(50):  # until the subscription has reached the publisher
        send(publisher, broadcast("KTEST", "probe"))
    # From now on what the publisher sends reaches the subscriber, in order, filtered by topic.
    send(publisher, broadcast("OTHER", "not for you"))
    send(publisher, broadcast("KTEST", "42"))
    received = receive(subscriber)
    while received.payload == "probe":
        received = receive(subscriber)
    assert (received.service, received.payload, received.direction) == ("KTEST", "42", Direction.CDB)


def test_subscriptions_are_forwarded_upstream(any_broker, peers):
    upstream = peers.socket(zmq.XPUB, any_broker.endpoints["publish"])  # plays a publisher
    peers.socket(zmq.SUB, any_broker.endpoints["subscribe"], subscribe=b"KTEST")
    assert upstream.poll(10_000)
    assert upstream.recv() == b"\x01KTEST"


def test_malformed_frames_do_not_kill_the_thread(any_broker, peers):
    dealer = peers.socket(zmq.DEALER, any_broker.endpoints["broker"])
    for frames in ([b"x"], [b"1", b"2", b"3", b"4", b"5", b"6"], [b"S", b"D", b"K", b"QQQ", b"c", b"p", b"i"],
                   [b"S", b"D", b"K", b"DBP", b"c", b"p", b"i"], [b"\xc3", b"D", b"K", b"CDQ", b"c", b"p", b"i"]):
        dealer.send_multipart([b"", *frames])
    dealer.send_multipart([b"no delimiter"])
    answer = ask(dealer, Message.new(Direction.UBQ, command="check"))
    assert answer.payload == Text.BROKER_ALIVE
    assert any_broker.is_alive()


def test_oversized_frame_is_refused_and_the_broker_keeps_serving():
    with broker_thread("tcp", max_message_size=1024) as broker, open_peers() as peers:
        big = peers.socket(zmq.REQ, broker.endpoints["broker"])
        send(big, Message.new(Direction.UBQ, command="check", payload="x" * 4096))
        assert ZMQBroker.check(address=broker.endpoints["broker"], timeout=10)
        assert not big.poll(300), "an oversized message was served"


def test_stop_is_prompt_even_with_a_long_timeout():
    # With a one-hour heartbeat period a broker that noticed stop() only on a poll timeout
    # would outlive the pytest timeout.
    with open_peers() as peers:
        broker = ZMQBroker("slow", ANY_TCP, ANY_TCP, ANY_TCP, ANY_TCP, timeout=3600.0)
        broker.start()
        dispatcher = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(dispatcher, "KTEST", "disp1")  # the core now has a deadline an hour away
        broker.stop()
        assert not broker.is_alive() and not broker.running.is_set()
        broker.stop()  # stopping twice is harmless


def test_stop_before_start_and_start_failure_surfaces():
    with open_peers() as peers:
        taken = peers.socket(zmq.ROUTER)
        port = taken.bind_to_random_port("tcp://127.0.0.1")
        address = f"tcp://127.0.0.1:{port}"
        broker = ZMQBroker("clash", address, ANY_TCP, ANY_TCP, ANY_TCP)
        with pytest.raises(BindError, match=address) as caught:
            broker.start()
        assert caught.value.mode == "ROUTER" and caught.value.errno == zmq.EADDRINUSE
        assert isinstance(caught.value, zmq.ZMQError)  # what the existing broker raises there
        assert str(caught.value).startswith("cannot bind the broker's ROUTER socket to")
        broker.join(10)
        assert not broker.is_alive()
        ZMQBroker("never", ANY_TCP, ANY_TCP, ANY_TCP, ANY_TCP).stop()


def test_stopped_broker_frees_its_inproc_addresses():
    with broker_thread("inproc") as broker:
        address = broker.address
    with open_peers() as peers:
        peers.socket(zmq.ROUTER).bind(address)


def test_context_termination_is_a_clean_exit():
    context = zmq.Context()
    broker = ZMQBroker("ctx", "inproc://ctx-router", "inproc://ctx-xpub", "inproc://ctx-xsub",
                       "inproc://ctx-xpub", context=context)
    try:
        broker.start()
    finally:
        context.term()  # returns once the broker has closed its sockets (ETERM ends its loop)
    broker.join(10)
    assert not broker.is_alive() and broker.error is None


def test_thread_names_are_callable():
    broker = ZMQBroker("named", ANY_TCP, ANY_TCP, ANY_TCP, ANY_TCP)
    assert broker.isAlive() is False and broker.is_alive() is False
    assert broker.getName() == "named"
    broker.setName("renamed")
    assert broker.name == "renamed" and broker.getName() == "renamed"
    broker.setDaemon(True)
    assert broker.isDaemon() is True and broker.daemon is True
    broker.daemon = False
    assert broker.isDaemon() is False
    assert callable(ZMQBroker.daemon)  # on the class: start a broker in a process
    assert isinstance(broker, threading.Thread)


def test_running_and_daemon_flag_in_a_started_thread(tcp_broker):
    assert tcp_broker.isAlive() and tcp_broker.isDaemon()
    assert tcp_broker.ident is not None


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout"):
        ZMQBroker("bad", ANY_TCP, ANY_TCP, ANY_TCP, ANY_TCP, timeout=0)


def test_a_step_that_fails_is_logged_and_the_broker_goes_on(caplog):
    with broker_thread("tcp") as broker, open_peers() as peers:
        handle, calls = broker.core.handle, []

        def fails_once(*args):
            calls.append(args)
            if len(calls) == 1:
                raise RuntimeError("a defect")
            return handle(*args)

        broker.core.handle = fails_once
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        first = Message.new(Direction.UBQ, command="check")
        send(client, first)
        assert not client.poll(300)  # that step's message goes unanswered
        assert ask(client, Message.new(Direction.UBQ, command="check")).payload == Text.BROKER_ALIVE
        assert broker.is_alive()
    assert any(r.levelname == "ERROR" and "failed; the broker goes on" in r.message and r.exc_info
               for r in caplog.records)
