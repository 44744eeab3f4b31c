"""The dispatcher's I/O-free parts: answers to requests, registration with a fake clock.

Requests are real frames as the broker forwards them (``[b"", client-id, b"", *envelope]``
after the dispatcher's DEALER strips nothing), decoded with the codec; answers are checked
as the frames the broker would receive.
"""

from __future__ import annotations

import json

import pytest

from cauldron_proto import BLANK, DISPATCHER_LIVENESS, Direction, Message, Text, decode, encode
from cauldron_proto.dispatcher import Registration, Service, answer, answering
from cauldron_proto.dispatcher.core.registration import READY, WELCOMING

CLIENT = b"\x00k\x8bEg"


def forwarded(direction: str, command: str, keyword: str | None = "VALUE", payload: str | None = None) -> Message:
    """A request as it reaches a dispatcher's DEALER from the broker."""
    request = Message.new(direction, service="KTEST", keyword=keyword, command=command, payload=payload)
    return decode([b"", CLIENT, b"", *request.frames])


def at_most_100(keyword, value):
    if value > 100:
        raise ValueError("too big")


@pytest.fixture
def table():
    svc = Service("KTEST", dispatcher="KTEST1", start=False)
    svc.add_keyword("VALUE", "integer", 7, "counts", validate=at_most_100)
    svc.add_keyword("NAME", "string", "hello")
    svc.add_keyword("LIMIT", "double", 1.5, validate=lambda kw, value: max(value, 0.0))
    yield svc
    svc.shutdown()


def run(svc: Service, request: Message) -> list[bytes]:
    return encode(answer(request, svc.table, 0.0).reply)


def test_update_answers_the_value_with_the_prefix_and_own_name(table):
    frames = run(table, forwarded("CDQ", "update"))
    assert frames[:3] == [b"", CLIENT, b""]
    assert frames[3:] == [b"KTEST", b"KTEST1", b"VALUE", b"CDP", b"update", b"7", frames[-1]]


def test_fan_out_copy_is_answered_sdp(table):
    reply = decode(run(table, forwarded("SDQ", "identify", payload="VALUE")))
    assert (reply.direction, reply.dispatcher, reply.payload) == (Direction.SDP, "KTEST1", "integer")


def test_identify_unknown_keyword_is_blank_not_an_error(table):
    frames = run(table, forwarded("SDQ", "identify", keyword="NOPE", payload="NOPE"))
    reply = decode(frames)
    assert reply.direction == Direction.SDP and frames[-2] == BLANK and not reply.is_usable


def test_modify_stores_and_answers_the_resulting_value(table):
    reply = decode(run(table, forwarded("CDQ", "modify", payload="42")))
    assert (reply.direction, reply.payload) == (Direction.CDP, "42")
    assert table["VALUE"].value == 42


def test_validator_may_replace_the_value(table):
    reply = decode(run(table, forwarded("CDQ", "modify", keyword="LIMIT", payload="-3")))
    assert reply.payload == "0.0" and table["LIMIT"].value == 0.0


def test_refused_write_is_an_error_reply_with_the_reason(table):
    reply = decode(run(table, forwarded("CDQ", "modify", payload="500")))
    assert reply.direction == Direction.CDE
    assert reply.payload == "Write to VALUE refused: too big"
    assert table["VALUE"].value == 7


def test_value_of_the_wrong_type_is_an_error_reply(table):
    reply = decode(run(table, forwarded("CDQ", "modify", payload="12x")))
    assert reply.direction == Direction.CDE and "VALUE" in reply.payload and "integer" in reply.payload


@pytest.mark.parametrize("command", ["update", "modify", "units"])
def test_unknown_keyword_is_an_error_reply_naming_it(table, command):
    reply = decode(run(table, forwarded("CDQ", command, keyword="NOPE", payload="1")))
    assert reply.direction == Direction.CDE
    assert reply.payload == "Unknown keyword 'NOPE' for 'KTEST'" and reply.dispatcher == "KTEST1"


def test_enumerate_and_units(table):
    assert decode(run(table, forwarded("CDQ", "enumerate", keyword=None))).payload == "LIMIT:NAME:VALUE"  # sorted
    assert json.loads(decode(run(table, forwarded("CDQ", "units"))).payload) == "counts"


