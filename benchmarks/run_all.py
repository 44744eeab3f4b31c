"""Run every benchmark; print the table, write it as JSON and as a PNG plot.

    python benchmarks/run_all.py [--quick] [--runs 3] [--out benchmarks/results]

Each figure is the median of --runs runs, measured in the same run as its baseline.
Needs the `bench` extra for the plot: python -m pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import broker  # noqa: E402
import codec  # noqa: E402


def table(results: dict) -> list[str]:
    """The results as Markdown table lines, with ratios to the baselines."""
    lines = ["| benchmark | path | rate (/s) | p50 (us) | p99 (us) | ratio to baseline | notes |",
             "|---|---|---|---|---|---|---|"]
    for key, title in (("round_trips_1", "1 request outstanding (REQ)"),
                       ("round_trips_64", "64 in flight (DEALER)")):
        rows = results[key]
        device = rows["zmq.proxy device"]["rate_per_s"]
        for path, r in rows.items():
            note = f"broker CPU {r['cpu_us_per_rt']:.1f} us/rt" if "cpu_us_per_rt" in r else ""
            lines.append(f"| {title} | {path} | {r['rate_per_s']:,.0f} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} "
                         f"| {r['rate_per_s'] / device:.2f}x device | {note} |")
    for count, r in results["fanout"].items():
        lines.append(f"| fan-out (CSQ) | {count} dispatchers | {r['rate_per_s']:,.0f} | {r['p50_us']:,.0f} "
                     f"| {r['p99_us']:,.0f} | | |")
    device = results["broadcast"]["zmq.proxy XSUB/XPUB"]["rate_per_s"]
    for path, r in results["broadcast"].items():
        lines.append(f"| broadcast relay, 100 B | {path} | {r['rate_per_s']:,.0f} | {r['p50_us']:,.0f} "
                     f"| {r['p99_us']:,.0f} | {r['rate_per_s'] / device:.2f}x device | {r['received']:,.0f} received |")
    idle, mem = results["idle"], results["memory"]
    lines.append(f"| idle broker (timeout 0.1 s) | cauldron_proto broker | | | | | {idle['idle_cpu_percent']:.2f}% of a core |")
    lines.append(f"| memory after {mem['clients']:,} clients | cauldron_proto broker | | | | "
                 f"| {mem['rss_before_mib']:.1f} -> {mem['rss_after_mib']:.1f} MiB (+{mem['growth_mib']:.1f} MiB) |")
    return lines


def plot(results: dict, path: Path) -> None:
    """Latency percentiles and throughput, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, key, title in ((axes[0], "round_trips_1", "1 outstanding"), (axes[1], "round_trips_64", "64 in flight")):
        rows = results[key]
        names = list(rows)
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [rows[n]["p50_us"] for n in names], 0.4, label="p50")
        ax.bar([i + 0.2 for i in x], [rows[n]["p99_us"] for n in names], 0.4, label="p99")
        ax.set_xticks(list(x), names, fontsize=8)
        ax.set_ylabel("latency (us)")
        twin = ax.twinx()
        twin.plot(list(x), [rows[n]["rate_per_s"] for n in names], "ko-", label="round trips/s")
        twin.set_ylabel("round trips / s")
        twin.set_ylim(bottom=0)
        ax.set_title(f"Round trips, {title}")
        ax.legend(loc="upper left", fontsize=8)
    fan = results["fanout"]
    counts = [int(c) for c in fan]
    axes[2].plot(counts, [fan[c]["p50_us"] for c in fan], "o-", label="p50")
    axes[2].plot(counts, [fan[c]["p99_us"] for c in fan], "s-", label="p99")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("dispatchers")
    axes[2].set_ylabel("latency (us)")
    axes[2].set_title("Fan-out (CSQ) latency")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmarks.png"))
    args = parser.parse_args(argv)
    results = broker.run(quick=args.quick, runs=args.runs)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "runs": args.runs, "quick": args.quick}
    lines = table(results)
    print("\n".join(lines))
    print()
    codec.main(["--repeat", str(max(3, args.runs)), "--json", str(args.out / "codec.json")])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "broker.json").write_text(json.dumps(results, indent=1))
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    plot(results, args.plot)
    print(f"\nwrote {args.out}/broker.json, {args.out}/codec.json, {args.out}/table.md, {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
