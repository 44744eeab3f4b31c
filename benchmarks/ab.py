"""Before/after: round trips through several versions of the broker, interleaved, in one run.

Each version is a directory holding a ``cauldron_proto`` package (for example a ``src``
exported from an older commit); ``installed`` is the one this Python imports. Runs go
round-robin (version A, B, ..., then A again) so a busy moment on a shared machine hits
every version alike; each figure is the median of --runs runs.

    git archive COMMIT src | tar -x -C /tmp/before
    python benchmarks/ab.py before=/tmp/before/src after=installed [--runs 5] [--inflight 1 64]
                            [--payload-size BYTES] [--reference-broker COMMAND] [--pure NAME ...]

--pure NAME ...: these versions run with CAULDRON_PROTO_PURE=1 (the pure-Python I/O; the
others run the compiled one when it is built): ``ab.py pure=installed compiled=installed --pure pure``.

--lean-workers: the second harness, a worker that answers without the codec (a reply built
once, the request's identifier put in) behind our broker (a protocol dispatcher) and behind
the device (a REP worker) alike, so what differs is the hop itself.

--floor adds a bare Python forwarding loop (no routing, no codec) on the broker's compiled batched
I/O, in front of the same worker as the device: the floor of any loop running in a Python thread.

--device adds the C device (``zmq.proxy(ROUTER, DEALER)`` in front of a REP worker, as in
run_all.py) as one more version in the rotation. --reference-broker COMMAND adds the existing Cauldron broker (COMMAND with the addresses
ROUTER PUBLISH SUBSCRIBE appended, see run_all.py) as one more version in the rotation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import broker  # noqa: E402

DEVICE = "zmq.proxy device"
FIGURES = ("rate_per_s", "p50_us", "p99_us", "cpu_us_per_rt", "cpu_us_per_rt_app")


def compare(versions: dict[str, str | None], inflights: list[int], runs: int, counts: dict[int, int],
            options: dict | None = None, reference: str | None = None, pure: frozenset[str] = frozenset(),
            device: bool = False, lean: bool = False, floor: bool = False) -> dict:
    """Medians by in-flight count and version; ``reference``: the existing broker's command,
    measured as the version named ``broker.REFERENCE``."""
    if reference:
        versions = {**versions, broker.REFERENCE: None}
    if device:
        versions = {**versions, DEVICE: None}
    if floor:
        versions = {**versions, broker.BATCHED_LOOP: None}
    results: dict = {inflight: {name: [] for name in versions} for inflight in inflights}
    for run in range(runs):
        for inflight in inflights:
            for name, src in versions.items():
                path = name if name in (broker.REFERENCE, DEVICE, broker.BATCHED_LOOP) else "cauldron_proto broker"
                result = broker.round_trips(path, inflight, counts[inflight], src,
                                            options if inflight == 1 else None, reference,
                                            {"CAULDRON_PROTO_PURE": "1"} if name in pure else None, lean)
                results[inflight][name].append(result)
                print(f"run {run + 1}: {inflight:>2} in flight, {name}: "
                      + ", ".join(f"{k} {result[k]:,.1f}" for k in FIGURES), flush=True)
    return {inflight: {name: {k: statistics.median(r[k] for r in rs) for k in FIGURES}
                       for name, rs in by_name.items()}
            for inflight, by_name in results.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="+", metavar="NAME=DIR", help="a version: NAME=DIR, or NAME=installed")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--inflight", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--count-1", type=int, default=5000, help="round trips per run, 1 outstanding")
    parser.add_argument("--count-64", type=int, default=40000, help="round trips per run, in flight > 1")
    parser.add_argument("--payload-size", type=int, help="1 outstanding: a modify with a payload of this many bytes")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--reference-broker", metavar="COMMAND",
                        help="also the existing Cauldron broker (the addresses ROUTER PUBLISH SUBSCRIBE are appended)")
    parser.add_argument("--device", action="store_true", help="also the C device (zmq.proxy) as a version")
    parser.add_argument("--floor", action="store_true",
                        help="also a bare Python forwarding loop on the compiled batched I/O (the floor of a Python loop)")
    parser.add_argument("--lean-workers", action="store_true",
                        help="the second harness: workers answering without the codec, behind broker and device alike")
    parser.add_argument("--pure", nargs="+", default=[], metavar="NAME",
                        help="versions run with CAULDRON_PROTO_PURE=1 (the pure-Python I/O)")
    args = parser.parse_args(argv)
    versions = {}
    for spec in args.versions:
        name, _, src = spec.partition("=")
        versions[name] = None if src in ("", "installed") else src
    counts = {n: args.count_1 if n == 1 else args.count_64 for n in args.inflight}
    options = None if args.payload_size is None else {"payload_size": args.payload_size}
    medians = compare(versions, args.inflight, args.runs, counts, options, args.reference_broker,
                      frozenset(args.pure), args.device, args.lean_workers, args.floor)
    print(f"\nmedians of {args.runs} runs")
    print("| in flight | version | round trips/s | p50 (us) | p99 (us) | CPU us/rt (process) | CPU us/rt (without ZMQ I/O thread) |")
    print("|---|---|---|---|---|---|---|")
    for inflight, by_name in medians.items():
        for name, r in by_name.items():
            print(f"| {inflight} | {name} | {r['rate_per_s']:,.0f} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} "
                  f"| {r['cpu_us_per_rt']:.1f} | {r['cpu_us_per_rt_app']:.1f} |")
    for wanted, base in ((args.reference_broker, broker.REFERENCE), (args.device, DEVICE)):
        if not wanted:
            continue
        for inflight, by_name in medians.items():
            rate = by_name[base]["rate_per_s"]
            print(f"{inflight} in flight: " + ", ".join(f"{name} {r['rate_per_s'] / rate:.2f}x"
                                                        for name, r in by_name.items() if name != base)
                  + f" the {base}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"versions": versions, "runs": args.runs, "medians": medians}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