def test_unknown_command_is_bad_command(table):
    reply = decode(run(table, forwarded("CDQ", "explode")))
    assert reply.is_error and reply.payload == Text.BAD_COMMAND.format(command="explode") == "Bad command 'explode'!"


def test_a_handler_that_raises_gives_an_error_reply(table):
    table.add_keyword("BROKEN", "integer", 0, on_read=lambda kw: 1 / 0)
    reply = decode(run(table, forwarded("CDQ", "update", keyword="BROKEN")))
    assert reply.is_error and "ZeroDivisionError" in reply.payload


# Registration ----------------------------------------------------------------------------
def broker_says(direction: str, command: str, payload: str | None, identifier: bytes | None = None) -> Message:
    message = Message.new(direction, service="KTEST", dispatcher="KTEST1", command=command,
                          payload=payload, identifier=identifier)
    return decode([b"", *message.frames])


def test_welcome_then_ready_then_check():
    reg = Registration("KTEST", "KTEST1", period=0.2)
    welcome = reg.welcome(now=100.0)
    assert encode(welcome)[:6] == [b"KTEST", b"KTEST1", BLANK, b"DBQ", b"welcome", BLANK]
    sent, reason = reg.heard(broker_says("DBP", "welcome", "confirmed"), 100.1, 0.0)
    assert reason is None and reg.state == READY and reg.registrations == 1
    assert [(m.direction, m.command) for m in sent] == [(Direction.DBQ, "ready"), (Direction.UBQ, "check")]
    assert not reg.routable
    reg.heard(broker_says("UBP", "check", "Broker Alive", identifier=sent[1].identifier), 100.2, 0.0)
    assert reg.routable


def test_heartbeat_is_answered_with_the_same_identifier():
    reg = Registration("KTEST", "KTEST1", period=0.2)
    reg.welcome(0.0)
    beat = broker_says("DBP", "heartbeat", "beat")
    sent, reason = reg.heard(beat, 1.0, 1234.5)
    assert reason is None
    assert encode(sent[0]) == [b"", b"KTEST", b"KTEST1", BLANK, b"DBQ", b"heartbeat", b"1234.5", beat.identifier]


def test_no_confirmation_means_welcome_again():
    reg = Registration("KTEST", "KTEST1", period=0.2, welcome_wait=1.0)
    reg.welcome(10.0)
    assert reg.overdue(10.9) is None
    assert "no answer to welcome" in reg.overdue(11.0)
    assert reg.state == WELCOMING


def test_silence_from_the_broker_means_register_again():
    reg = Registration("KTEST", "KTEST1", period=0.2)
    assert reg.liveness == DISPATCHER_LIVENESS  # the spec's, by default
    reg.welcome(0.0)
    reg.heard(broker_says("DBP", "welcome", "confirmed"), 0.0, 0.0)
    reg.heard(broker_says("DBP", "heartbeat", "beat"), 0.5, 0.0)
    silence = DISPATCHER_LIVENESS * 0.2
    assert reg.overdue(0.5 + silence - 0.01) is None
    assert f"nothing from the broker for {silence:g} s" in reg.overdue(0.5 + silence + 0.01)


def test_no_silence_check_without_heartbeats():
    reg = Registration("KTEST", "KTEST1", period=0.2, heartbeat=False)
    reg.welcome(0.0)
    reg.heard(broker_says("DBP", "welcome", "confirmed"), 0.0, 0.0)
    assert reg.overdue(1e9) is None


def test_not_registered_error_means_register_again_at_once():
    reg = Registration("KTEST", "KTEST1", period=0.2)
    reg.welcome(0.0)
    text = Text.DISPATCHER_NOT_REGISTERED.format(dispatcher="KTEST1", service="KTEST")
    sent, reason = reg.heard(broker_says("DBE", "heartbeat", text), 0.1, 0.0)
    assert sent == [] and text in reason
    _, other = reg.heard(broker_says("DBE", "explode", Text.UNKNOWN_COMMAND), 0.1, 0.0)
    assert other is None


