"""Broker faults with real processes: cauldron-broker killed (SIGKILL) and started again on
the same addresses, under a cauldron-dispatcher process and a client that are not restarted.
"""

from __future__ import annotations

import itertools
import queue

import pytest

from cauldron_proto import client
from cauldron_proto.testing import broker_process, config_for

from .fault_processes import dispatcher_process
from .keyword_helpers import WAIT, wait_for

T = 0.2


def read(svc: client.Service, timeout: float = 1.0):
    try:
        return svc["VALUE"].read(timeout=timeout)
    except (client.ClientError, TimeoutError, KeyError) as exc:
        return exc


def broadcast_reaches(svc: client.Service, seen: queue.SimpleQueue, values) -> str:
    """Write new values until the monitor receives one as a broadcast (the subscription may
    take a moment to travel to the dispatcher); the value seen."""
    def written_and_seen():
        value = str(next(values))
        if svc["VALUE"].write(value, timeout=WAIT) != value:
            return None
        try:
            while True:
                got = seen.get(timeout=0.3)
                if not got.primed and got.ascii == value:
                    return value
        except queue.Empty:
            return None

    return wait_for(written_and_seen, message="a broadcast reached the monitor")


def test_broker_killed_and_restarted_clients_and_dispatchers_carry_on():
    values = itertools.count(10)
    with broker_process(timeout=T) as first:
        endpoints, config = dict(first.endpoints), config_for(first)
        with dispatcher_process(config, "KRESTART", "krestart1", "VALUE=1"), \
                client.Service("KRESTART", config, timeout=WAIT) as svc:
            assert svc["VALUE"].read() == "1"
            seen: queue.SimpleQueue = queue.SimpleQueue()
            svc["VALUE"].monitor(seen.put)
            last = broadcast_reaches(svc, seen, values)

            first.kill()
            with pytest.raises(client.RequestTimeoutError):
                svc["VALUE"].read(timeout=3 * T)  # nobody answers while the broker is gone

            with broker_process(timeout=T, router=endpoints["broker"], publish=endpoints["publish"],
                                subscribe=endpoints["subscribe"]) as again:
                assert again.endpoints == endpoints
                # the dispatcher registers again by itself; the same client reads again
                wait_for(lambda: read(svc) == last, message="a read through the new broker")
                broadcast_reaches(svc, seen, values)  # the monitor resumed
