"""The package as released: its metadata (license, classifiers, one version), py.typed, and
``python -m cauldron_proto`` (the version and every command with what it does)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import cauldron_proto

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_license_file_is_the_license_the_metadata_names():
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PROJECT["project"]["license"] == {"text": "BSD-3-Clause"}
    assert license_text.startswith("BSD 3-Clause License\n")
    assert "Copyright (c) 2026, the cauldron_proto authors" in license_text
    assert "Neither the name of the copyright holder" in license_text  # the third clause


def test_classifiers_name_the_license_python_3_11_and_typing():
    classifiers = PROJECT["project"]["classifiers"]
    assert "License :: OSI Approved :: BSD License" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert PROJECT["project"]["requires-python"] == ">=3.11"
    assert PROJECT["project"]["authors"] and PROJECT["project"]["keywords"]


def test_the_version_is_written_once_in_pyproject():
    assert metadata.version("cauldron_proto") == PROJECT["project"]["version"] == cauldron_proto.__version__
    sources = [p for p in (ROOT / "src").rglob("*.py") if PROJECT["project"]["version"] in p.read_text("utf-8")]
    assert sources == []


def test_py_typed_is_package_data():
    assert (Path(cauldron_proto.__file__).parent / "py.typed").is_file()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"]["cauldron_proto"]
    assert PROJECT["tool"]["mypy"]["files"] == ["src"]


def test_python_m_cauldron_proto_prints_the_version_and_every_command():
    done = subprocess.run([sys.executable, "-m", "cauldron_proto"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT / "tests")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    first, header, *rows = done.stdout.splitlines()
    assert first.startswith(f"cauldron_proto {cauldron_proto.__version__} (Python 3.")
    assert header == "commands (each with --help and --version):"
    shown = dict(row.split(None, 1) for row in rows)
    assert sorted(shown) == sorted(PROJECT["project"]["scripts"])  # each console script, once, in order
    assert [row.split()[0] for row in rows] == sorted(shown)
    assert shown["cauldron-broker"] == "Run a Cauldron ZMQ broker in the foreground until SIGINT or SIGTERM."
    assert shown["cauldron-conformance"] == ("Replay the Cauldron ZMQ protocol conformance cases against a "
                                             "broker.")  # the aside in parentheses left out
    assert all(what.endswith(".") and "usage:" not in what for what in shown.values())