def test_a_broker_that_does_not_answer_the_check_still_makes_it_routable():
    reg = Registration("KTEST", "KTEST1", period=0.2)
    reg.welcome(0.0)
    reg.heard(broker_says("DBP", "heartbeat", "beat"), 0.1, 0.0)
    assert not reg.routable  # a heartbeat before the confirmation proves nothing
    reg.heard(broker_says("DBP", "welcome", "confirmed"), 0.2, 0.0)
    reg.heard(broker_says("DBP", "heartbeat", "beat"), 0.4, 0.0)
    assert reg.routable


def test_answering_yields_the_validator_and_maps_what_it_raises(table):
    steps = answering(forwarded("CDQ", "modify", payload="500"), table.table, 0.0)
    call = next(steps)
    assert call.func is at_most_100  # the user's callback, handed out to be called (or awaited)
    try:
        steps.throw(ValueError("too big"))
    except StopIteration as done:
        reply, broadcast = done.value
    assert (reply.direction, reply.payload) == (Direction.CDE, "Write to VALUE refused: too big")
    assert broadcast is None
    assert table["VALUE"].value == 7


def test_a_coroutine_callback_on_the_threaded_dispatcher_is_an_error_reply(table):
    async def later(keyword):
        return 3

    table["NAME"].on_read = later
    reply = decode(run(table, forwarded("CDQ", "update", keyword="NAME")))
    assert reply.is_error and "returned an awaitable" in reply.payload and "aio.Dispatcher" in reply.payload


# The keyword table: values and what a change broadcasts ---------------------------------
from cauldron_proto.dispatcher import KeywordState, KeywordTable, finish  # noqa: E402


@pytest.fixture
def core_table():
    table = KeywordTable("KTEST", "KTEST1")
    table.add(KeywordState("VALUE", "integer", 7, "counts", validate=at_most_100))
    table.add(KeywordState("MODE", "enumerated", "On", enumerators=["Off", "On"]))
    return table


def test_a_change_of_value_returns_its_broadcast_and_no_change_returns_none(core_table):
    value = core_table.get("value")
    text, broadcast = core_table.store(value, 8)
    assert text == "8" and value.ascii == "8" and value.value == 8
    assert encode(broadcast)[:6] == [b"ktest", b"KTEST1", b"VALUE", b"CDB", b"broadcast", b"8"]  # service lower-cased
    assert core_table.store(value, "8") == ("8", None)  # the same value: nothing to broadcast
    assert decode(encode(core_table.store(value, 8, force=True).broadcast)).payload == "8"
    assert core_table.store(core_table.get("MODE"), "Off").broadcast.payload == "0"  # the integer text


def test_a_value_of_the_wrong_type_is_refused_and_nothing_changes(core_table):
    from cauldron_proto.ktl import KTLValueError

    with pytest.raises(KTLValueError):
        core_table.store(core_table.get("VALUE"), "12x")
    assert core_table.get("VALUE").ascii == "7"


def test_a_write_is_answered_and_broadcast_once_stored(core_table):
    outcome = next_outcome(answering(forwarded("CDQ", "modify", payload="42"), core_table, 0.0), [None])
    assert core_table.get("VALUE").ascii == "7"  # not stored until finished
    reply, broadcast = finish(outcome, core_table)
    assert (reply.direction, reply.payload, reply.dispatcher) == (Direction.CDP, "42", "KTEST1")
    assert reply.prefix == (b"", CLIENT, b"") and (broadcast.keyword, broadcast.payload) == ("VALUE", "42")
    again = finish(next_outcome(answering(forwarded("CDQ", "modify", payload="42"), core_table, 0.0), [None]),
                   core_table)
    assert again.reply.payload == "42" and again.broadcast is None  # the same value: no broadcast


def test_a_computed_read_stores_its_value_and_broadcasts_a_change(core_table):
    core_table.add(KeywordState("TEMP", "double", 20.0, on_read=lambda keyword: 21.5))
    steps = answering(forwarded("CDQ", "update", keyword="TEMP"), core_table, 0.0)
    assert next(steps).func(core_table.get("TEMP")) == 21.5  # on_read, yielded to be called
    reply, broadcast = finish(next_outcome(steps, [21.5], started=True), core_table)
    assert reply.payload == "21.5" and broadcast.payload == "21.5"


def test_a_computed_read_of_the_wrong_type_is_an_error_reply(core_table):
    core_table.add(KeywordState("COUNT", "integer", 1, on_read=lambda keyword: "many"))
    reply, broadcast = answer(forwarded("CDQ", "update", keyword="COUNT"), core_table, 0.0)
    assert reply.is_error and "KTLValueError" in reply.payload and broadcast is None
    assert core_table.get("COUNT").ascii == "1"


