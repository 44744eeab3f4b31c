"""Typed codec for the envelope of the Cauldron protocol.

``decode(frames)`` checks a frame list and gives a frozen :class:`Message`; the last
:data:`~.tables.ENVELOPE_SIZE` frames are the envelope, everything before them the routing
prefix. A message keeps its frames as bytes: text fields are decoded when read, so relaying a
message costs no re-encoding, and ``encode(message)`` gives the prefix then the envelope.
Blank frames read as None, the fail sentinel as :data:`FAIL`, an empty frame as the empty
string. Text fields are read by the existing decoder's rule: one leading blank byte is
stripped from a field longer than one byte, then one leading fail byte from what is left if
it is still longer than one byte.

This module is written by hand. Everything in it that the spec decides comes from the
generated :mod:`.tables`: where each frame is (``SERVICE_AT`` ... ``IDENTIFIER_AT``), which
frames are text and which may hold the fail sentinel, the sentinels, the direction codes and
their derivations, the rules' reasons and the message kinds. What it can follow is stated
here once: :data:`READS`, :data:`NEVER_BLANK`, :data:`MAY_FAIL`, and the rules it raises (each
``_refuse(frame, rule, **fields)`` call; those in :func:`check_kind` are the kind rules).
``codegen/spec.py`` reads them from this file's source (it imports nothing of the package)
and refuses a spec this codec cannot follow.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from .tables import (
    BLANK,
    COMMAND_AT,
    DIRECTION_AT,
    DISPATCHER_AT,
    ENVELOPE_SIZE,
    ERROR_DIRECTION,
    FAIL_FRAME,
    FAIL_FRAMES,
    FRAME_INDEX,
    FRAME_NAMES,
    IDENTIFIER_AT,
    KEYWORD_AT,
    KIND_BY_DIRECTION,
    KIND_BY_ROUTE,
    NO_FAIL_INDICES,
    PAYLOAD_AT,
    REPLY_DIRECTION,
    RULES,
    SERVICE_AT,
    TEXT_FRAMES,
    TEXT_INDICES,
    Direction,
    MessageKind,
)

#: The envelope frames this codec reads, by name, each with the encoding it reads it in.
READS = {"service": "utf-8", "dispatcher": "utf-8", "keyword": "utf-8", "direction": "ascii",
         "command": "utf-8", "payload": "utf-8", "identifier": "bytes"}
#: The one frame it cannot read blank (it must hold a direction code); every other frame reads
#: blank as None.
NEVER_BLANK = "direction"
#: The frames whose readers can give the fail sentinel (the payload as FAIL, the identifier as
#: its bytes); the others are names, read as text.
MAY_FAIL = ("payload", "identifier")

__all__ = [
    "FAIL", "Fail", "ProtocolError", "RemoteProtocolError", "LocalProtocolError", "Message",
    "decode", "encode", "reply", "error_reply", "classify", "check_kind", "new_identifier",
    "salvage",
]


class Fail:
    """The type of :data:`FAIL`, the fail sentinel read from or written to a frame."""

    __slots__ = ()
    _instance: "Fail | None" = None

    def __new__(cls) -> "Fail":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "FAIL"

    def __reduce__(self):
        return (Fail, ())


#: The fail sentinel as a value (a failed result, for example a fan-out that got no usable answer).
FAIL = Fail()


class ProtocolError(ValueError):
    """Frames or fields that break the protocol."""


class RemoteProtocolError(ProtocolError):
    """A peer sent frames that break the protocol.

    ``frame`` names the envelope frame at fault (None when the message as a whole is, for
    example too few frames), ``rule`` is the rule id from the spec, ``reason`` says why.
    """

    def __init__(self, frame: str | None, rule: str, reason: str):
        self.frame, self.rule, self.reason = frame, rule, reason
        where = "message" if frame is None else f"frame {FRAME_INDEX[frame]} ({frame})"
        super().__init__(f"{where}: {reason}")


class LocalProtocolError(ProtocolError):
    """This program tried to build a message that breaks the protocol."""


def _refuse(at: str | None, rule: str, /, **values: Any) -> RemoteProtocolError:
    return RemoteProtocolError(at, rule, RULES[rule].format(**values))


_DIRECTION_BY_FRAME = {code.encode("ascii"): code for code in Direction}
_REPLY_FRAME = {code: REPLY_DIRECTION[code].encode("ascii") for code in Direction}
_ERROR_FRAME = {code: ERROR_DIRECTION[code].encode("ascii") for code in Direction}
#: Direction frames of error replies (every direction an error reply can have).
_ERROR_FRAMES = frozenset(_ERROR_FRAME.values())
_SENTINEL_BYTES = frozenset((BLANK[0], FAIL_FRAME[0]))  # a set: the readers test every frame's first byte
#: The frames that may hold the fail sentinel, as an error message names them.
_FAIL_NAMES = " and ".join(name for name in FRAME_NAMES if name in FAIL_FRAMES)
_KEEP: Any = object()


def _strip_sentinels(frame: bytes) -> bytes:
    """The existing decoder's rule: strip one leading blank byte, then one leading fail byte,
    each only from a field longer than one byte."""
    if len(frame) > 1 and frame[0] == BLANK[0]:
        frame = frame[1:]
    if len(frame) > 1 and frame[0] == FAIL_FRAME[0]:
        frame = frame[1:]
    return frame


def _field(frame: bytes) -> "str | Fail | None":
    """A text frame's value: None for blank, FAIL for the fail sentinel, else the text."""
    if frame == BLANK:
        return None
    if frame and frame[0] in _SENTINEL_BYTES:
        frame = _strip_sentinels(frame)
        if frame == BLANK:
            return None
        if frame == FAIL_FRAME:
            return FAIL
    return frame.decode("utf-8")


