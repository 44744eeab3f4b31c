"""The sessions the conformance cases were recorded from still run: record, convert, replay.

Each chosen session of ``conformance/recording_sessions`` plays its peers against our broker
through ``cauldron-record``; the recording becomes a draft case (``cauldron-record
--to-case``), and the draft, replayed against a fresh broker of ours, passes.
"""

from __future__ import annotations

import sys

import pytest

from cauldron_proto.conformance import Settings, run_suite
from cauldron_proto.conformance.to_case import convert_file

from .conftest import ROOT
from cauldron_proto.testing import broker_thread

sys.path.insert(0, str(ROOT / "conformance"))
from recording_sessions import SESSIONS, recording  # noqa: E402

#: Quick sessions of each kind: raw peers, fan-out, pub/sub, the helpers, malformed input,
#: and the two recorded for the existing dispatcher's stall (readmission, held names).
CHOSEN = ["inquiry-req", "query-routed-by-learned-keyword", "fanout-two-joined", "broadcast-relayed",
          "helpers-read-write", "malformed-cdb-to-router", "held-name-told-to-welcome"]
#: Sessions whose heartbeat messages are the point (the converter leaves heartbeats out otherwise).
KEEP_HEARTBEATS = {"held-name-told-to-welcome"}


@pytest.mark.parametrize("name", CHOSEN)
def test_a_session_records_converts_and_replays(name, tmp_path):
    play, timeout = SESSIONS[name]
    with recording(name, timeout, folder=tmp_path) as net:
        play(net)
    cases = tmp_path / "cases"
    cases.mkdir()
    draft = convert_file(tmp_path / f"{name}.jsonl", case_id=f"recorded.{name}", keep_heartbeats=name in KEEP_HEARTBEATS)
    (cases / f"{name}.yaml").write_text(draft, encoding="utf-8")
    with broker_thread("tcp", timeout=timeout) as broker:
        ends = broker.endpoints
        settings = Settings(router=ends["broker"], publish=ends["publish"], subscribe=ends["subscribe"],
                            lookup=broker.core.lookup_address, heartbeat_timeout=timeout)
        [result] = run_suite(settings, cases_dir=cases)
    assert result.status == "pass", (result.reason, result.expected, result.actual)


def test_every_session_is_known_and_the_chosen_exist():
    assert set(CHOSEN) <= set(SESSIONS) and len(SESSIONS) >= 40
