"""Every code block of the documentation (docs/*.md and README.md) runs or is checked, as pasted.

A block is read with the HTML comment on the line before it, ``<!-- docs:test OPTIONS -->``:

- ``needs=broker``: the page's blocks share a working folder; before the first block that
  needs one, a ``cauldron-broker`` is started on ephemeral loopback ports and a
  ``cauldron.cfg`` pointing at it is written in that folder, which the block reads (the
  ``cauldron.cfg`` the page shows, with the default ports, is checked as a configuration).
- ``background``: the block is started and runs beside the page's later blocks until its
  first line on stdout; at the end of the page it gets SIGINT and must exit 0.
- ``check=config``: an INI file, read by ``read_configuration``; ``check=compile``: Python that
  needs what a test cannot have (``reason=...``), compiled only; ``check=pytest``: Python
  defining tests, run by pytest; ``check=policy``: a ``curve_dispatchers`` policy file, parsed
  by ``ServePolicy.parse`` (it must name at least one key).

Without options, by language:

- ``python``: run in a subprocess in the page's folder; it must exit 0.
- ``sh``: each command is checked without running it: a ``cauldron-*`` command's flags must
  be in its ``--help``, ``python FILE`` must name a file of the repository, ``python -m
  MODULE`` an importable module, ``pip install`` an extra of pyproject.toml. Commands of
  the system (``mkdir``, ``systemctl``) are left alone.
- ``ini``: with a ``[zmq]`` section, a configuration (read by ``read_configuration``);
  otherwise a unit file, whose ``ExecStart`` commands are checked as ``sh`` commands.
- ``text`` and unmarked blocks are output shown to the reader; the commands on their
  ``$ `` lines are checked as ``sh`` commands.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

from cauldron_proto import read_configuration
from cauldron_proto.testing import broker_process, config_for

from .conftest import ROOT

pytestmark = pytest.mark.integration

PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_MKDOCS_2_WARNING": "1"}
RUN_TIMEOUT = 25  # seconds for one block; the whole module takes far less
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_MARK = re.compile(r"^\s*<!-- docs:test (.*?) -->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.language or 'text'})"


def read_options(comment: str) -> dict[str, str]:
    options = {}
    for word in shlex.split(comment):
        name, _, value = word.partition("=")
        options[name] = value or "yes"
    return options


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, language = opening.groups()
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[index + 1:end]]
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        mark = _MARK.match(previous)
        found.append(Block(page, index + 1, language, "\n".join(body) + "\n", read_options(mark.group(1)) if mark else {}))
        index = end + 1
    return found


# -- checks of commands that are not run ----------------------------------------------------

@lru_cache(maxsize=None)
def help_text(command: tuple[str, ...]) -> str:
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, env=ENV, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, f"{' '.join(command)} --help: exit {done.returncode}: {done.stderr.strip()}"
    return done.stdout


@lru_cache(maxsize=None)
def extras() -> frozenset[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return frozenset(project.get("optional-dependencies", {}))


def commands_in(script: str) -> list[str]:
    """The simple commands of a shell text: lines joined (a backslash, or an indented line
    continuing a usage synopsis), comments dropped, split at ``&&``, ``||``, ``|``, ``;``, ``&``."""
    joined: list[str] = []
    for raw in script.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if joined and (joined[-1].endswith("\\") or (raw[:1].isspace() and line.strip())):
            joined[-1] = joined[-1].rstrip("\\").rstrip() + " " + line.strip()
        elif line.strip():
            joined.append(line.strip())
    return [part.strip() for line in joined for part in re.split(r"&&|\|\||[|;&]", line) if part.strip()]


def flags_of(words: list[str]) -> list[str]:
    flags = []
    for word in words:
        for flag in re.findall(r"(?<![\w\-./=:*'])(--?[A-Za-z][\w-]*)", word):
            flags.append("-v" if re.fullmatch(r"-v+", flag) else flag)
    return flags


def check_command(command: str, where: Block) -> str:
    """Check one command without running it; returns what was checked ('' for a system command)."""
    quoted = re.findall(r"'([^']*)'", command)
    for inner in quoted:
        if inner.startswith("cauldron-"):
            check_command(inner, where)
    words = re.sub(r"'[^']*'|\"[^\"]*\"", "''", command).split()
    words = [w for w in words if not re.fullmatch(r"[A-Z_]+=\S*", w)] or words  # VAR=value prefixes
    program = words[0].rsplit("/", 1)[-1]
    if program.startswith("cauldron-"):
        base = (program,)
        if len(words) > 1 and words[1] in ("dispatcher", "client") and program == "cauldron-conformance":
            base = (program, words[1])
        usage = help_text(base)
        unknown = [f for f in flags_of(words[len(base):]) if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", usage)]
        assert not unknown, f"{where}: {' '.join(base)} has no {unknown} (command: {command})"
        return "help"
    if program in ("python", "python3"):
        rest = words[1:]
        if rest[:3] == ["-m", "pip", "install"] or rest[:2] == ["pip", "install"]:
            return check_install(rest, where, command)
        if rest[:1] == ["-m"]:
            module = rest[1]
            assert module == "codegen" or importlib.util.find_spec(module), f"{where}: no module {module}: {command}"
            return "module"
        if rest and rest[0].endswith(".py"):
            assert (ROOT / rest[0]).is_file(), f"{where}: no file {rest[0]} in the repository: {command}"
            return "file"
    if program == "pip" and words[1:2] == ["install"]:
        return check_install(words[1:], where, command)
    if program.endswith(".sh") or program.startswith("scripts/"):
        assert (ROOT / words[0]).is_file(), f"{where}: no file {words[0]} in the repository: {command}"
        return "file"
    return ""


def check_install(words: list[str], where: Block, command: str) -> str:
    for word in words:
        for wanted in re.findall(r"\[([\w,-]+)\]", word):
            missing = set(wanted.split(",")) - extras()
            assert not missing, f"{where}: pyproject has no extra {missing}: {command}"
    return "install"


def check_shell(block: Block) -> int:
    return sum(1 for command in commands_in(block.text) if check_command(command, block))


def check_output(block: Block) -> int:
    return sum(check_shell(Block(block.page, block.line, "sh", line[2:])) for line in block.text.splitlines()
               if line.startswith("$ "))


def check_ini(block: Block, folder: Path) -> int:
    if re.search(r"^\[zmq\]", block.text, flags=re.MULTILINE) or block.options.get("check") == "config":
        path = folder / f"block-{block.line}.cfg"
        path.write_text(block.text, encoding="utf-8")
        read_configuration(str(path))
        return 1
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(block.text)
    starts = [unit.get(section, "ExecStart") for section in unit.sections() if unit.has_option(section, "ExecStart")]
    assert starts, f"{block}: an ini block that is neither a [zmq] configuration nor a unit with ExecStart"
    return sum(check_shell(Block(block.page, block.line, "sh", start.replace("\\\n", " "))) for start in starts)


# -- blocks that run ------------------------------------------------------------------------

class Page:
    """One page's run: its folder, its broker (started on demand), its background blocks."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.broker = None
        self._broker_context = None
        self.background: list[tuple[Block, subprocess.Popen]] = []

    def need_broker(self) -> None:
        if self.broker is None:
            self._broker_context = broker_process(timeout=1.0, env=ENV)
            self.broker = self._broker_context.__enter__()
            settings = config_for(self.broker)
            lines = ["[zmq]", *(f"{key} = {value}" for key, value in settings.items())]
            (self.folder / "cauldron.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def python(self, block: Block) -> None:
        path = self.folder / f"block_{block.line}.py"
        path.write_text(block.text, encoding="utf-8")
        if block.options.get("background"):
            child = subprocess.Popen([sys.executable, path.name], cwd=self.folder, env=ENV, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.background.append((block, child))
            first = child.stdout.readline()  # the block says it is ready; EOF if it ended
            assert first, f"{block}: ended before it said it was ready: {child.communicate(timeout=RUN_TIMEOUT)[1]}"
            return
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name] \
            if block.options.get("check") == "pytest" else [sys.executable, path.name]
        self.expect_success(block, argv)

    def shell(self, block: Block) -> None:
        self.expect_success(block, ["bash", "-euo", "pipefail", "-c", block.text])

    def expect_success(self, block: Block, argv: list[str]) -> None:
        done = subprocess.run(argv, cwd=self.folder, env=ENV, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert done.returncode == 0, f"{block}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"

    def close(self) -> None:
        try:
            for block, child in self.background:
                child.send_signal(signal.SIGINT)
                _, errors = child.communicate(timeout=RUN_TIMEOUT)
                assert child.returncode == 0, f"{block}: SIGINT gave exit {child.returncode}: {errors}"
        finally:
            for _, child in self.background:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            if self._broker_context is not None:
                self._broker_context.__exit__(None, None, None)


def run_block(block: Block, page: Page) -> str:
    """Run or check one block; returns how it was tested."""
    check = block.options.get("check", "")
    if block.options.get("needs") == "broker":
        page.need_broker()
    if check == "compile":
        assert block.options.get("reason"), f"{block}: check=compile needs a reason=..."
        compile(block.text, str(block), "exec")
        return "compiled"
    if check == "policy":
        from cauldron_proto.security.policy import ServePolicy

        assert ServePolicy.parse(block.text, str(block)).rules, f"{block}: a policy that names no key"
        return "policy"
    if check == "config" or block.language == "ini":
        check_ini(block, page.folder)
        return "config" if check == "config" or "[zmq]" in block.text else "unit file"
    if block.language == "python":
        page.python(block)
        return "pytest" if check == "pytest" else ("run in background" if block.options.get("background") else "run")
    if block.language in ("sh", "bash", "console"):
        if block.options.get("needs") == "broker":
            page.shell(block)
            return "run"
        return "commands checked" if check_shell(block) else "nothing to check"
    assert block.language in ("", "text"), f"{block}: a block of language {block.language!r} has no check"
    return "commands checked" if check_output(block) else "output shown"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs_as_pasted(path, tmp_path):
    page = Page(tmp_path)
    try:
        outcomes = [run_block(block, page) for block in blocks_of(path)]
    finally:
        page.close()
    assert all(outcomes)


def test_the_harness_reads_every_block():
    """The parser sees the blocks the pages have: an unclosed or misread fence fails here."""
    blocks = [block for page in PAGES for block in blocks_of(page)]
    fences = sum(len([l for l in page.read_text(encoding="utf-8").splitlines() if _FENCE.match(l) or l.strip() == "```"])
                 for page in PAGES)
    assert fences == 2 * len(blocks)
    assert {block.options.get("needs") for block in blocks} >= {"broker"}
    assert all(set(block.options) <= {"needs", "background", "check", "reason"} for block in blocks), \
        [str(b) for b in blocks if set(b.options) - {"needs", "background", "check", "reason"}]
