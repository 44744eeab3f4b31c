"""Routing core: a client's question to a whole service (CSQ), merged, with deadline and cache."""

from __future__ import annotations

from cauldron_proto import FAIL, Text

from .core_harness import Harness, query


def fan(h: Harness, peers: list[bytes], request, client: bytes = b"C1"):
    copies = h.send(client, request, expect=[
        (peer, {"direction": "SDQ", "prefix": (b"", client, b""), "identifier": request.identifier,
                "service": request.service, "keyword": request.keyword, "command": request.command,
                "payload": request.payload})
        for peer in peers])
    return copies


def setup(n: int, **kwargs):
    h = Harness(**kwargs)
    peers = [f"D{i}".encode() for i in range(1, n + 1)]
    dispatchers = [h.dispatcher(p, "KTEST", f"disp{i}") for i, p in enumerate(peers, 1)]
    return h, peers, dispatchers


def test_no_dispatcher_for_the_service_gets_cse_and_no_record():
    h = Harness()
    q = query("CSQ", "nosuch", command="enumerate")
    h.send(b"C1", q, expect=[(b"C1", q.error("No dispatchers for 'nosuch'"))])
    assert len(h.core.services) == 0
    assert Text.NO_DISPATCHERS_FOR_SERVICE.format(service="nosuch") == "No dispatchers for 'nosuch'"


def test_one_usable_answer_is_that_payload_with_the_dispatcher_named():
    h, peers, ds = setup(2)
    q = query("CSQ", "KTEST", command="enumerate")
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, None), expect=[])  # blank: not usable
    h.send(b"D2", ds[1].answer(c2, "A:B"), expect=[(b"C1", q.reply("A:B", dispatcher="disp2"))])


def test_several_usable_answers_are_joined_with_colons_in_arrival_order():
    h, peers, ds = setup(3)
    q = query("CSQ", "KTEST", command="enumerate")
    c1, c2, c3 = fan(h, peers, q)
    h.send(b"D3", ds[2].answer(c3, "C"), expect=[])
    h.send(b"D2", ds[1].answer(c2, "Bad command!", error=True), expect=[])
    h.send(b"D1", ds[0].answer(c1, "A"), expect=[(b"C1", q.reply("C:A"))])
    assert h.core.stats.fanouts == 1 and h.core.service("KTEST").fanouts == 0


def test_no_usable_answer_is_csp_fail():
    h, peers, ds = setup(2)
    q = query("CSQ", "KTEST", keyword="X", command="identify", payload="X")
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, FAIL), expect=[])
    h.send(b"D2", ds[1].answer(c2, "nope", error=True), expect=[(b"C1", q.reply(FAIL))])


def test_fanout_deadline_answers_with_what_came_back():
    h, peers, ds = setup(2, timeout=100.0, fanout_timeout=10.0)
    q = query("CSQ", "KTEST", command="enumerate")
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, "A"), expect=[])
    assert h.core.next_deadline() == h.now + 10.0
    h.advance(9.9, expect=[])
    h.advance(0.1, expect=[(b"C1", q.reply("A", dispatcher="disp1"))])
    h.send(b"D2", ds[1].answer(c2, "B"), expect=[])  # too late: dropped
    assert h.core.stats.dropped_by_reason == {"reply_to_nothing_in_flight": 1}
    assert h.core.service("KTEST").dispatchers["disp2"].in_flight == 0


def test_fanout_deadline_with_no_answer_is_fail():
    h, peers, ds = setup(1, timeout=100.0, fanout_timeout=2.0)
    q = query("CSQ", "KTEST", command="enumerate")
    fan(h, peers, q)
    h.advance(2.0, expect=[(b"C1", q.reply(FAIL))])


def test_expiry_mid_fanout_counts_as_an_unusable_answer():
    h, peers, ds = setup(2, timeout=1.0)
    q = query("CSQ", "KTEST", command="enumerate")
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, "A"))
    for _ in range(4):  # D1 answers its heartbeats, D2 stays silent
        beats = h.advance(1.0)
        for beat in beats:
            if beat.to == b"D1":
                h.send(b"D1", ds[0].beat_answer(beat))
    sent = h.advance(1.0)
    assert [(s.to, s.message) for s in sent if s.to == b"C1"] == [(b"C1", q.reply("A", dispatcher="disp1"))]
    assert list(h.core.service("KTEST").dispatchers) == ["disp1"]


def test_replacement_mid_fanout_counts_as_an_unusable_answer():
    h, peers, ds = setup(2)
    q = query("CSQ", "KTEST", command="enumerate")
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, "A"))
    welcome = query("DBQ", "KTEST", dispatcher="disp2", command="welcome")
    [beat] = h.send(b"D2NEW", welcome, expect=[(b"D2", {"command": "heartbeat"})])  # the holder is checked
    h.unsent(beat, gone=True, expect=[(b"C1", q.reply("A", dispatcher="disp1")),  # its connection is closed
                                      (b"D2NEW", welcome.reply(Text.CONFIRMED))])
    h.send(b"D2", ds[1].answer(c2, "B"), expect=[])


def test_dispatcher_registering_mid_fanout_is_not_asked():
    h, peers, ds = setup(1)
    q = query("CSQ", "KTEST", command="enumerate")
    [c1] = fan(h, peers, q)
    h.dispatcher(b"D9", "KTEST", "late")
    h.send(b"D1", ds[0].answer(c1, "A"), expect=[(b"C1", q.reply("A", dispatcher="disp1"))])


