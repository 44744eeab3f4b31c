"""Seeing what a running broker serves, as an operator does: cauldron-status, the HTTP
monitor (/healthz, /status, /metrics scraped through a real socket) and the lifecycle log
lines, against real sockets and processes."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import zmq

from cauldron_proto import Direction, Message, Text, decode, encode, kinds
from cauldron_proto.broker.http import HTTPMonitor, http_address
from cauldron_proto.cli import status as status_cli
from cauldron_proto.testing import WAIT, broker_command, broker_process, broker_thread, open_peers, register_dispatcher

from .keyword_helpers import wait_for

LOOPBACK = "tcp://127.0.0.1:*"


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET through a real socket."""
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def routed_round_trip(client, disp) -> None:
    """The client's CDQ to disp1, forwarded, answered '42', relayed back."""
    request = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update",
                          payload="", prefix=(b"",))
    client.send_multipart(encode(request))
    assert disp.poll(WAIT * 1000), "nothing forwarded"
    forwarded = decode(disp.recv_multipart())
    disp.send_multipart(encode(forwarded.reply("42", dispatcher="disp1")))
    assert client.poll(WAIT * 1000), "no reply relayed"
    assert decode(client.recv_multipart()).payload == "42"


@contextlib.contextmanager
def existing_broker():
    """A ROUTER answering every query as the existing Cauldron broker answers a CBQ command
    it does not know (CBE 'unknown command'); its address."""
    stop = threading.Event()
    with open_peers() as peers:
        router = peers.socket(zmq.ROUTER)
        address = f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}"

        def serve():
            while not stop.is_set():
                if router.poll(20):
                    peer, *frames = router.recv_multipart()
                    router.send_multipart([peer, *encode(decode(frames).error(Text.UNKNOWN_COMMAND))])

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield address
        finally:
            stop.set()
            thread.join(WAIT)


