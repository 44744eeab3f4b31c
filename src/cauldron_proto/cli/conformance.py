"""cauldron-conformance: replay the conformance cases against a broker at given addresses,
or (``cauldron-conformance dispatcher ...``) play the broker for a dispatcher under test, or
(``cauldron-conformance client ...``) the broker and a dispatcher for a client driven by commands.

Against a broker, first checks that one answers an inquiry at the ROUTER address (one line
and exit status 2 if not; ``--no-check`` runs the cases anyway). Prints one line per case
(pass, fail, timeout, error or skipped, with the reason), then for each case that did not
pass its expected and actual frames and its wire log. Exit statuses: see ``EXITS``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import cast

from cauldron_proto.conformance.engine import Settings
from cauldron_proto.cli import positive_seconds
from cauldron_proto.cli.command import INTERRUPTED, new_parser, run
from cauldron_proto.config import ConfigError, get_bool, get_float, read_configuration
from cauldron_proto.conformance.frames import CaseError
from cauldron_proto.conformance.report import details, failed, row, summary, to_json, to_junit
from cauldron_proto.conformance.client_link import run_client_suite
from cauldron_proto.conformance.dispatcher_link import run_dispatcher_suite
from cauldron_proto.conformance.runner import run_suite, select_cases
from cauldron_proto.conformance.loading import load_cases
from cauldron_proto.conformance.case_format import Suite


PROG = "cauldron-conformance"
EXITS = (("0", "every MUST case passed (every case, with --strict)"),
         ("1", "a MUST case did not pass (any case, with --strict)"),
         ("2", "bad arguments, a case file or configuration that cannot be used, or no broker answers at --router"),
         INTERRUPTED)


def parser() -> argparse.ArgumentParser:
    p = new_parser(
        PROG, exits=EXITS,
        description="Replay the Cauldron ZMQ protocol conformance cases against a broker "
                    "('cauldron-conformance dispatcher --help': against a dispatcher; "
                    "'cauldron-conformance client --help': against a client).")
    p.add_argument("-c", "--config", metavar="CONFIG",
                   help="a Cauldron INI file with a [zmq] section: the broker's addresses (broker, publish, "
                        "subscribe) and heartbeat period (timeout), for the options not given")
    p.add_argument("--router", metavar="ADDR", help="the broker's ROUTER address (config key 'broker')")
    p.add_argument("--publish", metavar="ADDR", help="the broker's XSUB address, where publishers connect")
    p.add_argument("--subscribe", metavar="ADDR", help="the broker's XPUB address, where subscribers connect")
    p.add_argument("--lookup", metavar="ADDR",
                   help="the address the broker answers to 'lookup' (without it, the lookup cases check "
                        "that the answer is an address where broadcasts arrive)")
    p.add_argument("--heartbeat-timeout", metavar="SECONDS", type=positive_seconds,
                   help="the broker's heartbeat period T (heartbeat and expiry cases are skipped without it)")
    p.add_argument("--no-check", action="store_true",
                   help="run the cases even when no broker answers an inquiry at --router first")
    _common(p)
    return p


def dispatcher_parser() -> argparse.ArgumentParser:
    p = new_parser(
        f"{PROG} dispatcher", exits=EXITS,
        description="Play the broker for a dispatcher under test: bind a ROUTER, an XSUB and an XPUB, "
                    "print their addresses, wait for the dispatcher's welcome, find its keywords "
                    "(enumerate, identify) and replay the dispatcher cases.")
    p.add_argument("--router", metavar="ADDR", help="bind the ROUTER here (default: loopback, an ephemeral port)")
    p.add_argument("--publish", metavar="ADDR", help="bind the XSUB, where the dispatcher's PUB connects, here")
    p.add_argument("--subscribe", metavar="ADDR", help="bind the XPUB here")
    p.add_argument("--command", metavar="CMD",
                   help="start the dispatcher under test with this command ({router}, {publish} and "
                        "{subscribe} are filled in) and stop it at the end; without it, start it yourself")
    p.add_argument("--startup-timeout", metavar="SECONDS", type=positive_seconds, default=10.0,
                   help="how long to wait for the dispatcher's welcome (default 10)")
    p.add_argument("--heartbeat-timeout", metavar="SECONDS", type=positive_seconds,
                   help="the heartbeat period T the dispatcher is configured with ([zmq] timeout): the runner "
                        "heartbeats it every T; without it, no heartbeats and the silent-broker case is skipped")
    p.add_argument("--write", metavar="KEYWORD=VALUE", type=_assignment,
                   help="a keyword the cases may write, and a value different from its current one "
                        "(the write and broadcast cases are skipped without it)")
    p.add_argument("--refuse", metavar="KEYWORD=VALUE", type=_assignment,
                   help="a write the dispatcher refuses (the refused-write case is skipped without it)")
    p.add_argument("--record", metavar="FILE", type=Path,
                   help="write every frame the runner's broker sends and receives to FILE, as cauldron-record does")
    _common(p)
    return p


def client_parser() -> argparse.ArgumentParser:
    p = new_parser(
        f"{PROG} client", exits=EXITS,
        description="Play the broker and a dispatcher for a client under test, driven through commands: "
                    "bind a ROUTER, an XSUB and an XPUB, print their addresses, run the commands and check "
                    "what the client sends and what the commands print. In a command, {router}, {publish}, "
                    "{subscribe}, {service}, {keyword} and {value} are filled in.")
    p.add_argument("--router", metavar="ADDR", help="bind the ROUTER here (default: loopback, an ephemeral port)")
    p.add_argument("--publish", metavar="ADDR", help="bind the XSUB here")
    p.add_argument("--subscribe", metavar="ADDR", help="bind the XPUB, where the client's SUB connects, here "
                                                       "(lookup answers this address)")
    p.add_argument("--read", metavar="CMD", help="reads {keyword} of {service} and prints its value")
    p.add_argument("--write", metavar="CMD", help="writes {value} to {keyword} of {service}; fails when refused")
    p.add_argument("--monitor", metavar="CMD", help="prints the first broadcast value of {keyword} and exits")
    p.add_argument("--service", default="testsvc", help="the service name given to the commands (default testsvc)")
    p.add_argument("--dispatcher", default="disp1", help="the dispatcher name the runner answers as (default disp1)")
    p.add_argument("--keyword", default="STRING", help="the keyword given to the commands (default STRING)")
    p.add_argument("--value", default="written-1", help="the value given to the write command (default written-1)")
    _common(p)
    return p


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEYWORD=VALUE")
    return name, value


def _common(p: argparse.ArgumentParser) -> None:
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


def main(argv: list[str] | None = None) -> int:
    return run(lambda: _main(argv), PROG, errors=())


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    suite = cast(Suite, argv[0] if argv[:1] in (["dispatcher"], ["client"]) else "broker")
    parsers = {"broker": parser, "dispatcher": dispatcher_parser, "client": client_parser}
    args = parsers[suite]().parse_args(argv[suite != "broker":])
    try:
        cases = select_cases(load_cases(args.cases, suite=suite), args.keep, args.exclude)
    except CaseError as exc:
        print(f"cauldron-conformance: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(case.id for case in cases))
        return 0
    width = max((len(c.id) for c in cases), default=10)

    def show(result) -> None:
        if not args.quiet or result.status in ("fail", "timeout", "error"):
            print(row(result, width), flush=True)

    def bound(endpoints: dict[str, str]) -> None:
        for side in ("router", "publish", "subscribe"):
            print(f"{side} {endpoints[side]}", flush=True)
        if suite == "dispatcher" and not args.command:
            print("waiting for the dispatcher: point its [zmq] broker/publish/subscribe at these", flush=True)

    if suite == "client":
        settings = Settings(router=args.router, publish=args.publish, subscribe=args.subscribe, service=args.service,
                            dispatcher=args.dispatcher, keyword=args.keyword, write_value=args.value,
                            read_command=args.read, write_command=args.write, monitor_command=args.monitor)
        results = run_client_suite(settings, cases=cases, on_bound=bound, on_result=show)
    elif suite == "dispatcher":
        write, refuse = args.write or (None, None), args.refuse or (None, None)
        settings = Settings(router=args.router, publish=args.publish, subscribe=args.subscribe,
                            heartbeat_timeout=args.heartbeat_timeout, write_keyword=write[0], write_value=write[1],
                            refuse_keyword=refuse[0], refuse_value=refuse[1])

        with open(args.record, "w", encoding="utf-8") if args.record else contextlib.nullcontext() as record:
            results = run_dispatcher_suite(settings, command=args.command, startup_timeout=args.startup_timeout,
                                           cases=cases, on_bound=bound, on_result=show, record=record)
    else:
        try:
            _configured(args)
        except ConfigError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 2
        if not (args.router or args.publish or args.subscribe):
            print(f"{PROG}: give the broker's addresses: --router, --publish, --subscribe (or -c CONFIG)",
                  file=sys.stderr)
            return 2
        if args.router and not args.no_check:
            problem = _no_broker(args.router)
            if problem:
                print(f"{PROG}: {problem}", file=sys.stderr)
                return 2
        settings = Settings(router=args.router, publish=args.publish, subscribe=args.subscribe,
                            lookup=args.lookup, heartbeat_timeout=args.heartbeat_timeout)
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


def _configured(args: argparse.Namespace) -> None:
    """Fill the options not given from ``-c CONFIG``: addresses, and T if heartbeats are on."""
    if args.config is None:
        return
    cfg = read_configuration(args.config)
    for option, key in (("router", "broker"), ("publish", "publish"), ("subscribe", "subscribe")):
        if getattr(args, option) is None:
            setattr(args, option, cfg.get("zmq", key).strip())
    if args.heartbeat_timeout is None and get_bool(cfg, "heartbeat"):
        args.heartbeat_timeout = get_float(cfg, "timeout")


def _no_broker(router: str, timeout: float = 2.0) -> str | None:
    """Why the cases cannot run against ``router`` (no broker answers an inquiry), or None."""
    from cauldron_proto.broker import ZMQBroker

    try:
        if ZMQBroker.check(address=router, timeout=timeout):
            return None
    except ConfigError as exc:
        return str(exc)
    return f"no broker answers at {router} (no answer to an inquiry within {timeout:g} s; --no-check runs the cases anyway)"


if __name__ == "__main__":
    sys.exit(main())