def _is_blank(frame: bytes) -> bool:
    """Whether a frame reads as blank (the sentinel itself, or 01 01 and 02 01 by the rule)."""
    return frame == BLANK or (len(frame) == 2 and frame[0] in _SENTINEL_BYTES and _strip_sentinels(frame) == BLANK)


def _text(frame: bytes) -> str | None:
    """A name frame's text (None for blank; the fail sentinel, refused in names, as its byte)."""
    if frame and frame[0] not in _SENTINEL_BYTES:  # plain text, the usual frame: no sentinel rule applies
        return frame.decode("utf-8")
    value = _field(frame)
    return FAIL_FRAME.decode("ascii") if isinstance(value, Fail) else value


def _key(frame: bytes) -> str | None:
    """A name frame's text upper-cased, as the broker compares names (None for blank)."""
    text = _text(frame)
    return None if text is None else text.upper()


def _to_frame(value: Any, name: str) -> bytes:
    """One field as a frame: None is blank, FAIL the fail sentinel, "" an empty frame.

    Text that starts with a sentinel byte goes behind that same byte, which readers strip:
    the text "\\x01A" is sent as 01 01 41 and "\\x02A" as 02 02 41. The texts "\\x01" and
    "\\x02" alone cannot be sent: every reader takes them for the sentinels.
    """
    if value is None:
        return BLANK
    if isinstance(value, str):
        frame = value.encode("utf-8")
        if frame and frame[0] in _SENTINEL_BYTES:
            if len(frame) == 1:
                raise LocalProtocolError(f"{name}: the text {value!r} reads as a sentinel and cannot be sent")
            return frame[:1] + frame
        return frame
    if value is FAIL:
        if name in FAIL_FRAMES:
            return FAIL_FRAME
        raise LocalProtocolError(f"{name}: the fail sentinel is only valid in the {_FAIL_NAMES}")
    if isinstance(value, (bytes, bytearray, memoryview)) and name == "identifier":
        return bytes(value)
    raise LocalProtocolError(f"{name}: expected text or None, got {type(value).__name__}")


def new_identifier() -> bytes:
    """A fresh request identifier: 16 random bytes (a UUID4)."""
    return uuid.uuid4().bytes


