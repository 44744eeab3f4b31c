"""The envelope codec: golden fixtures, round trips, bad input, reply derivation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauldron_proto import (
    BLANK,
    ERROR_DIRECTION,
    FAIL,
    FAIL_FRAME,
    MESSAGE_KINDS,
    REPLY_DIRECTION,
    Direction,
    LocalProtocolError,
    Message,
    RemoteProtocolError,
    check_kind,
    classify,
    decode,
    encode,
    error_reply,
    reply,
)

from .conftest import golden

VALID = golden("valid.json")
INVALID = golden("invalid.json")
RECORDED = golden("recorded.json")


def _decoded_value(value):
    return FAIL if value == {"sentinel": "fail"} else value


def _decodes_to_its_fields_and_back(case):
    """The case's frames decode to its fields and encode back to the same frames."""
    frames = [bytes.fromhex(f) for f in case["frames"]]
    msg = decode(frames)
    want = case["decoded"]
    assert [p.hex() for p in msg.prefix] == want["prefix"]
    for name in ("service", "dispatcher", "keyword", "command", "payload"):
        assert getattr(msg, name) == _decoded_value(want[name]), name
    assert msg.direction == want["direction"]
    assert msg.identifier.hex() == want["identifier"]
    assert encode(msg) == frames
    return msg


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_golden_valid_decodes_to_its_fields(case):
    msg = _decodes_to_its_fields_and_back(case)
    assert classify(msg).name == case["kind"]
    check_kind(msg)


# Cases whose wire form differs from what Message.new builds (sentinel bytes a reader strips).
PLAIN = [c for c in VALID if c["as_built"]]


@pytest.mark.parametrize("case", PLAIN, ids=[c["name"] for c in PLAIN])
def test_golden_valid_is_what_new_builds(case):
    want = case["decoded"]
    built = Message.new(
        want["direction"], service=want["service"], dispatcher=want["dispatcher"],
        keyword=want["keyword"], command=want["command"], payload=_decoded_value(want["payload"]),
        identifier=bytes.fromhex(want["identifier"]), prefix=[bytes.fromhex(p) for p in want["prefix"]],
    )
    assert [f.hex() for f in encode(built)] == case["frames"]


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_golden_invalid_is_refused_naming_frame_and_rule(case):
    with pytest.raises(RemoteProtocolError) as info:
        decode([bytes.fromhex(f) for f in case["frames"]])
    assert info.value.rule == case["rule"]
    assert info.value.frame == case["frame"]
    where = "message" if case["frame"] is None else f"({case['frame']})"
    assert where in str(info.value)


@pytest.mark.parametrize("case", RECORDED, ids=[c["source"] for c in RECORDED])
def test_every_message_of_the_existing_implementation_decodes_and_encodes_back(case):
    """Frames recorded from the existing client, dispatcher and broker: the ground truth."""
    _decodes_to_its_fields_and_back(case)


def test_the_recordings_hold_what_the_spec_says_of_them():
    """Empty payloads in reads and units requests, lower-case services, blank for no value."""
    reads = [c for c in RECORDED if c["decoded"]["direction"] == "CDQ" and c["decoded"]["command"] in ("update", "units")]
    assert reads and all(c["decoded"]["payload"] == "" for c in reads)
    assert any(c["decoded"]["payload"] is None and c["decoded"]["direction"] == "CDP" for c in RECORDED)
    assert {c["decoded"]["service"] for c in RECORDED if c["decoded"]["direction"] == "CDB"} == {"testsvc"}


def test_every_message_kind_has_a_golden_case():
    assert set(MESSAGE_KINDS) <= {c["kind"] for c in VALID}


def test_error_texts_name_frame_and_reason():
    with pytest.raises(RemoteProtocolError, match=r"^message: expected at least 7 frames, got 3$"):
        decode([b"a", b"b", b"c"])
    with pytest.raises(RemoteProtocolError, match=r"frame 3 \(direction\): b'XBQ' is not a direction code"):
        decode([b"S", b"D", b"K", b"XBQ", b"c", b"p", b"i"])
    with pytest.raises(RemoteProtocolError, match=r"frame 5 \(payload\): invalid UTF-8"):
        decode([b"S", b"D", b"K", b"CDP", b"c", b"\xff\xfe", b"i"])
    with pytest.raises(RemoteProtocolError, match=r"frame 3 \(direction\): b'' is not a direction code"):
        decode([b"S", b"", b"K", b"", b"c", b"p", b"i"])


def test_remote_protocol_error_is_a_value_error():
    with pytest.raises(ValueError):
        decode([])


