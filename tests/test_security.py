"""CURVE on the broker's sockets, with real sockets: authorized peers are served; peers with
another key, and plain peers, get nothing; the helpers and tools take their keys."""

from __future__ import annotations

import asyncio
import configparser
import itertools
import logging
import shutil
import stat
import threading
import time

import pytest
import zmq
import zmq.auth

from cauldron_proto import ConfigError, Direction, Message, aio, client, dispatcher, encode
from cauldron_proto.broker import ZMQBroker
from cauldron_proto.cli.keygen import generate, main as keygen_main
from cauldron_proto.security import BrokerCurve, PeerCurve, broker_curve, load_public_key, peer_curve
from cauldron_proto.security.handshake import HandshakeFailure, TellOnce, handshake_failure
from cauldron_proto.testing import WAIT, NothingSentError, broker_thread, open_peers, receive, send

from .keyword_helpers import config_for, serving, wait_for

QUIET = 0.5  # seconds in which a refused peer must get nothing


@pytest.fixture
def keys(tmp_path):
    """Key pairs broker, client1, disp1 and stranger; the folder authorizing client1 and disp1."""
    made = {name: generate(tmp_path / "keys", name) for name in ("broker", "client1", "disp1", "stranger")}
    authorized = tmp_path / "authorized"
    authorized.mkdir()
    for name in ("client1", "disp1"):
        shutil.copy(made[name][0], authorized)
    return {"dir": tmp_path / "keys", "authorized": authorized, **{name: pair for name, pair in made.items()}}


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.term()


@pytest.fixture
def curve_broker(keys, context):
    security = BrokerCurve(keys["broker"][1], keys["authorized"])
    with broker_thread("tcp", context=context, security=security, timeout=1.0) as broker:
        yield broker


def curve_of(keys, name: str) -> PeerCurve:
    return PeerCurve.from_files(keys["broker"][0], keys[name][1])


def inquiry_answered(sock: zmq.Socket, wait: float) -> bool:
    """Whether an inquiry sent on ``sock`` is answered within ``wait`` s. A peer the broker refused
    may have no connection left to send on (libzmq drops a DEALER's pipe after a failed
    handshake): that counts as not answered."""
    try:
        send(sock, Message.new(Direction.UBQ, command="check"), timeout=wait)
    except NothingSentError:
        return False
    return bool(sock.poll(wait * 1000))


def dealer(peers, address: str, curve: PeerCurve | None = None) -> zmq.Socket:
    sock = peers.socket(zmq.DEALER)
    if curve is not None:
        curve.client_socket(sock)
    sock.connect(address)
    return sock


def test_keygen_writes_a_key_pair_in_the_zmq_auth_format(tmp_path, capsys):
    assert keygen_main([str(tmp_path / "new"), "alice"]) == 0
    public, secret = tmp_path / "new" / "alice.key", tmp_path / "new" / "alice.key_secret"
    assert str(public) in capsys.readouterr().out
    assert zmq.auth.load_certificate(public) == (zmq.auth.load_certificate(secret)[0], None)
    assert zmq.auth.load_certificate(secret)[1] is not None
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert keygen_main([str(tmp_path / "new"), "alice"]) == 1  # kept
    assert "exists" in capsys.readouterr().err
    old = public.read_bytes()
    assert keygen_main(["--force", str(tmp_path / "new"), "alice"]) == 0 and public.read_bytes() != old


def test_authorized_peer_is_answered_others_get_nothing(keys, curve_broker, context):
    address = curve_broker.endpoints["broker"]
    with open_peers(context) as peers:
        trusted = dealer(peers, address, curve_of(keys, "client1"))
        stranger = dealer(peers, address, curve_of(keys, "stranger"))
        plain = dealer(peers, address)
        wrong_server = dealer(peers, address, PeerCurve(load_public_key(keys["client1"][0]), *zmq.curve_keypair()))
        assert inquiry_answered(trusted, WAIT)
        assert receive(trusted).payload == "Broker Alive"
        for refused in (stranger, plain, wrong_server):
            assert not inquiry_answered(refused, QUIET)
    assert curve_broker.is_alive() and "internal_error" not in curve_broker.core.stats.dropped_by_reason


