"""cauldron-demo: a broker, a dispatcher and a client in one process, talking for a few seconds.

    cauldron-demo [--duration SECONDS] [--asyncio] [--router ADDR] [--publish ADDR] [--subscribe ADDR]

Starts a broker thread (on ephemeral loopback ports unless addresses are given), a
dispatcher of service ``DEMO`` with a keyword that ticks (``CLOCK``), one that can be set
(``TARGET``, 0 to 100 mm) and one that is read-only text (``GREETING``), and a client that
lists, reads, monitors and writes them, including a write the dispatcher refuses and a
keyword that does not exist, printing what happens. Stops by itself after ``--duration``
seconds (default 3); exit statuses: see ``EXITS``. With ``--asyncio`` the dispatcher and the
client are :mod:`cauldron_proto.aio`'s, in one event loop (see :mod:`.demo_aio`). Stops
cleanly on SIGINT or SIGTERM, and when its standard output is closed (``| head -3``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from typing import Any, Optional

from .. import client, dispatcher
from ..broker import ZMQBroker
from .command import INTERRUPTED, new_parser, run, say
from .keywords import TOOL_ERRORS, format_value

PROG = "cauldron-demo"
SERVICE = "DEMO"
ANY = "tcp://127.0.0.1:*"
EXITS = (("0", "the demo ran to its end"), ("1", "something failed (one line on stderr), or stdout was closed"),
         ("2", "bad arguments"), INTERRUPTED)




def parser() -> argparse.ArgumentParser:
    p = new_parser(PROG, "A broker, a dispatcher and a client talking through it for a few seconds.", EXITS)
    p.add_argument("--duration", type=float, default=3.0, metavar="SECONDS",
                   help="how long to watch the keywords (default 3)")
    p.add_argument("--asyncio", action="store_true",
                   help="run the dispatcher and the client on asyncio (cauldron_proto.aio), in one event loop")
    p.add_argument("--router", default=ANY, metavar="ADDR", help=f"the broker's ROUTER (default {ANY})")
    p.add_argument("--publish", default=ANY, metavar="ADDR", help="the broker's XSUB, for dispatchers")
    p.add_argument("--subscribe", default=ANY, metavar="ADDR", help="the broker's XPUB, for clients")
    return p


def start_broker(args: argparse.Namespace) -> ZMQBroker:
    broker = ZMQBroker("demo-broker", args.router, args.subscribe, args.publish, args.subscribe, timeout=1.0)
    broker.daemon = True
    broker.start()
    for key in ("broker", "publish", "subscribe"):
        say(f"broker     {key:<9} {broker.endpoints[key]}")
    return broker


def _in_range(keyword: dispatcher.Keyword, value: float) -> None:
    if not 0 <= value <= 100:
        raise ValueError(f"{value:g} mm is outside 0..100 mm")


def _read_only(keyword: dispatcher.Keyword, value: str) -> None:
    raise PermissionError(f"{keyword.name} is read-only")


def start_dispatcher(config: dict) -> tuple[dispatcher.Service, threading.Event]:
    svc = dispatcher.Service(SERVICE, config, "demo-dispatcher", start=False)
    svc.add_keyword("CLOCK", "integer", 0, "ticks")
    svc.add_keyword("TARGET", "double", 50.0, "mm", validate=_in_range)
    svc.add_keyword("GREETING", "string", "hello from the demo dispatcher", validate=_read_only)
    svc.begin()
    if not svc.wait_registered(10):
        raise RuntimeError("the dispatcher did not register with the broker")
    say(f"dispatcher {svc.dispatcher} serves {SERVICE}: {', '.join(svc.keywords())}")
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.5):
            svc["CLOCK"].set(svc["CLOCK"].value + 1)

    threading.Thread(target=tick, name="demo-clock", daemon=True).start()
    return svc, stop


def attempt(label: str, call, *args: Any) -> None:
    try:
        say(f"client     {label} -> {call(*args)!r}")
    except (client.DispatcherError, KeyError) as exc:
        say(f"client     {label} -> {type(exc).__name__}: {exc}")


def run_client(config: dict, duration: float) -> int:
    seen: list[client.KeywordValue] = []
    subscribed = threading.Event()  # a broadcast arrived: the subscription reached the dispatcher

    def show(value: client.KeywordValue) -> None:
        seen.append(value)
        if not value.primed:
            subscribed.set()
        say(f"monitor    {format_value(value)}{'  (primed)' if value.primed else ''}")

    with client.Service(SERVICE, config, timeout=5.0) as svc:
        say(f"client     keywords() -> {svc.keywords()}")
        say(f"client     identify('TARGET') -> {tuple(svc.identify('TARGET'))}")
        attempt("read GREETING", svc["GREETING"].read)
        attempt("TARGET units", svc["TARGET"].units)
        svc["CLOCK"].monitor(show)
        svc["TARGET"].monitor(show)
        end = time.monotonic() + duration
        subscribed.wait(5.0)  # CLOCK ticks every 0.5 s; writes before this could go unseen (slow joiner)
        for value in (12.5, 87.0):
            time.sleep(duration / 4)
            attempt(f"write TARGET = {value}", svc["TARGET"].write, value)
        attempt("write TARGET = 500", svc["TARGET"].write, 500)
        attempt("write GREETING = 'bye'", svc["GREETING"].write, "bye")
        attempt("read NOSUCH", lambda: svc["NOSUCH"].read())
        time.sleep(max(0.0, end - time.monotonic()))
        attempt("read TARGET (binary)", svc["TARGET"].read, True)
    ticks = sum(1 for value in seen if value.keyword == "CLOCK")
    say(f"done       {len(seen)} values monitored, {ticks} of them CLOCK ticks")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: _demo(args), PROG, errors=(*TOOL_ERRORS, RuntimeError))


def _demo(args: argparse.Namespace) -> int:
    broker = start_broker(args)  # BrokerError: a RuntimeError
    svc = stop = None
    try:
        config = {"broker": broker.endpoints["broker"], "publish": broker.endpoints["publish"],
                  "subscribe": broker.endpoints["subscribe"], "timeout": "1.0"}
        if args.asyncio:
            from .demo_aio import demo
            return asyncio.run(demo(config, args.duration))
        svc, stop = start_dispatcher(config)
        return run_client(config, args.duration)
    finally:
        if stop is not None:
            stop.set()
        if svc is not None:
            svc.shutdown()
        broker.stop(timeout=5.0)


if __name__ == "__main__":
    sys.exit(main())
