"""Keyword command-line tools: serve keywords, show, modify and monitor them.

    cauldron-dispatcher -s SERVICE [-n NAME] -k KEYWORD[:TYPE]=VALUE [-k ...] [--enumerators KEYWORD=NAME,...]
    cauldron-show       -s SERVICE [--terse] KEYWORD...
    cauldron-modify     -s SERVICE KEYWORD=VALUE...
    cauldron-monitor    -s SERVICE [--count N] [--no-prime] KEYWORD...

Every tool takes ``-c CONFIG`` (a Cauldron INI file with a ``[zmq]`` section) and/or
``--router/--publish/--subscribe ADDR``, ``--timeout SECONDS`` (the request time-out in
show, modify and monitor; the heartbeat period in the dispatcher) and, for a CURVE broker,
``--curve-key FILE --curve-server-key FILE``; and ``--version``. Each stops cleanly on
SIGINT or SIGTERM at any moment (see :mod:`.command`); its exit statuses are in its
``--help`` (the ``*_EXITS`` tuples here): 0 on success (and after SIGINT/SIGTERM for the two
that run until stopped), 1 for an error (one line on stderr: no broker, a timeout, an
unknown keyword, a refused write, a bad value), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import queue
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import zmq

from . import positive_seconds
from .command import INTERRUPTED, new_parser, notify, run, wait_seconds
from .. import client, dispatcher
from ..config import ConfigError, unusable
from ..ktl import KTL_TYPES, KTLValueError, check_type, infer_type

__all__ = ["dispatcher_main", "show_main", "modify_main", "monitor_main", "parse_assignment",
           "parse_keyword_spec", "common_parser", "stop_on_signals"]

#: Errors a tool reports as one line on stderr with exit status 1.
TOOL_ERRORS = (client.ClientError, ConfigError, KTLValueError, ValueError, zmq.ZMQError)


_ERROR = ("1", "an error, one line on stderr (no broker, a time-out, an unknown keyword, a refused "
                "write, a bad value or configuration)")
_USAGE = ("2", "bad arguments")
DISPATCHER_EXITS = (("0", "stopped by SIGINT or SIGTERM (at any moment, registering too)"),
                    ("1", "no broker confirmed the registration within --wait, or an error (one line on stderr)"),
                    _USAGE)
SHOW_EXITS = (("0", "every value printed"), _ERROR, _USAGE, INTERRUPTED)
MODIFY_EXITS = (("0", "every value written"),
                ("1", "an error, one line on stderr; nothing is written when a keyword is unknown or a value "
                      "of the wrong type (all are checked first); a write refused says which were written"),
                _USAGE, INTERRUPTED)
MONITOR_EXITS = (("0", "stopped by SIGINT or SIGTERM, or --count values printed"), _ERROR, _USAGE)
CLIENT_TIMEOUT = "seconds to wait for each answer, the request time-out (config key timeout)"


def common_parser(prog: str, description: str, exits=SHOW_EXITS,
                  timeout_help: str = CLIENT_TIMEOUT) -> argparse.ArgumentParser:
    """A parser with the options every tool shares: configuration, addresses, timeout, --version."""
    p = new_parser(prog, description, exits)
    p.add_argument("-c", "--config", metavar="CONFIG", help="a Cauldron INI file with a [zmq] section")
    p.add_argument("--router", metavar="ADDR", help="the broker's ROUTER (config key broker)")
    p.add_argument("--publish", metavar="ADDR", help="the broker's XSUB, for broadcasts (config key publish)")
    p.add_argument("--subscribe", metavar="ADDR", help="the broker's XPUB (config key subscribe; "
                   "clients use the address the broker's lookup gives)")
    p.add_argument("--timeout", metavar="SECONDS", type=positive_seconds, help=timeout_help)
    p.add_argument("--curve-key", metavar="FILE",
                   help="CURVE: this tool's secret key file, NAME.key_secret (config key curve_key)")
    p.add_argument("--curve-server-key", metavar="FILE",
                   help="CURVE: the broker's public key file, NAME.key (config key curve_server_key)")
    p.add_argument("-s", "--service", required=True, help="the service name")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    return p


def _dispatcher_settings(args: argparse.Namespace) -> dict:
    return {"broker": args.router, "publish": args.publish, "timeout": args.timeout,
            "curve_key": args.curve_key, "curve_server_key": args.curve_server_key}


def _client_settings(args: argparse.Namespace) -> dict:
    return {"broker": args.router, "subscribe": args.subscribe, "timeout": args.timeout,
            "curve_key": args.curve_key, "curve_server_key": args.curve_server_key}


def _logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def _run(prog: str, body: Callable[[], int], stopped: Optional[int] = None) -> int:
    """Run a tool's body (:func:`.command.run`); its errors become one line on stderr and exit status 1."""
    return run(body, prog, stopped=stopped, errors=TOOL_ERRORS)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while in the block (handlers restored after)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_assignment(text: str) -> tuple[str, str]:
    """``KEYWORD=VALUE`` as (KEYWORD, VALUE); ValueError naming the text otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"{text!r} is not KEYWORD=VALUE")
    return name.strip(), value


def parse_keyword_spec(text: str) -> tuple[str, str, str]:
    """``KEYWORD[:TYPE]=VALUE`` as (KEYWORD, TYPE, VALUE); the type inferred from the value if absent."""
    left, value = parse_assignment(text)
    name, sep, kind = left.partition(":")
    kind = check_type(kind) if sep else infer_type(value)
    return name.strip(), kind, value


# cauldron-dispatcher ---------------------------------------------------------------------
def dispatcher_main(argv: Optional[list[str]] = None) -> int:
    p = common_parser("cauldron-dispatcher", "Serve keywords of a service, held in memory, "
                      "until SIGINT or SIGTERM.", DISPATCHER_EXITS,
                      "the heartbeat period T in seconds: the broker's T must be the same (config key timeout)")
    p.add_argument("-n", "--name", help="the dispatcher name (default: SERVICE-host-pid)")
    p.add_argument("-k", "--keyword", action="append", required=True, metavar="KEYWORD[:TYPE]=VALUE",
                   help=f"a keyword and its initial value; TYPE is one of {', '.join(KTL_TYPES)} "
                        "(default: integer, double or string, from the value)")
    p.add_argument("--enumerators", action="append", default=[], metavar="KEYWORD=NAME,NAME,...",
                   help="the names of an enumerated keyword's values, 0 first "
                        "(e.g. -k MODE:enumerated=On --enumerators MODE=Off,On,Standby)")
    p.add_argument("--wait", type=wait_seconds, default=10.0, metavar="SECONDS",
                   help="how long to wait for the broker to confirm registration (default 10; 0 or inf: "
                        "no limit, as under a service manager that starts the broker in any order)")
    args = p.parse_args(argv)
    _logging(args.verbose)
    return _run(p.prog, lambda: _serve(p.prog, args), stopped=0)


def parse_enumerators(texts: list[str]) -> dict[str, list[str]]:
    """``KEYWORD=NAME,NAME,...`` options as {KEYWORD: [NAME, ...]}; ValueError naming the text."""
    out = {}
    for text in texts:
        name, names = parse_assignment(text)
        values = [n.strip() for n in names.split(",")]
        if not all(values):
            raise ValueError(f"{text!r} is not KEYWORD=NAME,NAME,... (a name is empty)")
        out[name.upper()] = values
    return out


def _serve(prog: str, args: argparse.Namespace) -> int:
    specs = [parse_keyword_spec(text) for text in args.keyword]
    names = parse_enumerators(args.enumerators)
    for name, kind, _ in specs:
        if (kind == "enumerated") != (name.upper() in names):
            raise ValueError(f"{name}: an enumerated keyword, and only one, needs --enumerators {name}=NAME,...")
    with dispatcher.Service(args.service, args.config, args.name, start=False,
                            **_dispatcher_settings(args)) as svc:
        for where in (svc.settings.broker, svc.settings.publish):
            problem = unusable(where)
            if problem is not None:  # at once, rather than waiting to register
                raise ConfigError(f"cannot connect to a broker at {problem}")
        for name, kind, value in specs:
            svc.add_keyword(name, kind, value, enumerators=names.get(name.upper()))
        svc.begin()
        logging.getLogger("cauldron_proto.cli").info("waiting for the broker at %s to confirm the registration",
                                                     svc.settings.broker)
        # SIGINT/SIGTERM while waiting: KeyboardInterrupt (command.run), the service shut down on the way out.
        if not svc.wait_registered(None if args.wait == float("inf") else args.wait):
            print(f"{prog}: no broker confirmed registration at {svc.settings.broker} "
                  f"within {args.wait:g} s", file=sys.stderr, flush=True)
            return 1
        with stop_on_signals() as stop:
            print(f"{prog}: {svc.dispatcher} serving {svc.name}: {', '.join(svc.keywords())} "
                  f"(broker {svc.settings.broker})", flush=True)
            notify("READY=1", f"STATUS={svc.dispatcher} serving {svc.name}")
            while not stop.wait(0.5):
                pass
    return 0


# cauldron-show ---------------------------------------------------------------------------
def show_main(argv: Optional[list[str]] = None) -> int:
    p = common_parser("cauldron-show", "Print the current value of keywords.")
    p.add_argument("--terse", action="store_true", help="print the values alone, one a line")
    p.add_argument("keywords", nargs="+", metavar="KEYWORD")
    args = p.parse_args(argv)
    _logging(args.verbose)
    return _run(p.prog, lambda: _show(args))


def _show(args: argparse.Namespace) -> int:
    with client.Service(args.service, args.config, **_client_settings(args)) as svc:
        for name in args.keywords:
            keyword = svc[name]
            value = keyword.read()
            print(value if args.terse else f"{keyword.name} = {value}", flush=True)
    return 0


# cauldron-modify -------------------------------------------------------------------------
def modify_main(argv: Optional[list[str]] = None) -> int:
    p = common_parser("cauldron-modify", "Write keywords; print each resulting value. Every keyword and "
                      "value is checked first (nothing is written if one is unknown or of the wrong type), "
                      "then they are written in order, stopping at a write the dispatcher refuses.",
                      MODIFY_EXITS)
    p.add_argument("assignments", nargs="+", metavar="KEYWORD=VALUE")
    args = p.parse_args(argv)
    _logging(args.verbose)
    return _run(p.prog, lambda: _modify(args))


def _modify(args: argparse.Namespace) -> int:
    assignments = [parse_assignment(text) for text in args.assignments]
    with client.Service(args.service, args.config, **_client_settings(args)) as svc:
        keywords = [svc[name] for name, _ in assignments]  # an unknown keyword: nothing written
        for keyword, (_, value) in zip(keywords, assignments):
            keyword.ascii_of(value)  # a value of the wrong type: nothing written
        for done, (keyword, (_, value)) in enumerate(zip(keywords, assignments)):
            try:
                result = keyword.write(value)
            except TOOL_ERRORS as exc:
                written = ", ".join(k.name for k in keywords[:done]) or "none"
                print(f"cauldron-modify: {exc}; written: {written}; not written: "
                      f"{', '.join(k.name for k in keywords[done:])}", file=sys.stderr, flush=True)
                return 1
            print(f"{keyword.name} = {result}", flush=True)
    return 0


# cauldron-monitor ------------------------------------------------------------------------
def monitor_main(argv: Optional[list[str]] = None) -> int:
    p = common_parser("cauldron-monitor", "Print a time-stamped line for every new value of keywords, "
                      "until SIGINT or SIGTERM.", MONITOR_EXITS)
    p.add_argument("--count", type=int, metavar="N", help="stop after N values")
    p.add_argument("--no-prime", action="store_true", help="do not print the current values first")
    p.add_argument("keywords", nargs="+", metavar="KEYWORD")
    args = p.parse_args(argv)
    _logging(args.verbose)
    return _run(p.prog, lambda: _monitor(args), stopped=0)


def format_value(value: client.KeywordValue) -> str:
    """A monitor line: local time to the millisecond, then ``KEYWORD = value``."""
    stamp = datetime.datetime.fromtimestamp(value.time).isoformat(sep=" ", timespec="milliseconds")
    return f"{stamp}  {value.keyword} = {value.ascii}"


def _monitor(args: argparse.Namespace) -> int:
    values: queue.SimpleQueue = queue.SimpleQueue()
    printed = 0
    with client.Service(args.service, args.config, **_client_settings(args)) as svc:
        keywords = [svc[name] for name in args.keywords]
        for keyword in keywords:
            keyword.monitor(values.put, prime=not args.no_prime)
        with stop_on_signals() as stop:
            while not stop.is_set() and (args.count is None or printed < args.count):
                try:
                    value = values.get(timeout=0.2)
                except queue.Empty:
                    continue
                print(format_value(value), flush=True)
                printed += 1
    return 0
