"""The fuzz entry points run (atheris if installed, else random inputs) and stop as told."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fuzz.runner import Target, replay

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


REGRESSIONS = ROOT / "fuzz" / "regressions"


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*/*")), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_an_input_that_once_failed_passes(path):
    """Each kept input failed the target of its folder once (fuzz_core: a dispatcher named by
    the frame 02 02, which no heartbeat could carry, stopped every timer of the tick)."""
    module = __import__(f"fuzz.fuzz_{path.parent.name}", fromlist=["make_target"])
    target = module.make_target()
    assert replay(target, [str(path)]) == 1 and target.inputs == 1


def test_the_kept_inputs_are_for_targets_that_exist():
    folders = {path.name for path in REGRESSIONS.iterdir()}
    assert folders and all((ROOT / "fuzz" / f"fuzz_{name}.py").is_file() for name in folders)


def test_replay_runs_each_file_once_and_names_the_one_that_fails(tmp_path, capsys):
    seen = []

    def one_input(data: bytes) -> int:
        seen.append(data)
        if data == b"bad":
            raise ValueError("bad input")
        return 1

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a").write_bytes(b"one")
    (corpus / "b").write_bytes(b"two")
    (tmp_path / "bad").write_bytes(b"bad")
    target = Target("t", one_input)
    assert replay(target, [str(corpus)]) == 2 and seen == [b"one", b"two"] and target.messages == 2
    assert "t: replayed 2 inputs, no failure" in capsys.readouterr().err
    with pytest.raises(ValueError, match="bad input"):
        replay(target, [str(tmp_path / "bad")])
    assert f"t: replaying {tmp_path / 'bad'} failed" in capsys.readouterr().err


def test_the_random_mode_replays_file_arguments_and_stops(tmp_path):
    kept = sorted((REGRESSIONS / "core").iterdir())
    result = subprocess.run([sys.executable, str(ROOT / "fuzz" / "fuzz_core.py"), "--random", *map(str, kept)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"fuzz_core: replayed {len(kept)} inputs, no failure" in result.stderr
    assert "random inputs, seed" not in result.stderr  # no random run after the replay
