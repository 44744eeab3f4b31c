"""python -m codegen [--check] [--spec PATH] [--root DIR]

Regenerate the files that come from the protocol spec, or (--check) verify they are current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .spec import SpecError, load

try:
    from .render import render_all
except ModuleNotFoundError as exc:  # the codegen extra is not installed
    if exc.name != "jinja2":
        raise
    sys.exit("codegen: needs Jinja2, which the package itself does not: python -m pip install -e '.[codegen]'")

REGENERATE = "python -m codegen"
REPOSITORY = Path(__file__).resolve().parent.parent


def spec_label(spec: str) -> str:
    """How generated files name the spec: relative to the repository when inside it."""
    path = Path(spec).resolve()
    try:
        return path.relative_to(REPOSITORY).as_posix()
    except ValueError:
        return Path(spec).as_posix()


def first_difference(path: str, expected: str, actual: str | None) -> str:
    """One line naming the file and its first line that differs from what the spec gives."""
    if actual is None:
        return f"{path}: missing"
    want, have = expected.splitlines(), actual.splitlines()
    for number, (a, b) in enumerate(zip(want, have), start=1):
        if a != b:
            return f"{path}:{number}: expected {a!r}, found {b!r}"
    number = min(len(want), len(have)) + 1
    if len(want) > len(have):
        return f"{path}:{number}: expected {want[number - 1]!r}, found end of file"
    if len(have) > len(want):
        return f"{path}:{number}: unexpected {have[number - 1]!r} after the end"
    return f"{path}: differs in line endings or a final newline"


def check(files: dict[str, str], root: Path) -> list[str]:
    """The first difference of every generated file that is stale under ``root``."""
    problems = []
    for rel, content in files.items():
        target = root / rel
        actual = target.read_text(encoding="utf-8") if target.exists() else None
        if actual != content:
            problems.append(first_difference(rel, content, actual))
    return problems


def write(files: dict[str, str], root: Path) -> list[str]:
    """Write every file whose content changed; return the paths written."""
    written = []
    for rel, content in files.items():
        target = root / rel
        if target.exists() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        written.append(rel)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__.splitlines()[2])
    parser.add_argument("--check", action="store_true", help="fail if any generated file is stale")
    parser.add_argument("--spec", default="spec/protocol.yaml", help="the spec (default: %(default)s)")
    parser.add_argument("--root", default=".", help="repository root to write into (default: .)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        spec = load(args.spec)
    except SpecError as exc:
        print(f"codegen: {exc}", file=sys.stderr)
        return 2
    files = render_all(spec, spec_label(args.spec))
    if args.check:
        problems = check(files, root)
        for problem in problems:
            print(f"codegen: stale: {problem}", file=sys.stderr)
        if problems:
            print(f"codegen: run `{REGENERATE}` and commit the result", file=sys.stderr)
            return 1
        print(f"codegen: {len(files)} generated files match {args.spec}")
        return 0
    written = write(files, root)
    for rel in written:
        print(f"codegen: wrote {rel}")
    print(f"codegen: {len(files)} files from {args.spec}, {len(written)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
