"""cauldron-broker as a subprocess: bound endpoints printed, inquiries answered, clean exits."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from cauldron_proto import Direction, Message, ZMQBroker
from cauldron_proto.cli.broker import configure, parser
from cauldron_proto.testing import BrokerCommandProcess, NothingReceivedError, ask, broker_process, open_peers

ANY_LOCAL = "tcp://localhost:*"
EPHEMERAL = ["--router", ANY_LOCAL, "--publish", ANY_LOCAL, "--subscribe", ANY_LOCAL]
LOOPBACK = socket.gethostbyname("localhost")


def command() -> list[str]:
    script = shutil.which("cauldron-broker", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "cauldron_proto.cli.broker"]


def cli_broker(*args: str) -> BrokerCommandProcess:
    """The installed CLI running with just ``args``, once it has announced its endpoints."""
    return broker_process(*args, router=None, publish=None, subscribe=None, timeout=None, program=command())


def assert_said_nothing_more(broker: BrokerCommandProcess) -> None:
    with pytest.raises(NothingReceivedError, match="exited"):
        broker.read_line(0)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_then_exits_0_on_signal(signum):
    with cli_broker(*EPHEMERAL, "--timeout", "0.5") as broker:
        endpoints = broker.endpoints
        assert set(endpoints) == {"broker", "publish", "subscribe"}
        assert all(ep.startswith(f"tcp://{LOOPBACK}:") for ep in endpoints.values())
        with open_peers() as peers:
            client = peers.socket(zmq.REQ, endpoints["broker"])
            assert ask(client, Message.new(Direction.UBQ, command="check")).payload == "Broker Alive"
            lookup = ask(client, Message.new(Direction.CBQ, command="lookup"))
            assert lookup.payload == endpoints["subscribe"]
        broker.popen.send_signal(signum)
        assert broker.wait(30) == 0, broker.stderr_text()
        assert_said_nothing_more(broker)
        assert "Traceback" not in broker.stderr_text()


def test_lookup_flag_sets_the_lookup_answer():
    with cli_broker(*EPHEMERAL, "--lookup", "tcp://gateway.example.org:6511") as broker:
        with open_peers() as peers:
            client = peers.socket(zmq.REQ, broker.endpoints["broker"])
            lookup = ask(client, Message.new(Direction.CBQ, command="lookup"))
            assert lookup.payload == "tcp://gateway.example.org:6511"
        assert broker.stop(30) == 0


def test_config_file_and_verbose_logging(tmp_path):
    path = tmp_path / "cauldron.cfg"
    path.write_text(f"[zmq]\nbroker = {ANY_LOCAL}\npublish = {ANY_LOCAL}\nsubscribe = {ANY_LOCAL}\n", encoding="utf-8")
    with cli_broker("-c", str(path), "-v") as broker:
        assert ZMQBroker.check(address=broker.endpoints["broker"], timeout=10)
        assert broker.stop(30) == 0
        assert "cauldron_proto.broker INFO: stopped" in broker.stderr_text()


def test_bind_failure_exits_1_with_one_line_naming_the_address():
    with open_peers() as peers:
        port = peers.socket(zmq.ROUTER).bind_to_random_port(f"tcp://{LOOPBACK}")
        result = subprocess.run([*command(), "--router", f"tcp://localhost:{port}", "--publish", ANY_LOCAL,
                                 "--subscribe", ANY_LOCAL], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"tcp://{LOOPBACK}:{port}" in lines[0] and f"broker = tcp://localhost:{port}" in lines[0]
    assert "Address already in use" in lines[0]


@pytest.mark.parametrize("args, exit_status, says", [
    (["-c", "/nonexistent/cauldron.cfg"], 1, "/nonexistent/cauldron.cfg"),
    (["--router", "localhost:6513"], 1, "broker"),
    (["--timeout", "0"], 2, "positive number"),
    (["--timeout", "soon"], 2, "positive number"),
])
def test_unusable_arguments(args, exit_status, says):
    result = subprocess.run([*command(), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_status
    assert says in result.stderr and "Traceback" not in result.stderr


def test_defaults_without_arguments():
    broker = configure(parser().parse_args([]))
    assert broker.address == f"tcp://{LOOPBACK}:6513"
    assert broker.sub_address == f"tcp://{LOOPBACK}:6512"  # XSUB: publishers connect
    assert broker.pub_address == f"tcp://{LOOPBACK}:6511"  # XPUB: subscribers connect
    assert broker.core.lookup_address == "tcp://localhost:6511"
    assert broker.heartbeat is True


def test_flags_override_the_configuration():
    args = parser().parse_args(["--router", "ipc:///tmp/r", "--publish", "inproc://p", "--subscribe",
                                "tcp://*:7011", "--timeout", "2.5", "--no-heartbeat",
                                "--lookup", "tcp://gw:1"])
    broker = configure(args)
    assert (broker.address, broker.sub_address, broker.pub_address) == ("ipc:///tmp/r", "inproc://p", "tcp://*:7011")
    assert (broker.timeout, broker.heartbeat, broker.core.lookup_address) == (2.5, False, "tcp://gw:1")


def test_banner_shows_what_was_really_bound():
    every = "tcp://*:*"
    with cli_broker("--router", every, "--publish", "tcp://0.0.0.0:*", "--subscribe", "tcp://127.0.0.1:*") as broker:
        assert broker.endpoints["broker"].startswith("tcp://0.0.0.0:")  # every interface, as bound
        assert broker.endpoints["publish"].startswith("tcp://0.0.0.0:")
        assert broker.endpoints["subscribe"].startswith("tcp://127.0.0.1:")
        port = broker.endpoints["broker"].rsplit(":", 1)[1]
        assert ZMQBroker.check(address=f"tcp://127.0.0.1:{port}", timeout=10)
        assert broker.stop(30) == 0
