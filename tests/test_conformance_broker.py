"""The conformance runner against real sockets: our broker passes --strict; failures are shown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import zmq

from cauldron_proto.cli import conformance as cli
from cauldron_proto.conformance import load_cases
from cauldron_proto.testing import broker_process, broker_thread

T = 0.2  # the broker's heartbeat period: expiry cases take about EXPIRY_MULTIPLE T


def addresses(broker) -> list[str]:
    e = broker.endpoints
    return ["--router", e["broker"], "--publish", e["publish"], "--subscribe", e["subscribe"]]


def test_the_whole_suite_passes_strict_against_our_broker(tmp_path):
    """As CI would run it: cauldron-broker and cauldron-conformance as processes, ephemeral ports."""
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    with broker_process(timeout=T) as broker:
        bound = broker.endpoints
        run = subprocess.run(
            [sys.executable, "-m", "cauldron_proto.cli.conformance", "--router", bound["broker"],
             "--publish", bound["publish"], "--subscribe", bound["subscribe"], "--lookup", bound["subscribe"],
             "--heartbeat-timeout", str(T), "--strict", "--json", str(report), "--junit", str(junit)],
            capture_output=True, text=True, timeout=50)
        broker_status = broker.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    cases = len(load_cases())
    assert json.loads(report.read_text())["summary"] == {"pass": cases}
    assert ET.parse(junit).getroot().get("tests") == str(cases)
    assert run.stdout.splitlines()[-1] == f"{cases} passed, 0 failed"
    assert broker_status == 0, broker.stderr_text()


def test_cases_needing_a_setting_not_given_are_skipped_with_the_reason(capsys):
    with broker_thread("tcp", timeout=T) as broker:
        status = cli.main([*addresses(broker), "-k", "heartbeat.none-before-ready", "-k", "client.*",
                           "--exclude", "client.locate-*", "--exclude", "client.status"])
    out = capsys.readouterr().out
    assert status == 0
    rows = {line.split()[2]: line for line in out.splitlines() if line[:4] in ("PASS", "SKIP")}
    assert set(rows) == {"heartbeat.none-before-ready", "client.lookup", "client.unknown-command"}
    assert "needs --heartbeat-timeout" in rows["heartbeat.none-before-ready"]
    assert rows["client.lookup"].startswith("PASS")  # it checks the address's form without --lookup
    assert rows["client.unknown-command"].startswith("PASS")


def test_list_prints_one_case_id_per_line_crash_risks_last(capsys):
    assert cli.main(["--list"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids == [c.id for c in load_cases()]
    assert ids[-1].startswith("robust.") and not ids[0].startswith("robust.")


def test_a_broker_that_never_answers_fails_with_expected_frames_and_wire_log(capsys):
    """A ROUTER that reads and never answers: MUST cases time out, the exit status is 1."""
    context = zmq.Context()
    silent = context.socket(zmq.ROUTER)
    silent.linger = 0
    try:
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        address = f"tcp://127.0.0.1:{port}"
        status = cli.main(["--router", address, "--publish", address, "--subscribe", address,
                           "-k", "inquiry.any-command-echoed", "--no-check"])
    finally:
        silent.close(linger=0)
        context.term()
    out = capsys.readouterr().out
    assert status == 1
    assert "TIMEOUT  MUST   inquiry.any-command-echoed" in out
    assert 'expected: ["", "KTEST_' in out and '"UBP", "ping", "Broker Alive"' in out
    assert "wire log" in out and "send  [\"\", " in out
    assert out.splitlines()[-1] == "0 passed, 0 failed, 1 timed out"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert cli.main(["-k", "x"]) == 2
    assert "give the broker's addresses" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("id: x\n")
    assert cli.main(["--cases", str(tmp_path), "--list"]) == 2
    assert "bad.yaml: a case needs a list of steps" in capsys.readouterr().err


@pytest.mark.parametrize("strict, expected", [(False, 0), (True, 1)])
def test_a_failing_should_case_fails_the_run_only_with_strict(tmp_path, strict, expected, capsys):
    case = tmp_path / "x.yaml"
    case.write_text(
        "id: x.should\ndescription: an inquiry is not answered twice\nlevel: SHOULD\n"
        "vars: {ID: {random: identifier}}\npeers: {c: {socket: DEALER}}\nsteps:\n"
        "- send: c\n  frames: ['', \"\\x01\", \"\\x01\", \"\\x01\", UBQ, check, \"\\x01\", '${ID}']\n"
        "- expect: c\n  frames: ['', \"\\x01\", \"\\x01\", \"\\x01\", UBP, check, Not Alive, '${ID}']\n")
    with broker_thread("tcp", timeout=T) as broker:
        status = cli.main([*addresses(broker), "--cases", str(tmp_path)] + (["--strict"] if strict else []))
    assert status == expected
    assert "FAIL     SHOULD x.should" in capsys.readouterr().out


def test_lookup_cases_compare_with_lookup_when_given(capsys):
    """Without --lookup the answer's form is checked; with a --lookup the broker does not answer, they fail."""
    with broker_thread("tcp", timeout=T) as broker:
        right = cli.main([*addresses(broker), "-k", "client.lookup", "-k", "pubsub.lookup-*"])
        wrong = cli.main([*addresses(broker), "--lookup", "tcp://127.0.0.1:1", "-k", "client.lookup",
                          "-k", "pubsub.lookup-*"])
    out = capsys.readouterr().out
    assert right == 0 and wrong == 1
    assert out.count("FAIL     MUST   client.lookup") == 1
    assert 'expected ${LOOKUP} = "tcp://127.0.0.1:1"' in out


