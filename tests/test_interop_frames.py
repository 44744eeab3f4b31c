"""Our broker and helpers driven with the existing Cauldron peers' exact recorded frames.

The existing implementation cannot run in CI; its traffic can. Each test replays frames from
``conformance/recordings/reference/`` (the existing client, dispatcher and broker talking,
nothing of ours on the wire) through real sockets and checks what a peer would see.
``scripts/interop.py`` runs the existing peers themselves (see docs/interop.md).
"""

from __future__ import annotations

import threading

import pytest
import zmq

from cauldron_proto import EXPIRY_MULTIPLE, Direction, Message, client, decode, dispatcher
from scripts.interop import serve_keywords
from cauldron_proto.testing import WAIT, open_peers

from .keyword_helpers import config_for, keyword_broker, wait_for
from .reference_traces import client_exchanges, dispatcher_reply_to, router

SCENARIOS = ["scenario-1-read", "scenario-2-write", "scenario-4-lookup", "scenario-6-check-heartbeat"]
#: The existing dispatcher's error texts are Python reprs (ValueError("..."), TypeError("...")):
#: ours answer the same requests with an error reply of our own text (README, dispatcher helper).
OWN_ERROR_TEXT = {"modify", "bogus"}


def take(sock: zmq.Socket, wanted, timeout: float = WAIT) -> list[bytes]:
    """The next frames on ``sock`` that ``wanted(message)`` accepts (heartbeats are passed over)."""
    while True:
        assert sock.poll(timeout * 1000), "nothing arrived"
        frames = sock.recv_multipart()
        if wanted(decode(frames)):
            return frames


def request_frames(recorded) -> list[bytes]:
    """A DEALER peer's frames for a recorded request: the delimiter, then the exact envelope."""
    return [b"", *recorded.envelope]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_our_dispatcher_answers_the_existing_clients_requests_as_the_existing_dispatcher(scenario):
    """Every request the existing client sent (reads with an empty payload, writes of "" and
    of non-ASCII text, identify fan-outs, units, enumerate, typed writes), in order, to our
    dispatcher through our broker: the same answers as the existing dispatcher gave."""
    with keyword_broker(timeout=5.0) as broker, open_peers(zmq.Context()) as peers:
        config = config_for(broker)
        with dispatcher.Service("testsvc", config, "disp1", setup=serve_keywords) as disp:
            assert disp.wait_registered(WAIT)
            sock = peers.socket(zmq.DEALER, broker.endpoints["broker"])
            for request, recorded in client_exchanges(scenario):
                sock.send_multipart(request_frames(request))
                ours = decode(take(sock, lambda m, i=request.message.identifier: m.identifier == i))
                want = recorded.message
                where = f"{request.source}: {request.message!r}"
                assert (ours.direction, ours.dispatcher, ours.keyword, ours.command) == \
                    (want.direction, want.dispatcher, want.keyword, want.command), where
                if want.command == "lookup":
                    assert ours.payload == broker.endpoints["subscribe"], where
                elif not (want.is_error and want.command in OWN_ERROR_TEXT):
                    assert ours.payload == want.payload, where
        peers.context.destroy(linger=0)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_our_broker_relays_the_existing_peers_exact_frames(scenario):
    """The existing client's requests and the existing dispatcher's exact replies through our
    broker: the dispatcher gets the envelope the existing broker forwarded (the learned owner
    named in keyword-routed requests), the client the envelope the existing broker answered."""
    with keyword_broker(timeout=5.0) as broker, open_peers(zmq.Context()) as peers:
        disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        welcome, ready = (r for r in router(scenario, "in", Direction.DBQ) if r.message.command in ("welcome", "ready"))
        disp.send_multipart(request_frames(welcome))
        assert take(disp, lambda m: m.command == "welcome")[1:] == list(
            next(r for r in router(scenario, "out", Direction.DBP) if r.message.command == "welcome").envelope)
        disp.send_multipart(request_frames(ready))
        clients: dict[str, zmq.Socket] = {}
        forwarded = {r.message.identifier: r for r in router(scenario, "out", Direction.CDQ, Direction.SDQ)}
        for request, recorded in client_exchanges(scenario):
            sock = clients.setdefault(request.peer, peers.socket(zmq.DEALER, broker.endpoints["broker"]))
            sock.send_multipart(request_frames(request))
            identifier = request.message.identifier
            if identifier in forwarded:  # the existing broker passed it on: so must ours
                got = take(disp, lambda m, i=identifier: m.identifier == i and m.direction in ("CDQ", "SDQ"))
                assert tuple(got[-7:]) == forwarded[identifier].envelope, request.source
                reply = dispatcher_reply_to(scenario, forwarded[identifier].message)
                disp.send_multipart([*got[:-7], *reply.envelope])  # its prefix back, the recorded reply
            answer = take(sock, lambda m, i=identifier: m.identifier == i)
            if recorded.message.command == "lookup":
                assert decode(answer).payload == broker.endpoints["subscribe"], request.source
            else:
                assert tuple(answer[1:]) == recorded.envelope, request.source
        peers.context.destroy(linger=0)


