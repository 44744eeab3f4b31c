"""The client helper end to end: a real ZMQBroker over tcp on ephemeral ports, a dispatcher
helper serving keywords, and client.Service reading, writing and monitoring them."""

from __future__ import annotations

import queue
import re
import threading

import pytest

from cauldron_proto import ConfigError, client

from .keyword_helpers import WAIT, config_for, keyword_broker, serving, wait_for


def at_most_100(keyword, value):
    if value > 100:
        raise ValueError(f"{value} is more than 100")


@pytest.fixture
def broker():
    with keyword_broker() as running:
        yield running


@pytest.fixture
def config(broker):
    return config_for(broker)


@pytest.fixture
def ktest(config):
    with serving("KTEST", config, "KTEST1",
                 VALUE={"type": "integer", "value": 1, "units": "counts", "validate": at_most_100},
                 NAME=("string", "hello"), FLAG=("boolean", False)) as disp:
        yield disp


@pytest.fixture
def svc(config, ktest):
    with client.Service("ktest", config, timeout=WAIT) as service:
        yield service


def test_read_gives_ascii_or_the_typed_value(svc):
    assert svc["VALUE"].read() == "1"
    assert svc["VALUE"].read(binary=True) == 1
    assert svc["flag"].read(binary=True) is False
    assert svc["NAME"].read() == "hello"


def test_write_changes_the_dispatchers_value(svc, ktest):
    assert svc["VALUE"].write(42) == "42"
    assert ktest["VALUE"].value == 42
    assert svc["VALUE"].read() == "42"
    assert svc["FLAG"].write(True) == "1"


def test_identify_names_type_and_owner(svc):
    info = svc.identify("value")
    assert info == client.KeywordInfo("VALUE", "integer", "KTEST1")
    keyword = svc["VALUE"]
    assert (keyword.type, keyword.dispatcher) == ("integer", "KTEST1")


def test_keywords_enumerates_every_dispatcher_of_the_service(svc, config):
    with serving("KTEST", config, "KTEST2", OTHER=("double", 2.5)):
        assert sorted(svc.keywords()) == ["FLAG", "NAME", "OTHER", "VALUE"]
        assert svc["OTHER"].read(binary=True) == 2.5
        assert svc["OTHER"].dispatcher == "KTEST2"


def test_locate_and_units(svc, config):
    assert svc.locate() is True
    assert svc["VALUE"].units() == "counts"
    with client.Service("NOBODY", config, timeout=WAIT) as nobody:
        assert nobody.locate() is False


def test_refused_write_raises_with_the_dispatchers_reason(svc, ktest):
    with pytest.raises(client.DispatcherError) as info:
        svc["VALUE"].write(500)
    assert info.value.text == "Write to VALUE refused: 500 is more than 100"
    assert "500 is more than 100" in str(info.value)
    assert ktest["VALUE"].value == 1


def test_value_of_the_wrong_type_is_refused_before_sending(svc):
    with pytest.raises(ValueError, match="'lots' is not a valid integer value"):
        svc["VALUE"].write("lots")


def test_unknown_keyword_raises_key_error_naming_it(svc):
    with pytest.raises(KeyError) as info:
        svc["NOSUCH"]
    assert isinstance(info.value, client.UnknownKeywordError)
    assert str(info.value) == "ktest has no keyword 'NOSUCH'"
    assert "NOSUCH" not in svc and "VALUE" in svc


def test_service_without_dispatchers_is_a_dispatcher_error(config):
    with client.Service("EMPTY", config, timeout=WAIT) as empty:
        with pytest.raises(client.DispatcherError, match="No dispatchers for 'empty'"):
            empty["VALUE"]


def test_monitor_primes_then_delivers_every_broadcast(svc, ktest):
    values: queue.SimpleQueue = queue.SimpleQueue()
    monitor = svc["VALUE"].monitor(values.put)
    first = values.get(timeout=WAIT)
    assert (first.ascii, first.value, first.primed, first.dispatcher) == ("1", 1, True, "KTEST1")
    subscribed(ktest["VALUE"], values)
    for n in (50, 51, 52):
        svc["VALUE"].write(n)
    seen = [values.get(timeout=WAIT) for _ in range(3)]
    assert [(v.ascii, v.value, v.primed, v.dispatcher) for v in seen] == [
        ("50", 50, False, "KTEST1"), ("51", 51, False, "KTEST1"), ("52", 52, False, "KTEST1")]
    monitor.cancel()
    svc["VALUE"].write(53)
    svc["VALUE"].read()
    assert values.empty()


def subscribed(keyword, values: queue.SimpleQueue) -> None:
    """Wait until broadcasts of dispatcher ``keyword`` reach ``values``, then empty it.

    A subscription reaches the dispatcher's PUB socket a moment after ``monitor`` returns
    (ZMQ's slow joiner): set new values until one arrives, then a marker, and take every
    value up to the marker.
    """
    wait_for(lambda: (keyword.set(keyword.value + 1), not values.empty())[1],
             message=f"a broadcast of {keyword.name}")
    marker = keyword.value + 1000
    keyword.set(marker)
    collect_until(values, marker)


def _drained(values: queue.SimpleQueue) -> list:
    items = []
    while not values.empty():
        items.append(values.get())
    return items


