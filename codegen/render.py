"""Render the spec into the generated files (tables as data, golden fixtures, docs).

The templates write data only: constants and tables that hand-written modules
(``protocol/codec.py``, ``payloads.py``, ``kinds.py``) read; no function bodies."""

from __future__ import annotations

import json
import pprint
import re
from pathlib import Path

import jinja2
import yaml

TEMPLATES = Path(__file__).parent / "templates"
#: Where the spec's relative paths (recordings) are found: the repository.
REPOSITORY = Path(__file__).resolve().parent.parent
GENERATED_PACKAGE = "src/cauldron_proto/protocol"
GOLDEN = "conformance/golden"
CASES = "src/cauldron_proto/conformance/cases"
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


def _timing_filled(spec: dict) -> dict:
    """The spec with ``{NAME}`` in configuration descriptions replaced by the value of timing
    constant NAME, so the texts and the constant cannot disagree."""
    values = {name: _number(entry["value"]) for name, entry in spec["timing"].items()}
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    keys = {name: dict(entry, description=pattern.sub(lambda m: values[m.group(1)], entry["description"]))
            for name, entry in spec["config"]["keys"].items()}
    return dict(spec, config=dict(spec["config"], keys=keys))


def _number(value) -> str:
    return f"{value:g}"


def render_all(spec: dict, spec_path: str) -> dict[str, str]:
    """Every generated file: path relative to the repository root -> content."""
    spec = _timing_filled(spec)
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
        "payload_python": {name: _payload_python(entry) for name, entry in spec["payload_types"].items()},
        "payload_formats": [_payload_format(name, entry) for name, entry in spec["payload_types"].items()],
    }
    files = {
        f"{GENERATED_PACKAGE}/__init__.py": "init.py.j2",
        f"{GENERATED_PACKAGE}/tables.py": "tables.py.j2",
        "docs/protocol.md": "protocol.md.j2",
    }
    out = {path: env.get_template(name).render(context) for path, name in files.items()}
    note = FIXTURE_NOTE.format(spec=spec_path)
    out[f"{GOLDEN}/valid.json"] = _dump({"note": note, "cases": _valid_cases(spec, blank, fail)})
    out[f"{GOLDEN}/invalid.json"] = _dump({"note": note, "cases": _invalid_cases(spec)})
    recorded_note = note + (" Every distinct message of the existing implementation's recordings named in the"
                            " spec's recorded_examples; `source` is the recording and its line.")
    out[f"{GOLDEN}/recorded.json"] = _dump({"note": recorded_note, "cases": _recorded_cases(spec, blank, fail)})
    for case in spec["invalid_examples"]:
        out[f"{CASES}/robust.spec-{case['name'].replace('_', '-')}.yaml"] = _robust_case(spec, spec_path, case)
    return out


def _payload_format(name: str, entry: dict) -> dict:
    """A payload type's row of ``PAYLOAD_FORMATS``: every field, absent ones None
    (``json_type`` is the spec's type expression, written as it is)."""
    return {"name": name, "format": entry["format"], "nullable": bool(entry.get("nullable")),
            "separator": entry.get("separator"), "values": entry.get("values"), "digits": entry.get("digits"),
            "json_type": entry.get("type", "None")}


def _payload_python(entry: dict) -> str:
    """The Python type a payload type's decoder gives (for the reference page)."""
    fmt = entry["format"]
    if fmt == "choice":
        kinds = sorted({type(v).__name__ for v in entry["values"].values()})
        return " | ".join(kinds)
    simple = {"text": "str | None" if entry.get("nullable") else "str", "blank": "None", "empty": "str",
              "joined": "list[str]", "address": "str", "ktl_type": "str | None", "decimal": "float",
              "fail_or_text": "str | FAIL"}
    return entry["type"] if fmt == "json" else simple[fmt]


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
            by_name = {name: _field_frame(ex[name], blank, fail)
                       for name in ("service", "dispatcher", "keyword", "command", "payload")}
            by_name.update(direction=kind["direction"].encode("ascii"), identifier=bytes.fromhex(ex["identifier"]))
            envelope = [by_name[frame["name"]] for frame in spec["envelope"]["frames"]]
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


