"""Typed payloads: one decoder and one encoder per payload type of the spec.

Written by hand; the payload types are data (:data:`~.tables.PAYLOAD_FORMATS`, generated
from the spec: each type's format and what that format needs), and each format is one
small class here, so a new payload type of a known format needs no code at all.

``decode_TYPE(payload)`` takes a message's payload as :attr:`Message.payload` gives it
(text, None for blank, :data:`FAIL`) and gives the typed value, or raises
:class:`PayloadError` naming the type and the reason; ``encode_TYPE(value)`` gives the
payload to put in a message (text, or None for blank). JSON payloads are decoded by a
msgspec decoder of their type, built once, and encoded as the existing dispatcher writes
them. :data:`PAYLOAD_CODECS` has every type's pair by name, :data:`COMMAND_PAYLOADS` the
request and reply payload types of each keyword command.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, NamedTuple

import msgspec

from .codec import FAIL
from .tables import KEYWORD_COMMANDS, KTL_TYPES, PAYLOAD_FORMATS, PayloadType

__all__ = [
    "PayloadError", "PayloadCodec", "PAYLOAD_CODECS", "COMMAND_PAYLOADS", "decode_reply", "encode_reply",
    "decode_text", "encode_text", "decode_blank", "encode_blank", "decode_empty", "encode_empty",
    "decode_json", "encode_json", "decode_units", "encode_units", "decode_list", "encode_list",
    "decode_address", "encode_address", "decode_yesno", "encode_yesno", "decode_ktl_type", "encode_ktl_type",
    "decode_value", "encode_value", "decode_time", "encode_time", "decode_fail_or_text", "encode_fail_or_text",
    "decode_status", "encode_status",
]

_KTL_TYPES = frozenset(KTL_TYPES)
_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


class PayloadError(ValueError):
    """A payload that is not of its type: ``payload_type``, ``payload`` and ``reason``."""

    def __init__(self, payload_type: str, payload: Any, reason: str):
        self.payload_type, self.payload, self.reason = payload_type, payload, reason
        super().__init__(f"payload ({payload_type}): {payload!r}: {reason}")


class PayloadCodec(NamedTuple):
    """A payload type's decoder and encoder."""

    decode: Callable[[Any], Any]
    encode: Callable[..., Any]


class _Format:
    """One payload format, for payload type ``spec``: ``decode`` and ``encode``."""

    def __init__(self, spec: PayloadType):
        self.spec, self.name = spec, spec.name

    def refuse(self, payload: Any, reason: str) -> PayloadError:
        return PayloadError(self.name, payload, reason)

    def text(self, payload: Any) -> str:
        if not isinstance(payload, str):
            raise self.refuse(payload, "expected text, got " + ("blank" if payload is None else repr(payload)))
        return payload

    def codec(self) -> PayloadCodec:
        return PayloadCodec(self.decode, self.encode)

    def decode(self, payload: Any) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        raise NotImplementedError


class _Text(_Format):
    """Text; None when blank if the type is ``nullable``."""

    def decode(self, payload):
        return None if payload is None and self.spec.nullable else self.text(payload)

    encode = decode


class _Blank(_Format):
    """A payload that must be blank."""

    def decode(self, payload):
        if payload is not None:
            raise self.refuse(payload, "expected blank")
        return None

    def encode(self, value=None):
        return None


class _Empty(_Format):
    """An empty payload (blank is read the same): always ``""``."""

    def decode(self, payload):
        if payload is None or payload == "":
            return ""
        raise self.refuse(payload, "expected the empty string")

    def encode(self, value=""):
        if value != "":
            raise self.refuse(value, "expected the empty string")
        return ""


class _Json(_Format):
    """A JSON document of the type's ``json_type``, written as the existing dispatcher writes
    it (Python's json.dumps: non-ASCII escaped, ``", "`` and ``": "`` separators)."""

    def __init__(self, spec: PayloadType):
        super().__init__(spec)
        self.decoder = msgspec.json.Decoder(spec.json_type)

    def decode(self, payload):
        try:
            return self.decoder.decode(self.text(payload))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self.refuse(payload, str(exc)) from None

    def encode(self, value):
        try:
            return json.dumps(msgspec.to_builtins(msgspec.convert(value, self.spec.json_type)))
        except (msgspec.ValidationError, TypeError) as exc:
            raise self.refuse(value, str(exc)) from None


