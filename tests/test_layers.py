"""What may import what: the protocol layer and the I/O-free cores stay free of I/O.

Read from the source (no import), so a new import breaks this test before it breaks a user.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cauldron_proto"
IO = {"zmq", "asyncio", "threading", "socket", "subprocess", "multiprocessing", "selectors"}

#: layer -> (its modules, the modules of ours it may import (a package stands for everything
#: in it), the libraries it may not import)
LAYERS = {
    "protocol": (["protocol/*.py"], {"protocol"}, IO | {"time"}),
    "broker core": (["broker/core/*.py"], {"protocol", "broker.core"}, IO | {"time"}),
    "broker package": (["broker/__init__.py"], {"_lazy", "broker.core"}, IO | {"time"}),
    "dispatcher core": (["dispatcher/core/*.py"], {"protocol", "ktl", "dispatcher.core"}, IO | {"time"}),
    # the keyword handle and the mapping both dispatchers share: the core, and no I/O of its own
    "dispatcher keywords": (["dispatcher/keyword.py"], {"dispatcher.core"}, IO | {"time"}),
    "dispatcher package": (["dispatcher/__init__.py"], {"_lazy", "dispatcher.core", "dispatcher.keyword"},
                           IO | {"time"}),
    "values": (["ktl.py"], {"protocol"}, IO | {"time"}),
    "client core": (["client/core.py"], {"protocol", "ktl", "client.errors"}, IO | {"time"}),
    # the asyncio helpers: the cores above (none of the threaded helpers' modules), the shared
    # settings and handshake watch, and no thread of their own
    "asyncio helpers": (["aio/*.py"], {"protocol", "client.core", "client.errors", "dispatcher.core",
                                       "dispatcher.keyword", "peer", "config", "aio", "security.handshake"},
                        {"threading", "multiprocessing", "subprocess"}),
    # configuration resolves host names for the bind rule and lists interfaces (socket), nothing more
    "configuration": (["config.py"], {"protocol"}, (IO - {"socket"}) | {"time"}),
    "the curve_dispatchers policy": (["security/policy.py"], {"config"}, IO - {"threading"}),
    # the helpers for users' tests: the broker and the protocol, no client or dispatcher helper
    # (which they test from outside) and no test framework
    "testing helpers": (["testing.py"], {"protocol", "broker", "processes"}, {"pytest", "_pytest", "multiprocessing"}),
}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules of ours, dotted below the package, e.g. ``broker.core``; other top-level
    modules) that ``path`` imports. ``from . import x`` counts as the module ``x`` of ``.``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = list(path.relative_to(PACKAGE).parts[:-1])
    ours, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            others |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module.split(".")[0] == "cauldron_proto":
                target = node.module.split(".")[1:]
            else:
                others.add(node.module.split(".")[0])
                continue
            if node.module is None or not target:
                ours |= {".".join(target + [alias.name]) for alias in node.names}
            else:
                ours.add(".".join(target))
    return ours, others


def _allowed(module: str, allowed: set[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_imports_only_what_it_may(layer):
    patterns, allowed, forbidden = LAYERS[layer]
    files = [f for pattern in patterns for f in PACKAGE.glob(pattern)]
    assert files, f"{layer}: no modules match {patterns}"
    for path in files:
        ours, others = _imports(path)
        extra = sorted(m for m in ours if not _allowed(m, allowed))
        assert not extra, f"{path.relative_to(PACKAGE)} imports {extra} of ours"
        assert not others & forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(others & forbidden)}"


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The rule can fail: a core module importing zmq is caught."""
    fake = tmp_path / "broker" / "core"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("import zmq\nfrom .. import zmq_broker\nfrom ...protocol import codec\n",
                                 encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    ours, others = _imports(fake / "bad.py")
    assert ours == {"broker.zmq_broker", "protocol"} and others == {"zmq"}
    assert not _allowed("broker.zmq_broker", {"protocol", "broker.core"})
