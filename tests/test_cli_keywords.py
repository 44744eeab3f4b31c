"""The keyword command-line tools as subprocesses, against a broker thread on tcp:
cauldron-dispatcher, cauldron-show, cauldron-modify, cauldron-monitor."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cauldron_proto import client

from .keyword_helpers import WAIT, config_for, keyword_broker, serving, wait_for

BIN = Path(sys.executable).parent
NO_BROKER = "tcp://127.0.0.1:1"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed: pip install -e . declares it in pyproject.toml"
    return str(path)


def address_options(config: dict) -> list[str]:
    return ["--router", config["broker"], "--publish", config["publish"], "--subscribe", config["subscribe"],
            "--timeout", config["timeout"]]


def run(name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([tool(name), *args], capture_output=True, text=True, timeout=timeout)


@contextmanager
def started(name: str, *args: str):
    """A tool running as a subprocess; ``proc.lines`` is a queue of its stdout lines."""
    proc = subprocess.Popen([tool(name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.lines = queue.SimpleQueue()
    reader = threading.Thread(target=lambda: [proc.lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
        reader.join(WAIT)
        proc.stdout.close()
        proc.stderr.close()


def read_line(proc: subprocess.Popen, timeout: float = WAIT) -> str:
    try:
        return proc.lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output within {timeout} s") from None


@pytest.fixture
def broker():
    with keyword_broker() as running:
        yield running


@pytest.fixture
def config(broker):
    return config_for(broker)


def refuse_big(keyword, value):
    if value > 100:
        raise ValueError("more than 100")


@pytest.fixture
def ktest(config):
    with serving("KTEST", config, "KTEST1", NAME=("string", "hello world"),
                 VALUE={"type": "integer", "value": 1, "validate": refuse_big}) as disp:
        yield disp


# cauldron-dispatcher ---------------------------------------------------------------------
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_dispatcher_serves_keywords_until_signalled(config, stop):
    args = ["-s", "KCLI", "-n", "CLI1", "-k", "VALUE=3", "-k", "NAME:string=12", "-k", "GAIN=1.5",
            *address_options(config)]
    with started("cauldron-dispatcher", *args) as proc, client.Service("KCLI", config, timeout=WAIT) as svc:
        line = read_line(proc)
        assert "CLI1 serving KCLI: VALUE, NAME, GAIN" in line
        assert [svc[k].type for k in ("VALUE", "NAME", "GAIN")] == ["integer", "string", "double"]
        assert svc["NAME"].read() == "12" and svc["GAIN"].read(binary=True) == 1.5
        assert svc["VALUE"].write(9) == "9" and svc["VALUE"].read() == "9"
        proc.send_signal(stop)
        assert proc.wait(WAIT) == 0


def test_dispatcher_without_broker_exits_1():
    result = run("cauldron-dispatcher", "-s", "KCLI", "-k", "VALUE=3", "--router", NO_BROKER,
                 "--publish", NO_BROKER, "--wait", "0.3")
    assert result.returncode == 1
    assert result.stderr.strip() == f"cauldron-dispatcher: no broker confirmed registration at {NO_BROKER} within 0.3 s"


def test_dispatcher_with_a_bad_type_exits_1():
    result = run("cauldron-dispatcher", "-s", "KCLI", "-k", "VALUE:int=3", "--router", NO_BROKER)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "'int' is not a KTL type" in result.stderr


@pytest.mark.parametrize("args, reason", [
    (["-k", "MODE:enumerated=On"], "MODE: an enumerated keyword, and only one, needs --enumerators MODE=NAME,..."),
    (["-k", "MODE=1", "--enumerators", "MODE=Off,On"], "MODE: an enumerated keyword, and only one, needs --enumerators"),
    (["-k", "MODE:enumerated=On", "--enumerators", "MODE=Off,,On"], "is not KEYWORD=NAME,NAME,... (a name is empty)"),
])
def test_dispatcher_enumerated_keywords_need_their_names(args, reason):
    result = run("cauldron-dispatcher", "-s", "KCLI", *args, "--router", NO_BROKER)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert reason in result.stderr


def test_dispatcher_serves_an_enumerated_keyword_as_existing_peers_expect(config):
    args = ["-s", "KENUM", "-n", "kenum1", "-k", "MODE:enumerated=On", "--enumerators", "MODE=Off,On,Standby"]
    with started("cauldron-dispatcher", *args, *address_options(config)) as proc:
        assert "kenum1 serving KENUM: MODE" in read_line(proc)
        with client.Service("KENUM", config, timeout=WAIT) as svc:
            assert svc["MODE"].units() == {"0": "Off", "1": "On", "2": "Standby"}
            assert svc["MODE"].read() == "On" and svc["MODE"].write("Standby") == "Standby"
            assert svc["MODE"].read(binary=True) == 2


# cauldron-show / cauldron-modify ---------------------------------------------------------
def test_show_prints_keyword_lines(config, ktest):
    result = run("cauldron-show", "-s", "ktest", *address_options(config), "VALUE", "name")
    assert (result.returncode, result.stdout, result.stderr) == (0, "VALUE = 1\nNAME = hello world\n", "")
    terse = run("cauldron-show", "-s", "KTEST", "--terse", *address_options(config), "VALUE", "NAME")
    assert terse.stdout == "1\nhello world\n"


def test_show_reads_the_addresses_from_a_config_file(config, ktest, tmp_path):
    path = tmp_path / "cauldron.cfg"
    path.write_text("[zmq]\n" + "".join(f"{key} = {value}\n" for key, value in config.items()))
    result = run("cauldron-show", "-c", str(path), "-s", "KTEST", "--terse", "VALUE")
    assert (result.returncode, result.stdout) == (0, "1\n")
    missing = run("cauldron-show", "-c", str(tmp_path / "nope.cfg"), "-s", "KTEST", "VALUE")
    assert missing.returncode == 1 and "nope.cfg: cannot read configuration" in missing.stderr


def test_modify_writes_and_prints_the_result(config, ktest):
    result = run("cauldron-modify", "-s", "KTEST", *address_options(config), "VALUE=42", "NAME=x y")
    assert (result.returncode, result.stdout, result.stderr) == (0, "VALUE = 42\nNAME = x y\n", "")
    assert ktest["VALUE"].value == 42 and ktest["NAME"].value == "x y"


def test_refused_write_exits_1_with_the_reason(config, ktest):
    result = run("cauldron-modify", "-s", "KTEST", *address_options(config), "VALUE=500")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("cauldron-modify: KTEST.VALUE: modify failed: Write to VALUE refused: more than 100; "
                             "written: none; not written: VALUE\n")


def test_modify_checks_every_keyword_and_value_first_then_says_what_it_wrote(config, ktest):
    unknown = run("cauldron-modify", "-s", "KTEST", *address_options(config), "VALUE=3", "NOPE=1", "NAME=x")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == "cauldron-modify: KTEST has no keyword 'NOPE'\n"
    mistyped = run("cauldron-modify", "-s", "KTEST", *address_options(config), "VALUE=3", "VALUE=three")
    assert (mistyped.returncode, mistyped.stdout) == (1, "") and mistyped.stderr.count("\n") == 1
    assert ktest["VALUE"].value == 1  # nothing written
    refused = run("cauldron-modify", "-s", "KTEST", *address_options(config), "VALUE=3", "VALUE=500", "NAME=x")
    assert (refused.returncode, refused.stdout) == (1, "VALUE = 3\n")
    assert refused.stderr == ("cauldron-modify: KTEST.VALUE: modify failed: Write to VALUE refused: more than 100; "
                              "written: VALUE; not written: VALUE, NAME\n")
    assert (ktest["VALUE"].value, ktest["NAME"].value) == (3, "hello world")


def test_unknown_keyword_exits_1(config, ktest):
    result = run("cauldron-show", "-s", "KTEST", *address_options(config), "NOPE")
    assert (result.returncode, result.stderr) == (1, "cauldron-show: KTEST has no keyword 'NOPE'\n")


def test_no_broker_exits_1_after_the_timeout():
    result = run("cauldron-show", "-s", "KTEST", "--router", NO_BROKER, "--timeout", "0.3", "VALUE")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr == (f"cauldron-show: KTEST.VALUE: no answer to 'identify' within 0.3 s: "
                             f"no broker answers at {NO_BROKER}\n")


@pytest.mark.parametrize("name, args", [("cauldron-show", ["VALUE"]), ("cauldron-dispatcher", ["-k", "VALUE=1"])])
def test_an_unusable_address_exits_1_at_once(name, args):
    result = run(name, "-s", "KTEST", "--router", "tcp://127.0.0.1:99999", *args, timeout=10)
    assert result.returncode == 1
    assert result.stderr == (f"{name}: cannot connect to a broker at tcp://127.0.0.1:99999: port 99999 is out of "
                             "range (1 to 65535)\n")


def test_bad_assignment_exits_1(config, ktest):
    result = run("cauldron-modify", "-s", "KTEST", *address_options(config), "VALUE")
    assert (result.returncode, result.stderr) == (1, "cauldron-modify: 'VALUE' is not KEYWORD=VALUE\n")


# cauldron-monitor ------------------------------------------------------------------------
def test_monitor_prints_a_stamped_line_per_value_and_stops_after_count(config, ktest):
    args = ["-s", "KTEST", *address_options(config), "--count", "3", "VALUE"]
    with started("cauldron-monitor", *args) as proc:
        assert re.fullmatch(f"{STAMP}  VALUE = 1\n", read_line(proc))
        keyword = ktest["VALUE"]
        wait_for(lambda: keyword.set(keyword.value + 1) and proc.poll() is not None, interval=0.05,
                 message="cauldron-monitor to print 3 values")
        assert proc.wait(WAIT) == 0 and proc.stderr.read() == ""
        lines = [read_line(proc) for _ in range(2)]
        values = [int(re.fullmatch(f"{STAMP}  VALUE = (\\d+)\n", line)[1]) for line in lines]
        assert 1 < values[0] < values[1]


def test_monitor_stops_on_sigterm(config, ktest):
    with started("cauldron-monitor", "-s", "KTEST", *address_options(config), "VALUE", "NAME") as proc:
        lines = {read_line(proc).split("  ", 1)[1] for _ in range(2)}
        assert lines == {"VALUE = 1\n", "NAME = hello world\n"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0


def test_monitor_unknown_keyword_exits_1(config, ktest):
    start = time.monotonic()
    result = run("cauldron-monitor", "-s", "KTEST", *address_options(config), "NOPE")
    assert (result.returncode, result.stderr) == (1, "cauldron-monitor: KTEST has no keyword 'NOPE'\n")
    assert time.monotonic() - start < 20
