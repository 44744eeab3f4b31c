"""A straightforward class-based codec, the baseline for benchmarks/codec.py.

It is shaped like the existing Cauldron implementation's message class: parsing builds an
object and decodes every field to text at once (stripping sentinels field by field),
validates the direction against the set of codes, and encoding turns every field back into
bytes. It is correct for well-formed input; it exists only to be measured against.
"""

from __future__ import annotations

import uuid

BLANK = b"\x01"
FAIL = b"\x02"
PAIRS = ("CD", "DB", "CB", "CS", "SD", "UB")
KINDS = "QPEB"
REPLY = {"Q": "P", "B": "P", "P": "Q", "E": "Q"}


class Directions:
    """The direction codes, computed from the pairs and kinds."""

    def __init__(self, pairs, kinds):
        self.pairs, self.kinds = pairs, kinds

    @property
    def codes(self) -> set[str]:
        return {pair + kind for pair in self.pairs for kind in self.kinds}

    def reply(self, code: str) -> str:
        return code[:2] + REPLY[code[2]]

    def error(self, code: str) -> str:
        return code[:2] + "E"


DIRECTIONS = Directions(PAIRS, KINDS)


def to_text(value) -> str:
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    for special in (BLANK.decode(), FAIL.decode()):
        if text.startswith(special) and len(text) != len(special):
            text = text[len(special):]
    return text


class ParseError(ValueError):
    pass


class ClassicMessage:
    NPARTS = 7

    def __init__(self, command=BLANK, service=BLANK, dispatcher=BLANK, keyword=BLANK,
                 payload=BLANK, direction="CDQ", prefix=None, identifier=None):
        self.command = to_text(command)
        self.service = to_text(service)
        self.dispatcher = to_text(dispatcher)
        self.keyword = to_text(keyword)
        self.payload = to_text(payload)
        direction = to_text(direction)
        if direction not in DIRECTIONS.codes:
            raise ParseError(f"invalid direction {direction!r}")
        self.direction = direction
        self.identifier = bytes(identifier) if identifier is not None else uuid.uuid4().bytes
        self.prefix = [bytes(p) for p in (prefix or [])]

    @classmethod
    def parse(cls, frames):
        if len(frames) > cls.NPARTS:
            prefix, frames = frames[: -cls.NPARTS], frames[-cls.NPARTS:]
        else:
            prefix = None
        if len(frames) != cls.NPARTS:
            raise ParseError(f"expected {cls.NPARTS} frames, got {len(frames)}")
        service, dispatcher, keyword, direction, command, payload, identifier = frames
        if service == BLANK and (keyword != BLANK or dispatcher != BLANK):
            raise ParseError("a keyword or dispatcher needs a service")
        return cls(command, service, dispatcher, keyword, payload, direction, prefix, identifier)

    def state(self) -> dict:
        return {"command": self.command, "service": self.service, "dispatcher": self.dispatcher,
                "keyword": self.keyword, "payload": self.payload, "direction": self.direction,
                "identifier": self.identifier, "prefix": self.prefix}

    def response(self, payload) -> "ClassicMessage":
        state = self.state()
        state.update(payload=payload, direction=DIRECTIONS.reply(self.direction))
        return ClassicMessage(**state)

    @property
    def data(self) -> list[bytes]:
        parts = [self.service, self.dispatcher, self.keyword, self.direction, self.command, self.payload]
        return self.prefix + [str(p).encode("utf-8") for p in parts] + [self.identifier]
