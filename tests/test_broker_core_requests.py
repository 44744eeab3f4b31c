"""Routing core: client to one dispatcher (CDQ), replies, and exactly one answer per request."""

from __future__ import annotations

from cauldron_proto import Message, Text

from .core_harness import Harness, query

CLIENT_PREFIX = (b"", b"C1", b"")


def forwarded_to(peer: bytes, request, client: bytes = b"C1"):
    return (peer, request.with_prefix(b"", client, b""))


def test_query_by_dispatcher_name_is_forwarded_and_the_reply_relayed():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q, expect=[forwarded_to(b"D1", q)])
    reply = d.answer(fwd, "42")
    h.send(b"D1", reply, expect=[(b"C1", q.reply("42", dispatcher="disp1"))])
    assert h.core.service("KTEST").dispatchers["disp1"].in_flight == 0


def test_dispatcher_error_reply_is_relayed_unchanged():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="frob")
    [fwd] = h.send(b"C1", q)
    h.send(b"D1", d.answer(fwd, "Bad command 'frob'!", error=True),
           expect=[(b"C1", q.error("Bad command 'frob'!", dispatcher="disp1"))])


def test_unknown_dispatcher_name_gets_not_available():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "ktest", dispatcher="Disp1", keyword="VALUE", command="update")  # names are case-sensitive
    h.send(b"C1", q, expect=[(b"C1", q.error("Dispatcher 'Disp1' is not available for 'ktest'"))])


def test_unknown_service_gets_not_available_and_creates_no_record():
    h = Harness()
    q = query("CDQ", "NOSUCH", dispatcher="disp1", command="update")
    h.send(b"C1", q, expect=[(b"C1", q.error("Dispatcher 'disp1' is not available for 'NOSUCH'"))])
    q = query("CDQ", "NOSUCH", keyword="VALUE", command="update")
    h.send(b"C1", q, expect=[(b"C1", q.error("No dispatcher is available for NOSUCH.VALUE"))])
    assert len(h.core.services) == 0


def test_keyword_with_no_known_owner_gets_no_dispatcher_available():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", keyword="value", command="update")
    h.send(b"C1", q, expect=[(b"C1", q.error("No dispatcher is available for KTEST.value"))])


def test_neither_dispatcher_nor_keyword_is_ambiguous():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", command="update", payload="1")
    h.send(b"C1", q, expect=[(b"C1", q.error(
        "Ambiguous dispatcher specification in message |KTEST|\x01|\x01|CDQ|update|1|"))])


def test_all_blank_query_is_ambiguous():
    h = Harness()
    q = query("CDQ", command="update")
    h.send(b"C1", q, expect=[(b"C1", q.error(Text.AMBIGUOUS_DISPATCHER.format(fields=q.fields_text())))])


def test_keyword_owner_is_learned_from_a_successful_reply_then_routes():
    h = Harness()
    d1 = h.dispatcher(b"D1", "KTEST", "disp1")
    h.dispatcher(b"D2", "KTEST", "disp2")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="Value", command="update")
    [fwd] = h.send(b"C1", q)
    h.send(b"D1", d1.answer(fwd, "42"))
    assert h.core.service("KTEST").keywords == {"VALUE": "disp1"}
    by_keyword = query("CDQ", "ktest", keyword="VALUE", command="update")
    # forwarded naming the learned owner in the dispatcher frame, as the existing broker does
    h.send(b"C2", by_keyword, expect=[forwarded_to(b"D1", by_keyword.with_dispatcher("disp1"), b"C2")])


def test_error_or_blank_replies_teach_nothing():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    for payload, error in (("nope", True), (None, False)):
        q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
        [fwd] = h.send(b"C1", q)
        h.send(b"D1", d.answer(fwd, payload, error=error), expect=[(b"C1", {"identifier": q.identifier})])
    assert h.core.service("KTEST").keywords == {}


def test_the_answering_socket_names_the_owner_even_with_a_blank_dispatcher_frame():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q)
    h.send(b"D1", d.answer(fwd, "42", dispatcher=None), expect=[(b"C1", q.reply("42", dispatcher=None))])
    assert h.core.service("KTEST").keywords == {"VALUE": "disp1"}


def test_dispatcher_registered_but_not_ready_is_routable():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1", ready=False)
    q = query("CDQ", "KTEST", dispatcher="disp1", command="update", keyword="VALUE")
    h.send(b"C1", q, expect=[forwarded_to(b"D1", q)])


