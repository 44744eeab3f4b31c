"""Routing core: what a routed round trip (CDQ forwarded, CDP/CDE relayed) does besides the
frames it sends: counters, latency, aliases, learned owners, signs of life, and names written
behind a sentinel byte. These pin the hot path's behaviour, so that making it cheaper keeps it."""

from __future__ import annotations

from cauldron_proto import FAIL, Message, decode
from cauldron_proto.broker.core.latency import BOUNDS

from .core_harness import Harness, query

IDENT = bytes(range(16))


def frames_of(service: bytes, dispatcher: bytes, keyword: bytes, command: bytes, payload: bytes = b"\x01",
              identifier: bytes = IDENT) -> list[bytes]:
    """A CDQ's frames as a DEALER sends them, each envelope frame written by hand."""
    return [b"", service, dispatcher, keyword, b"CDQ", command, payload, identifier]


def test_a_round_trip_counts_its_messages_and_its_latency_per_service():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    stats = h.core.stats
    received, sent = stats.received, stats.sent
    for delay in (0.003, 0.0004, 20.0):  # the buckets of 0.005 and 0.0005, and +Inf
        q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
        [fwd] = h.send(b"C1", q)
        h.now += delay
        h.send(b"D1", d.answer(fwd, "42"), expect=[(b"C1", q.reply("42", dispatcher="disp1"))])
    assert (stats.received - received, stats.sent - sent) == (6, 6)
    latency = h.core.latencies.of("KTEST")
    expected = [0] * (len(BOUNDS) + 1)
    expected[BOUNDS.index(0.005)] = expected[BOUNDS.index(0.0005)] = expected[-1] = 1
    assert latency["counts"] == expected and latency["count"] == 3
    assert abs(latency["sum"] - 20.0034) < 1e-9
    assert h.core.latencies.of("OTHER") is None


def test_an_automatic_client_id_is_hidden_from_the_dispatcher_and_answered_at_itself():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    client = b"\x00\x00\x00\x00\x07"  # a ROUTER's automatic routing id
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(client, q)
    alias = fwd.message.prefix[1]
    assert fwd.message.prefix == (b"", alias, b"") and alias != client and len(alias) == 5 and alias[0] == 0
    h.send(b"D1", d.answer(fwd, "1"), expect=[(client, q.reply("1", dispatcher="disp1"))])
    chosen = b"client-1"  # an id the peer chose is its own alias
    q2 = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    h.send(chosen, q2, expect=[(b"D1", q2.with_prefix(b"", chosen, b""))])


def test_names_written_behind_a_sentinel_byte_route_and_teach_as_the_codec_reads_them():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    # service, dispatcher, keyword and command each behind one blank byte, which readers strip
    frames = frames_of(b"\x01ktest", b"\x01disp1", b"\x01value", b"\x01identify")
    [fwd] = h.send(b"C1", frames, expect=[(b"D1", decode(frames).with_prefix(b"", b"C1", b""))])
    h.send(b"D1", d.answer(fwd, "INTEGER", dispatcher=None), expect=[(b"C1", lambda m: m.payload == "INTEGER")])
    assert h.core.owners.owners == {"KTEST": {"VALUE": "disp1"}}
    assert h.core.owners.types == {"KTEST": {"VALUE": "INTEGER"}}  # an identify: its type cached
    by_keyword = frames_of(b"ktest", b"\x01", b"\x02Value", b"update", identifier=b"k" * 16)
    assert decode(by_keyword).keyword == "Value"
    h.send(b"C1", by_keyword, expect=[(b"D1", decode(by_keyword).with_dispatcher("disp1").with_prefix(
        b"", b"C1", b""))])
    # a dispatcher frame that only reads as blank (01 01) routes by keyword and is sent as it came
    read_blank = frames_of(b"KTEST", b"\x01\x01", b"VALUE", b"update", identifier=b"b" * 16)
    assert decode(read_blank).dispatcher is None
    h.send(b"C2", read_blank, expect=[(b"D1", decode(read_blank).with_prefix(b"", b"C2", b""))])