def test_broadcasts_only_between_authorized_peers(keys, curve_broker, context):
    ends = curve_broker.endpoints
    with open_peers(context) as peers:
        subscriber = peers.socket(zmq.SUB, subscribe=b"KSEC")
        curve_of(keys, "client1").client_socket(subscriber).connect(ends["subscribe"])
        plain_sub = peers.socket(zmq.SUB, ends["subscribe"], subscribe=b"KSEC")
        publisher = curve_of(keys, "disp1").client_socket(peers.socket(zmq.PUB))
        publisher.connect(ends["publish"])
        plain_pub = peers.socket(zmq.PUB, ends["publish"])

        def broadcast(sock, value):
            sock.send_multipart(encode(Message.new(Direction.CDB, service="KSEC", dispatcher="disp1",
                                                   keyword="VALUE", command="broadcast", payload=value)))

        def received() -> list[str]:
            got = []
            while subscriber.poll(50):
                got.append(receive(subscriber).payload)
            return got

        # slow joiner: publish until the subscription has travelled through the broker
        wait_for(lambda: broadcast(publisher, "1") or "1" in received(), message="an authorized broadcast")
        broadcast(plain_pub, "plain")
        broadcast(publisher, "2")
        assert wait_for(lambda: received(), message="the next broadcast") == ["2"]
        assert not plain_sub.poll(QUIET * 1000)


def test_helpers_and_check_with_keys(keys, curve_broker):
    config = config_for(curve_broker, curve_server_key=keys["broker"][0])
    disp_config = {**config, "curve_key": str(keys["disp1"][1])}
    with serving("KSEC", disp_config, "disp1", VALUE=("integer", 1)):
        with client.Service("KSEC", config, curve_key=str(keys["client1"][1]), timeout=WAIT) as svc:
            assert svc["VALUE"].read() == "1"
            seen, values = [], itertools.count(2)
            svc["VALUE"].monitor(seen.append)

            def broadcast_seen() -> bool:  # write until one broadcast arrives (slow joiner)
                assert svc["VALUE"].write(next(values)) is not None
                time.sleep(0.05)
                return any(not value.primed for value in seen)

            wait_for(broadcast_seen, message="a broadcast through the CURVE XSUB and XPUB")
        with client.Service("KSEC", config, curve_key=str(keys["stranger"][1]), timeout=WAIT) as svc:
            with pytest.raises(client.BrokerRefusedError, match=r"CURVE key is not authorized \(ZAP status 400\)"):
                svc.locate()
        with client.Service("KSEC", {k: v for k, v in config.items() if not k.startswith("curve")},
                            timeout=WAIT) as svc:
            with pytest.raises(client.BrokerRefusedError, match="it uses CURVE, and this peer has no keys"):
                svc.locate()
    check_config = {**config, "curve_key": str(keys["client1"][1])}
    address = curve_broker.endpoints["broker"]
    parser = _parser(check_config)
    assert ZMQBroker.check(parser, timeout=WAIT, address=address)
    assert not ZMQBroker.check(timeout=QUIET, address=address)


def test_check_says_why_the_broker_refused(keys, curve_broker, caplog):
    caplog.set_level(logging.WARNING, logger="cauldron_proto.broker")
    address = curve_broker.endpoints["broker"]
    stranger = _parser({**config_for(curve_broker, curve_server_key=keys["broker"][0]),
                        "curve_key": str(keys["stranger"][1])})
    assert not ZMQBroker.check(stranger, timeout=WAIT, address=address)
    assert not ZMQBroker.check(timeout=WAIT, address=address)  # no CURVE
    told = [r.getMessage() for r in caplog.records if r.name == "cauldron_proto.broker"]
    assert told == [f"the broker at {address} refused the connection: {reason}" for reason in (
        "this peer's CURVE key is not authorized (ZAP status 400)",
        "it uses CURVE, and this peer has no keys (set curve_key and curve_server_key)")]


def test_unauthorized_dispatcher_cannot_register_and_logs_why_once(keys, curve_broker, caplog):
    caplog.set_level(logging.ERROR, logger="cauldron_proto.dispatcher")
    config = config_for(curve_broker, curve_server_key=keys["broker"][0], curve_key=keys["stranger"][1])
    with dispatcher.Service("KSEC", config, "intruder") as intruder:
        welcome_wait = intruder._io.registration.welcome_wait
        assert not intruder.wait_registered(welcome_wait * 2.5)  # refused on two sockets or more
    told = [r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()]
    assert told == [f"intruder: the broker at {curve_broker.endpoints['broker']} refused the connection: this "
                    f"peer's CURVE key is not authorized (ZAP status 400) (trying again every {welcome_wait:g} s)"]
    assert curve_broker.get_service("KSEC") is None


