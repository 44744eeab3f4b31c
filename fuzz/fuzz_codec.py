#!/usr/bin/env python
"""Fuzz the codec: any byte string is a frame list (a valid message of any kind, mutated, or
raw frames) given to decode, salvage, encode, reply, classify and Message.new, and checked
(see fuzz/codec_checks.py).

    python fuzz/fuzz_codec.py -max_total_time=60 [CORPUS_DIR]   # atheris; --random without it
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.runner import Target, main  # noqa: E402


def make_target() -> Target:
    from fuzz.codec_checks import check_codec
    from fuzz.programs import frames_from_bytes

    def one_input(data: bytes) -> int:
        check_codec(frames_from_bytes(data))
        return 1

    return Target("fuzz_codec", one_input)


if __name__ == "__main__":
    sys.exit(main(make_target))
