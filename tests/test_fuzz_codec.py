"""Codec fuzzing: valid messages of every kind, mutated, and raw frame lists, through
decode/salvage/encode/reply/classify (the checks are in fuzz/codec_checks.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauldron_proto import (MESSAGE_KINDS, LocalProtocolError, Message, RemoteProtocolError, check_kind, classify,
                            decode, encode)
from fuzz.codec_checks import check_codec
from fuzz.programs import frames_from_bytes
from fuzz.seeds import N_OPS, TEMPLATES, mutate, seed

MUTATION = st.tuples(st.integers(0, N_OPS - 1), st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=8))
SEEDED = st.builds(lambda t, v, ident, ms: mutate(seed(t, v, ident), ms),
                   st.integers(0, len(TEMPLATES) - 1), st.integers(0, 65535),
                   st.binary(min_size=1, max_size=16), st.lists(MUTATION, max_size=5))


@pytest.mark.parametrize("template", range(len(MESSAGE_KINDS)))
def test_every_seed_of_a_kind_is_a_valid_message_of_that_kind(template):
    kind = list(MESSAGE_KINDS.values())[template]
    for variant in range(0, 400, 7):
        message = decode(seed(template, variant, b"\x10" * 16))
        assert classify(message) is kind and check_kind(message) is kind, (kind.name, message)
        assert message.prefix == (b"",)


@settings(max_examples=400, deadline=None)
@given(SEEDED)
def test_mutated_seeds_never_break_the_codec(frames):
    check_codec(frames)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=12), st.sampled_from([b"", b"\x01", b"\x02", b"CDQ", b"SDP"])),
                max_size=12))
def test_raw_frame_lists_never_break_the_codec(frames):
    check_codec(frames)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_frames_read_from_bytes_never_break_the_codec(data):
    check_codec(frames_from_bytes(data))


@pytest.mark.parametrize("text", ["\x01abc", "\x02\x01", "\x02abc", "\x01\x02", "\x01\x01"])
def test_text_starting_with_a_sentinel_byte_survives_a_round_trip(text):
    """Found by the fuzzer: such text was re-encoded as a bare sentinel (a blank service
    with a keyword: frames the broker sent in heartbeats and fan-out copies, that no peer decodes)."""
    message = Message.new("CDQ", service=text, dispatcher=text, keyword=text, command=text, payload=text)
    again = decode(encode(message))
    assert (again.service, again.dispatcher, again.keyword, again.command, again.payload) == (text,) * 5
    assert decode(encode(again.replace(direction="SDQ"))).service == text


@pytest.mark.parametrize("text", ["\x01", "\x02"])
def test_a_lone_sentinel_character_cannot_be_sent_as_text(text):
    """Every reader (the existing decoder's rule) takes it for the sentinel itself."""
    with pytest.raises(LocalProtocolError, match="reads as a sentinel"):
        Message.new("CDQ", service="S", payload=text)


@pytest.mark.parametrize("fields", [{"service": None, "keyword": "VALUE"}, {"service": None, "dispatcher": "d"},
                                    {"service": None, "keyword": ""}])
def test_a_blank_service_with_a_keyword_or_dispatcher_is_refused_when_building(fields):
    with pytest.raises(LocalProtocolError, match="needs a service"):
        Message.new("CDQ", command="update", **fields)


def test_an_empty_service_is_a_name_not_blank():
    message = decode(encode(Message.new("CDQ", service="", keyword="VALUE", command="update")))
    assert (message.service, message.keyword) == ("", "VALUE")


def test_the_checks_catch_a_codec_that_builds_broken_frames(monkeypatch):
    """The checks can fail: a reply() that drops the service frame is caught."""
    frames = seed(13, 0, b"\x10" * 16)  # a client_dispatcher_query: service and keyword set
    original = Message.reply

    def broken(self, payload=None, **kw):
        good = original(self, payload, **kw)
        return Message(good.prefix, good.direction, (b"\x01", *good.frames[1:]))

    monkeypatch.setattr(Message, "reply", broken)
    with pytest.raises(RemoteProtocolError, match="needs a service"):
        check_codec(frames)
