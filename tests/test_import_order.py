"""The package's modules import one another in one direction: each imports alone, and no
import, even one deferred into a function, closes a cycle.

A cycle that works today (one side imports the other inside a function) breaks as soon as
someone moves that import to the top, and hides which module is the lower one.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cauldron_proto"

#: Cycles left, each with why (sorted module names). The broker's sockets choose the Python
#: relay (which uses the sockets' helpers) inside ``BrokerSockets``; its caller is the serve
#: loop being rewritten, which will pass the relay in.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package ``module`` imports at run time (anywhere in it, but not
    under ``if TYPE_CHECKING:``); ``from . import x`` is the module ``x`` when there is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(branch.test) for stmt in branch.body for node in ast.walk(stmt)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names += [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    targets = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)
    return targets


def _cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_module_that_imports_it_back():
    modules = _modules()
    graph = {module: _imported(module, path, modules) for module, path in modules.items()}
    assert graph["cauldron_proto.broker.zmq_broker"] >= {"cauldron_proto.broker.launch"}  # the graph is read
    assert _cycles(graph) == KNOWN_CYCLES


def test_the_check_sees_a_cycle_through_a_deferred_import(tmp_path):
    """The rule can fail: a function-level import that closes a loop is a cycle."""
    (tmp_path / "a.py").write_text("from . import b\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("def f():\n    from .a import g\n", encoding="utf-8")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
                                   encoding="utf-8")
    modules = {f"pkg.{name}": tmp_path / f"{name}.py" for name in "abc"}
    graph = {module: _imported(module, path, modules) for module, path in modules.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": set()}
    assert _cycles(graph) == {("pkg.a", "pkg.b")}


#: Run in one fresh interpreter: import each module with no module of the package loaded
#: before it, and say which failed.
_EACH_ALONE = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "cauldron_proto" or m.startswith("cauldron_proto.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_each_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(name for name in _modules() if not name.endswith("__main__"))
    done = subprocess.run([sys.executable, "-c", _EACH_ALONE, json.dumps(names)], capture_output=True,
                          text=True, timeout=120, check=True)
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{name}:\n{text}" for name, text in failed.items())