class Message(msgspec.Struct, frozen=True, gc=False):
    """One protocol message: routing prefix, direction and the envelope frames (wire order).

    Build one with :meth:`Message.new` (fields as text) or :func:`decode` (frames from a
    socket). Fields read as text; blank is None, the fail sentinel :data:`FAIL`.
    """

    prefix: tuple[bytes, ...]
    direction: Direction
    frames: tuple[bytes, ...]

    @classmethod
    def new(
        cls,
        direction: Direction | str,
        *,
        service: str | None = None,
        dispatcher: str | None = None,
        keyword: str | None = None,
        command: str | None = None,
        payload: "str | Fail | None" = None,
        identifier: bytes | None = None,
        prefix: tuple[bytes, ...] | list[bytes] = (),
    ) -> "Message":
        """A new message from text fields; a new request identifier unless one is given."""
        code = _DIRECTION_BY_FRAME.get(str(direction).encode("ascii", "replace"))
        if code is None:
            raise LocalProtocolError(f"direction: {direction!r} is not a direction code")
        if service is None and (keyword is not None or dispatcher is not None):
            raise LocalProtocolError("service: a keyword or dispatcher needs a service")
        frames = [BLANK] * ENVELOPE_SIZE
        frames[SERVICE_AT] = _to_frame(service, "service")
        frames[DISPATCHER_AT] = _to_frame(dispatcher, "dispatcher")
        frames[KEYWORD_AT] = _to_frame(keyword, "keyword")
        frames[DIRECTION_AT] = code.encode("ascii")
        frames[COMMAND_AT] = _to_frame(command, "command")
        frames[PAYLOAD_AT] = _to_frame(payload, "payload")
        frames[IDENTIFIER_AT] = _to_frame(new_identifier() if identifier is None else identifier, "identifier")
        return cls(tuple(bytes(p) for p in prefix), code, tuple(frames))

    @property
    def service(self) -> str | None:
        """The service frame as text; None when blank (the service name, sent as written)."""
        return _text(self.frames[SERVICE_AT])

    @property
    def dispatcher(self) -> str | None:
        """The dispatcher frame as text; None when blank (the dispatcher name, case-sensitive)."""
        return _text(self.frames[DISPATCHER_AT])

    @property
    def keyword(self) -> str | None:
        """The keyword frame as text; None when blank (the keyword name)."""
        return _text(self.frames[KEYWORD_AT])

    @property
    def command(self) -> str | None:
        """The command frame as text; None when blank (the command name)."""
        return _text(self.frames[COMMAND_AT])

    @property
    def payload(self) -> "str | Fail | None":
        """The payload as text; None when blank, :data:`FAIL` for the fail sentinel."""
        frame = self.frames[PAYLOAD_AT]
        return FAIL if frame == FAIL_FRAME else _field(frame)

    @property
    def identifier(self) -> bytes:
        """The request identifier, as sent."""
        return self.frames[IDENTIFIER_AT]

    @property
    def service_key(self) -> str | None:
        """The service name as the broker files it (upper-cased), or None."""
        frame = self.frames[SERVICE_AT]
        if frame and frame[0] not in _SENTINEL_BYTES:  # plain text, read here: the broker reads it on every request
            return frame.decode("utf-8").upper()
        return _key(frame)

    @property
    def keyword_key(self) -> str | None:
        """The keyword name as compared (upper-cased), or None."""
        frame = self.frames[KEYWORD_AT]
        if frame and frame[0] not in _SENTINEL_BYTES:  # plain text, read here: the broker reads it on every request
            return frame.decode("utf-8").upper()
        return _key(frame)

    @property
    def is_error(self) -> bool:
        """Whether the message is an error reply (its direction is one an error reply has)."""
        return self.frames[DIRECTION_AT] in _ERROR_FRAMES

    @property
    def is_usable(self) -> bool:
        """A non-error message whose payload is neither blank nor fail."""
        if self.frames[DIRECTION_AT] in _ERROR_FRAMES:
            return False
        payload = self.frames[PAYLOAD_AT]
        if payload and payload[0] in _SENTINEL_BYTES:
            return _field(payload) not in (None, FAIL)
        return True

    @property
    def sender(self) -> bytes | None:
        """The routing id of the peer that sent (the first prefix frame), if any."""
        return self.prefix[0] if self.prefix else None

    @property
    def client(self) -> bytes | None:
        """The client routing id a dispatcher's reply carries (``prefix[-2]``), if any."""
        return self.prefix[-2] if len(self.prefix) >= 2 else None

    def fields_text(self) -> str:
        """The text fields joined with '|' in wire order, as the existing implementation prints them."""
        f = self.frames
        return "|".join(f[i].decode("utf-8", "replace") for i in TEXT_INDICES)

    def reply(self, payload: "str | Fail | None" = None, *, dispatcher: Any = _KEEP) -> "Message":
        """The reply: same fields, ``payload``, Q/B turned into P (P/E into Q)."""
        return self._answer(_REPLY_FRAME, REPLY_DIRECTION, payload, dispatcher)

    def error(self, payload: "str | Fail | None" = None, *, dispatcher: Any = _KEEP) -> "Message":
        """The error reply: same fields, ``payload``, the kind turned into E."""
        return self._answer(_ERROR_FRAME, ERROR_DIRECTION, payload, dispatcher)

    def _answer(self, frame_table, table, payload, dispatcher) -> "Message":
        frames, direction = [*self.frames], self.direction
        if dispatcher is not _KEEP:
            frames[DISPATCHER_AT] = _to_frame(dispatcher, "dispatcher")
        frames[DIRECTION_AT] = frame_table[direction]
        frames[PAYLOAD_AT] = _to_frame(payload, "payload")
        return Message(self.prefix, table[direction], tuple(frames))

    def with_dispatcher(self, name: str | None) -> "Message":
        """The same message with ``name`` in the dispatcher frame (as the broker names a
        keyword's learned owner in a request it routes by keyword)."""
        frames = list(self.frames)
        frames[DISPATCHER_AT] = _to_frame(name, "dispatcher")
        return Message(self.prefix, self.direction, tuple(frames))

    def with_prefix(self, *prefix: bytes) -> "Message":
        """The same envelope behind another routing prefix."""
        return Message(prefix, self.direction, self.frames)

    def replace(self, **fields: Any) -> "Message":
        """A copy with some fields replaced (text fields as text, ``direction``, ``prefix``)."""
        current = {name: getattr(self, name) for name in FRAME_NAMES}
        current["prefix"] = self.prefix
        unknown = set(fields) - set(current)
        if unknown:
            raise LocalProtocolError(f"unknown message fields: {', '.join(sorted(unknown))}")
        current.update(fields)
        return Message.new(**current)

    def __repr__(self) -> str:
        prefix = "|".join(p.hex() for p in self.prefix)
        return f"<Message {prefix}|{self.fields_text()}|{self.identifier.hex()}>"


