"""Run a fuzz target for a set time: coverage-guided with atheris, or random inputs without it.

    python fuzz/fuzz_core.py -max_total_time=60            # atheris (libFuzzer flags)
    python fuzz/fuzz_core.py -max_total_time=60 CORPUS_DIR # keep interesting inputs
    python fuzz/fuzz_core.py -max_total_time=60 --random   # no atheris: seeded random bytes
    python fuzz/fuzz_core.py --random crash-random-1234    # replay inputs (files, folders)

With atheris (``pip install -e '.[fuzz]'``) the target modules are instrumented for
coverage and libFuzzer mutates the inputs; a failing input is written to ``crash-*`` and the
run stops. Without atheris (or with ``--random``) the same target gets random byte strings
from a seeded generator (``-seed=N``; a failing input is written to ``crash-random-*``).
File arguments are replayed, each once, and the run ends; the files in a folder argument are
replayed before the random inputs (libFuzzer does the same with atheris). Inputs that once
failed are kept in ``fuzz/regressions/<target>/`` and replayed by the test suite.
Every ``report_every`` seconds, and at the end of a random run, one line gives the counts.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from typing import Callable

__all__ = ["Target", "main", "replay"]


class Target:
    """A fuzz target: ``one_input(data) -> messages handled`` and a running count."""

    def __init__(self, name: str, one_input: Callable[[bytes], int], report_every: float = 10.0):
        self.name, self._one_input, self.report_every = name, one_input, report_every
        self.inputs = self.messages = 0
        self.started = self._reported = time.monotonic()

    def __call__(self, data: bytes) -> None:
        self.messages += self._one_input(data)
        self.inputs += 1
        now = time.monotonic()
        if now - self._reported >= self.report_every:
            self._reported = now
            self.report()

    def report(self) -> None:
        elapsed = time.monotonic() - self.started
        print(f"{self.name}: {self.inputs} inputs, {self.messages} messages in {elapsed:.0f} s, no failure",
              file=sys.stderr, flush=True)


def _flag(argv: list[str], name: str, default: int) -> int:
    for arg in argv:
        if arg.startswith(f"-{name}="):
            return int(arg.split("=", 1)[1])
    return default


def replay(target: Target, paths: list[str]) -> int:
    """Run ``target`` on each file of ``paths`` (a folder: on each file in it); how many."""
    files = [os.path.join(path, name) for path in paths if os.path.isdir(path) for name in sorted(os.listdir(path))]
    files += [path for path in paths if not os.path.isdir(path)]
    for name in files:
        with open(name, "rb") as handle:
            data = handle.read()
        try:
            target(data)
        except BaseException:
            print(f"{target.name}: replaying {name} failed", file=sys.stderr, flush=True)
            raise
    print(f"{target.name}: replayed {len(files)} inputs, no failure", file=sys.stderr, flush=True)
    return len(files)


def _random_run(target: Target, argv: list[str]) -> int:
    inputs = [arg for arg in argv[1:] if not arg.startswith("-")]
    if inputs:
        replay(target, inputs)
        if not any(os.path.isdir(path) for path in inputs):
            return 0
    seconds, runs = _flag(argv, "max_total_time", 60), _flag(argv, "runs", -1)
    seed = _flag(argv, "seed", int(time.time()))
    rng = random.Random(seed)
    print(f"{target.name}: random inputs, seed {seed}, {seconds} s", file=sys.stderr, flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end and runs != 0:
        runs -= 1
        data = rng.randbytes(rng.randrange(4, 2048))
        try:
            target(data)
        except BaseException:
            name = f"crash-random-{hashlib.sha1(data).hexdigest()}"
            with open(name, "wb") as handle:
                handle.write(data)
            print(f"{target.name}: failing input written to {name}", file=sys.stderr, flush=True)
            raise
    target.report()
    return 0


def main(make_target: Callable[[], Target], argv: list[str] | None = None) -> int:
    """Fuzz the target ``make_target()`` builds (after instrumenting imports, with atheris)."""
    argv = list(sys.argv if argv is None else argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is None or "--random" in argv:
        if atheris is None:
            print("atheris is not installed (pip install atheris): using random inputs", file=sys.stderr)
        return _random_run(make_target(), [a for a in argv if a != "--random"])
    with atheris.instrument_imports(include=["cauldron_proto", "fuzz"]):
        target = make_target()
    atheris.Setup(argv, target)
    atheris.Fuzz()
    return 0