def test_a_validator_replacing_the_value_with_one_of_the_wrong_type_refuses_the_write(core_table):
    core_table.add(KeywordState("LIMIT", "double", 1.5, validate=lambda keyword, value: "not a number"))
    reply, broadcast = answer(forwarded("CDQ", "modify", keyword="LIMIT", payload="2"), core_table, 0.0)
    assert reply.is_error and reply.payload.startswith("LIMIT: 'not a number' is not a valid double")
    assert broadcast is None and core_table.get("LIMIT").ascii == "1.5"


def test_a_heartbeat_request_is_answered_with_the_time_the_layer_gives(core_table):
    reply, _ = answer(forwarded("CDQ", "heartbeat", keyword=None), core_table, 1234.5)
    assert reply.payload == "1234.5"


def next_outcome(steps, results, started=False):
    """Run ``steps``, sending ``results`` in turn for the callbacks it yields (not calling them)."""
    try:
        if not started:
            next(steps)
        for result in results:
            steps.send(result)
    except StopIteration as done:
        return done.value
    raise AssertionError("the steps still ask")


def test_the_threaded_service_broadcasts_changes_in_the_order_it_stored_them():
    """Many threads set one keyword: the broadcasts posted are the values stored, in order."""
    import threading

    svc = Service("KTEST", dispatcher="KTEST1", start=False)
    svc.add_keyword("VALUE", "integer", 0)
    posted, stale = [], []

    class Mailbox:
        def post(self, item):
            posted.append(decode(item[2]).payload)
            if svc.table.get("VALUE").ascii != posted[-1]:  # stored and posted under one lock
                stale.append(posted[-1])

    svc._io = Mailbox()
    threads = [threading.Thread(target=lambda n=n: [svc["VALUE"].set(n * 1000 + i + 1) for i in range(200)])
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    svc._io = None
    assert len(posted) == 800 and posted[-1] == svc["VALUE"].ascii and stale == []


def heartbeats_at(period: float, times: tuple[float, ...]) -> Registration:
    """A registration of ``period``, confirmed at 0, that heard the broker's heartbeats at ``times``."""
    reg = Registration("KTEST", "KTEST1", period=period)
    reg.welcome(0.0)
    reg.heard(broker_says("DBP", "welcome", "confirmed"), 0.0, 0.0)
    for now in times:
        reg.heard(broker_says("DBP", "heartbeat", "beat"), now, 0.0)
    return reg


def test_a_broker_heartbeating_faster_than_our_period_is_named_once():
    reg = heartbeats_at(5.0, (1.0, 2.1, 3.0))
    assert reg.broker_period == pytest.approx(0.9)
    assert reg.disagreement() == ("the broker sends heartbeats every 0.9 s but this dispatcher's heartbeat period "
                                  "is 5 s: set [zmq] timeout (cauldron-dispatcher --timeout) to the broker's")
    assert reg.disagreement() is None  # said once


def test_heartbeats_at_our_period_are_no_disagreement():
    assert heartbeats_at(1.0, (1.0, 2.05, 3.1)).disagreement() is None


def test_no_heartbeat_after_the_confirmation_says_the_period_may_be_too_short():
    reg = Registration("KTEST", "KTEST1", period=1.0, liveness=3)
    reg.welcome(0.0)
    reg.heard(broker_says("DBP", "welcome", "confirmed"), 0.1, 0.0)
    reason = reg.overdue(3.2)
    assert reason.startswith("nothing from the broker for 3 s (3 heartbeat periods); the broker confirmed the "
                             "registration but sent no heartbeat since: if its heartbeat period is longer than 3 s")
    assert "this dispatcher's (1 s) is too short: set [zmq] timeout" in reason


def test_one_extra_heartbeat_from_the_broker_is_no_disagreement():
    """The broker sends a name's holder an extra heartbeat when another connection welcomes
    for that name: one short gap between heartbeats says nothing of the broker's period."""
    reg = heartbeats_at(1.0, (1.0, 1.0002, 2.0, 3.0))
    assert reg.broker_period == pytest.approx(0.0002) and reg.disagreement() is None
