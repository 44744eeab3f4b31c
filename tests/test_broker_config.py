"""ZMQBroker.from_config and check(): configurations, bind rules, the seed API's signatures."""

from __future__ import annotations

import configparser
import inspect
import socket

import pytest
import zmq

from cauldron_proto import ConfigError, ZMQBroker
from cauldron_proto.config import bind_address
from cauldron_proto.protocol import CONFIG_DEFAULTS
from cauldron_proto.broker import DEFAULT_MAX_MESSAGE_SIZE
from cauldron_proto.broker.core.limits import Limits
from cauldron_proto.broker.sockets import connect_form, is_wildcard
from cauldron_proto.testing import ANY_TCP, broker_thread, open_peers

LOOPBACK = socket.gethostbyname("localhost")


def write_config(tmp_path, **keys) -> str:
    path = tmp_path / "cauldron.cfg"
    path.write_text("[zmq]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()), encoding="utf-8")
    return str(path)


def test_from_config_none_uses_the_spec_defaults():
    broker = ZMQBroker.from_config(None)
    assert broker.name == "ConfiguredBroker"
    assert broker.address == f"tcp://{LOOPBACK}:6513"  # ROUTER: config key broker
    assert broker.pub_address == f"tcp://{LOOPBACK}:6511"  # XPUB: config key subscribe
    assert broker.sub_address == f"tcp://{LOOPBACK}:6512"  # XSUB: config key publish
    assert broker.mon_address == "tcp://localhost:6511" == broker.core.lookup_address
    assert (broker.timeout, broker.heartbeat) == (5.0, True)
    assert broker.max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 1024 * 1024
    assert broker.limits == Limits()
    assert not broker.is_alive() and broker.endpoints == {}


def test_from_config_file_applies_the_bind_rules(tmp_path):
    path = write_config(tmp_path, broker="tcp://*:7013", publish="tcp://localhost:7012",
                        subscribe="tcp://10.1.2.3:7011", timeout="0.5", heartbeat="no",
                        max_message_size="1024")
    broker = ZMQBroker.from_config(path, name="FromFile")
    assert broker.name == "FromFile"
    assert broker.address == "tcp://*:7013"  # every interface, when asked for
    assert broker.sub_address == f"tcp://{LOOPBACK}:7012"  # a host name: the address it resolves to
    assert broker.pub_address == "tcp://10.1.2.3:7011"  # a literal IP: that interface alone
    assert broker.mon_address == "tcp://10.1.2.3:7011"  # lookup: subscribe as written
    assert (broker.timeout, broker.heartbeat, broker.max_message_size) == (0.5, False, 1024)


@pytest.mark.parametrize("written, bound", [
    ("tcp://127.0.0.1:7013", "tcp://127.0.0.1:7013"),
    ("tcp://[::1]:7013", "tcp://[::1]:7013"),
    ("tcp://*:7013", "tcp://*:7013"),
    ("tcp://0.0.0.0:*", "tcp://0.0.0.0:*"),
    ("tcp://[::]:7013", "tcp://[::]:7013"),
    ("tcp://localhost:*", f"tcp://{LOOPBACK}:*"),
    ("tcp://lo:7013", "tcp://lo:7013"),  # an interface's name: ZMQ binds that interface
    ("ipc:///tmp/x", "ipc:///tmp/x"),
])
def test_bind_address_binds_what_is_written(written, bound):
    assert bind_address(written) == bound


def test_an_unresolvable_host_is_one_line_naming_the_file_key_and_value(tmp_path):
    path = write_config(tmp_path, subscribe="tcp://no-such-host.invalid:7011")
    with pytest.raises(ConfigError) as raised:
        ZMQBroker.from_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: [zmq] subscribe = 'tcp://no-such-host.invalid:7011': cannot resolve host")
    assert "\n" not in message


def test_a_literal_ip_binds_that_interface_alone_through_real_sockets():
    """Bound to 127.0.0.1, the broker leaves the port free on 127.0.0.2 (a wildcard bind would not)."""
    broker = ZMQBroker("literal", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    broker.start()
    try:
        where = broker.bound["broker"]
        assert where.startswith("tcp://127.0.0.1:") and broker.endpoints["broker"] == where
        assert ZMQBroker.check(address=where, timeout=10)
        with open_peers() as peers:
            other = peers.socket(zmq.ROUTER)
            other.bind(where.replace("127.0.0.1", "127.0.0.2"))  # EADDRINUSE if the broker held every interface
    finally:
        broker.stop()


def test_a_wildcard_binds_every_interface_and_peers_connect_by_loopback():
    broker = ZMQBroker("every", "tcp://*:*", "tcp://0.0.0.0:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    broker.start()
    try:
        port = broker.bound["broker"].rsplit(":", 1)[1]
        assert broker.bound["broker"] == f"tcp://0.0.0.0:{port}" and broker.bound["subscribe"].startswith("tcp://0.0.0.0:")
        assert broker.endpoints["broker"] == f"tcp://127.0.0.1:{port}"
        assert ZMQBroker.check(address=f"tcp://127.0.0.2:{port}", timeout=10)  # another address of the host
    finally:
        broker.stop()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_a_bracketed_ipv6_address_binds_it(tmp_path):
    path = write_config(tmp_path, broker="tcp://[::1]:*", publish="tcp://[::1]:*", subscribe="tcp://[::1]:*")
    broker = ZMQBroker.thread(path)
    try:
        assert broker.bound["broker"].startswith("tcp://[::1]:")
        assert ZMQBroker.check(address=broker.endpoints["broker"], timeout=10)
    finally:
        broker.stop()


def test_from_config_parser_and_other_transports():
    cfg = configparser.ConfigParser()
    cfg["zmq"] = {"broker": "ipc:///tmp/cauldron-test-broker", "subscribe": "inproc://sub"}
    broker = ZMQBroker.from_config(cfg)
    assert broker.address == "ipc:///tmp/cauldron-test-broker"
    assert (broker.pub_address, broker.mon_address) == ("inproc://sub", "inproc://sub")
    assert broker.sub_address == f"tcp://{LOOPBACK}:6512"  # the default for the key not given


@pytest.mark.parametrize("keys, named", [
    ({"broker": "localhost:6513"}, "broker"),
    ({"timeout": "soon"}, "timeout"),
    ({"heartbeat": "maybe"}, "heartbeat"),
    ({"max_message_size": "big"}, "max_message_size"),
])
def test_bad_configuration_is_a_config_error_naming_the_key(tmp_path, keys, named):
    with pytest.raises(ConfigError, match=named):
        ZMQBroker.from_config(write_config(tmp_path, **keys))


def test_missing_configuration_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="missing.cfg"):
        ZMQBroker.from_config(str(tmp_path / "missing.cfg"))


def test_configured_wildcard_ports_resolve_and_lookup_answers_the_real_one(tmp_path):
    path = write_config(tmp_path, broker="tcp://localhost:*", publish="tcp://localhost:*",
                        subscribe="tcp://localhost:*", timeout="1")
    broker = ZMQBroker.thread(path)
    try:
        assert broker.name == "ConfiguredBroker" and broker.isDaemon()
        for key in ("broker", "publish", "subscribe"):
            assert broker.endpoints[key].startswith(f"tcp://{LOOPBACK}:")
        assert broker.core.lookup_address == broker.endpoints["subscribe"]
        assert ZMQBroker.check(address=broker.endpoints["broker"], timeout=10)
    finally:
        broker.stop()


def test_check_with_a_config_naming_the_broker(tmp_path):
    with broker_thread("tcp") as broker:
        assert ZMQBroker.check(write_config(tmp_path, broker=broker.endpoints["broker"]), timeout=10)


def test_check_is_false_without_a_broker_and_leaves_nothing_open():
    context = zmq.Context()
    try:
        with open_peers(context) as peers:
            silent = peers.socket(zmq.ROUTER)  # accepts the connection, never answers
            port = silent.bind_to_random_port("tcp://127.0.0.1")
            assert ZMQBroker.check(address=f"tcp://127.0.0.1:{port}", ctx=context, timeout=0.2) is False
        assert ZMQBroker.check(address="inproc://nobody-here", ctx=context, timeout=0.05) is False
        assert ZMQBroker.check(address=ANY_TCP, ctx=context) is False  # a wildcard port names no broker
    finally:
        context.term()  # would hang if check() left a socket open with a linger


def test_check_on_an_unusable_address_is_a_config_error():
    with pytest.raises(ConfigError, match="not-an-address"):
        ZMQBroker.check(address="tcp://not-an-address", timeout=0.1)


def test_connect_form_and_wildcards():
    assert connect_form("tcp://0.0.0.0:7011") == "tcp://127.0.0.1:7011"
    assert connect_form("tcp://0.0.0.0:7011", "obs.example.org") == "tcp://obs.example.org:7011"
    assert connect_form("tcp://[::]:7011") == "tcp://[::1]:7011"
    assert connect_form("tcp://127.0.0.1:7011", "ignored") == "tcp://127.0.0.1:7011"
    assert connect_form("inproc://x") == "inproc://x"
    assert is_wildcard("tcp://127.0.0.1:*") and is_wildcard("tcp://localhost:0")
    assert not is_wildcard("tcp://localhost:6511") and not is_wildcard("inproc://x:*")


def test_get_service_looks_up_without_creating():
    broker = ZMQBroker("lookup", ANY_TCP, ANY_TCP, ANY_TCP, ANY_TCP)
    assert broker.get_service("KTEST") is None
    assert "KTEST" not in broker.services and len(broker.services) == 0


SEED_SIGNATURES = {  # /work/shared/seed/ZMQBroker-api.txt
    "__init__": "(self, name, address, pub_address, sub_address, mon_address, context=None, timeout=1.0, heartbeat=True)",
    "check": "(config=None, timeout=2.0, ctx=None, address=None)",
    "cleanup": "(self, socket)", "close": "(self)", "connect": "(self, address, mode='ROUTER')",
    "daemon": "(config=None, daemon=True)", "from_config": "(config, name='ConfiguredBroker')",
    "getName": "(self)", "get_service": "(self, service)", "isAlive": "(self)", "isDaemon": "(self)",
    "is_alive": "(self)", "join": "(self, timeout=None)", "prepare": "(self)", "respond": "(self)",
    "respond_inquiry": "(self, message, socket)", "run": "(self)", "serve": "(config=None, name='ServerBroker')",
    "setDaemon": "(self, daemonic)", "setName": "(self, name)",
    "setup": "(config=None, timeout=2.0, daemon=True)", "start": "(self)", "stop": "(self, timeout=None)",
    "sub": "(config=None, daemon=True)", "thread": "(config=None, daemon=True)",
}


@pytest.mark.parametrize("member", sorted(SEED_SIGNATURES))
def test_seed_api_signature(member):
    assert str(inspect.signature(getattr(ZMQBroker, member))) == SEED_SIGNATURES[member]


@pytest.mark.parametrize("text, says", [
    ("timeout = 5\n", "cauldron.cfg, line 1: 'timeout = 5' is outside any section (the keys go under [zmq])"),
    ("[core]\nname = x\n", "cauldron.cfg: no [zmq] section (found [core])"),
    ("[zmq]\nbroker\n", "cauldron.cfg, line 2: cannot parse 'broker'"),
    ("[zmq]\ntimeout = soon\n", "cauldron.cfg: [zmq] timeout = 'soon': not a number"),
    ("[zmq]\nheartbeat = maybe\n", "cauldron.cfg: [zmq] heartbeat = 'maybe': not yes/no"),
    ("[zmq]\nbroker = localhost:6513\n",
     "cauldron.cfg: [zmq] broker = 'localhost:6513': not a ZMQ address (transport://...)"),
])
def test_every_configuration_error_is_one_line_naming_file_section_key_and_value(tmp_path, text, says):
    path = tmp_path / "cauldron.cfg"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        ZMQBroker.from_config(str(path))
    assert str(raised.value) == f"{tmp_path}/{says}"


def test_an_unknown_key_is_warned_about_once_with_the_closest_known_key(tmp_path, caplog):
    path = write_config(tmp_path, brokr="tcp://localhost:7013", frobnicate="1")
    with caplog.at_level("WARNING", logger="cauldron_proto.config"):
        ZMQBroker.from_config(path)
        ZMQBroker.from_config(path)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: [zmq] brokr is not a configuration key and is ignored (did you mean 'broker'?)",
        f"{path}: [zmq] frobnicate is not a configuration key and is ignored (known keys: "
        + ", ".join(CONFIG_DEFAULTS) + ")"]


def test_a_value_given_by_the_caller_is_named_as_such(tmp_path):
    from cauldron_proto.peer import HelperSettings
    with pytest.raises(ConfigError, match=r"^arguments: \[zmq\] timeout = 'soon': not a number$"):
        HelperSettings.load(write_config(tmp_path), timeout="soon")
