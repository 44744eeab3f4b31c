"""Test helpers for the client and dispatcher helpers: brokers, dispatchers, polling.

    with keyword_broker() as broker:
        config = config_for(broker)
        with serving("KTEST", config, VALUE=("integer", 1)) as disp, client.Service("KTEST", config) as svc:
            ...
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable

from cauldron_proto import dispatcher
from cauldron_proto.broker import BindError, ZMQBroker
from cauldron_proto.testing import WAIT, broker_thread, config_for

__all__ = ["keyword_broker", "config_for", "serving", "wait_for", "restarted_broker", "WAIT"]


@contextmanager
def keyword_broker(timeout: float = 1.0, **options: Any):
    """A broker thread on ephemeral tcp ports, stopped on exit (see cauldron_proto.testing)."""
    with broker_thread("tcp", timeout=timeout, **options) as broker:
        yield broker


@contextmanager
def serving(service: str, config: dict, name: str | None = None, **keywords: Any):
    """A started dispatcher registered with the broker; ``keywords`` map NAME to (type, value)
    or to a dict of ``add_keyword`` arguments. Shut down on exit."""
    svc = dispatcher.Service(service, config, name, start=False)
    try:
        for keyword, spec in keywords.items():
            if isinstance(spec, dict):
                svc.add_keyword(keyword, **spec)
            else:
                svc.add_keyword(keyword, *spec)
        svc.begin()
        assert svc.wait_registered(WAIT), f"dispatcher {svc.dispatcher} did not register"
        yield svc
    finally:
        svc.shutdown()


def wait_for(condition: Callable[[], Any], timeout: float = WAIT, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"{message} not met within {timeout} s")
        time.sleep(interval)


@contextmanager
def restarted_broker(old: ZMQBroker):
    """Stop ``old`` and start a new broker on the very same endpoints; stopped on exit."""
    endpoints = dict(old.endpoints)
    old.stop(timeout=WAIT)
    assert not old.is_alive()
    end = time.monotonic() + WAIT
    while True:  # the old sockets' ports may take a moment to be free again (or another test holds one)
        new = ZMQBroker("restarted-broker", endpoints["broker"], endpoints["subscribe"], endpoints["publish"],
                        endpoints["subscribe"], timeout=old.timeout, heartbeat=old.heartbeat)
        new.daemon = True
        try:
            new.start()
            break
        except BindError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
    try:
        yield new
    finally:
        new.stop(timeout=WAIT)
