"""The dispatcher helper over real sockets: against a ROUTER playing the broker (exact frames),
and against a real ZMQBroker (heartbeats, expiry, broker restart, broadcasts)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import zmq

from cauldron_proto import BLANK, Direction, Message, Text, client, decode, dispatcher, encode
from cauldron_proto.testing import open_peers

from .keyword_helpers import WAIT, config_for, keyword_broker, restarted_broker, serving, wait_for


def receive(sock: zmq.Socket) -> list[bytes]:
    assert sock.poll(WAIT * 1000), "nothing arrived"
    return sock.recv_multipart()


@pytest.fixture
def fake_broker():
    """A ROUTER on an ephemeral port playing the broker, and a dispatcher connected to it."""
    with open_peers(zmq.Context()) as peers:
        router = peers.socket(zmq.ROUTER)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        svc = dispatcher.Service("KTEST", {"broker": f"tcp://127.0.0.1:{port}", "publish": "tcp://127.0.0.1:1"},
                                 "KTEST1", start=False, timeout=0.2, liveness=50)
        svc.add_keyword("VALUE", "integer", 1)
        svc.begin()
        try:
            yield router, svc
        finally:
            svc.shutdown()
            peers.close()
            peers.context.term()


def accept(router: zmq.Socket) -> bytes:
    """Take a welcome, confirm it, take ready and the check; the dispatcher's peer id."""
    peer, empty, *welcome = receive(router)
    # the service in lower case, as existing Cauldron peers put it on the wire
    assert empty == b"" and welcome[:7] == [b"ktest", b"KTEST1", BLANK, b"DBQ", b"welcome", BLANK, welcome[6]]
    router.send_multipart([peer, b"", *decode(welcome).reply(Text.CONFIRMED).frames])
    ready = decode(receive(router)[2:])
    assert (ready.direction, ready.command, ready.dispatcher) == (Direction.DBQ, "ready", "KTEST1")
    check = decode(receive(router)[2:])
    assert check.direction == Direction.UBQ
    router.send_multipart([peer, b"", *check.reply(Text.BROKER_ALIVE).frames])
    return peer


def test_registration_heartbeat_and_request_frames(fake_broker):
    router, svc = fake_broker
    peer = accept(router)
    assert svc.wait_registered(WAIT)
    beat = Message.new(Direction.DBP, service="KTEST", dispatcher="KTEST1", command="heartbeat", payload="beat")
    router.send_multipart([peer, b"", *beat.frames])
    answer = receive(router)
    assert answer[:8] == [peer, b"", b"KTEST", b"KTEST1", BLANK, b"DBQ", b"heartbeat", answer[7]]
    assert answer[8] == beat.identifier and abs(float(answer[7]) - time.time()) < 60
    request = Message.new(Direction.CDQ, service="ktest", keyword="VALUE", command="update")
    router.send_multipart([peer, b"", b"client-7", b"", *request.frames])
    assert receive(router) == [peer, b"", b"client-7", b"", b"ktest", b"KTEST1", b"VALUE", b"CDP",
                               b"update", b"1", request.identifier]


def test_requests_in_any_case_of_the_service_are_answered_as_sent(fake_broker):
    """Our dispatcher puts its service on the wire in lower case and answers others in any case,
    the service frame as the request had it."""
    router, svc = fake_broker
    peer = accept(router)
    for service in (b"KTEST", b"KTest", b"ktest"):
        request = Message.new(Direction.CDQ, service=service.decode(), keyword="VALUE", command="update", payload="")
        router.send_multipart([peer, b"", b"client-7", b"", *request.frames])
        assert receive(router)[4:10] == [service, b"KTEST1", b"VALUE", b"CDP", b"update", b"1"]


def test_not_registered_error_makes_it_register_again_from_a_new_socket(fake_broker, caplog):
    router, svc = fake_broker
    caplog.set_level(logging.INFO, "cauldron_proto.dispatcher")
    first = accept(router)
    assert svc.wait_registered(WAIT)
    text = Text.DISPATCHER_NOT_REGISTERED.format(dispatcher="KTEST1", service="KTEST")
    refusal = Message.new(Direction.DBE, service="KTEST", dispatcher="KTEST1", command="heartbeat", payload=text)
    router.send_multipart([first, b"", *refusal.frames])
    second = accept(router)
    assert second != first
    wait_for(lambda: svc.registrations == 2, message="a second registration")
    assert any("registering again" in r.getMessage() and text in r.getMessage() for r in caplog.records)


def test_welcome_is_sent_again_while_no_broker_answers(fake_broker):
    router, svc = fake_broker
    peer, _, *welcome = receive(router)
    again = receive(router)  # not confirmed within a second: a new socket sends welcome again
    assert again[0] != peer and decode(again[2:]).command == "welcome"
    assert not svc.registered.is_set()


