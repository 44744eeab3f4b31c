"""What every command shares: ``--version``, exit statuses in ``--help``, stopping on SIGINT
and SIGTERM, a closed standard output, and systemd's readiness notification.

Theory of operation
-------------------
:func:`run` calls a command's body with SIGTERM acting as SIGINT does: the first of either
raises KeyboardInterrupt in the main thread wherever it is (reading the configuration,
waiting for a broker, in a request), so the ``with`` blocks and ``finally`` clauses on the
way out close the sockets and stop the threads; a second signal during that clean-up ends
the process at once (``os._exit``, the same exit status), never with a traceback. A command
whose job is to run until stopped (broker, dispatcher, monitor, recorder) exits 0 then; the
others exit 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports
a process the signal ended. A command may hold its own handlers while it waits for a signal
as its normal end (``keywords.stop_on_signals``, the broker's serve loop).

A standard output closed by its reader (``cauldron-demo | head -3``) is handled as the
Python documentation recommends: what is left to print goes to ``/dev/null`` and the exit
status is 1.

:func:`notify` tells systemd (``Type=notify`` units) a state such as ``READY=1`` through
the datagram socket named by ``$NOTIFY_SOCKET`` (``@``: Linux's abstract namespace).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import signal
import socket
import sys
import textwrap
import threading
from typing import Callable, Optional, Sequence

from .. import __version__

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "INTERRUPTED", "JSONFormatter", "is_stdout_closed", "log_to_stderr",
           "new_parser", "notify", "run", "say", "stdout_closed", "wait_seconds"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: What the exit status after a signal means, for the epilogs.
INTERRUPTED = ("128+N", "stopped by signal N before it was done (130: SIGINT, 143: SIGTERM)")
log = logging.getLogger("cauldron_proto.cli")
_closed_stdout = threading.Event()
_SAY_LOCK = threading.Lock()  # say(): one whole line at a time, from any thread


def new_parser(prog: str, description: str, exits: Sequence[tuple[str, str]], epilog: str = "",
               version: str = __version__, **kwargs) -> argparse.ArgumentParser:
    """A parser with ``--version`` (saying ``version``) and an epilog: ``epilog`` then each
    (status, meaning) of ``exits``."""
    lines = [textwrap.fill(epilog, 88), ""] if epilog else []
    lines.append("exit status:")
    lines += [f"  {status:<6} {meaning}" for status, meaning in exits]
    p = argparse.ArgumentParser(prog=prog, description=description, epilog="\n".join(lines),
                                formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    p.add_argument("--version", action="version", version=f"%(prog)s {version}")
    return p


class _Signals:
    """SIGINT and SIGTERM as KeyboardInterrupt, once; the second one ends the process."""

    def __init__(self) -> None:
        self.received: Optional[int] = None

    def __call__(self, signum: int, _frame) -> None:
        if self.received is not None:
            os._exit(128 + self.received)  # a second signal while stopping: no waiting, no traceback
        self.received = signum
        raise KeyboardInterrupt


def run(body: Callable[[], int], prog: str, *, stopped: Optional[int] = None,
        errors: tuple[type[BaseException], ...] = ()) -> int:
    """``body()``'s exit status; a signal: ``stopped`` (None: 128 + its number); ``errors``:
    one line on stderr and exit status 1; a closed stdout: exit status 1, nothing printed."""
    handler = _Signals()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        try:
            status = body()
            sys.stdout.flush()
            return status
        except KeyboardInterrupt:
            signum = handler.received or signal.SIGINT
            return stopped if stopped is not None else 128 + signum
        except BrokenPipeError:
            stdout_closed()
            return EXIT_ERROR
        except errors as exc:
            print(f"{prog}: {exc}", file=sys.stderr, flush=True)
            return EXIT_ERROR
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stdout_closed() -> None:
    """Send what is left to print to /dev/null (the reader of stdout has gone)."""
    _closed_stdout.set()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def is_stdout_closed() -> bool:
    return _closed_stdout.is_set()


def say(text: str) -> None:
    """One whole line: the client's thread and the monitor callbacks' thread both print.

    Once stdout is closed, what is left goes nowhere; the main thread's next line raises
    BrokenPipeError, which ends the demo (:func:`.command.run`)."""
    with _SAY_LOCK:
        if not is_stdout_closed():
            try:
                print(text, flush=True)
            except BrokenPipeError:
                stdout_closed()
        if is_stdout_closed() and threading.current_thread() is threading.main_thread():
            raise BrokenPipeError("standard output closed")


def notify(*states: str) -> bool:
    """Send ``states`` (``READY=1``, ``STATUS=...``) to systemd; False when not run by a
    service manager that asked for it (no ``$NOTIFY_SOCKET``) or the socket is unusable."""
    where = os.environ.get("NOTIFY_SOCKET", "")
    if not where:
        return False
    if where.startswith("@"):
        where = "\0" + where[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(where)
            sock.sendall("\n".join(states).encode())
    except OSError as exc:
        log.warning("cannot notify the service manager at %s: %s", os.environ["NOTIFY_SOCKET"], exc)
        return False
    return True


class JSONFormatter(logging.Formatter):
    """One JSON object a line, for log collectors: ``time`` (UTC, ISO 8601), ``level``,
    ``logger``, ``message`` (and ``exception``, a traceback's text, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                     timespec="milliseconds"), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_to_stderr(level: int, form: str = "text") -> None:
    """Log at ``level`` and above to stderr, as text lines or (``form`` "json") JSON objects."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if form == "json" else
                         logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def wait_seconds(text: str) -> float:
    """An argparse type: seconds to wait, 0 or ``inf`` for no limit (then ``math.inf``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or inf: no limit)")
    return value or float("inf")
