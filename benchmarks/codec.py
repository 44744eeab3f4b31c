"""Codec benchmark: ns per message for decode, encode and decode + reply + encode.

Compares the codec (cauldron_proto.protocol.codec) with a straightforward class-based codec
(benchmarks/classic_codec.py) in the same run. Each figure is the median of --repeat runs.

    python benchmarks/codec.py [--repeat 5] [--number 20000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classic_codec import ClassicMessage  # noqa: E402

from cauldron_proto import decode, encode  # noqa: E402

FRAMES = {
    "small (CDQ at broker)": [b"\x00k\x8bEg", b"", b"KTEST", b"\x01", b"VALUE", b"CDQ", b"update", b"\x01",
                              bytes(range(16))],
    "reply with prefix": [b"\x00k\x8bEh", b"", b"\x00k\x8bEg", b"", b"KTEST", b"disp1", b"VALUE", b"CDP",
                          b"update", b"12.5", bytes(range(16))],
    "4 KiB payload": [b"\x00k\x8bEg", b"", b"KTEST", b"disp1", b"TABLE", b"CDP", b"update", b"x" * 4096,
                      bytes(range(16))],
}


def _ours(frames):
    message = decode(frames)
    return {
        "decode": lambda: decode(frames),
        "encode": lambda: encode(message),
        "decode + encode": lambda: encode(decode(frames)),
        "decode + reply + encode": lambda: encode(decode(frames).reply("42")),
    }


def _classic(frames):
    message = ClassicMessage.parse(frames)
    return {
        "decode": lambda: ClassicMessage.parse(frames),
        "encode": lambda: message.data,
        "decode + encode": lambda: ClassicMessage.parse(frames).data,
        "decode + reply + encode": lambda: ClassicMessage.parse(frames).response("42").data,
    }


def measure(func, number: int, repeat: int) -> float:
    """Median ns per call over ``repeat`` runs of ``number`` calls."""
    runs = timeit.repeat(func, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows = []
    for label, frames in FRAMES.items():
        ours, classic = _ours(frames), _classic(frames)
        for op in ours:
            a = measure(ours[op], args.number, args.repeat)
            b = measure(classic[op], args.number, args.repeat)
            rows.append({"message": label, "operation": op, "ours_ns": round(a), "classic_ns": round(b),
                         "speedup": round(b / a, 1)})
    print(f"codec benchmark: Python {platform.python_version()}, median of {args.repeat} x {args.number}")
    print(f"| message | operation | cauldron_proto (ns) | class-based (ns) | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['message']} | {r['operation']} | {r['ours_ns']:,} | {r['classic_ns']:,} | {r['speedup']}x |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"python": platform.python_version(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
