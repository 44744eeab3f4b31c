"""The existing Cauldron implementation's recorded traffic, as test data.

The recordings in ``conformance/recordings/reference/`` were made with ``cauldron-record``
between the existing client and dispatcher and the existing broker (nothing of ours on the
wire). ``ROUTER`` lines ``in`` are what a peer sent the broker, ``out`` what the broker sent
a peer; ``peer`` is the routing id the broker saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cauldron_proto import Direction, Kind, Message, decode

RECORDINGS = Path(__file__).resolve().parent.parent / "conformance" / "recordings" / "reference"
CLIENT_QUERIES = frozenset({Direction.CSQ, Direction.CDQ, Direction.CBQ, Direction.UBQ})
DISPATCHER_REPLIES = frozenset({Direction.CDP, Direction.CDE, Direction.SDP, Direction.SDE})


@dataclass(frozen=True)
class Recorded:
    source: str  #: recording file and line
    socket: str
    peer: str
    dir: str
    frames: tuple[bytes, ...]

    @property
    def message(self) -> Message:
        return decode(self.frames)

    @property
    def envelope(self) -> tuple[bytes, ...]:
        return self.frames[-7:]


@cache
def recording(name: str) -> tuple[Recorded, ...]:
    """Every message line of recording ``name`` (e.g. ``scenario-1-read``)."""
    lines = (RECORDINGS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for number, line in enumerate(lines, start=1):
        entry = json.loads(line)
        if len(entry.get("frames", ())) >= 7:
            out.append(Recorded(f"{name}:{number}", entry["socket"], entry.get("peer", ""), entry["dir"],
                                tuple(bytes.fromhex(f) for f in entry["frames"])))
    return tuple(out)


def router(name: str, direction: str, *directions: Direction) -> list[Recorded]:
    """The ROUTER messages of ``name`` going ``direction`` ("in"/"out") with these directions."""
    return [r for r in recording(name) if r.socket == "router" and r.dir == direction
            and r.message.direction in directions]


def client_exchanges(name: str) -> list[tuple[Recorded, Recorded]]:
    """Each client request of ``name`` with the broker's answer to it, in order."""
    answers = {(r.peer, r.message.identifier, r.message.direction.replace(r.message.direction[2], "Q")): r
               for r in router(name, "out", *Direction) if r.message.direction.kind in (Kind.REPLY, Kind.ERROR)}
    out = []
    for request in router(name, "in", *CLIENT_QUERIES):
        message = request.message
        answer = answers.get((request.peer, message.identifier, message.direction))
        if answer is not None:
            out.append((request, answer))
    return out


def dispatcher_reply_to(name: str, forwarded: Message) -> Recorded:
    """The existing dispatcher's recorded reply to the recorded request ``forwarded``."""
    for reply in router(name, "in", *DISPATCHER_REPLIES):
        if reply.message.identifier == forwarded.identifier:
            return reply
    raise LookupError(f"{name}: no dispatcher reply to {forwarded!r}")
