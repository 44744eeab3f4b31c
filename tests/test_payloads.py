"""The generated typed payload codecs (cauldron_proto.payloads) and the spec entries behind them."""

from __future__ import annotations

import pytest

from cauldron_proto import FAIL, KEYWORD_COMMANDS, PAYLOAD_TYPES
from cauldron_proto import payloads as p

from .conftest import golden

RECORDED = golden("recorded.json")


@pytest.mark.parametrize("payload, value", [
    ('"\\u00b0C"', "\u00b0C"), ("null", None), ('{"0": "Off", "1": "On", "2": "Standby"}', {"0": "Off", "1": "On", "2": "Standby"}),
])
def test_units_as_the_existing_dispatcher_writes_them(payload, value):
    assert p.decode_units(payload) == value
    assert p.encode_units(value) == payload  # non-ASCII escaped, Python's separators


@pytest.mark.parametrize("payload", ["5", "[1]", '{"0": 1}', "not json", None, FAIL])
def test_units_of_another_shape_are_refused_naming_the_type(payload):
    with pytest.raises(p.PayloadError, match=r"payload \(units\)"):
        p.decode_units(payload)


def test_lists_yes_no_addresses_times_and_types():
    assert p.decode_list("BOOL:COUNTER") == ["BOOL", "COUNTER"] and p.decode_list("") == [] == p.decode_list(None)
    assert p.encode_list(["A", "B"]) == "A:B" and p.encode_list([]) == ""
    with pytest.raises(p.PayloadError):
        p.encode_list(["A:B"])
    assert (p.decode_yesno("yes"), p.decode_yesno("no"), p.encode_yesno(True), p.encode_yesno(False)) == (True, False, "yes", "no")
    with pytest.raises(p.PayloadError, match="expected one of yes, no"):
        p.decode_yesno("maybe")
    assert p.decode_address("tcp://127.0.0.1:6511") == "tcp://127.0.0.1:6511"
    with pytest.raises(p.PayloadError, match="address"):
        p.decode_address("localhost:6511")
    assert p.encode_time(1796148549.123) == "1796148549.1" and p.decode_time("1796148549.1") == 1796148549.1
    assert p.decode_ktl_type("Integer Array") == "integer array" and p.decode_ktl_type(None) is None
    with pytest.raises(p.PayloadError, match="not a KTL type"):
        p.decode_ktl_type("int")
    assert p.decode_empty("") == "" == p.decode_empty(None) and p.encode_empty() == ""
    assert p.decode_value(None) is None and p.decode_fail_or_text(FAIL) is FAIL


def test_every_payload_type_and_keyword_command_has_codecs():
    assert set(p.PAYLOAD_CODECS) == set(PAYLOAD_TYPES)
    assert set(p.COMMAND_PAYLOADS) == set(KEYWORD_COMMANDS)
    assert p.decode_reply("units", "null") is None and p.encode_reply("enumerate", ["A"]) == "A"


@pytest.mark.parametrize("case", [c for c in RECORDED if c["decoded"]["command"] in p.COMMAND_PAYLOADS
                                  and c["decoded"]["direction"] in ("CDP", "SDP", "CDQ")],
                         ids=lambda c: c["source"])
def test_the_existing_peers_payloads_decode_as_their_types(case):
    """Each request and reply payload the existing client and dispatcher sent is of the type
    the spec gives its command (and the dispatcher's are encoded back the same)."""
    fields = case["decoded"]
    request_type, reply_type = p.COMMAND_PAYLOADS[fields["command"]]
    payload = fields["payload"]
    if fields["direction"] == "CDQ":
        p.PAYLOAD_CODECS[request_type][0](payload)
    elif fields["command"] != "identify" or fields["direction"] == "SDP":
        decode, encode = p.PAYLOAD_CODECS[reply_type]
        assert encode(decode(payload)) == payload


def test_every_payload_type_has_its_pair_by_name_and_every_format_a_reader():
    """The spec's payload types are data; each has ``decode_TYPE``/``encode_TYPE`` here, and
    each format the spec checker accepts has its class in the hand-written module."""
    from cauldron_proto.protocol.payloads import FORMATS
    from codegen.spec import PAYLOAD_FORMATS as SPEC_FORMATS

    for name, codec in p.PAYLOAD_CODECS.items():
        assert (getattr(p, f"decode_{name}"), getattr(p, f"encode_{name}")) == codec, name
        assert f"decode_{name}" in p.__all__ and f"encode_{name}" in p.__all__
    assert set(FORMATS) == set(SPEC_FORMATS)
