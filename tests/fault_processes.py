"""Real processes for the fault tests: the command-line tools (and small Python scripts) as
subprocesses that a test can freeze (SIGSTOP), thaw (SIGCONT) and kill (SIGKILL).

Every process is reaped on the way out: thawed, killed and waited for, its pipes closed.

    with broker_process(timeout=0.2) as broker:             # cauldron-broker, ephemeral ports
        config = broker.config()
        with dispatcher_process(config, "KTEST", "disp1", "VALUE=1") as disp:
            disp.freeze(); ...; disp.thaw()
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .brokers import WAIT

BIN = Path(sys.executable).parent
ANY = "tcp://127.0.0.1:*"
_ENDPOINT = re.compile(r"^(broker|publish|subscribe)\s+\w+\s+(\S+)")


class Process:
    """A subprocess with its stdout lines in a queue; freeze, thaw and kill it."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.endpoints: dict[str, str] = {}
        self.timeout: float | None = None

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def read_line(self, timeout: float = WAIT) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.argv[0]}: no output within {timeout} s "
                                 f"(exit status {self.popen.poll()}; stderr: {self._stderr()})") from None

    def _stderr(self) -> str:
        return self.popen.stderr.read() if self.popen.poll() is not None else "(still running)"

    def freeze(self) -> None:
        self.popen.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.popen.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone (its sockets closed by the system)."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(WAIT)

    def config(self) -> dict[str, str]:
        """For a broker process: a `[zmq]` mapping pointing at it, with its heartbeat period."""
        return {**self.endpoints, "timeout": repr(self.timeout)}

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)  # a frozen process would not die of SIGTERM
            self.popen.kill()
        self.popen.wait(WAIT)
        self._reader.join(WAIT)
        self.popen.stdout.close()
        self.popen.stderr.close()


@contextmanager
def started(argv: list[str]) -> Iterator[Process]:
    proc = Process(argv)
    try:
        yield proc
    finally:
        proc.close()


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed: pip install -e . declares it in pyproject.toml"
    return str(path)


@contextmanager
def broker_process(timeout: float, router: str = ANY, publish: str = ANY, subscribe: str = ANY,
                   extra: tuple[str, ...] = ()) -> Iterator[Process]:
    """``cauldron-broker`` bound and announced; ``proc.endpoints`` holds its real addresses."""
    argv = [tool("cauldron-broker"), "--router", router, "--publish", publish, "--subscribe", subscribe,
            "--timeout", repr(timeout), *extra]
    with started(argv) as proc:
        proc.timeout = timeout
        while len(proc.endpoints) < 3:
            match = _ENDPOINT.match(proc.read_line())
            if match:
                proc.endpoints[match[1]] = match[2]
        yield proc


@contextmanager
def dispatcher_process(config: dict[str, str], service: str, name: str, *keywords: str,
                       extra: tuple[str, ...] = ()) -> Iterator[Process]:
    """``cauldron-dispatcher`` serving ``keywords`` (``KEYWORD[:TYPE]=VALUE``), once registered."""
    argv = [tool("cauldron-dispatcher"), "-s", service, "-n", name, "--router", config["broker"],
            "--publish", config["publish"], "--timeout", config["timeout"], *extra]
    for keyword in keywords:
        argv += ["-k", keyword]
    with started(argv) as proc:
        line = proc.read_line()
        assert "serving" in line, line
        yield proc


@contextmanager
def python_process(script: str, *args: str) -> Iterator[Process]:
    """``python -c script args...`` (the test's own interpreter and installed package)."""
    with started([sys.executable, "-c", script, *args]) as proc:
        yield proc
