"""The existing broker's own test patterns (its Cauldron/zmq/test_broker.py), against ours.

A broker prepared in the test's thread and driven by hand: one ``respond()`` per message,
peers as raw REQ sockets with fixed identities over inproc:// in the global context, and
``broker.services[NAME].dispatchers[name]`` kept across calls and read live (``active`` 1
after ``welcome``, 0 after a ``ready`` carrying the welcome's identifier).
"""

from __future__ import annotations

import math

import pytest
import zmq

from cauldron_proto import EXPIRY_MULTIPLE, FAIL, Direction, Message, Text, decode, encode
from cauldron_proto.testing import open_peers

from .brokers import hand_broker

SERVICE = "testsvc"


def req(peers, broker, identity: bytes) -> zmq.Socket:
    return peers.socket(zmq.REQ, broker.address, identity=identity)


def get(sock: zmq.Socket) -> Message:
    """The message waiting on ``sock`` now (respond() has sent it before returning)."""
    assert sock.poll(0), "nothing is waiting"
    return decode(sock.recv_multipart())


def query(**fields) -> Message:
    return Message.new(service=SERVICE, **fields)


def register(broker, sock: zmq.Socket, name: str):
    """The existing fixture: welcome (active 1), then ready with the same identifier (active 0)."""
    welcome = query(direction=Direction.DBQ, dispatcher=name, command="welcome")
    sock.send_multipart(encode(welcome))
    broker.respond()
    assert get(sock).payload == "confirmed"
    view = broker.services[SERVICE.upper()].dispatchers[name]
    assert view.active == 1
    sock.send_multipart(encode(welcome.replace(command="ready")))
    broker.respond()
    assert sock.poll(0) == 0
    assert view.active == 0
    return view


@pytest.fixture
def broker():
    with hand_broker(name="Test-Broker") as prepared:
        yield prepared


@pytest.fixture
def peers():
    with open_peers() as opened:
        yield opened


def test_register_dispatcher_counts_the_confirmed_reply_as_active(broker, peers):
    view = register(broker, req(peers, broker, b"dispatcher_name"), "dispatcher_name")
    assert (view.name, view.id, view.alive) == ("dispatcher_name", b"dispatcher_name", True)
    assert 0 < view.lifetime <= EXPIRY_MULTIPLE * broker.timeout


def test_register_two_dispatchers(broker, peers):
    register(broker, req(peers, broker, b"dispatcher_name"), "dispatcher_name")
    register(broker, req(peers, broker, b"dispatcher_alt_name"), "dispatcher_alt_name")
    assert set(broker.services[SERVICE.upper()].dispatchers) == {"dispatcher_name", "dispatcher_alt_name"}


def test_respond_serves_one_message_per_call(broker, peers):
    clients = [req(peers, broker, f"client{i}".encode()) for i in range(3)]
    for client in clients:
        client.send_multipart(encode(Message.new(Direction.UBQ, command="check")))
    for served in range(1, len(clients) + 1):
        broker.respond()
        assert [bool(c.poll(0)) for c in clients].count(True) == served


def test_unknown_dispatcher_command_is_answered_dbe(broker, peers):
    dsock = req(peers, broker, b"dispatcher_name")
    dsock.send_multipart(encode(query(direction=Direction.DBQ, dispatcher="dispatcher_name", command="junk")))
    broker.respond()
    answer = get(dsock)
    assert (answer.direction, answer.payload) == (Direction.DBE, "unknown command")


@pytest.mark.parametrize("command, direction, payload", [
    ("lookup", Direction.CBP, None), ("junk", Direction.CBE, "unknown command"), ("locate", Direction.CBP, "no")])
def test_client_broker_queries(broker, peers, command, direction, payload):
    client = req(peers, broker, b"client")
    client.send_multipart(encode(query(direction=Direction.CBQ, command=command)))
    broker.respond()
    answer = get(client)
    assert answer.direction == direction
    assert answer.payload == (broker.mon_address if payload is None else payload)


def test_locate_finds_a_registered_dispatcher(broker, peers):
    register(broker, req(peers, broker, b"dispatcher_name"), "dispatcher_name")
    client = req(peers, broker, b"client")
    client.send_multipart(encode(query(direction=Direction.CBQ, command="locate")))
    broker.respond()
    assert get(client).payload == "yes"


