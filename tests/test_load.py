"""A bounded load test on loopback (scripts/soak.py, shortened): a cauldron-broker process,
4 dispatcher processes, 16 raw clients with 8 requests in flight each (writes, reads,
fan-outs, locate; every write a broadcast) and 2 client.Service threads, for 4 seconds.
Every request is accounted for: exactly one answer each, to the client that asked, saying
what it must; nothing lost; broadcasts carry written values in order.
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
