"""A broker in a child process: what ``ZMQBroker.daemon()`` starts, and the :class:`BrokerProcess` handle.

Theory of operation
-------------------
The child is a fresh interpreter running :func:`cauldron_proto.broker.child.main` (the same
as ``python -m cauldron_proto.broker.child``), started with :mod:`subprocess`, not
:mod:`multiprocessing`: it runs none of the caller's code, so a plain
script may call ``setup()``, ``sub()`` or ``daemon()`` at its top level with no
``if __name__ == "__main__":`` guard, and it inherits no thread and no ZMQ context.

* The parent writes one JSON line on the child's stdin: the configuration's sections, the
  broker class (``module:qualname``; the caller's ``sys.path`` so it imports) and whether
  the child dies with its parent.
* The child binds, then writes one JSON line on its stdout, ``{"running": endpoints}`` or
  ``{"error": text}`` (and exits 1), and serves until SIGTERM or SIGINT (a clean exit, 0).
  A daemonic child also stops when its stdin reaches end-of-file: the parent closed it, or
  died, however abruptly. Its stderr is the parent's.
* In the parent a reader thread takes that line, sets ``running`` and ``endpoints``, and
  clears ``running`` when the child's stdout closes (it exited). Daemonic children still
  alive when the parent exits are stopped (``atexit``); a non-daemonic one outlives it.
"""

from __future__ import annotations

import atexit
import configparser
import json
import os
import subprocess
import sys
import threading
import weakref

from .. import config as _config

from .sockets import BrokerError
from ..processes import terminate

__all__ = ["BrokerProcess", "start"]

STOP_TIMEOUT = 10.0  # seconds stop() waits for a clean exit before killing the child
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_daemonic: "weakref.WeakSet[BrokerProcess]" = weakref.WeakSet()
#: The child's program: this module's main(), found where the parent found this package
#: (appended to the child's path, so it shadows nothing the child would import otherwise).
_CHILD = (f"import sys; sys.path.append({_PACKAGE_ROOT!r}); "
          f"from cauldron_proto.broker.child import main; sys.exit(main())")


def start(cls, cfg: configparser.ConfigParser, daemon: bool = True) -> "BrokerProcess":
    """Start a broker of class ``cls`` configured by ``cfg`` (read, defaults filled in) in a
    child process; returns a :class:`BrokerProcess` at once (see :func:`.launch.daemon`).
    ValueError for an ``inproc://`` address (no other process can reach it)."""
    for key in ("broker", "publish", "subscribe"):
        if _config.address(cfg, key).startswith("inproc://"):
            raise ValueError(f"a broker in another process cannot serve {key} = {_config.address(cfg, key)}: "
                             "inproc:// addresses reach only this process (use sub() or thread())")
    order = {
        "sections": {section: dict(cfg.items(section, raw=True)) for section in cfg.sections()},
        "broker": _importable_name(cls),
        "path": [p for p in sys.path if isinstance(p, str)],
        "exit_with_parent": bool(daemon),
    }
    # -P: the child's path starts with no current directory, so nothing there shadows a module
    process = subprocess.Popen([sys.executable, "-P", "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               close_fds=True)
    handle = BrokerProcess(process, daemonic=bool(daemon))
    assert process.stdin is not None  # a pipe
    try:
        process.stdin.write(json.dumps(order).encode() + b"\n")
        process.stdin.flush()
    except OSError:
        pass  # it exited already; wait_running() says so
    if not daemon:
        process.stdin.close()  # its life no longer depends on ours
    return handle


def _importable_name(cls) -> str:
    """``module:qualname`` of the broker class, or ZMQBroker's when a child could not import it
    (a class defined in the calling script: importing ``__main__`` would run the script again)."""
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        return "cauldron_proto.broker:ZMQBroker"
    return f"{module}:{qualname}"


class BrokerProcess:
    """A broker in a child process, as ``daemon()``, ``sub()`` and ``setup()`` return it.

    ``running``: a ``threading.Event`` set while the child serves; ``endpoints``: the child's
    bound addresses by config key, once running; ``process``: the ``subprocess.Popen``.
    """

    def __init__(self, process: subprocess.Popen, daemonic: bool = True):
        self.process = process
        self.running = threading.Event()
        self.endpoints: dict[str, str] = {}
        self._reported = threading.Event()  # the child said running or error, or exited first
        self._error: str | None = None
        self._reader = threading.Thread(target=self._read_report, daemon=True,
                                        name=f"cauldron_proto broker process {process.pid}")
        self._reader.start()
        if daemonic:
            _daemonic.add(self)

    def _read_report(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None  # a pipe
        try:
            line = stdout.readline()
            try:
                report = json.loads(line) if line else {}
            except ValueError:
                report = {"error": f"the broker process said {line[:200]!r}"}
            if "running" in report:
                self.endpoints = dict(report["running"])
                self.running.set()
            else:
                self._error = report.get("error")
            self._reported.set()
            while stdout.read(65536):  # until the child exits (nothing more is written)
                pass
        except (OSError, ValueError):
            pass  # stop() closed the pipe
        finally:
            self.running.clear()
            self._reported.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        """The child's exit status once it ended (negative: the signal that ended it), else None."""
        return self.process.poll()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    isAlive = is_alive

    def join(self, timeout=None) -> None:
        """Wait (up to ``timeout`` s) for the child to end."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def wait_running(self, timeout=None) -> bool:
        """Wait until the child's broker serves: True; BrokerError if it failed; TimeoutError."""
        if not self._reported.wait(timeout):
            raise TimeoutError(f"the broker process did not start within {timeout} s")
        if self.endpoints:
            return True
        if self._error is not None:
            raise BrokerError(self._error)
        self.join(1.0)
        raise BrokerError(f"the broker process exited (status {self.exitcode}) before serving")

    def stop(self, timeout=None) -> None:
        """SIGTERM the child (its broker stops cleanly); kill it if it is still there after
        ``timeout`` seconds (default 10)."""
        _daemonic.discard(self)
        terminate(self.process, STOP_TIMEOUT if timeout is None else timeout)
        self._reader.join(STOP_TIMEOUT)  # the child's stdout is at its end: the reader is done
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass

    def __repr__(self) -> str:
        return f"<BrokerProcess pid={self.pid} alive={self.is_alive()} endpoints={self.endpoints}>"


@atexit.register
def _stop_daemonic_children() -> None:
    for handle in list(_daemonic):
        handle.stop()
