"""Authorization under CURVE, with real CURVE sockets: a dispatcher name belongs to its key,
and a curve_dispatchers policy says which key may serve (and broadcast for) which service."""

from __future__ import annotations

import itertools
import shutil
import time

import pytest
import zmq

from cauldron_proto import ConfigError, Direction, Message, Text, client, encode
from cauldron_proto.broker.relay import BroadcastRelay
from cauldron_proto.cli.keygen import generate
from cauldron_proto.security import BrokerCurve, PeerCurve, broker_curve
from cauldron_proto.testing import WAIT, answer_request, ask, broker_thread, open_peers, receive, register_dispatcher, send

from .keyword_helpers import config_for, serving, wait_for

OWNED = Text.DISPATCHER_OWNED_BY_ANOTHER_KEY.format(dispatcher="d1", service="SECURE")


@pytest.fixture
def keys(tmp_path):
    """Key pairs broker, disp, alice and mallory; the folder authorizing disp, alice and mallory."""
    made = {name: generate(tmp_path / "keys", name) for name in ("broker", "disp", "alice", "mallory")}
    authorized = tmp_path / "authorized"
    authorized.mkdir()
    for name in ("disp", "alice", "mallory"):
        shutil.copy(made[name][0], authorized)
    return {"authorized": authorized, "policy": tmp_path / "dispatchers", **made}


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def curve_broker(keys, context, policy: str | None = None):
    if policy is not None:
        keys["policy"].write_text(policy)
    security = BrokerCurve(keys["broker"][1], keys["authorized"], keys["policy"] if policy is not None else None)
    return broker_thread("tcp", context=context, security=security, timeout=1.0)


def peer(peers, keys, name: str, kind: int, address: str) -> zmq.Socket:
    sock = peers.socket(kind)
    PeerCurve.from_files(keys["broker"][0], keys[name][1]).client_socket(sock)
    sock.connect(address)
    return sock


def welcome(sock: zmq.Socket, service: str = "SECURE", name: str = "d1") -> Message:
    return ask(sock, Message.new(Direction.DBQ, service=service, dispatcher=name, command="welcome"))


def key_config(broker, keys, name: str) -> dict[str, str]:
    return config_for(broker, curve_server_key=keys["broker"][0], curve_key=keys[name][1])


def test_a_hijacking_welcome_is_refused_and_the_same_key_takes_its_name_back(keys, context):
    with curve_broker(keys, context) as broker, open_peers(context) as peers:
        address = broker.endpoints["broker"]
        with serving("SECURE", key_config(broker, keys, "disp"), "d1", VALUE=("string", "real")):
            mallory = peer(peers, keys, "mallory", zmq.DEALER, address)
            refused = welcome(mallory)
            assert (refused.direction, refused.payload) == (Direction.DBE, OWNED)
            with client.Service("SECURE", key_config(broker, keys, "alice"), timeout=WAIT) as svc:
                assert svc["VALUE"].read() == "real"
            assert broker.core.stats.registrations_refused == 1 and broker.core.stats.replaced == 0
            view = broker.get_service("SECURE").dispatchers["d1"]
            first = view.id
        # the dispatcher restarted (its old connection closed; a new socket), the same key: its
        # name back at once (the heartbeat the welcome makes the broker send the holder cannot go)
        restarted = peer(peers, keys, "disp", zmq.DEALER, address)
        register_dispatcher(restarted, "SECURE", "d1")
        assert view.id != first and view.alive
        assert broker.core.stats.replaced == 1 and broker.core.stats.expired == 0
        alice = peer(peers, keys, "alice", zmq.DEALER, address)
        read = Message.new(Direction.CDQ, service="SECURE", dispatcher="d1", keyword="VALUE", command="update")
        send(alice, read)
        answer_request(restarted, "d1", "restarted")
        assert receive(alice).payload == "restarted"
        assert broker.relay.policy is None  # no policy: every key's broadcasts relayed


def test_a_policy_decides_who_registers_and_clients_are_still_served(keys, context):
    with curve_broker(keys, context, "disp: SECURE*\n") as broker, open_peers(context) as peers:
        address = broker.endpoints["broker"]
        disp, alice = peer(peers, keys, "disp", zmq.DEALER, address), peer(peers, keys, "alice", zmq.DEALER, address)
        refused = welcome(disp, "OTHER", "o1")
        assert (refused.direction, refused.payload) == (
            Direction.DBE, Text.KEY_MAY_NOT_SERVE.format(key="disp", service="OTHER"))
        refused = welcome(alice, "SECURE", "a1")
        assert (refused.direction, refused.payload) == (
            Direction.DBE, Text.KEY_MAY_NOT_SERVE.format(key="alice", service="SECURE"))
        assert broker.get_service("OTHER") is None and broker.get_service("SECURE") is None
        with serving("SECURE", key_config(broker, keys, "disp"), "d1", VALUE=("integer", 1)) as served, \
                client.Service("SECURE", key_config(broker, keys, "alice"), timeout=WAIT) as svc:
            assert svc["VALUE"].read() == "1"
            seen, values = [], itertools.count(2)
            svc["VALUE"].monitor(seen.append)

            def broadcast_seen() -> bool:  # set until one broadcast arrives (slow joiner)
                served["VALUE"].set(next(values))
                time.sleep(0.05)
                return any(not value.primed for value in seen)

            wait_for(broadcast_seen, message="disp's broadcast through the policy relay")
        assert type(broker.relay) is BroadcastRelay and broker.relay.policy is not None and broker.relay.refused == 0


