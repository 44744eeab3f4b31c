"""scripts/attack.py cannot rot: it lists its attacks, and runs one cheap attack with tiny
durations against a real cauldron-broker process (the long attacks stay out of CI)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "attack.py"


def run(*args: str, timeout: float = 50) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_list_names_every_attack_of_the_issue():
    listed = run("--list")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines()}
    assert {"routing-id-collision", "routing-id-guess", "huge-prefix-no-read", "big-broadcast-slow-subscriber",
            "subscription-flood", "identify-flood", "registration-flood", "name-takeover", "welcome-and-vanish",
            "broker-stall"} <= names


def test_one_short_attack_reports_every_figure(tmp_path):
    out = tmp_path / "attack.json"
    done = run("--attack", "mute-dispatcher-flood", "--baseline-seconds", "0.5", "--attack-seconds", "1",
               "--settle-seconds", "0.5", "--after-seconds", "0.5", "--read-timeout", "3", "--json", str(out))
    assert done.returncode in (0, 1), done.stderr
    result, = json.loads(out.read_text())["attacks"]
    assert "error" not in result, result
    assert result["broker"]["alive"] and result["attacker"]["sent"] > 0
    assert result["rss_mb"]["before"] > 0 and result["rss_mb"]["peak"] >= result["rss_mb"]["before"]
    alone = result["reads"]["alone"]
    assert alone["sent"] >= 5 and alone["answered"] == alone["sent"] and alone["p99_ms"] > 0
    assert result["reads"]["during"]["sent"] > 0 and result["reads"]["after"]["sent"] > 0
    assert (done.returncode == 1) == bool(result["missed"])
    assert done.stdout.splitlines()[2].startswith("| mute-dispatcher-flood | alive |")
