"""What may import what: the protocol layer and the I/O-free cores stay free of I/O.

Read from the source (no import), so a new import breaks this test before it breaks a user.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cauldron_proto"
IO = {"zmq", "asyncio", "threading", "socket", "subprocess", "multiprocessing", "selectors"}

#: layer -> (its modules, the modules of ours it may import, the libraries it may not import)
LAYERS = {
    "protocol": (["_generated/*.py", "kinds.py", "payloads.py"], {"_generated"}, IO | {"time"}),
    "routing core": (["routing/*.py"], {"_generated", "routing"}, IO | {"time"}),
    "dispatcher core": (["dispatcher/registration.py"], {"_generated", "kinds", "payloads"}, IO | {"time"}),
    "dispatcher handlers": (["dispatcher/handlers.py"], {"_generated", "ktl", "dispatcher"}, IO),
    "values": (["ktl.py"], {"_generated"}, IO | {"time"}),
    # configuration resolves `localhost` for the bind rule (socket.gethostbyname), nothing more
    "configuration": (["config.py"], {"_generated"}, (IO - {"socket"}) | {"time"}),
}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules of ours, other top-level modules) that ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(PACKAGE).parts[:-1]
    ours, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            others |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                ours.add(target[0] if target else (node.names[0].name if node.names else ""))
            elif node.module.split(".")[0] == "cauldron_proto":
                ours.add(node.module.split(".")[1] if "." in node.module else node.names[0].name)
            else:
                others.add(node.module.split(".")[0])
    return ours, others


@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_imports_only_what_it_may(layer):
    patterns, allowed, forbidden = LAYERS[layer]
    files = [f for pattern in patterns for f in PACKAGE.glob(pattern)]
    assert files, f"{layer}: no modules match {patterns}"
    for path in files:
        ours, others = _imports(path)
        assert ours <= allowed, f"{path.relative_to(PACKAGE)} imports {sorted(ours - allowed)} of ours"
        assert not others & forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(others & forbidden)}"


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The rule can fail: a core module importing zmq is caught."""
    fake = tmp_path / "routing"
    fake.mkdir()
    (fake / "bad.py").write_text("import zmq\nfrom .. import broker\n", encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    ours, others = _imports(fake / "bad.py")
    assert ours == {"broker"} and others == {"zmq"}
