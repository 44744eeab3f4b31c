"""A bounded load test on loopback (scripts/soak.py, shortened): a cauldron-broker process,
4 dispatcher processes, 16 raw clients with 8 requests in flight each (writes, reads,
fan-outs, locate; every write a broadcast) and 2 client.Service threads, for 4 seconds.
Every request is accounted for: exactly one answer each, to the client that asked, saying
what it must; nothing lost; broadcasts carry written values in order. Then the same with one
dispatcher process killed 1 s in (T = 0.5 s): its requests' errors are counted apart as
expected, and still nothing is lost, duplicated, misrouted or wrong.
"""

from __future__ import annotations

import importlib.util
import sys

from .conftest import ROOT


def load_soak():
    spec = importlib.util.spec_from_file_location("cauldron_soak_script", ROOT / "scripts" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_load_every_request_answered_once_to_the_right_client():
    soak = load_soak()
    args = soak.parser().parse_args(["--clients", "16", "--dispatchers", "4", "--duration", "4",
                                     "--window", "8", "--helpers", "2", "--drain", "20"])
    report = soak.run(args)
    assert report.ok, report.examples
    assert (report.lost, report.duplicates, report.misrouted, report.wrong) == (0, 0, 0, 0)
    assert report.answers == report.requests > 1000
    assert set(report.by_kind) == {"write", "read", "identify", "enumerate", "locate"}
    assert report.broadcasts_received > 0 and report.helper_calls > 0 and not report.helper_failures


def test_load_with_a_dispatcher_killed_loses_nothing_and_counts_its_errors_apart():
    soak = load_soak()
    args = soak.parser().parse_args(["--clients", "16", "--dispatchers", "4", "--duration", "5", "--window", "8",
                                     "--helpers", "2", "--drain", "20", "--timeout", "0.5",
                                     "--kill-dispatcher-at", "1"])
    report = soak.run(args)
    assert report.ok, report.examples
    assert (report.lost, report.duplicates, report.misrouted, report.wrong) == (0, 0, 0, 0)
    assert report.killed_dispatcher == "load0" and report.answers == report.requests
    # a request sent to it after it died: answered at once when the broker's ZMQ has seen its
    # connection close, else 'Dispatcher Timed Out' when it expires (a run may see either)
    gone = report.expected.get("Dispatcher '{dispatcher}' of '{service}' has gone: its connection is closed", 0)
    assert gone + report.expected.get("Dispatcher Timed Out", 0) > 0, report.expected
    assert report.expected.get("Dispatcher '{dispatcher}' is not available for '{service}'", 0) > 0, report.expected
