"""Seed messages of every kind, and mutations of frame lists.

A seed is a valid message as a peer would send it to the broker's ROUTER (a DEALER's or
REQ's ``[b"", *envelope]``), built from a *template* number and a *variant* number (which
picks the service, dispatcher and keyword names from small sets, so that seeds meet each
other in the core: a welcome and a request name the same dispatcher often enough).

A mutation is ``(op, position, argument, data)``: small ints and a few bytes, so that any
source of randomness (hypothesis, atheris, ``random``) can produce it. :func:`mutate`
applies a list of them: flip a bit, replace, insert, delete or duplicate a frame, truncate
the list or a frame, swap frames, set the direction code, add or drop a delimiter, put a
sentinel or invalid UTF-8 in front of a frame, and so on.
"""

from __future__ import annotations

from typing import Callable, Sequence

from cauldron_proto import FAIL, MESSAGE_KINDS, Direction, Message, encode

__all__ = ["SERVICES", "SERVICE_FRAMES", "NAMES", "KEYWORDS", "POOL", "TEMPLATES", "seed", "mutate", "Mutation", "N_OPS"]

SERVICES = ("KTEST", "ktest", "OTHER", "\x01S")
#: How the service names are framed: the last is the text "\x01S" (a sentinel, then the text),
#: which a codec that re-encodes text would turn into the service "S".
SERVICE_FRAMES = (b"KTEST", b"ktest", b"OTHER", b"\x01\x01S")
NAMES = ("disp0", "disp1", "disp2")
KEYWORDS = ("VALUE", "value", "TEMP", "NOPE")
COMMANDS = ("update", "modify", "identify", "enumerate", "units", "bogus")

#: Frames a mutation puts in: delimiters, sentinels, names, commands, direction codes,
#: invalid UTF-8, something long.
POOL: tuple[bytes, ...] = (
    b"", b"\x01", b"\x02", b"\x01\x01", b"\x02\x01", b"\x02x", b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
    b"KTEST", b"ktest", b"OTHER", b"disp0", b"disp1", b"VALUE", b"welcome", b"ready", b"heartbeat",
    b"identify", b"update", b"lookup", b"locate", b"beat", b"C0", b"D0", b"\x00\x80\x00\x00\x01",
    *(code.encode() for code in Direction), b"CDX", b"cdq", b"Q", b"x" * 300,
)

Mutation = tuple[int, int, int, bytes]