@pytest.mark.parametrize("answer, direction", [("response", Direction.CDP), ("error", Direction.CDE)])
def test_client_dispatcher_messaging(broker, peers, answer, direction):
    dsock = req(peers, broker, b"dispatcher_name")
    view = register(broker, dsock, "dispatcher_name")
    client = req(peers, broker, b"client")
    request = query(direction=Direction.CDQ, dispatcher="dispatcher_name", command="test", payload="data")
    client.send_multipart(encode(request))
    broker.respond()
    assert client.poll(0) == 0
    forwarded = get(dsock)
    assert (forwarded.direction, forwarded.command, forwarded.payload) == (Direction.CDQ, "test", "data")
    assert forwarded.prefix[0] == b"client"
    assert (view.active, view.in_flight) == (1, 1)
    response = forwarded.reply("data-response") if answer == "response" else forwarded.error("data-error")
    dsock.send_multipart(encode(response))
    broker.respond()
    assert dsock.poll(0) == 0
    relayed = get(client)
    assert (relayed.direction, relayed.command, relayed.payload) == (direction, "test", f"data-{answer}")
    assert (view.active, view.in_flight) == (0, 0)


@pytest.mark.parametrize("second, merged", [("reply", {"reply", "replya"}), ("error", {"reply"})])
def test_fanout_answers_once_every_dispatcher_has_answered(broker, peers, second, merged):
    dsock, dasock = req(peers, broker, b"dispatcher_name"), req(peers, broker, b"dispatcher_alt_name")
    register(broker, dsock, "dispatcher_name")
    register(broker, dasock, "dispatcher_alt_name")
    client = req(peers, broker, b"client")
    client.send_multipart(encode(query(direction=Direction.CSQ, command="test", payload="data")))
    broker.respond()
    assert client.poll(0) == 0
    copies = [get(dsock), get(dasock)]
    assert {(c.direction, c.command, c.payload) for c in copies} == {(Direction.SDQ, "test", "data")}
    dsock.send_multipart(encode(copies[0].reply("reply", dispatcher="dispatcher_name")))
    alt = copies[1].reply("replya") if second == "reply" else copies[1].error("replya")
    dasock.send_multipart(encode(alt.replace(dispatcher="dispatcher_alt_name")))
    broker.respond()  # one answer served: the fan-out still waits for the other
    assert client.poll(0) == 0
    broker.respond()
    answer = get(client)
    assert (answer.direction, answer.command) == (Direction.CSP, "test")
    assert set(answer.payload.split(":")) == merged
    assert dsock.poll(0) == 0 and dasock.poll(0) == 0


def test_unavailable_dispatcher_and_empty_service_are_errors(broker, peers):
    client = req(peers, broker, b"client")
    client.send_multipart(encode(query(direction=Direction.CDQ, dispatcher="dispatcher_name", command="test")))
    broker.respond()
    answer = get(client)
    assert (answer.direction, answer.payload) == (
        Direction.CDE, f"Dispatcher 'dispatcher_name' is not available for '{SERVICE}'")
    client.send_multipart(encode(query(direction=Direction.CSQ, command="test", payload="data")))
    broker.respond()
    answer = get(client)
    assert (answer.direction, answer.payload) == (Direction.CSE, f"No dispatchers for '{SERVICE}'")


def test_broker_alive_call(broker, peers):
    client = req(peers, broker, b"client")
    client.send_multipart(encode(Message.new(Direction.UBQ, command="check", payload="data")))
    broker.respond()
    answer = get(client)
    assert (answer.direction, answer.command, answer.payload) == (Direction.UBP, "check", Text.BROKER_ALIVE)


