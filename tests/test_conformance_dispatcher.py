"""The dispatcher suite: the runner plays the broker for our dispatchers; it can fail.

``cauldron-dispatcher`` (started by the suite with --command) and ``dispatcher.Service``
(started in-process on the addresses the suite bound) pass it strict; dispatchers broken on
purpose fail exactly the cases that check what they broke; a dispatcher that never comes
fails every case.
"""

from __future__ import annotations

import json
import shlex
import sys
from contextlib import ExitStack

import pytest
import zmq

from cauldron_proto import Direction, dispatcher
from cauldron_proto.cli import conformance as cli
from cauldron_proto.conformance import Settings, load_cases
from cauldron_proto.conformance.dispatcher_link import run_dispatcher_suite

T = 0.3  # the dispatchers' heartbeat period: the silent-broker case waits a few T
CASES = load_cases(suite="dispatcher")
NEEDS_ENUMERATED = {c.id for c in CASES if "enumerated" in c.requires}


def failing(results) -> set[str]:
    return {r.id for r in results if r.status in ("fail", "timeout", "error")}


def test_the_dispatcher_suite_has_opening_first_and_both_levels():
    assert CASES[0].opening and CASES[0].id == "registration.welcome-then-ready"
    assert sum(c.opening for c in CASES) == 1
    assert {c.level for c in CASES} == {"MUST", "SHOULD"} and len(CASES) >= 15
    assert all(c.suite == "dispatcher" for c in CASES)
    assert all(c.defect for c in CASES if c.level == "SHOULD" and c.id.startswith(("errors.", "liveness.")))
    assert not {c.id for c in load_cases()} & {c.id for c in CASES}, "the broker suite holds no dispatcher case"
    assert all(c.recorded_from and c.recorded_from.startswith("reference/") for c in CASES), \
        "every dispatcher case was seen in the existing dispatcher's traffic"


def test_cauldron_dispatcher_passes_strict_started_by_the_suite(tmp_path, capsys):
    tool = shlex.join([sys.executable, "-c", "import sys; from cauldron_proto.cli.keywords import dispatcher_main; "
                                             "sys.exit(dispatcher_main())"])
    command = (f"{tool} -s testsvc -n disp1 --router {{router}} --publish {{publish}} --timeout {T} "
               "-k NAME:string=hello -k COUNT:integer=1 -k MODE:enumerated=On --enumerators MODE=Off,On,Standby")
    report = tmp_path / "report.json"
    status = cli.main(["dispatcher", "--command", command, "--heartbeat-timeout", str(T), "--write",
                       "NAME=written-1", "--refuse", "COUNT=abc", "--strict", "--json", str(report)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.splitlines()[0].startswith("router tcp://127.0.0.1:")
    summary = json.loads(report.read_text())["summary"]
    assert NEEDS_ENUMERATED and summary == {"pass": len(CASES)}  # an enumerated keyword too: nothing skipped


def _run_in_process(alter_answer=None, keep=None, record=None):
    """The suite against a dispatcher.Service whose replies ``alter_answer(reply)`` may change."""
    import cauldron_proto.dispatcher.service as service_module

    context = zmq.Context()
    real_finish = service_module.finish
    try:
        if alter_answer is not None:
            def altered(*args):
                done = real_finish(*args)
                return done._replace(reply=alter_answer(done.reply))

            service_module.finish = altered
        with ExitStack() as stack:
            def bound(endpoints):
                svc = dispatcher.Service("testsvc", {"broker": endpoints["router"], "publish": endpoints["publish"],
                                                     "timeout": str(T)}, "disp1", start=False, context=context)
                svc.add_keyword("NAME", "string", "hello")
                svc.add_keyword("COUNT", "integer", 1)
                svc.add_keyword("MODE", "enumerated", 1, enumerators=["Off", "On", "Standby"])
                svc.begin()
                stack.callback(svc.shutdown)

            settings = Settings(heartbeat_timeout=T, write_keyword="NAME", write_value="written-1",
                                refuse_keyword="COUNT", refuse_value="abc")
            return run_dispatcher_suite(settings, on_bound=bound, keep=keep, record=record)
    finally:
        service_module.finish = real_finish
        context.term()


def test_dispatcher_service_passes_in_process():
    results = _run_in_process()
    assert failing(results) == set()
    assert {r.status for r in results} == {"pass"}  # an enumerated keyword too: nothing skipped


def _blank_name_in_fanout_replies(reply):
    if reply.direction in (Direction.SDP, Direction.SDE):
        return reply.replace(dispatcher=None)
    return reply


def _unknown_command_answered_as_a_reply(reply):
    if reply.command == "frobnicate":
        return reply.replace(direction=Direction.CDP if reply.direction == Direction.CDE else Direction.SDP)
    return reply


@pytest.mark.parametrize("alter, broken", [
    (_blank_name_in_fanout_replies, {"request.identify-own-keyword", "request.identify-missing-keyword",
                                     "request.enumerate", "request.fanout-update",
                                     "errors.fanout-error-names-dispatcher"}),
    (_unknown_command_answered_as_a_reply, {"errors.unknown-command", "errors.unknown-command-text",
                                            "errors.fanout-error-names-dispatcher"}),
])
def test_a_broken_dispatcher_fails_exactly_the_cases_it_breaks(alter, broken):
    results = _run_in_process(alter)
    assert failing(results) == broken
    failed = next(r for r in results if r.id == sorted(broken)[0])
    assert failed.expected and failed.actual and failed.wire


def test_a_dispatcher_that_never_comes_fails_every_case(capsys):
    status = cli.main(["dispatcher", "--startup-timeout", "0.2", "-k", "request.*"])
    out = capsys.readouterr().out
    assert status == 1
    assert "waiting for the dispatcher" in out
    assert "ERROR    MUST   request.update-empty-payload" in out and "no dispatcher sent welcome" in out


def test_dispatcher_list_and_usage(capsys):
    assert cli.main(["dispatcher", "--list"]) == 0
    assert capsys.readouterr().out.split() == [c.id for c in CASES]
    with pytest.raises(SystemExit):
        cli.main(["dispatcher", "--write", "NOVALUE"])
    assert "is not KEYWORD=VALUE" in capsys.readouterr().err


def test_a_dispatcher_command_that_exits_is_reported_with_its_error(capsys):
    command = shlex.join([sys.executable, "-c", "import sys; sys.exit('no keywords given')"])
    status = cli.main(["dispatcher", "--command", command, "-k", "request.units"])
    out = capsys.readouterr().out
    assert status == 1
    assert "the dispatcher exited before it sent welcome: exit status 1: no keywords given" in out


def test_the_runner_records_its_traffic_as_cauldron_record_does(tmp_path):
    from cauldron_proto.conformance.recorder import read_recording
    from cauldron_proto.conformance.to_case import convert_file

    path = tmp_path / "session.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        results = _run_in_process(keep=["registration.*", "request.update-*"], record=out)
    assert {r.status for r in results} == {"pass"}
    header, events = read_recording(path)
    assert header["heartbeat_timeout"] == T and header["broker"]["router"].startswith("tcp://127.0.0.1:")
    texts = [" ".join(e["text"]) for e in events if e["socket"] == "router"]
    assert '"DBQ" "welcome"' in texts[0] and any('"SDQ" "enumerate"' in t for t in texts)
    assert any('"CDP" "update" "hello"' in t for t in texts)
    assert "CDQ, update, ''" in convert_file(path, case_id="x.drafted")  # a draft case can be made of it