@pytest.mark.parametrize("event, value, curve, reason, permanent", [
    (zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, True, "this peer's CURVE key is not authorized (ZAP status 400)", True),
    (zmq.EVENT_HANDSHAKE_FAILED_AUTH, 500, True, "its authenticator failed (ZAP status 500)", True),
    (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH, False,
     "it uses CURVE, and this peer has no keys (set curve_key and curve_server_key)", True),
    (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH, True,
     "it does not use CURVE, and this peer does (curve_server_key is set)", True),
    (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND, False,
     f"the handshake broke the ZMTP protocol (libzmq error {zmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND:#x})", True),
    (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, True,
     "the CURVE handshake failed (is curve_server_key the broker's public key?)", False),
    (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32, False,  # often a CURVE broker, before the mechanisms compare
     "the broker dropped the handshake (if it uses CURVE, set curve_key and curve_server_key)", False),
])
def test_a_handshake_failure_says_what_the_broker_refused(event, value, curve, reason, permanent):
    assert handshake_failure(event, value, curve) == HandshakeFailure(reason, permanent)


def test_a_handshake_failure_is_told_as_a_refusal_only_when_libzmq_gives_up():
    assert HandshakeFailure("why", True).describe("tcp://b:1") == "the broker at tcp://b:1 refused the connection: why"
    assert HandshakeFailure("why", False).describe("tcp://b:1") == "a handshake with the broker at tcp://b:1 failed: why"


def test_each_handshake_failure_is_told_once_until_a_success_or_another_reason():
    told, refused, retried = TellOnce(), HandshakeFailure("no key", True), HandshakeFailure("dropped", False)
    assert [told.heard(False, refused), told.heard(False, refused), told.heard(False, None)] == [True, False, False]
    assert told.reason == "no key"
    assert told.heard(False, retried) and told.reason == "dropped"  # another reason
    assert not told.heard(True, None) and told.reason is None  # a success
    assert told.heard(False, retried)


def test_events_that_are_no_refusal_mean_nothing():
    assert handshake_failure(zmq.EVENT_HANDSHAKE_SUCCEEDED, 0, True) is None
    assert handshake_failure(zmq.EVENT_DISCONNECTED, 0, True) is None


def test_a_refused_client_is_told_why_and_connects_again_once_authorized(keys, curve_broker, caplog):
    """An unauthorized key: every request fails with BrokerRefusedError (no wait for its
    timeout; logged once); once the key is authorized, the next request connects again."""
    caplog.set_level(logging.INFO, logger="cauldron_proto.client")
    config = config_for(curve_broker, curve_server_key=keys["broker"][0], curve_key=keys["stranger"][1])
    with client.Service("KSEC", config, timeout=WAIT) as svc:
        for _ in range(2):
            with pytest.raises(client.BrokerRefusedError) as info:
                svc.locate()
            assert isinstance(info.value, ConnectionRefusedError) and isinstance(info.value, client.ClientError)
            assert info.value.reason == "this peer's CURVE key is not authorized (ZAP status 400)"
            assert info.value.broker == curve_broker.endpoints["broker"]
            assert str(info.value) == (f"KSEC: {info.value.command} not answered: the broker at "
                                       f"{info.value.broker} refused the connection: {info.value.reason}")
        told = [r for r in caplog.records if "refused the connection" in r.getMessage()]
        assert len(told) == 1 and told[0].levelno == logging.INFO  # the error tells the user
        time.sleep(0.01)  # a new modification time for the folder
        shutil.copy(keys["stranger"][0], keys["authorized"])
        assert svc.locate() is False  # answered: no dispatcher serves KSEC
        assert svc._io.handshake_failure is None
    assert "internal_error" not in curve_broker.core.stats.dropped_by_reason


