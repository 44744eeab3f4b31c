"""Turning a recording (see :mod:`.recorder`) into a draft case for review.

- Router peers become peers named by what they first send (``dispatcher``, ``client``,
  ``inquirer``; numbered when there are several), as DEALER sockets (a REQ peer's frames at
  the ROUTER are the same; change the socket type when the case is about REQ), each with a
  fresh random routing id bound to ``<PEER>_ID``.
- Service and dispatcher names become random name variables (``SERVICE``, ``DISP``, ...),
  also inside other text frames (error texts name them); identifiers a peer sends become
  random identifier variables (``ID1``...); identifiers the broker makes up (heartbeats) are
  captured with ``{bind: ...}`` and reused; a payload equal to the recorded lookup address
  becomes ``${settings.lookup}``.
- Each message a peer sends is a ``send`` step (after a ``wait`` when the peers kept quiet
  for half a second or more before it); each message the broker delivers is an
  ``expect`` step whose deadline comes from the recorded delay: the default 2 s for a
  prompt answer, else a multiple of the heartbeat timeout T (when the recording names it)
  plus one second, else twice the delay plus one second.
- Heartbeat exchanges are left out unless asked for: the runner answers heartbeats for
  dispatcher peers, so a case does not depend on the broker's heartbeat period.
- Relay traffic: subscriptions a subscriber sent become its ``subscribe`` list, the
  subscriptions reaching the publisher become ``await_subscription`` steps, data becomes
  ``send`` (publisher) and ``expect`` (subscriber) steps.

The draft then needs a human: an id and description that say what the case checks, its
level, ``nothing`` steps where silence matters, and ``one_of`` where outcomes may differ.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from cauldron_proto import Direction, RemoteProtocolError, decode

from .recorder import read_recording

__all__ = ["recording_to_case", "dump_case", "convert_file", "recorded_name"]

_ROLE_BY_ORIGIN = {"D": "dispatcher", "S": "dispatcher", "C": "client", "U": "inquirer"}


class _Flow(list):
    """A list written in YAML flow style (``[a, b]``): frames read best on one line."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def dump_case(case: dict) -> str:
    return yaml.dump(case, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)


def _decoded(frames: list[bytes]):
    try:
        return decode(frames)
    except RemoteProtocolError:
        return None


