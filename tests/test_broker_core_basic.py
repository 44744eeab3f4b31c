"""Routing core: inquiry, dispatcher registration and liveness, client-broker queries."""

from __future__ import annotations

import pytest

from cauldron_proto import BrokerCore, Text

from .core_harness import DELIMITER, LOOKUP, Harness, query


def test_inquiry_is_answered_broker_alive_echoing_command_and_identifier():
    h = Harness()
    inquiry = query("UBQ", command="check")
    h.send(b"Q1", inquiry, expect=[(b"Q1", inquiry.reply(Text.BROKER_ALIVE))])


def test_inquiry_with_any_command_and_fields_is_answered():
    h = Harness()
    inquiry = query("UBQ", "KTEST", keyword="X", command="anything")
    [sent] = h.send(b"Q1", inquiry)
    assert (sent.message.direction, sent.message.payload, sent.message.command) == ("UBP", "Broker Alive", "anything")


def test_welcome_is_confirmed_with_the_same_fields_and_identifier():
    h = Harness()
    welcome = query("DBQ", "ktest", dispatcher="disp1", command="welcome")
    h.send(b"D1", welcome, expect=[(b"D1", welcome.reply(Text.CONFIRMED))])
    view = h.core.service("KTEST")
    assert list(view.dispatchers) == ["disp1"]
    assert view.dispatchers["disp1"].peer == b"D1" and not view.dispatchers["disp1"].ready


def test_ready_and_heartbeat_answers_get_no_reply():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    assert h.core.service("KTEST").dispatchers["disp1"].ready
    h.send(b"D1", d.command("heartbeat", payload="1764326400.25"), expect=[])


def test_unknown_dispatcher_command_gets_dbe_unknown_command():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    hello = d.command("hello")
    h.send(b"D1", hello, expect=[(b"D1", hello.error(Text.UNKNOWN_COMMAND))])


def test_dbe_from_a_dispatcher_is_discarded_and_counted():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    h.send(b"D1", query("DBE", "KTEST", dispatcher="disp1", command="x", payload="oops"), expect=[])
    assert h.core.stats.dropped_by_reason == {"dispatcher_error_discarded": 1}
    assert h.core.service("KTEST").dispatchers[d.name].peer == b"D1"


def test_welcome_needs_a_dispatcher_name():
    h = Harness()
    welcome = query("DBQ", "KTEST", command="welcome")
    [sent] = h.send(b"D1", welcome)
    assert sent.message.direction == "DBE"
    assert sent.message.payload == Text.MALFORMED_REQUEST.format(reason="frame 1 (dispatcher): welcome needs a dispatcher (it is blank)")
    assert h.core.service("KTEST") is None


# -- heartbeats and expiry ---------------------------------------------------------------

def test_ready_dispatcher_idle_for_t_gets_a_heartbeat_with_a_new_identifier():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "ktest", "disp1")
    assert h.core.next_deadline() == pytest.approx(h.now + 1.0)
    h.advance(0.9, expect=[])
    [beat] = h.advance(0.1, expect=[(b"D1", {"prefix": DELIMITER, "direction": "DBP", "service": "ktest",
                                              "dispatcher": "disp1", "keyword": None, "command": "heartbeat",
                                              "payload": Text.HEARTBEAT_BEAT})])
    [again] = h.advance(1.0, expect=[(b"D1", {"command": "heartbeat"})])
    assert len(beat.message.identifier) == 16 and again.message.identifier != beat.message.identifier


def test_heartbeats_start_only_after_ready():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1", ready=False)
    h.advance(1.0, expect=[])
    h.advance(1.0, expect=[])
    h.send(b"D1", d.command("ready"), expect=[])
    h.advance(1.0, expect=[(b"D1", {"command": "heartbeat"})])


def test_answered_heartbeats_keep_a_dispatcher_alive():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    for _ in range(20):
        [beat] = h.advance(1.0, expect=[(b"D1", {"command": "heartbeat"})])
        h.send(b"D1", d.beat_answer(beat), expect=[])
    assert h.core.stats.expired == 0 and h.core.stats.heartbeats == 20


