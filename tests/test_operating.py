"""The commands under a service manager, as processes: SIGINT and SIGTERM stop them cleanly
while they wait (to register, for an answer), systemd's READY=1 reaches $NOTIFY_SOCKET once
bound or registered, --version and the exit statuses in --help, a closed stdout."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import zmq

from cauldron_proto import __version__
from cauldron_proto.broker import batchio
from cauldron_proto.cli import broker, conformance, demo, keygen, keywords, record, status
from cauldron_proto.cli.command import wait_seconds
from cauldron_proto.testing import open_peers

from .keyword_helpers import WAIT, config_for, keyword_broker

BIN = Path(sys.executable).parent
LOOPBACK = "tcp://127.0.0.1:*"
#: Every console script pyproject.toml declares: name -> "module:function".
SCRIPTS = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
                        )["project"]["scripts"]


def entry_point(name: str):
    module, _, function = SCRIPTS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def start(name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=None if env is None else {**os.environ, **env})


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def read_until(stream, text: str) -> str:
    """Lines of ``stream`` until one containing ``text`` (the process is waiting then)."""
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"{text!r} never printed; got {''.join(seen)!r}")


@pytest.fixture
def notify_socket(tmp_path):
    """A unix datagram socket playing systemd's notification socket; its path."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = str(tmp_path / "notify")
        sock.bind(path)
        sock.settimeout(WAIT)
        yield sock, path


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_command_has_version_and_exit_statuses_in_its_help(name, capsys):
    for flag in ("--version", "--help"):
        with pytest.raises(SystemExit) as done:
            entry_point(name)([flag])
        assert done.value.code == 0
    out = capsys.readouterr().out
    io = f" ({batchio.IO} I/O)" if name == "cauldron-broker" else ""  # the broker says which I/O it runs
    assert out.startswith(f"{name} {__version__}{io}\n")
    assert "exit status:\n  0 " in out and "\n  2      bad arguments" in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dispatcher_stops_at_once_on_a_signal_while_it_waits_to_register(signum):
    proc = start("cauldron-dispatcher", "-s", "KWAIT", "-k", "A=1", "--router", "tcp://127.0.0.1:1",
                 "--publish", "tcp://127.0.0.1:1", "--wait", "inf", "-v")
    read_until(proc.stderr, "waiting for the broker at tcp://127.0.0.1:1 to confirm the registration")
    proc.send_signal(signum)
    status, out, err = finish(proc)
    assert status == 0 and out == "" and "Traceback" not in err


@pytest.mark.parametrize("text, seconds", [("0", float("inf")), ("inf", float("inf")), ("2.5", 2.5)])
def test_wait_zero_or_inf_is_no_limit(text, seconds):
    assert wait_seconds(text) == seconds


def test_broker_and_dispatcher_tell_systemd_they_are_ready(notify_socket):
    sock, path = notify_socket
    proc = start("cauldron-broker", "--router", LOOPBACK, "--publish", LOOPBACK, "--subscribe", LOOPBACK,
                 env={"NOTIFY_SOCKET": path})
    try:
        states = sock.recv(4096).decode().split("\n")
        assert states[0] == "READY=1" and states[1].startswith("STATUS=serving at tcp://127.0.0.1:")
        router = states[1].rsplit(" ", 1)[1]
        lines = [proc.stdout.readline() for _ in range(3)]
        publish = [line.split()[2] for line in lines if line.startswith("publish")][0]
        abstract = f"@cauldron-test-{uuid.uuid4().hex}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as hidden:
            hidden.bind("\0" + abstract[1:])  # Linux's abstract namespace, as systemd may give
            hidden.settimeout(WAIT)
            disp = start("cauldron-dispatcher", "-s", "KREADY", "-n", "kready1", "-k", "A=1", "--router", router,
                         "--publish", publish, env={"NOTIFY_SOCKET": abstract})
            assert hidden.recv(4096).decode() == "READY=1\nSTATUS=kready1 serving KREADY"
            assert "kready1 serving KREADY: A" in disp.stdout.readline()
            disp.send_signal(signal.SIGTERM)
            assert finish(disp)[0] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        status, _, err = finish(proc)
    assert status == 0 and "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_show_stops_on_a_signal_while_it_waits_for_an_answer(signum):
    with open_peers() as peers:
        silent = peers.socket(zmq.ROUTER)  # takes the request, never answers
        address = f"tcp://127.0.0.1:{silent.bind_to_random_port('tcp://127.0.0.1')}"
        proc = start("cauldron-show", "-s", "KTEST", "--router", address, "--subscribe", address,
                     "--timeout", "60", "VALUE")
        assert silent.poll(WAIT * 1000), "no request arrived"
        proc.send_signal(signum)
        status, out, err = finish(proc)
    assert status == 128 + signum and out == "" and "Traceback" not in err


