"""Test helpers: run a ZMQBroker and play peers against it, every socket closed afterwards.

    from tests.brokers import running_broker, hand_broker, open_peers, ask, receive, send

    with running_broker("tcp") as broker, open_peers(broker.context) as peers:
        client = peers.socket(zmq.REQ, broker.endpoints["broker"])
        answer = ask(client, Message.new(Direction.UBQ, command="check"))

Fixtures (import them into a test module to use them): ``tcp_broker``, ``inproc_broker``,
``any_broker`` (both transports) and ``peers`` (an :class:`Peers` in the global context).
"""

from __future__ import annotations

import itertools
import uuid
from contextlib import contextmanager

import pytest
import zmq

from cauldron_proto import Direction, Message, decode, encode
from cauldron_proto.broker import ZMQBroker

ANY_TCP = "tcp://127.0.0.1:*"
WAIT = 10.0  # seconds a helper waits for an answer before failing the test
_names = itertools.count()


def inproc_addresses(tag: str = "broker") -> dict[str, str]:
    """Fresh inproc addresses, by config key, unique in this process."""
    base = f"inproc://{tag}-{next(_names)}-{uuid.uuid4().hex[:8]}"
    return {"broker": f"{base}-router", "publish": f"{base}-publish", "subscribe": f"{base}-subscribe"}


def _addresses(transport: str, lookup: str | None) -> tuple[str, str, str, str]:
    """(address, pub_address, sub_address, mon_address) in the constructor's order."""
    if transport == "tcp":
        return ANY_TCP, ANY_TCP, ANY_TCP, lookup or ANY_TCP
    if transport == "inproc":
        a = inproc_addresses()
        return a["broker"], a["subscribe"], a["publish"], lookup or a["subscribe"]
    raise ValueError(f"transport must be 'tcp' or 'inproc', not {transport!r}")


@contextmanager
def running_broker(transport: str = "tcp", *, name: str = "test-broker", context=None, lookup=None,
                   timeout: float = 1.0, heartbeat: bool = True, **attributes):
    """A started ZMQBroker thread on ephemeral tcp ports or fresh inproc addresses; stopped on exit.

    ``broker.endpoints`` holds the real addresses to connect to; inproc peers must use
    ``broker.context`` (the global context unless ``context`` is given). ``attributes`` are
    set on the broker before it starts (e.g. ``max_message_size=1024``).
    """
    broker = ZMQBroker(name, *_addresses(transport, lookup), context=context, timeout=timeout,
                       heartbeat=heartbeat)
    for key, value in attributes.items():
        setattr(broker, key, value)
    broker.daemon = True
    broker.start()  # raises if the broker cannot bind
    try:
        yield broker
    finally:
        broker.stop(timeout=WAIT)
        if broker.is_alive():
            raise RuntimeError(f"broker {name!r} did not stop within {WAIT} s")


@contextmanager
def hand_broker(*, name: str = "hand-broker", timeout: float = 1.0, heartbeat: bool = True, lookup=None):
    """A broker prepared in the calling thread (inproc, global context), driven by ``respond()``."""
    broker = ZMQBroker(name, *_addresses("inproc", lookup), timeout=timeout, heartbeat=heartbeat)
    broker.prepare()
    try:
        yield broker
    finally:
        broker.close()


class Peers:
    """Sockets playing clients and dispatchers; ``close()`` closes them all with linger 0."""

    def __init__(self, context=None):
        self.context = context if context is not None else zmq.Context.instance()
        self.sockets: list[zmq.Socket] = []

    def socket(self, kind: int, connect: str | None = None, *, identity: bytes | None = None,
               subscribe: bytes | None = None) -> zmq.Socket:
        sock = self.context.socket(kind)
        self.sockets.append(sock)
        sock.linger = 0
        if identity is not None:
            sock.identity = identity
        if subscribe is not None:
            sock.subscribe(subscribe)
        if connect is not None:
            sock.connect(connect)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets.clear()


@contextmanager
def open_peers(context=None):
    peers = Peers(context)
    try:
        yield peers
    finally:
        peers.close()


def send(sock: zmq.Socket, message: Message) -> None:
    """Send ``message``; a DEALER sending a message with no prefix puts the empty delimiter first."""
    if sock.type == zmq.DEALER and not message.prefix:
        message = message.with_prefix(b"")
    sock.send_multipart(encode(message))


def receive(sock: zmq.Socket, timeout: float = WAIT) -> Message:
    """The next message on ``sock`` decoded (a DEALER's keeps its routing prefix); fails after ``timeout`` s."""
    if not sock.poll(timeout * 1000):
        raise AssertionError(f"nothing arrived within {timeout} s")
    return decode(sock.recv_multipart())


def ask(sock: zmq.Socket, message: Message, timeout: float = WAIT) -> Message:
    """Send ``message`` and return the answer to it (other messages arriving first are skipped)."""
    send(sock, message)
    while True:
        answer = receive(sock, timeout)
        if answer.identifier == message.identifier:
            return answer


def register_dispatcher(sock: zmq.Socket, service: str, name: str) -> None:
    """Play a dispatcher on DEALER ``sock``: welcome (answered ``confirmed``) then ready.

    An inquiry from the same socket follows, so ``ready`` has been handled on return.
    """
    confirmed = ask(sock, Message.new(Direction.DBQ, service=service, dispatcher=name, command="welcome"))
    assert (confirmed.direction, confirmed.payload) == (Direction.DBP, "confirmed"), confirmed
    send(sock, Message.new(Direction.DBQ, service=service, dispatcher=name, command="ready"))
    alive = ask(sock, Message.new(Direction.UBQ, command="check"))
    assert alive.payload == "Broker Alive", alive


def answer_one(sock: zmq.Socket, name: str, payload, *, error: bool = False) -> Message:
    """Play a dispatcher: take the next forwarded request on ``sock`` and answer it as ``name``."""
    request = receive(sock)
    make = request.error if error else request.reply
    send(sock, make(payload, dispatcher=name))
    return request


@pytest.fixture
def tcp_broker():
    with running_broker("tcp") as broker:
        yield broker


@pytest.fixture
def inproc_broker():
    with running_broker("inproc") as broker:
        yield broker


@pytest.fixture(params=["inproc", "tcp"])
def any_broker(request):
    with running_broker(request.param) as broker:
        yield broker


@pytest.fixture
def peers():
    with open_peers() as group:
        yield group
