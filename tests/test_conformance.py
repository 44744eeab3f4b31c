"""The conformance suite: its cases, replayed against the I/O-free routing core (fake clock).

Also proves the suite can fail: cores broken on purpose (no fan-out, a wrong error text)
fail exactly the cases that check what they broke.
"""

from __future__ import annotations

import re

import pytest

from cauldron_proto import MESSAGE_KINDS, TEXTS, Direction, decode, encode
from cauldron_proto.conformance import load_cases, run_suite_on_core
from cauldron_proto.conformance.case_format import SETTINGS, step_frames
from cauldron_proto.broker.core import BrokerCore

from .conftest import golden

CASES = load_cases()
#: Texts no portable case can reach: the limits of our broker (10,000 requests in flight at one
#: dispatcher, the size of a message, a dispatcher's queue, a closed connection seen at once),
#: not protocol behaviour; tests/test_broker_limits.py and the routing core's tests hold them.
#: And texts no case can hold: the key rules' refusals need CURVE connections, which the
#: suite's peers do not make (tests/test_broker_core_keys.py and tests/test_security_keys.py).
UNREACHABLE_TEXTS = {"dispatcher_busy", "over_limit", "dispatcher_not_reading", "dispatcher_gone",
                     "name_held", "dispatcher_owned_by_another_key", "key_may_not_serve"}
PUBSUB = {c.id for c in CASES if any(p.socket in ("SUB", "PUB") for p in c.peers.values())}


def make_core(lookup: str, timeout: float) -> BrokerCore:
    return BrokerCore(lookup, timeout=timeout)


def failing(results) -> set[str]:
    return {r.id for r in results if r.status in ("fail", "timeout", "error")}


def test_the_suite_has_enough_cases_with_unique_ids_and_crash_risks_last():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    risks = [c.crash_risk for c in CASES]
    assert risks == sorted(risks) and any(risks)
    assert {c.level for c in CASES} == {"MUST", "SHOULD"}
    assert all(c.recorded_from or c.generated_from for c in CASES), "every case comes from a recording or the spec"
    assert {c.generated_from.rsplit(".", 1)[1] for c in CASES if c.generated_from} == {
        e["name"] for e in golden("invalid.json")}  # every frame list every decoder must refuse


def test_every_message_kind_and_every_text_is_covered():
    covered = set().union(*(c.covers for c in CASES))
    assert set(MESSAGE_KINDS) <= covered
    assert set(TEXTS) - UNREACHABLE_TEXTS <= covered


@pytest.mark.parametrize("name", sorted(set(TEXTS) - UNREACHABLE_TEXTS))
def test_a_case_covering_a_text_holds_that_text(name):
    """The text's fixed parts appear in a frame (or pattern) of a case that claims to cover it."""
    template = TEXTS[name]
    pattern = ".*".join(re.escape(part) for part in re.split(r"\{[a-z_]+\}", template))
    holders = [c for c in CASES if name in c.covers]
    assert holders, name
    written = [repr(spec) for case in holders for step in case.steps for spec in step_frames(step)]
    assert any(re.search(pattern, text) for text in written), (name, pattern)


def test_the_suite_passes_on_the_routing_core():
    results = run_suite_on_core(make_core, heartbeat_timeout=1.0)
    assert failing(results) == set()
    skipped = {r.id: r.reason for r in results if r.status == "skipped"}
    assert set(skipped) == PUBSUB
    assert all("pub/sub" in reason for reason in skipped.values())


def test_heartbeat_cases_run_on_the_core_with_any_period():
    results = run_suite_on_core(make_core, heartbeat_timeout=7.5, keep=["heartbeat.*"])
    assert len(results) >= 5 and {r.status for r in results} == {"pass"}


class BrokenCore:
    """A real core whose output is altered on its way out, as a broken broker's would be."""

    def __init__(self, lookup: str, timeout: float, alter):
        self.core, self.alter = BrokerCore(lookup, timeout=timeout), alter

    def next_deadline(self):
        return self.core.next_deadline()

    def handle(self, peer, frames, now):
        return self._out(self.core.handle(peer, frames, now))

    def tick(self, now):
        return self._out(self.core.tick(now))

    def _out(self, outputs):
        altered = []
        for output in outputs:
            message = decode(output)
            changed = self.alter(message)
            if changed is not None:
                altered.append(encode(changed))
        return altered