def decode(frames: Sequence[bytes]) -> Message:
    """Check a frame list and give its message; raise RemoteProtocolError naming the frame."""
    n = len(frames)
    if n < ENVELOPE_SIZE:
        raise _refuse(None, "too_few_frames", count=n)
    frames = tuple(frames)  # one copy, sliced twice (prefix and envelope)
    envelope = frames[n - ENVELOPE_SIZE:]
    direction = _DIRECTION_BY_FRAME.get(envelope[DIRECTION_AT])
    if direction is None:
        raise _refuse("direction", "invalid_direction", value=envelope[DIRECTION_AT])
    service, dispatcher, keyword = envelope[SERVICE_AT], envelope[DISPATCHER_AT], envelope[KEYWORD_AT]
    command, payload = envelope[COMMAND_AT], envelope[PAYLOAD_AT]
    # _is_blank(service), whose answer is almost always no, without a call
    if (service == BLANK or len(service) == 2 and _is_blank(service)) and not (
            _is_blank(keyword) and _is_blank(dispatcher)):
        if not _is_blank(keyword):
            raise _refuse("keyword", "keyword_without_service")
        raise _refuse("dispatcher", "dispatcher_without_service")
    if not (service.isascii() and dispatcher.isascii() and keyword.isascii() and command.isascii()
            and payload.isascii()):  # ASCII is valid UTF-8: checked without copying a large payload
        try:
            b"\0".join((service, dispatcher, keyword, command, payload)).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_text(envelope) from None
    if FAIL_FRAME in envelope:  # then find it where it may not be (the payload may hold it)
        for index in NO_FAIL_INDICES:
            if envelope[index] == FAIL_FRAME:
                raise _refuse(FRAME_NAMES[index], "fail_not_allowed")
    return Message(frames[: n - ENVELOPE_SIZE], direction, envelope)