def test_a_curve_client_of_a_plain_broker_is_told_so(keys, context):
    with broker_thread("tcp", context=context) as plain:
        config = config_for(plain, curve_server_key=keys["broker"][0], curve_key=keys["client1"][1])
        with client.Service("KSEC", config, timeout=WAIT) as svc:
            with pytest.raises(client.BrokerRefusedError, match="it does not use CURVE, and this peer does"):
                svc.locate()


def test_a_wrong_server_key_is_named_in_the_timeout(keys, curve_broker):
    """libzmq retries a handshake the broker dropped (the wrong server key): requests wait for
    their timeout, whose error names the failed handshake."""
    config = config_for(curve_broker, curve_server_key=keys["client1"][0], curve_key=keys["client1"][1])
    with client.Service("KSEC", config, timeout=2.0) as svc:
        with pytest.raises(client.RequestTimeoutError) as info:
            svc.locate()
    assert info.value.handshake == "the CURVE handshake failed (is curve_server_key the broker's public key?)"
    assert str(info.value).endswith(f"; its last handshake failed: {info.value.handshake})")


def test_the_asyncio_client_is_told_why_too_and_connects_again_once_authorized(keys, curve_broker):
    config = config_for(curve_broker, curve_server_key=keys["broker"][0], curve_key=keys["stranger"][1])

    async def scenario():
        async with aio.Service("KSEC", config, timeout=WAIT) as svc:
            with pytest.raises(client.BrokerRefusedError) as info:
                await svc.locate()
            assert info.value.reason == "this peer's CURVE key is not authorized (ZAP status 400)"
            again = await asyncio.gather(*(svc.locate() for _ in range(3)), return_exceptions=True)
            assert all(isinstance(error, client.BrokerRefusedError) for error in again), again  # refused again
            await asyncio.sleep(0.01)  # a new modification time for the folder
            shutil.copy(keys["stranger"][0], keys["authorized"])
            assert await svc.locate() is False
            assert svc.handshake_failure is None

    asyncio.run(asyncio.wait_for(scenario(), 4 * WAIT))


def test_the_asyncio_client_names_a_wrong_server_key_in_the_timeout(keys, curve_broker):
    config = config_for(curve_broker, curve_server_key=keys["client1"][0], curve_key=keys["client1"][1])

    async def scenario():
        async with aio.Service("KSEC", config, timeout=2.0) as svc:
            with pytest.raises(client.RequestTimeoutError) as info:
                await svc.locate()
        return info.value

    error = asyncio.run(asyncio.wait_for(scenario(), 2 * WAIT))
    assert error.handshake == "the CURVE handshake failed (is curve_server_key the broker's public key?)"


def test_the_asyncio_dispatcher_logs_why_it_is_refused_once(keys, curve_broker, caplog):
    caplog.set_level(logging.ERROR, logger="cauldron_proto.aio.dispatcher")
    config = config_for(curve_broker, curve_server_key=keys["broker"][0], curve_key=keys["stranger"][1])

    async def scenario():
        async with aio.Dispatcher("KSEC", config, "intruder") as intruder:
            assert not await intruder.wait_registered(intruder.registration.welcome_wait * 2.5)

    asyncio.run(asyncio.wait_for(scenario(), 4 * WAIT))
    told = [r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()]
    assert len(told) == 1 and "CURVE key is not authorized (ZAP status 400)" in told[0]
    assert curve_broker.get_service("KSEC") is None


def test_the_broker_logs_a_refused_key_with_its_address_once_per_interval(keys, curve_broker, context, caplog):
    caplog.set_level(logging.WARNING, logger="cauldron_proto.security")
    address = curve_broker.endpoints["broker"]
    with open_peers(context) as peers:
        for name in ("stranger", "stranger", "client1"):  # refused twice (one line), then authorized
            dealer(peers, address, curve_of(keys, name))
        assert not inquiry_answered(dealer(peers, address, curve_of(keys, "stranger")), QUIET)
        assert inquiry_answered(dealer(peers, address, curve_of(keys, "client1")), WAIT)
    key = load_public_key(keys["stranger"][0]).decode("ascii")
    told = [r.getMessage() for r in caplog.records if r.name == "cauldron_proto.security"]
    assert told == [f"refused a CURVE connection from 127.0.0.1: its key {key} is not in {keys['authorized']}"]


