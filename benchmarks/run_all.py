"""Run every benchmark; print the tables, write them as JSON and Markdown, and plot them.

    python benchmarks/run_all.py [--quick] [--runs 3] [--out benchmarks/results] [--plot docs/benchmarks.png]
                                 [--reference-broker COMMAND]

Each broker figure is the median of --runs runs, measured in the same run as its baseline
(see benchmarks/broker.py); the codec figures come from benchmarks/codec.py. The full run
takes about 6 minutes on 2 cores; --quick (fewer requests, 10,000 clients for the memory
figure) about 2. The plot needs matplotlib, the `bench` extra: pip install -e '.[bench]'.

--reference-broker COMMAND: a command that starts the existing Cauldron broker when the
addresses ROUTER PUBLISH SUBSCRIBE are appended (split like a shell line, run without one);
it becomes one more path of the round trips (1 outstanding, 64 in flight) and fan-out runs,
and the tables give our broker's rate as a ratio of its rate.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import broker  # noqa: E402
import codec  # noqa: E402

DEVICE, PYLOOP, OURS, REFERENCE = "zmq.proxy device", "Python forwarding loop", "cauldron_proto broker", broker.REFERENCE


def _cpu(r: dict) -> str:
    if "cpu_us_per_rt" not in r:
        return ""
    return f"CPU {r['cpu_us_per_rt']:.1f} us/rt ({r['cpu_us_per_rt_app']:.1f} without the ZMQ I/O thread)"


def table(results: dict) -> list[str]:
    """The broker results as Markdown table lines, with ratios to the baselines."""
    lines = ["| benchmark | path | rate (/s) | p50 (us) | p99 (us) | ratio | notes |",
             "|---|---|---|---|---|---|---|"]
    for key, title in (("round_trips_1", "1 request outstanding (REQ)"), ("round_trips_64", "64 in flight (DEALER)"),
                       ("round_trips_1mib", "1 outstanding, 1 MiB payload")):
        rows = results[key]
        device = rows[DEVICE]["rate_per_s"]
        for path, r in rows.items():
            ratio = f"{r['rate_per_s'] / device:.2f}x device"
            if path == OURS and REFERENCE in rows:
                ratio += f", {r['rate_per_s'] / rows[REFERENCE]['rate_per_s']:.2f}x existing"
            lines.append(f"| {title} | {path} | {r['rate_per_s']:,.0f} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} "
                         f"| {ratio} | {_cpu(r)} |")
    reference = results.get("fanout_reference", {})
    for count, r in results["fanout"].items():
        plural = "s" * (int(count) > 1)
        existing = reference.get(count)
        ratio = "" if existing is None else f"{r['rate_per_s'] / existing['rate_per_s']:.2f}x existing"
        lines.append(f"| fan-out (CSQ enumerate) | {count} dispatcher{plural} | {r['rate_per_s']:,.0f} "
                     f"| {r['p50_us']:,.0f} | {r['p99_us']:,.0f} | {ratio} | |")
        if existing is not None:
            lines.append(f"| fan-out (CSQ enumerate) | {count} dispatcher{plural}, {REFERENCE} "
                         f"| {existing['rate_per_s']:,.0f} | {existing['p50_us']:,.0f} | {existing['p99_us']:,.0f} | | |")
    for key, title in (("broadcast_flood", "broadcasts, 100 B, flood"), ("broadcast_paced", "broadcasts, 100 B, 1 per ms")):
        rows = results[key]
        device = rows["zmq.proxy XSUB/XPUB"]["rate_per_s"]
        for path, r in rows.items():
            ratio = f"{r['rate_per_s'] / device:.2f}x device" if key == "broadcast_flood" else ""
            lines.append(f"| {title} | {path} | {r['rate_per_s']:,.0f} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} "
                         f"| {ratio} | {r['received_percent']:.1f}% received |")
    for key, title in (("idle", "idle, no peers"), ("idle_16", "idle, 16 dispatchers, T = 1 s")):
        lines.append(f"| {title} | {OURS} | | | | | {results[key]['idle_cpu_percent']:.2f}% of a core |")
    mem = results["memory"]
    steps = ", ".join(f"{m:.1f}" for m in mem["rss_steps_mib"])
    lines.append(f"| memory, {mem['clients']:,} one-request clients | {OURS} | | | | "
                 f"| RSS {mem['rss_before_mib']:.1f} -> {mem['rss_after_mib']:.1f} MiB ({mem['growth_mib']:+.1f} MiB; "
                 f"by quarter: {steps}); {mem['answered']:,} answered in {mem['seconds']:.0f} s |")
    return lines


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, what was measured, met) for each target of issue 6."""
    one, many = results["round_trips_1"], results["round_trips_64"]
    r1 = one[OURS]["rate_per_s"] / one[DEVICE]["rate_per_s"]
    r64 = many[OURS]["rate_per_s"] / many[DEVICE]["rate_per_s"]
    rate64, cpu = many[OURS]["rate_per_s"], many[OURS]
    fan16 = results["fanout"][max(results["fanout"], key=int)]["p50_us"]
    idle = results["idle"]["idle_cpu_percent"]
    mem = results["memory"]
    return [
        ("1 outstanding: >= 0.9x the C device", f"{r1:.2f}x ({one[OURS]['rate_per_s']:,.0f} against "
         f"{one[DEVICE]['rate_per_s']:,.0f}/s; a bare Python loop: "
         f"{one[PYLOOP]['rate_per_s'] / one[DEVICE]['rate_per_s']:.2f}x)", r1 >= 0.9),
        ("64 in flight: >= 0.4x the C device", f"{r64:.2f}x", r64 >= 0.4),
        ("64 in flight: >= 25,000 round trips/s", f"{rate64:,.0f}/s (a bare Python loop: "
         f"{many[PYLOOP]['rate_per_s']:,.0f}/s)", rate64 >= 25000),
        ("broker CPU <= 30 us per round trip (64 in flight)", f"{cpu['cpu_us_per_rt']:.1f} us for the process, "
         f"{cpu['cpu_us_per_rt_app']:.1f} us without its ZMQ I/O thread (the C device: "
         f"{many[DEVICE]['cpu_us_per_rt']:.1f})", cpu["cpu_us_per_rt"] <= 30),
        ("fan-out to 16 dispatchers: p50 < 2 ms", f"{fan16 / 1000:.2f} ms", fan16 < 2000),
        ("idle CPU < 1% of a core", f"{idle:.2f}% (16 idle dispatchers, T = 1 s: "
         f"{results['idle_16']['idle_cpu_percent']:.2f}%)", idle < 1),
        (f"memory growth < 30 MiB after 100,000 clients", f"{mem['growth_mib']:+.1f} MiB after {mem['clients']:,}",
         mem["growth_mib"] < 30 and mem["clients"] >= 100_000),
    ] + against_reference(results)