@pytest.mark.parametrize("router, says", [
    ("tcp://127.0.0.1:1", "cauldron-conformance: no broker answers at tcp://127.0.0.1:1 (no answer to an inquiry "),
    ("tcp://127.0.0.1:99999", "cauldron-conformance: cannot connect to a broker at tcp://127.0.0.1:99999: port 99999 "
                              "is out of range"),
])
def test_no_broker_at_the_address_is_one_line_and_exit_2_before_any_case(router, says, capsys):
    assert cli.main(["--router", router]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(says) and captured.err.count("\n") == 1


def test_config_gives_the_addresses_and_the_heartbeat_period(tmp_path, capsys):
    with broker_thread("tcp", timeout=T) as broker:
        e = broker.endpoints
        path = tmp_path / "cauldron.cfg"
        path.write_text(f"[zmq]\nbroker = {e['broker']}\npublish = {e['publish']}\nsubscribe = {e['subscribe']}\n"
                        f"timeout = {T}\n", encoding="utf-8")
        status = cli.main(["-c", str(path), "-k", "heartbeat.none-before-ready", "-k", "client.lookup"])
    out = capsys.readouterr().out
    assert status == 0
    assert [line[:4] for line in out.splitlines() if "heartbeat.none-before-ready" in line] == ["PASS"]


def test_stops_cleanly_on_sigint_and_sigterm_while_running():
    """Against a ROUTER that never answers (--no-check): each case waits, a signal stops the run."""
    context = zmq.Context()
    silent = context.socket(zmq.ROUTER)
    silent.linger = 0
    try:
        address = f"tcp://127.0.0.1:{silent.bind_to_random_port('tcp://127.0.0.1')}"
        for signum in (signal.SIGINT, signal.SIGTERM):
            proc = subprocess.Popen([sys.executable, "-m", "cauldron_proto.cli.conformance", "--router", address,
                                     "--publish", address, "--subscribe", address, "--no-check"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                assert silent.poll(30_000), "the runner never sent a case's first message"
                silent.recv_multipart()
                proc.send_signal(signum)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(30)
            assert proc.returncode == 128 + signum, err
            assert "Traceback" not in err and "Traceback" not in out
    finally:
        silent.close(linger=0)
        context.term()