def test_service_names_are_filed_upper_cased_but_frames_keep_their_case():
    h = Harness()
    d = h.dispatcher(b"D1", "KTest", "disp1")
    q = query("CDQ", "ktest", dispatcher="disp1", keyword="value", command="update")
    [fwd] = h.send(b"C1", q, expect=[forwarded_to(b"D1", q)])
    assert fwd.message.service == "ktest" and fwd.message.keyword == "value"
    h.send(b"D1", d.answer(fwd), expect=[(b"C1", {"service": "ktest", "keyword": "value"})])


def test_same_dispatcher_name_in_two_services_are_two_dispatchers():
    h = Harness()
    h.dispatcher(b"D1", "ALPHA", "disp")
    h.dispatcher(b"D2", "BETA", "disp")
    for service, peer in (("alpha", b"D1"), ("beta", b"D2")):
        q = query("CDQ", service, dispatcher="disp", command="update", keyword="K")
        h.send(b"C1", q, expect=[forwarded_to(peer, q)])


def test_one_socket_registered_under_two_services():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "ALPHA", "disp")
    h.dispatcher(b"D1", "BETA", "other")
    qa = query("CDQ", "ALPHA", dispatcher="disp", command="update", keyword="K")
    qb = query("CDQ", "BETA", dispatcher="other", command="update", keyword="K")
    [fa] = h.send(b"C1", qa, expect=[forwarded_to(b"D1", qa)])
    [fb] = h.send(b"C1", qb, expect=[forwarded_to(b"D1", qb)])
    h.send(b"D1", d.answer(fb, "b", dispatcher="other"), expect=[(b"C1", {"identifier": qb.identifier})])
    h.send(b"D1", d.answer(fa, "a"), expect=[(b"C1", {"identifier": qa.identifier})])
    # one message from the socket is a sign of life for both registrations
    h.advance(4.5)
    h.send(b"D1", d.command("heartbeat"))
    h.advance(4.5)
    assert set(h.core.services) == {"ALPHA", "BETA"}


def test_two_clients_may_use_the_same_identifier():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    ident = bytes(range(16))
    q1 = query("CDQ", "KTEST", dispatcher="disp1", keyword="A", command="update", identifier=ident)
    q2 = query("CDQ", "KTEST", dispatcher="disp1", keyword="B", command="update", identifier=ident)
    [f1] = h.send(b"C1", q1)
    [f2] = h.send(b"C2", q2)
    h.send(b"D1", d.answer(f2, "two"), expect=[(b"C2", q2.reply("two", dispatcher="disp1"))])
    h.send(b"D1", d.answer(f1, "one"), expect=[(b"C1", q1.reply("one", dispatcher="disp1"))])


def test_duplicate_reply_is_relayed_once():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q)
    reply = d.answer(fwd, "42")
    h.send(b"D1", reply, expect=[(b"C1", q.reply("42", dispatcher="disp1"))])
    h.send(b"D1", reply, expect=[])
    assert h.core.stats.dropped_by_reason == {"reply_to_nothing_in_flight": 1}


def test_reply_from_another_dispatcher_socket_does_not_answer():
    h = Harness()
    h.dispatcher(b"D1", "KTEST", "disp1")
    d2 = h.dispatcher(b"D2", "KTEST", "disp2")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q)
    h.send(b"D2", d2.answer(fwd, "forged"), expect=[])
    assert h.core.service("KTEST").dispatchers["disp1"].in_flight == 1


def test_the_same_request_again_while_in_flight_is_not_sent_twice():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q, expect=[forwarded_to(b"D1", q)])
    h.send(b"C1", q, expect=[])
    h.send(b"D1", d.answer(fwd), expect=[(b"C1", {"identifier": q.identifier})])
    assert h.core.stats.dropped_by_reason == {"duplicate_request": 1}


def test_late_reply_after_expiry_is_dropped():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    [fwd] = h.send(b"C1", q)
    timed_out = [s for s in h.advance(5.0) if s.to == b"C1"]
    assert [s.message for s in timed_out] == [q.error(Text.DISPATCHER_TIMED_OUT, dispatcher="disp1")]
    h.send(b"D1", d.answer(fwd), expect=[])
    assert h.core.stats.dropped_by_reason == {"reply_from_unregistered_peer": 1}


# -- re-registration ---------------------------------------------------------------------------