def test_a_key_added_to_the_folder_is_accepted_without_restart(keys, curve_broker, context):
    address = curve_broker.endpoints["broker"]
    with open_peers(context) as peers:
        assert not inquiry_answered(dealer(peers, address, curve_of(keys, "stranger")), QUIET)
        time.sleep(0.01)  # a new modification time for the folder
        shutil.copy(keys["stranger"][0], keys["authorized"])
        assert inquiry_answered(dealer(peers, address, curve_of(keys, "stranger")), WAIT)


def test_any_key_mode_accepts_any_curve_peer_but_no_plain_one(keys, context):
    security = BrokerCurve(keys["broker"][1], "*")
    with broker_thread("tcp", context=context, security=security) as broker, open_peers(context) as peers:
        address = broker.endpoints["broker"]
        throwaway = PeerCurve(load_public_key(keys["broker"][0]))  # a fresh key pair
        assert inquiry_answered(dealer(peers, address, throwaway), WAIT)
        assert not inquiry_answered(dealer(peers, address), QUIET)


def test_user_id_is_the_key_name(keys, context):
    """The authenticator names an authorized connection after its key file (frame User-Id)."""
    security = BrokerCurve(keys["broker"][1], keys["authorized"])
    security.start(context)
    try:
        with open_peers(context) as peers:
            router = security.server_socket(peers.socket(zmq.ROUTER))
            port = router.bind_to_random_port("tcp://127.0.0.1")
            sender = dealer(peers, f"tcp://127.0.0.1:{port}", curve_of(keys, "disp1"))
            sender.send(b"hello")
            assert router.poll(WAIT * 1000)
            frames = router.recv_multipart(copy=False)
            assert frames[-1].bytes == b"hello" and frames[-1].get("User-Id") == "disp1"
    finally:
        security.stop()


def test_configuration_errors_name_the_problem(keys, tmp_path):
    with pytest.raises(ConfigError, match="curve_authorized"):
        broker_curve({"curve_secret_key": str(keys["broker"][1])})
    with pytest.raises(ConfigError, match="curve_secret_key"):
        broker_curve({"curve_authorized": str(keys["authorized"])})
    with pytest.raises(ConfigError, match="no secret key"):
        broker_curve({"curve_secret_key": str(keys["broker"][0]), "curve_authorized": "*"})
    with pytest.raises(ConfigError, match="not a folder"):
        broker_curve({"curve_secret_key": str(keys["broker"][1]), "curve_authorized": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="cannot read"):
        peer_curve({"curve_server_key": str(tmp_path / "missing.key")})
    with pytest.raises(ConfigError, match="curve_server_key"):
        peer_curve({"curve_key": str(keys["client1"][1])})
    assert broker_curve({}) is None and peer_curve({}) is None


def _parser(mapping: dict) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read_dict({"zmq": {k: str(v) for k, v in mapping.items()}})
    return parser


def test_terminating_the_context_of_a_curve_broker_is_a_clean_exit(keys):
    """The authenticator thread closes its sockets when the context terminates, so term()
    returns and the broker ends without an error, as a broker without CURVE does."""
    ctx = zmq.Context()
    broker = ZMQBroker("term", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                       context=ctx)
    broker.security = BrokerCurve(keys["broker"][1], keys["authorized"])
    broker.start()
    terminator = threading.Thread(target=ctx.term, daemon=True)
    terminator.start()
    terminator.join(WAIT)
    broker.join(WAIT)
    assert not terminator.is_alive(), "context.term() hung"
    assert not broker.is_alive() and broker.error is None


def test_any_authorized_key_may_ask_the_status_and_it_names_the_dispatchers_key(keys, curve_broker, context):
    from cauldron_proto.client import NoBrokerError, broker_status
    config = config_for(curve_broker, curve_server_key=keys["broker"][0])
    with serving("KSEC", {**config, "curve_key": str(keys["disp1"][1])}, "disp1", VALUE=("integer", 1)):
        status = broker_status(config, "ksec", timeout=WAIT, context=context, curve_key=str(keys["client1"][1]))
        assert status["broker"]["curve"] is True
        assert status["services"]["KSEC"]["dispatchers"]["disp1"]["key"] == "disp1"
        with pytest.raises(NoBrokerError):  # an unauthorized key is refused in the handshake
            broker_status(config, timeout=QUIET, context=context, curve_key=str(keys["stranger"][1]))