# Against the real broker -----------------------------------------------------------------
def test_broadcast_frames_on_every_change(tmp_path):
    with keyword_broker() as broker, open_peers() as peers:
        config = config_for(broker)
        sub = peers.socket(zmq.SUB, broker.endpoints["subscribe"], subscribe=b"ktest")  # as existing clients do
        with serving("KTEST", config, "KTEST1", VALUE=("integer", 0)) as disp:
            keyword = disp["VALUE"]
            wait_for(lambda: keyword.set(keyword.value + 1) and sub.poll(50), message="a broadcast")
            while sub.poll(200):
                sub.recv_multipart()
            keyword.set(1234)
            frames = receive(sub)
            assert frames[:6] == [b"ktest", b"KTEST1", b"VALUE", b"CDB", b"broadcast", b"1234"]
            assert len(frames) == 7 and len(frames[6]) == 16
            keyword.set(1234)  # no change: no broadcast
            keyword.set(1234, force=True)
            assert receive(sub)[5] == b"1234"
            assert not sub.poll(100)


def test_a_busy_handler_does_not_get_its_dispatcher_expired():
    """The handler sleeps 8 heartbeat periods (the broker expires after 5 silent ones)."""
    with keyword_broker(timeout=0.2) as broker:
        config = config_for(broker)
        slow = {"type": "integer", "value": 5, "on_read": lambda kw: time.sleep(1.6) or 6}
        with serving("KBUSY", config, "BUSY1", SLOW=slow, FAST=("integer", 1)) as disp, \
                client.Service("KBUSY", config, timeout=WAIT) as svc:
            results = {}
            reader = threading.Thread(target=lambda: results.update(slow=svc["SLOW"].read()))
            reader.start()
            wait_for(lambda: svc["FAST"].read() == "1")
            reader.join(WAIT)
            assert results == {"slow": "6"}
            assert disp.registrations == 1


def test_dispatcher_registers_again_after_a_broker_restart(caplog):
    caplog.set_level(logging.INFO, "cauldron_proto.dispatcher")
    with keyword_broker(timeout=0.2) as broker:
        config = config_for(broker)
        with serving("KRESTART", config, "RESTART1", VALUE=("integer", 3)) as disp:
            assert disp.registrations == 1
            with restarted_broker(broker) as again, client.Service("KRESTART", config, timeout=WAIT) as svc:
                assert again.endpoints == broker.endpoints
                wait_for(lambda: disp.registrations >= 2, message="registration with the new broker")
                wait_for(lambda: svc.locate(), message="the new broker knowing the dispatcher")
                assert svc["VALUE"].write(4) == "4"
    messages = [r.getMessage() for r in caplog.records]
    assert any("nothing from the broker" in m and "registering again" in m for m in messages), messages
    assert any("registered again" in m for m in messages), messages


@pytest.mark.parametrize("broker_period, own_period, found, says", [
    (0.1, "1.0", "heartbeats every", "period1: the broker sends heartbeats every 0.1 s but this dispatcher's heartbeat "
                                     "period is 1 s: set [zmq] timeout"),
    (5.0, "0.1", "no heartbeat", "period1: nothing from the broker for 0.3 s (3 heartbeat periods); the broker "
                                 "confirmed the registration but sent no heartbeat since: if its heartbeat period is "
                                 "longer than 0.3 s, this dispatcher's (0.1 s) is too short"),
])
def test_a_heartbeat_period_the_brokers_disagrees_with_is_named(caplog, broker_period, own_period, found, says):
    caplog.set_level(logging.WARNING, "cauldron_proto.dispatcher")
    with keyword_broker(timeout=broker_period) as broker:
        with serving("KPERIOD", {**config_for(broker), "timeout": own_period}, "period1", VALUE=("integer", 1)):
            said = wait_for(lambda: [r.getMessage() for r in caplog.records if found in r.getMessage()],
                            message=f"a warning with {found!r}")
    assert said[0].startswith(says)


def test_a_monitor_gets_the_value_of_a_dispatcher_restarted_under_its_name():
    """A dispatcher broadcasts every keyword's value each time it registers: a monitor that
    had the old dispatcher's values gets the restarted one's, with no change of value needed."""
    import queue

    from cauldron_proto import client, dispatcher
    from cauldron_proto.testing import broker_thread, config_for
    seen: queue.Queue = queue.Queue()
    with broker_thread("tcp", timeout=0.5) as broker:
        first = dispatcher.Service("KTEST", config_for(broker), dispatcher="disp1")
        first.add_keyword("VALUE", "string", "first")
        assert first.wait_registered(10)
        with client.Service("KTEST", config_for(broker)) as svc:
            svc["VALUE"].monitor(lambda value: seen.put(value.ascii), prime=True)
            assert seen.get(timeout=10) == "first"
            first.shutdown()
            with dispatcher.Service("KTEST", config_for(broker), dispatcher="disp1") as second:
                second.add_keyword("VALUE", "string", "second")
                assert second.wait_registered(10)
                assert seen.get(timeout=10) == "second"
