"""The key rules of the routing core under CURVE, with no sockets: a name belongs to the key
that registered it; a policy says which keys may serve which services (broker/core/keys.py)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauldron_proto.security.policy import ServePolicy

from .core_harness import DELIMITER, Harness, Text, query
from .test_broker_core_properties import STEP

OWNED = Text.DISPATCHER_OWNED_BY_ANOTHER_KEY.format(dispatcher="d1", service="SECURE")


def welcome(h: Harness, peer: bytes, key: str | None, service: str = "SECURE", name: str = "d1"):
    return h.send(peer, query("DBQ", service, dispatcher=name, command="welcome"), key=key)


def read(h: Harness, client: bytes, key: str | None = "alice", name: str = "d1"):
    return h.send(client, query("CDQ", "SECURE", dispatcher=name, keyword="VALUE", command="update"), key=key)


def refused(sent, peer: bytes, text: str) -> bool:
    return len(sent) == 1 and sent[0].to == peer and sent[0].message.direction == "DBE" \
        and sent[0].message.payload == text


def test_a_welcome_from_another_key_is_refused_and_the_name_stays(caplog):
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    with caplog.at_level(logging.WARNING, logger="cauldron_proto.routing"):
        assert refused(welcome(h, b"M", "mallory"), b"M", OWNED)
    assert "'mallory'" in caplog.text and "'disp'" in caplog.text
    forwarded = read(h, b"C")
    assert [s.to for s in forwarded] == [b"D1"]
    h.send(b"D1", d.answer(forwarded[0], "real"), key="disp",
           expect=[(b"C", {"direction": "CDP", "payload": "real"})])
    assert h.core.stats.registrations_refused == 1 and h.core.stats.replaced == 0
    h.books_are_consistent()


def test_the_refusal_is_answered_at_most_once_per_period_per_socket():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    assert refused(welcome(h, b"M", "mallory"), b"M", OWNED)
    assert welcome(h, b"M", "mallory") == []  # refused again, not answered: no ping-pong
    assert refused(welcome(h, b"M2", "mallory"), b"M2", OWNED)  # another socket
    h.advance(1.0)
    assert refused(welcome(h, b"M", "mallory"), b"M", OWNED)
    assert h.core.stats.registrations_refused == 4
    assert h.core.stats.dropped_by_reason["registration_refused_told_already"] == 1


def test_the_same_key_takes_its_name_back_once_the_old_connection_is_closed():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    in_flight = read(h, b"C")
    assert [s.to for s in in_flight] == [b"D1"]
    [beat] = welcome(h, b"D2", "disp")  # the dispatcher restarted: a new socket, the same key
    assert (beat.to, beat.message.command) == (b"D1", "heartbeat")  # the holder is checked first
    sent = h.unsent(beat, gone=True)  # its connection is closed: the name goes at once
    assert [(s.to, s.message.direction, s.message.payload) for s in sent] == [
        (b"C", "CDE", Text.DISPATCHER_REPLACED.format(dispatcher="d1")), (b"D2", "DBP", Text.CONFIRMED)]
    assert [s.to for s in read(h, b"C")] == [b"D2"]


def test_a_free_name_is_anyones_without_a_policy_but_only_allowed_keys_with_one():
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    h.advance(5.0)  # expired: the name is free
    assert h.core.service("SECURE") is None
    h.dispatcher(b"M", "SECURE", "d1", key="mallory")  # today's behaviour, documented
    assert h.core.service("SECURE").dispatchers["d1"].peer == b"M"

    h = Harness(timeout=1.0)
    h.core.policy = ServePolicy({"disp": ["SECURE*"]})
    h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    h.advance(5.0)
    text = Text.KEY_MAY_NOT_SERVE.format(key="mallory", service="SECURE")
    assert refused(welcome(h, b"M", "mallory"), b"M", text)
    assert h.core.service("SECURE") is None


def test_a_policy_decides_who_serves_what_and_clients_are_still_served():
    h = Harness(timeout=1.0)
    h.core.policy = ServePolicy({"disp": ["SECURE*"]})
    d = h.dispatcher(b"D1", "secure", "d1", key="disp")  # services match in any case
    h.dispatcher(b"D2", "SECURE_AUX", "aux", key="disp")
    assert refused(welcome(h, b"D3", "disp", service="OTHER", name="o1"), b"D3",
                   Text.KEY_MAY_NOT_SERVE.format(key="disp", service="OTHER"))
    assert refused(welcome(h, b"A", "alice", name="a1"), b"A",
                   Text.KEY_MAY_NOT_SERVE.format(key="alice", service="SECURE"))
    forwarded = read(h, b"A")  # alice, a client only, reads through the same socket
    h.send(b"D1", d.answer(forwarded[0], "real"), key="disp",
           expect=[(b"A", {"direction": "CDP", "payload": "real"})])
    locate = query("CBQ", "SECURE", command="locate")
    h.send(b"A", locate, key="alice", expect=[(b"A", {"direction": "CBP", "payload": Text.LOCATE_YES})])
    assert set(h.core.services) == {"SECURE", "SECURE_AUX"}
    assert h.core.stats.registrations_refused == 2


def test_a_readmission_is_a_registration():
    h = Harness(timeout=1.0)
    h.core.policy = ServePolicy({"disp": ["SECURE"]})
    h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    h.advance(5.0)
    beat_answer = query("DBQ", "SECURE", dispatcher="d1", command="heartbeat", payload="1.0")
    sent = h.send(b"M", beat_answer, key="mallory")
    assert refused(sent, b"M", Text.KEY_MAY_NOT_SERVE.format(key="mallory", service="SECURE"))
    assert h.core.service("SECURE") is None and h.core.stats.readmitted == 0
    h.send(b"D1", beat_answer, key="disp", expect=[])  # the real one, resumed: readmitted
    assert h.core.service("SECURE").dispatchers["d1"].peer == b"D1" and h.core.stats.readmitted == 1


def test_a_routing_id_reused_by_another_key_retires_the_old_record():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "SECURE", "d1", key="disp")
    forwarded = read(h, b"C")
    # the routing id D1 now belongs to a connection authenticated as mallory
    sent = h.send(b"D1", d.answer(forwarded[0], "HIJACKED"), key="mallory")
    assert [(s.to, s.message.direction, s.message.payload) for s in sent] == [
        (b"C", "CDE", Text.DISPATCHER_TIMED_OUT)]
    assert h.core.service("SECURE") is None
    assert h.core.stats.dropped_by_reason["reply_from_unregistered_peer"] == 1
    h.books_are_consistent()


@pytest.mark.parametrize("policy", [None, ServePolicy({"disp": ["SECURE"]})])
def test_without_curve_no_key_rule_applies(policy):
    h = Harness(timeout=1.0)
    h.core.policy = policy
    h.dispatcher(b"D1", "SECURE", "d1")
    welcome(h, b"M", None)  # the holder is checked (a heartbeat); it stays silent for T
    sent = h.advance(1.0)
    assert [(s.to, s.message.payload) for s in sent] == [(b"M", Text.CONFIRMED)]
    assert h.core.stats.replaced == 1 and h.core.stats.registrations_refused == 0
    assert sent[0].message.prefix == DELIMITER


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(STEP, st.sampled_from(["disp", "mallory", "alice"])), max_size=40), st.booleans())
def test_random_traffic_under_curve_never_breaks_the_key_rules(steps, with_policy):
    """Random frames from random peers, each under a random key (so routing ids change keys
    too): the core never fails, and every registration obeys the key rules."""
    h = Harness(timeout=1.0, fanout_timeout=4.0)
    policy = ServePolicy({"disp": ["KTEST"], "mallory": ["OTHER"]}) if with_policy else None
    h.core.policy = policy
    owners: dict[tuple[str, str], tuple[str, bytes]] = {}  # (service, name) -> (key, routing id)
    for (kind, a, b), key in steps:
        if kind == "frames":
            for name, (owner, peer) in list(owners.items()):
                if peer == a and owner != key:
                    del owners[name]  # its routing id now speaks for another key: that connection is gone
            h.send(a, b, key=key)
        elif kind == "advance":
            h.advance(a or 0.0)
        h.books_are_consistent()
        assert "internal_error" not in h.core.stats.dropped_by_reason
        registered = {(r.service, r.name): r for r in h.core.registry.records()}
        for gone in set(owners) - set(registered):
            del owners[gone]  # free again: the next registration decides
        for name, record in registered.items():
            assert record.key is not None
            assert policy is None or policy.allows(record.key, record.service), record
            held, _ = owners.setdefault(name, (record.key, record.peer))
            assert held == record.key, f"{record} taken over from key {held!r}"
            owners[name] = (record.key, record.peer)