class _Joined(_Format):
    """Names joined with the type's ``separator`` (blank or empty: none)."""

    def decode(self, payload):
        if payload is None or payload == "":
            return []
        return [item for item in self.text(payload).split(self.spec.separator) if item]

    def encode(self, names):
        names = [str(n) for n in names]
        for item in names:
            if self.spec.separator in item or not item:
                raise self.refuse(item, f"a name is empty or holds the separator {self.spec.separator}")
        return self.spec.separator.join(names)


class _Address(_Format):
    """A ZMQ address, ``transport://endpoint``."""

    def decode(self, payload):
        if not _ADDRESS.match(self.text(payload)):
            raise self.refuse(payload, "not a transport://endpoint address")
        return payload

    encode = decode


class _Choice(_Format):
    """One of the type's ``values`` (text -> value)."""

    def decode(self, payload):
        try:
            return self.spec.values[self.text(payload)]
        except KeyError:
            raise self.refuse(payload, f"expected one of {', '.join(self.spec.values)}") from None

    def encode(self, value):
        for text, meaning in self.spec.values.items():
            if meaning == value and type(meaning) is type(value):
                return text
        raise self.refuse(value, "has no text")


class _KtlType(_Format):
    """A KTL type name (lower-cased), or None when blank or empty (the keyword is not there)."""

    def decode(self, payload):
        if payload is None or payload == "":
            return None
        name = " ".join(self.text(payload).lower().split())
        if name not in _KTL_TYPES:
            raise self.refuse(payload, "not a KTL type name")
        return name

    def encode(self, value):
        if value is not None and value not in _KTL_TYPES:
            raise self.refuse(value, "not a KTL type name")
        return value


class _Decimal(_Format):
    """A number written as decimal text, with the type's ``digits`` decimals."""

    def decode(self, payload):
        try:
            return float(self.text(payload))
        except ValueError:
            raise self.refuse(payload, "not a decimal number") from None

    def encode(self, value):
        return f"{float(value):.{self.spec.digits}f}"


class _FailOrText(_Format):
    """Text, or :data:`FAIL` (no usable answer)."""

    def decode(self, payload):
        return FAIL if payload is FAIL else self.text(payload)

    encode = decode


#: The class of each payload format the spec may use (``codegen/spec.py`` refuses others).
FORMATS: dict[str, type[_Format]] = {
    "text": _Text, "blank": _Blank, "empty": _Empty, "json": _Json, "joined": _Joined, "address": _Address,
    "choice": _Choice, "ktl_type": _KtlType, "decimal": _Decimal, "fail_or_text": _FailOrText,
}

#: Decoder and encoder of every payload type, by name.
PAYLOAD_CODECS: dict[str, PayloadCodec] = {name: FORMATS[spec.format](spec).codec()
                                           for name, spec in PAYLOAD_FORMATS.items()}
#: The request and reply payload types of each keyword command.
COMMAND_PAYLOADS: dict[str, tuple[str, str]] = {name: (command.payload, command.reply_payload)
                                                for name, command in KEYWORD_COMMANDS.items()}

# Each payload type's pair by name (tests/test_payloads.py checks every type of the spec has one).
decode_text, encode_text = PAYLOAD_CODECS["text"]
decode_blank, encode_blank = PAYLOAD_CODECS["blank"]
decode_empty, encode_empty = PAYLOAD_CODECS["empty"]
decode_json, encode_json = PAYLOAD_CODECS["json"]
decode_units, encode_units = PAYLOAD_CODECS["units"]
decode_list, encode_list = PAYLOAD_CODECS["list"]
decode_address, encode_address = PAYLOAD_CODECS["address"]
decode_yesno, encode_yesno = PAYLOAD_CODECS["yesno"]
decode_ktl_type, encode_ktl_type = PAYLOAD_CODECS["ktl_type"]
decode_value, encode_value = PAYLOAD_CODECS["value"]
decode_time, encode_time = PAYLOAD_CODECS["time"]
decode_fail_or_text, encode_fail_or_text = PAYLOAD_CODECS["fail_or_text"]
decode_status, encode_status = PAYLOAD_CODECS["status"]


def decode_reply(command: str, payload: Any) -> Any:
    """The typed reply payload of keyword command ``command``."""
    return PAYLOAD_CODECS[COMMAND_PAYLOADS[command][1]].decode(payload)


def encode_reply(command: str, value: Any) -> Any:
    """The reply payload of keyword command ``command`` for ``value``."""
    return PAYLOAD_CODECS[COMMAND_PAYLOADS[command][1]].encode(value)
