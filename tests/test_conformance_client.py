"""The client suite: the runner plays broker and dispatcher for clients driven by commands.

Our tools (cauldron-show, cauldron-modify, cauldron-monitor) pass it strict; a client
that writes the wrong value fails exactly the write cases; a command missing skips its cases.
"""

from __future__ import annotations

import json
import shlex
import sys

from cauldron_proto.cli import conformance as cli
from cauldron_proto.conformance import load_cases

CASES = load_cases(suite="client")


def tool(name: str, *args: str) -> str:
    return shlex.join([sys.executable, "-c", f"import sys; from cauldron_proto.cli.keywords import {name}; "
                                             f"sys.exit({name}())", *args])


READ = tool("show_main", "-s", "{service}", "--router", "{router}", "--subscribe", "{subscribe}", "--timeout", "1",
            "{keyword}")
WRITE = tool("modify_main", "-s", "{service}", "--router", "{router}", "--timeout", "1", "{keyword}={value}")
MONITOR = tool("monitor_main", "-s", "{service}", "--router", "{router}", "--subscribe", "{subscribe}",
               "--timeout", "1", "--count", "1", "--no-prime", "{keyword}")


def statuses(report) -> dict[str, str]:
    return {r["id"]: r["status"] for r in json.loads(report.read_text())["results"]}


def test_the_client_suite_runs_commands_and_checks_both_levels():
    assert {c.suite for c in CASES} == {"client"} and {c.level for c in CASES} == {"MUST", "SHOULD"}
    assert all(any(name.endswith("_command") for name in c.requires) for c in CASES)


def test_our_tools_pass_strict(tmp_path, capsys):
    report = tmp_path / "report.json"
    status = cli.main(["client", "--read", READ, "--write", WRITE, "--monitor", MONITOR, "--json", str(report),
                       "--strict"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert statuses(report) == {c.id: "pass" for c in CASES}


def test_a_client_writing_the_wrong_value_fails_exactly_the_write_cases(tmp_path, capsys):
    report = tmp_path / "report.json"
    wrong = WRITE.replace("{keyword}={value}", "{keyword}=x{value}")
    status = cli.main(["client", "--read", READ, "--write", wrong, "--json", str(report), "--exclude", "*empty*"])
    out = capsys.readouterr().out
    assert status == 1
    results = statuses(report)
    assert {i for i, s in results.items() if s == "fail"} == {"write.modify", "write.refused"}
    assert results["monitor.broadcast"] == "skipped" and "needs --monitor CMD" in out
    assert 'CDQ", "modify", "xwritten-1"' in out and "run " in out  # actual frames and the command in the log


def test_client_list(capsys):
    assert cli.main(["client", "--list"]) == 0
    assert capsys.readouterr().out.split() == [c.id for c in CASES]
