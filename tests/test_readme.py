"""The README and the site document every promise: console scripts, config keys, and the CI commands."""

from __future__ import annotations

import configparser
import importlib.util
import re
import tomllib

from cauldron_proto import CONFIG_KEYS

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGURATION_PAGE = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
TOOLS_PAGE = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")


def load_hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def console_scripts() -> list[str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts, "pyproject declares no console scripts"
    return list(scripts)


def test_every_console_script_is_documented():
    missing = [name for name in console_scripts() if f"`{name}" not in README and f"{name} " not in README]
    assert not missing, f"README does not document: {missing}"


def test_every_console_script_is_in_the_tools_table():
    rows = set(re.findall(r"^\| `(cauldron-[a-z]+)` \|", TOOLS_PAGE, flags=re.MULTILINE))
    missing = sorted(set(console_scripts()) - rows)
    assert not missing, f"docs/tools.md's table lacks: {missing}"


def test_every_config_key_is_in_the_configuration_page_table():
    hooks = load_hooks()
    assert hooks.CONFIG_KEYS_MARK in CONFIGURATION_PAGE, "docs/configuration.md lost the generated table's mark"
    page = CONFIGURATION_PAGE.replace(hooks.CONFIG_KEYS_MARK, hooks.config_table())
    rows = set(re.findall(r"^\| `([a-z_]+)` \| .+ \| .+ \|$", page, flags=re.MULTILINE))
    missing = sorted(set(CONFIG_KEYS) - rows)
    assert not missing, f"the configuration page's table lacks: {missing}"


def test_the_example_configuration_sets_every_key():
    example = CONFIGURATION_PAGE.split("## An example file", 1)[1]
    ini = re.search(r"```ini\n(.*?)```", example, flags=re.DOTALL).group(1)
    parser = configparser.ConfigParser()
    parser.read_string(ini)
    missing = sorted(set(CONFIG_KEYS) - set(parser["zmq"]))
    assert not missing, f"the example INI lacks: {missing}"


def test_quick_start_has_the_install_and_test_commands():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.DOTALL)
    assert any(b.startswith("python -m pip install -e . && ") for b in blocks)
    test_block = README.split("<!-- ci:test -->", 1)[1]
    assert re.match(r"\s*```sh\npython -m pip install -e '\.\[test\]' && python -m pytest\n```", test_block)
