"""The curve_dispatchers policy file: its format, its errors, reading it again when it changes."""

from __future__ import annotations

import logging
import os

import pytest

from cauldron_proto.config import ConfigError
from cauldron_proto.security.policy import PolicyError, PolicyFile, ServePolicy

EXAMPLE = """\
# key name: services
disp:   SECURE*        # globs, any case
ktest1: ktest, KTEST2
"""


def test_the_example_parses_and_matches_names_and_globs_in_any_case():
    policy = ServePolicy.parse(EXAMPLE, "p.txt")
    assert policy.rules == {"disp": ("SECURE*",), "ktest1": ("KTEST", "KTEST2")}
    assert policy.allows("disp", "SECURE") and policy.allows("disp", "secure_aux")
    assert not policy.allows("disp", "OTHER") and not policy.allows("disp", "XSECURE")
    assert policy.allows("ktest1", "Ktest2") and not policy.allows("ktest1", "KTEST3")
    assert not policy.allows("alice", "SECURE") and not policy.allows(None, "SECURE")
    assert ServePolicy.parse("").rules == {}


@pytest.mark.parametrize("text, line, words", [
    ("disp SECURE\n", 1, "no ':'"),
    ("# ok\n\n : SECURE\n", 3, "not a key name"),
    ("disp:\n", 1, "names no service"),
    ("disp: SECURE\nother: A\ndisp: B\n", 3, "first on line 1"),
    ("disp: SEC/URE\n", 1, "not a service name or glob"),
    ("two words: A\n", 1, "not a key name"),
])
def test_a_malformed_policy_is_an_error_naming_the_line(text, line, words):
    with pytest.raises(PolicyError, match=f"p.txt, line {line}: .*{words}") as info:
        ServePolicy.parse(text, "p.txt")
    assert isinstance(info.value, ConfigError)


def test_the_file_is_read_again_when_it_changes_and_a_bad_version_keeps_the_rules(tmp_path, caplog):
    path = tmp_path / "dispatchers"
    path.write_text("disp: SECURE\n")
    policy = PolicyFile(path)
    assert policy.allows("disp", "SECURE") and not policy.allows("alice", "SECURE")
    path.write_text("disp: SECURE\nalice: SECURE\n")
    assert policy.allows("alice", "SECURE")
    with caplog.at_level(logging.ERROR, logger="cauldron_proto.policy"):
        path.write_text("alice SECURE\n")
        assert policy.allows("alice", "SECURE")  # the rules read before stay
        assert policy.allows("alice", "SECURE")
        os.remove(path)
        assert policy.allows("disp", "SECURE")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "line 1" in errors[0] and "cannot read" in errors[1]
    path.write_text("disp: OTHER\n")
    assert not policy.allows("disp", "SECURE") and policy.allows("disp", "other")


def test_a_missing_or_malformed_file_at_start_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the curve_dispatchers policy"):
        PolicyFile(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.write_text("disp: SECURE\n\nmallory\n")
    with pytest.raises(PolicyError, match=f"{bad}, line 3: "):
        PolicyFile(bad)