def test_a_forged_broadcast_never_reaches_a_subscriber(keys, context):
    with curve_broker(keys, context, "disp: SECURE\n") as broker, open_peers(context) as peers:
        ends = broker.endpoints
        subscriber = peer(peers, keys, "alice", zmq.SUB, ends["subscribe"])
        subscriber.subscribe(b"SECURE")
        real, forger = (peer(peers, keys, name, zmq.PUB, ends["publish"]) for name in ("disp", "mallory"))
        got: list[str] = []

        def broadcast(sock, value) -> None:
            sock.send_multipart(encode(Message.new(Direction.CDB, service="SECURE", dispatcher="d1",
                                                   keyword="VALUE", command="broadcast", payload=value)))

        def received() -> list[str]:
            while subscriber.poll(20):
                got.append(receive(subscriber).payload)
            return got

        wait_for(lambda: broadcast(real, "real") or "real" in received(), message="disp's broadcast")
        wait_for(lambda: broadcast(forger, "HIJACKED") or broker.relay.refused, message="the forgery refused")
        refused = broker.relay.refused
        real.send_multipart([b"SECURE", b"\xff"])  # not a broadcast: dropped, the relay unharmed
        other = Message.new(Direction.CDB, service="OTHER", dispatcher="d1", keyword="VALUE", command="broadcast",
                            payload="HIJACKED")
        real.send_multipart([b"SECURE", *encode(other)])  # a prefix: its envelope's service is not the topic
        forger.send_multipart([b"SECURE", b"d1", b"VALUE", b"XXX", b"broadcast", b"HIJACKED", b""])
        wait_for(lambda: broker.relay.refused >= refused + 3, message="the malformed broadcasts dropped")
        broadcast(real, "after")
        wait_for(lambda: "after" in received(), message="the broadcast after the forgery")
        assert "HIJACKED" not in received() and set(got) == {"real", "after"}


def test_the_policy_file_edited_while_running_counts_for_the_next_welcome(keys, context):
    with curve_broker(keys, context, "disp: SECURE*\n") as broker, open_peers(context) as peers:
        address = broker.endpoints["broker"]
        alice = peer(peers, keys, "alice", zmq.DEALER, address)
        assert welcome(alice, "ALICE", "a1").direction == Direction.DBE
        keys["policy"].write_text("disp: SECURE*\nalice: ALICE\n")
        assert welcome(peer(peers, keys, "alice", zmq.DEALER, address), "ALICE", "a1").payload == Text.CONFIRMED
        keys["policy"].write_text("alice: ALICE\n")
        refused = welcome(peer(peers, keys, "disp", zmq.DEALER, address), "SECURE", "d2")
        assert refused.payload == Text.KEY_MAY_NOT_SERVE.format(key="disp", service="SECURE")
        keys["policy"].write_text("alice ALICE\n")  # malformed: the rules in force stay
        assert welcome(peer(peers, keys, "alice", zmq.DEALER, address), "ALICE", "a2").payload == Text.CONFIRMED
        assert broker.is_alive()


def test_policy_configuration_errors_name_the_problem(keys):
    keys["policy"].write_text("disp: SECURE\n")
    secret, policy = str(keys["broker"][1]), str(keys["policy"])
    with pytest.raises(ConfigError, match="curve_dispatchers is set but curve_secret_key is not"):
        broker_curve({"curve_dispatchers": policy})
    with pytest.raises(ConfigError, match="needs curve_authorized to be a folder"):
        broker_curve({"curve_secret_key": secret, "curve_authorized": "*", "curve_dispatchers": policy})
    with pytest.raises(ConfigError, match="cannot read the curve_dispatchers policy"):
        broker_curve({"curve_secret_key": secret, "curve_authorized": str(keys["authorized"]),
                      "curve_dispatchers": policy + ".missing"})
    made = broker_curve({"curve_secret_key": secret, "curve_authorized": str(keys["authorized"]),
                         "curve_dispatchers": policy})
    assert made.policy.allows("disp", "secure") and "dispatchers as" in made.accepting()