def test_any_message_is_a_sign_of_life():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    for _ in range(10):
        h.advance(0.9, expect=[])
        h.send(b"D1", d.command("nonsense"))  # even an unknown command shows it is alive
    assert h.core.service("KTEST") is not None


def test_silent_dispatcher_is_beaten_four_times_then_expires_at_5t():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "KTEST", "disp1")
    for _ in range(4):
        h.advance(1.0, expect=[(b"D1", {"command": "heartbeat"})])
    assert h.core.next_deadline() == pytest.approx(h.now + 1.0)
    h.advance(0.99, expect=[])
    h.advance(0.01, expect=[])
    assert h.core.service("KTEST") is None and h.core.stats.expired == 1
    assert h.core.next_deadline() is None


def test_registered_but_never_ready_dispatcher_expires_too():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "KTEST", "disp1", ready=False)
    h.advance(5.0, expect=[])
    assert h.core.service("KTEST") is None


def test_expiry_answers_every_pending_request_dispatcher_timed_out():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "KTEST", "disp1")
    requests = [query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update") for _ in range(3)]
    for client, request in zip((b"C1", b"C2", b"C3"), requests):
        h.send(client, request, expect=[(b"D1", {"identifier": request.identifier})])
    sent = [s for s in (h.advance(1.0) + h.advance(1.0) + h.advance(1.0) + h.advance(1.0) + h.advance(1.0))
            if s.message.direction == "CDE"]
    assert [(s.to, s.message) for s in sent] == [
        (client, request.error(Text.DISPATCHER_TIMED_OUT, dispatcher="disp1"))
        for client, request in zip((b"C1", b"C2", b"C3"), requests)]
    assert h.core.stats.timed_out == 3


def test_heartbeat_off_means_no_beats_and_no_expiry():
    h = Harness(timeout=1.0, heartbeat=False)
    h.dispatcher(b"D1", "KTEST", "disp1")
    assert h.core.next_deadline() is None
    h.advance(1000.0, expect=[])
    assert list(h.core.service("KTEST").dispatchers) == ["disp1"]


def test_next_deadline_is_none_with_nothing_registered():
    assert BrokerCore(LOOKUP).next_deadline() is None


# -- client to broker --------------------------------------------------------------------

def test_lookup_answers_the_lookup_address_which_is_settable():
    h = Harness(lookup="tcp://localhost:6511")
    lookup = query("CBQ", command="lookup")
    h.send(b"C1", lookup, expect=[(b"C1", lookup.reply("tcp://localhost:6511"))])
    h.core.lookup_address = "tcp://127.0.0.1:40123"
    h.send(b"C1", lookup, expect=[(b"C1", lookup.reply("tcp://127.0.0.1:40123"))])


def test_locate_answers_yes_for_a_service_with_a_dispatcher_in_any_case():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    locate = query("CBQ", "ktest", command="locate")
    h.send(b"C1", locate, expect=[(b"C1", locate.reply(Text.LOCATE_YES))])


def test_locate_answers_no_and_creates_no_service():
    h = Harness()
    locate = query("CBQ", "NOSUCH", command="locate")
    h.send(b"C1", locate, expect=[(b"C1", locate.reply(Text.LOCATE_NO))])
    assert h.core.service("NOSUCH") is None and len(h.core.services) == 0


def test_unknown_client_broker_command_gets_cbe_unknown_command():
    h = Harness()
    frob = query("CBQ", "KTEST", command="frobnicate")
    h.send(b"C1", frob, expect=[(b"C1", frob.error(Text.UNKNOWN_COMMAND))])


def test_services_view_is_read_only_and_never_creates():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    assert "ktest" in h.core.services and "OTHER" not in h.core.services
    assert list(h.core.services) == ["KTEST"] and h.core.services["ktest"].name == "KTEST"
    with pytest.raises(KeyError):
        h.core.services["OTHER"]
    with pytest.raises(TypeError):
        h.core.service("KTEST").dispatchers["x"] = None  # type: ignore[index]
    assert len(h.core.services) == 1
