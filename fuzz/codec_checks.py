"""What must hold for any frame list given to the codec (raises AssertionError otherwise).

- ``decode`` gives a Message or raises :class:`RemoteProtocolError` naming a frame of the
  envelope (or None) and a rule of the spec; nothing else escapes.
- A decoded message re-encodes to the very same frames; every field reads without error;
  its reply, error reply and :func:`classify`/:func:`check_kind` work, and what they build
  decodes again to the same fields.
- ``salvage`` never raises; it gives None exactly when there is nothing to answer (fewer than
  7 frames or no direction code), else a message that decodes (the same one, for frames
  ``decode`` accepts) with the same routing prefix.
- ``Message.new`` from the decoded fields either builds a message that decodes to the same
  field values or raises :class:`LocalProtocolError`: it never builds broken frames.
"""

from __future__ import annotations

from typing import Sequence

from cauldron_proto import (FAIL, Direction, LocalProtocolError, Message, RemoteProtocolError, check_kind,
                            classify, decode, encode, salvage)
from cauldron_proto.protocol.tables import FRAME_NAMES, RULES

__all__ = ["check_codec"]

_FIELDS = ("service", "dispatcher", "keyword", "command", "payload")


def check_codec(frames: Sequence[bytes]) -> Message | None:
    """Check every codec property on ``frames``; the decoded message, or None if refused."""
    frames = [bytes(f) for f in frames]
    message = _decoded(frames)
    _check_salvage(frames, message)
    if message is None:
        return None
    assert encode(message) == frames, "encode(decode(frames)) changed the frames"
    _read_all(message)
    for answer in (message.reply("42"), message.error("bad"), message.reply(FAIL), message.reply(None)):
        again = decode(encode(answer))
        assert again.frames == answer.frames and again.prefix == message.prefix
    kind = classify(message)
    try:
        assert check_kind(message) is kind
    except RemoteProtocolError as exc:
        _check_refusal(exc)
    _check_rebuilt(message)
    return message


def _decoded(frames: list[bytes]) -> Message | None:
    try:
        return decode(frames)
    except RemoteProtocolError as exc:
        _check_refusal(exc)
        return None


def _check_refusal(exc: RemoteProtocolError) -> None:
    assert exc.rule in RULES, f"unknown rule {exc.rule!r}"
    assert exc.frame is None or exc.frame in FRAME_NAMES, f"unknown frame {exc.frame!r}"
    if exc.frame is not None:
        assert exc.frame in str(exc), f"the error does not name its frame: {exc}"


def _check_salvage(frames: list[bytes], decoded: Message | None) -> None:
    salvaged = salvage(frames)
    if len(frames) < 7 or frames[-4] not in {code.encode() for code in Direction}:
        assert salvaged is None, "salvage() answered frames with nothing to answer"
        return
    assert salvaged is not None, "salvage() gave up on frames with a direction code"
    assert salvaged.prefix == tuple(frames[:-7])
    again = decode(encode(salvaged))  # raises if salvage() built broken frames
    if decoded is not None:
        assert again.frames == decoded.frames, "salvage() changed frames decode() accepts"
    _read_all(salvaged)


def _read_all(message: Message) -> None:
    for name in (*_FIELDS, "identifier", "service_key", "keyword_key", "is_error", "is_usable", "sender",
                 "client"):
        getattr(message, name)
    message.fields_text()
    repr(message)


def _check_rebuilt(message: Message) -> None:
    """Building the same fields anew either fails loudly or gives the same field values."""
    fields = {name: getattr(message, name) for name in _FIELDS}
    try:
        rebuilt = Message.new(message.direction, identifier=message.identifier, prefix=message.prefix, **fields)
    except LocalProtocolError:
        return
    again = decode(encode(rebuilt))  # raises if Message.new built broken frames
    got = {name: getattr(again, name) for name in _FIELDS}
    assert got == fields, f"Message.new changed the fields: {fields} became {got}"
