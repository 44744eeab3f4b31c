"""Routing core fuzzing: valid messages of every kind from random peers, mutated (frames and
bytes flipped, inserted, deleted, truncated), dispatchers answering (late, twice, mangled,
from the wrong socket), and a fake clock that jumps (0 to 10^6 heartbeat periods).

Every program runs through fuzz/core_driver.py, which checks after every step that nothing
escapes, everything sent decodes, the books are consistent and bounded and the timers are
honest, and at the end that every request got exactly one answer and nothing is left.
(tests/test_broker_core_properties.py covers unmutated random frames and the answer count for
well-formed traffic; these add mutations of every kind, long runs and clock jumps.)
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauldron_proto.broker.core.requests import Requests
from fuzz.core_driver import ADVANCE, BEAT, PEERS, REPLY, SEND, STEPS, CoreDriver, run_program
from fuzz.programs import program_from_bytes, random_program
from fuzz.seeds import N_OPS, TEMPLATES

MUTATION = st.tuples(st.integers(0, N_OPS - 1), st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=8))
MUTATIONS = st.one_of(st.just(()), st.lists(MUTATION, min_size=1, max_size=3).map(tuple))
ACTION = st.one_of(
    st.tuples(st.just(SEND), st.integers(0, len(PEERS) - 1), st.integers(0, len(TEMPLATES) - 1),
              st.integers(0, 65535), MUTATIONS),
    st.tuples(st.just(REPLY), st.integers(0, 65535), st.integers(0, 255), MUTATIONS),
    st.tuples(st.just(BEAT), st.integers(0, 255)),
    st.tuples(st.just(ADVANCE), st.integers(0, len(STEPS) - 1)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ACTION, max_size=60), st.sampled_from([None, 2]))
def test_mutated_traffic_from_random_peers(program, max_in_flight):
    run_program(program, max_in_flight=max_in_flight)


@settings(max_examples=20, deadline=None)
@given(st.lists(ACTION, min_size=200, max_size=400))
def test_long_mutated_sequences(program):
    run_program(program, fanout_timeout=2.5)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=1500))
def test_programs_read_from_bytes(data):
    """The atheris entry point's input format (fuzz/fuzz_core.py), driven by hypothesis."""
    run_program(program_from_bytes(data))


@pytest.mark.parametrize("seed, max_in_flight, fanout_timeout", [(1, None, 4.0), (2, 3, 4.0), (3, 1, 0.5)])
def test_long_random_runs(seed, max_in_flight, fanout_timeout):
    driver = run_program(list(random_program(random.Random(seed), 4000)), max_in_flight=max_in_flight,
                         fanout_timeout=fanout_timeout)
    stats = driver.core.stats
    # the run reached the interesting paths, not only refusals
    assert stats.registered and stats.expired and stats.fanouts and stats.timed_out and stats.refused, stats
    assert sum(driver.answers.values()) > 500


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(ACTION, st.tuples(st.just(ADVANCE), st.sampled_from([14, 15, 16]))), max_size=60))
def test_clock_jumps_without_heartbeats(program):
    """heartbeat=False: nothing expires, so only 'never twice' and the books are checked."""
    driver = CoreDriver(heartbeat=False)
    driver.run(program)
    driver.finish()
    assert driver.core.next_deadline() is None  # every fan-out ended at its deadline


def test_the_driver_catches_a_core_that_forgets_requests(monkeypatch):
    """The checks can fail: a core that drops a leaving dispatcher's requests unanswered."""
    def forgetful_withdraw(self, record):
        self.at.pop(record, None)
        return {}

    monkeypatch.setattr(Requests, "withdraw", forgetful_withdraw)
    program = [(SEND, 3, 2, 0, ()), (SEND, 3, 4, 0, ()), (SEND, 0, len(TEMPLATES) - 7, 0, ()), (ADVANCE, 16)]
    with pytest.raises(AssertionError, match="never answered"):
        run_program(program)
