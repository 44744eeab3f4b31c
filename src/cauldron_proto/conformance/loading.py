"""Loading conformance cases: YAML files into :class:`~.case_format.Case` s, checked.

``load_case`` reads and validates one, ``load_cases`` a directory, in run order: ordinary
cases by id, then the cases that may crash a broker (``crash_risk: true``);
``parse_case`` takes YAML data already read. A case that breaks a rule fails here, with a
:class:`~.frames.CaseError` naming its file and the problem (:mod:`.validate`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import msgspec
import yaml

from .case_format import STEP_KINDS, Case, Step, Suite
from .frames import CaseError
from .validate import validate

__all__ = ["load_case", "load_cases", "parse_case", "default_cases_dir"]


def _step(raw: object, where: str) -> Step:
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: a step is a mapping, got {raw!r}")
    kinds = [key for key in raw if key in STEP_KINDS]
    if len(kinds) != 1:
        raise CaseError(f"{where}: a step has exactly one of {', '.join(STEP_KINDS)}")
    try:
        return msgspec.convert(raw, STEP_KINDS[kinds[0]])
    except msgspec.ValidationError as exc:
        raise CaseError(f"{where}: {exc}") from None


def parse_case(raw: object, source: str) -> Case:
    """A case from its YAML data, validated; errors name the source and the problem."""
    if not isinstance(raw, dict):
        raise CaseError(f"{source}: a case is a mapping")
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise CaseError(f"{source}: a case needs a list of steps")
    data = {**raw, "steps": [], "source": source}
    try:
        case = msgspec.convert(data, Case)
    except msgspec.ValidationError as exc:
        raise CaseError(f"{source}: {exc}") from None
    case = msgspec.structs.replace(case, steps=[_step(s, f"{source}: step {i + 1}") for i, s in enumerate(steps)])
    validate(case)
    return case


def load_case(path: str | Path) -> Case:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseError(f"{path}: not valid YAML: {exc}") from None
    return parse_case(raw, str(path))


def default_cases_dir() -> Path:
    """The cases shipped with the package (``cauldron_proto/conformance/cases``)."""
    return Path(str(resources.files("cauldron_proto.conformance") / "cases"))


def load_cases(directory: str | Path | None = None, suite: Suite = "broker") -> list[Case]:
    """Every ``*.yaml`` case of ``suite`` in a directory, in run order: the opening case
    first, crash-risk cases last. The packaged dispatcher suite is in ``cases/dispatcher``."""
    if directory is None:
        directory = default_cases_dir() / ("" if suite == "broker" else suite)
    cases = [case for case in (load_case(path) for path in sorted(Path(directory).glob("*.yaml")))
             if case.suite == suite]
    seen: dict[str, str] = {}
    for case in cases:
        if case.id in seen:
            raise CaseError(f"{case.source}: case id {case.id!r} already used by {seen[case.id]}")
        seen[case.id] = case.source or ""
    return sorted(cases, key=lambda c: (not c.opening, c.crash_risk, c.id))