def _names(variant: int) -> tuple[str, str, str, str]:
    return ("S" * (1 + variant % 4), NAMES[(variant // 4) % 3], KEYWORDS[(variant // 12) % 4],
            COMMANDS[(variant // 48) % len(COMMANDS)])


def _of_kind(kind_name: str) -> Callable[[int, bytes], Message]:
    """A template for one spec message kind: required fields filled, blank ones blank."""
    kind = MESSAGE_KINDS[kind_name]

    def build(variant: int, ident: bytes) -> Message:
        service, name, keyword, command = _names(variant)
        optional = variant % 2 == 0
        fields = {}
        for field, value in (("service", service), ("dispatcher", name), ("keyword", keyword)):
            rule = getattr(kind, field)
            fields[field] = value if rule == "required" or (rule == "optional" and optional) else None
        if fields["service"] is None:
            fields["dispatcher"] = fields["keyword"] = None
        payload = None if kind.payload == "blank" else (FAIL if kind.payload == "fail_or_text" and variant % 3 == 0
                                                        else f"p{variant}")
        return Message.new(kind.direction, command=kind.command or command, payload=payload,
                           identifier=ident, prefix=(b"",), **fields)

    return build


def _request(direction: str, *, named: bool, keyword: bool, command: str | None = None,
             payload: str | None = None) -> Callable[[int, bytes], Message]:
    """A template for a client's request, by dispatcher name and/or keyword."""

    def build(variant: int, ident: bytes) -> Message:
        service, name, kw, cmd = _names(variant)
        return Message.new(direction, service=service, dispatcher=name if named else None,
                           keyword=kw if keyword else None, command=command or cmd,
                           payload=kw if payload == "keyword" else payload, identifier=ident, prefix=(b"",))

    return build


#: Every spec message kind, then the requests that make the core route (again, more often).
TEMPLATES: tuple[Callable[[int, bytes], Message], ...] = (
    *(_of_kind(name) for name in MESSAGE_KINDS),
    _request("DBQ", named=True, keyword=False, command="welcome"),
    _request("DBQ", named=True, keyword=False, command="ready"),
    _request("DBQ", named=True, keyword=False, command="welcome"),
    _request("CDQ", named=True, keyword=True),
    _request("CDQ", named=False, keyword=True),
    _request("CDQ", named=True, keyword=True, command="modify", payload="7"),
    _request("CSQ", named=False, keyword=True, command="identify", payload="keyword"),
    _request("CSQ", named=False, keyword=False, command="enumerate"),
    _request("CBQ", named=False, keyword=False, command="locate"),
    _request("UBQ", named=False, keyword=False, command="check"),
)


def seed(template: int, variant: int, ident: bytes) -> list[bytes]:
    """The frames of seed ``template`` (any int: taken modulo) as a peer sends them."""
    frames = encode(TEMPLATES[template % len(TEMPLATES)](variant, ident))
    if frames[-7] != b"\x01":
        frames[-7] = SERVICE_FRAMES[variant % 4]
    return frames


def _at(frames: Sequence[bytes], position: int) -> int:
    return position % len(frames)


def _flip(frames: list[bytes], i: int, arg: int, data: bytes) -> None:
    frame = bytearray(frames[i])
    if frame:
        frame[arg % len(frame)] ^= 1 << ((arg >> 8) % 8)
    else:
        frame.append(arg & 0xFF)
    frames[i] = bytes(frame)


def _direction(frames: list[bytes], arg: int) -> None:
    codes = [code.encode() for code in Direction]
    if len(frames) >= 4:
        frames[-4] = codes[arg % len(codes)]


_OPS: tuple[Callable[[list[bytes], int, int, bytes], None], ...] = (
    _flip,
    lambda f, i, a, d: f.__setitem__(i, POOL[a % len(POOL)]),
    lambda f, i, a, d: f.insert(i, POOL[a % len(POOL)]),
    lambda f, i, a, d: f.pop(i),
    lambda f, i, a, d: f.__delitem__(slice(a % (len(f) + 1), None)),  # keep the first frames
    lambda f, i, a, d: f.__delitem__(slice(0, a % (len(f) + 1))),  # drop the first frames
    lambda f, i, a, d: f.__setitem__(i, f[i][: a % (len(f[i]) + 1)]),
    lambda f, i, a, d: f.insert(i, f[i]),
    lambda f, i, a, d: f.__setitem__(slice(None), _swapped(f, i, a)),
    lambda f, i, a, d: f.__setitem__(i, bytes(d)),
    lambda f, i, a, d: f.__setitem__(i, (b"\x01", b"\x02")[a % 2] + f[i]),
    lambda f, i, a, d: f.__setitem__(i, f[i] + (b"\xff", b"\xc3", b"\x80", b"\x00")[a % 4]),
    lambda f, i, a, d: f.__setitem__(i, f[i] + bytes(d)),
    lambda f, i, a, d: _direction(f, a),
    lambda f, i, a, d: f.insert(0, b"") if a % 2 else (f.pop(0) if f and f[0] == b"" else None),
    lambda f, i, a, d: f.insert(0, POOL[a % len(POOL)]),
)
N_OPS = len(_OPS)


def _swapped(frames: list[bytes], i: int, arg: int) -> list[bytes]:
    j = arg % len(frames)
    out = list(frames)
    out[i], out[j] = out[j], out[i]
    return out


def mutate(frames: Sequence[bytes], mutations: Sequence[Mutation]) -> list[bytes]:
    """``frames`` with ``mutations`` applied in order (each ``(op, position, argument, data)``)."""
    out = list(frames)
    for op, position, argument, data in mutations:
        if not out:
            out.append(bytes(data))
            continue
        _OPS[op % N_OPS](out, _at(out, position), argument, data)
    return out