def test_cauldron_status_tables_json_and_one_service(capsys):
    with broker_thread("tcp", timeout=5.0) as broker, open_peers() as peers:
        router = broker.endpoints["broker"]
        disp = peers.socket(zmq.DEALER, router)
        register_dispatcher(disp, "KTEST", "disp1")
        routed_round_trip(peers.socket(zmq.DEALER, router), disp)
        assert status_cli.main(["--router", router]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(f"broker test-broker ") and "T 5 s (heartbeat on), CURVE off" in out[0]
        assert out[0].endswith(f", I/O {broker.io}")  # compiled, or pure Python (CAULDRON_PROTO_PURE)
        assert f"broker {router}" in out[1] and out[2] == "  1 dispatcher connection"
        dispatchers, requests = [line.split() for line in out if line.startswith("KTEST")]
        assert dispatchers[:4] == ["KTEST", "disp1", "ready", "0.0"] and dispatchers[-2:] == ["1", "0"]
        assert requests[:2] == ["KTEST", "1"] and requests[3] == "ms"  # one routed request, its mean latency
        counters = next(line for line in out if line.startswith("messages"))
        assert counters.startswith(f"messages     received {broker.core.stats.received}, sent ")

        assert status_cli.main(["--router", router, "ktest", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert list(status["services"]) == ["KTEST"] and status["services"]["KTEST"]["latency"]["count"] == 1
        assert status_cli.main(["--router", router, "KNONE"]) == 1
        captured = capsys.readouterr()
        assert "no dispatcher serves KNONE" in captured.out and captured.err == "cauldron-status: no dispatcher serves KNONE\n"


def test_cauldron_status_says_no_broker_answers_and_this_broker_does_not_answer_status(capsys):
    assert status_cli.main(["--router", "tcp://127.0.0.1:1", "--timeout", "0.3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ("cauldron-status: no broker answers at tcp://127.0.0.1:1 "
                                                   "(no answer within 0.3 s)\n")
    with existing_broker() as address:
        assert status_cli.main(["--router", address]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("cauldron-status: this broker does not answer status queries: the broker at ")
    assert captured.err.endswith("answered 'unknown command'\n")


def test_cauldron_status_watch_redraws_in_place_until_interrupted():
    with broker_thread("tcp", timeout=5.0) as broker:
        proc = subprocess.Popen([sys.executable, "-m", "cauldron_proto.cli.status", "--router",
                                 broker.endpoints["broker"], "--watch", "0.1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            seen = ""
            while seen.count(status_cli.CLEAR) < 2:
                seen += proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in err
    assert (seen + out).count(status_cli.CLEAR + "broker test-broker") >= 2


def test_http_monitor_serves_health_status_and_metrics_through_a_real_socket():
    with broker_thread("tcp", timeout=5.0) as broker, open_peers() as peers, HTTPMonitor(broker, "0") as monitor:
        assert monitor.address[0] == "127.0.0.1" and monitor.address[1] > 0  # loopback unless told
        router = broker.endpoints["broker"]
        disp = peers.socket(zmq.DEALER, router)
        register_dispatcher(disp, "KTEST", "disp1")
        routed_round_trip(peers.socket(zmq.DEALER, router), disp)
        peers.socket(zmq.DEALER, router).send_multipart([b"", b"too few frames"])  # dropped, by reason

        assert get(monitor.url + "/healthz")[:3:2] == (200, "ok: the routing loop turns\n")
        code, kind, body = get(monitor.url + "/status?service=ktest")
        assert (code, kind) == (200, "application/json; charset=utf-8")
        status = json.loads(body)
        assert status["services"]["KTEST"]["dispatchers"]["disp1"]["state"] == "ready"
        assert status["broker"]["addresses"] == broker.endpoints

        code, kind, text = get(monitor.url + "/metrics")
        assert code == 200 and kind.startswith("text/plain; version=")
        lines = text.splitlines()
        for line in ("# TYPE cauldron_broker_messages_received_total counter",
                     'cauldron_broker_dispatchers{service="KTEST"} 1.0',
                     'cauldron_broker_requests_in_flight{service="KTEST"} 0.0',
                     'cauldron_broker_messages_dropped_total{reason="too_few_frames"} 1.0',
                     "# TYPE cauldron_broker_request_duration_seconds histogram",
                     'cauldron_broker_request_duration_seconds_count{service="KTEST"} 1.0',
                     'cauldron_broker_request_duration_seconds_bucket{le="+Inf",service="KTEST"} 1.0',
                     'cauldron_broker_info{curve="off",version="0.1.0"} 1.0'):
            assert line in lines, line
        assert get(monitor.url + "/nothing")[0] == 404


def test_healthz_is_503_while_the_loop_is_stuck_and_once_it_stopped():
    release = threading.Event()
    with broker_thread("tcp", timeout=0.2) as broker, open_peers() as peers:
        monitor = HTTPMonitor(broker, "127.0.0.1:0").start()
        try:
            handle = broker.core.handle

            def stuck(*args):
                release.wait(WAIT)
                return handle(*args)

            broker.core.handle = stuck  # the next message the loop serves does not come back
            peers.socket(zmq.DEALER, broker.endpoints["broker"]).send_multipart(
                encode(Message.new(Direction.UBQ, command="check", prefix=(b"",))))
            code, _, body = wait_for(lambda: (r := get(monitor.url + "/healthz"))[0] == 503 and r,
                                     message="healthz 503")
            assert body.startswith("unhealthy: the routing loop has not turned for ")
            release.set()
            wait_for(lambda: get(monitor.url + "/healthz")[0] == 200, message="healthz 200 again")
        finally:
            release.set()
    try:
        assert get(monitor.url + "/healthz")[::2] == (503, "unhealthy: the routing loop is not running\n")
    finally:
        monitor.stop()
    with pytest.raises(OSError):
        get(monitor.url + "/healthz")  # closed


@pytest.mark.parametrize("text, address", [("9100", ("127.0.0.1", 9100)), ("0.0.0.0:9100", ("0.0.0.0", 9100)),
                                           ("[::1]:0", ("::1", 0))])
def test_http_address_is_loopback_unless_a_host_is_given(text, address):
    assert http_address(text) == address


def test_broker_logs_registration_conflict_and_expiry_at_info_by_default_as_json():
    with broker_process("--http", "0", "--log-format", "json", timeout=0.2) as broker, open_peers() as peers:
        url = broker.read_line().split()[2]
        wait_for(lambda: get(url + "/healthz")[0] == 200, message="healthz 200")  # once run() turns the loop
        router = broker.endpoints["broker"]
        holder, newcomer = peers.socket(zmq.DEALER, router), peers.socket(zmq.DEALER, router)
        register_dispatcher(holder, "KTEST", "disp1")
        welcome = Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome", prefix=(b"",))
        newcomer.send_multipart(encode(welcome))
        while True:  # the holder answers the heartbeat the welcome made the broker send it
            assert holder.poll(WAIT * 1000), "no heartbeat to the holder"
            beat = decode(holder.recv_multipart())
            if beat.command == "heartbeat":
                holder.send_multipart(encode(kinds.heartbeat_answer(beat, time.time())))
                break
        assert newcomer.poll(WAIT * 1000)
        refused = decode(newcomer.recv_multipart())
        assert refused.direction == "DBE" and refused.payload == Text.NAME_HELD.format(dispatcher="disp1",
                                                                                      service="KTEST")
        wait_for(lambda: "expired" in broker.stderr_text(), message="the holder's expiry logged")  # now silent
    lines = [json.loads(line) for line in broker.stderr_text().splitlines()]
    assert all(set(entry) == {"time", "level", "logger", "message"} for entry in lines)
    messages = [(entry["level"], entry["message"]) for entry in lines]
    assert any(level == "INFO" and "dispatcher KTEST/disp1 registered at" in text for level, text in messages)
    assert any(level == "WARNING" and "refused the welcome of KTEST/disp1" in text for level, text in messages)
    assert any(level == "INFO" and text.startswith("cauldron-broker: dispatcher KTEST/disp1 at ")
               and text.endswith(" expired") for level, text in messages)


def test_http_without_prometheus_client_is_one_line(tmp_path):
    (tmp_path / "prometheus_client").mkdir()
    (tmp_path / "prometheus_client" / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = subprocess.run(broker_command("--http", "0", router=LOOPBACK, publish=LOOPBACK, subscribe=LOOPBACK),
                            capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr == "cauldron-broker: --http needs prometheus_client: pip install 'cauldron_proto[metrics]'\n"


def test_status_carries_the_broadcast_relays_counters():
    from cauldron_proto.broker import ZMQBroker
    from cauldron_proto.broker.relay import RelayStats

    broker = ZMQBroker("unstarted", LOOPBACK, LOOPBACK, LOOPBACK, LOOPBACK)
    assert broker.status()["relay"] is None  # not prepared: no relay yet

    class Prepared:  # what prepare() leaves: a relay with its counters
        stats = RelayStats(relayed=7, dropped=1, dropped_by_reason={"max_frames": 1}, subscriptions=3)

    broker.relay = Prepared()
    relay = broker.status()["relay"]
    assert (relay["relayed"], relay["dropped"], relay["dropped_by_reason"], relay["subscriptions"]) == (
        7, 1, {"max_frames": 1}, 3)