class RecordedDispatcher:
    """A DEALER answering as the existing dispatcher did: each forwarded request gets the
    recorded reply to the recorded request with the same command, keyword and payload."""

    def __init__(self, sock: zmq.Socket, scenarios: list[str]):
        self.sock, self.replies, self.requests = sock, {}, []
        for scenario in scenarios:
            for out in router(scenario, "out", Direction.CDQ, Direction.SDQ):
                m = out.message
                key = (m.direction, m.command, m.keyword, m.payload)
                self.replies.setdefault(key, dispatcher_reply_to(scenario, m).envelope)

    def register(self) -> None:
        welcome = router("scenario-1-read", "in", Direction.DBQ)[0]
        self.sock.send_multipart(request_frames(welcome))
        take(self.sock, lambda m: m.command == "welcome")
        self.sock.send_multipart(request_frames(router("scenario-1-read", "in", Direction.DBQ)[1]))

    def serve(self, stop) -> None:
        while not stop.is_set():
            if not self.sock.poll(20):
                continue
            frames = self.sock.recv_multipart()
            m = decode(frames)
            if m.direction not in ("CDQ", "SDQ"):
                continue
            self.requests.append(m)
            reply = self.replies[(m.direction, m.command, m.keyword, m.payload)]
            self.sock.send_multipart([*frames[:-7], *reply[:6], m.identifier])


def test_our_client_reads_the_existing_dispatchers_answers():
    """Our client.Service against the existing dispatcher's recorded answers: an empty value,
    no value, typed values, units (null, a string, the enumerator map), an enumerated value
    as its name, a missing keyword; and it asks as the existing client does."""
    with keyword_broker(timeout=5.0) as broker, open_peers(zmq.Context()) as peers:
        fake = RecordedDispatcher(peers.socket(zmq.DEALER, broker.endpoints["broker"]),
                                  ["scenario-1-read", "scenario-4-lookup"])
        fake.register()
        stop = threading.Event()
        serving = threading.Thread(target=fake.serve, args=(stop,))
        serving.start()
        try:
            with client.Service("TESTSVC", config_for(broker), timeout=WAIT) as svc:
                reads = {k: svc[k].read() for k in ("STRING", "INTEGER", "EMPTY", "NOVALUE", "DOUBLE", "BOOL", "MODE")}
                assert reads == {"STRING": "hello", "INTEGER": "42", "EMPTY": "", "NOVALUE": None,
                                 "DOUBLE": "3.25", "BOOL": "1", "MODE": "On"}
                assert svc["MODE"].read(binary=True) == 1 and svc["BOOL"].read(binary=True) is True
                assert (svc["STRING"].units(), svc["TEMP"].units()) == (None, "\u00b0C")
                assert svc["MODE"].enumerators == {0: "Off", 1: "On", 2: "Standby"}
                with pytest.raises(client.UnknownKeywordError):
                    svc["NOSUCH"]
        finally:
            stop.set()
            serving.join()
        sent = fake.requests
        assert sent and {m.service for m in sent} == {"testsvc"}  # lower case, as existing peers send it
        assert all(m.payload == "" for m in sent if m.command in ("update", "units"))
        peers.context.destroy(linger=0)


