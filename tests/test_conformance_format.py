"""The case format: frames, variables, deadlines, validation errors, reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from cauldron_proto.conformance.engine import Result, Settings, WireEvent, fresh_env
from cauldron_proto.conformance.frames import CaseError, FramePattern, match_frames, render, show
from cauldron_proto.conformance.report import details, failed, to_json, to_junit
from cauldron_proto.conformance.case_format import seconds
from cauldron_proto.conformance.loading import parse_case


def case(steps, peers=None, **extra):
    raw = {"id": "t.case", "description": "test", "level": "MUST",
           "peers": peers or {"c": {"socket": "DEALER"}}, "steps": steps, **extra}
    return parse_case(raw, "test.yaml")


def test_text_frames_render_variables_case_changes_and_sentinels():
    env = {"S": b"KTest_1", "ID": b"\x00\xff"}
    assert render("${S}.${S:upper}.${S:lower}", env) == b"KTest_1.KTEST_1.ktest_1"
    assert render("\x01", env) == b"\x01" and render("", env) == b""
    assert render("$$5", env) == b"$5"
    assert render(FramePattern(hex="c328"), env) == b"\xc3\x28"
    assert render("${ID}", env) == b"\x00\xff"
    with pytest.raises(CaseError, match="'NOPE' is not bound"):
        render("${NOPE}", env)


def test_patterns_bind_match_and_offer_alternatives():
    env = {"S": b"K.1"}
    specs = ["${S}", FramePattern(bind="X"), FramePattern(one_of=["a", "b"]),
             FramePattern(match=r"tcp://.+:\d+"), FramePattern(match="${S}!"), FramePattern(any=True)]
    bound, reason = match_frames(specs, [b"K.1", b"\x07", b"b", b"tcp://h:1", b"K.1!", b"\xff"], env)
    assert (bound, reason) == ({"X": b"\x07"}, "")
    # the variable inside a regex is escaped: "K.1" does not match "Kx1"
    assert match_frames([FramePattern(match="${S}")], [b"Kx1"], env)[0] is None
    assert match_frames([FramePattern(bind="S")], [b"other"], env)[1].startswith("frame 0: expected ${S}")
    assert match_frames(["a"], [b"a", b"b"], env) == (None, "expected 1 frames, got 2")


def test_frames_show_as_text_with_escapes_or_hex():
    assert show(b"KTEST") == '"KTEST"'
    assert show(b"\x01") == '"\\x01"'
    assert show(b'say "hi"') == '"say \\"hi\\""'
    assert show(b"\xc3\x28") == "hex:c328"
    assert show(bytes(range(16))) == "hex:" + bytes(range(16)).hex()


def test_deadlines_are_seconds_or_multiples_of_the_heartbeat_timeout():
    assert seconds(2, None) == 2.0
    assert seconds("5T + 1", 0.2) == pytest.approx(2.0)
    assert seconds("2T", 3.0) == 6.0
    with pytest.raises(CaseError, match="needs the heartbeat timeout"):
        seconds("2T", None)
    with pytest.raises(CaseError, match="is not seconds"):
        seconds("soon", 1.0)


def test_deadlines_may_name_the_protocols_expiry_and_liveness():
    """``EXPIRY`` and ``LIVENESS`` are the spec's constants in heartbeat periods, so a case
    waiting past the expiry follows the spec when the multiple changes."""
    from cauldron_proto import DISPATCHER_LIVENESS, EXPIRY_MULTIPLE

    assert seconds("EXPIRY + 2T + 1", 0.2) == pytest.approx((EXPIRY_MULTIPLE + 2) * 0.2 + 1)
    assert seconds("LIVENESS + 3 * T + 2", 0.5) == pytest.approx((DISPATCHER_LIVENESS + 3) * 0.5 + 2)
    assert seconds("2 EXPIRY", 1.0) == 2 * EXPIRY_MULTIPLE
    with pytest.raises(CaseError, match="needs the heartbeat timeout"):
        seconds("EXPIRY", None)
    with pytest.raises(CaseError, match="not seconds or a sum"):
        seconds("EXPIRY + later", 1.0)


def test_fresh_variables_differ_per_run_and_settings_become_variables():
    c = case([{"send": "c", "frames": ["${S}", "${ID}", "${settings.lookup}"]}],
             vars={"S": {"random": "name", "prefix": "KTEST_"}, "ID": {"random": "identifier"}},
             requires=["lookup"])
    one, two = fresh_env(c, Settings(lookup="tcp://x:1")), fresh_env(c, Settings(lookup="tcp://x:1"))
    assert one["S"] != two["S"] and one["S"].startswith(b"KTEST_") and one["S"].isupper()
    assert len(one["ID"]) == 16 and one["settings.lookup"] == b"tcp://x:1"


@pytest.mark.parametrize("steps, peers, extra, message", [
    ([{"send": "nobody", "frames": ["a"]}], None, {}, "no peer named 'nobody'"),
    ([{"send": "c", "frames": ["${X}"]}], None, {}, "variable 'X' is not declared"),
    ([{"send": "c", "frames": ["${settings.lookup}"]}], None, {}, "add it to requires"),
    ([{"expect": "c", "frames": ["a"], "within": "2T"}], None, {}, "heartbeat_timeout"),
    ([{"send": "r", "frames": ["a"]}, {"send": "r", "frames": ["b"]}], {"r": {"socket": "REQ"}}, {},
     "sends again before its reply"),
    ([{"send": "s", "frames": ["a"]}], {"s": {"socket": "SUB"}}, {}, "a SUB peer ('s') cannot"),
    ([{"expect": "c", "frames": [{"match": "("}]}], None, {}, "bad regular expression"),
    ([{"send": "c", "frames": [{"hex": "zz"}]}], None, {}, "is not hex"),
    ([{"send": "c", "frames": [{"bind": "X"}]}], None, {}, "a frame to send"),
    ([{"send": "c", "expect": "c", "frames": []}], None, {}, "exactly one of"),
    ([{"expect": "c"}], None, {}, "expect needs frames or one_of"),
    ([{"send": "c", "frames": [42]}], None, {}, "Expected `str"),
    ([{"send": "c", "frames": ["a"]}], None, {"id": "Bad Id"}, "must be lower-case"),
    ([{"send": "c", "frames": ["a"]}], None, {"level": "MAY"}, "Invalid enum value 'MAY' - at `$.level`"),
])
def test_bad_cases_are_refused_naming_the_file_and_the_problem(steps, peers, extra, message):
    with pytest.raises(CaseError) as info:
        case(steps, peers, **extra)
    assert message in str(info.value) and str(info.value).startswith("test.yaml")


def test_a_bound_variable_is_usable_after_the_expect_that_binds_it():
    c = case([{"expect": "c", "frames": [{"bind": "B"}]}, {"send": "c", "frames": ["${B}"]}])
    assert len(c.steps) == 2
    with pytest.raises(CaseError, match="'B' is not declared or bound"):
        case([{"expect": "c", "frames": [{"bind": "B"}], "optional": True}, {"send": "c", "frames": ["${B}"]}])


def _results():
    wire = [WireEvent(0.0, "c", "send", ['"x"'])]
    return [Result("a.ok", "MUST", "pass", seconds=0.1),
            Result("b.should", "SHOULD", "fail", "got something else", 0.2, 3, [['"x"']], ['"y"'], wire),
            Result("c.skip", "MUST", "skipped", "needs --lookup")]


def test_exit_rule_must_failures_always_should_failures_with_strict():
    results = _results()
    assert not failed(results, strict=False) and failed(results, strict=True)
    results[0].status = "timeout"
    assert failed(results, strict=False)


def test_reports_show_expected_actual_and_wire_log_and_write_json_and_junit():
    results = _results()
    text = details(results[1])
    assert 'expected: ["x"]' in text and 'actual:   ["y"]' in text and "send  [\"x\"]" in text
    data = json.loads(to_json(results, Settings(router="tcp://r:1")))
    assert data["summary"] == {"pass": 1, "fail": 1, "skipped": 1}
    assert data["results"][1]["expected"] == [['"x"']]
    suite = ET.fromstring(to_junit(results))
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    failure = suite.find("testcase[@name='b.should']/failure")
    assert failure.get("message") == "got something else" and "wire log" in failure.text


def test_json_frames_and_settings_variables():
    assert match_frames([FramePattern(json=True)], [b'{"0": "Off"}'], {})[0] == {}
    assert "expected a JSON document" in match_frames([FramePattern(json=True)], [b"{0: Off}"], {})[1]
    both = FramePattern(json=True, match=r"\{.*\}", bind="U")
    assert match_frames([both], [b"null"], {})[0] is None
    assert match_frames([both], [b"{}"], {})[0] == {"U": b"{}"}
    c = case([{"send": "c", "frames": ["x"]}, {"expect": "c", "frames": [{"bind": "L"}]}],
             vars={"L": {"setting": "lookup"}})
    assert "L" not in fresh_env(c, Settings())  # unbound: the {bind: L} captures it
    assert fresh_env(c, Settings(lookup="tcp://h:1"))["L"] == b"tcp://h:1"  # bound: it must equal it


def test_validation_of_settings_addresses_and_suites():
    with pytest.raises(CaseError, match="exactly one of random, value or setting"):
        case([{"send": "c", "frames": ["x"]}], vars={"L": {"setting": "lookup", "value": "x"}})
    with pytest.raises(CaseError, match="no setting 'nope'"):
        case([{"send": "c", "frames": ["x"]}], vars={"L": {"setting": "nope"}})
    with pytest.raises(CaseError, match="variable 'L' is not declared or bound"):
        case([{"send": "c", "frames": ["${L}"]}], vars={"L": {"setting": "lookup"}})
    lazy = {"c": {"socket": "DEALER"}, "s": {"socket": "SUB", "address": "${A}"}}
    with pytest.raises(CaseError, match="opens peer 's' at its address.*'A' is not declared or bound"):
        case([{"expect": "s", "frames": ["x"]}], peers=lazy, vars={"A": {"setting": "lookup"}})
    case([{"expect": "c", "frames": [{"bind": "A"}]}, {"expect": "s", "frames": ["x"]}], peers=lazy,
         vars={"A": {"setting": "lookup"}})
    with pytest.raises(CaseError, match="a broker case's peers are REQ, DEALER, SUB, PUB"):
        case([{"send": "r", "frames": ["x"]}], peers={"r": {"socket": "ROUTER"}})
    with pytest.raises(CaseError, match="a dispatcher case's peers are ROUTER, XSUB"):
        case([{"send": "c", "frames": ["x"]}], suite="dispatcher")
    with pytest.raises(CaseError, match="only a dispatcher case is an opening case"):
        case([{"send": "c", "frames": ["x"]}], opening=True)
    with pytest.raises(CaseError, match="requires 'keyword': a broker case may require heartbeat_timeout, lookup"):
        case([{"send": "c", "frames": ["x"]}], requires=["keyword"])
    d = case([{"send": "r", "frames": ["${settings.service}", "${settings.keyword}"]}],
             peers={"r": {"socket": "ROUTER", "role": "broker"}}, suite="dispatcher", requires=["keyword"])
    assert d.suite == "dispatcher"


def test_a_known_defect_is_named_in_reports_of_failed_cases_only():
    failed_one = Result("a", "SHOULD", "fail", reason="differs", defect="existing broker, 6.6: twice")
    text = details(failed_one)
    assert "known defect: existing broker, 6.6: twice" in text
    from cauldron_proto.conformance.report import by_level, row, summary
    assert "[known defect: existing broker, 6.6: twice]" in row(failed_one)
    passed = Result("b", "MUST", "pass")
    assert summary([failed_one, passed]) == "1 passed, 1 failed (1 of them known defects)"
    assert by_level([failed_one, passed]) == {"SHOULD": {"passed": 0, "failed": 1, "skipped": 0, "known_defects": 1},
                                              "MUST": {"passed": 1, "failed": 0, "skipped": 0, "known_defects": 0}}


def test_client_steps_run_and_finish_are_checked():
    client = {"b": {"socket": "ROUTER", "role": "broker"}}
    ok = case([{"run": "read"}, {"finish": "read", "status": "nonzero", "output": {"match": "x"}}],
              peers=client, suite="client", requires=["read_command"])
    assert [type(s).__name__ for s in ok.steps] == ["Run", "Finish"]
    with pytest.raises(CaseError, match="a client case that requires read_command runs 'read'"):
        case([{"run": "read"}], peers=client, suite="client")
    with pytest.raises(CaseError, match="'read' finishes before it runs"):
        case([{"finish": "read"}], peers=client, suite="client", requires=["read_command"])
    with pytest.raises(CaseError, match="'read' runs again before it finished"):
        case([{"run": "read"}, {"run": "read"}], peers=client, suite="client", requires=["read_command"])