def test_reregistration_from_a_new_socket_answers_the_old_sockets_requests():
    h = Harness()
    old = h.dispatcher(b"OLD", "KTEST", "disp1")
    q1 = query("CDQ", "KTEST", dispatcher="disp1", keyword="A", command="update")
    q2 = query("CDQ", "KTEST", dispatcher="disp1", keyword="B", command="update")
    [f1] = h.send(b"C1", q1)
    h.send(b"C2", q2)
    welcome = query("DBQ", "KTEST", dispatcher="disp1", command="welcome")
    replaced = Text.DISPATCHER_REPLACED.format(dispatcher="disp1")
    assert replaced == "Dispatcher 'disp1' re-registered before answering"
    [beat] = h.send(b"NEW", welcome, expect=[(b"OLD", {"direction": "DBP", "command": "heartbeat"})])
    h.unsent(beat, gone=True, expect=[  # the old socket's connection is closed: the name goes at once
        (b"C1", q1.error(replaced, dispatcher="disp1")),
        (b"C2", q2.error(replaced, dispatcher="disp1")),
        (b"NEW", welcome.reply(Text.CONFIRMED)),
    ])
    assert h.core.stats.replaced == 1
    # the old socket's late answer is dropped; new requests go to the new socket
    h.send(b"OLD", old.answer(f1), expect=[])
    q3 = query("CDQ", "KTEST", dispatcher="disp1", keyword="A", command="update")
    h.send(b"C1", q3, expect=[forwarded_to(b"NEW", q3.with_dispatcher("disp1"))])


def test_a_welcome_for_a_live_holders_name_is_refused_when_the_holder_answers_its_heartbeat():
    h = Harness(timeout=1.0)
    holder = h.dispatcher(b"OLD", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="A", command="update")
    [fwd] = h.send(b"C1", q)
    welcome = query("DBQ", "KTEST", dispatcher="disp1", command="welcome")
    [beat] = h.send(b"NEW", welcome, expect=[(b"OLD", {"direction": "DBP", "command": "heartbeat"})])
    h.send(b"NEW", welcome, expect=[])  # the same welcome again waits for the same check
    held = Text.NAME_HELD.format(dispatcher="disp1", service="KTEST")
    h.send(b"OLD", holder.beat_answer(beat), expect=[(b"NEW", welcome.error(held))])
    assert held.startswith("Dispatcher 'disp1' of 'KTEST' is served by a live dispatcher")
    h.advance(1.5, expect=[(b"OLD", {"command": "heartbeat"})])  # nothing conceded later: the check is over
    h.send(b"OLD", holder.answer(fwd), expect=[(b"C1", q.reply("42", dispatcher="disp1"))])
    assert h.core.stats.replaced == 0 and h.core.stats.registrations_refused == 1
    h.books_are_consistent()


def test_a_second_newcomer_while_a_holder_is_checked_is_refused_at_once():
    h = Harness(timeout=1.0)
    h.dispatcher(b"OLD", "KTEST", "disp1")
    welcome = query("DBQ", "KTEST", dispatcher="disp1", command="welcome")
    h.send(b"NEW", welcome, expect=[(b"OLD", {"command": "heartbeat"})])
    other = query("DBQ", "KTEST", dispatcher="disp1", command="welcome")
    h.send(b"THIRD", other, expect=[(b"THIRD", other.error(Text.NAME_HELD.format(dispatcher="disp1",
                                                                                 service="KTEST")))])
    h.advance(1.0, expect=[(b"NEW", welcome.reply(Text.CONFIRMED))])


def test_after_a_broker_stall_no_dispatcher_expires_before_a_fresh_heartbeat_and_5_t():
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    h.now += 10.0  # the broker's loop did not turn for 10 T
    h.core.resume(h.now)
    [beat] = h.advance(0.0, expect=[(b"D1", {"command": "heartbeat"})])  # a fresh heartbeat, at once
    h.advance(4.9)
    assert h.core.service("KTEST") is not None  # its full 5 T to answer
    h.send(b"D1", d.beat_answer(beat), expect=[])
    h.advance(4.9)
    assert h.core.service("KTEST") is not None
    h.advance(5.2)
    assert h.core.service("KTEST") is None  # silent for 5 T after that: expired as ever


def test_welcome_again_from_the_same_socket_keeps_its_requests():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="A", command="update")
    [fwd] = h.send(b"C1", q)
    welcome = d.command("welcome")
    h.send(b"D1", welcome, expect=[(b"D1", welcome.reply(Text.CONFIRMED))])
    h.send(b"D1", d.answer(fwd), expect=[(b"C1", {"identifier": q.identifier})])
    assert h.core.stats.replaced == 0


