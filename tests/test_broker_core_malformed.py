"""Routing core: bad input never kills it; requests that can be answered get an error reply."""

from __future__ import annotations

import logging

import pytest

from cauldron_proto import BLANK, FAIL, FAIL_FRAME, Direction, Text, decode, encode, salvage
from cauldron_proto.broker.core.stats import DropLog, Stats

from .core_harness import Harness, query

ENVELOPE = [b"KTEST", b"disp1", b"VALUE", b"CDQ", b"update", b"1", b"ident-0001"]


def malformed(reason: str) -> str:
    return Text.MALFORMED_REQUEST.format(reason=reason)


@pytest.mark.parametrize("count", range(0, 7))
def test_fewer_than_seven_frames_are_dropped_and_counted(count):
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    h.send(b"X1", ENVELOPE[:count], expect=[])
    h.send(b"D1", ENVELOPE[-count:] if count else [], expect=[])
    assert h.core.stats.dropped_by_reason == {"too_few_frames": 2}


@pytest.mark.parametrize("extra", [1, 2, 5])
def test_many_prefix_frames_on_a_routed_request_get_an_error_reply(extra):
    h = Harness()
    frames = [b"x"] * extra + [b""] + ENVELOPE
    [sent] = h.send(b"C1", frames)
    assert sent.message.direction == "CDE"
    assert sent.message.payload == malformed(
        f"expected one empty delimiter frame before the envelope, got {extra + 1} prefix frames")
    assert sent.message.prefix == tuple(frames[:-7]) and sent.message.identifier == b"ident-0001"


def test_missing_delimiter_gets_the_error_without_a_delimiter():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    [sent] = h.send(b"C1", ENVELOPE)
    assert sent.message.prefix == ()
    assert sent.message.payload == malformed("expected one empty delimiter frame before the envelope, got 0 prefix frames")
    welcome = query("DBQ", "KTEST", dispatcher="disp2", command="welcome").with_prefix()
    [sent] = h.send(b"D2", welcome)
    assert sent.message.direction == "DBE" and h.core.service("KTEST").dispatchers.keys() == {"disp1"}


def test_inquiry_and_client_broker_queries_are_answered_along_any_prefix():
    h = Harness()
    inquiry = query("UBQ", command="check").with_prefix(b"hop", b"")
    h.send(b"Q1", inquiry, expect=[(b"Q1", inquiry.reply(Text.BROKER_ALIVE))])
    lookup = query("CBQ", command="lookup").with_prefix()
    h.send(b"Q1", lookup, expect=[(b"Q1", {"prefix": (), "direction": "CBP"})])


@pytest.mark.parametrize("index,name", [(0, "service"), (1, "dispatcher"), (2, "keyword"), (4, "command"), (5, "payload")])
def test_invalid_utf8_in_a_query_gets_an_error_reply_naming_the_frame(index, name):
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    frames = list(ENVELOPE)
    frames[index] = b"\xff\xfeX"
    [sent] = h.send(b"C1", [b""] + frames)
    message = sent.message
    assert (sent.to, message.direction, message.identifier) == (b"C1", "CDE", b"ident-0001")
    assert message.payload.startswith(malformed(f"frame {index} ({name}): invalid UTF-8: "))
    if name != "payload":
        assert getattr(message, name) is None  # the bad frame reads as blank in the answer


def test_invalid_utf8_payload_in_a_welcome_gets_dbe():
    h = Harness()
    frames = encode(query("DBQ", "KTEST", dispatcher="disp1", command="welcome"))
    frames[-2] = b"\xc3"
    [sent] = h.send(b"D1", frames)
    assert sent.message.direction == "DBE" and sent.message.payload.startswith(malformed("frame 5 (payload)"))
    assert h.core.service("KTEST") is None


def test_invalid_direction_is_dropped():
    h = Harness()
    frames = [b""] + ENVELOPE
    frames[4] = b"XYZ"
    h.send(b"C1", frames, expect=[])
    assert h.core.stats.dropped_by_reason == {"invalid_direction": 1}


def test_blank_service_with_a_keyword_gets_an_error_reply():
    h = Harness()
    frames = [b"", BLANK, BLANK, b"VALUE", b"CDQ", b"update", BLANK, b"ident"]
    [sent] = h.send(b"C1", frames)
    assert sent.message.direction == "CDE"
    assert sent.message.payload == malformed("frame 2 (keyword): a keyword needs a service (the service frame is blank)")
    assert (sent.message.service, sent.message.keyword) == (None, None)


def test_misplaced_fail_in_the_envelope_gets_an_error_reply():
    h = Harness()
    frames = [b""] + ENVELOPE
    frames[1] = FAIL_FRAME
    [sent] = h.send(b"C1", frames)
    assert sent.message.direction == "CDE" and sent.message.payload.startswith("Malformed message: ")


def test_empty_envelope_frames_are_values_and_are_routed():
    """An existing client's read: command update with an empty payload frame (and an empty
    identifier, which the existing parser also accepts)."""
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    for index in (5, 6):
        frames = [b""] + ENVELOPE
        frames[1 + index] = b""
        request = decode(frames)
        h.send(b"C1", frames, expect=[(b"D1", request.with_prefix(b"", b"C1", b""))])


@pytest.mark.parametrize("direction", ["CDB", "DBP", "DBB", "CBP", "CBE", "CSP", "CSE", "UBP", "UBE", "UBB", "SDB", "CSB", "CBB"])
def test_directions_the_broker_does_not_handle_are_dropped(direction):
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    message = query(direction, "KTEST", dispatcher="disp1", keyword="VALUE", command="broadcast", payload="1")
    h.send(b"D1", message, expect=[])
    assert h.core.stats.dropped_by_reason == {"unhandled_direction": 1}