def test_prefix_is_everything_before_the_last_seven_frames():
    env = [b"KTEST", b"disp1", b"VALUE", b"CDQ", b"update", BLANK, b"id"]
    msg = decode([b"d", b"", b"c", b"", *env])
    assert msg.prefix == (b"d", b"", b"c", b"")
    assert msg.sender == b"d" and msg.client == b"c"
    assert decode(env).prefix == () and decode(env).sender is None


def test_sentinels_read_as_none_and_fail_and_back():
    msg = decode([BLANK, BLANK, BLANK, b"CSP", b"identify", FAIL_FRAME, b"id"])
    assert (msg.service, msg.dispatcher, msg.keyword) == (None, None, None)
    assert msg.payload is FAIL and repr(FAIL) == "FAIL"
    assert encode(msg)[5] == FAIL_FRAME
    assert not msg.is_usable
    assert Message.new("CSP", service="S", payload=FAIL).frames[5] == FAIL_FRAME


def test_leading_sentinel_on_a_longer_field_is_stripped():
    msg = decode([b"\x01KTEST", b"\x02disp", b"VALUE", b"CDP", b"update", b"\x0142", b"id"])
    assert (msg.service, msg.dispatcher, msg.payload) == ("KTEST", "disp", "42")


def test_empty_text_is_an_empty_frame_distinct_from_blank():
    """What the existing client sends for every read, and a dispatcher for an empty value."""
    built = Message.new("CDP", service="S", dispatcher="d", payload="")
    assert built.frames[5] == b"" and built.payload == ""
    read = decode([b"c1", b"", b"testsvc", BLANK, b"STRING", b"CDQ", b"update", b"", b"id"])
    assert read.payload == "" and read.payload is not None
    assert Message.new("CDP", service="S", dispatcher="d", payload=None).frames[5] == BLANK
    empty = decode([b""] * 3 + [b"CDQ"] + [b""] * 3)
    assert (empty.service, empty.dispatcher, empty.keyword, empty.command, empty.identifier) == ("", "", "", "", b"")
    assert empty.service_key == "" and empty.keyword_key == "" and empty.is_usable


@pytest.mark.parametrize("frame, value", [
    (b"\x01\x01", None), (b"\x01\x02", FAIL), (b"\x02\x02", FAIL), (b"\x01\x02A", "A"),
    (b"\x0141", "41"), (b"\x02A", "A"), (b"\x01\x01A", "\x01A"), (b"\x02\x02A", "\x02A"),
    (b"\x02\x01", None), (b"\x01", None), (b"\x02", FAIL), (b"", ""),
])
def test_payload_is_read_by_the_existing_decoders_rule(frame, value):
    """Strip one leading 01 from a field longer than one byte, then one leading 02 likewise."""
    msg = decode([b"S", b"d", b"K", b"CDP", b"update", frame, b"id"])
    assert msg.payload == value if value is not FAIL else msg.payload is FAIL
    assert msg.is_usable == (value not in (None, FAIL))


def test_text_starting_with_a_sentinel_byte_goes_behind_that_byte():
    for text in ("\x01A", "\x02A", "\x01\x02", "\x02\x01"):
        frame = Message.new("CDP", service="S", payload=text).frames[5]
        assert frame == text[0].encode() + text.encode() and decode([b"S", b"d", b"K", b"CDP", b"c", frame, b""]).payload == text
    for text in ("\x01", "\x02"):
        with pytest.raises(LocalProtocolError, match="reads as a sentinel"):
            Message.new("CDP", service="S", payload=text)


def test_reply_and_error_derivation_follow_the_spec():
    for code in Direction:
        msg = Message.new(code, service="KTEST", dispatcher="d", keyword="K", command="c", payload="x")
        answer = reply(msg, "y")
        assert answer.direction == REPLY_DIRECTION[code] == code.reply
        assert answer.payload == "y"
        assert answer.frames[:3] == msg.frames[:3] and answer.identifier == msg.identifier
        assert error_reply(msg, "e").direction == ERROR_DIRECTION[code] == code.error
    assert Direction.DBP.reply == Direction.DBQ  # how a dispatcher answers a heartbeat
    assert Direction.CDQ.reply == "CDP" and Direction.CDB.reply == "CDP" and Direction.CDQ.error == "CDE"


def test_reply_can_name_the_answering_dispatcher():
    msg = Message.new("CSQ", service="KTEST", keyword="K", command="identify")
    answer = msg.reply("integer", dispatcher="disp1")
    assert answer.dispatcher == "disp1" and answer.direction == "CSP"


