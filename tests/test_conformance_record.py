"""cauldron-record: the recording proxy between real peers and our broker, and recording -> case."""

from __future__ import annotations

import signal
import subprocess
import sys

import zmq

from cauldron_proto import Direction, Message, decode, encode
from cauldron_proto.cli import record as cli
from cauldron_proto.conformance import Settings, load_case, run_suite, run_suite_on_core
from cauldron_proto.conformance.recorder import RecordingProxy, read_recording
from cauldron_proto.conformance.to_case import recording_to_case
from cauldron_proto.conformance.loading import parse_case
from cauldron_proto.broker.core import BrokerCore
from cauldron_proto.testing import broker_thread, open_peers

WAIT_MS = 5000


def recv(sock) -> list[bytes]:
    assert sock.poll(WAIT_MS), "nothing arrived"
    return sock.recv_multipart()


def play_session(peers, addresses) -> None:
    """A dispatcher, a client and a subscriber through the proxy, driven by hand."""
    disp = peers.socket(zmq.DEALER, addresses["router"], identity=b"disp-sock")
    client = peers.socket(zmq.DEALER, addresses["router"], identity=b"client-sock")
    sub = peers.socket(zmq.SUB, addresses["subscribe"], subscribe=b"KREC")
    pub = peers.socket(zmq.XPUB, addresses["publish"])
    disp.send_multipart([b"", *encode(Message.new(Direction.DBQ, service="KREC", dispatcher="d1", command="welcome"))])
    assert decode(recv(disp)).payload == "confirmed"
    disp.send_multipart([b"", *encode(Message.new(Direction.DBQ, service="KREC", dispatcher="d1", command="ready"))])
    client.send_multipart([b"", *encode(Message.new(Direction.CDQ, service="KREC", dispatcher="d1",
                                                    keyword="VALUE", command="update"))])
    query = decode(recv(disp))
    assert query.prefix == (b"", b"client-sock", b""), "the broker saw the client's own routing id"
    disp.send_multipart(encode(query.reply("42", dispatcher="d1")))
    assert decode(recv(client)).payload == "42"
    client.send_multipart([b"", *encode(Message.new(Direction.CBQ, service="KREC", command="lookup"))])
    assert decode(recv(client)).payload == addresses["subscribe"], "lookup names the proxy's address"
    assert recv(pub) == [b"\x01KREC"], "the subscription passed the proxy and the broker"
    pub.send_multipart(encode(Message.new(Direction.CDB, service="KREC", dispatcher="d1", keyword="TICK",
                                          command="broadcast", payload="7")))
    assert decode(recv(sub)).payload == "7"


def test_the_proxy_records_real_traffic_and_the_draft_case_replays(tmp_path):
    path = tmp_path / "session.jsonl"
    with broker_thread("tcp", timeout=1.0) as broker, open_peers() as peers:
        e = broker.endpoints
        with path.open("w") as out:
            proxy = RecordingProxy(router=e["broker"], publish=e["publish"], subscribe=e["subscribe"], out=out,
                                   notes={"heartbeat_timeout": 1.0})
            proxy.start()
            try:
                play_session(peers, proxy.endpoints)
            finally:
                proxy.stop()
        header, events = read_recording(path)
        assert header["broker"]["router"] == e["broker"] and header["heartbeat_timeout"] == 1.0
        router = [(ev["peer"], ev["dir"]) for ev in events if ev["socket"] == "router"]
        assert router[:2] == [(b"disp-sock".hex(), "in"), (b"disp-sock".hex(), "out")]
        assert (b"client-sock".hex(), "out") in router
        sides = {(ev["socket"], ev["dir"]) for ev in events}
        assert {("publish", "in"), ("publish", "out"), ("subscribe", "in"), ("subscribe", "out")} <= sides
        assert all(ev["t"] >= 0 and len(ev["frames"]) == len(ev["text"]) for ev in events)
        lookup = [ev for ev in events if ev["dir"] == "out" and "6c6f6f6b7570" in ev["frames"]]
        assert bytes.fromhex(lookup[0]["frames"][6]).decode() == e["subscribe"], "the broker's answer is kept"

        draft = recording_to_case(header, events, case_id="recorded.round-trip", source=path.name)
        case = parse_case(draft, "draft")
        assert set(case.peers) == {"dispatcher", "client", "subscriber", "publisher"}
        assert case.peers["client"].routing_id == "${CLIENT_ID}"
        assert {"SERVICE", "DISP", "CLIENT_ID", "DISPATCHER_ID"} <= set(case.vars)
        settings = Settings(router=e["broker"], publish=e["publish"], subscribe=e["subscribe"])
        [result] = run_suite(settings, cases=[case])
    assert result.status == "pass", result
    [on_core] = run_suite_on_core(lambda lookup, t: BrokerCore(lookup, timeout=t), cases=[case])
    assert on_core.status == "skipped"  # it has pub/sub peers


def test_the_command_records_until_interrupted_and_converts_the_recording(tmp_path, capsys):
    path, case_path = tmp_path / "inquiry.jsonl", tmp_path / "inquiry.yaml"
    with broker_thread("tcp") as broker, open_peers() as peers:
        e = broker.endpoints
        command = [sys.executable, "-m", "cauldron_proto.cli.record", "--router", e["broker"],
                   "--publish", e["publish"], "--subscribe", e["subscribe"], "-o", str(path)]
        recorder = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            listening = dict(recorder.stderr.readline().split() for _ in range(3))
            check = peers.socket(zmq.REQ, listening["router"])
            check.send_multipart(encode(Message.new(Direction.UBQ, command="check")))
            assert decode(recv(check)).payload == "Broker Alive"
        finally:
            recorder.send_signal(signal.SIGINT)
            _, err = recorder.communicate(timeout=10)
    assert recorder.returncode == 0 and "recorded 2 messages" in err
    assert cli.main(["--to-case", str(path), "--id", "recorded.inquiry", "-o", str(case_path)]) == 0
    case = load_case(case_path)
    assert case.id == "recorded.inquiry" and case.recorded_from == "inquiry.jsonl"
    assert [type(s).__name__ for s in case.steps] == ["Send", "Expect"]


def test_converting_needs_an_id_and_a_recording(tmp_path, capsys):
    assert cli.main(["--to-case", str(tmp_path / "missing.jsonl")]) == 2
    assert "--to-case needs --id" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"t": 1}\n')
    assert cli.main(["--to-case", str(tmp_path / "bad.jsonl"), "--id", "x"]) == 2
    assert "not a cauldron-record recording" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert "give the broker's addresses" in capsys.readouterr().err


def test_a_draft_names_its_recording_under_recordings(tmp_path):
    from cauldron_proto.conformance.to_case import recorded_name

    assert recorded_name(tmp_path / "recordings" / "reference" / "scenario-1-read.jsonl") == \
        "reference/scenario-1-read.jsonl"
    assert recorded_name(tmp_path / "recordings" / "lookup.jsonl") == "lookup.jsonl"
    assert recorded_name(tmp_path / "elsewhere" / "x.jsonl") == "x.jsonl"
