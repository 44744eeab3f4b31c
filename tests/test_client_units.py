"""Client and peer building blocks without a broker: settings, the broadcast filter, the
mailbox that hands work to an I/O thread, and the errors' texts."""

from __future__ import annotations

import configparser
import threading

import pytest
import zmq

from cauldron_proto import Direction, Message, decode
from cauldron_proto.client import (DispatcherError, RequestTimeoutError, UnknownKeywordError,
                                   is_broadcast_for, topics_for)
from cauldron_proto.config import ConfigError
from cauldron_proto.peer import Mailbox, HelperSettings, WorkerPool


def broadcast(service: str, keyword: str = "VALUE") -> Message:
    message = Message.new(Direction.CDB, service=service, dispatcher="D1", keyword=keyword,
                          command="broadcast", payload="1")
    return decode(list(message.frames))


@pytest.mark.parametrize("service, accepted", [
    ("KTEST", True), ("ktest", True), ("KTest", True), ("KTEST2", False), ("KTES", False), ("OTHER", False),
])
def test_broadcast_filter_compares_whole_names_case_insensitively(service, accepted):
    assert is_broadcast_for(broadcast(service), "KTEST") is accepted


def test_only_keyword_broadcasts_pass():
    reply = decode(list(Message.new(Direction.CDP, service="KTEST", keyword="VALUE", command="update").frames))
    assert not is_broadcast_for(reply, "KTEST")


def test_topics_cover_the_written_upper_and_lower_names():
    assert topics_for("KTest") == [b"KTEST", b"KTest", b"ktest"]
    assert topics_for("KTEST") == [b"KTEST", b"ktest"]


def test_settings_from_a_mapping_with_overrides():
    settings = HelperSettings.load({"broker": "tcp://h:1", "timeout": 2}, subscribe="tcp://h:3", timeout=None)
    assert (settings.broker, settings.subscribe, settings.timeout) == ("tcp://h:1", "tcp://h:3", 2.0)
    assert (settings.publish, settings.heartbeat, settings.pool) == ("tcp://localhost:6512", True, 8)


def test_settings_from_a_file_and_a_parser(tmp_path):
    path = tmp_path / "zmq.cfg"
    path.write_text("[zmq]\nbroker = tcp://file:9\npool = 2\nheartbeat = no\n")
    settings = HelperSettings.load(str(path), broker="tcp://override:1")
    assert (settings.broker, settings.pool, settings.heartbeat) == ("tcp://override:1", 2, False)
    parser = configparser.ConfigParser()
    parser.read_dict({"zmq": {"timeout": "0.5"}})
    assert HelperSettings.load(parser).timeout == 0.5


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match="timeout"):
        HelperSettings.load({"timeout": "soon"})
    with pytest.raises(ConfigError, match="broker"):
        HelperSettings.load(broker="localhost:6513")


def test_mailbox_wakes_the_receiver_and_keeps_order():
    context = zmq.Context()
    mailbox = Mailbox(context)
    try:
        mailbox.open()
        posters = [threading.Thread(target=lambda n=n: [mailbox.post((n, i)) for i in range(100)]) for n in range(4)]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
        items = []
        while len(items) < 400:
            assert mailbox.receiver.poll(5000), "no wake-up"
            items += mailbox.drain()
        for n in range(4):
            assert [i for (m, i) in items if m == n] == list(range(100))
    finally:
        mailbox.close()
        context.term()
    assert mailbox.post("late") is False


def test_worker_pool_runs_jobs_and_survives_one_that_raises(caplog):
    import logging
    done = threading.Event()
    pool = WorkerPool(2, "test-pool", logging.getLogger("test-pool"))
    pool.submit(lambda: 1 / 0)
    pool.submit(done.set)
    assert done.wait(5)
    pool.shutdown()
    assert any("raised" in record.getMessage() for record in caplog.records)


def test_error_texts():
    timeout = RequestTimeoutError("KTEST", "VALUE", "update", 0.5, "tcp://h:1")
    assert isinstance(timeout, TimeoutError)
    assert str(timeout) == "KTEST.VALUE: no answer to 'update' within 0.5 s (broker tcp://h:1)"
    error = DispatcherError("KTEST", None, "enumerate", "No dispatchers for 'KTEST'")
    assert (str(error), error.text) == ("KTEST: enumerate failed: No dispatchers for 'KTEST'",
                                        "No dispatchers for 'KTEST'")
    missing = UnknownKeywordError("KTEST", "NOPE")
    assert isinstance(missing, KeyError) and str(missing) == "KTEST has no keyword 'NOPE'"
