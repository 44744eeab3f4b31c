"""Load and validate the protocol spec (spec/protocol.yaml).

Every problem is a :class:`SpecError` naming the spec file and the dotted path of the bad
entry, for example ``spec/protocol.yaml: messages.welcome.direction: 'XBQ' is not a
direction code``. Validation stops at the first problem.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path
from typing import Any

import yaml

FIELD_RULES = ("required", "blank", "optional")
ROUTED_FIELDS = ("service", "dispatcher", "keyword")
ENCODINGS = ("utf-8", "ascii", "bytes")
#: The hand-written envelope codec, whose statement of what it can follow this module reads.
CODEC = Path(__file__).resolve().parent.parent / "src" / "cauldron_proto" / "protocol" / "codec.py"


def codec_contract(path: Path = CODEC) -> dict[str, Any]:
    """What the codec at ``path`` can follow, read from its source (nothing is imported, so a
    stale or broken generated table cannot stop the check): ``READS`` (frame -> encoding),
    ``NEVER_BLANK``, ``MAY_FAIL``, and from its ``_refuse(frame, rule, **fields)`` calls
    ``RULES`` (section -> rule -> the fields it fills the reason with; calls inside
    ``check_kind`` are ``kind_rules``) and ``RULE_FRAMES`` (rule -> the frame it always names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in (
                "READS", "NEVER_BLANK", "MAY_FAIL"):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    rules: dict[str, dict[str, tuple[str, ...]]] = {"envelope.rules": {}, "kind_rules": {}}
    frames: dict[str, str] = {}
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        section = "kind_rules" if function.name == "check_kind" else "envelope.rules"
        for call in ast.walk(function):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "_refuse":
                at, rule = call.args[0], call.args[1].value
                rules[section][rule] = tuple(k.arg for k in call.keywords)
                if isinstance(at, ast.Constant) and at.value is not None:
                    frames[rule] = at.value
    return dict(found, RULES=rules, RULE_FRAMES=frames)


_CONTRACT = codec_contract()
CODEC_FRAMES, NEVER_BLANK, MAY_FAIL = _CONTRACT["READS"], _CONTRACT["NEVER_BLANK"], _CONTRACT["MAY_FAIL"]
CODEC_RULES, RULE_FRAMES = _CONTRACT["RULES"], _CONTRACT["RULE_FRAMES"]
EXAMPLE_KEYS = ("service", "dispatcher", "keyword", "command", "payload", "identifier")
TOP_LEVEL = (
    "protocol", "version", "sentinels", "envelope", "kind_rules", "prefix", "endpoints",
    "kinds", "pairs", "derivation", "commands", "payload_types", "ktl_types", "texts",
    "timing", "config", "messages", "keyword_commands", "more_examples", "invalid_examples", "recorded_examples",
)


class SpecError(Exception):
    """The spec is malformed: ``path`` names the file, ``entry`` the bad entry."""

    def __init__(self, path: str | Path, entry: str, reason: str):
        self.path, self.entry, self.reason = str(path), entry, reason
        super().__init__(f"{self.path}: {entry}: {reason}")


class _Checker:
    """Small helpers that raise SpecError with the current file name."""

    def __init__(self, path: str | Path):
        self.path = path

    def fail(self, entry: str, reason: str):
        raise SpecError(self.path, entry, reason)

    def mapping(self, value: Any, entry: str) -> dict:
        if not isinstance(value, dict):
            self.fail(entry, f"expected a mapping, got {type(value).__name__}")
        return value

    def sequence(self, value: Any, entry: str) -> list:
        if not isinstance(value, list):
            self.fail(entry, f"expected a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, entry: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(entry, f"expected a non-empty string, got {value!r}")
        return value

    def choice(self, value: Any, choices, entry: str, what: str):
        if value not in choices:
            self.fail(entry, f"{value!r} is not {what} (one of: {', '.join(map(str, choices))})")
        return value


def load(path: str | Path) -> dict:
    """Read and validate the spec at ``path``; return it as plain data."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(path, "(file)", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        raise SpecError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    validate(data, path)
    return data


def validate(data: Any, path: str | Path = "spec/protocol.yaml") -> None:
    """Check the whole spec; raise SpecError at the first bad entry."""
    c = _Checker(path)
    c.mapping(data, "(top level)")
    for key in TOP_LEVEL:
        if key not in data:
            c.fail(key, "missing section")
    for key in data:
        c.choice(key, TOP_LEVEL, key, "a known section")
    _check_envelope(c, data)
    directions = _check_directions(c, data)
    _check_commands_and_types(c, data)
    _check_texts(c, data)
    _check_timing(c, data)
    _check_config(c, data)
    _check_messages(c, data, directions)
    _check_keyword_commands(c, data)
    _check_more_examples(c, data)
    _check_invalid_examples(c, data)
    _check_recorded_examples(c, data)


def direction_codes(data: dict) -> list[str]:
    """The direction codes: every pair with every kind, in spec order."""
    return [pair["code"] + kind for pair in data["pairs"] for kind in data["kinds"]]


def _check_envelope(c: _Checker, data: dict) -> None:
    sentinels = c.mapping(data["sentinels"], "sentinels")
    for name in ("blank", "fail"):
        entry = c.mapping(sentinels.get(name), f"sentinels.{name}")
        byte = entry.get("byte")
        if not isinstance(byte, int) or not 0 <= byte <= 255:
            c.fail(f"sentinels.{name}.byte", f"{byte!r} is not a byte value")
    if sentinels["fail"]["byte"] == sentinels["blank"]["byte"]:
        c.fail("sentinels.fail.byte", f"{sentinels['fail']['byte']!r} is the blank sentinel's byte too: "
                                      "the codec could not tell blank from fail")
    env = c.mapping(data["envelope"], "envelope")
    frames = c.sequence(env.get("frames"), "envelope.frames")
    if env.get("size") != len(frames):
        c.fail("envelope.size", f"{env.get('size')!r} does not match the {len(frames)} frames listed")
    names = [c.text(c.mapping(f, f"envelope.frames[{i}]").get("name"), f"envelope.frames[{i}].name")
             for i, f in enumerate(frames)]
    if sorted(names) != sorted(CODEC_FRAMES):
        c.fail("envelope.frames", f"frame names must be {list(CODEC_FRAMES)} (the frames the codec reads, "
                                  f"in any order), got {names}")
    for i, (name, frame) in enumerate(zip(names, frames)):
        _check_codec_frame(c, name, frame, f"envelope.frames[{i}]")
    for section in CODEC_RULES:
        rules = data["envelope"]["rules"] if section == "envelope.rules" else data["kind_rules"]
        _check_rules(c, c.sequence(rules, section), section, names)


def _check_codec_frame(c: _Checker, name: str, frame: dict, where: str) -> None:
    """One envelope frame as the codec reads it: its encoding, and the sentinels it may hold."""
    encoding = c.choice(frame.get("encoding"), ENCODINGS, f"{where}.encoding", "an encoding")
    for flag in ("blank", "fail"):
        if not isinstance(frame.get(flag), bool):
            c.fail(f"{where}.{flag}", "expected true or false")
    if encoding != CODEC_FRAMES[name]:
        c.fail(f"{where}.encoding", f"{encoding!r}, but the codec reads the {name} frame as {CODEC_FRAMES[name]}")
    if name == NEVER_BLANK and frame["blank"]:
        c.fail(f"{where}.blank", f"true, but the codec refuses a blank {name} frame (it is no direction code)")
    if name != NEVER_BLANK and not frame["blank"]:
        c.fail(f"{where}.blank", f"false, but the codec reads a blank {name} frame as None (it cannot refuse it)")
    if frame["fail"] and name not in MAY_FAIL:
        c.fail(f"{where}.fail", f"true, but the codec reads the {name} frame as text, which cannot be the fail "
                                f"sentinel (only the {' and '.join(MAY_FAIL)} can)")


def _check_rules(c: _Checker, rules: list, section: str, names: list[str]) -> None:
    """A section of rules: exactly the rules the codec raises, their reasons filled with the
    fields it gives and each frame the one it names."""
    known = CODEC_RULES[section]
    seen = []
    for i, rule in enumerate(rules):
        where = f"{section}[{i}]"
        rule_id = c.choice(c.text(c.mapping(rule, where).get("id"), f"{where}.id"), list(known), f"{where}.id",
                           "a rule the codec raises")
        if rule_id in seen:
            c.fail(f"{where}.id", f"{rule_id!r} is listed twice")
        seen.append(rule_id)
        for field in _check_template(c, rule.get("reason"), f"{where}.reason"):
            if field not in known[rule_id]:
                filled = ", ".join(f"{{{f}}}" for f in known[rule_id]) or "no fields"
                c.fail(f"{where}.reason", f"placeholder {{{field}}}, but the codec fills {rule_id} with {filled}")
        if "frame" in rule:
            c.choice(rule["frame"], names, f"{where}.frame", "a frame name")
            if rule["frame"] != RULE_FRAMES.get(rule_id):
                at = RULE_FRAMES.get(rule_id)
                c.fail(f"{where}.frame", f"{rule['frame']!r}, but the codec raises {rule_id} at "
                                         + (f"the {at} frame" if at else "whichever frame breaks it"))
    missing = [rule_id for rule_id in known if rule_id not in seen]
    if missing:
        c.fail(section, f"missing {missing[0]!r}, a rule the codec raises")


def _check_directions(c: _Checker, data: dict) -> list[str]:
    endpoints = c.mapping(data["endpoints"], "endpoints")
    kinds = c.mapping(data["kinds"], "kinds")
    for section, letters in (("endpoints", endpoints), ("kinds", kinds)):
        for letter in letters:
            if not (isinstance(letter, str) and len(letter) == 1 and letter.isascii() and letter.isalpha()):
                c.fail(f"{section}.{letter}", f"{letter!r} is not one ASCII letter (a direction code is an ASCII frame)")
    for i, pair in enumerate(c.sequence(data["pairs"], "pairs")):
        code = c.text(c.mapping(pair, f"pairs[{i}]").get("code"), f"pairs[{i}].code")
        if len(code) != 2 or any(letter not in endpoints for letter in code):
            c.fail(f"pairs[{i}].code", f"{code!r} is not two endpoint letters ({', '.join(endpoints)})")
    derivation = c.mapping(data["derivation"], "derivation")
    for which in ("reply", "error"):
        table = c.mapping(derivation.get(which), f"derivation.{which}")
        for kind in kinds:
            c.choice(table.get(kind), list(kinds), f"derivation.{which}.{kind}", "a kind letter")
    return direction_codes(data)


def _check_timing(c: _Checker, data: dict) -> None:
    """Named numbers: an UPPER_CASE name, a positive number and a description each."""
    for name, entry in c.mapping(data["timing"], "timing").items():
        if not (isinstance(name, str) and name.isidentifier() and name.isupper()):
            c.fail(f"timing.{name}", "a constant's name is an UPPER_CASE identifier")
        value = c.mapping(entry, f"timing.{name}").get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            c.fail(f"timing.{name}.value", f"{value!r} is not a positive number")
        c.text(entry.get("description"), f"timing.{name}.description")


#: Payload formats the hand-written payloads module (protocol/payloads.py) reads, and the keys
#: each needs beside `description`.
PAYLOAD_FORMATS = {
    "text": (), "blank": (), "empty": (), "json": ("type",), "joined": ("separator",), "address": (),
    "choice": ("values",), "ktl_type": (), "decimal": ("digits",), "fail_or_text": (),
}


def _check_commands_and_types(c: _Checker, data: dict) -> None:
    for name, text in c.mapping(data["commands"], "commands").items():
        c.text(text, f"commands.{name}")
    for name, entry in c.mapping(data["payload_types"], "payload_types").items():
        where = f"payload_types.{name}"
        c.mapping(entry, where)
        c.text(entry.get("description"), f"{where}.description")
        fmt = c.choice(entry.get("format"), list(PAYLOAD_FORMATS), f"{where}.format", "a payload format")
        for key in PAYLOAD_FORMATS[fmt]:
            if key not in entry:
                c.fail(where, f"format {fmt} needs {key!r}")
        if fmt == "choice":
            values = c.mapping(entry["values"], f"{where}.values")
            if not values or not all(isinstance(k, str) and k for k in values):
                c.fail(f"{where}.values", "expected a mapping of non-empty texts to values")
        if fmt == "decimal" and not (isinstance(entry["digits"], int) and 0 <= entry["digits"] <= 9):
            c.fail(f"{where}.digits", f"{entry['digits']!r} is not a number of decimals (0 to 9)")
        if fmt == "joined":
            c.text(entry["separator"], f"{where}.separator")
        if fmt == "json":
            c.text(entry["type"], f"{where}.type")
    for i, name in enumerate(c.sequence(data["ktl_types"], "ktl_types")):
        c.text(name, f"ktl_types[{i}]")


def _check_template(c: _Checker, template: Any, entry: str) -> list[str]:
    c.text(template, entry)
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        c.fail(entry, f"bad template {template!r}: {exc}")


def _check_texts(c: _Checker, data: dict) -> None:
    for name, entry in c.mapping(data["texts"], "texts").items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            c.fail(f"texts.{name}", "text names are lower_snake_case")
        c.mapping(entry, f"texts.{name}")
        for field in _check_template(c, entry.get("template"), f"texts.{name}.template"):
            if not re.fullmatch(r"[a-z_]+", field):
                c.fail(f"texts.{name}.template", f"placeholder {{{field}}} must be a plain name")
        c.choice(entry.get("sent_by"), ("broker", "dispatcher"), f"texts.{name}.sent_by", "a sender")


def _check_config(c: _Checker, data: dict) -> None:
    config = c.mapping(data["config"], "config")
    c.text(config.get("section"), "config.section")
    for key, entry in c.mapping(config.get("keys"), "config.keys").items():
        entry = c.mapping(entry, f"config.keys.{key}")
        if not isinstance(entry.get("default"), str):
            c.fail(f"config.keys.{key}.default", "defaults are written as strings, as in the INI file")
        c.choice(entry.get("type"), ("address", "seconds", "boolean", "integer", "path", "host_port"),
                 f"config.keys.{key}.type", "a config type")


def _check_messages(c: _Checker, data: dict, directions: list[str]) -> None:
    messages = c.mapping(data["messages"], "messages")
    routes: dict[tuple[str, str], str] = {}
    for name, msg in messages.items():
        where = f"messages.{name}"
        c.mapping(msg, where)
        c.text(msg.get("summary"), f"{where}.summary")
        direction = msg.get("direction")
        if direction not in directions:
            c.fail(f"{where}.direction", f"{direction!r} is not a direction code")
        command = c.text(msg.get("command"), f"{where}.command")
        if command != "*":
            c.choice(command, list(data["commands"]), f"{where}.command", "a command in `commands`")
        if (direction, command) in routes:
            c.fail(where, f"{direction} {command} is already message kind {routes[direction, command]!r}")
        routes[direction, command] = name
        fields = c.mapping(msg.get("fields"), f"{where}.fields")
        for field in ROUTED_FIELDS:
            c.choice(fields.get(field), FIELD_RULES, f"{where}.fields.{field}", "a field rule")
        c.choice(msg.get("payload"), list(data["payload_types"]), f"{where}.payload", "a payload type")
        if "payload_text" in msg:
            c.choice(msg["payload_text"], list(data["texts"]), f"{where}.payload_text", "a text in `texts`")
        for link in ("replies", "errors"):
            for i, other in enumerate(c.sequence(msg.get(link, []), f"{where}.{link}")):
                c.choice(other, list(messages), f"{where}.{link}[{i}]", "a message kind")
        _check_example(c, msg, where)


def _check_example(c: _Checker, msg: dict, where: str) -> None:
    example = c.mapping(msg.get("example"), f"{where}.example")
    for key in EXAMPLE_KEYS:
        if key not in example:
            c.fail(f"{where}.example", f"missing {key!r}")
    for field in ROUTED_FIELDS:
        rule, value = msg["fields"][field], example[field]
        if rule == "required" and value is None:
            c.fail(f"{where}.example.{field}", "the field is required but the example leaves it blank")
        if rule == "blank" and value is not None:
            c.fail(f"{where}.example.{field}", "the field must be blank but the example fills it")
    if msg["command"] != "*" and example["command"] != msg["command"]:
        c.fail(f"{where}.example.command", f"{example['command']!r} is not {msg['command']!r}")
    if example["service"] is None and (example["keyword"] is not None or example["dispatcher"] is not None):
        c.fail(f"{where}.example", "a keyword or dispatcher needs a service")
    try:
        bytes.fromhex(str(example["identifier"]))
    except ValueError:
        c.fail(f"{where}.example.identifier", f"{example['identifier']!r} is not hex")
    payload = example["payload"]
    if isinstance(payload, dict) and payload != {"sentinel": "fail"}:
        c.fail(f"{where}.example.payload", f"{payload!r} is neither text, null nor {{sentinel: fail}}")
    if msg["payload"] == "blank" and payload is not None:
        c.fail(f"{where}.example.payload", "the payload type is blank but the example fills it")


def _check_keyword_commands(c: _Checker, data: dict) -> None:
    for name, entry in c.mapping(data["keyword_commands"], "keyword_commands").items():
        where = f"keyword_commands.{name}"
        c.choice(name, list(data["commands"]), where, "a command in `commands`")
        c.mapping(entry, where)
        c.choice(entry.get("keyword"), ("required", "optional"), f"{where}.keyword", "a field rule")
        for key in ("payload", "reply_payload"):
            c.choice(entry.get(key), list(data["payload_types"]), f"{where}.{key}", "a payload type")
        example = c.mapping(entry.get("example"), f"{where}.example")
        for key in ("keyword", "payload", "reply"):
            if key not in example:
                c.fail(f"{where}.example", f"missing {key!r}")


def _check_frames(c: _Checker, frames: Any, where: str) -> None:
    for j, frame in enumerate(c.sequence(frames, where)):
        if isinstance(frame, dict):
            try:
                bytes.fromhex(str(frame.get("hex")))
            except ValueError:
                c.fail(f"{where}[{j}]", f"{frame!r} is not {{hex: ...}}")
        elif not isinstance(frame, str):
            c.fail(f"{where}[{j}]", f"{frame!r} is neither text nor {{hex: ...}}")


def _check_more_examples(c: _Checker, data: dict) -> None:
    for i, case in enumerate(c.sequence(data["more_examples"], "more_examples")):
        where = f"more_examples[{i}]"
        c.text(c.mapping(case, where).get("name"), f"{where}.name")
        kind = c.choice(case.get("kind"), list(data["messages"]), f"{where}.kind", "a message kind")
        for j, part in enumerate(c.sequence(case.get("prefix"), f"{where}.prefix")):
            try:
                bytes.fromhex(str(part))
            except ValueError:
                c.fail(f"{where}.prefix[{j}]", f"{part!r} is not hex")
        if "frames" in case:
            _check_frames(c, case["frames"], f"{where}.frames")
        _check_example(c, dict(data["messages"][kind], example=case.get("example")), where)


def _check_invalid_examples(c: _Checker, data: dict) -> None:
    rules = [r["id"] for r in data["envelope"]["rules"]]
    names = [f["name"] for f in data["envelope"]["frames"]]
    for i, case in enumerate(c.sequence(data["invalid_examples"], "invalid_examples")):
        where = f"invalid_examples[{i}]"
        c.text(c.mapping(case, where).get("name"), f"{where}.name")
        c.choice(case.get("rule"), rules, f"{where}.rule", "an envelope rule")
        if case.get("frame") is not None:
            c.choice(case["frame"], names, f"{where}.frame", "a frame name")
        _check_frames(c, case.get("frames"), f"{where}.frames")


def _check_recorded_examples(c: _Checker, data: dict) -> None:
    entry = c.mapping(data["recorded_examples"], "recorded_examples")
    for i, path in enumerate(c.sequence(entry.get("recordings"), "recorded_examples.recordings")):
        if not isinstance(path, str) or not path.endswith(".jsonl") or Path(path).is_absolute():
            c.fail(f"recorded_examples.recordings[{i}]", f"{path!r} is not a relative path to a .jsonl recording")
