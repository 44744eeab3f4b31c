"""Routing core properties: random input never breaks it, every request is answered once,
and its books stay bounded by what is registered and in flight."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from cauldron_proto import EXPIRY_MULTIPLE, Direction, encode

from .core_harness import Harness, query

PEERS = [b"C1", b"C2", b"D1", b"D2", b"D3", b""]
FRAME = st.one_of(
    st.sampled_from([b"", b"\x01", b"\x02", b"KTEST", b"ktest", b"OTHER", b"disp1", b"disp2", b"VALUE",
                     b"welcome", b"ready", b"heartbeat", b"lookup", b"locate", b"identify", b"update",
                     b"\xff\xfe", b"\x01\xff", b"C1", b"D1", *(d.encode() for d in Direction)]),
    st.binary(max_size=20),
)
WELCOME = st.builds(
    lambda peer, service, name, cmd: encode(query("DBQ", service, dispatcher=name, command=cmd)),
    st.sampled_from([b"D1", b"D2", b"D3"]), st.sampled_from(["KTEST", "ktest", "OTHER"]),
    st.sampled_from(["disp1", "disp2"]), st.sampled_from(["welcome", "ready"]))
STEP = st.one_of(
    st.tuples(st.just("frames"), st.sampled_from(PEERS), st.lists(FRAME, max_size=12)),
    st.tuples(st.just("frames"), st.sampled_from([b"D1", b"D2", b"D3"]), WELCOME),
    st.tuples(st.just("echo"), st.integers(0, 50), st.sampled_from([b"", b"\xff", b"\x02", b"x"])),
    st.tuples(st.just("advance"), st.floats(0.0, 3.0), st.just(None)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=40))
def test_random_frames_from_random_peers_never_break_the_core(steps):
    h = Harness(timeout=1.0, fanout_timeout=4.0)
    seen_by_dispatchers = []
    for kind, a, b in steps:
        if kind == "frames":
            sent = h.send(a, b)
        elif kind == "echo" and seen_by_dispatchers:
            # a dispatcher echoes (maybe mangled) something the core sent it
            to, frames = seen_by_dispatchers[a % len(seen_by_dispatchers)]
            sent = h.send(to, frames[:-2] + [b or frames[-2]] + frames[-1:])
        else:
            sent = h.advance(a or 0.0)
        seen_by_dispatchers += [(s.to, encode(s.message)) for s in sent if s.to.startswith(b"D")]
        h.books_are_consistent()
        assert "internal_error" not in h.core.stats.dropped_by_reason
    h.advance(EXPIRY_MULTIPLE * 1.0)  # everyone silent for EXPIRY_MULTIPLE T (and past every fan-out deadline)
    assert h.core.registry.services == {} and h.core.registry.by_peer == {} and h.core.requests.at == {}
    assert h.core.next_deadline() is None or h.core.tick(h.core.next_deadline()) == []


ACTION = st.one_of(
    st.tuples(st.just("welcome"), st.integers(0, 1), st.integers(0, 1)),  # dispatcher, socket generation
    st.tuples(st.just("ready"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("cdq"), st.integers(0, 2), st.integers(0, 2)),  # client, target (2: by keyword)
    st.tuples(st.just("csq"), st.integers(0, 2), st.integers(0, 1)),  # client, identify?
    st.tuples(st.just("answer"), st.integers(0, 1000), st.integers(0, 3)),  # which, how
    st.tuples(st.just("advance"), st.integers(0, 30), st.just(0)),  # tenths of a second
)


@settings(max_examples=250, deadline=None)
@given(st.lists(ACTION, max_size=60))
def test_every_request_gets_exactly_one_answer(actions):
    h = Harness(timeout=1.0, fanout_timeout=3.0)
    clients = [b"C0", b"C1", b"C2"]
    names = ["disp0", "disp1"]
    asked: Counter = Counter()
    answers: Counter = Counter()
    at_dispatchers: list = []
    shared_identifier = b"same-for-all-cli"  # clients may share identifiers; a client never reuses one

    def deliver(sent):
        for s in sent:
            if s.to in clients:
                answers[(s.to, s.message.identifier)] += 1
            elif s.message.direction in ("CDQ", "SDQ"):
                at_dispatchers.append(s)
            elif s.message.command == "heartbeat" and len(at_dispatchers) % 2:
                h.send(s.to, s.message.reply("now").with_prefix(b""))

    for n, (kind, a, b) in enumerate(actions):
        if kind == "welcome":
            deliver(h.send(f"D{a}.{b}".encode(), query("DBQ", "KTEST", dispatcher=names[a], command="welcome")))
        elif kind == "ready":
            for peer, records in list(h.core.registry.by_peer.items()):
                if ("KTEST", names[a]) in records:
                    deliver(h.send(peer, query("DBQ", "KTEST", dispatcher=names[a], command="ready")))
        elif kind in ("cdq", "csq"):
            client = clients[a]
            identifier = shared_identifier if (client, shared_identifier) not in asked else n.to_bytes(4, "big")
            if kind == "cdq":
                target = {"dispatcher": names[b]} if b < 2 else {}
                request = query("CDQ", "KTEST", keyword="VALUE", command="update", identifier=identifier, **target)
            else:
                request = query("CSQ", "KTEST", keyword="VALUE", command="identify" if b else "update",
                                payload="VALUE", identifier=identifier)
            asked[(client, identifier)] += 1
            deliver(h.send(client, request))
        elif kind == "answer" and at_dispatchers:
            s = at_dispatchers[a % len(at_dispatchers)]  # may answer the same request twice
            name = s.message.dispatcher or names[int(s.to[1:2])]
            payload = ["42", None, "integer", "err"][b]
            reply = s.message.error(payload, dispatcher=name) if b == 3 else s.message.reply(payload, dispatcher=name)
            deliver(h.send(s.to, reply))
        elif kind == "advance":
            deliver(h.advance(a / 10))
        h.books_are_consistent()
    deliver(h.advance(5.0))
    deliver(h.advance(5.0))
    assert answers == asked
    assert h.core.registry.services == {} and h.core.requests.at == {} and "internal_error" not in h.core.stats.dropped_by_reason


def test_audit_names_each_kind_of_inconsistency():
    """The audit the harness and the fuzzer rely on can fail: books broken by hand are reported."""
    h = Harness(timeout=1.0)
    d1 = h.dispatcher(b"D1", "KTEST", "disp1")
    h.dispatcher(b"D2", "KTEST", "disp2")
    assert h.core.audit() == []
    [fwd] = h.send(b"C1", query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update"))
    h.send(b"D1", d1.answer(fwd, "7"))  # teaches the owner of VALUE
    h.send(b"C2", query("CSQ", "KTEST", keyword="VALUE", command="update"))  # a fan-out to both
    h.send(b"C1", query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update"))
    registry, requests, fanouts = h.core.registry, h.core.requests, h.core.fanouts
    record = registry.get("KTEST", "disp1")
    del registry.by_peer[b"D1"]
    fanout = next(iter(fanouts.by_service["KTEST"].values()))
    requests.discard(registry.get("KTEST", "disp2"), fanout.key)
    h.core.owners.owners["GONE"] = {"X": "d"}
    problems = "\n".join(h.core.audit())
    assert "missing from its socket's index" in problems
    assert "fan-out copy at" in problems and "lost" in problems
    assert "learned owners of GONE" in problems
    registry.services["KTEST"].pop("disp1")
    assert f"requests kept in flight at {record}, which left" in "\n".join(h.core.audit())
