"""Test fixtures around :mod:`cauldron_proto.testing` (brokers and raw peers), and a broker
driven by hand.

    from cauldron_proto.testing import broker_thread, open_peers, ask
    from tests.brokers import hand_broker

    with broker_thread("tcp") as broker, open_peers(broker.context) as peers:
        client = peers.socket(zmq.REQ, broker.endpoints["broker"])
        answer = ask(client, Message.new(Direction.UBQ, command="check"))

Fixtures (import them into a test module to use them): ``tcp_broker``, ``inproc_broker``,
``any_broker`` (both transports) and ``peers`` (a :class:`PeerSockets` in the global context).
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from cauldron_proto.broker import ZMQBroker
from cauldron_proto.testing import broker_thread, inproc_addresses, open_peers


@contextmanager
def hand_broker(*, name: str = "hand-broker", timeout: float = 1.0, heartbeat: bool = True, lookup=None):
    """A broker prepared in the calling thread (inproc, global context), driven by ``respond()``."""
    a = inproc_addresses()
    broker = ZMQBroker(name, a["broker"], a["subscribe"], a["publish"], lookup or a["subscribe"], timeout=timeout,
                       heartbeat=heartbeat)
    broker.prepare()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def tcp_broker():
    with broker_thread("tcp") as broker:
        yield broker


@pytest.fixture
def inproc_broker():
    with broker_thread("inproc") as broker:
        yield broker


@pytest.fixture(params=["inproc", "tcp"])
def any_broker(request):
    with broker_thread(request.param) as broker:
        yield broker


@pytest.fixture
def peers():
    with open_peers() as group:
        yield group