def test_a_query_direction_the_broker_does_not_serve_gets_an_error_reply():
    h = Harness()
    sdq = query("SDQ", "KTEST", command="enumerate")
    h.send(b"C1", sdq, expect=[(b"C1", sdq.error("The broker does not handle SDQ messages"))])


def test_malformed_reply_from_a_dispatcher_answers_its_request_with_an_error():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q)
    frames = encode(d.answer(fwd, "x"))
    frames[-2] = b"\xff"
    [sent] = h.send(b"D1", frames)
    assert (sent.to, sent.message.direction, sent.message.identifier) == (b"C1", "CDE", q.identifier)
    assert sent.message.payload.startswith(malformed("the dispatcher's reply: frame 5 (payload): invalid UTF-8"))
    h.send(b"D1", d.answer(fwd, "y"), expect=[])  # answered once


def test_malformed_fanout_answer_counts_as_unusable():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CSQ", "KTEST", command="enumerate")
    [copy] = h.send(b"C1", q)
    frames = encode(d.answer(copy, "x"))
    frames[-2] = b"\xff"
    h.send(b"D1", frames, expect=[(b"C1", q.reply(FAIL))])


def test_reply_without_the_client_prefix_is_dropped():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q)
    h.send(b"D1", d.answer(fwd).with_prefix(b""), expect=[])
    assert h.core.stats.dropped_by_reason == {"reply_without_client_prefix": 1}


def test_bytes_that_are_not_a_message_at_all_never_raise():
    h = Harness()
    for frames in ([b"\x00" * 100000], [b""] * 50, [b"\x01"] * 7, [b"\x02"] * 7, [b"CDQ"] * 7,
                   [b""] * 6 + [b"CDQ"], [b"\xff"] * 8):
        h.send(b"X", frames)
    assert "internal_error" not in h.core.stats.dropped_by_reason
    assert h.core.stats.received == 7


def test_the_core_survives_its_own_failure(monkeypatch):
    h = Harness()
    monkeypatch.setattr(type(h.core), "_inquiry", lambda *a: 1 / 0)
    monkeypatch.setitem(type(h.core)._HANDLERS, Direction.UBQ, type(h.core)._inquiry)
    h.send(b"Q1", query("UBQ", command="check"), expect=[])
    assert h.core.stats.dropped_by_reason == {"internal_error": 1}


# -- salvage (the codec helper used to answer refused frames) -----------------------------------

def test_salvage_blanks_each_bad_frame_and_keeps_the_rest():
    frames = [b"p", b"", b"\xffS", b"disp1", b"KW", b"CDQ", b"", b"\x02", b"id"]
    message = salvage(frames)
    assert message.prefix == (b"p", b"") and message.direction == "CDQ"
    assert message.frames == (BLANK, BLANK, BLANK, b"CDQ", b"", FAIL_FRAME, b"id")


@pytest.mark.parametrize("frames", [[], [b"a"] * 6, [b"a", b"b", b"c", b"XXX", b"e", b"f", b"g"]])
def test_salvage_gives_none_when_there_is_nothing_to_answer(frames):
    assert salvage(frames) is None


# -- counting and logging drops -----------------------------------------------------------------

def test_drops_are_logged_at_debug_at_most_once_per_reason_per_interval(caplog):
    caplog.set_level(logging.DEBUG, logger="cauldron_proto.broker.core")
    h = Harness()
    for _ in range(100):
        h.send(b"X1", [b"a"])
    h.send(b"X1", [b""] + ENVELOPE[:3] + [b"XYZ"] + ENVELOPE[4:])
    lines = [r for r in caplog.records if r.name == "cauldron_proto.broker.core"]
    assert [r.levelno for r in lines] == [logging.DEBUG, logging.DEBUG]
    assert "too_few_frames" in lines[0].getMessage() and "invalid_direction" in lines[1].getMessage()
    h.now += 10.0
    h.send(b"X1", [b"a"])
    assert "(99 more since the last line)" in caplog.records[-1].getMessage()
    assert h.core.stats.dropped_by_reason == {"too_few_frames": 101, "invalid_direction": 1}
    assert h.core.stats.dropped == 102


def test_drop_log_counts_even_when_debug_is_off(caplog):
    caplog.set_level(logging.WARNING, logger="cauldron_proto.broker.core")
    drops = DropLog(Stats())
    for now in range(5):
        drops.drop("x", float(now), b"p")
    assert drops.stats.dropped == 5 and not caplog.records


def test_a_dispatcher_name_no_heartbeat_could_carry_is_refused_not_registered():
    """The frame 02 02 reads as the text "\\x02", which cannot be sent back (every reader takes
    it for the fail sentinel): a welcome or a ready with it is refused, so no timer ever has to
    beat it (a heartbeat that cannot be built stopped every timer of the tick)."""
    h = Harness(timeout=1.0)
    for command in ("welcome", "ready"):
        bad = query("DBQ", "KTEST", dispatcher="d", command=command)
        frames = encode(bad)
        frames[2] = b"\x02\x02"  # the dispatcher frame
        assert frames[1:3] == [b"KTEST", b"\x02\x02"]
        [sent] = h.send(b"D1", frames)
        assert sent.message.direction == Direction.DBE
        assert sent.message.payload.startswith("Malformed message: dispatcher: the text '\\x02'")
    assert h.core.registry.services == {}
    assert h.core.tick(100.0) == [] and "internal_error" not in h.core.stats.dropped_by_reason
