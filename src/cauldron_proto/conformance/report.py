"""Reporting conformance results: a table for people, JSON and JUnit XML for tools.

``failed(results, strict)`` is the rule for the exit status: a MUST case that did not pass
(fail, timeout or error) fails the run; with ``strict``, any case that did not pass or skip.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable

import msgspec

from .engine import Result, Settings

__all__ = ["row", "details", "summary", "by_level", "failed", "is_failure", "to_json", "to_junit"]

_BAD = ("fail", "timeout", "error")


def is_failure(result: Result, strict: bool) -> bool:
    return result.status in _BAD and (strict or result.level == "MUST")


def failed(results: Iterable[Result], strict: bool) -> bool:
    return any(is_failure(r, strict) for r in results)


def row(result: Result, width: int = 44) -> str:
    """One table line: status, level, id, time and the reason."""
    reason = f"  {result.reason}" if result.reason else ""
    if result.defect:
        reason += f"  [known defect: {result.defect}]"
    return f"{result.status.upper():<8} {result.level:<6} {result.id:<{width}} {result.seconds:6.2f}s{reason}"


def details(result: Result) -> str:
    """Expected and actual frames and the wire log of a case that did not pass."""
    lines = [f"--- {result.id} ({result.level}, {result.status}"
             + (f" at step {result.step}" if result.step else "") + f"): {result.reason}"]
    if result.defect:
        lines.append(f"  known defect: {result.defect}")
    if result.expected is not None:
        if not result.expected:
            lines.append("  expected: nothing")
        for index, alternative in enumerate(result.expected):
            label = "expected:" if index == 0 else "      or:"
            lines.append(f"  {label} [{', '.join(alternative)}]")
    if result.actual is not None:
        lines.append(f"  actual:   [{', '.join(result.actual)}]")
    if result.wire:
        lines.append("  wire log (seconds, peer, event, frames):")
        for event in result.wire:
            lines.append(f"    {event.t:7.3f} {event.peer:<12} {event.what:<5} [{', '.join(event.frames)}]")
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    counts: Counter[str] = Counter(r.status for r in results)
    text = ", ".join(f"{counts[s]} {label}" for s, label in
                     (("pass", "passed"), ("fail", "failed"), ("timeout", "timed out"),
                      ("error", "errors"), ("skipped", "skipped")) if counts[s] or s in ("pass", "fail"))
    known = sum(1 for r in results if r.defect)
    return text + (f" ({known} of them known defects)" if known else "")


def by_level(results: list[Result]) -> dict[str, dict[str, int]]:
    """Counts of passed, not passed (failed, timed out, errors) and skipped cases per level."""
    table: dict[str, dict[str, int]] = {}
    for r in results:
        counts = table.setdefault(r.level, {"passed": 0, "failed": 0, "skipped": 0, "known_defects": 0})
        key = "passed" if r.status == "pass" else "skipped" if r.status == "skipped" else "failed"
        counts[key] += 1
        counts["known_defects"] += bool(r.defect)
    return table


def to_json(results: list[Result], settings: Settings) -> bytes:
    counts = Counter(r.status for r in results)
    return msgspec.json.format(msgspec.json.encode(
        {"settings": settings, "summary": dict(counts), "levels": by_level(results), "results": results}), indent=2)


def to_junit(results: list[Result]) -> bytes:
    counts = Counter(r.status for r in results)
    suite = ET.Element("testsuite", name="cauldron-conformance", tests=str(len(results)),
                       failures=str(counts["fail"] + counts["timeout"]), errors=str(counts["error"]),
                       skipped=str(counts["skipped"]), time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"conformance.{result.level}",
                             name=result.id, time=f"{result.seconds:.3f}")
        if result.status == "skipped":
            ET.SubElement(case, "skipped", message=result.reason)
        elif result.status in _BAD:
            tag = "error" if result.status == "error" else "failure"
            ET.SubElement(case, tag, message=result.reason, type=result.status).text = details(result)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