def test_monitor_without_priming(svc, ktest):
    values: queue.SimpleQueue = queue.SimpleQueue()
    svc["NAME"].monitor(values.put, prime=False)
    wait_for(lambda: (ktest["NAME"].set("x", force=True), not values.empty())[1], message="a broadcast")
    assert values.get().primed is False


def collect_until(values: queue.SimpleQueue, last) -> list:
    """Values from ``values`` up to and including the first whose value is ``last``."""
    seen = []
    while not seen or seen[-1].value != last:
        seen.append(values.get(timeout=WAIT))
    return seen


def test_broadcasts_of_a_longer_service_name_are_not_delivered(config, ktest):
    """KTEST2's broadcasts reach a KTEST subscriber's socket (topic prefix) and are dropped."""
    with serving("KTEST2", config, "OTHER", VALUE=("integer", 1000)) as other, \
            client.Service("KTEST", config, timeout=WAIT) as mine, \
            client.Service("KTEST2", config, timeout=WAIT) as theirs:
        mine_values: queue.SimpleQueue = queue.SimpleQueue()
        their_values: queue.SimpleQueue = queue.SimpleQueue()
        mine["VALUE"].monitor(mine_values.put, prime=False)
        theirs["VALUE"].monitor(their_values.put, prime=False)
        subscribed(other["VALUE"], their_values)
        subscribed(ktest["VALUE"], mine_values)
        seen_mine = []
        for n in range(2000, 2005):
            other["VALUE"].set(n)
        collect_until(their_values, 2004)
        # KTEST2's broadcasts left the broker's XPUB before this one: they were dropped by now.
        ktest["VALUE"].set(7)
        seen_mine += collect_until(mine_values, 7)
        assert all(value.value < 1000 for value in seen_mine), seen_mine


def test_many_reads_from_several_threads_are_matched(config):
    keywords = {f"K{i}": ("integer", i * 1000) for i in range(8)}
    with serving("KMANY", config, "MANY1", **keywords), \
            client.Service("KMANY", config, timeout=WAIT) as svc:
        errors: list = []

        def reader(index: int) -> None:
            keyword = svc[f"K{(index % 8)}"]
            try:
                for _ in range(40):
                    value = keyword.read(binary=True)
                    if value != (index % 8) * 1000:
                        errors.append((keyword.name, value))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 3)
        assert errors == [] and not any(t.is_alive() for t in threads)


def test_a_dispatcher_that_never_answers_gives_a_timeout_naming_the_keyword(config):
    release = threading.Event()
    with serving("KSLOW", config, "SLOW1",
                 STUCK={"type": "integer", "value": 0, "on_read": lambda kw: release.wait(WAIT) and 0}), \
            client.Service("KSLOW", config, timeout=WAIT) as svc:
        keyword = svc["STUCK"]
        try:
            with pytest.raises(TimeoutError) as info:
                keyword.read(timeout=0.3)
        finally:
            release.set()
        assert isinstance(info.value, client.RequestTimeoutError)
        assert info.value.keyword == "STUCK" and "KSLOW.STUCK" in str(info.value)
        assert "'update'" in str(info.value) and "0.3 s" in str(info.value)
        assert info.value.diagnosis == (f"the broker at {config['broker']} answers, so its dispatcher 'SLOW1' of "
                                        "KSLOW is registered but not answering")


def test_an_address_no_broker_can_be_at_is_an_error_at_once():
    for where, says in (("tcp://127.0.0.1:99999", "port 99999 is out of range"),
                        ("tcp://no-such-host.invalid:6513", "cannot resolve host 'no-such-host.invalid'")):
        with pytest.raises(ConfigError, match=f"^cannot connect to a broker at {re.escape(where)}: {says}"):
            client.Service("KTEST", {"broker": where})


def test_no_broker_gives_a_timeout():
    with client.Service("KTEST", {"broker": "tcp://127.0.0.1:1"}, timeout=0.2) as svc:
        with pytest.raises(client.RequestTimeoutError, match="KTEST.VALUE: no answer to 'identify' within 0.2 s: "
                           "no broker answers at tcp://127.0.0.1:1$"):
            svc["VALUE"]


def test_shutdown_is_idempotent_and_refuses_later_requests(config, ktest):
    svc = client.Service("KTEST", config, timeout=WAIT)
    keyword = svc["VALUE"]
    svc.shutdown()
    svc.shutdown()
    with pytest.raises(client.ShutDownError):
        keyword.read()


def test_a_keyword_that_moved_to_another_dispatcher_is_found_again():
    """Its old dispatcher expired ('not available'): the client identifies it again, once."""
    with keyword_broker(timeout=0.2) as broker:
        config = config_for(broker)
        with client.Service("KMOVE", config, timeout=WAIT) as svc:
            with serving("KMOVE", config, "MOVE-A", VALUE=("integer", 1)):
                assert (svc["VALUE"].read(), svc["VALUE"].dispatcher) == ("1", "MOVE-A")
            wait_for(lambda: not svc.locate(), message="the broker expiring MOVE-A")
            with serving("KMOVE", config, "MOVE-B", VALUE=("integer", 2)):
                assert (svc["VALUE"].read(), svc["VALUE"].dispatcher) == ("2", "MOVE-B")