def test_demo_stops_quietly_when_its_stdout_is_closed():
    proc = start("cauldron-demo", "--duration", "30")
    lines = [proc.stdout.readline() for _ in range(3)]
    assert all(line.startswith("broker ") for line in lines)
    proc.stdout.close()  # as `| head -3` does
    try:
        status = proc.wait(WAIT)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert status == 1 and err == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_cleanly_on_a_signal(signum):
    proc = start("cauldron-demo", "--duration", "30")
    read_until(proc.stdout, "monitor ")
    proc.send_signal(signum)
    status, _, err = finish(proc)
    assert status == 128 + signum and err == ""


def test_monitor_stops_on_a_signal_while_it_primes(tmp_path):
    """The first read (priming) waits for an answer that never comes: SIGTERM still stops it, exit 0."""
    with open_peers() as peers:
        silent = peers.socket(zmq.ROUTER)
        address = f"tcp://127.0.0.1:{silent.bind_to_random_port('tcp://127.0.0.1')}"
        proc = start("cauldron-monitor", "-s", "KTEST", "--router", address, "--subscribe", address,
                     "--timeout", "60", "VALUE")
        assert silent.poll(WAIT * 1000), "no request arrived"
        proc.send_signal(signal.SIGTERM)
        status, out, err = finish(proc)
    assert status == 0 and out == "" and "Traceback" not in err


def test_the_dispatcher_registers_once_a_broker_starts_after_it():
    """Under a service manager the dispatcher may start first: with --wait 0 it waits for the broker."""
    with keyword_broker() as running:
        config = config_for(running)
    # the broker is gone: start the dispatcher, then a broker on the same ports
    proc = start("cauldron-dispatcher", "-s", "KLATE", "-n", "klate1", "-k", "A=1", "--router", config["broker"],
                 "--publish", config["publish"], "--wait", "0", "-v")
    try:
        read_until(proc.stderr, "waiting for the broker")
        from cauldron_proto.broker import ZMQBroker
        late = ZMQBroker("late", config["broker"], config["subscribe"], config["publish"], config["subscribe"],
                         timeout=1.0)
        late.start()
        try:
            assert "klate1 serving KLATE: A" in read_until(proc.stdout, "serving")
        finally:
            proc.send_signal(signal.SIGTERM)
            status, _, err = finish(proc)
            late.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 0 and "Traceback" not in err


def test_docs_operating_lists_every_exit_status_as_the_help_does(root):
    text = (root / "docs" / "operating.md").read_text(encoding="utf-8")
    tables = {"cauldron-broker": broker.EXITS, "cauldron-dispatcher": keywords.DISPATCHER_EXITS,
              "cauldron-show": keywords.SHOW_EXITS, "cauldron-modify": keywords.MODIFY_EXITS,
              "cauldron-monitor": keywords.MONITOR_EXITS, "cauldron-demo": demo.EXITS,
              "cauldron-conformance": conformance.EXITS, "cauldron-record": record.EXITS,
              "cauldron-keygen": keygen.EXITS, "cauldron-status": status.EXITS}
    assert set(tables) == set(SCRIPTS)
    for name, exits in tables.items():
        rows = [f"| {f'`{name}`' if i == 0 else ''} | {status} | {meaning} |" for i, (status, meaning) in enumerate(exits)]
        assert "\n".join(rows) in text, f"docs/operating.md: {name}'s exit statuses differ from its --help"