class _Converter:
    def __init__(self, header: dict, events: list[dict], keep_heartbeats: bool):
        self.header, self.keep_heartbeats = header, keep_heartbeats
        self.events = [{**e, "frames": [bytes.fromhex(f) for f in e["frames"]]} for e in events]
        self.vars: dict[str, dict] = {}
        self.peers: dict[str, dict] = {}
        self.peer_by_id: dict[str, str] = {}
        self.values: dict[bytes, str] = {}     # exact frame bytes -> variable name
        self.bound: set[str] = set()
        self.names: list[tuple[str, str]] = []  # (text, replacement) inside text frames
        self.requires: set[str] = set()
        self.counts: dict[str, int] = {}

    def _number(self, base: str) -> str:
        self.counts[base] = self.counts.get(base, 0) + 1
        n = self.counts[base]
        return base if n == 1 else f"{base}{n}"

    def collect(self) -> None:
        services, dispatchers = {}, []
        asked_by: dict[bytes, str] = {}  # identifier -> the routing id (hex) of the peer that asked
        for event in self.events:
            message = _decoded(event["frames"])
            if message is not None and event["socket"] == "router":
                self._client_alias(event, message, asked_by)
            if event["socket"] == "router" and event["dir"] == "in" and event["peer"] not in self.peer_by_id:
                role = _ROLE_BY_ORIGIN.get(message.direction[0], "client") if message else "client"
                name = self._number(role)
                self.peer_by_id[event["peer"]] = name
                var = f"{name.upper()}_ID"
                self.vars[var] = {"random": "routing_id", "prefix": f"{name}-"}
                self.values[bytes.fromhex(event["peer"])] = var
                self.peers[name] = {"socket": "DEALER", "role": role, "routing_id": f"${{{var}}}"}
            if message is not None:
                if message.service and message.service.upper() not in services:
                    services[message.service.upper()] = message.service
                if message.dispatcher and message.dispatcher not in dispatchers:
                    dispatchers.append(message.dispatcher)
        for upper, written in services.items():
            var = self._number("SERVICE")
            self.vars[var] = {"random": "name", "prefix": f"{written}_"}
            self.names.append((written, f"${{{var}}}"))
            self.names += [(v, f"${{{var}:{change}}}") for v, change in ((upper, "upper"), (upper.lower(), "lower"))
                           if v != written]
        for written in dispatchers:
            var = self._number("DISP")
            self.vars[var] = {"random": "name", "prefix": f"{written}-"}
            self.names.append((written, f"${{{var}}}"))
        self.names.sort(key=lambda pair: -len(pair[0]))

    def _client_alias(self, event: dict, message, asked_by: dict[bytes, str]) -> None:
        """A request forwarded to a dispatcher names its client by the alias the broker gives
        it (cauldron_proto's broker hides automatic routing ids): the alias stands for the
        variable of the client that asked with the same identifier."""
        if event["dir"] == "in":
            asked_by.setdefault(message.identifier, event["peer"])
            return
        prefix = message.prefix
        if len(prefix) == 3 and not prefix[0] and not prefix[2] and prefix[1] not in self.values:
            client = asked_by.get(message.identifier)
            if client is not None and client in self.peer_by_id:
                self.values[prefix[1]] = f"{self.peer_by_id[client].upper()}_ID"

    def frame(self, data: bytes, *, last: bool, out: bool, command: str | None):
        if data in self.values:
            return f"${{{self.values[data]}}}"
        if last and len(data) > 1:
            if not out:
                var = self._number("ID")
                self.vars[var] = {"random": "identifier"}
                self.values[data] = var
                return f"${{{var}}}"
            var = self._number("BEAT" if command == "heartbeat" else "REPLY_ID")
            self.values[data] = var
            return {"bind": var}
        if self.header.get("lookup") and data == self.header["lookup"].encode():
            self.requires.add("lookup")
            return "${settings.lookup}"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": data.hex()}
        return self._substitute(text)

    def _substitute(self, text: str) -> str:
        text = text.replace("$", "$$")
        if not self.names or len(text) < 2:
            return text
        table = dict(self.names)
        pattern = re.compile("|".join(re.escape(name) for name, _ in self.names))
        return pattern.sub(lambda found: table[found.group(0)], text)

    def message(self, frames: list[bytes], out: bool) -> _Flow:
        decoded = _decoded(frames)
        command = decoded.command if decoded else None
        return _Flow(self.frame(f, last=(i == len(frames) - 1 and decoded is not None), out=out, command=command)
                     for i, f in enumerate(frames))

    def within(self, delay: float):
        timeout = self.header.get("heartbeat_timeout")
        if timeout and delay >= max(0.1, timeout / 2):
            self.requires.add("heartbeat_timeout")
            return f"{math.ceil(delay / timeout) + 1}T + 1"
        return None if delay < 0.5 else round(2 * delay + 1, 1)

    def pause(self, gap: float):
        """A ``wait`` for a quiet spell the peers kept on purpose (half a second or more)."""
        if gap < 0.5:
            return None
        timeout = self.header.get("heartbeat_timeout")
        if timeout and gap >= timeout:
            self.requires.add("heartbeat_timeout")
            return f"{math.floor(gap / timeout)}T"
        return round(gap, 1)

    def is_heartbeat(self, frames: list[bytes]) -> bool:
        message = _decoded(frames)
        return (message is not None and message.command == "heartbeat"
                and message.direction in (Direction.DBP, Direction.DBQ))

    def steps(self) -> list[dict]:
        steps, last_send, last_event = [], 0.0, 0.0
        for event in self.events:
            frames, side, out = event["frames"], event["socket"], event["dir"] == "out"
            if side == "router" and not self.keep_heartbeats and self.is_heartbeat(frames):
                continue
            if side == "router":
                peer = self.peer_by_id.get(event["peer"], "client")
                step = {"expect" if out else "send": peer, "frames": self.message(frames, out)}
            elif side == "subscribe" and not out:
                if frames and frames[0][:1] == b"\x01":
                    sub = self.peers.setdefault("subscriber", {"socket": "SUB", "role": "subscriber", "subscribe": []})
                    topic = self.frame(frames[0][1:], last=False, out=False, command=None)
                    if topic not in sub["subscribe"]:
                        sub["subscribe"].append(topic)
                continue
            elif side == "subscribe":
                self.peers.setdefault("subscriber", {"socket": "SUB", "role": "subscriber", "subscribe": []})
                step = {"expect": "subscriber", "frames": self.message(frames, True)}
            elif out:
                if not frames or frames[0][:1] != b"\x01":
                    continue
                self.peers.setdefault("publisher", {"socket": "PUB", "role": "publisher"})
                step = {"await_subscription": "publisher",
                        "topic": self.frame(frames[0][1:], last=False, out=False, command=None)}
            else:
                self.peers.setdefault("publisher", {"socket": "PUB", "role": "publisher"})
                step = {"send": "publisher", "frames": self.message(frames, False)}
            if "expect" in step:
                within = self.within(event["t"] - last_send)
                if within is not None:
                    step["within"] = within
            else:
                pause = self.pause(event["t"] - last_event)
                if pause is not None:
                    steps.append({"wait": pause})
                last_send = event["t"]
            last_event = event["t"]
            steps.append(step)
        return steps


def recording_to_case(header: dict, events: list[dict], *, case_id: str, description: str | None = None,
                      keep_heartbeats: bool = False, source: str | None = None) -> dict:
    """A draft case (plain data, ready for :func:`dump_case`) from a recording."""
    converter = _Converter(header, events, keep_heartbeats)
    converter.collect()
    steps = converter.steps()
    case: dict[str, Any] = {"id": case_id,
            "description": description or f"Recorded {header.get('started', '')}: say what this case checks.",
            "level": "MUST"}
    if converter.requires:
        case["requires"] = sorted(converter.requires)
    if source:
        case["recorded_from"] = source
    case |= {"vars": converter.vars, "peers": converter.peers, "steps": steps}
    return case


def recorded_name(recording: str | Path) -> str:
    """How a case names its recording: the path under ``recordings/`` (``reference/x.jsonl``),
    or the file name when the recording is elsewhere."""
    path = Path(recording).resolve()
    for parent in path.parents:
        if parent.name == "recordings":
            return path.relative_to(parent).as_posix()
    return path.name


def convert_file(recording: str | Path, *, case_id: str, description: str | None = None,
                 keep_heartbeats: bool = False) -> str:
    header, events = read_recording(recording)
    case = recording_to_case(header, events, case_id=case_id, description=description,
                             keep_heartbeats=keep_heartbeats, source=recorded_name(recording))
    return dump_case(case)
