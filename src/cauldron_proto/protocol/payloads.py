# GENERATED FILE: do not edit by hand.
# Generated from spec/protocol.yaml by `python -m codegen`; change the spec and regenerate.
# `python -m codegen --check` fails when this file is stale.
"""Typed payloads of the cauldron-zmq protocol: one decoder and one encoder per payload type.

``decode_TYPE(payload)`` takes a message's payload as :attr:`Message.payload` gives it (text,
None for blank, :data:`FAIL`) and gives the typed value, or raises :class:`PayloadError`
naming the type and the reason; ``encode_TYPE(value)`` gives the payload to put in a message
(text, or None for blank). JSON payloads are decoded by a msgspec decoder of their type,
built once, and encoded as the existing dispatcher writes them. ``PAYLOAD_CODECS`` has them by type name, ``COMMAND_PAYLOADS`` the request and
reply payload types of each keyword command.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import msgspec

from .codec import FAIL, Fail
from .tables import KTL_TYPES

__all__ = [
    "PayloadError", "PAYLOAD_CODECS", "COMMAND_PAYLOADS", "decode_reply", "encode_reply",
    "decode_text", "encode_text",
    "decode_blank", "encode_blank",
    "decode_empty", "encode_empty",
    "decode_json", "encode_json",
    "decode_units", "encode_units",
    "decode_list", "encode_list",
    "decode_address", "encode_address",
    "decode_yesno", "encode_yesno",
    "decode_ktl_type", "encode_ktl_type",
    "decode_value", "encode_value",
    "decode_time", "encode_time",
    "decode_fail_or_text", "encode_fail_or_text",
]

_KTL_TYPES = frozenset(KTL_TYPES)
_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


class PayloadError(ValueError):
    """A payload that is not of its type: ``payload_type``, ``payload`` and ``reason``."""

    def __init__(self, payload_type: str, payload: Any, reason: str):
        self.payload_type, self.payload, self.reason = payload_type, payload, reason
        super().__init__(f"payload ({payload_type}): {payload!r}: {reason}")


def _text(payload_type: str, payload: Any) -> str:
    if not isinstance(payload, str):
        raise PayloadError(payload_type, payload, "expected text, got " + ("blank" if payload is None else repr(payload)))
    return payload




# -- text: UTF-8 text


def decode_text(payload: "str | Fail | None") -> str:
    """The text of a text payload."""
    return _text('text', payload)


def encode_text(value: str) -> str:
    return _text('text', value)

# -- blank: the blank sentinel (0x01)


def decode_blank(payload: "str | Fail | None") -> None:
    """A payload that must be blank."""
    if payload is not None:
        raise PayloadError('blank', payload, "expected blank")
    return None


def encode_blank(value: None = None) -> None:
    return None

# -- empty: the empty string, an empty frame: what the existing client sends as the payload of every read and units request (a blank payload is read the same)


def decode_empty(payload: "str | Fail | None") -> str:
    """An empty payload (blank is read the same): always ``""``."""
    if payload is None or payload == "":
        return ""
    raise PayloadError('empty', payload, "expected the empty string")


def encode_empty(value: str = "") -> str:
    if value != "":
        raise PayloadError('empty', value, "expected the empty string")
    return ""

# -- json: a JSON document


_JSON_DECODER = msgspec.json.Decoder(Any)


def decode_json(payload: "str | Fail | None") -> "Any":
    """The JSON document of a json payload, typed ``Any``."""
    try:
        return _JSON_DECODER.decode(_text('json', payload))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError('json', payload, str(exc)) from None


def encode_json(value: "Any") -> str:
    """JSON text as the existing dispatcher writes it (Python's json.dumps: non-ASCII escaped,
    ``", "`` and ``": "`` separators), after checking ``value`` against the type."""
    try:
        return json.dumps(msgspec.to_builtins(msgspec.convert(value, Any)))
    except (msgspec.ValidationError, TypeError) as exc:
        raise PayloadError('json', value, str(exc)) from None

# -- units: a keyword's units as JSON: null, a string such as "\u00b0C" (non-ASCII escaped, as the existing dispatcher writes it), or for an enumerated keyword an object mapping integer text to names, {"0": "Off", "1": "On"}


_UNITS_DECODER = msgspec.json.Decoder(None | str | dict[str, str])


def decode_units(payload: "str | Fail | None") -> "None | str | dict[str, str]":
    """The JSON document of a units payload, typed ``None | str | dict[str, str]``."""
    try:
        return _UNITS_DECODER.decode(_text('units', payload))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError('units', payload, str(exc)) from None


def encode_units(value: "None | str | dict[str, str]") -> str:
    """JSON text as the existing dispatcher writes it (Python's json.dumps: non-ASCII escaped,
    ``", "`` and ``": "`` separators), after checking ``value`` against the type."""
    try:
        return json.dumps(msgspec.to_builtins(msgspec.convert(value, None | str | dict[str, str])))
    except (msgspec.ValidationError, TypeError) as exc:
        raise PayloadError('units', value, str(exc)) from None

# -- list: names joined with ':' (no names: the empty string)


def decode_list(payload: "str | Fail | None") -> list[str]:
    """The names of a list payload (':'-joined; blank or empty: none)."""
    if payload is None or payload == "":
        return []
    return [item for item in _text('list', payload).split(':') if item]


def encode_list(names) -> str:
    names = [str(n) for n in names]
    for item in names:
        if ':' in item or not item:
            raise PayloadError('list', item, "a name is empty or holds the separator :")
    return ':'.join(names)

# -- address: a ZMQ address (transport://host:port)


def decode_address(payload: "str | Fail | None") -> str:
    """A ZMQ address, ``transport://endpoint``."""
    if not _ADDRESS.match(_text('address', payload)):
        raise PayloadError('address', payload, "not a transport://endpoint address")
    return payload  # type: ignore[return-value]