def _read_field(frame: bytes, blank: bytes, fail: bytes):
    """A text field as the existing decoder reads it (stated independently of the codec):
    one leading blank byte stripped from a longer field, then one leading fail byte."""
    if len(frame) > 1 and frame[:1] == blank:
        frame = frame[1:]
    if len(frame) > 1 and frame[:1] == fail:
        frame = frame[1:]
    if frame == blank:
        return None
    if frame == fail:
        return {"sentinel": "fail"}
    return frame.decode("utf-8")


def _recorded_cases(spec: dict, blank: bytes, fail: bytes) -> list[dict]:
    """Each distinct message (prefix length and envelope, identifiers aside) of the recordings."""
    out, seen = [], set()
    for rel in spec["recorded_examples"]["recordings"]:
        lines = (REPOSITORY / rel).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            entry = json.loads(line)
            if len(entry.get("frames", ())) < 7:  # the header, and subscriptions on the XPUB
                continue
            frames = [bytes.fromhex(f) for f in entry["frames"]]
            prefix, envelope = frames[:-7], frames[-7:]
            key = (len(prefix), tuple(envelope[:6]))
            if key in seen:
                continue
            seen.add(key)
            names = ("service", "dispatcher", "keyword", "direction", "command", "payload")
            decoded = {name: _read_field(f, blank, fail) for name, f in zip(names, envelope)}
            decoded.update(identifier=envelope[6].hex(), prefix=[p.hex() for p in prefix])
            out.append({"source": f"{rel}:{number}", "socket": entry["socket"], "dir": entry["dir"],
                        "frames": [f.hex() for f in frames], "decoded": decoded})
    return out


def _case_frame(frame: bytes):
    """A frame as the conformance case format writes it: printable text as text, else hex."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": frame.hex()}
    return text if text.isprintable() else {"hex": frame.hex()}


def _robust_case(spec: dict, spec_path: str, example: dict) -> str:
    """A broker conformance case from one of the spec's invalid examples: a client sends the
    frames; any answer to them is an error reply naming the fault, or no answer at all; then
    the broker still answers an inquiry (it did not die, and answered nothing twice)."""
    frames = [_spec_frame(f) for f in example["frames"]]
    rule = next(r for r in spec["envelope"]["rules"] if r["id"] == example["rule"])
    where = "the message" if example["frame"] is None else f"frame {example['frame']}"
    steps = [{"send": "client", "frames": [""] + [_case_frame(f) for f in frames]},
             {"send": "client", "frames": ["", {"hex": "01"}, {"hex": "01"}, {"hex": "01"}, "UBQ", "check",
                                           {"hex": "01"}, "${ID}"]}]
    if len(frames) >= 7:
        def any_():
            return {"any": True}
        steps.append({
            "expect": "client",
            "frames": ["", any_(), any_(), any_(), {"match": "^..[EP]$"}, any_(), any_(), _case_frame(frames[-1])],
            "optional": True,
            "note": "one answer (an error reply, ours 'Malformed message: ...', or an answer that reads the "
                    "frames another way) or none; a second answer would not match the next step",
        })
    steps.append({"expect": "client", "frames": ["", {"hex": "01"}, {"hex": "01"}, {"hex": "01"}, "UBP", "check",
                                                 "Broker Alive", "${ID}"]})
    case = {
        "id": f"robust.spec-{example['name'].replace('_', '-')}",
        "description": (f"Frames every decoder must refuse ({where}: {re.sub(r'{[^}]*}', '...', rule['reason'])}) "
                        "sent to the ROUTER: "
                        "at most an answer to them, and the broker still answers an inquiry."),
        "level": "SHOULD",
        "defect": "existing Cauldron broker, PROTOCOL-NOTES 6.1: a malformed message kills the broker thread",
        "covers": ["malformed"],
        "crash_risk": True,
        "generated_from": f"{spec_path}: invalid_examples.{example['name']}",
        "vars": {"CLIENT_ID": {"random": "routing_id", "prefix": "client-"}, "ID": {"random": "identifier"}},
        "peers": {"client": {"socket": "DEALER", "role": "client", "routing_id": "${CLIENT_ID}"}},
        "steps": steps,
    }
    header = (f"# GENERATED FILE: do not edit by hand. Generated from {spec_path} (invalid_examples."
              f"{example['name']}) by `python -m codegen`.\n")
    return header + yaml.safe_dump(case, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