def test_learned_keyword_owner_survives_replacement():
    h = Harness()
    d = h.dispatcher(b"OLD", "KTEST", "disp1")
    h.dispatcher(b"KEEP", "KTEST", "disp2")
    q = query("CDQ", "KTEST", dispatcher="disp1", keyword="A", command="update")
    [fwd] = h.send(b"C1", q)
    h.send(b"OLD", d.answer(fwd))
    welcome = query("DBQ", "KTEST", dispatcher="disp1", command="welcome")
    h.send(b"NEW", welcome, expect=[(b"OLD", {"direction": "DBP", "command": "heartbeat"})])
    sent = h.advance(h.core.timeout)  # the old socket is silent for T: the name goes to the new one
    assert (b"NEW", welcome.reply(Text.CONFIRMED)) in [(s.to, s.message) for s in sent]
    by_keyword = query("CDQ", "KTEST", keyword="A", command="update")
    h.send(b"C1", by_keyword, expect=[forwarded_to(b"NEW", by_keyword.with_dispatcher("disp1"))])


# -- an expired dispatcher speaks again ----------------------------------------------------------

def expire(h: Harness, d) -> None:
    h.advance(5.0 * h.core.timeout)
    assert h.core.service(d.service) is None


def test_expired_dispatcher_that_answers_a_heartbeat_is_registered_again_without_welcome():
    """An existing Cauldron dispatcher stalled past EXPIRY_MULTIPLE T (SIGSTOP, then SIGCONT) answers the
    beats queued for it and never welcomes again: served again, no reply, no DBE."""
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "ktest", "disp1")
    q = query("CDQ", "KTEST", dispatcher="disp1", command="update", keyword="K", payload="")
    h.send(b"C1", q, expect=[forwarded_to(b"D1", q)])
    h.advance(5.0 * h.core.timeout, expect=[(b"C1", q.error("Dispatcher Timed Out"))])
    assert h.core.service("KTEST") is None
    beat = Message.new("DBQ", service="KTEST", dispatcher="disp1", command="heartbeat", payload="1795870850.2")
    h.send(b"D1", beat.with_prefix(b""), expect=[])
    assert h.core.stats.readmitted == 1 and h.core.service("KTEST").dispatchers["disp1"].ready
    h.send(b"D1", d.answer(forwarded_to(b"D1", q)[1], "late"), expect=[])  # answered already: dropped
    q2 = query("CDQ", "KTEST", dispatcher="disp1", command="update", keyword="K", payload="")
    h.send(b"C1", q2, expect=[forwarded_to(b"D1", q2)])
    h.advance(1.0, expect=[(b"D1", lambda m: m.direction == "DBP" and m.command == "heartbeat")])


def test_ready_from_a_socket_that_never_welcomed_registers_a_free_name():
    h = Harness()
    ready = query("DBQ", "KTEST", dispatcher="ghost", command="ready")
    h.send(b"G1", ready, expect=[])
    assert h.core.service("KTEST").dispatchers["ghost"].peer == b"G1"


def test_a_stranger_claiming_a_held_name_is_told_to_welcome_at_most_once_per_period():
    """No ping-pong with an existing dispatcher, which answers every DBE with a DBQ."""
    h = Harness(timeout=1.0)
    h.dispatcher(b"D1", "KTEST", "disp1")
    text = "Dispatcher 'disp1' is not registered for 'KTEST'; send welcome"
    assert Text.DISPATCHER_NOT_REGISTERED.format(dispatcher="disp1", service="KTEST") == text
    beat = query("DBQ", "KTEST", dispatcher="disp1", command="heartbeat", payload="1.0")
    h.send(b"D2", beat, expect=[(b"D2", beat.error(text))])
    for _ in range(50):  # the existing dispatcher's answer to that DBE, again and again
        h.send(b"D2", beat, expect=[])
    assert h.core.stats.dropped_by_reason["not_registered_told_already"] == 50
    h.advance(1.0, expect=[(b"D1", lambda m: m.command == "heartbeat")])
    h.send(b"D2", beat, expect=[(b"D2", beat.error(text))])  # one more, a period later
    assert h.core.service("KTEST").dispatchers["disp1"].peer == b"D1"


def test_learned_owners_outlive_the_last_dispatcher_and_route_again_when_it_returns():
    """An existing client identifies a keyword once, then always sends CDQ with a blank
    dispatcher: after its dispatcher expired and came back it must still be routed."""
    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    q = query("CDQ", "KTEST", keyword="VALUE", command="update", payload="", dispatcher="disp1")
    [fwd] = h.send(b"C1", q, expect=[forwarded_to(b"D1", q)])
    h.send(b"D1", d.answer(fwd, "7"), expect=[(b"C1", lambda m: m.payload == "7")])
    expire(h, d)
    assert "KTEST" in h.core.owners.retained
    blank = query("CDQ", "KTEST", keyword="VALUE", command="update", payload="")
    h.send(b"C1", blank, expect=[(b"C1", blank.error("No dispatcher is available for KTEST.VALUE"))])
    h.dispatcher(b"D9", "KTEST", "disp1")  # restarted: a new socket, the same name
    h.send(b"C1", blank, expect=[(b"D9", lambda m: m.keyword == "VALUE" and m.prefix == (b"", b"C1", b""))])
    assert h.core.owners.retained == {}


