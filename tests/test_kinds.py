"""The message kinds (cauldron_proto.kinds): built from the spec's kinds as data."""

from __future__ import annotations

import inspect

import pytest

from cauldron_proto import MESSAGE_KINDS, Direction, check_kind, classify, decode, encode, kinds


def _fields(kind):
    return {f: "x" for f in ("service", "dispatcher", "keyword") if getattr(kind, f) == "required"}


def _built(name):
    """A message of kind ``name`` (answers made from what they answer)."""
    kind = MESSAGE_KINDS[name]
    if kinds.ANSWERS[name]:
        request = _built(kinds.ANSWERS[name][0])
        named = {"dispatcher": "disp1"} if kind.dispatcher == "required" else {}
        if kind.payload_text or kind.payload == "blank":
            return kinds.answer(name, request, **named)
        return kinds.answer(name, request, _value(kind.payload), **named)
    command = "check" if kind.command is None else None
    payload = None if kind.payload_text or kind.payload == "blank" else _value(kind.payload)
    return kinds.build(name, command, payload, **_fields(kind))


def _value(payload_type):
    return {"time": 1796148549.1, "address": "tcp://127.0.0.1:6511", "yesno": True, "fail_or_text": "a:b",
            "ktl_type": "integer", "list": ["A", "B"], "units": {"0": "Off"}, "empty": "", "status": {"services": {}}}.get(payload_type, "42")


@pytest.mark.parametrize("name", list(MESSAGE_KINDS))
def test_each_kind_builds_a_message_of_its_kind_and_is_kind_says_so(name):
    message = _built(name)
    assert classify(message).name == name and check_kind(message).name == name
    assert kinds.is_kind(name, message)
    assert decode(encode(message)) == message
    others = [n for n in MESSAGE_KINDS if n != name and kinds.is_kind(n, message)]
    assert all(MESSAGE_KINDS[n].command is None for n in others), others  # only catch-all kinds overlap


def test_answers_keep_the_request_and_refuse_other_messages():
    beat = kinds.heartbeat("KTEST", "disp1", prefix=(b"",))
    answer = kinds.heartbeat_answer(beat, 1796148549.123, dispatcher="disp1")
    assert (answer.direction, answer.payload, answer.identifier, answer.prefix) == (
        Direction.DBQ, "1796148549.1", beat.identifier, (b"",))
    assert kinds.confirmed(kinds.welcome("ktest", "disp1")).payload == "confirmed"
    error = kinds.client_service_error(kinds.client_service_query("ktest", "identify", "V", keyword="V"))
    assert error.payload == "No dispatchers for 'ktest'"
    with pytest.raises(ValueError, match="confirmed answers welcome, not DBP heartbeat"):
        kinds.confirmed(beat)


def test_a_kind_is_made_the_one_way_it_can_be_with_its_required_fields():
    with pytest.raises(TypeError, match="confirmed answers welcome: made with answer"):
        kinds.build("confirmed")
    with pytest.raises(TypeError, match="welcome answers no kind: made with build"):
        kinds.answer("welcome", kinds.welcome("ktest", "disp1"))
    with pytest.raises(TypeError, match="welcome needs dispatcher"):
        kinds.build("welcome", service="ktest")
    with pytest.raises(TypeError, match="heartbeat has no keyword"):
        kinds.build("heartbeat", service="ktest", dispatcher="disp1", keyword="VALUE")
    with pytest.raises(TypeError, match="inquiry needs a command"):
        kinds.build("inquiry")
    query = kinds.client_dispatcher_query("ktest", "update", "", keyword="VALUE")
    with pytest.raises(TypeError, match="names the answering dispatcher"):
        kinds.answer("client_dispatcher_reply", query, "42")
    assert kinds.client_dispatcher_reply(query, "42", dispatcher="disp1").dispatcher == "disp1"


def test_the_named_builders_are_the_generic_ones():
    """Each named builder gives what build/answer give for its kind, and its predicate is is_kind."""
    beat = kinds.heartbeat("KTEST", "disp1", identifier=b"1" * 16)
    assert beat == kinds.build("heartbeat", service="KTEST", dispatcher="disp1", identifier=b"1" * 16)
    assert kinds.broadcast("ktest", "d1", "VALUE", "7", identifier=b"2" * 16) == kinds.build(
        "broadcast", payload="7", service="ktest", dispatcher="d1", keyword="VALUE", identifier=b"2" * 16)
    assert kinds.heartbeat_answer(beat, 5.0) == kinds.answer("heartbeat_answer", beat, 5.0)
    for name in ("welcome", "heartbeat", "heartbeat_answer", "broadcast"):
        predicate = getattr(kinds, f"is_{name}")
        assert [n for n in MESSAGE_KINDS if predicate(_built(n))] == [n for n in MESSAGE_KINDS
                                                                       if kinds.is_kind(name, _built(n))]
    assert all(inspect.getdoc(getattr(kinds, name)) for name in kinds.__all__ if callable(getattr(kinds, name))
               and not name.startswith("is_"))