def against_reference(results: dict) -> list[tuple[str, str, bool]]:
    """The targets of issue 11 (our rate against the existing broker's), when it was measured."""
    goals = []
    for key, title, wanted in (("round_trips_1", "1 outstanding", 1.5), ("round_trips_64", "64 in flight", 3.5)):
        rows = results[key]
        if REFERENCE in rows:
            ratio = rows[OURS]["rate_per_s"] / rows[REFERENCE]["rate_per_s"]
            goals.append((f"{title}: >= {wanted}x the existing broker", f"{ratio:.2f}x ({rows[OURS]['rate_per_s']:,.0f} "
                          f"against {rows[REFERENCE]['rate_per_s']:,.0f}/s)", ratio >= wanted))
    return goals


def plot(results: dict, path: Path) -> None:
    """Latency percentiles and throughput: round trips, fan-out, broadcasts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    for ax, key, title in ((axes[0][0], "round_trips_1", "1 request outstanding (REQ)"),
                           (axes[0][1], "round_trips_64", "64 requests in flight (DEALER)")):
        rows = results[key]
        names = list(rows)
        x = list(range(len(names)))
        ax.bar([i - 0.2 for i in x], [rows[n]["p50_us"] for n in names], 0.4, label="p50 latency")
        ax.bar([i + 0.2 for i in x], [rows[n]["p99_us"] for n in names], 0.4, label="p99 latency")
        ax.set_xticks(x, [n.replace(" ", "\n", 1) for n in names], fontsize=8)
        ax.set_ylabel("latency (us)")
        twin = ax.twinx()
        rates = [rows[n]["rate_per_s"] for n in names]
        twin.plot(x, rates, "ko-", label="round trips/s")
        twin.set_ylabel("round trips / s")
        twin.set_ylim(0, max(rates) * 1.3)  # room for the legends
        ax.set_ylim(0, max(rows[n]["p99_us"] for n in names) * 1.3)
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
        twin.legend(loc="upper right", fontsize=8)
    fan = results["fanout"]
    counts = [int(c) for c in fan]
    ax = axes[1][0]
    ax.plot(counts, [fan[c]["p50_us"] for c in fan], "o-", label="p50")
    ax.plot(counts, [fan[c]["p99_us"] for c in fan], "s-", label="p99")
    existing = results.get("fanout_reference")
    if existing:
        ax.plot(counts, [existing[c]["p50_us"] for c in existing], "o--", label=f"p50, {REFERENCE}")
    ax.axhline(2000, color="grey", linestyle=":", label="target p50 < 2 ms (16)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("dispatchers")
    ax.set_ylabel("latency (us)")
    ax.set_title("Fan-out (CSQ) through the broker")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    flood, paced = results["broadcast_flood"], results["broadcast_paced"]
    names = list(flood)
    x = list(range(len(names)))
    ax.bar([i - 0.2 for i in x], [paced[n]["p50_us"] for n in names], 0.4, label="p50 latency, 1 per ms")
    ax.bar([i + 0.2 for i in x], [paced[n]["p99_us"] for n in names], 0.4, label="p99 latency, 1 per ms")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("latency (us)")
    twin = ax.twinx()
    rates = [flood[n]["rate_per_s"] for n in names]
    twin.plot(x, rates, "ko-", label="flood: delivered/s")
    twin.set_ylabel("broadcasts / s")
    twin.set_ylim(0, max(rates) * 1.3)
    ax.set_ylim(0, max(paced[n]["p99_us"] for n in names) * 1.3)
    ax.set_title("Broadcasts (100 B) through XSUB/XPUB")
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and clients (a smoke run)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is kept)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmarks.png"))
    parser.add_argument("--reference-broker", metavar="COMMAND",
                        help="start the existing Cauldron broker (the addresses ROUTER PUBLISH SUBSCRIBE are "
                             "appended) and measure it as one more path of the round trips and fan-outs")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = broker.run(quick=args.quick, runs=args.runs, progress=lambda text: print(f"... {text}", flush=True),
                         reference=args.reference_broker)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "cores": len(__import__("os").sched_getaffinity(0)), "pyzmq": zmq.__version__,
                          "libzmq": zmq.zmq_version(), "runs": args.runs, "quick": args.quick,
                          "reference_broker": args.reference_broker}
    lines = table(results)
    goals = targets(results)
    results["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in goals]
    goal_lines = ["| target | measured | met |", "|---|---|---|"]
    goal_lines += [f"| {t} | {m} | {'yes' if ok else 'no'} |" for t, m, ok in goals]
    print("\n".join(lines) + "\n\n" + "\n".join(goal_lines) + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    codec.main(["--repeat", str(max(3, args.runs)), "--json", str(args.out / "codec.json")])
    results["seconds"] = time.monotonic() - started
    (args.out / "broker.json").write_text(json.dumps(results, indent=1))
    (args.out / "table.md").write_text("\n".join(lines) + "\n\n" + "\n".join(goal_lines) + "\n")
    try:
        plot(results, args.plot)
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
    else:
        print(f"\nplot: {args.plot}")
    print(f"wrote {args.out}/broker.json, {args.out}/codec.json, {args.out}/table.md "
          f"({results['seconds'] / 60:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
