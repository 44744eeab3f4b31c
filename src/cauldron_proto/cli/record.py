"""cauldron-record: record the frames between peers and a broker; turn a recording into a case.

Recording: ``cauldron-record --router ADDR --publish ADDR --subscribe ADDR -o FILE``
listens on ``--listen-router/--listen-publish/--listen-subscribe`` (default: loopback,
ephemeral ports), prints the three addresses peers should use, forwards everything to the
broker's addresses and writes each message to FILE (JSON Lines) until interrupted (Ctrl-C,
SIGTERM) or ``--duration`` seconds have passed. Lookup replies are passed on naming the
proxy's subscribe address (so clients subscribe through it) unless ``--no-rewrite-lookup``.

Converting: ``cauldron-record --to-case RECORDING --id CASE_ID [-o CASE.yaml]`` writes a
draft case (see ``conformance/README.md``) to review and edit; a file that is not a
recording is one line naming the file and the line. Exit statuses: see ``EXITS``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from cauldron_proto.cli import positive_seconds
from cauldron_proto.cli.command import new_parser, run
from cauldron_proto.conformance.recorder import RecordingProxy
from cauldron_proto.conformance.to_case import convert_file


PROG = "cauldron-record"
EXITS = (("0", "recorded until SIGINT, SIGTERM or --duration (at any moment); or the case written"),
         ("1", "the proxy cannot start (one line on stderr)"),
         ("2", "bad arguments, or --to-case on a file that is not a recording (one line naming the file and line)"))


def parser() -> argparse.ArgumentParser:
    p = new_parser(PROG, "A recording proxy between Cauldron ZMQ peers and a broker, and the converter of "
                   "recordings into conformance cases.", EXITS)
    p.add_argument("--router", metavar="ADDR", help="the broker's ROUTER address, to forward to")
    p.add_argument("--publish", metavar="ADDR", help="the broker's XSUB address (publishers)")
    p.add_argument("--subscribe", metavar="ADDR", help="the broker's XPUB address (subscribers)")
    p.add_argument("--listen-router", metavar="ADDR", default="tcp://127.0.0.1:*")
    p.add_argument("--listen-publish", metavar="ADDR", default="tcp://127.0.0.1:*")
    p.add_argument("--listen-subscribe", metavar="ADDR", default="tcp://127.0.0.1:*")
    p.add_argument("--heartbeat-timeout", metavar="SECONDS", type=positive_seconds,
                   help="the broker's heartbeat period, noted in the recording (deadlines become multiples of it)")
    p.add_argument("--lookup", metavar="ADDR", help="the broker's lookup answer, noted in the recording")
    p.add_argument("--no-rewrite-lookup", action="store_true",
                   help="pass lookup replies unchanged (by default they name the proxy's subscribe address)")
    p.add_argument("--duration", metavar="SECONDS", type=float, help="stop recording after this long")
    p.add_argument("-o", "--output", metavar="FILE", type=Path,
                   help="the recording to write (or, with --to-case, the case; default standard output)")
    p.add_argument("--to-case", metavar="RECORDING", type=Path, help="convert RECORDING into a draft case")
    p.add_argument("--id", dest="case_id", metavar="CASE_ID", help="the id of the case (with --to-case)")
    p.add_argument("--description", metavar="TEXT", help="the case's description (with --to-case)")
    p.add_argument("--keep-heartbeats", action="store_true",
                   help="keep heartbeat exchanges as steps (with --to-case)")
    return p


def to_case(args) -> int:
    if not args.case_id:
        print("cauldron-record: --to-case needs --id", file=sys.stderr)
        return 2
    try:
        text = convert_file(args.to_case, case_id=args.case_id, description=args.description,
                            keep_heartbeats=args.keep_heartbeats)
    except (OSError, ValueError) as exc:
        print(f"cauldron-record: {exc}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def record(args) -> int:
    missing = [f"--{name}" for name in ("router", "publish", "subscribe") if not getattr(args, name)]
    if missing:
        print(f"cauldron-record: give the broker's addresses ({', '.join(missing)} missing)", file=sys.stderr)
        return 2
    notes = {k: v for k, v in (("heartbeat_timeout", args.heartbeat_timeout), ("lookup", args.lookup)) if v}
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    proxy = RecordingProxy(router=args.router, publish=args.publish, subscribe=args.subscribe, out=out,
                           listen_router=args.listen_router, listen_publish=args.listen_publish,
                           listen_subscribe=args.listen_subscribe, notes=notes,
                           rewrite_lookup=not args.no_rewrite_lookup)
    try:
        proxy.start()
    except (RuntimeError, TimeoutError) as exc:
        print(f"cauldron-record: {exc}", file=sys.stderr)
        return 1
    try:
        for side in ("router", "publish", "subscribe"):
            print(f"{side} {proxy.endpoints[side]}", file=sys.stderr, flush=True)
        done.wait(args.duration)
    finally:
        proxy.stop()
        if out is not sys.stdout:
            out.close()
    print(f"cauldron-record: recorded {proxy.count} messages", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: to_case(args) if args.to_case else record(args), PROG, stopped=0)


if __name__ == "__main__":
    sys.exit(main())
