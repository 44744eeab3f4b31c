"""Brokers started by sub(), setup(), daemon() and serve(): in a thread or a process, always stoppable."""

from __future__ import annotations

import configparser
import signal
import subprocess
import sys
import types

import pytest
import zmq

from cauldron_proto import BrokerError, Direction, Message, ZMQBroker
from cauldron_proto.broker.launch import BrokerProcess
from cauldron_proto.testing import ask, inproc_addresses, open_peers

ANY_LOCAL = "tcp://localhost:*"


def config(**keys) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg["zmq"] = keys
    return cfg


def inproc_config() -> configparser.ConfigParser:
    return config(**inproc_addresses("launch"), timeout="1")


def tcp_config() -> configparser.ConfigParser:
    return config(broker=ANY_LOCAL, publish=ANY_LOCAL, subscribe=ANY_LOCAL, timeout="1")


def test_sub_with_inproc_addresses_starts_a_thread():
    broker = ZMQBroker.sub(inproc_config())
    try:
        assert isinstance(broker, ZMQBroker) and broker.is_alive() and broker.isDaemon()
        assert ZMQBroker.check(address=broker.endpoints["broker"], timeout=10)
    finally:
        broker.stop()
    assert not broker.is_alive()


def test_sub_with_tcp_addresses_starts_a_process_that_stops_cleanly():
    handle = ZMQBroker.sub(tcp_config())
    try:
        assert isinstance(handle, BrokerProcess)
        assert handle.wait_running(timeout=60) and handle.running.is_set()
        with open_peers() as peers:
            client = peers.socket(zmq.REQ, handle.endpoints["broker"])
            lookup = ask(client, Message.new(Direction.CBQ, command="lookup"))
            assert lookup.payload == handle.endpoints["subscribe"]
    finally:
        handle.stop()
    assert not handle.is_alive() and handle.exitcode == 0  # SIGTERM: a clean exit


@pytest.mark.parametrize("make_config, kind", [(inproc_config, ZMQBroker), (tcp_config, BrokerProcess)])
def test_setup_starts_a_stoppable_broker_once(make_config, kind):
    cfg = make_config()
    handle = ZMQBroker.setup(cfg, timeout=0.5)
    try:
        assert isinstance(handle, kind)
        assert ZMQBroker.check(address=handle.endpoints["broker"], timeout=10)
        if kind is ZMQBroker:  # the same addresses now answer: setup() starts nothing
            assert ZMQBroker.setup(cfg, timeout=10) is None
    finally:
        handle.stop()
    assert not handle.is_alive()


def test_setup_returns_none_when_a_broker_answers():
    running = ZMQBroker.thread(inproc_config())
    try:
        cfg = config(broker=running.endpoints["broker"])
        assert ZMQBroker.setup(cfg, timeout=10) is None
    finally:
        running.stop()


def test_daemon_reports_a_bind_failure():
    with open_peers() as peers:
        taken = peers.socket(zmq.ROUTER)
        port = taken.bind_to_random_port("tcp://127.0.0.1")
        handle = ZMQBroker.daemon(config(broker=f"tcp://localhost:{port}", publish=ANY_LOCAL, subscribe=ANY_LOCAL))
        try:
            with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
                handle.wait_running(timeout=60)
            handle.join(30)
            assert handle.exitcode == 1
        finally:
            handle.stop()


def test_setup_raises_when_the_broker_cannot_start():
    with open_peers() as peers:
        port = peers.socket(zmq.ROUTER).bind_to_random_port("tcp://127.0.0.1")
        cfg = config(broker=f"tcp://127.0.0.1:{port}", publish=ANY_LOCAL, subscribe=ANY_LOCAL)
        with pytest.raises(BrokerError):  # nothing answers there, and a new broker cannot bind it
            ZMQBroker.setup(cfg, timeout=0.2)


SERVE = """
import sys
from cauldron_proto import ZMQBroker
broker = ZMQBroker.serve(sys.argv[1], name="Served")
print("served", broker.name, broker.running.is_set(), flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_blocks_until_a_signal_then_returns(tmp_path, signum):
    router = f"ipc://{tmp_path}/router"
    path = tmp_path / "serve.cfg"
    path.write_text(f"[zmq]\nbroker = {router}\npublish = ipc://{tmp_path}/pub\n"
                    f"subscribe = ipc://{tmp_path}/sub\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        while not ZMQBroker.check(address=router, timeout=0.5):
            assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "served Served False\n"


def test_config_none_means_the_loaded_cauldron_packages_configuration(monkeypatch):
    """Inside the existing Cauldron package (its client calls ``ZMQBroker.check(ctx=...)`` with
    no configuration), None means its active configuration, as for the existing broker."""
    cfg = inproc_config()
    assert ZMQBroker.default_configuration() is None  # no Cauldron loaded: the spec's defaults
    monkeypatch.setitem(sys.modules, "Cauldron.config", types.SimpleNamespace(cauldron_configuration=cfg))
    assert ZMQBroker.default_configuration() is cfg
    assert not ZMQBroker.check(timeout=0.05)
    handle = ZMQBroker.setup(timeout=0.05)  # inproc addresses: a thread
    try:
        assert isinstance(handle, ZMQBroker) and handle.endpoints["broker"] == cfg["zmq"]["broker"]
        assert ZMQBroker.check(timeout=10)
        assert ZMQBroker.setup(timeout=10) is None
    finally:
        handle.stop()