def no_fanout(message):
    return None if message.direction == Direction.SDQ else message


def wrong_unknown_command_text(message):
    if message.payload == "unknown command":
        return message.replace(payload="Unknown command")
    return message


def test_a_core_without_fanout_fails_exactly_the_fanout_cases():
    results = run_suite_on_core(lambda lookup, t: BrokenCore(lookup, t, no_fanout))
    assert failing(results) == {
        "fanout.one-dispatcher", "fanout.two-answers-joined", "fanout.none-usable-is-fail",
        "fanout.one-usable-of-two", "fanout.identify-cache", "heartbeat.expiry-completes-fanout",
        "helpers.client-read-write", "helpers.keywords-units-locate", "tools.show-modify",  # they identify first
        "reference.read-empty-payload", "reference.write-values-and-refusal", "reference.identify-miss",
        "reference.identify-cache-second-client", "reference.enumerate-units-types",
        "reference.dispatcher-error-relayed",
    }
    timed_out = next(r for r in results if r.id == "fanout.one-dispatcher")
    assert timed_out.status == "timeout" and "'dispatcher' got nothing" in timed_out.reason
    assert [e.what for e in timed_out.wire][:2] == ["send", "recv"]


def test_a_core_with_a_wrong_error_text_fails_exactly_the_cases_with_that_text():
    results = run_suite_on_core(lambda lookup, t: BrokenCore(lookup, t, wrong_unknown_command_text))
    assert failing(results) == {"client.unknown-command", "dispatcher.unknown-command",
                                "reference.lookup-locate-unknown-command"}
    result = next(r for r in results if r.id == "client.unknown-command")
    assert result.status == "fail" and result.level == "MUST"
    assert '"unknown command"' in " ".join(result.expected[0])
    assert '"Unknown command"' in result.actual


def test_a_core_that_raises_fails_the_case_with_the_reason():
    class Crashing(BrokerCore):
        def handle(self, peer, frames, now):
            if len(frames) < 8:
                raise IndexError("list index out of range")
            return super().handle(peer, frames, now)

    results = run_suite_on_core(lambda lookup, t: Crashing(lookup, timeout=t), keep=["robust.*"])
    crashed = {r.id: r.reason for r in results if r.status == "fail"}
    assert crashed.keys() == {"robust.one-frame", "robust.spec-no-frames", "robust.spec-three-frames",
                              "robust.spec-six-frames", "robust.no-delimiter"}
    assert all("core.handle() raised IndexError" in reason for reason in crashed.values())


def test_settings_a_case_may_require_or_read_are_the_runner_options():
    assert set(SETTINGS) == {"heartbeat_timeout", "lookup"}
    read = {v.setting for c in CASES for v in c.vars.values() if v.setting}
    assert {name for c in CASES for name in c.requires} | read == set(SETTINGS)


def test_a_failed_case_carries_its_known_defect_and_a_passed_one_does_not():
    from cauldron_proto.conformance.loading import parse_case

    def inquiry(answer):
        return parse_case({
            "id": f"x.{answer.lower().replace(' ', '-')}", "description": "d", "level": "SHOULD",
            "defect": "existing Cauldron broker, PROTOCOL-NOTES 6.0: made up", "vars": {"ID": {"random": "identifier"}},
            "peers": {"c": {"socket": "DEALER"}},
            "steps": [{"send": "c", "frames": ["", "\x01", "\x01", "\x01", "UBQ", "check", "\x01", "${ID}"]},
                      {"expect": "c", "frames": ["", "\x01", "\x01", "\x01", "UBP", "check", answer, "${ID}"]}]},
            "x.yaml")

    results = run_suite_on_core(make_core, cases=[inquiry("Broker Alive"), inquiry("Not Alive")])
    assert [(r.status, r.defect) for r in results] == [
        ("pass", None), ("fail", "existing Cauldron broker, PROTOCOL-NOTES 6.0: made up")]