def test_a_stalled_existing_dispatcher_is_served_again_on_its_heartbeat_answer():
    """Its exact heartbeat answer (upper-cased service, one decimal) after it expired: it is
    registered again without welcome, never sent a DBE, and the existing client's exact read
    (blank dispatcher: routed by the owner learned before the stall) reaches it."""
    with keyword_broker(timeout=0.2) as broker, open_peers(zmq.Context()) as peers:
        fake = RecordedDispatcher(peers.socket(zmq.DEALER, broker.endpoints["broker"]), ["scenario-6-check-heartbeat"])
        fake.register()
        user = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        (identify, _), (read, _) = [x for x in client_exchanges("scenario-6-check-heartbeat")
                                    if x[0].message.direction in ("CSQ", "CDQ")][:2]
        for request in (identify, read):  # learned: STRING belongs to disp1
            user.send_multipart(request_frames(request))
            forwarded = decode(take(fake.sock, lambda m: m.direction in ("CDQ", "SDQ")))
            fake.sock.send_multipart([b"", forwarded.client, b"", *dispatcher_reply_to(
                "scenario-6-check-heartbeat", forwarded).envelope])
            take(user, lambda m, i=request.message.identifier: m.identifier == i)
        wait_for(lambda: broker.get_service("testsvc") is None, timeout=EXPIRY_MULTIPLE * 0.2 + WAIT, message="expired")
        while fake.sock.poll(0):
            fake.sock.recv_multipart()  # the heartbeats it slept through
        beat_answer = next(r for r in router("scenario-6-check-heartbeat", "in", Direction.DBQ)
                           if r.message.command == "heartbeat")
        fake.sock.send_multipart(request_frames(beat_answer))
        wait_for(lambda: broker.get_service("testsvc") is not None, message="registered again")
        user.send_multipart(request_frames(read))
        got = decode(take(fake.sock, lambda m: m.direction == "CDQ"))
        assert (got.dispatcher, got.keyword, got.identifier) == ("disp1", "STRING", read.message.identifier)
        assert broker.core.stats.readmitted == 1
        assert "not_registered_told_already" not in broker.core.stats.dropped_by_reason
        peers.context.destroy(linger=0)


def test_a_restarted_dispatcher_serves_a_client_that_never_identifies_again():
    """The existing client identifies STRING once, then sends every read with a blank
    dispatcher. Its dispatcher expires and a new one registers under the same name from a new
    socket: the client's next read (the exact recorded frames) reaches the new one."""
    with keyword_broker(timeout=0.2) as broker, open_peers(zmq.Context()) as peers:
        first = RecordedDispatcher(peers.socket(zmq.DEALER, broker.endpoints["broker"]), ["scenario-1-read"])
        first.register()
        user = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        (identify, _), (read, _) = [x for x in client_exchanges("scenario-1-read") if x[0].message.direction in ("CSQ", "CDQ")][:2]
        for request in (identify, read):
            user.send_multipart(request_frames(request))
            forwarded = decode(take(first.sock, lambda m: m.direction in ("CDQ", "SDQ")))
            first.sock.send_multipart([b"", forwarded.client, b"", *dispatcher_reply_to("scenario-1-read", forwarded).envelope])
            take(user, lambda m, i=request.message.identifier: m.identifier == i)
        first.sock.close(linger=0)  # it dies
        wait_for(lambda: broker.get_service("testsvc") is None, timeout=EXPIRY_MULTIPLE * 0.2 + WAIT, message="expired")
        second = RecordedDispatcher(peers.socket(zmq.DEALER, broker.endpoints["broker"]), ["scenario-1-read"])
        second.register()
        again = Message(read.message.prefix, read.message.direction, (*read.envelope[:6], b"a-new-read-id"))
        user.send_multipart([b"", *again.frames])
        got = decode(take(second.sock, lambda m: m.direction == "CDQ"))
        assert (got.dispatcher, got.keyword, got.payload) == ("disp1", "STRING", "")
        peers.context.destroy(linger=0)
