"""Shared fixtures: the repository root and the golden codec fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def golden(name: str) -> list[dict]:
    return json.loads((ROOT / "conformance" / "golden" / name).read_text(encoding="utf-8"))["cases"]
