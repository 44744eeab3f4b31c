"""cauldron-conformance: replay the conformance cases against a broker at given addresses.

Prints one line per case (pass, fail, timeout, error or skipped, with the reason), then for
each case that did not pass its expected and actual frames and its wire log. Exit status 1
when a MUST case did not pass (any case with --strict), 2 for a usage or case-file error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cauldron_proto.conformance.engine import Settings
from cauldron_proto.cli import positive_seconds
from cauldron_proto.conformance.frames import CaseError
from cauldron_proto.conformance.report import details, failed, row, summary, to_json, to_junit
from cauldron_proto.conformance.runner import run_suite, select_cases
from cauldron_proto.conformance.trace import load_cases


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cauldron-conformance",
        description="Replay the Cauldron ZMQ protocol conformance cases against a broker.")
    p.add_argument("--router", metavar="ADDR", help="the broker's ROUTER address (config key 'broker')")
    p.add_argument("--publish", metavar="ADDR", help="the broker's XSUB address, where publishers connect")
    p.add_argument("--subscribe", metavar="ADDR", help="the broker's XPUB address, where subscribers connect")
    p.add_argument("--lookup", metavar="ADDR",
                   help="the address the broker answers to 'lookup' (cases checking it are skipped without it)")
    p.add_argument("--heartbeat-timeout", metavar="SECONDS", type=positive_seconds,
                   help="the broker's heartbeat period T (heartbeat and expiry cases are skipped without it)")
    p.add_argument("-k", dest="keep", metavar="GLOB", action="append", default=[],
                   help="run only cases whose id matches GLOB (repeatable)")
    p.add_argument("--exclude", metavar="GLOB", action="append", default=[],
                   help="skip cases whose id matches GLOB (repeatable)")
    p.add_argument("--list", action="store_true", help="print the selected case ids, one per line, and exit")
    p.add_argument("--strict", action="store_true", help="fail on any case that does not pass, SHOULD cases too")
    p.add_argument("--json", metavar="FILE", type=Path, help="write the results as JSON")
    p.add_argument("--junit", metavar="FILE", type=Path, help="write the results as JUnit XML")
    p.add_argument("--cases", metavar="DIR", type=Path, help="read cases from DIR instead of the packaged suite")
    p.add_argument("-q", "--quiet", action="store_true", help="print only cases that did not pass, and the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cases = select_cases(load_cases(args.cases), args.keep, args.exclude)
    except CaseError as exc:
        print(f"cauldron-conformance: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(case.id for case in cases))
        return 0
    if not (args.router or args.publish or args.subscribe):
        print("cauldron-conformance: give the broker's addresses: --router, --publish, --subscribe",
              file=sys.stderr)
        return 2
    settings = Settings(router=args.router, publish=args.publish, subscribe=args.subscribe,
                        lookup=args.lookup, heartbeat_timeout=args.heartbeat_timeout)
    width = max((len(c.id) for c in cases), default=10)

    def show(result) -> None:
        if not args.quiet or result.status in ("fail", "timeout", "error"):
            print(row(result, width), flush=True)

    results = run_suite(settings, cases=cases, on_result=show)
    for result in results:
        if result.status in ("fail", "timeout", "error"):
            print("\n" + details(result))
    print(f"\n{summary(results)}")
    if args.json:
        args.json.write_bytes(to_json(results, settings))
    if args.junit:
        args.junit.write_bytes(to_junit(results))
    return 1 if failed(results, args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
