"""CURVE from the command line, as processes: cauldron-keygen, cauldron-broker with
--curve-secret-key/--curve-authorized, and the keyword tools with --curve-key/--curve-server-key."""

from __future__ import annotations

import shutil
import subprocess

from .fault_processes import broker_process, dispatcher_process, tool

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
    with broker_process(T, extra=curve) as broker:
        assert broker.read_line().startswith("curve     CURVE  ")  # its public key, whom it accepts
        config = broker.config()
        server = ("--curve-server-key", str(keys / "broker.key"))
        address = ("--router", config["broker"], "--subscribe", config["subscribe"], "--timeout", repr(T))
        with dispatcher_process(config, "KSEC", "disp1", "VALUE=5",
                                extra=("--curve-key", str(keys / "disp.key_secret"), *server)):
            shown = run("cauldron-show", "-s", "KSEC", *address, "--curve-key", str(keys / "ops.key_secret"),
                        *server, "VALUE")
            assert (shown.returncode, shown.stdout) == (0, "VALUE = 5\n"), shown.stderr
            for refused in ((), ("--curve-key", str(keys / "broker.key_secret"), *server)):  # plain; unauthorized
                shown = run("cauldron-show", "-s", "KSEC", *address, *refused, "VALUE")
                assert shown.returncode == 1 and "no answer" in shown.stderr, shown


def test_broker_refuses_a_public_key_as_its_secret_key(tmp_path):
    assert run("cauldron-keygen", str(tmp_path), "broker").returncode == 0
    result = run("cauldron-broker", "--router", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                 "--subscribe", "tcp://127.0.0.1:*", "--curve-secret-key", str(tmp_path / "broker.key"),
                 "--curve-authorized", "*")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"cauldron-broker: {tmp_path / 'broker.key'}: holds no secret "
                                                  "key (a NAME.key_secret file is needed, not NAME.key)"]