def test_retained_owners_are_bounded_in_time_and_count():
    h = Harness(timeout=1.0)
    h.core.owners.owner_retention, h.core.owners.max_retained = 100.0, 3  # the documented names
    for n in range(5):
        d = h.dispatcher(b"D%d" % n, f"S{n}", "disp")
        q = query("CDQ", f"S{n}", keyword="VALUE", command="update", payload="", dispatcher="disp")
        [fwd] = h.send(b"C1", q)
        h.send(d.peer, d.answer(fwd, "1"))
    h.advance(5.0)
    assert list(h.core.owners.retained) == ["S2", "S3", "S4"] == list(h.core.owners.owners)
    h.advance(100.0)
    assert h.core.owners.retained == {} == h.core.owners.owners


def test_reply_from_a_socket_that_never_welcomed_is_dropped():
    h = Harness()
    reply = query("CDP", "KTEST", dispatcher="ghost", command="update", payload="1").with_prefix(b"", b"C1", b"")
    h.send(b"G1", reply, expect=[])
    assert h.core.stats.dropped_by_reason == {"reply_from_unregistered_peer": 1}


def test_ready_under_a_name_registered_at_another_socket_gets_not_registered():
    h = Harness()
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    ready = d.command("ready")
    h.send(b"D2", ready, expect=[(b"D2", {"direction": "DBE"})])


def test_a_dispatcher_with_the_limit_of_requests_in_flight_gets_no_more():
    h = Harness()
    h.core.max_in_flight = 2
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    requests = [query("CDQ", "KTEST", dispatcher="disp1", keyword="K", command="update") for _ in range(3)]
    [f1] = h.send(b"C1", requests[0])
    h.send(b"C2", requests[1])
    busy = "Dispatcher 'disp1' has 2 requests in flight; try again later"
    assert Text.DISPATCHER_BUSY.format(dispatcher="disp1", count=2) == busy
    h.send(b"C3", requests[2], expect=[(b"C3", requests[2].error(busy))])
    h.send(b"D1", d.answer(f1))
    h.send(b"C3", requests[2], expect=[(b"D1", {"identifier": requests[2].identifier})])


# -- limits on what the core learns ------------------------------------------------------------

def learn(h: Harness, d, keyword: str, command: str = "update", payload: str = "1") -> None:
    q = query("CDQ", "KTEST", dispatcher=d.name, keyword=keyword, command=command)
    [fwd] = h.send(b"C1", q)
    h.send(d.peer, d.answer(fwd, payload), expect=[(b"C1", {"payload": payload})])  # relayed whatever


def test_keywords_learned_in_all_stop_at_max_keywords_and_count_again_when_a_service_goes():
    h = Harness(timeout=1.0)
    h.core.limits = h.core.limits.replace(max_keywords=3, max_name_length=5)
    d1, d2 = h.dispatcher(b"D1", "KTEST", "disp1"), h.dispatcher(b"D2", "KTEST", "disp2")
    for keyword in ("A", "B", "TOOLONG"):
        learn(h, d1, keyword)
    for keyword in ("C", "D"):
        learn(h, d2, keyword)
    assert sorted(h.core.owners.owners["KTEST"]) == ["A", "B", "C"]
    assert h.core.stats.limited == {"max_name_length": 1, "max_keywords": 1}
    learn(h, d2, "A")  # a keyword moving to another dispatcher is not one more
    assert h.core.owners.owners["KTEST"]["A"] == "disp2" and h.core.owners.total == 3
    h.books_are_consistent()


def test_identify_types_longer_than_the_cache_keeps_are_relayed_not_cached():
    from cauldron_proto.broker.core.owners import MAX_TYPE_LENGTH

    h = Harness(timeout=1.0)
    d = h.dispatcher(b"D1", "KTEST", "disp1")
    learn(h, d, "A", command="identify", payload="x" * (MAX_TYPE_LENGTH + 1))
    learn(h, d, "B", command="identify", payload="integer")
    assert h.core.owners.types["KTEST"] == {"B": "integer"}
