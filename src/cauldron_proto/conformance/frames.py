"""Frames in traces: how a case writes them, renders them and matches them.

A frame in a case is either a string or a small mapping (see ``conformance/README.md``):

- a string is UTF-8 text; ``${NAME}`` inserts variable NAME (its bytes), ``${NAME:lower}``
  and ``${NAME:upper}`` change its case, ``$$`` is a literal ``$``; the sentinels are the
  YAML escapes ``"\\x01"`` (blank) and ``"\\x02"`` (fail); ``""`` is the empty delimiter;
- ``{hex: "c328"}`` is binary;
- only in expectations: ``{bind: NAME}`` captures the frame into NAME (or, when NAME is
  already bound, requires the same bytes), ``{any: true}`` accepts any frame,
  ``{match: REGEX}`` accepts a frame the regular expression matches in full (``${NAME}``
  inside it stands for the variable's bytes, escaped), ``{one_of: [frame, ...]}`` accepts
  any of the alternatives, ``{json: true}`` accepts a frame that is a JSON document.
  ``match``, ``json`` and ``bind`` may be combined.

Rendering gives bytes; matching gives the new bindings or the reason it failed.
"""

from __future__ import annotations

import json as _json
import re

import msgspec

__all__ = ["FramePattern", "Frame", "Env", "render", "match_frame", "match_frames", "show",
           "show_spec", "names_used", "CaseError"]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::(lower|upper))?\}|\$\$")


class CaseError(ValueError):
    """A case that cannot be loaded or run as written (names the case and the problem)."""


class FramePattern(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A frame written as a mapping: binary, or a pattern an expected frame must match."""

    hex: str | None = None
    bind: str | None = None
    any: bool = False
    match: str | None = None
    json: bool = False
    one_of: list["str | FramePattern"] | None = None


Frame = str | FramePattern

Env = dict[str, bytes]


def _substitute(text: str, env: Env, *, escape: bool = False) -> bytes:
    out, pos = [], 0
    for found in _VARIABLE.finditer(text):
        out.append(text[pos:found.start()].encode("utf-8"))
        pos = found.end()
        if found.group(0) == "$$":
            out.append(b"\\$" if escape else b"$")
            continue
        name, change = found.group(1), found.group(2)
        if name not in env:
            raise CaseError(f"variable {name!r} is not bound here")
        value = env[name]
        if change:
            text_value = value.decode("utf-8", "surrogateescape")
            value = (text_value.lower() if change == "lower" else text_value.upper()).encode("utf-8", "surrogateescape")
        out.append(re.escape(value) if escape else value)
    out.append(text[pos:].encode("utf-8"))
    return b"".join(out)


def names_used(spec: Frame) -> set[str]:
    """Variables a frame spec reads (not the ones it binds)."""
    if isinstance(spec, str):
        return {m.group(1) for m in _VARIABLE.finditer(spec) if m.group(1)}
    names = set()
    if spec.match is not None:
        names |= names_used(spec.match)
    for alternative in spec.one_of or ():
        names |= names_used(alternative)
    return names


def render(spec: Frame, env: Env) -> bytes:
    """The bytes of a frame to send (patterns other than hex cannot be sent)."""
    if isinstance(spec, str):
        return _substitute(spec, env)
    if spec.hex is not None:
        return bytes.fromhex(spec.hex)
    if spec.bind is not None and spec.bind in env and spec.match is None and not spec.one_of:
        return env[spec.bind]
    raise CaseError(f"frame {show_spec(spec)} is a pattern; only text, hex or a bound variable can be sent")


def match_frame(spec: Frame, actual: bytes, env: Env) -> tuple[dict[str, bytes] | None, str]:
    """(new bindings, "") when ``actual`` matches ``spec``, else (None, reason)."""
    if isinstance(spec, str) or spec.hex is not None:
        want = render(spec, env)
        return ({}, "") if want == actual else (None, f"expected {show(want)}")
    if spec.one_of is not None:
        for alternative in spec.one_of:
            found, _ = match_frame(alternative, actual, env)
            if found is not None:
                return found, ""
        return None, "expected one of " + ", ".join(show_spec(a, env) for a in spec.one_of)
    if spec.match is not None:
        pattern = re.compile(_substitute(spec.match, env, escape=True), re.DOTALL)
        if pattern.fullmatch(actual) is None:
            return None, f"expected a frame matching /{spec.match}/"
    if spec.json:
        try:
            _json.loads(actual)
        except ValueError:
            return None, "expected a JSON document"
    if spec.bind is not None:
        if spec.bind in env:
            return ({}, "") if env[spec.bind] == actual else (None, f"expected ${{{spec.bind}}} = {show(env[spec.bind])}")
        return {spec.bind: actual}, ""
    return {}, ""


def match_frames(specs: list[Frame], actual: list[bytes], env: Env) -> tuple[dict[str, bytes] | None, str]:
    """Match a whole message: same number of frames, each matching; bindings flow left to right."""
    if len(specs) != len(actual):
        return None, f"expected {len(specs)} frames, got {len(actual)}"
    scope, bound = dict(env), {}
    for index, (spec, frame) in enumerate(zip(specs, actual)):
        found, reason = match_frame(spec, frame, scope)
        if found is None:
            return None, f"frame {index}: {reason}, got {show(frame)}"
        scope.update(found)
        bound.update(found)
    return bound, ""


def show(frame: bytes) -> str:
    """A frame as readable text: quoted text with escapes, or hex for binary."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + frame.hex()
    if sum(1 for ch in text if not ch.isprintable()) > max(1, len(text) // 4):
        return "hex:" + frame.hex()
    escaped = "".join(ch if ch.isprintable() and ch != '"' else _escape(ch) for ch in text)
    return f'"{escaped}"'


def _escape(ch: str) -> str:
    return '\\"' if ch == '"' else f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def show_spec(spec: Frame, env: Env | None = None) -> str:
    """A frame spec as readable text, rendered where its variables are known."""
    env = env or {}
    if isinstance(spec, str) or spec.hex is not None:
        try:
            return show(render(spec, env))
        except CaseError:
            return repr(spec) if isinstance(spec, str) else f"hex:{spec.hex}"
    if spec.one_of is not None:
        return "one of (" + ", ".join(show_spec(a, env) for a in spec.one_of) + ")"
    parts = []
    if spec.match is not None:
        parts.append(f"/{spec.match}/")
    if spec.json:
        parts.append("<JSON>")
    if spec.bind is not None:
        parts.append(show(env[spec.bind]) if spec.bind in env else f"<bind {spec.bind}>")
    return " ".join(parts) or "<any>"
