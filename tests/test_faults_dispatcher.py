"""Dispatcher faults with real processes: a cauldron-dispatcher frozen (SIGSTOP) or killed
(SIGKILL) with requests in flight, thawed (SIGCONT) or replaced; and dispatchers that answer
slowly or twice. The broker's heartbeat period is short (T = 0.2 s), so a silent dispatcher
expires after EXPIRY_MULTIPLE T = 1 s; deadlines below are generous (that + 2 s) for a busy machine.
"""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from cauldron_proto import EXPIRY_MULTIPLE, Direction, Message, client
from cauldron_proto.testing import ask, open_peers, receive, register_dispatcher, send

from .fault_processes import dispatcher_process
from .keyword_helpers import WAIT, config_for, keyword_broker, serving, wait_for

T = 0.2
EXPIRY = EXPIRY_MULTIPLE * T
MARGIN = 2.0
CLIENTS, READS_EACH = 4, 3


def read_or_error(keyword: client.Keyword, timeout: float = WAIT) -> tuple[object, float]:
    """(value or the exception raised, seconds it took)."""
    start = time.monotonic()
    try:
        result: object = keyword.read(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        result = exc
    return result, time.monotonic() - start


def read_all_at_once(services: list[client.Service]) -> list[tuple[object, float]]:
    """READS_EACH reads from every client at the same time, each in its own thread."""
    results: list = []
    lock = threading.Lock()

    def one(svc: client.Service) -> None:
        outcome = read_or_error(svc["VALUE"])
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(svc,)) for svc in services for _ in range(READS_EACH)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT + MARGIN)
    assert len(results) == len(threads), "a read did not return"
    return results


def in_flight(broker, service: str, name: str) -> int:
    view = broker.get_service(service)
    return 0 if view is None or name not in view.dispatchers else view.dispatchers[name].in_flight


def assert_all_timed_out(results: list[tuple[object, float]], name: str) -> None:
    for outcome, seconds in results:
        assert isinstance(outcome, client.DispatcherTimeoutError), outcome
        assert isinstance(outcome, TimeoutError) and outcome.text == "Dispatcher Timed Out"
        assert outcome.dispatcher == name
        assert seconds <= EXPIRY + MARGIN, f"answered after {seconds:.2f} s"


@pytest.fixture
def broker():
    with keyword_broker(timeout=T) as running:
        yield running


@pytest.fixture
def clients(broker):
    services = [client.Service("KFAULT", config_for(broker), timeout=WAIT) for _ in range(CLIENTS)]
    try:
        yield services
    finally:
        for svc in services:
            svc.shutdown()


def test_frozen_dispatcher_times_out_then_is_served_again_when_thawed(broker, clients):
    config = config_for(broker)
    with dispatcher_process(config, "KFAULT", "kfault1", "VALUE=1") as disp:
        assert all(svc["VALUE"].read() == "1" for svc in clients)
        disp.freeze()
        results = read_all_at_once(clients)
        assert_all_timed_out(results, "kfault1")
        assert broker.get_service("KFAULT") is None  # its only dispatcher expired: nothing kept
        assert broker.core.stats.timed_out >= CLIENTS * READS_EACH
        stats = broker.core.stats
        registered = stats.registered + stats.readmitted
        disp.thaw()  # it answers the heartbeats queued for it (readmitted), or welcomes again
        wait_for(lambda: stats.registered + stats.readmitted > registered, timeout=WAIT, message="registered again")
        for svc in clients:
            assert wait_for(lambda: read_or_error(svc["VALUE"], 1.0)[0] == "1", message="served again")
        assert in_flight(broker, "KFAULT", "kfault1") == 0


