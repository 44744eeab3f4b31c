"""The broker's hot path keeps behaviour: respond() by hand serves one message per call; the
thread's loop serves queued requests in order (the first at once, the rest in flushes); large
payloads are relayed intact; broadcasts are relayed by their own thread, which close() stops."""

from __future__ import annotations

import threading

import zmq

from cauldron_proto import Direction, Message, decode, encode
from cauldron_proto.broker.zmq_broker import LISTEN_BACKLOG
from cauldron_proto.broker.sockets import FLUSH
from cauldron_proto.testing import broker_thread, open_peers, receive, send

from .brokers import hand_broker


def register(broker, dispatcher, name="disp1"):
    send(dispatcher, Message.new(Direction.DBQ, service="KTEST", dispatcher=name, command="welcome"))
    while not dispatcher.poll(0):
        broker.respond()
    assert receive(dispatcher).payload is not None


def gather(broker, sock, count):
    """Call respond() until ``count`` messages wait on ``sock``; return them in arrival order."""
    got = []
    for _ in range(1000):
        while sock.poll(0):
            got.append(decode(sock.recv_multipart()))  # keeps the DEALER's prefix
        if len(got) >= count:
            return got
        broker.respond()
    raise AssertionError(f"{len(got)} of {count} messages arrived")


def test_bound_sockets_queue_a_burst_of_connections():
    with hand_broker() as broker:
        sockets = broker._local.sockets
        for sock in (sockets.router, sockets.xpub, sockets.xsub):
            assert sock.getsockopt(zmq.BACKLOG) == LISTEN_BACKLOG


def test_respond_by_hand_serves_one_queued_message_per_call():
    count = 5
    with hand_broker(timeout=60.0) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.address)
        client = peers.socket(zmq.DEALER, broker.address, identity=b"client-1")
        register(broker, dispatcher)
        requests = [Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE",
                                command="update", identifier=i.to_bytes(16, "big")) for i in range(count)]
        for request in requests:
            send(client, request)
        view = broker.get_service("KTEST").dispatchers["disp1"]
        for served in range(1, count + 1):
            broker.respond()  # "a single message on each socket": one request per call
            assert view.in_flight == served
        forwarded = gather(broker, dispatcher, count)
        assert [m.identifier for m in forwarded] == [r.identifier for r in requests]


def test_queued_requests_forwarded_and_answered_in_order_by_the_thread():
    count = 3 * FLUSH + 5  # the first alone, then full flushes, then a partial one
    with broker_thread("inproc", timeout=60.0) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.address)
        client = peers.socket(zmq.DEALER, broker.address, identity=b"client-1")
        send(dispatcher, Message.new(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome"))
        assert receive(dispatcher).payload == "confirmed"
        requests = [Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE",
                                command="update", identifier=i.to_bytes(16, "big")) for i in range(count)]
        for request in requests:
            send(client, request)
        forwarded = [receive(dispatcher) for _ in requests]
        assert [m.identifier for m in forwarded] == [r.identifier for r in requests]
        for message in forwarded:
            send(dispatcher, message.reply(message.identifier.hex()))  # back along (b"", client, b"")
        answers = [receive(client) for _ in requests]
        assert [(a.direction, a.payload) for a in answers] == [(Direction.CDP, r.identifier.hex()) for r in requests]


def test_large_payload_relayed_intact():
    payload = "x" * (4 << 20) + "é"  # 4 MiB, not all ASCII: the UTF-8 check still runs
    with hand_broker(timeout=60.0, max_message_size=8 << 20) as broker, open_peers() as peers:
        dispatcher = peers.socket(zmq.DEALER, broker.address)
        client = peers.socket(zmq.DEALER, broker.address, identity=b"client-1")
        register(broker, dispatcher)
        request = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="BLOB", command="modify",
                              payload=payload)
        send(client, request)
        [forwarded] = gather(broker, dispatcher, 1)
        assert forwarded.payload == payload
        send(dispatcher, forwarded.reply(payload))
        [answer] = gather(broker, client, 1)
        assert (answer.direction, answer.payload, answer.identifier) == (Direction.CDP, payload, request.identifier)


def test_broadcast_relay_runs_beside_the_routing_loop_and_stops_with_close():
    def relays():
        return [t for t in threading.enumerate() if t.name == "cauldron_proto broadcast relay"]

    before = len(relays())
    with hand_broker() as broker, open_peers() as peers:
        sockets = broker._local.sockets
        subscriber = peers.socket(zmq.SUB, sockets.xpub.getsockopt_string(zmq.LAST_ENDPOINT), subscribe=b"KTEST")
        publisher = peers.socket(zmq.PUB, sockets.xsub.getsockopt_string(zmq.LAST_ENDPOINT))
        assert len(relays()) == before + 1
        broadcast = Message.new(Direction.CDB, service="KTEST", dispatcher="disp1", keyword="VALUE",
                                command="broadcast", payload="42")
        for _ in range(500):  # no respond(): the relay thread moves subscriptions and broadcasts
            publisher.send_multipart(encode(broadcast))
            if subscriber.poll(20):
                break
        assert subscriber.poll(0), "no broadcast relayed in 10 s"
        assert decode(subscriber.recv_multipart()).payload == "42"
    assert len(relays()) == before


def test_requests_to_a_dispatcher_that_reads_slowly_are_forwarded_or_answered_never_dropped():
    """A request the ROUTER cannot queue to its dispatcher (the dispatcher's queue is at
    max_queued_messages) is answered at once; every other one reaches the dispatcher: each
    request exactly once, one way or the other."""
    count, queued = 300, 50
    with hand_broker(heartbeat=False, max_queued_messages=queued) as broker, open_peers() as peers:
        router = broker.endpoints["broker"]
        dispatcher = peers.context.socket(zmq.DEALER)
        peers.sockets.append(dispatcher)
        dispatcher.linger, dispatcher.rcvhwm = 0, 1  # reads nothing: its queue fills at once
        dispatcher.connect(router)
        client = peers.socket(zmq.DEALER, router)
        register(broker, dispatcher)
        sent = []
        for _ in range(count):
            msg = Message.new(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="K", command="update")
            sent.append(msg.identifier)
            send(client, msg)
        answered: dict[bytes, str] = {}
        view = broker.core.service("KTEST").dispatchers["disp1"]
        while view.in_flight + len(answered) < count:
            broker.respond()
            while client.poll(0):
                answer = decode(client.recv_multipart())
                assert answer.identifier not in answered
                answered[answer.identifier] = answer.payload
        assert answered, "the dispatcher's queue never filled"
        assert set(answered.values()) == {f"Dispatcher 'disp1' is not reading: {queued} messages queued to it; "
                                          f"try again later"}
        received: set[bytes] = set()
        while len(received) < count - len(answered) and dispatcher.poll(1000):
            received.add(decode(dispatcher.recv_multipart()).identifier)
        assert received.isdisjoint(answered) and received | set(answered) == set(sent)
        assert broker.core.stats.dropped == 0
