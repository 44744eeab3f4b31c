"""What the broadcast relay costs: the Python relay that enforces the broker's limits (and a
curve_dispatchers policy) against the C relay of an earlier version, in the same run.

Brokers (the ``cauldron-broker`` command, each in its own process), publisher and subscriber
in processes of their own, over tcp loopback, round-robin, median of --runs:

* ``plain``: no CURVE: :class:`cauldron_proto.broker.relay.BroadcastRelay` (the limits);
* ``curve``: CURVE, no policy: the same relay (the CURVE encryption is what it adds);
* ``curve+policy``: CURVE with a policy letting the publisher's key serve the service: the
  same relay, every broadcast's key checked too;
* with ``--c-relay SRC`` (a ``cauldron_proto`` whose relay is ``zmq.proxy_steerable`` in C,
  e.g. ``git archive 7b26562 src | tar -x -C /tmp/c_relay``, then ``--c-relay /tmp/c_relay/src``)
  also ``plain (C)`` and ``curve (C)``: that version's broker, no limits on broadcasts.

* with ``--pure``, also each of the first three as ``... (pure)``: CAULDRON_PROTO_PURE=1, the
  relay's pure-Python loop (the others run the compiled I/O when it is built, docs/native.md).

    python benchmarks/relay_policy.py [--runs 3] [--count 100000] [--size 100] [--c-relay SRC] [--pure]
                                      [--max-queued-broadcasts N]

Our relays queue at most ``max_queued_broadcasts`` (256) broadcasts toward a subscriber, the C
relay libzmq's default SNDHWM (1,000): in a flood ours drop more by design. With
``--max-queued-broadcasts 1000`` both queue alike, and the rates compare the relays themselves.

Figures: broadcasts per second received (a flood: the publisher as fast as it can; or
paced with --interval), latency percentiles, ``received_percent`` (below 100: some were
dropped at a high-water mark), and the broker process's CPU per broadcast received, whole
and without its ZMQ I/O threads (the relay's own work: the C proxy or the Python thread).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
from broker import _broadcast_with  # noqa: E402

from cauldron_proto.cli.keygen import generate  # noqa: E402
from cauldron_proto.security import load_public_key, load_secret_key  # noqa: E402

VERSIONS = ("plain", "curve", "curve+policy")
C_VERSIONS = ("plain (C)", "curve (C)")
PURE = " (pure)"
FIGURES = ("rate_per_s", "p50_us", "p99_us", "received_percent", "cpu_us", "cpu_us_app")


def _keys(folder: Path) -> dict:
    made = {name: generate(folder / "keys", name) for name in ("broker", "pub", "sub")}
    (folder / "authorized").mkdir()
    for name in ("pub", "sub"):
        shutil.copy(made[name][0], folder / "authorized")
    (folder / "dispatchers").write_text(f"pub: {peers.SERVICE}\n")
    server = load_public_key(made["broker"][0])
    return {"folder": folder, "broker": made["broker"],
            **{name: (server, *load_secret_key(made[name][1])) for name in ("pub", "sub")}}


def _flags(version: str, keys: dict) -> tuple[str, ...]:
    if version.startswith("plain"):
        return ()
    flags = ("--curve-secret-key", str(keys["broker"][1]), "--curve-authorized", str(keys["folder"] / "authorized"))
    if version == "curve+policy":
        flags += ("--curve-dispatchers", str(keys["folder"] / "dispatchers"))
    return flags


def flood(version: str, keys: dict, count: int, size: int, interval: float = 0.0, src: str | None = None,
          queued: int | None = None) -> dict:
    """Broadcasts through a broker of ``version`` (the ``cauldron_proto`` in ``src`` for a C
    version); with the broker's CPU per broadcast received. ``queued``: our relays'
    ``max_queued_broadcasts`` (None: the default)."""
    base = version.removesuffix(PURE)
    src = src if base in C_VERSIONS else None
    env = {"CAULDRON_PROTO_PURE": "1"} if version.endswith(PURE) else None
    extra = _flags(base, keys)
    if queued is not None and base not in C_VERSIONS:
        extra += ("--max-queued-broadcasts", str(queued))
    with peers.start_broker(5.0, src=src, extra=extra, env=env) as broker:
        curves = (None, None) if version.startswith("plain") else (keys["pub"], keys["sub"])
        before = peers.cpu_ns(broker.pid)
        result = _broadcast_with(broker.endpoints["publish"], broker.endpoints["subscribe"], count, size, interval,
                                 *curves)
        received = max(1, round(result["received_percent"] * count / 100))
        cpu = peers.cpu_us_per(broker.pid, before, received)
        result.update(cpu_us=cpu["cpu_us_per_rt"], cpu_us_app=cpu["cpu_us_per_rt_app"])
        return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between broadcasts (0: a flood; e.g. 0.0002 for 5,000/s, paced)")
    parser.add_argument("--c-relay", metavar="SRC", help="also the C relay of the cauldron_proto in SRC")
    parser.add_argument("--pure", action="store_true", help="also each version on the pure-Python I/O")
    parser.add_argument("--max-queued-broadcasts", type=int, metavar="N",
                        help="our relays' queue toward a subscriber (default: the broker's, 256); 1000 is the "
                             "C relay's (libzmq's SNDHWM), for a flood where both drop alike")
    args = parser.parse_args(argv)
    versions = VERSIONS + (C_VERSIONS if args.c_relay else ()) + (tuple(v + PURE for v in VERSIONS) if args.pure else ())
    with tempfile.TemporaryDirectory() as tmp:
        keys = _keys(Path(tmp))
        results: dict[str, list[dict]] = {version: [] for version in versions}
        for run in range(args.runs):
            for version in versions:
                result = flood(version, keys, args.count, args.size, args.interval, args.c_relay,
                               args.max_queued_broadcasts)
                results[version].append(result)
                print(f"run {run + 1}: {version:<20} {result['rate_per_s']:>9,.0f}/s  p50 {result['p50_us']:,.0f} us"
                      f"  received {result['received_percent']:.1f}%  broker CPU {result['cpu_us']:.1f} us"
                      f" ({result['cpu_us_app']:.1f} without ZMQ I/O)", flush=True)
    medians = {v: {k: statistics.median(r[k] for r in rs) for k in FIGURES} for v, rs in results.items()}
    how = "a flood" if not args.interval else f"paced, one per {args.interval * 1e6:g} us"
    print(f"\nmedian of {args.runs} runs, {args.count:,} broadcasts of {args.size} B each, {how}:")
    for version, m in medians.items():
        base_name = ("plain (C)" if version.startswith("plain") else "curve (C)") if args.c_relay else "curve"
        base = medians[base_name]
        print(f"{version:<20} {m['rate_per_s']:>9,.0f}/s ({m['rate_per_s'] / base['rate_per_s']:.2f}x {base_name})"
              f"  p50 {m['p50_us']:,.0f} us  p99 {m['p99_us']:,.0f} us  received {m['received_percent']:.1f}%"
              f"  broker CPU per broadcast {m['cpu_us']:.1f} us, {m['cpu_us_app']:.1f} without ZMQ I/O"
              f" ({m['cpu_us_app'] / base['cpu_us_app']:.1f}x {base_name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
