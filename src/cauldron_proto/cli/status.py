"""cauldron-status: what a running broker serves and has done, from its ``status`` answer.

    cauldron-status [-c CONFIG] [--router ADDR] [SERVICE] [--json] [--watch [SECONDS]]

Tables a person reads at a glance: the broker (version, uptime, T, addresses, CURVE), each
service's dispatchers (state, last heard, key, keywords, requests in flight), each
service's routed requests (count, mean and percentile bounds of their latency), and the
counters. ``--json`` prints the broker's JSON as it is; ``--watch`` redraws in place (ANSI
clear and home, as ``top`` does) every SECONDS (2) until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import positive_seconds
from .command import INTERRUPTED, new_parser, run
from ..client.errors import NoBrokerError, StatusNotServedError
from ..client.status import broker_status
from ..config import ConfigError

PROG = "cauldron-status"
EXITS = (("0", "the status printed (--watch: until SIGINT or SIGTERM)"),
         ("1", "this broker does not answer status queries, SERVICE has no dispatcher, or the configuration "
               "is unusable (one line on stderr)"),
         ("2", "bad arguments, or no broker answers (one line on stderr)"),
         INTERRUPTED)
CLEAR = "\x1b[H\x1b[2J"  #: cursor home, clear the screen


def parser() -> argparse.ArgumentParser:
    p = new_parser(PROG, "Show what a running Cauldron broker serves and has done.", EXITS)
    p.add_argument("service", nargs="?", metavar="SERVICE", help="show only this service")
    p.add_argument("-c", "--config", metavar="CONFIG", help="a Cauldron INI file with a [zmq] section")
    p.add_argument("--router", metavar="ADDR", help="the broker's ROUTER (config key broker)")
    p.add_argument("--timeout", metavar="SECONDS", type=positive_seconds, default=2.0,
                   help="seconds to wait for the broker's answer [2]")
    p.add_argument("--curve-key", metavar="FILE", help="CURVE: this tool's secret key file (config key curve_key)")
    p.add_argument("--curve-server-key", metavar="FILE",
                   help="CURVE: the broker's public key file (config key curve_server_key)")
    p.add_argument("--json", action="store_true", help="print the broker's JSON as it is")
    p.add_argument("--watch", metavar="SECONDS", nargs="?", type=positive_seconds, const=2.0,
                   help="redraw in place every SECONDS (2) until Ctrl-C")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: _show(args), PROG, stopped=0 if args.watch else None, errors=(ConfigError, StatusNotServedError))


def _show(args: argparse.Namespace) -> int:
    try:
        status = _ask(args)
    except NoBrokerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return 2
    while True:
        text = json.dumps(status) if args.json else render(status, args.service)
        print((CLEAR if args.watch else "") + text, flush=True)
        if not args.watch:
            break
        time.sleep(args.watch)
        try:
            status = _ask(args)
        except (NoBrokerError, StatusNotServedError) as exc:
            status = {"error": str(exc)}
    if args.service and not status["services"]:
        print(f"{PROG}: no dispatcher serves {args.service}", file=sys.stderr, flush=True)
        return 1
    return 0


def _ask(args: argparse.Namespace) -> dict:
    return broker_status(args.config, args.service, timeout=args.timeout, broker=args.router,
                         curve_key=args.curve_key, curve_server_key=args.curve_server_key)


def render(status: dict, service: str | None = None) -> str:
    """The status as text: the broker, the dispatchers, the routed requests, the counters."""
    if "error" in status:
        return f"{PROG}: {status['error']}"
    lines = _broker(status["broker"], status["connections"])
    services = status["services"]
    if not services:
        lines += ["", f"no dispatcher serves {service}" if service else "no service has a dispatcher"]
    else:
        lines += [""] + _table(("SERVICE", "DISPATCHER", "STATE", "HEARD", "KEY", "KEYWORDS", "IN FLIGHT"),
                               _dispatcher_rows(services))
        lines += [""] + _table(("SERVICE", "REQUESTS", "MEAN", "P50 <=", "P99 <=", "KEYWORDS", "FAN-OUTS"),
                               _request_rows(services))
    return "\n".join(lines + [""] + _counters(status["counters"], status.get("relay")))


def _broker(broker: dict, connections: dict) -> list[str]:
    heartbeat = "heartbeat on" if broker["heartbeat"] else "heartbeat off"
    first = (f"broker {broker['name']} {broker['version']}, up {_duration(broker['uptime'])}, "
             f"T {broker['timeout']:g} s ({heartbeat}), CURVE {'on' if broker.get('curve') else 'off'}"
             f"{', I/O ' + broker['io'] if broker.get('io') else ''}")
    where = "  ".join(f"{key} {address}" for key, address in broker.get("addresses", {}).items())
    count = connections["dispatchers"]
    return [first, f"  {where}", f"  {count} dispatcher connection{'s' * (count != 1)}"]


def _dispatcher_rows(services: dict) -> list[tuple]:
    rows = []
    for name, service in sorted(services.items()):
        for i, (dispatcher, d) in enumerate(sorted(service["dispatchers"].items())):
            rows.append((name if i == 0 else "", dispatcher, d["state"], f"{d['last_heard']:.1f} s",
                         d["key"] or "-", d["keywords"], d["in_flight"]))
    return rows


def _request_rows(services: dict) -> list[tuple]:
    rows = []
    for name, service in sorted(services.items()):
        latency = service["latency"] or {"count": 0}
        count = latency["count"]
        mean = _ms(latency["sum"] / count) if count else "-"
        rows.append((name, count, mean, _percentile(latency, 0.5), _percentile(latency, 0.99), service["keywords"],
                     service["fanouts"]))
    return rows


def _percentile(latency: dict, q: float) -> str:
    """The upper bound of the bucket holding the ``q`` quantile ('-' for no request)."""
    if not latency["count"]:
        return "-"
    seen, bounds = 0, latency["le"]
    for i, count in enumerate(latency["counts"]):
        seen += count
        if seen >= q * latency["count"]:
            return _ms(bounds[i]) if i < len(bounds) else f"> {_ms(bounds[-1])}"
    return "-"


#: The counters, grouped: (title, ((counter, label), ...)).
_GROUPS = (("messages", (("received", "received"), ("sent", "sent"), ("refused", "malformed refused"))),
           ("dispatchers", (("registered", "registered"), ("replaced", "replaced"), ("readmitted", "readmitted"),
                            ("expired", "expired"), ("registrations_refused", "refused"),
                            ("heartbeats", "heartbeats sent"))),
           ("requests", (("timed_out", "timed out"), ("fanouts", "fan-outs"), ("cache_hits", "identify cache hits"))))


def _counters(counters: dict, relay: dict | None) -> list[str]:
    lines = [f"{title:<12} " + ", ".join(f"{label} {counters.get(name, 0):,}" for name, label in names)
             for title, names in _GROUPS]
    for title, by in (("errors", counters.get("errors", {})), ("dropped", counters.get("dropped_by_reason", {})),
                      ("limited", counters.get("limited", {}))):
        detail = ": " + ", ".join(f"{k} {v:,}" for k, v in sorted(by.items())) if by else ""
        lines.append(f"{title:<12} {sum(by.values()):,}{detail}")
    if relay:
        lines.append(f"{'relay':<12} " + ", ".join(f"{k} {v}" for k, v in relay.items()))
    return lines


def _table(headers: tuple, rows: list[tuple]) -> list[str]:
    cells = [tuple(str(c) for c in row) for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


if __name__ == "__main__":
    sys.exit(main())
