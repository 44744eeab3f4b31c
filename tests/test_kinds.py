"""The generated per-kind builders and predicates (cauldron_proto.kinds)."""

from __future__ import annotations

import pytest

from cauldron_proto import MESSAGE_KINDS, Direction, check_kind, classify, decode, encode, kinds


def _fields(kind):
    return {f: "x" for f in ("service", "dispatcher", "keyword") if getattr(kind, f) == "required"}


def _built(name):
    """A message of kind ``name`` from its builder (answers built from what they answer)."""
    kind = MESSAGE_KINDS[name]
    requests = [n for n, k in MESSAGE_KINDS.items() if name in (k.replies or ()) + (k.errors or ())]
    builder = getattr(kinds, name)
    if requests:
        request = _built(requests[0])
        named = {"dispatcher": "disp1"} if kind.dispatcher == "required" else {}
        if kind.payload_text or kind.payload == "blank":
            return builder(request, **named)
        return builder(request, _value(kind.payload), **named)
    args = [v for f, v in _fields(kind).items()]
    if kind.command is None:
        args.append("check")
    if not kind.payload_text and kind.payload != "blank":
        args.append(_value(kind.payload))
    return builder(*args)


def _value(payload_type):
    return {"time": 1796148549.1, "address": "tcp://127.0.0.1:6511", "yesno": True, "fail_or_text": "a:b",
            "ktl_type": "integer", "list": ["A", "B"], "units": {"0": "Off"}, "empty": ""}.get(payload_type, "42")


@pytest.mark.parametrize("name", list(MESSAGE_KINDS))
def test_each_builder_gives_a_message_of_its_kind_and_its_predicate_says_so(name):
    message = _built(name)
    assert classify(message).name == name and check_kind(message).name == name
    assert getattr(kinds, f"is_{name}")(message)
    assert decode(encode(message)) == message
    others = [n for n in MESSAGE_KINDS if n != name and getattr(kinds, f"is_{n}")(message)]
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
