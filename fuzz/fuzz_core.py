#!/usr/bin/env python
"""Fuzz the routing core: any byte string is a program of peers' messages (valid messages of
every kind, mutated), dispatcher answers and clock jumps, played against BrokerCore with a
fake clock and checked step by step (see fuzz/core_driver.py).

    python fuzz/fuzz_core.py -max_total_time=60 [CORPUS_DIR]   # atheris; --random without it
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.runner import Target, main  # noqa: E402


def make_target() -> Target:
    from fuzz.core_driver import run_program
    from fuzz.programs import program_from_bytes

    def one_input(data: bytes) -> int:
        return run_program(program_from_bytes(data)).core.stats.received

    return Target("fuzz_core", one_input)


if __name__ == "__main__":
    sys.exit(main(make_target))
