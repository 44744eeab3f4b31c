"""daemon(), sub() and setup() from a plain script with no ``if __name__ == "__main__":`` guard.

Each test runs a real script in a subprocess, at its top level, as a user would; the broker
it starts is a child process of its own (``python -m cauldron_proto.broker.child``).
"""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time

import pytest

from cauldron_proto import BrokerError, ZMQBroker
from cauldron_proto.broker.process import BrokerProcess, _importable_name

WAIT = 60.0  # seconds: a fresh interpreter on a busy machine

PRELUDE = """
import configparser, sys
from cauldron_proto import ZMQBroker
cfg = configparser.ConfigParser()
cfg["zmq"] = {"broker": "tcp://localhost:*", "publish": "tcp://localhost:*", "subscribe": "tcp://localhost:*"}
"""

SETUP_SUB_DAEMON = PRELUDE + """
for start in (lambda: ZMQBroker.setup(cfg, timeout=0.2), lambda: ZMQBroker.sub(cfg), lambda: ZMQBroker.daemon(cfg)):
    handle = start()
    handle.wait_running(60)
    assert ZMQBroker.check(address=handle.endpoints["broker"], timeout=30)
    assert handle.running.is_set() and handle.is_alive()
    handle.stop()
    assert not handle.is_alive() and handle.exitcode == 0 and not handle.running.is_set()
    print(type(handle).__name__, flush=True)
"""

LEAVE_RUNNING = PRELUDE + """
handle = ZMQBroker.daemon(cfg, daemon=sys.argv[1] == "daemonic")
handle.wait_running(60)
print(handle.pid, handle.endpoints["broker"], flush=True)
if sys.argv[2] == "wait":
    sys.stdin.readline()  # until the test says so, or kills this process
"""


def script(tmp_path, text: str, *args: str) -> subprocess.Popen:
    """Run ``text`` as a script; its stderr (which its broker child shares) goes to err.txt."""
    path = tmp_path / "plain_script.py"
    path.write_text(text, encoding="utf-8")
    with open(tmp_path / "err.txt", "w", encoding="utf-8") as err:
        return subprocess.Popen([sys.executable, str(path), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, text=True, cwd=tmp_path)


def errors(tmp_path) -> str:
    return (tmp_path / "err.txt").read_text(encoding="utf-8")


def answers_until_gone(address: str) -> bool:
    """Poll the broker at ``address`` until it stops answering (True) or WAIT passes (False)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not ZMQBroker.check(address=address, timeout=0.5):
            return True
    return False


def test_setup_sub_and_daemon_work_from_a_script_without_a_main_guard(tmp_path):
    proc = script(tmp_path, SETUP_SUB_DAEMON)
    out, _ = proc.communicate(timeout=3 * WAIT)
    assert proc.returncode == 0, errors(tmp_path)
    assert out.split() == ["BrokerProcess"] * 3
    assert "bootstrapping phase" not in errors(tmp_path)


@pytest.mark.parametrize("ending", ["exit", "killed"])
def test_a_daemonic_broker_ends_with_the_script_that_started_it(tmp_path, ending):
    proc = script(tmp_path, LEAVE_RUNNING, "daemonic", "wait")
    try:
        pid, address = proc.stdout.readline().split()
        assert ZMQBroker.check(address=address, timeout=30)
        if ending == "killed":
            proc.kill()  # no atexit: the broker sees its stdin end
        out, _ = proc.communicate("\n", timeout=WAIT)  # "exit": the script ends normally
        if ending == "exit":
            assert proc.returncode == 0, errors(tmp_path)
            assert not ZMQBroker.check(address=address, timeout=0.5)  # stopped at exit, before it
        assert answers_until_gone(address)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_non_daemonic_broker_outlives_its_script(tmp_path):
    proc = script(tmp_path, LEAVE_RUNNING, "independent", "exit")
    out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, errors(tmp_path)
    pid, address = out.split()
    try:
        assert ZMQBroker.check(address=address, timeout=30)
    finally:
        os.kill(int(pid), signal.SIGTERM)
    assert answers_until_gone(address)


def test_the_handle_reports_a_broker_that_cannot_start():
    cfg = configparser.ConfigParser()
    cfg["zmq"] = {"broker": "tcp://localhost:*", "publish": "tcp://localhost:*", "subscribe": "tcp://localhost:*",
                  "timeout": "-1"}
    handle = ZMQBroker.daemon(cfg)
    try:
        with pytest.raises(BrokerError, match="timeout"):
            handle.wait_running(timeout=WAIT)
        handle.join(WAIT)
        assert handle.exitcode == 1 and not handle.running.is_set() and not handle.is_alive()
    finally:
        handle.stop()


def test_the_child_runs_the_callers_class_when_it_can_import_it():
    assert _importable_name(ZMQBroker) == "cauldron_proto.broker.zmq_broker:ZMQBroker"
    assert _importable_name(BrokerProcess) == "cauldron_proto.broker.process:BrokerProcess"
    local = type("Local", (ZMQBroker,), {"__module__": "__main__"})
    assert _importable_name(local) == "cauldron_proto.broker:ZMQBroker"  # a script's own class


def test_daemon_refuses_inproc_addresses_as_the_existing_method_does():
    cfg = configparser.ConfigParser()
    cfg["zmq"] = {"broker": "inproc://no-other-process-reaches-this", "publish": "tcp://localhost:*",
                  "subscribe": "tcp://localhost:*"}
    with pytest.raises(ValueError, match="inproc"):
        ZMQBroker.daemon(cfg)


def test_a_module_in_the_scripts_folder_shadows_nothing_in_the_broker(tmp_path):
    (tmp_path / "zmq.py").write_text("raise SystemExit('the broker imported the wrong zmq')\n", encoding="utf-8")
    proc = script(tmp_path, PRELUDE.replace("from cauldron_proto", "sys.path.remove(sys.path[0])\nfrom cauldron_proto")
                  + LEAVE_RUNNING[len(PRELUDE):], "daemonic", "exit")
    out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, errors(tmp_path)
    assert len(out.split()) == 2  # pid and address: the child started from this folder served
