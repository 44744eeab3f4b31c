"""KTL keyword types and their ascii form, shared by the client and dispatcher helpers.

Keyword values travel as KTL "ascii" text: numbers as their decimal text, booleans as
``0``/``1``, enumerated values as the integer text of their enumerator (existing Cauldron
peers send and expect ``2`` for ``Standby``; the names come from the keyword's ``units``
answer, a JSON object mapping integer text to names), arrays as their elements separated by
spaces. The Python ("binary") value of a keyword follows its KTL type: ``int`` for
``integer`` and ``enumerated``, ``float`` for ``double``/``float``, ``bool`` for ``boolean``,
``list`` for arrays, ``str`` for the rest (``basic``, ``string``, ``mask``).

``to_ascii(value, ktl_type)`` gives the text to send, ``from_ascii(text, ktl_type)`` the
Python value of received text; both raise :class:`KTLValueError` (a ``ValueError``) naming
the type and the value. ``infer_type(text)`` guesses a type for a value typed by a person.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

from .protocol import KTL_TYPES, Text

__all__ = ["KTL_TYPES", "KTLValueError", "check_type", "to_ascii", "from_ascii", "infer_type",
           "enumerators", "enumerator_name", "ARRAY_TYPES", "NUMERIC_TYPES", "UNKNOWN_KEYWORD",
           "WRITE_REFUSED"]

#: A dispatcher's error reply to a command about a keyword it does not have (from the spec).
UNKNOWN_KEYWORD = Text.UNKNOWN_KEYWORD
#: A dispatcher's error reply to a write its validation refused (from the spec).
WRITE_REFUSED = Text.WRITE_REFUSED

#: Array types, by the KTL type of their elements.
ARRAY_TYPES = {"integer array": "integer", "double array": "double", "float array": "float"}
#: Scalar numeric types.
NUMERIC_TYPES = frozenset({"integer", "double", "float"})
_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})


class KTLValueError(ValueError):
    """A value that cannot be given the KTL type asked for; names the type and the value."""

    def __init__(self, ktl_type: str, value: Any, reason: str = ""):
        self.ktl_type, self.value = ktl_type, value
        text = f"{value!r} is not a valid {ktl_type} value"
        super().__init__(f"{text}: {reason}" if reason else text)


def check_type(ktl_type: str) -> str:
    """The KTL type name, lower-cased; ValueError for a name that is not one of KTL_TYPES."""
    name = " ".join(str(ktl_type).lower().split())
    if name not in KTL_TYPES:
        raise ValueError(f"{ktl_type!r} is not a KTL type (one of: {', '.join(KTL_TYPES)})")
    return name


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    return int(str(value).strip())


def _double(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return float(str(value).strip())


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected 0/1, true/false, yes/no or on/off")


def enumerators(names: Any) -> dict[int, str]:
    """An enumerated keyword's enumerators, integer -> name, from a list of names (index is
    the integer), a mapping of integers (or their text, as a ``units`` answer has them) to
    names, or None (no names known)."""
    if names is None:
        return {}
    items = names.items() if isinstance(names, Mapping) else enumerate(names)
    out: dict[int, str] = {}
    for number, name in items:
        try:
            out[int(number)] = str(name)
        except (TypeError, ValueError):
            raise ValueError(f"enumerator {number!r} is not an integer") from None
    return out


def enumerator_name(value: int, names: Mapping[int, str]) -> str:
    """The name of enumerator ``value`` (its integer text when it has none)."""
    return names.get(value, str(value))


def _enumerated(value: Any, names: Mapping[int, str]) -> int:
    """An enumerator: an integer (or its text), or a name (any case) when names are known."""
    if isinstance(value, bool):
        raise ValueError("expected an enumerator, not a boolean")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        by_name = {name.lower(): n for n, name in names.items()}
        if text.lower() in by_name:
            return by_name[text.lower()]
        try:
            number = int(text)
        except ValueError:
            known = ", ".join(f"{n}={name}" for n, name in sorted(names.items()))
            raise ValueError(f"not an enumerator ({known})" if known else "not an enumerator number") from None
    if names and number not in names:
        raise ValueError(f"{number} is not one of {', '.join(map(str, sorted(names)))}")
    return number


def _float_text(value: float) -> str:
    return repr(value) if math.isfinite(value) else str(value)


_SCALARS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], str]]] = {
    "integer": (_integer, str),
    "double": (_double, _float_text),
    "float": (_double, _float_text),
    "boolean": (_boolean, lambda b: "1" if b else "0"),
}


def _elements(value: Any) -> Iterable[Any]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    try:
        return list(value)
    except TypeError:
        raise ValueError("expected a sequence or space-separated text") from None


def from_ascii(text: "str | None", ktl_type: str = "basic", names: "Mapping[int, str] | None" = None) -> Any:
    """The Python value of ``text`` (KTL ascii form) for ``ktl_type``; None for no value.

    ``names``: an enumerated keyword's enumerators (:func:`enumerators`).
    """
    kind = check_type(ktl_type)
    if text is None:
        return None
    try:
        if kind == "enumerated":
            return _enumerated(text, names or {})
        if kind in _SCALARS:
            return _SCALARS[kind][0](text)
        if kind in ARRAY_TYPES:
            parse = _SCALARS[ARRAY_TYPES[kind]][0]
            return [parse(item) for item in _elements(text)]
    except (ValueError, TypeError) as exc:
        raise KTLValueError(kind, text, str(exc)) from None
    return text


def to_ascii(value: Any, ktl_type: str = "basic", names: "Mapping[int, str] | None" = None) -> str:
    """The KTL ascii text of ``value`` for ``ktl_type`` (checked: '12x' is no integer).

    ``names``: an enumerated keyword's enumerators; a name is sent as its integer text.
    """
    kind = check_type(ktl_type)
    try:
        if kind == "enumerated":
            return str(_enumerated(value, names or {}))
        if kind in _SCALARS:
            parse, show = _SCALARS[kind]
            return show(parse(value))
        if kind in ARRAY_TYPES:
            parse, show = _SCALARS[ARRAY_TYPES[kind]]
            return " ".join(show(parse(item)) for item in _elements(value))
    except (ValueError, TypeError, OverflowError) as exc:
        raise KTLValueError(kind, value, str(exc)) from None
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def infer_type(text: str) -> str:
    """A KTL type for a value typed by a person: integer, double or string."""
    for kind, parse in (("integer", int), ("double", float)):
        try:
            parse(text.strip())
        except ValueError:
            continue
        return kind
    return "string"
