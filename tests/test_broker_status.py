"""The broker's status query (CBQ status) in the routing core: what it answers, with real frames."""

from __future__ import annotations

import json

import pytest

from cauldron_proto import Text
from cauldron_proto.broker.core.latency import BOUNDS
from cauldron_proto.protocol.payloads import decode_status

from .core_harness import Harness, query


def asked(h: Harness, service: str | None = None) -> dict:
    request = query("CBQ", service, command="status")
    [sent] = h.send(b"OPERATOR", request)
    reply = sent.message
    assert (sent.to, reply.direction, reply.command, reply.identifier) == (b"OPERATOR", "CBP", "status",
                                                                           request.identifier)
    return decode_status(reply.payload)


def test_status_shows_services_dispatchers_and_counters_without_routing_ids():
    h = Harness(timeout=2.0)
    h.core.about = lambda: {"version": "9.9", "uptime": 12.5, "addresses": {"broker": "tcp://127.0.0.1:1"},
                            "curve": False, "relay": {"relayed": 3}}
    d = h.dispatcher(b"\x00\x11\x22\x33\x44", "KTEST", "disp1")
    h.dispatcher(b"\x00\x55\x66\x77\x88", "KTEST", "disp2", ready=False)
    client = b"\x00\xaa\xbb\xcc\xdd"
    request = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [forwarded] = h.send(client, request)
    h.now += 0.003
    h.send(b"\x00\x11\x22\x33\x44", d.answer(forwarded, "42"))
    h.send(client, query("CDQ", "KTEST", dispatcher="disp1", keyword="OTHER", command="update"))  # in flight
    h.now += 1.5
    status = asked(h)

    broker = status["broker"]
    assert (broker["version"], broker["uptime"], broker["timeout"], broker["curve"]) == ("9.9", 12.5, 2.0, False)
    assert broker["limits"] == h.core.limits.as_dict() and broker["addresses"] == {"broker": "tcp://127.0.0.1:1"}
    assert status["relay"] == {"relayed": 3} and status["connections"] == {"dispatchers": 2}
    ktest = status["services"]["KTEST"]
    assert ktest["dispatchers"] == {
        "disp1": {"state": "ready", "last_heard": 1.5, "key": None, "keywords": 1, "in_flight": 1},
        "disp2": {"state": "registered", "last_heard": 1.503, "key": None, "keywords": 0, "in_flight": 0}}
    latency = ktest["latency"]
    assert latency["le"] == list(BOUNDS) and latency["count"] == 1 and latency["sum"] == pytest.approx(0.003)
    assert latency["counts"][BOUNDS.index(0.005)] == 1
    counters = status["counters"]
    assert counters["received"] == 7 and counters["registered"] == 2
    text = json.dumps(status)
    for rid in (b"\x00\x11\x22\x33\x44", b"\x00\xaa\xbb\xcc\xdd"):  # never a routing id, in any form
        assert rid.hex() not in text and repr(rid)[2:-1] not in text


def test_status_of_one_service_and_of_an_unknown_one():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    h.dispatcher(b"D2", "KOTHER", "other1")
    assert list(asked(h, "ktest")["services"]) == ["KTEST"]
    assert asked(h, "KNONE")["services"] == {} and "KNONE" not in h.core.services  # nothing created
    assert asked(h)["broker"]["version"] is None  # nothing known of the I/O layer


def test_error_replies_are_counted_by_the_spec_name_of_their_text():
    from cauldron_proto.protocol import TEXTS
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "KTEST", "disp1")
    h.send(b"C1", query("CDQ", "KTEST", dispatcher="nobody", keyword="X", command="update"))
    h.send(b"C1", query("CDQ", "KTEST", keyword="UNKNOWN", command="update"))
    h.send(b"C1", query("CSQ", "KNONE", command="enumerate"))
    h.send(b"C1", query("CBQ", command="frobnicate"))
    h.send(b"C1", query("CDQ", "KTEST", dispatcher="disp1", keyword="X", command="update"))  # never answered
    h.now += 6.0
    h.core.tick(h.now)
    errors = asked(h)["counters"]["errors"]
    assert errors == {"dispatcher_not_available": 1, "no_dispatcher_for_keyword": 1, "no_dispatchers_for_service": 1,
                      "unknown_command": 1, "dispatcher_timed_out": 1}
    assert set(errors) <= set(TEXTS)


def test_a_status_query_naming_a_dispatcher_is_malformed():
    h = Harness()
    request = query("CBQ", "KTEST", dispatcher="disp1", command="status")
    [sent] = h.send(b"OPERATOR", request)
    assert sent.message.direction == "CBE" and sent.message.payload.startswith("Malformed message:")
    bogus = query("CBQ", command="statuz")
    h.send(b"OPERATOR", bogus, expect=[(b"OPERATOR", bogus.error(Text.UNKNOWN_COMMAND))])
