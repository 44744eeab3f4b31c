"""The README documents every promise: console scripts, config keys, and the CI commands."""

from __future__ import annotations

import re
import tomllib

from cauldron_proto import CONFIG_KEYS

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_console_script_is_documented():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts, "pyproject declares no console scripts"
    missing = [name for name in scripts if f"`{name}" not in README and f"{name} " not in README]
    assert not missing, f"README does not document: {missing}"


def test_every_config_key_is_in_the_readme_table():
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", README, flags=re.MULTILINE))
    missing = sorted(set(CONFIG_KEYS) - rows)
    assert not missing, f"README's configuration table lacks: {missing}"


def test_quick_start_has_the_install_and_test_commands():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.DOTALL)
    assert any(b.startswith("python -m pip install -e . && ") for b in blocks)
    test_block = README.split("<!-- ci:test -->", 1)[1]
    assert re.match(r"\s*```sh\npython -m pip install -e '\.\[test\]' && python -m pytest\n```", test_block)