def test_usable_and_error_flags():
    assert Message.new("CDP", service="S", payload="1").is_usable
    assert not Message.new("CDE", service="S", payload="1").is_usable
    assert not Message.new("SDP", service="S", payload=None).is_usable
    assert Message.new("SDE", service="S").is_error


def test_new_refuses_what_breaks_the_protocol():
    with pytest.raises(LocalProtocolError, match="direction"):
        Message.new("XYZ", service="S")
    with pytest.raises(LocalProtocolError, match="needs a service"):
        Message.new("CDQ", keyword="K")
    with pytest.raises(LocalProtocolError, match="fail sentinel"):
        Message.new("CDQ", service="S", keyword=FAIL)
    with pytest.raises(LocalProtocolError, match="expected text"):
        Message.new("CDQ", service="S", payload=42)
    with pytest.raises(LocalProtocolError, match="unknown message fields"):
        Message.new("CDQ", service="S").replace(colour="red")


def test_new_makes_a_fresh_16_byte_identifier():
    a, b = Message.new("UBQ", command="check"), Message.new("UBQ", command="check")
    assert len(a.identifier) == 16 and a.identifier != b.identifier


def test_replace_keeps_other_fields():
    msg = Message.new("CDQ", service="KTEST", dispatcher="d", keyword="K", command="update", prefix=[b"p", b""])
    changed = msg.replace(payload="7", direction="CDP")
    assert (changed.service, changed.keyword, changed.payload, changed.direction) == ("KTEST", "K", "7", "CDP")
    assert changed.prefix == msg.prefix and changed.identifier == msg.identifier


def test_check_kind_names_a_missing_required_field():
    msg = Message.new("DBQ", service="KTEST", command="welcome")
    with pytest.raises(RemoteProtocolError, match=r"frame 1 \(dispatcher\): welcome needs a dispatcher") as info:
        check_kind(msg)
    assert info.value.rule == "field_required"
    beat = Message.new("DBP", service="S", dispatcher="d", keyword="K", command="heartbeat")
    with pytest.raises(RemoteProtocolError, match="must have a blank keyword"):
        check_kind(beat)


def test_classify_prefers_the_exact_command():
    assert classify(Message.new("DBQ", service="S", dispatcher="d", command="ready")).name == "ready"
    assert classify(Message.new("UBQ", command="anything")).name == "inquiry"
    assert classify(Message.new("CBQ", service="S", command="frobnicate")) is None


def test_fields_text_is_pipe_joined():
    msg = Message.new("CDQ", service="S", command="update")
    assert msg.fields_text() == "S|\x01|\x01|CDQ|update|\x01"


def test_messages_are_frozen_and_hashable():
    msg = Message.new("CDQ", service="S", identifier=b"x")
    with pytest.raises(AttributeError):
        msg.direction = Direction.CDP  # type: ignore[misc]
    assert msg == Message.new("CDQ", service="S", identifier=b"x")
    assert hash(msg) == hash(Message.new("CDQ", service="S", identifier=b"x"))


# --- property tests -----------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20).filter(
    lambda s: s not in ("\x01", "\x02")
)
_optional = st.none() | _text


@st.composite
def _messages(draw):
    kind = draw(st.sampled_from(sorted(MESSAGE_KINDS.values(), key=lambda k: k.name)))
    fields = {}
    for name in ("service", "dispatcher", "keyword"):
        rule = getattr(kind, name)
        fields[name] = draw(_text if rule == "required" else st.none() if rule == "blank" else _optional)
    if fields["service"] is None:
        fields["dispatcher"] = fields["keyword"] = None
    payload = draw(st.none() | _text | st.just(FAIL))
    prefix = draw(st.lists(st.binary(max_size=8), max_size=4))
    return Message.new(
        kind.direction, command=kind.command or draw(_text), payload=payload,
        identifier=draw(st.binary(max_size=20)), prefix=prefix, **fields,
    )


@settings(max_examples=300, deadline=None)
@given(_messages())
def test_round_trip_every_message_kind(msg):
    again = decode(encode(msg))
    assert again == msg
    for name in ("service", "dispatcher", "keyword", "command", "payload", "identifier"):
        assert getattr(again, name) == getattr(msg, name)
    assert classify(again) is not None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=12))
def test_decode_of_random_frames_raises_only_remote_protocol_error(frames):
    try:
        msg = decode(frames)
    except RemoteProtocolError as exc:
        assert exc.rule and exc.reason
    else:
        assert encode(msg) == frames
        for name in ("service", "dispatcher", "keyword", "command", "payload"):
            getattr(msg, name)