def encode_address(value: str) -> str:
    return decode_address(value)

# -- yesno: the text 'yes' or 'no'


_YESNO_VALUES = {'yes': True, 'no': False}


def decode_yesno(payload: "str | Fail | None"):
    """One of yes, no."""
    try:
        return _YESNO_VALUES[_text('yesno', payload)]
    except KeyError:
        raise PayloadError('yesno', payload, "expected one of yes, no") from None


def encode_yesno(value) -> str:
    for text, meaning in _YESNO_VALUES.items():
        if meaning == value and type(meaning) is type(value):
            return text
    raise PayloadError('yesno', value, "has no text")

# -- ktl_type: a KTL type name, or blank for a keyword the dispatcher does not have


def decode_ktl_type(payload: "str | Fail | None") -> "str | None":
    """A KTL type name (lower-cased), or None when blank or empty (the keyword is not there)."""
    if payload is None or payload == "":
        return None
    name = " ".join(_text('ktl_type', payload).lower().split())
    if name not in _KTL_TYPES:
        raise PayloadError('ktl_type', payload, "not a KTL type name")
    return name


def encode_ktl_type(value: "str | None") -> "str | None":
    if value is not None and value not in _KTL_TYPES:
        raise PayloadError('ktl_type', value, "not a KTL type name")
    return value

# -- value: a keyword value in KTL's ascii form (numbers as decimal text, booleans as 0/1, enumerated values as the integer text of their enumerator; see cauldron_proto.ktl), blank for a keyword with no value


def decode_value(payload: "str | Fail | None") -> "str | None":
    """The text of a value payload; None when blank."""
    return None if payload is None else _text('value', payload)


def encode_value(value: "str | None") -> "str | None":
    return None if value is None else _text('value', value)

# -- time: a time stamp as decimal text, seconds since the epoch (the existing dispatcher writes one decimal)


def decode_time(payload: "str | Fail | None") -> float:
    """A number written as decimal text."""
    try:
        return float(_text('time', payload))
    except ValueError:
        raise PayloadError('time', payload, "not a decimal number") from None


def encode_time(value: float) -> str:
    """``value`` with 1 decimal."""
    return f"{float(value):.1f}"

# -- fail_or_text: text, several answers joined with ':', or the fail sentinel (0x02)


def decode_fail_or_text(payload: "str | Fail | None") -> "str | Fail":
    """Text, or :data:`FAIL` (no usable answer)."""
    return FAIL if payload is FAIL else _text('fail_or_text', payload)


def encode_fail_or_text(value: "str | Fail") -> "str | Fail":
    return FAIL if value is FAIL else _text('fail_or_text', value)


#: Decoder and encoder of every payload type, by name.
PAYLOAD_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[..., Any]]] = {
    'text': (decode_text, encode_text),
    'blank': (decode_blank, encode_blank),
    'empty': (decode_empty, encode_empty),
    'json': (decode_json, encode_json),
    'units': (decode_units, encode_units),
    'list': (decode_list, encode_list),
    'address': (decode_address, encode_address),
    'yesno': (decode_yesno, encode_yesno),
    'ktl_type': (decode_ktl_type, encode_ktl_type),
    'value': (decode_value, encode_value),
    'time': (decode_time, encode_time),
    'fail_or_text': (decode_fail_or_text, encode_fail_or_text),
}

#: The request and reply payload types of each keyword command.
COMMAND_PAYLOADS: dict[str, tuple[str, str]] = {
    'update': ('empty', 'value'),
    'modify': ('value', 'value'),
    'identify': ('text', 'ktl_type'),
    'enumerate': ('blank', 'list'),
    'units': ('empty', 'units'),
    'heartbeat': ('text', 'time'),
}


def decode_reply(command: str, payload: "str | Fail | None") -> Any:
    """The typed reply payload of keyword command ``command``."""
    return PAYLOAD_CODECS[COMMAND_PAYLOADS[command][1]][0](payload)


def encode_reply(command: str, value: Any) -> Any:
    """The reply payload of keyword command ``command`` for ``value``."""
    return PAYLOAD_CODECS[COMMAND_PAYLOADS[command][1]][1](value)
