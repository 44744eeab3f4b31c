"""The unit marker means something: a unit test cannot open a socket or start a process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import zmq


def test_a_unit_test_that_opens_a_socket_fails():
    context = zmq.Context()
    try:
        with pytest.raises(AssertionError, match="may not open a ZMQ socket"):
            context.socket(zmq.DEALER)
    finally:
        context.term()


def test_a_unit_test_that_starts_a_process_fails():
    with pytest.raises(AssertionError, match="may not start a process"):
        subprocess.run([sys.executable, "-c", "pass"])
