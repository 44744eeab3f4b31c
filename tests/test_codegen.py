"""The generator: reproducible output, --check, and clear errors for a malformed spec."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from codegen.__main__ import check, main
from codegen.render import GENERATED_PACKAGE as PROTOCOL
from codegen.render import render_all
from codegen.spec import SpecError, codec_contract, load, validate

from .conftest import ROOT

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
        # what the hand-written codec cannot follow
        (("envelope", "frames", 2, "name"), "topic", "envelope.frames: frame names must be ['service', 'dispatcher', 'keyword', 'direction', 'command', 'payload', 'identifier'] (the frames the codec reads, in any order), got ['service', 'dispatcher', 'topic',"),
        (("envelope", "frames", 2, "name"), "service", "envelope.frames: frame names must be ['service', 'dispatcher', 'keyword', 'direction', 'command', 'payload', 'identifier']"),
        (("envelope", "frames", 0, "encoding"), "ascii", "envelope.frames[0].encoding: 'ascii', but the codec reads the service frame as utf-8"),
        (("envelope", "frames", 3, "encoding"), "utf-8", "envelope.frames[3].encoding: 'utf-8', but the codec reads the direction frame as ascii"),
        (("envelope", "frames", 6, "encoding"), "utf-8", "envelope.frames[6].encoding: 'utf-8', but the codec reads the identifier frame as bytes"),
        (("envelope", "frames", 5, "encoding"), "latin-1", "envelope.frames[5].encoding: 'latin-1' is not an encoding"),
        (("envelope", "frames", 4, "blank"), False, "envelope.frames[4].blank: false, but the codec reads a blank command frame as None"),
        (("envelope", "frames", 3, "blank"), True, "envelope.frames[3].blank: true, but the codec refuses a blank direction frame"),
        (("envelope", "frames", 0, "fail"), True, "envelope.frames[0].fail: true, but the codec reads the service frame as text"),
        (("envelope", "frames", 3, "fail"), True, "envelope.frames[3].fail: true, but the codec reads the direction frame as text"),
        (("envelope", "rules", 1, "id"), "bad_utf8", "envelope.rules[1].id: 'bad_utf8' is not a rule the codec raises"),
        (("envelope", "rules", 1, "id"), "too_few_frames", "envelope.rules[1].id: 'too_few_frames' is listed twice"),
        (("envelope", "rules", 1), KeyError, "envelope.rules: missing 'invalid_utf8', a rule the codec raises"),
        (("kind_rules", 1), KeyError, "kind_rules: missing 'field_must_be_blank', a rule the codec raises"),
        (("kind_rules", 0, "id"), "too_few_frames", "kind_rules[0].id: 'too_few_frames' is not a rule the codec raises"),
        (("envelope", "rules", 0, "reason"), "got {number}", "envelope.rules[0].reason: placeholder {number}, but the codec fills too_few_frames with {count}"),
        (("envelope", "rules", 3, "reason"), "{value}", "envelope.rules[3].reason: placeholder {value}, but the codec fills fail_not_allowed with no fields"),
        (("kind_rules", 0, "reason"), "{} needs it", "kind_rules[0].reason: placeholder {}, but the codec fills field_required with {kind}, {frame}"),
        (("envelope", "rules", 4, "frame"), "service", "envelope.rules[4].frame: 'service', but the codec raises keyword_without_service at the keyword frame"),
        (("envelope", "rules", 1, "frame"), "payload", "envelope.rules[1].frame: 'payload', but the codec raises invalid_utf8 at whichever frame breaks it"),
        (("sentinels", "fail", "byte"), 1, "sentinels.fail.byte: 1 is the blank sentinel's byte too"),
        (("kinds", "Er"), "error", "kinds.Er: 'Er' is not one ASCII letter"),
        (("endpoints", "\u00c9"), "elsewhere", "endpoints.\u00c9: '\u00c9' is not one ASCII letter"),
        (("timing", "EXPIRY_MULTIPLE", "value"), 0, "timing.EXPIRY_MULTIPLE.value: 0 is not a positive number"),
        (("timing", "expiry"), {"value": 5, "description": "x"}, "timing.expiry: a constant's name is an UPPER_CASE"),
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
    """Import the protocol package of ``spec`` as a package of its own: the modules codegen
    writes from it, and beside them the hand-written ones (the codec) as they are, which
    read the regenerated tables."""
    import importlib

    package = tmp_path / name
    package.mkdir()
    files = render_all(spec, SPEC)
    for rel, content in files.items():
        if rel.startswith(PROTOCOL + "/"):
            (package / rel.rsplit("/", 1)[1]).write_text(content, encoding="utf-8")
    hand_written = [path for path in sorted((ROOT / PROTOCOL).glob("*.py")) if f"{PROTOCOL}/{path.name}" not in files]
    assert "codec.py" in [path.name for path in hand_written]
    for path in hand_written:
        shutil.copy(path, package / path.name)
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def test_the_codec_is_written_by_hand_and_codegen_leaves_it_alone(root, spec):
    files = render_all(spec, SPEC)
    assert f"{PROTOCOL}/codec.py" not in files and f"{PROTOCOL}/tables.py" in files
    head = (root / PROTOCOL / "codec.py").read_text(encoding="utf-8").splitlines()[:3]
    assert not any("GENERATED" in line for line in head), head
    assert not (root / "codegen/templates/codec.py.j2").exists()


def test_what_the_codec_can_follow_is_read_from_the_codec_itself(root, tmp_path):
    """The codec states what it reads (READS, NEVER_BLANK, MAY_FAIL) and raises (each
    ``_refuse`` call) once, in codec.py; the spec checker reads that source, so a change
    there changes what a spec may say, with no second list to keep in step."""
    contract = codec_contract(root / PROTOCOL / "codec.py")
    assert contract["READS"]["identifier"] == "bytes" and contract["NEVER_BLANK"] == "direction"
    assert contract["RULES"]["kind_rules"] == {"field_required": ("kind", "frame"),
                                               "field_must_be_blank": ("kind", "frame")}
    assert contract["RULES"]["envelope.rules"]["too_few_frames"] == ("count",)
    assert contract["RULE_FRAMES"]["keyword_without_service"] == "keyword"
    source = (root / PROTOCOL / "codec.py").read_text(encoding="utf-8")
    changed = source.replace('"direction": "ascii"', '"direction": "utf-8"').replace(
        'raise _refuse(None, "too_few_frames", count=n)', 'raise _refuse(None, "too_short", count=n, at=0)')
    assert changed != source
    (tmp_path / "codec.py").write_text(changed, encoding="utf-8")
    other = codec_contract(tmp_path / "codec.py")
    assert other["READS"]["direction"] == "utf-8"
    assert "too_few_frames" not in other["RULES"]["envelope.rules"]
    assert other["RULES"]["envelope.rules"]["too_short"] == ("count", "at")


def test_a_spec_with_frames_in_another_order_gives_a_codec_that_follows_it(tmp_path, spec):
    """Frame positions come from the spec, not from the codec: swap keyword and command."""
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
    beat = gen.Message.new("DBP", service="S", dispatcher="d", command="heartbeat")
    assert gen.check_kind(beat).name == "heartbeat"  # the keyword it must leave blank is frame 4, not 2
    with pytest.raises(gen.RemoteProtocolError, match=r"frame 4 \(keyword\): heartbeat must have a blank keyword"):
        gen.check_kind(beat.replace(keyword="K"))


@pytest.mark.parametrize("shift", [1, 2, 3, 5])
def test_every_frame_is_read_and_written_where_the_spec_puts_it(tmp_path, spec, shift):
    """The envelope rotated by ``shift``: every field, reply, error and refusal follows it."""
    rotated = copy.deepcopy(spec)
    frames = rotated["envelope"]["frames"]
    frames[:] = frames[shift:] + frames[:shift]
    gen = _generated_package(tmp_path, rotated, f"rotated_codec_{shift}")
    names = [f["name"] for f in frames]
    at = {name: names.index(name) for name in names}
    assert gen.FRAME_NAMES == tuple(names) and gen.tables.FRAME_INDEX == at
    fields = {"service": "KTEST", "dispatcher": "disp1", "keyword": "VALUE", "command": "update", "payload": "12.5"}
    built = gen.Message.new("CDQ", **fields, identifier=b"0123", prefix=[b"peer", b""])
    wire = {**{name: text.encode() for name, text in fields.items()}, "direction": b"CDQ", "identifier": b"0123"}
    assert built.frames == tuple(wire[name] for name in names)
    message = gen.decode(gen.encode(built))
    assert {name: getattr(message, name) for name in fields} == fields and message.identifier == b"0123"
    assert (message.direction, message.prefix, message.service_key) == ("CDQ", (b"peer", b""), "KTEST")
    assert message.fields_text() == "|".join(wire[name].decode() for name in names if name != "identifier")
    answer = message.error("no", dispatcher="other")
    assert answer.is_error and not message.is_error and not answer.is_usable and message.is_usable
    assert (answer.frames[at["direction"]], answer.frames[at["payload"]], answer.frames[at["dispatcher"]]) \
        == (b"CDE", b"no", b"other")
    assert answer.frames[at["keyword"]] == b"VALUE" and answer.identifier == b"0123"
    for name, value, rule in (("direction", b"XYZ", "invalid_direction"), ("command", b"\xfe", "invalid_utf8"),
                              ("keyword", b"\x02", "fail_not_allowed")):
        bad = list(built.frames)
        bad[at[name]] = value
        with pytest.raises(gen.RemoteProtocolError, match=rf"^frame {at[name]} \({name}\): ") as info:
            gen.decode(bad)
        assert (info.value.frame, info.value.rule) == (name, rule)
        salvaged = gen.salvage(bad)
        assert salvaged is None if name == "direction" else salvaged.frames[at[name]] == b"\x01"
    orphans = list(built.frames)
    orphans[at["service"]] = b"\x01"
    with pytest.raises(gen.RemoteProtocolError, match=rf"^frame {at['keyword']} \(keyword\): a keyword needs"):
        gen.decode(orphans)
    salvaged = gen.salvage(orphans)
    assert (salvaged.keyword, salvaged.dispatcher, salvaged.command) == (None, None, "update")
    fail_payload = list(built.frames)
    fail_payload[at["payload"]] = b"\x02"
    assert gen.decode(fail_payload).payload is gen.FAIL
    built_cases = [case for case in json.loads(render_all(rotated, SPEC)["conformance/golden/valid.json"])["cases"]
                   if case["as_built"]]  # the others are frames written in the spec, in the real order
    assert built_cases
    for case in built_cases:
        decoded = gen.decode([bytes.fromhex(frame) for frame in case["frames"]])
        read = {name: getattr(decoded, name) for name in ("service", "dispatcher", "keyword", "command", "payload")}
        read.update(direction=decoded.direction, identifier=decoded.identifier.hex())
        if read["payload"] is gen.FAIL:
            read["payload"] = {"sentinel": "fail"}
        assert read == {name: case["decoded"][name] for name in read}, case["name"]


def test_which_frames_may_hold_the_fail_sentinel_comes_from_the_spec(tmp_path, spec):
    strict = copy.deepcopy(spec)
    for frame in strict["envelope"]["frames"]:
        if frame["name"] == "identifier":
            frame["fail"] = False
    gen = _generated_package(tmp_path, strict, "no_fail_identifier_codec")
    assert gen.FAIL_FRAMES == {"payload"}
    with pytest.raises(gen.RemoteProtocolError, match=r"^frame 6 \(identifier\): the fail sentinel"):
        gen.decode([b"S", b"d", b"K", b"CDQ", b"update", b"\x02", b"\x02"])
    with pytest.raises(gen.LocalProtocolError, match="identifier: the fail sentinel is only valid in the payload$"):
        gen.Message.new("CDQ", service="S", command="update", identifier=gen.FAIL)
    assert gen.decode([b"S", b"d", b"K", b"CDQ", b"update", b"\x02", b"id"]).payload is gen.FAIL


def test_the_timing_constants_come_from_the_spec_and_fill_the_texts(spec):
    """One number each, from the spec: the tables' constants, the configuration's texts and
    the reference page all say the same, and a changed spec changes every one."""
    from cauldron_proto import CONFIG_KEYS, DISPATCHER_LIVENESS, EXPIRY_MULTIPLE
    from codegen.render import render_all

    assert (EXPIRY_MULTIPLE, DISPATCHER_LIVENESS) == (spec["timing"]["EXPIRY_MULTIPLE"]["value"],
                                                      spec["timing"]["DISPATCHER_LIVENESS"]["value"])
    assert f"silent for {EXPIRY_MULTIPLE} T is expired" in CONFIG_KEYS["timeout"].description
    changed = _broken(spec, ("timing", "EXPIRY_MULTIPLE", "value"), 7)
    out = render_all(changed, "spec/protocol.yaml")
    assert "\nEXPIRY_MULTIPLE = 7\n" in out["src/cauldron_proto/protocol/tables.py"]
    assert "a dispatcher silent for 7 T is expired" in out["src/cauldron_proto/protocol/tables.py"]
    assert "| `EXPIRY_MULTIPLE` | 7 |" in out["docs/protocol.md"]