def test_dispatcher_expiration_answers_its_pending_request():
    with hand_broker(timeout=0.01) as broker, open_peers() as peers:
        dsock = req(peers, broker, b"dispatcher_name")
        view = register(broker, dsock, "dispatcher_name")
        client = req(peers, broker, b"client")
        client.send_multipart(encode(query(direction=Direction.CDQ, dispatcher="dispatcher_name", command="test")))
        broker.respond()
        assert client.poll(0) == 0 and dsock.poll(0) != 0
        while not client.poll(0):  # respond() waits for the next timer: no sleep needed
            broker.respond()
        answer = get(client)
        assert (answer.direction, answer.command, answer.payload) == (Direction.CDE, "test", "Dispatcher Timed Out")
        assert (view.alive, view.active, view.lifetime) == (False, 0, 0.0)
        assert SERVICE.upper() not in broker.services


def test_heartbeats_are_active_until_answered():
    with hand_broker(timeout=0.05) as broker, open_peers() as peers:
        dsock = peers.socket(zmq.DEALER, broker.address)
        view = register_dealer(broker, dsock)
        while not dsock.poll(0):
            broker.respond()
        beat = decode(dsock.recv_multipart())
        assert (beat.direction, beat.command) == (Direction.DBP, "heartbeat")
        assert view.active == 1
        dsock.send_multipart(encode(beat.reply("1.0")))  # the existing dispatcher's answer: DBQ
        broker.respond()
        assert view.active == 0


def register_dealer(broker, dsock):
    welcome = query(direction=Direction.DBQ, dispatcher="disp1", command="welcome").with_prefix(b"")
    dsock.send_multipart(encode(welcome))
    broker.respond()
    assert get(dsock).payload == "confirmed"
    dsock.send_multipart(encode(welcome.replace(command="ready")))
    broker.respond()
    return broker.get_service(SERVICE).dispatchers["disp1"]


def test_views_are_read_only_and_follow_a_dispatcher_to_its_new_socket(broker, peers):
    first = req(peers, broker, b"first")
    view = register(broker, first, "disp")
    service = broker.get_service(SERVICE)
    with pytest.raises((AttributeError, TypeError)):
        view.active = 5
    with pytest.raises(TypeError):
        service.dispatchers["other"] = view  # type: ignore[index]
    with pytest.raises(TypeError):
        service.keywords["K"] = "disp"  # type: ignore[index]
    second = req(peers, broker, b"second")
    second.send_multipart(encode(query(direction=Direction.DBQ, dispatcher="disp", command="welcome")))
    # The holder is sent a heartbeat first; a REQ socket waiting to send never reads it, so the
    # name moves once T (1 s) has passed without an answer (respond() waits for that deadline).
    for _ in range(5):
        broker.respond()
        if second.poll(0):
            break
    assert get(second).payload == "confirmed"
    assert (view.id, view.active, view.alive) == (b"second", 1, True)
    assert list(service.dispatchers) == ["disp"]


def test_keywords_learned_from_identify_show_in_both_views(broker, peers):
    dsock = req(peers, broker, b"dispatcher_name")
    view = register(broker, dsock, "dispatcher_name")
    service = broker.services[SERVICE]
    client = req(peers, broker, b"client")
    client.send_multipart(encode(query(direction=Direction.CSQ, keyword="VALUE", command="identify", payload="VALUE")))
    broker.respond()
    dsock.send_multipart(encode(get(dsock).reply("integer", dispatcher="dispatcher_name")))
    broker.respond()
    assert get(client).payload == "integer"
    assert dict(service.keywords) == {"VALUE": "dispatcher_name"} and service.identify == {"VALUE": "integer"}
    assert dict(view.keywords) == {"VALUE": "integer"}


def test_lifetime_is_infinite_without_heartbeats(peers):
    with hand_broker(heartbeat=False) as broker:
        view = register(broker, req(peers, broker, b"d"), "d")
        assert view.alive and math.isinf(view.lifetime)


def test_fail_sentinel_when_no_answer_is_usable(broker, peers):
    dsock = req(peers, broker, b"dispatcher_name")
    register(broker, dsock, "dispatcher_name")
    client = req(peers, broker, b"client")
    client.send_multipart(encode(query(direction=Direction.CSQ, keyword="NOPE", command="identify", payload="NOPE")))
    broker.respond()
    dsock.send_multipart(encode(get(dsock).reply(None, dispatcher="dispatcher_name")))
    broker.respond()
    assert get(client).payload is FAIL