def test_two_clients_fan_out_with_the_same_identifier():
    h, peers, ds = setup(1)
    ident = b"same-identifier!"
    q1 = query("CSQ", "KTEST", command="enumerate", identifier=ident)
    q2 = query("CSQ", "KTEST", command="enumerate", identifier=ident)
    [c1] = fan(h, peers, q1, b"C1")
    [c2] = fan(h, peers, q2, b"C2")
    h.send(b"D1", ds[0].answer(c2, "two"), expect=[(b"C2", q2.reply("two", dispatcher="disp1"))])
    h.send(b"D1", ds[0].answer(c1, "one"), expect=[(b"C1", q1.reply("one", dispatcher="disp1"))])


def test_the_same_fanout_again_while_in_flight_is_not_sent_twice():
    h, peers, ds = setup(1)
    q = query("CSQ", "KTEST", command="enumerate")
    [c1] = fan(h, peers, q)
    h.send(b"C1", q, expect=[])
    h.send(b"D1", ds[0].answer(c1, "A"), expect=[(b"C1", {"identifier": q.identifier})])
    h.send(b"D1", ds[0].answer(c1, "A"), expect=[])


def test_fanout_to_a_dispatcher_not_yet_ready():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1", ready=False)
    q = query("CSQ", "KTEST", command="enumerate")
    [c1] = fan(h, [b"D1"], q)
    h.send(b"D1", d.answer(c1, "A"), expect=[(b"C1", {"payload": "A"})])


def test_csq_with_a_blank_service_is_refused():
    h = Harness()
    q = query("CSQ", command="enumerate")
    [sent] = h.send(b"C1", q)
    assert sent.message.direction == "CSE" and sent.message.payload.startswith("Malformed message: ")


# -- the identify cache --------------------------------------------------------------------------

def identify(keyword: str = "VALUE"):
    return query("CSQ", "KTEST", keyword=keyword, command="identify", payload=keyword)


def test_identify_answer_is_cached_and_repeats_are_served_from_the_cache():
    h, peers, ds = setup(2)
    q = identify()
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, None))
    h.send(b"D2", ds[1].answer(c2, "integer"), expect=[(b"C1", q.reply("integer", dispatcher="disp2"))])
    view = h.core.service("KTEST")
    assert view.identify == {"VALUE": "integer"} and view.keywords == {"VALUE": "disp2"}
    again = query("CSQ", "ktest", keyword="value", command="identify", payload="value")
    h.send(b"C2", again, expect=[(b"C2", again.reply("integer", dispatcher="disp2"))])
    assert h.core.stats.cache_hits == 1
    # and the keyword now routes to its owner
    by_keyword = query("CDQ", "KTEST", keyword="VALUE", command="update")
    h.send(b"C3", by_keyword, expect=[(b"D2", by_keyword.with_dispatcher("disp2").with_prefix(b"", b"C3", b""))])


def test_identify_learned_from_a_routed_reply_is_cached_too():
    h, peers, ds = setup(1)
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="identify", payload="VALUE")
    [fwd] = h.send(b"C1", q)
    h.send(b"D1", ds[0].answer(fwd, "double"))
    again = identify()
    h.send(b"C1", again, expect=[(b"C1", again.reply("double", dispatcher="disp1"))])


def test_identify_with_several_claimants_is_not_cached():
    h, peers, ds = setup(2)
    q = identify()
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, "integer"))
    h.send(b"D2", ds[1].answer(c2, "string"), expect=[(b"C1", q.reply("integer:string"))])
    assert h.core.service("KTEST").identify == {}
    fan(h, peers, identify())


def test_identify_cache_is_not_served_for_an_expired_owner():
    h, peers, ds = setup(2, timeout=1.0)
    q = identify()
    c1, c2 = fan(h, peers, q)
    h.send(b"D1", ds[0].answer(c1, "integer"))
    h.send(b"D2", ds[1].answer(c2, None))
    for _ in range(5):  # D2 keeps answering its heartbeats; D1 is silent and expires
        for beat in h.advance(1.0):
            if beat.to == b"D2" and beat.message.command == "heartbeat":
                h.send(b"D2", ds[1].beat_answer(beat))
    assert list(h.core.service("KTEST").dispatchers) == ["disp2"]
    assert h.core.service("KTEST").identify == {}
    fan(h, [b"D2"], identify(), b"C2")


def test_fanout_skips_a_dispatcher_with_the_limit_in_flight():
    h, peers, ds = setup(2)
    h.core.max_in_flight = 1
    h.send(b"C9", query("CDQ", "KTEST", dispatcher="disp1", keyword="K", command="update"))  # fills disp1
    q = query("CSQ", "KTEST", command="enumerate")
    [c2] = fan(h, [b"D2"], q)
    h.send(b"D2", ds[1].answer(c2, "B"), expect=[(b"C1", q.reply("B", dispatcher="disp2"))])
    h.send(b"C9", query("CDQ", "KTEST", dispatcher="disp2", keyword="K", command="update"))  # fills disp2
    q2 = query("CSQ", "KTEST", command="enumerate")
    h.send(b"C1", q2, expect=[(b"C1", q2.reply(FAIL))])
