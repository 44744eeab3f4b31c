"""Record the sessions the conformance cases are made from.

    .venv/bin/python conformance/sessions.py [SESSION ...]   # all sessions when none named

For each session: start our broker (a ZMQBroker thread on loopback ephemeral ports, with
a short heartbeat period where the session needs it), start ``cauldron-record`` in front
of it, play the session's peers against the recorder's addresses (raw sockets driven by
hand below, or the project's helpers), stop the recorder, and keep its recording as
``conformance/recordings/<session>.jsonl``. ``--draft DIR`` also writes the draft case
``cauldron-record --to-case`` makes of each recording; the cases in the suite are those
drafts, reviewed and edited (ids, descriptions, levels, silences, alternatives).

Raw peers build every message with the codec (``Message.new``); the malformed ones are the
only frames written by hand, on purpose.

The sessions live in ``recording_sessions/``, by what they record: ``broker.py`` (our broker
driven by raw peers), ``helpers.py`` (the project's helpers and tools), ``malformed.py``
(malformed input); ``net.py`` is the harness.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from recording_sessions import RECORDINGS, SESSIONS, recording  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="sessions to record (default: all)")
    p.add_argument("--draft", type=Path, help="also write draft cases to this directory")
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(SESSIONS))
        return 0
    RECORDINGS.mkdir(exist_ok=True)
    failures = 0
    for name in args.names or list(SESSIONS):
        play, timeout = SESSIONS[name]
        try:
            with recording(name, timeout) as net:
                play(net)
        except Exception as exc:  # one bad session must not stop the others
            failures += 1
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        print(f"{name}: recorded", file=sys.stderr)
        if args.draft:
            args.draft.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "cauldron_proto.cli.record", "--to-case",
                            str(RECORDINGS / f"{name}.jsonl"), "--id", name,
                            "-o", str(args.draft / f"{name}.yaml")], check=True)
    return 1 if failures else 0


if __name__ == "__main__":
    os.chdir(HERE.parent)
    sys.exit(main())