def test_killed_dispatcher_times_out_and_a_new_process_is_served(broker, clients):
    config = config_for(broker)
    with dispatcher_process(config, "KFAULT", "kfault1", "VALUE=1") as disp:
        assert all(svc["VALUE"].read() == "1" for svc in clients)  # identified: no fan-out below
        disp.freeze()  # so that every request below is in flight when it dies
        outcomes: list = []
        readers = [threading.Thread(target=lambda s=svc: outcomes.append(read_or_error(s["VALUE"])))
                   for svc in clients for _ in range(READS_EACH)]
        for reader in readers:
            reader.start()
        wait_for(lambda: in_flight(broker, "KFAULT", "kfault1") == len(readers) or len(outcomes),
                 message="requests in flight")
        disp.kill()
        for reader in readers:
            reader.join(WAIT + MARGIN)
        assert len(outcomes) == len(readers)
        assert_all_timed_out(outcomes, "kfault1")
    with dispatcher_process(config, "KFAULT", "kfault1", "VALUE=5"):
        for svc in clients:
            assert wait_for(lambda: read_or_error(svc["VALUE"], 1.0)[0] == "5", message="served by the new process")


def test_slow_dispatcher_answers_once_and_is_not_expired(broker):
    """A handler slower than the expiry (6 T > EXPIRY_MULTIPLE T): heartbeats keep it registered, and each
    request gets exactly one answer."""
    config = config_for(broker)
    slow = {"type": "integer", "value": 3, "on_read": lambda kw: time.sleep(6 * T) or 4}
    with serving("KSLOW", config, "slow1", VALUE=slow), open_peers(zmq.Context()) as peers:
        dealer = peers.socket(zmq.DEALER, config["broker"])
        requests = [Message.new(Direction.CDQ, service="KSLOW", dispatcher="slow1", keyword="VALUE",
                                command="update") for _ in range(5)]
        for request in requests:
            send(dealer, request)
        answers = collect(dealer, seconds=6 * T + 1.0, until=len(requests))
        assert sorted(a.identifier for a in answers) == sorted(r.identifier for r in requests)
        assert {a.payload for a in answers} == {"4"} and not collect(dealer, seconds=3 * T)
        assert broker.core.stats.expired == 0
        peers.close()
        peers.context.term()


def test_dispatcher_answering_twice_gives_one_answer_each(broker):
    """A raw dispatcher sends every reply twice (and once more, late): a DEALER client gets
    one answer per request, and a REQ client's next request gets its own answer."""
    with open_peers(zmq.Context()) as peers:
        disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(disp, "KTWICE", "twice1")
        dealer = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        req = peers.socket(zmq.REQ, broker.endpoints["broker"])
        late = []
        for n in range(10):
            sock = req if n % 2 else dealer
            request = Message.new(Direction.CDQ, service="KTWICE", dispatcher="twice1", keyword="VALUE",
                                  command="update")
            send(sock, request)
            forwarded = receive_request(disp)
            reply = forwarded.reply(str(n), dispatcher="twice1")
            send(disp, reply)
            send(disp, reply)
            late.append(reply)
            answer = receive(sock)
            assert (answer.identifier, answer.payload) == (request.identifier, str(n))
        for reply in late:
            send(disp, reply)
        assert ask(disp, Message.new(Direction.UBQ, command="check")).payload == "Broker Alive"  # all handled
        assert not collect(dealer, seconds=0.3)
        assert broker.core.stats.dropped_by_reason.get("reply_to_nothing_in_flight") == 20
        peers.close()
        peers.context.term()


def receive_request(disp: zmq.Socket) -> Message:
    """The next request forwarded to a raw dispatcher (heartbeats answered on the way)."""
    while True:
        message = receive(disp)
        if message.direction in (Direction.CDQ, Direction.SDQ):
            return message
        if message.command == "heartbeat":
            send(disp, message.reply("0").with_prefix(b""))


def collect(sock: zmq.Socket, seconds: float, until: int | None = None) -> list[Message]:
    """Every message arriving on ``sock`` within ``seconds`` (or until ``until`` of them came)."""
    got, end = [], time.monotonic() + seconds
    while (until is None or len(got) < until) and sock.poll(max(0, int((end - time.monotonic()) * 1000))):
        got.append(receive(sock))
    return got
