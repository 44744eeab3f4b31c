"""CURVE from the command line, as processes: cauldron-keygen, cauldron-broker with
--curve-secret-key/--curve-authorized, and the keyword tools with --curve-key/--curve-server-key."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import zmq

from cauldron_proto import Direction, Message, Text
from cauldron_proto.security import PeerCurve
from cauldron_proto.testing import ask, broker_process, config_for, open_peers

from .fault_processes import dispatcher_process, tool

T = 0.5


def run(name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([tool(name), *args], capture_output=True, text=True, timeout=timeout)


def test_tools_over_curve(tmp_path):
    keys, authorized = tmp_path / "keys", tmp_path / "authorized"
    for name in ("broker", "ops", "disp"):
        made = run("cauldron-keygen", str(keys), name)
        assert made.returncode == 0, made.stderr
        assert f"{keys / name}.key_secret" in made.stdout
    authorized.mkdir()
    shutil.copy(keys / "ops.key", authorized)
    shutil.copy(keys / "disp.key", authorized)
    curve = ("--curve-secret-key", str(keys / "broker.key_secret"), "--curve-authorized", str(authorized))
    with broker_process(*curve, timeout=T) as broker:
        assert broker.read_line().startswith("curve     CURVE  ")  # its public key, whom it accepts
        config = config_for(broker)
        server = ("--curve-server-key", str(keys / "broker.key"))
        address = ("--router", config["broker"], "--subscribe", config["subscribe"], "--timeout", repr(T))
        with dispatcher_process(config, "KSEC", "disp1", "VALUE=5",
                                extra=("--curve-key", str(keys / "disp.key_secret"), *server)):
            shown = run("cauldron-show", "-s", "KSEC", *address, "--curve-key", str(keys / "ops.key_secret"),
                        *server, "VALUE")
            assert (shown.returncode, shown.stdout) == (0, "VALUE = 5\n"), shown.stderr
            # plain; unauthorized. A longer timeout: between processes, a plain peer's first
            # handshakes with a CURVE broker often end without detail, and libzmq retries
            for refused in ((), ("--curve-key", str(keys / "broker.key_secret"), *server)):
                shown = run("cauldron-show", "-s", "KSEC", *address, "--timeout", "10", *refused, "VALUE")
                assert shown.returncode == 1 and shown.stderr.count("\n") == 1, shown  # one line
                assert "refused the connection" in shown.stderr, shown


def test_broker_refuses_a_public_key_as_its_secret_key(tmp_path):
    assert run("cauldron-keygen", str(tmp_path), "broker").returncode == 0
    result = run("cauldron-broker", "--router", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                 "--subscribe", "tcp://127.0.0.1:*", "--curve-secret-key", str(tmp_path / "broker.key"),
                 "--curve-authorized", "*")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"cauldron-broker: {tmp_path / 'broker.key'}: holds no secret "
                                                  "key (a NAME.key_secret file is needed, not NAME.key)"]


def _hijack_keys(tmp_path):
    keys, authorized = tmp_path / "keys", tmp_path / "authorized"
    for name in ("broker", "disp", "alice", "mallory"):
        assert run("cauldron-keygen", str(keys), name).returncode == 0
    authorized.mkdir()
    for name in ("disp", "alice", "mallory"):
        shutil.copy(keys / f"{name}.key", authorized)
    return keys, ("--curve-secret-key", str(keys / "broker.key_secret"), "--curve-authorized", str(authorized))


@pytest.mark.parametrize("policy", [None, "disp: SECURE*\n"])
def test_the_hijack_of_the_issue_is_refused(tmp_path, policy):
    """The issue's story as processes: mallory's welcome for SECURE/d1 is refused; alice reads 'real'."""
    keys, curve = _hijack_keys(tmp_path)
    if policy is not None:
        (tmp_path / "dispatchers").write_text(policy)
        curve += ("--curve-dispatchers", str(tmp_path / "dispatchers"))
    with broker_process(*curve, timeout=T) as broker:
        config, server = config_for(broker), ("--curve-server-key", str(keys / "broker.key"))
        with dispatcher_process(config, "SECURE", "d1", "VALUE=real",
                                extra=("--curve-key", str(keys / "disp.key_secret"), *server)):
            refused = _welcome_as(keys, "mallory", config["broker"])
            expected = (Text.DISPATCHER_OWNED_BY_ANOTHER_KEY.format(dispatcher="d1", service="SECURE")
                        if policy is None else Text.KEY_MAY_NOT_SERVE.format(key="mallory", service="SECURE"))
            assert (refused.direction, refused.payload) == (Direction.DBE, expected)
            address = ("--router", config["broker"], "--subscribe", config["subscribe"], "--timeout", repr(T))
            shown = run("cauldron-show", "-s", "SECURE", *address, "--curve-key", str(keys / "alice.key_secret"),
                        *server, "VALUE")
            assert (shown.returncode, shown.stdout) == (0, "VALUE = real\n"), shown.stderr


def _welcome_as(keys, name: str, address: str) -> Message:
    ctx = zmq.Context()
    try:
        with open_peers(ctx) as peers:
            sock = peers.socket(zmq.DEALER)
            PeerCurve.from_files(keys / "broker.key", keys / f"{name}.key_secret").client_socket(sock)
            sock.connect(address)
            return ask(sock, Message.new(Direction.DBQ, service="SECURE", dispatcher="d1", command="welcome"))
    finally:
        ctx.term()


def test_a_malformed_policy_file_is_a_clear_error_naming_the_line(tmp_path):
    keys, curve = _hijack_keys(tmp_path)
    policy = tmp_path / "dispatchers"
    policy.write_text("# who serves what\ndisp: SECURE*\nalice SECURE\n")
    result = run("cauldron-broker", "--router", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                 "--subscribe", "tcp://127.0.0.1:*", *curve, "--curve-dispatchers", str(policy))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"cauldron-broker: {policy}, line 3: expected 'KEY: SERVICE ...', got 'alice SECURE' (no ':')"]
