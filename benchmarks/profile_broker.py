"""Where the broker's loop spends its time at 64 in flight: a py-spy profile of the
``cauldron-broker`` process, its routing thread only (issue 22's before/after).

    python -m pip install py-spy
    python benchmarks/profile_broker.py [--pure] [--seconds 5] [--inflight 64] [--rate 250]

The broker (``CAULDRON_PROTO_PURE=1`` with ``--pure``), one dispatcher and a DEALER client
(benchmarks/peers.py) run in their own processes over tcp loopback; a second after the
requests flow, ``py-spy record --idle --threads --format raw`` samples the broker for --seconds.
Printed: the share of the routing thread's samples in each of a few functions (inclusive),
and the lines where its samples end (self), the most first. Waiting in poll counts (--idle).
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
from broker import broker_process, processes  # noqa: E402

#: (label, pattern a frame matches): inclusive shares printed, in this order
PARTS = (("poll (waiting included)", r"^BrokerSockets\.poll "), ("serving the ROUTER", r"\._serve_(router|batched) "),
         ("the routing core (handle, over_limit)", r"^BrokerCore\.(handle|over_limit) "),
         ("sending (_transmit)", r"\._transmit "), ("timers (cleanup)", r"\.cleanup "))
_FRAME = re.compile(r"^(?P<function>\S+) \((?P<file>[^:]+):(?P<line>\d+)\)$")


def busy(pid: int, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` uses more than half a core (the requests flow), then a second more."""
    deadline = time.monotonic() + timeout
    before = peers.cpu_ns(pid)["total"]
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = peers.cpu_ns(pid)["total"]
        if now - before > 100_000_000:
            time.sleep(1.0)
            return
        before = now
    raise TimeoutError("the broker never got busy: no requests flow")


def stacks(raw: Path) -> list[tuple[list[str], int]]:
    """The routing thread's stacks (root first) and their sample counts, from py-spy's raw output."""
    out = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(frame.startswith("ZMQBroker._step ") for frame in frames):
            out.append((frames, int(count)))
    return out


def report(samples: list[tuple[list[str], int]], top: int = 12) -> list[str]:
    total = sum(count for _, count in samples) or 1
    lines = [f"{total} samples of the routing thread"]
    for label, pattern in PARTS:
        matched = sum(count for frames, count in samples if any(re.search(pattern, f) for f in frames))
        lines.append(f"  {100 * matched / total:5.1f}%  {label}")
    leaves: collections.Counter[str] = collections.Counter()
    for frames, count in samples:
        match = _FRAME.match(frames[-1])
        leaves[frames[-1] if match is None else f"{match['function']} ({Path(match['file']).name}:{match['line']})"] += count
    lines.append("self, by line:")
    lines += [f"  {100 * count / total:5.1f}%  {where}" for where, count in leaves.most_common(top)]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pure", action="store_true", help="the broker with CAULDRON_PROTO_PURE=1")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output (collapsed stacks) here")
    args = parser.parse_args(argv)
    env = {"CAULDRON_PROTO_PURE": "1"} if args.pure else None
    with tempfile.TemporaryDirectory() as tmp, processes() as group, \
            broker_process(5.0, None, env) as (endpoints, pid):
        [name] = group.start(peers.dispatchers, endpoints["broker"], 1).get()
        # enough requests to outlast the profile at 60,000/s; the client is stopped on exit
        group.start(peers.dealer_client, endpoints["broker"], name, round(60_000 * (args.seconds + 2)), args.inflight)
        busy(pid)
        raw = args.raw or Path(tmp) / "profile.txt"
        subprocess.run(["py-spy", "record", "--pid", str(pid), "--duration", str(round(args.seconds)), "--rate",
                        str(args.rate), "--idle", "--threads", "--format", "raw", "--output", str(raw)],
                       check=True, capture_output=True)
        print(f"cauldron-broker ({'pure Python' if args.pure else 'default'} I/O), {args.inflight} in flight, "
              f"{args.seconds:g} s:")
        print("\n".join(report(stacks(raw))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
