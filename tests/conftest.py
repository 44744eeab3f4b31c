"""Shared fixtures: the repository root, the golden codec fixtures, brokers and raw peers
(``tcp_broker``, ``inproc_broker``, ``any_broker``: both transports; ``peers``: a
:class:`~cauldron_proto.testing.PeerSockets` in the global context), and the test kinds.

Every test is ``unit`` (the I/O-free parts: codec, kinds, payloads, routing core, dispatcher
core, conformance cases on the core, fuzzing of the core and codec; no socket, no process,
which an autouse guard enforces) or ``integration`` (real sockets, threads and processes).
``python -m pytest -m unit`` runs the first kind in a few seconds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import zmq

from cauldron_proto.testing import broker_thread, open_peers

ROOT = Path(__file__).resolve().parent.parent

#: Test modules that do no I/O; every other module is an integration test.
UNIT_MODULES = frozenset({
    "test_codec", "test_client_core", "test_client_ktl", "test_conformance", "test_conformance_format", "test_dispatcher_core",
    "test_fuzz_codec", "test_fuzz_core", "test_kinds", "test_payloads", "test_readme", "test_broker_core_basic",
    "test_broker_core_fanout", "test_broker_core_keys", "test_broker_core_malformed", "test_broker_core_properties",
    "test_broker_core_requests", "test_broker_core_routed", "test_broker_status", "test_broker_subscriptions",
    "test_unit_guard", "test_layers", "test_unfinished",
})


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def tcp_broker():
    with broker_thread("tcp") as broker:
        yield broker


@pytest.fixture
def inproc_broker():
    with broker_thread("inproc") as broker:
        yield broker


@pytest.fixture(params=["inproc", "tcp"])
def any_broker(request):
    with broker_thread(request.param) as broker:
        yield broker


@pytest.fixture
def peers():
    with open_peers() as group:
        yield group


def golden(name: str) -> list[dict]:
    return json.loads((ROOT / "conformance" / "golden" / name).read_text(encoding="utf-8"))["cases"]


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        item.add_marker(pytest.mark.unit if module in UNIT_MODULES else pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_do_no_io(request, monkeypatch):
    """A unit test that opens a ZMQ socket or starts a process fails, naming what it did."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(what):
        def refused(*args, **kwargs):
            raise AssertionError(f"a unit test may not {what}: mark its module an integration test")
        return refused

    monkeypatch.setattr(zmq.Context, "socket", refuse("open a ZMQ socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("start a process"))
