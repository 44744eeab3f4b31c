"""KTL types and the ascii form of values (cauldron_proto.ktl)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cauldron_proto import KTL_TYPES
from cauldron_proto.ktl import (KTLValueError, check_type, enumerator_name, enumerators, from_ascii, infer_type,
                                to_ascii)


@pytest.mark.parametrize("kind, value, text, back", [
    ("integer", 42, "42", 42),
    ("integer", "-7", "-7", -7),
    ("integer", True, "1", 1),
    ("integer", 3.0, "3", 3),
    ("double", 2, "2.0", 2.0),
    ("double", "0.1", "0.1", 0.1),
    ("float", 1e-5, "1e-05", 1e-5),
    ("boolean", True, "1", True),
    ("boolean", "off", "0", False),
    ("boolean", 0, "0", False),
    ("string", "hello world", "hello world", "hello world"),
    ("basic", 12, "12", "12"),
    ("enumerated", 2, "2", 2),
    ("enumerated", "1", "1", 1),
    ("integer array", [1, 2, 3], "1 2 3", [1, 2, 3]),
    ("double array", "1.5, 2", "1.5 2.0", [1.5, 2.0]),
])
def test_round_trip(kind, value, text, back):
    assert to_ascii(value, kind) == text
    assert from_ascii(text, kind) == back


@pytest.mark.parametrize("kind, value", [
    ("integer", "12x"), ("integer", 1.5), ("double", "abc"), ("boolean", "maybe"), ("boolean", 2),
    ("integer array", "1 two"),
])
def test_wrong_values_name_the_type_and_value(kind, value):
    with pytest.raises(KTLValueError) as info:
        to_ascii(value, kind)
    assert kind in str(info.value) and repr(value) in str(info.value)
    assert isinstance(info.value, ValueError)


MODES = {0: "Off", 1: "On", 2: "Standby"}


@pytest.mark.parametrize("value, text", [("Standby", "2"), ("standby", "2"), (2, "2"), ("1", "1"), (" On ", "1")])
def test_enumerated_values_travel_as_integer_text(value, text):
    """As existing Cauldron peers send and expect them: write('Standby') sends 2."""
    assert to_ascii(value, "enumerated", MODES) == text
    assert from_ascii(text, "enumerated", MODES) == int(text)
    assert enumerator_name(int(text), MODES) in MODES.values()


@pytest.mark.parametrize("value", ["Open", 3, "7", True])
def test_enumerated_values_outside_the_enumerators_are_refused(value):
    with pytest.raises(KTLValueError, match="enumerated"):
        to_ascii(value, "enumerated", MODES)


def test_enumerators_from_names_or_a_units_answer():
    assert enumerators(["Off", "On"]) == {0: "Off", 1: "On"}
    assert enumerators({"0": "Off", "2": "Standby"}) == {0: "Off", 2: "Standby"}
    assert enumerators(None) == {} and enumerator_name(5, MODES) == "5"
    with pytest.raises(ValueError, match="not an integer"):
        enumerators({"x": "Off"})


def test_no_value_is_none():
    assert from_ascii(None, "integer") is None and from_ascii("", "string") == ""


def test_received_text_that_does_not_parse():
    with pytest.raises(KTLValueError, match="'4.5' is not a valid integer value"):
        from_ascii("4.5", "integer")


def test_type_names():
    assert check_type("Integer  Array") == "integer array"
    assert all(check_type(name) == name for name in KTL_TYPES)
    with pytest.raises(ValueError, match="'int' is not a KTL type"):
        check_type("int")


@pytest.mark.parametrize("text, kind", [("3", "integer"), ("-3.5", "double"), ("1e3", "double"),
                                        ("on", "string"), ("", "string")])
def test_infer_type(text, kind):
    assert infer_type(text) == kind


@given(st.floats(allow_nan=False))
def test_doubles_survive_the_ascii_form(value):
    assert from_ascii(to_ascii(value, "double"), "double") == value


@given(st.integers(min_value=-2**63, max_value=2**63))
def test_integers_survive_the_ascii_form(value):
    assert from_ascii(to_ascii(value, "integer"), "integer") == value


def test_infinity_is_text():
    assert to_ascii(math.inf, "double") == "inf" and from_ascii("inf", "double") == math.inf
