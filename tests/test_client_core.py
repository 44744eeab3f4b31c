"""The client core without I/O: procedures driven by hand, replies made with the codec."""

from __future__ import annotations

import pytest

from cauldron_proto import FAIL, Direction, Message, client, decode, encode
from cauldron_proto.client.core import ClientCore, KeywordState, Pending


def drive(procedure, *answers):
    """Run ``procedure``, answering its requests in turn with ``answers`` (callables of the request)."""
    sent = []
    request = next(procedure)
    for make in answers:
        sent.append(request)
        try:
            request = procedure.send(make(request))
        except StopIteration as done:
            return done.value, sent
    raise AssertionError(f"the procedure still asks: {request!r}")


def wire(message: Message) -> Message:
    """``message`` as it comes back through a socket."""
    return decode(encode(message))


@pytest.fixture
def core():
    return ClientCore("KTest", "tcp://broker:1")


def test_requests_carry_the_lower_case_name_and_empty_payloads(core):
    keyword = KeywordState("KTest", "value", "integer", "D1")
    for procedure, command, payload in ((core.read(keyword), "update", ""), (core.units(keyword), "units", ""),
                                        (core.write(keyword, 7), "modify", "7"), (core.lookup(), "lookup", "subscribe")):
        request = next(procedure)
        assert (request.service, request.command, request.payload) == ("ktest", command, payload)
        frames = encode(request)
        assert frames[-2] == payload.encode()  # "" is an empty frame, not the blank sentinel
    request = next(core.identify("value"))
    assert (request.direction, request.keyword, request.payload) == (Direction.CSQ, "VALUE", "VALUE")


def test_identify_merges_types_and_names_a_single_owner(core):
    known = core.keywords["VALUE"] = KeywordState("KTest", "VALUE")
    info, _ = drive(core.identify("value"), lambda r: wire(r.reply("integer", dispatcher="D1")))
    assert info == client.KeywordInfo("VALUE", "integer", "D1")
    assert (known.type, known.dispatcher) == ("integer", "D1")
    info, _ = drive(core.identify("VALUE"), lambda r: wire(r.reply("integer:\x01", dispatcher="D1")))
    assert info.dispatcher is None
    with pytest.raises(client.DispatcherError, match="disagree on the type: double, integer"):
        drive(core.identify("VALUE"), lambda r: wire(r.reply("integer:double")))
    with pytest.raises(client.UnknownKeywordError):
        drive(core.identify("VALUE"), lambda r: wire(r.reply(FAIL)))


def test_error_replies_map_to_typed_errors(core):
    keyword = KeywordState("KTest", "VALUE", "integer", "D1")
    cases = [("Unknown keyword 'VALUE' for 'ktest'", client.UnknownKeywordError),
             ("Dispatcher Timed Out", client.DispatcherTimeoutError),
             ("Write to VALUE refused: no", client.DispatcherError)]
    for text, error in cases:
        with pytest.raises(error) as info:
            drive(core.read(keyword), lambda r: wire(r.error(text, dispatcher="D1")))
        assert type(info.value) is error
    with pytest.raises(client.DispatcherError, match="no usable answer"):
        drive(core.locate(), lambda r: wire(r.reply(FAIL)))
    timeout = core.timeout_error(next(core.read(keyword)), 0.5)
    assert isinstance(timeout, TimeoutError) and timeout.keyword == "VALUE" and timeout.command == "update"


def test_a_gone_dispatcher_is_identified_again_once(core):
    keyword = KeywordState("KTest", "VALUE", "integer", "OLD")
    gone = lambda r: wire(r.error("Dispatcher 'OLD' not available", dispatcher="OLD"))  # noqa: E731
    moved = lambda r: wire(r.reply("integer", dispatcher="NEW"))  # noqa: E731
    reply, sent = drive(core.read(keyword), gone, moved, lambda r: wire(r.reply("5", dispatcher="NEW")))
    assert [r.command for r in sent] == ["update", "identify", "update"]
    assert sent[2].dispatcher == "NEW" and reply.payload == "5"
    keyword.dispatcher = "NEW"
    with pytest.raises(client.DispatcherError, match="not available"):  # only once
        drive(core.read(keyword), lambda r: wire(r.error("Dispatcher 'NEW' not available")), moved,
              lambda r: wire(r.error("Dispatcher 'NEW' not available")))


def test_describe_asks_an_enumerated_keywords_units_and_values_use_names(core):
    keyword = KeywordState("KTest", "MODE")
    _, sent = drive(core.describe(keyword), lambda r: wire(r.reply("enumerated", dispatcher="D1")),
                    lambda r: wire(r.reply('{"0": "Off", "1": "On"}', dispatcher="D1")))
    assert [r.command for r in sent] == ["identify", "units"]
    assert keyword.enumerators == {0: "Off", 1: "On"}
    value = keyword.value_of("1", "D1", 12.5, primed=True)
    assert (value.ascii, value.value, value.time, value.primed) == ("On", 1, 12.5, True)
    assert keyword.last is value
    assert next(core.write(keyword, "Off")).payload == "0"
    assert keyword.value_of(None, "D1", 0.0, False).value is None


def test_broadcasts_of_other_services_and_unknown_keywords_are_filtered(core):
    core.keywords["VALUE"] = KeywordState("KTest", "VALUE", "integer", "D1")
    mine = Message.new(Direction.CDB, service="ktest", dispatcher="D1", keyword="value", command="broadcast",
                       payload="3")
    assert core.broadcast_value(wire(mine), 1.0).value == 3
    assert core.broadcast_value(wire(mine.replace(service="ktest2")), 1.0) is None
    assert core.broadcast_value(wire(mine.replace(keyword="OTHER")), 1.0) is None


def test_pending_matches_answers_by_identifier_only():
    pending: Pending[str] = Pending()
    first, second = Message.new(Direction.CBQ, command="locate"), Message.new(Direction.CBQ, command="locate")
    key = pending.file(first, "first")
    pending.file(second, "second")
    assert pending.answer(wire(second.reply("yes"))) == "second"
    assert pending.answer(wire(second.reply("yes"))) is None  # a duplicate finds nobody
    pending.forget(key)
    assert len(pending) == 0 and pending.drain() == []


def test_every_client_error_is_a_client_error_and_the_builtin_callers_catch(core):
    """One root (``except client.ClientError`` catches all) with builtin mixins, so callers
    catching ``KeyError``, ``TimeoutError``, ``ValueError`` or ``RuntimeError`` still do."""
    from cauldron_proto.ktl import KTLValueError

    keyword = KeywordState("KTest", "VALUE", "integer", "D1")
    with pytest.raises(client.UnknownKeywordError) as unknown:
        drive(core.read(keyword), lambda r: wire(r.error("Unknown keyword 'VALUE' for 'ktest'")))
    with pytest.raises(client.InvalidValueError) as invalid:
        next(core.write(keyword, "not a number"))
    timeout = core.timeout_error(next(core.read(keyword)), 0.5)
    refused = core.refused_error(next(core.read(keyword)), "a CURVE key it does not authorize")
    raised = {KeyError: unknown.value, KTLValueError: invalid.value, TimeoutError: timeout,
              ConnectionRefusedError: refused, RuntimeError: client.ShutDownError("shut down")}
    for builtin, error in raised.items():
        assert isinstance(error, client.ClientError) and isinstance(error, builtin), (error, builtin)
    assert str(unknown.value) == "KTest has no keyword 'VALUE'"
    assert "'not a number' is not a valid integer value" in str(invalid.value)
    assert invalid.value.ktl_type == "integer" and invalid.value.value == "not a number"
