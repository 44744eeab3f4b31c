"""cauldron-broker: run a broker in the foreground until SIGINT or SIGTERM.

    cauldron-broker [-c CONFIG] [--router ADDR] [--publish ADDR] [--subscribe ADDR]
                    [--lookup ADDR] [--timeout SECONDS] [--no-heartbeat]
                    [--curve-secret-key FILE --curve-authorized DIR [--curve-dispatchers FILE]]
                    [--max-message-size N] [--max-frames N] ... (one flag per limit)
                    [--http [HOST:]PORT] [-v | -q] [--log-format {text,json}]

Prints one line per bound socket (the endpoint it really bound, a wildcard port resolved;
``0.0.0.0``: every interface), tells systemd ``READY=1`` when run by it (``$NOTIFY_SOCKET``),
then serves; with ``--http`` (config key ``http``), ``/healthz``, ``/status`` and
``/metrics`` too (:mod:`cauldron_proto.broker.http`). Logs at INFO by default: a line for
each dispatcher registered, moved, expired or refused, and each limit hit. Exit statuses:
see ``EXITS``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import positive_integer, positive_seconds
from .. import __version__
from .command import log_to_stderr, new_parser, notify, run
from ..broker import BrokerError, ZMQBroker, batchio
from ..broker.http import HTTPMonitor
from ..broker.launch import serve_until_signalled
from ..broker.core.limits import LIMIT_KEYS
from ..config import ConfigError, invalid, read_configuration
from ..protocol import CONFIG_KEYS, EXPIRY_MULTIPLE

PROG = "cauldron-broker"
EXITS = (("0", "stopped by SIGINT or SIGTERM (at any moment)"),
         ("1", "the configuration is unusable or a socket cannot bind (one line on stderr naming it)"),
         ("2", "bad arguments"))
_ROLES = (  # (config key, socket type, who connects)
    ("broker", "ROUTER", "clients and dispatchers connect here"),
    ("publish", "XSUB", "dispatchers publish broadcasts here"),
    ("subscribe", "XPUB", "clients subscribe to broadcasts here"),
)


def parser() -> argparse.ArgumentParser:
    p = new_parser(
        PROG, "Run a Cauldron ZMQ broker in the foreground until SIGINT or SIGTERM.", EXITS,
        epilog="Addresses are written as peers connect to them (the [zmq] config form): "
               "a literal IP binds that interface, * or 0.0.0.0 every interface, a host name the "
               "address it resolves to (localhost: loopback); "
               "a port of * lets the system choose. Defaults: ports 6513, 6512, 6511 on localhost.",
        version=f"{__version__} ({batchio.IO} I/O)")
    p.add_argument("-c", "--config", metavar="CONFIG", help="a Cauldron INI file with a [zmq] section")
    p.add_argument("--router", metavar="ADDR", help="the ROUTER clients and dispatchers connect to (config key broker)")
    p.add_argument("--publish", metavar="ADDR", help="the XSUB dispatchers publish to (config key publish)")
    p.add_argument("--subscribe", metavar="ADDR", help="the XPUB clients subscribe to (config key subscribe)")
    p.add_argument("--lookup", metavar="ADDR",
                   help="what a client's lookup is answered: where its SUB connects (default: the subscribe address)")
    p.add_argument("--timeout", metavar="SECONDS", type=positive_seconds,
                   help=f"heartbeat period T; a dispatcher silent for {EXPIRY_MULTIPLE} T is expired (config key timeout)")
    p.add_argument("--no-heartbeat", action="store_true", help="send no heartbeats and expire no dispatcher")
    p.add_argument("--curve-secret-key", metavar="FILE",
                   help="CURVE on every socket: the broker's secret key file, NAME.key_secret from "
                        "cauldron-keygen (config key curve_secret_key)")
    p.add_argument("--curve-authorized", metavar="DIR",
                   help="with CURVE: the folder of authorized public key files, NAME.key; * for any key "
                        "(config key curve_authorized)")
    p.add_argument("--curve-dispatchers", metavar="FILE",
                   help="with CURVE: the policy file of which key may register dispatchers of which services "
                        "(lines 'KEY: SERVICE ...', globs allowed); keys not named are clients only, and "
                        "broadcasts are relayed only from keys allowed to serve their service "
                        "(config key curve_dispatchers)")
    limits = p.add_argument_group("limits", "every resource a peer can make the broker hold has a bound "
                                            "(config keys of the same name; defaults in brackets)")
    for key in LIMIT_KEYS:
        limits.add_argument("--" + key.replace("_", "-"), metavar="N", type=positive_integer, dest=key,
                            help=f"{CONFIG_KEYS[key].description.removeprefix('limit: ')} [{CONFIG_KEYS[key].default}]")
    p.add_argument("--http", metavar="[HOST:]PORT",
                   help="serve /healthz, /status and /metrics (Prometheus) over HTTP, on loopback unless a host "
                        "is given (config key http; needs the [metrics] extra)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="-vv: log DEBUG too, dropped messages (-v: INFO, the default)")
    p.add_argument("-q", "--quiet", action="count", default=0,
                   help="log only warnings (-qq: only errors); the default is INFO, a line per registration, "
                        "expiry, refusal and limit hit")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="log lines as text, or as one JSON object a line (time, level, logger, message)")
    return p


def configure(args: argparse.Namespace) -> ZMQBroker:
    """The broker the arguments describe (not bound yet)."""
    cfg = read_configuration(args.config)
    cfg.override({"broker": args.router, "publish": args.publish, "subscribe": args.subscribe,
                  "timeout": None if args.timeout is None else repr(args.timeout),
                  "heartbeat": "no" if args.no_heartbeat else None,
                  "curve_secret_key": args.curve_secret_key, "curve_authorized": args.curve_authorized,
                  "curve_dispatchers": args.curve_dispatchers,
                  **{key: None if getattr(args, key) is None else str(getattr(args, key)) for key in LIMIT_KEYS}},
                 origin="command line")
    broker = ZMQBroker.from_config(cfg, name=PROG)
    if args.lookup is not None:
        broker.mon_address = broker.core.lookup_address = args.lookup
    cfg.override({"http": args.http}, origin="command line")
    http = cfg.get("zmq", "http", fallback="").strip()
    try:
        broker.http = HTTPMonitor(broker, http) if http else None
    except ValueError as exc:
        raise invalid(cfg, "http", str(exc)) from None
    return broker


def _announce(broker: ZMQBroker) -> None:
    """One line per socket: the endpoint it really bound (``0.0.0.0``: every interface), who
    connects, and the address they connect to when it differs."""
    for key, mode, who in _ROLES:
        bound, connect = broker.bound[key], broker.endpoints[key]
        where = "" if connect == bound else f" at {connect}"
        print(f"{key:<9} {mode:<6} {bound}  ({who}{where})", flush=True)
    if broker.http is not None:
        print(f"{'http':<9} {'HTTP':<6} {broker.http.url}  (/healthz, /status, /metrics)", flush=True)
    if broker.security is not None:
        print(f"{'curve':<9} {'CURVE':<6} {broker.security.public.decode()}  ({broker.security.accepting()})",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log_to_stderr(logging.DEBUG if args.verbose > 1 else (logging.INFO, logging.WARNING, logging.ERROR)[min(args.quiet, 2)],
                  args.log_format)
    return run(lambda: _serve(args), PROG, stopped=0, errors=(ConfigError, BrokerError, ValueError))


def _serve(args: argparse.Namespace) -> int:
    broker = configure(args)
    try:
        serve_until_signalled(broker, ready=_ready)
    finally:
        if broker.http is not None:
            broker.http.stop()
    logging.getLogger("cauldron_proto.broker").info("stopped")
    return 0


def _ready(broker: ZMQBroker) -> None:
    if broker.http is not None:
        try:
            broker.http.start()
        except BaseException:
            broker.close()  # bound by prepare(); run() will not close them
            raise
    _announce(broker)
    notify("READY=1", f"STATUS=serving at {broker.endpoints['broker']}")


if __name__ == "__main__":
    sys.exit(main())
