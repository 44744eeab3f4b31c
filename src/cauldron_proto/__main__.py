"""``python -m cauldron_proto``: the installed version, and each command with what it does.

The commands are the console scripts in the package's metadata (``[project.scripts]`` in
``pyproject.toml``); what each does is the first sentence of its ``--help`` description.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Callable
from importlib import metadata

from . import __version__


def commands() -> list[tuple[str, str]]:
    """(name, what it does) of every console script the installed package declares."""
    scripts = [ep for ep in metadata.distribution("cauldron_proto").entry_points if ep.group == "console_scripts"]
    return [(ep.name, summary(ep.load())) for ep in sorted(scripts, key=lambda ep: ep.name)]


def summary(command: Callable[[list[str]], object]) -> str:
    """The first sentence of ``command``'s ``--help`` description, without a closing aside."""
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):
        command(["--help"])
    paragraphs = shown.getvalue().split("\n\n")  # the usage, then the description
    description = " ".join(paragraphs[1].split()) if len(paragraphs) > 1 else ""
    sentence = re.split(r"(?<=\.)\s", description, maxsplit=1)[0]
    return re.sub(r"\s*\([^()]*\)(?=\.$)", "", sentence)


def main() -> int:
    print(f"cauldron_proto {__version__} (Python {sys.version.split()[0]})")
    try:
        found = commands()
    except metadata.PackageNotFoundError:
        print("commands: none (run from a source tree; install it: python -m pip install .)")
        return 0
    print("commands (each with --help and --version):")
    width = max(len(name) for name, _ in found)
    for name, what in found:
        print(f"  {name:<{width}}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
