"""cauldron_proto.testing through real sockets, threads and processes: brokers, child
processes and raw peers, and the errors they raise on bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
import zmq

from cauldron_proto import Direction, Message, Text, decode, encode, kinds
from cauldron_proto.broker import BrokerError, ZMQBroker
from cauldron_proto.testing import (
    ANY_LOOPBACK, WAIT, ChildProcess, NothingReceivedError, NothingSentError, PeerSockets, UnexpectedMessageError,
    answer_heartbeat, answer_request, ask, broker_command, broker_process, broker_thread, config_for, dispatcher_answer,
    inproc_addresses, open_peers, receive, register_dispatcher, send,
)

INQUIRY = {"direction": Direction.UBQ, "command": "check"}
SILENT = "import time; time.sleep(60)"
TICKER = "import time\nprint('ready', flush=True)\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.02)"


def python(script: str, **kwargs) -> ChildProcess:
    return ChildProcess([sys.executable, "-c", script], **kwargs)


def request(**fields) -> Message:
    return Message.new(Direction.CDQ, **{"service": "KTEST", "dispatcher": "disp1", "keyword": "VALUE",
                                         "command": "update", **fields})


def bound(peers: PeerSockets, kind: int, tag: str) -> tuple[zmq.Socket, str]:
    """A socket of ``kind`` bound to a fresh inproc address, and the address."""
    address = inproc_addresses(tag)["broker"]
    sock = peers.socket(kind)
    sock.bind(address)
    return sock, address


class StandIn:
    """A ROUTER in its own thread: ``respond(message)`` gives the messages to send back to
    the peer that sent ``message`` (each with the peer's prefix); it serves ``count`` messages."""

    def __init__(self, peers: PeerSockets, respond, count: int = 1):
        self.router, self.address = bound(peers, zmq.ROUTER, "stand-in")
        self.respond, self.count, self.error = respond, count, None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            for _ in range(self.count):
                if not self.router.poll(WAIT * 1000):
                    return
                frames = self.router.recv_multipart()
                for answer in self.respond(decode(frames[1:])):
                    self.router.send_multipart([frames[0], *encode(answer)])
        except BaseException as exc:  # noqa: BLE001 - the test sees it in join()
            self.error = exc

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive() and self.error is None, self.error


# -- broker_thread, inproc_addresses -------------------------------------------------------

@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_broker_thread_serves_on_its_endpoints_and_stops_on_exit(transport):
    with broker_thread(transport, name="served") as broker, open_peers(broker.context) as peers:
        assert broker.is_alive() and set(broker.endpoints) == {"broker", "publish", "subscribe"}
        prefix = "tcp://127.0.0.1:" if transport == "tcp" else "inproc://"
        assert all(address.startswith(prefix) for address in broker.endpoints.values())
        client = peers.socket(zmq.REQ, broker.endpoints["broker"])
        assert ask(client, Message.new(**INQUIRY)).payload == Text.BROKER_ALIVE
    assert not broker.is_alive()


def test_broker_thread_sets_attributes_and_stops_when_the_body_raises():
    with pytest.raises(KeyError):
        with broker_thread("inproc", timeout=0.5, heartbeat=False, max_message_size=1024) as broker:
            assert (broker.max_message_size, broker.timeout, broker.heartbeat) == (1024, 0.5, False)
            raise KeyError("the body failed")
    assert not broker.is_alive()


def test_broker_thread_refuses_bad_arguments_before_starting():
    before = threading.active_count()
    with pytest.raises(ValueError, match="transport must be 'tcp' or 'inproc', not 'udp'"):
        with broker_thread("udp"):
            pass
    with pytest.raises(TypeError, match="ZMQBroker has no setting 'max_mesage_size'"):
        with broker_thread("inproc", max_mesage_size=10):
            pass
    assert threading.active_count() == before


def test_inproc_addresses_are_fresh_each_time():
    first, second = inproc_addresses("x"), inproc_addresses("x")
    assert set(first) == {"broker", "publish", "subscribe"}
    assert all(a.startswith("inproc://x-") for a in first.values())
    assert len(set(first.values()) | set(second.values())) == 6


# -- broker_process, broker_command, config_for ---------------------------------------------

def test_broker_command_lists_the_options_given():
    assert broker_command() == [sys.executable, "-m", "cauldron_proto.cli.broker", "--router", ANY_LOOPBACK,
                                "--publish", ANY_LOOPBACK, "--subscribe", ANY_LOOPBACK, "--timeout", "1.0"]
    assert broker_command("-v", router=None, publish=None, subscribe="tcp://localhost:7000", timeout=None,
                          program=["cauldron-broker"]) == ["cauldron-broker", "--subscribe", "tcp://localhost:7000", "-v"]


@pytest.mark.parametrize("kwargs, error, says", [
    ({"timeout": 0}, ValueError, "timeout must be a positive number of seconds, not 0"),
    ({"timeout": "soon"}, ValueError, "not 'soon'"),
    ({"program": "cauldron-broker"}, TypeError, "program must be a list"),
    ({"router": 6513}, TypeError, "--router takes an address string, not 6513"),
])
def test_broker_command_refuses_bad_arguments(kwargs, error, says):
    with pytest.raises(error, match=says):
        broker_command(**kwargs)
    with pytest.raises(error, match=says):
        broker_process(**kwargs)  # before starting anything


def test_broker_process_announces_loopback_endpoints_serves_and_stops_cleanly():
    with broker_process("--lookup", "tcp://gateway.example.org:6511", timeout=0.5) as broker:
        assert broker.popen.poll() is None
        assert set(broker.endpoints) == {"broker", "publish", "subscribe"}
        assert all(a.startswith("tcp://127.0.0.1:") for a in broker.endpoints.values())
        with open_peers() as peers:
            client = peers.socket(zmq.REQ, broker.endpoints["broker"])
            assert ask(client, Message.new(**INQUIRY)).payload == Text.BROKER_ALIVE
            lookup = ask(client, Message.new(Direction.CBQ, command="lookup"))
            assert lookup.payload == "tcp://gateway.example.org:6511"
        assert config_for(broker, pool=2) == {**broker.endpoints, "timeout": "0.5", "pool": "2"}
        assert broker.stop() == 0  # SIGTERM: a clean exit
    assert broker.popen.returncode == 0 and broker.popen.stdout.closed and broker.popen.stderr.closed


def test_broker_process_that_cannot_bind_raises_broker_error_with_its_stderr():
    with open_peers() as peers:
        port = peers.socket(zmq.ROUTER).bind_to_random_port("tcp://127.0.0.1")
        with pytest.raises(BrokerError, match=r"exited \(status 1\).*Address already in use"):
            broker_process(router=f"tcp://localhost:{port}")


def test_broker_process_that_announces_nothing_is_stopped_with_broker_error():
    with pytest.raises(BrokerError, match="announced no endpoints within 0.3 s"):
        broker_process(program=[sys.executable, "-c", SILENT], router=None, publish=None, subscribe=None,
                       timeout=None, startup_timeout=0.3)


def test_config_for_a_broker_thread_and_refusals():
    with broker_thread("tcp", timeout=0.25) as broker:
        assert config_for(broker) == {**broker.endpoints, "timeout": "0.25"}
    with pytest.raises(TypeError, match="config_for takes a broker thread or broker process"):
        config_for("tcp://localhost:6513")
    idle = ZMQBroker("never-started", *["inproc://never"] * 4)
    with pytest.raises(ValueError, match="no broker, publish, subscribe endpoint"):
        config_for(idle)


# -- ChildProcess ---------------------------------------------------------------------------

def test_child_process_lines_stderr_and_exit_status():
    with python("import sys\nprint('one', flush=True)\nsys.stderr.write('oops\\n')\nsys.exit(3)") as child:
        assert child.read_line() == "one\n"
        assert child.wait() == 3
        assert child.stderr_text() == "oops\n"
        with pytest.raises(NothingReceivedError, match=r"exited \(status 3\) with no more output; stderr: 'oops\\n'"):
            child.read_line()
        with pytest.raises(NothingReceivedError, match="exited"):
            child.read_line()  # and again: the end stays the end


def test_child_process_environment_is_added_to_ours():
    with python("import os; print(os.environ['CAULDRON_TESTING_VALUE'], 'PATH' in os.environ)",
                env={"CAULDRON_TESTING_VALUE": "given"}) as child:
        assert child.read_line() == "given True\n"


def test_child_process_timeouts():
    with python(SILENT) as child:
        with pytest.raises(NothingReceivedError, match=r"no output within 0.2 s \(still running"):
            child.read_line(0.2)
        with pytest.raises(TimeoutError, match="still running after 0.2 s"):
            child.wait(0.2)
        with pytest.raises(ValueError, match="timeout must be a non-negative number"):
            child.read_line(-1)
        assert child.stop() == -signal.SIGTERM
    assert child.popen.stdout.closed and child.popen.stderr.closed


def test_child_process_freeze_thaw_kill():
    with python(TICKER) as child:
        assert child.read_line() == "ready\n"
        child.freeze()
        _pid, status = os.waitpid(child.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
        child.thaw()
        _pid, status = os.waitpid(child.pid, os.WCONTINUED)
        assert os.WIFCONTINUED(status)
        assert child.read_line() == "tick\n"
        assert child.kill() == -signal.SIGKILL
        assert child.stop() == -signal.SIGKILL  # stopping a dead child is harmless


def test_child_process_stop_kills_one_that_ignores_sigterm():
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"
    child = python(script)
    try:
        assert child.read_line() == "ready\n"
        assert child.stop(timeout=0.3) == -signal.SIGKILL
    finally:
        child.stop()


def test_child_process_refuses_a_command_line_as_one_string():
    with pytest.raises(TypeError, match="argv must be a non-empty list"):
        ChildProcess("python -c pass")
    with pytest.raises(TypeError, match="argv must be a non-empty list"):
        ChildProcess([])


# -- raw peers ------------------------------------------------------------------------------

def test_peer_sockets_options_and_close():
    context = zmq.Context()
    try:
        with open_peers(context) as peers:
            dealer = peers.socket(zmq.DEALER, identity=b"me")
            sub = peers.socket(zmq.SUB, subscribe=b"KTEST")
            assert peers.context is context and peers.sockets == [dealer, sub]
            assert (dealer.linger, dealer.identity, sub.linger) == (0, b"me", 0)
        assert dealer.closed and sub.closed and peers.sockets == []
    finally:
        context.term()  # returns only because every socket is closed
    assert PeerSockets().context is zmq.Context.instance()


def test_sub_socket_receives_only_its_topic():
    with open_peers() as peers:
        pub, address = bound(peers, zmq.PUB, "pubsub")
        sub = peers.socket(zmq.SUB, address, subscribe=b"ktest")
        other = Message.new(Direction.CDB, service="OTHER", keyword="X", command="broadcast", payload="1")
        mine = Message.new(Direction.CDB, service="ktest", keyword="VALUE", command="broadcast", payload="2")
        while not sub.poll(10):  # until the subscription has reached the PUB
            send(pub, other)
            send(pub, mine)
        assert receive(sub).service == "ktest"


def test_send_puts_the_delimiter_before_a_dealers_message_only():
    with open_peers() as peers:
        router, address = bound(peers, zmq.ROUTER, "send")
        dealer = peers.socket(zmq.DEALER, address, identity=b"dealer")
        message = Message.new(**INQUIRY)
        send(dealer, message)
        assert router.recv_multipart() == [b"dealer", b"", *encode(message)]
        prefixed = message.with_prefix(b"", b"route", b"")
        send(dealer, prefixed)
        assert router.recv_multipart() == [b"dealer", *encode(prefixed)]
        req = peers.socket(zmq.REQ, address, identity=b"req")
        send(req, message)
        assert router.recv_multipart() == [b"req", b"", *encode(message)]  # REQ's own delimiter
        with pytest.raises(TypeError, match="send takes a Message, not list"):
            send(dealer, encode(message))


def test_send_gives_up_with_nothing_sent_when_the_socket_has_no_peer():
    """A DEALER with no connection takes no message (as one whose CURVE handshake was refused):
    send raises NothingSentError after its timeout instead of blocking forever."""
    with open_peers() as peers:
        lonely = peers.socket(zmq.DEALER)
        with pytest.raises(NothingSentError, match="UBQ 'check' could not be sent within 0.05 s"):
            send(lonely, Message.new(**INQUIRY), timeout=0.05)
        with pytest.raises(zmq.Again):
            send(lonely, Message.new(**INQUIRY), zmq.NOBLOCK)
        router, address = bound(peers, zmq.ROUTER, "nothing-sent")
        lonely.connect(address)
        send(lonely, Message.new(**INQUIRY), timeout=0.05)
        assert router.poll(WAIT * 1000)


def test_receive_decodes_keeping_the_prefix_and_times_out():
    with open_peers() as peers:
        router, address = bound(peers, zmq.ROUTER, "receive")
        dealer = peers.socket(zmq.DEALER, address, identity=b"d")
        with pytest.raises(NothingReceivedError, match="nothing arrived within 0.05 s"):
            receive(dealer, 0.05)
        message = Message.new(**INQUIRY)
        send(dealer, message)
        frames = router.recv_multipart()
        router.send_multipart([frames[0], *encode(decode(frames[1:]).reply(Text.BROKER_ALIVE))])
        answer = receive(dealer)
        assert (answer.prefix, answer.payload, answer.identifier) == ((b"",), Text.BROKER_ALIVE, message.identifier)
        with pytest.raises(ValueError, match="timeout must be a non-negative number of seconds, not -1"):
            receive(dealer, -1)


def test_ask_skips_other_messages_and_names_the_request_when_unanswered():
    with open_peers() as peers:
        def unrelated_then_answer(message):
            return [Message.new(Direction.UBP, command="check", payload="stale", prefix=message.prefix),
                    message.reply(Text.BROKER_ALIVE)]

        stand_in = StandIn(peers, unrelated_then_answer)
        dealer = peers.socket(zmq.DEALER, stand_in.address)
        question = Message.new(**INQUIRY)
        answer = ask(dealer, question)
        stand_in.join()
        assert (answer.payload, answer.identifier) == (Text.BROKER_ALIVE, question.identifier)
        with pytest.raises(NothingReceivedError, match="no answer to UBQ 'check' within 0.1 s"):
            ask(dealer, Message.new(**INQUIRY), 0.1)  # the stand-in has stopped serving


def test_register_then_answer_requests_through_a_broker():
    with broker_thread("inproc", timeout=60.0) as broker, open_peers(broker.context) as peers:
        disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(disp, "KTEST", "disp1")
        assert broker.get_service("KTEST").dispatchers["disp1"] is not None
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        asked = request()
        send(client, asked)
        forwarded = answer_request(disp, "disp1", "42")
        assert (forwarded.direction, forwarded.identifier, len(forwarded.prefix)) == (Direction.CDQ, asked.identifier, 3)
        answer = receive(client)
        assert (answer.direction, answer.payload, answer.dispatcher) == (Direction.CDP, "42", "disp1")
        send(client, request())
        answer_request(disp, "disp1", "Bad keyword", error=True)
        refused = receive(client)
        assert (refused.direction, refused.payload) == (Direction.CDE, "Bad keyword")


def test_answered_heartbeats_keep_a_dispatcher_registered():
    """T = 0.1 s: unanswered, a dispatcher is expired after EXPIRY_MULTIPLE T; answered, it is still served."""
    with broker_thread("inproc", timeout=0.1) as broker, open_peers(broker.context) as peers:
        kept, dropped = (peers.socket(zmq.DEALER, broker.endpoints["broker"]) for _ in range(2))
        register_dispatcher(kept, "KTEST", "disp1")
        register_dispatcher(dropped, "KTEST", "disp2")
        for _ in range(10):  # about 10 T
            beat = answer_heartbeat(kept)
            assert (beat.direction, beat.command, beat.dispatcher) == (Direction.DBP, "heartbeat", "disp1")
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        send(client, request())
        answer_request(kept, "disp1", "alive")
        assert receive(client).payload == "alive"
        send(client, request(dispatcher="disp2"))
        assert receive(client).direction == Direction.CDE  # disp2 has expired


def test_heartbeat_and_request_helpers_refuse_the_other_kind():
    with broker_thread("inproc", timeout=0.1) as broker, open_peers(broker.context) as peers:
        disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(disp, "KTEST", "disp1")
        with pytest.raises(UnexpectedMessageError, match="expected a request, got a heartbeat"):
            answer_request(disp, "disp1", "42")
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        send(client, request())
        for _ in range(100):  # heartbeats queued before the request are answered; then the request is refused
            try:
                answer_heartbeat(disp)
            except UnexpectedMessageError as exc:
                assert "expected a heartbeat, got" in str(exc) and "CDQ" in str(exc)
                break
        else:
            pytest.fail("the request never reached the dispatcher")


def test_register_dispatcher_refuses_an_unconfirmed_welcome_and_a_req_socket():
    with open_peers() as peers:
        stand_in = StandIn(peers, lambda message: [message.error(Text.UNKNOWN_COMMAND)])
        disp = peers.socket(zmq.DEALER, stand_in.address)
        with pytest.raises(UnexpectedMessageError, match="welcome of KTEST/disp1 not confirmed"):
            register_dispatcher(disp, "KTEST", "disp1")
        stand_in.join()
        req = peers.socket(zmq.REQ, stand_in.address)
        for helper in (lambda: register_dispatcher(req, "KTEST", "disp1"), lambda: answer_heartbeat(req),
                       lambda: answer_request(req, "disp1", "42")):
            with pytest.raises(TypeError, match="needs a DEALER socket"):
                helper()


def test_dispatcher_answer_answers_a_heartbeat_or_replies():
    beat = Message.new(Direction.DBP, service="KTEST", dispatcher="disp1", command="heartbeat", payload="beat",
                       prefix=(b"",))
    answer = dispatcher_answer(beat, "disp1")
    assert kinds.is_heartbeat_answer(answer)
    assert (answer.prefix, answer.identifier, answer.dispatcher) == ((b"",), beat.identifier, "disp1")
    assert float(answer.payload) > 1.7e9  # the time now
    forwarded = request(prefix=(b"", b"client", b""))
    reply = dispatcher_answer(forwarded, "disp1", "7")
    assert (reply.direction, reply.payload, reply.prefix) == (Direction.CDP, "7", forwarded.prefix)
    assert dispatcher_answer(forwarded, "disp1", "no", error=True).direction == Direction.CDE
    with pytest.raises(TypeError, match="dispatcher_answer takes a Message, not list"):
        dispatcher_answer(encode(forwarded), "disp1")


def test_the_helpers_failures_are_assertion_errors():
    assert all(issubclass(error, AssertionError)
               for error in (NothingReceivedError, NothingSentError, UnexpectedMessageError))


def test_importing_the_package_loads_no_testing_helpers_and_they_need_no_test_framework():
    code = ("import sys, cauldron_proto; assert 'cauldron_proto.testing' not in sys.modules; "
            "import cauldron_proto.testing; print(sorted(m for m in ('pytest', '_pytest') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (loaded.returncode, loaded.stdout.strip()) == (0, "[]"), loaded.stderr


def test_the_documented_example_runs(root):
    page = (root / "docs" / "testing.md").read_text(encoding="utf-8")
    [code] = page.split("```python\n")[1:]
    namespace: dict = {}
    exec(compile(code.split("```", 1)[0], "docs/testing.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()