def salvage(frames: Sequence[bytes]) -> Message | None:
    """The message in frames :func:`decode` refuses, each frame that breaks a rule read as blank.

    For answering bad input with an error reply: None when there is nothing to answer (too
    few frames, or a direction frame that is not a direction code); otherwise a
    :class:`Message` whose frames all follow the rules: a text frame that is not UTF-8 and a
    misplaced fail sentinel become blank, and with a blank service the
    dispatcher and keyword are blank too.
    """
    n = len(frames)
    if n < ENVELOPE_SIZE:
        return None
    envelope = list(frames[n - ENVELOPE_SIZE:])
    direction = _DIRECTION_BY_FRAME.get(envelope[DIRECTION_AT])
    if direction is None:
        return None
    for index, name in enumerate(FRAME_NAMES):
        frame = envelope[index]
        if frame == FAIL_FRAME and name not in FAIL_FRAMES:
            envelope[index] = BLANK
        elif name in TEXT_FRAMES and not _is_utf8(frame):
            envelope[index] = BLANK
    if _is_blank(envelope[SERVICE_AT]):
        for index in (DISPATCHER_AT, KEYWORD_AT):
            envelope[index] = envelope[index] if _is_blank(envelope[index]) else BLANK
    return Message(tuple(frames[: n - ENVELOPE_SIZE]), direction, tuple(envelope))


def _is_utf8(frame: bytes) -> bool:
    try:
        frame.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bad_text(envelope: tuple[bytes, ...]) -> RemoteProtocolError:
    for index in TEXT_INDICES:
        try:
            envelope[index].decode("utf-8")
        except UnicodeDecodeError as exc:
            return _refuse(FRAME_NAMES[index], "invalid_utf8", error=exc.reason + f" at byte {exc.start}")
    raise AssertionError("unreachable: the joined frames did not decode")


def encode(message: Message, prefix: tuple[bytes, ...] | list[bytes] | None = None) -> list[bytes]:
    """The frames of ``message``: routing prefix first, then the envelope.

    ``prefix``: send behind this routing prefix instead of the message's own (the same frames
    as ``encode(message.with_prefix(*prefix))``, without making that message).
    """
    return [*(message.prefix if prefix is None else prefix), *message.frames]


def reply(message: Message, payload: "str | Fail | None" = None) -> Message:
    """The reply to ``message`` with ``payload`` (see :meth:`Message.reply`)."""
    return message.reply(payload)


def error_reply(message: Message, payload: "str | Fail | None" = None) -> Message:
    """The error reply to ``message`` with ``payload`` (see :meth:`Message.error`)."""
    return message.error(payload)


def classify(message: Message) -> MessageKind | None:
    """The message kind of ``message`` by direction and command, or None if it has none."""
    command = message.command
    kind = KIND_BY_ROUTE.get((message.direction, command)) if command is not None else None
    return kind if kind is not None else KIND_BY_DIRECTION.get(message.direction)


#: The routed fields a message kind has a rule for, with their positions.
_ROUTED_AT = (("service", SERVICE_AT), ("dispatcher", DISPATCHER_AT), ("keyword", KEYWORD_AT))


def check_kind(message: Message, kind: MessageKind | None = None) -> MessageKind | None:
    """Check the field rules of the message's kind (``classify`` unless given).

    Returns the kind; raises RemoteProtocolError naming a required field that is blank, or
    a field that must be blank and is not.
    """
    kind = kind or classify(message)
    if kind is None:
        return None
    for name, index in _ROUTED_AT:
        rule, blank = getattr(kind, name), _is_blank(message.frames[index])
        if rule == "required" and blank:
            raise _refuse(name, "field_required", kind=kind.name, frame=name)
        if rule == "blank" and not blank:
            raise _refuse(name, "field_must_be_blank", kind=kind.name, frame=name)
    return kind