def test_a_reply_at_a_socket_holding_two_records_answers_the_first_with_the_request():
    h = Harness()
    d = h.dispatcher(b"D1", "ALPHA", "disp")
    h.dispatcher(b"D1", "BETA", "other")
    qa = query("CDQ", "ALPHA", dispatcher="disp", keyword="K", command="update", identifier=IDENT)
    qb = query("CDQ", "BETA", dispatcher="other", keyword="K", command="update", identifier=IDENT)
    [fb] = h.send(b"C1", qb)
    # the reply names no record: the socket's records are searched in registration order
    h.send(b"D1", d.answer(fb, "b", dispatcher="other"), expect=[(b"C1", {"payload": "b"})])
    assert h.core.owners.owners == {"BETA": {"K": "other"}}
    assert h.core.latencies.of("BETA")["count"] == 1 and h.core.latencies.of("ALPHA") is None
    [fa] = h.send(b"C1", qa)
    h.send(b"C1", qb)  # the same client and identifier at the other record of the same socket
    h.send(b"D1", d.answer(fb, "b2", dispatcher="other"), expect=[(b"C1", {"payload": "b2"})])
    alpha, beta = h.core.service("ALPHA").dispatchers["disp"], h.core.service("BETA").dispatchers["other"]
    assert (alpha.in_flight, beta.in_flight) == (0, 1)  # ALPHA's, registered first, was answered
    assert h.core.owners.owners == {"BETA": {"K": "other"}, "ALPHA": {"K": "disp"}}
    h.books_are_consistent()


def test_learning_a_known_owner_again_counts_nothing_and_a_new_owner_moves_the_count():
    h = Harness()
    h.core.limits = h.core.limits.replace(max_keywords_per_dispatcher=1)
    d1, d2 = h.dispatcher(b"D1", "KTEST", "disp1"), h.dispatcher(b"D2", "KTEST", "disp2")
    owners = h.core.owners

    def answered(d, keyword, payload="1", command="update", error=False):
        q = query("CDQ", "KTEST", dispatcher=d.name, keyword=keyword, command=command)
        [fwd] = h.send(b"C1", q)
        h.send(d.peer, d.answer(fwd, payload, error=error), expect=[(b"C1", {"identifier": q.identifier})])

    answered(d1, "A")
    answered(d1, "B")  # over max_keywords_per_dispatcher: relayed, not learned
    assert h.core.stats.limited == {"max_keywords_per_dispatcher": 1}
    for _ in range(3):
        answered(d1, "a")  # known, same owner: nothing more counted, no limit hit
    assert h.core.stats.limited == {"max_keywords_per_dispatcher": 1}
    assert owners.owners == {"KTEST": {"A": "disp1"}} and owners.counts == {"KTEST": {"disp1": 1}}
    answered(d1, "A", command="identify", payload="integer")  # a known owner's identify: its type cached
    assert owners.types == {"KTEST": {"A": "integer"}}
    for payload, error in ((FAIL, False), (None, False), ("no", True)):
        answered(d2, "A", payload=payload, error=error)  # unusable answers teach nothing
    assert owners.owners == {"KTEST": {"A": "disp1"}}
    answered(d2, "A")
    assert owners.owners == {"KTEST": {"A": "disp2"}} and owners.counts == {"KTEST": {"disp2": 1}}
    assert owners.total == 1 and owners.types == {"KTEST": {"A": "integer"}}
    h.books_are_consistent()


def test_replies_that_answer_nothing_are_dropped_by_reason_and_still_show_life():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="K", command="update")
    [fwd] = h.send(b"C1", q)
    reply = d.answer(fwd, "1")
    record = h.core.registry.get("KTEST", "disp1")
    h.now += 0.5
    h.send(b"D1", reply.with_prefix(b"", b"C9", b""), expect=[])  # another client: nothing in flight
    h.send(b"D1", reply.with_prefix(b"", b"C1"), expect=[])
    assert h.core.stats.dropped_by_reason == {"reply_to_nothing_in_flight": 1, "reply_without_client_prefix": 1}
    assert record.expire_at == h.now + 5.0 and record.next_beat_at == h.now + 1.0  # signs of life all the same
    h.send(b"D1", reply, expect=[(b"C1", q.reply("1", dispatcher="disp1"))])
    assert isinstance(reply, Message) and h.core.stats.dropped == 2
