"""The fuzz entry points run (atheris if installed, else random inputs) and stop as told."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize("target", ["fuzz_core.py", "fuzz_codec.py"])
@pytest.mark.parametrize("mode", [(), ("--random", "-seed=1")])
def test_fuzz_entry_point_runs_for_a_set_number_of_inputs(tmp_path, target, mode):
    result = subprocess.run([sys.executable, str(ROOT / "fuzz" / target), *mode, "-runs=200", "-max_total_time=20"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*")), result.stderr[-2000:]
    if mode:
        assert "inputs" in result.stderr and "no failure" in result.stderr
