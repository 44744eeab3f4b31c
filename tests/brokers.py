"""A broker driven by hand, beside :mod:`cauldron_proto.testing` (brokers and raw peers).

    from cauldron_proto.testing import broker_thread, open_peers, ask
    from tests.brokers import hand_broker

    with broker_thread("tcp") as broker, open_peers(broker.context) as peers:
        client = peers.socket(zmq.REQ, broker.endpoints["broker"])
        answer = ask(client, Message.new(Direction.UBQ, command="check"))

The fixtures (``tcp_broker``, ``inproc_broker``, ``any_broker``, ``peers``) are in ``conftest.py``.
"""

from __future__ import annotations

from contextlib import contextmanager

from cauldron_proto.broker import ZMQBroker
from cauldron_proto.testing import inproc_addresses


@contextmanager
def hand_broker(*, name: str = "hand-broker", timeout: float = 1.0, heartbeat: bool = True, lookup=None,
                **limits: int):
    """A broker prepared in the calling thread (inproc, global context), driven by ``respond()``;
    ``limits``: limits other than the defaults (``max_frames=3``)."""
    a = inproc_addresses()
    broker = ZMQBroker(name, a["broker"], a["subscribe"], a["publish"], lookup or a["subscribe"], timeout=timeout,
                       heartbeat=heartbeat)
    broker.limits = broker.limits.replace(**limits)
    broker.prepare()
    try:
        yield broker
    finally:
        broker.close()
