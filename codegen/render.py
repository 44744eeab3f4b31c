"""Render the spec into the generated files (code, golden fixtures, docs)."""

from __future__ import annotations

import json
import pprint
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
GENERATED_PACKAGE = "src/cauldron_proto/_generated"
GOLDEN = "conformance/golden"
FIXTURE_NOTE = (
    "GENERATED FILE: do not edit by hand. Generated from {spec} by `python -m codegen`. "
    "Frames are hex strings; decoded fields use null for blank and {{\"sentinel\": \"fail\"}} "
    "for the fail sentinel; identifiers are hex."
)


def _pyrepr(value) -> str:
    """A Python literal for a plain value, stable across runs."""
    return pprint.pformat(value, width=200, sort_dicts=False)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = _pyrepr
    return env


def _frame_list(spec: dict) -> list[dict]:
    return [dict(frame, index=i) for i, frame in enumerate(spec["envelope"]["frames"])]


def render_all(spec: dict, spec_path: str) -> dict[str, str]:
    """Every generated file: path relative to the repository root -> content."""
    env = _environment()
    blank = bytes([spec["sentinels"]["blank"]["byte"]])
    fail = bytes([spec["sentinels"]["fail"]["byte"]])
    context = {
        "spec": spec,
        "spec_path": spec_path,
        "frames": _frame_list(spec),
        "index": {frame["name"]: i for i, frame in enumerate(spec["envelope"]["frames"])},
        "directions": [p["code"] + k for p in spec["pairs"] for k in spec["kinds"]],
        "blank": blank,
        "fail": fail,
    }
    files = {
        f"{GENERATED_PACKAGE}/__init__.py": "init.py.j2",
        f"{GENERATED_PACKAGE}/protocol.py": "protocol.py.j2",
        f"{GENERATED_PACKAGE}/codec.py": "codec.py.j2",
        "docs/protocol.md": "protocol.md.j2",
    }
    out = {path: env.get_template(name).render(context) for path, name in files.items()}
    note = FIXTURE_NOTE.format(spec=spec_path)
    out[f"{GOLDEN}/valid.json"] = _dump({"note": note, "cases": _valid_cases(spec, blank, fail)})
    out[f"{GOLDEN}/invalid.json"] = _dump({"note": note, "cases": _invalid_cases(spec)})
    return out


def _dump(data) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _field_frame(value, blank: bytes, fail: bytes) -> bytes:
    if value is None:
        return blank
    if value == {"sentinel": "fail"}:
        return fail
    return str(value).encode("utf-8")


def _spec_frame(frame) -> bytes:
    """A frame written in the spec: text, or {hex: ...}."""
    if isinstance(frame, dict):
        return bytes.fromhex(frame["hex"])
    return frame.encode("utf-8")


def _valid_cases(spec: dict, blank: bytes, fail: bytes) -> list[dict]:
    cases = [{"name": name, "kind": name, "prefix": [], "example": m["example"]}
             for name, m in spec["messages"].items()]
    cases += spec["more_examples"]
    out = []
    for case in cases:
        kind = spec["messages"][case["kind"]]
        ex = case["example"]
        if "frames" in case:
            envelope = [_spec_frame(f) for f in case["frames"]]
        else:
            envelope = [
                _field_frame(ex["service"], blank, fail),
                _field_frame(ex["dispatcher"], blank, fail),
                _field_frame(ex["keyword"], blank, fail),
                kind["direction"].encode("ascii"),
                _field_frame(ex["command"], blank, fail),
                _field_frame(ex["payload"], blank, fail),
                bytes.fromhex(ex["identifier"]),
            ]
        prefix = [bytes.fromhex(p) for p in case["prefix"]]
        decoded = {k: ex[k] for k in ("service", "dispatcher", "keyword")}
        decoded.update(direction=kind["direction"], command=ex["command"], payload=ex["payload"],
                       identifier=ex["identifier"], prefix=case["prefix"])
        out.append({"name": case["name"], "kind": case["kind"], "as_built": "frames" not in case,
                    "frames": [f.hex() for f in prefix + envelope], "decoded": decoded})
    return out


def _invalid_cases(spec: dict) -> list[dict]:
    return [
        {"name": case["name"], "frames": [_spec_frame(f).hex() for f in case["frames"]],
         "rule": case["rule"], "frame": case["frame"]}
        for case in spec["invalid_examples"]
    ]
