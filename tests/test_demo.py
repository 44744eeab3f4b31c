"""cauldron-demo as a subprocess: it runs a broker, a dispatcher and a client, and exits 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(sys.executable).parent / "cauldron-demo"


def test_demo_reads_writes_monitors_and_exits_0():
    assert DEMO.exists(), "cauldron-demo is not installed (pip install -e .)"
    # CLOCK ticks every 0.5 s: 3 s gives several ticks even on a loaded machine.
    result = subprocess.run([str(DEMO), "--duration", "3"], capture_output=True, text=True, timeout=60)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.search(r"^broker +broker +tcp://127\.0\.0\.1:\d+$", out, re.M)
    assert "client     keywords() -> ['CLOCK', 'GREETING', 'TARGET']" in out
    assert "client     read GREETING -> 'hello from the demo dispatcher'" in out
    assert re.search(r"monitor .*  TARGET = 50\.0  \(primed\)", out)
    assert re.search(r"monitor .*  TARGET = 12\.5$", out, re.M)
    assert "client     write TARGET = 500 -> DispatcherError" in out and "outside 0..100 mm" in out
    assert "read NOSUCH -> UnknownKeywordError: DEMO has no keyword 'NOSUCH'" in out
    assert re.search(r"monitor .*  CLOCK = [1-9]\d*$", out, re.M), "no CLOCK tick was monitored"
    assert re.search(r"^done +\d+ values monitored", out, re.M)
