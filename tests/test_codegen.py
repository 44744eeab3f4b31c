"""The generator: reproducible output, --check, and clear errors for a malformed spec."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys

import pytest
import yaml

from codegen.__main__ import check, main
from codegen.render import render_all
from codegen.spec import SpecError, load, validate

SPEC = "spec/protocol.yaml"


@pytest.fixture(scope="module")
def spec(root):
    return load(root / SPEC)


def test_regenerating_into_a_temporary_directory_reproduces_the_committed_files(root, tmp_path, spec):
    assert main(["--spec", str(root / SPEC), "--root", str(tmp_path)]) == 0
    files = render_all(spec, SPEC)
    assert files, "the generator wrote nothing"
    for rel in files:
        assert (tmp_path / rel).read_text(encoding="utf-8") == (root / rel).read_text(encoding="utf-8"), rel
    assert check(files, root) == []


def test_every_generated_file_says_do_not_edit(spec):
    for rel, content in render_all(spec, SPEC).items():
        assert "do not edit" in "\n".join(content.splitlines()[:3]), rel


def test_check_names_the_stale_file_line_and_the_fix(root, tmp_path, capsys):
    assert main(["--spec", str(root / SPEC), "--root", str(tmp_path)]) == 0
    target = tmp_path / "src/cauldron_proto/protocol/tables.py"
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[20] = "# edited by hand\n"
    target.write_text("".join(lines), encoding="utf-8")
    capsys.readouterr()
    assert main(["--check", "--spec", str(root / SPEC), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "src/cauldron_proto/protocol/tables.py:21:" in err
    assert "# edited by hand" in err
    assert "run `python -m codegen`" in err


def test_check_reports_a_missing_file(root, tmp_path, capsys):
    assert main(["--check", "--spec", str(root / SPEC), "--root", str(tmp_path)]) == 1
    assert "conformance/golden/valid.json: missing" in capsys.readouterr().err


def test_check_passes_on_the_repository_as_a_subprocess(root):
    result = subprocess.run([sys.executable, "-m", "codegen", "--check"], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "match" in result.stdout


def _broken(spec, path, value):
    data = copy.deepcopy(spec)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("messages", "welcome", "direction"), "XBQ", "messages.welcome.direction: 'XBQ' is not a direction code"),
        (("messages", "welcome", "command"), "greet", "messages.welcome.command: 'greet' is not a command"),
        (("messages", "welcome", "fields", "service"), "maybe", "messages.welcome.fields.service: 'maybe' is not a field rule"),
        (("messages", "welcome", "replies"), ["nonesuch"], "messages.welcome.replies[0]: 'nonesuch' is not a message kind"),
        (("messages", "welcome", "payload"), "blob", "messages.welcome.payload: 'blob' is not a payload type"),
        (("messages", "welcome", "example", "dispatcher"), None, "messages.welcome.example.dispatcher: the field is required"),
        (("messages", "ready", "command"), "welcome", "messages.ready: DBQ welcome is already message kind 'welcome'"),
        (("envelope", "size"), 6, "envelope.size: 6 does not match the 7 frames listed"),
        (("pairs", 0, "code"), "CX", "pairs[0].code: 'CX' is not two endpoint letters"),
        (("derivation", "reply", "Q"), "Z", "derivation.reply.Q: 'Z' is not a kind letter"),
        (("texts", "confirmed", "template"), "confirmed {", "texts.confirmed.template: bad template"),
        (("config", "keys", "timeout", "default"), 5, "config.keys.timeout.default: defaults are written as strings"),
        (("invalid_examples", 0, "rule"), "nope", "invalid_examples[0].rule: 'nope' is not an envelope rule"),
        (("sentinels", "blank", "byte"), 300, "sentinels.blank.byte: 300 is not a byte value"),
        (("keyword_commands",), KeyError, "keyword_commands: missing section"),
        (("payload_types", "units", "format"), "xml", "payload_types.units.format: 'xml' is not a payload format"),
        (("payload_types", "list", "separator"), KeyError, "payload_types.list: format joined needs 'separator'"),
        (("payload_types", "time", "digits"), "one", "payload_types.time.digits: 'one' is not a number of decimals"),
        (("payload_types", "yesno", "values"), {}, "payload_types.yesno.values: expected a mapping of non-empty texts"),
        (("recorded_examples", "recordings", 0), "/abs/x.jsonl", "recorded_examples.recordings[0]: '/abs/x.jsonl' is not a relative path"),
    ],
)
def test_malformed_spec_names_the_entry(spec, path, value, message):
    with pytest.raises(SpecError) as info:
        validate(_broken(spec, path, value), "spec/protocol.yaml")
    assert str(info.value).startswith("spec/protocol.yaml: " + message)


def test_malformed_spec_on_the_command_line_is_one_clear_line(root, tmp_path, spec):
    bad = tmp_path / "protocol.yaml"
    bad.write_text(yaml.safe_dump(_broken(spec, ("messages", "welcome", "direction"), "XBQ")), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "codegen", "--spec", str(bad), "--root", str(tmp_path)],
                            cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"codegen: {bad}: messages.welcome.direction: 'XBQ' is not a direction code"
    assert "Traceback" not in result.stderr


def test_invalid_yaml_names_the_line(tmp_path):
    bad = tmp_path / "protocol.yaml"
    bad.write_text("protocol: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"protocol.yaml: line \d+: not valid YAML"):
        load(bad)


def test_missing_spec_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_spec_change_changes_the_codec(root, tmp_path, spec):
    """The codec really comes from the spec: a new text appears in the generated module."""
    data = copy.deepcopy(spec)
    data["texts"]["gone_fishing"] = {"template": "Gone fishing", "sent_by": "broker", "use": "test"}
    shutil.copy(root / SPEC, tmp_path / "orig.yaml")
    files = render_all(data, SPEC)
    assert "GONE_FISHING = 'Gone fishing'" in files["src/cauldron_proto/protocol/tables.py"]
    assert "`gone_fishing`" in files["docs/protocol.md"]


def _generated_package(tmp_path, spec, name):
    """Import the codec generated from ``spec`` as a package of its own."""
    import importlib

    package = tmp_path / name
    package.mkdir()
    for rel, content in render_all(spec, SPEC).items():
        if rel.startswith("src/cauldron_proto/protocol/"):
            (package / rel.rsplit("/", 1)[1]).write_text(content, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def test_a_spec_with_frames_in_another_order_gives_a_codec_that_follows_it(tmp_path, spec):
    """Frame positions come from the spec, not from the template: swap keyword and command."""
    swapped = copy.deepcopy(spec)
    frames = swapped["envelope"]["frames"]
    frames[2], frames[4] = frames[4], frames[2]
    gen = _generated_package(tmp_path, swapped, "swapped_codec")
    assert gen.FRAME_NAMES == ("service", "dispatcher", "command", "direction", "keyword", "payload", "identifier")
    built = gen.Message.new("CDQ", service="S", keyword="VALUE", command="update", payload="")
    assert built.frames[2] == b"update" and built.frames[4] == b"VALUE"
    again = gen.decode(list(built.frames))
    assert (again.keyword, again.command, again.keyword_key) == ("VALUE", "update", "VALUE")
    assert again.reply("42").frames[4] == b"VALUE" and again.with_dispatcher("d").dispatcher == "d"
    with pytest.raises(gen.RemoteProtocolError, match=r"frame 4 \(keyword\): invalid UTF-8") as info:
        gen.decode([b"S", b"d", b"update", b"CDQ", b"\xff", b"", b"id"])
    assert info.value.frame == "keyword"
    with pytest.raises(gen.RemoteProtocolError, match=r"frame 4 \(keyword\): a keyword needs a service"):
        gen.decode([b"\x01", b"\x01", b"update", b"CDQ", b"VALUE", b"", b"id"])
    assert gen.salvage([b"\x01", b"d", b"update", b"CDQ", b"VALUE", b"", b"id"]).frames[4] == b"\x01"
