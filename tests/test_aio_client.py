"""The asyncio client end to end: a ZMQBroker thread (tcp and inproc), aio dispatchers and
threaded ones, and aio.Service reading, writing, monitoring; concurrency, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest
import zmq
import zmq.asyncio

from cauldron_proto import Direction, aio, client, decode, encode
from cauldron_proto.ktl import KTLValueError

from .aio_helpers import WAIT, eventually, run_with_broker, serving_aio
from cauldron_proto.testing import open_peers, receive, register_dispatcher, send

from .keyword_helpers import serving


def at_most_100(keyword, value):
    if value > 100:
        raise ValueError(f"{value} is more than 100")


KEYWORDS = dict(VALUE={"type": "integer", "value": 1, "units": "counts", "validate": at_most_100},
                NAME=("string", "hello"), EMPTY=("string", None),
                MODE={"type": "enumerated", "value": "On", "enumerators": ["Off", "On", "Standby"]})


@pytest.fixture(params=["tcp", "inproc"])
def transport(request):
    return request.param


async def first(monitor):
    return await asyncio.wait_for(monitor.__anext__(), WAIT)


async def subscribed(monitor, keyword) -> None:
    """Set new values of dispatcher ``keyword`` until one reaches ``monitor`` (ZMQ's slow
    joiner), then a marker, and take every value up to the marker."""
    while True:
        keyword.set(keyword.value + 1)
        try:
            await asyncio.wait_for(monitor.__anext__(), 0.1)
            break
        except TimeoutError:
            continue
    marker = keyword.value + 1000
    keyword.set(marker)
    while (await first(monitor)).value != marker:
        pass


def test_every_operation_against_an_aio_dispatcher(transport):
    async def scenario(broker, config):
        async with serving_aio("KTEST", config, "KTEST1", context=broker.context, **KEYWORDS) as disp, \
                aio.Service("ktest", config, timeout=WAIT, context=broker.context) as svc:
            value = svc["VALUE"]
            assert value is svc["value"] and not value.is_identified
            assert await value.read() == "1" and value.is_identified
            assert (value.type, value.dispatcher) == ("integer", "KTEST1")
            assert await value.read(binary=True) == 1
            assert await value.write(42) == "42" and disp["VALUE"].value == 42
            assert await value.units() == "counts"
            assert value.last.value == 42
            mode = await svc.keyword("MODE")
            assert mode.enumerators == {0: "Off", 1: "On", 2: "Standby"}
            assert await mode.write("Standby") == "Standby" and disp["MODE"].ascii == "2"
            assert await mode.read(binary=True) == 2
            assert await svc["EMPTY"].read() is None
            assert await svc["NAME"].write("") == "" and disp["NAME"].ascii == ""
            assert sorted(await svc.keywords()) == ["EMPTY", "MODE", "NAME", "VALUE"]
            assert await svc.identify("name") == client.KeywordInfo("NAME", "string", "KTEST1")
            assert await svc.locate() is True
            assert await svc.lookup() == broker.endpoints["subscribe"]
    run_with_broker(transport, scenario)


def test_errors_are_the_threaded_clients(transport):
    async def scenario(broker, config):
        async with serving_aio("KTEST", config, "KTEST1", context=broker.context, **KEYWORDS) as disp, \
                aio.Service("KTEST", config, timeout=WAIT, context=broker.context) as svc:
            with pytest.raises(client.DispatcherError) as info:
                await svc["VALUE"].write(500)
            assert info.value.text == "Write to VALUE refused: 500 is more than 100"
            assert disp["VALUE"].value == 1
            with pytest.raises(KTLValueError, match="'lots' is not a valid integer value"):
                await svc["VALUE"].write("lots")
            with pytest.raises(client.UnknownKeywordError) as unknown:
                await svc["NOSUCH"].read()
            assert str(unknown.value) == "KTEST has no keyword 'NOSUCH'"
            with pytest.raises(client.UnknownKeywordError):
                await svc.keyword("NOSUCH")
            async with aio.Service("EMPTY", config, timeout=WAIT, context=broker.context) as empty:
                with pytest.raises(client.DispatcherError, match="No dispatchers for 'empty'"):
                    await empty["VALUE"].read()
                assert await empty.locate() is False
        with pytest.raises(client.ShutDownError):
            await svc["VALUE"].read()
    run_with_broker(transport, scenario)


def test_no_broker_gives_a_request_timeout_naming_the_keyword():
    async def scenario():
        async with aio.Service("KTEST", {"broker": "tcp://127.0.0.1:1"}, timeout=0.2) as svc:
            with pytest.raises(client.RequestTimeoutError, match="KTEST.VALUE: no answer to 'identify' within 0.2 s: "
                               "no broker answers at tcp://127.0.0.1:1$"):
                await svc["VALUE"].read()
            assert len(svc._pending) == 0
    asyncio.run(scenario())


def test_an_address_no_broker_can_be_at_is_an_error_at_once():
    from cauldron_proto import ConfigError

    with pytest.raises(ConfigError, match="^cannot connect to a broker at tcp://127.0.0.1:99999: port 99999 is out"):
        aio.Service("KTEST", {"broker": "tcp://127.0.0.1:99999"})


def test_a_dispatcher_that_never_answers_is_diagnosed_registered_but_not_answering():
    release = threading.Event()

    async def scenario(broker, config):
        with serving("KSLOW", config, "SLOW1",  # a threaded dispatcher: its stuck read blocks no event loop
                     STUCK={"type": "integer", "value": 0, "on_read": lambda kw: release.wait(WAIT) and 0}):
            async with aio.Service("KSLOW", config, timeout=WAIT) as svc:
                with pytest.raises(client.RequestTimeoutError) as info:
                    await svc["STUCK"].read(timeout=0.3)
                release.set()
                return info.value
    try:
        error = run_with_broker("tcp", scenario)
    finally:
        release.set()
    assert error.diagnosis.endswith("answers, so its dispatcher 'SLOW1' of KSLOW is registered but not answering")


def test_a_thousand_concurrent_reads_on_one_socket_each_with_its_timeout():
    async def scenario(broker, config):
        release = asyncio.Event()

        async def stuck(keyword):
            await release.wait()
            return 0

        keywords = {f"K{i}": ("integer", i * 1000) for i in range(8)}
        async with serving_aio("KMANY", config, "MANY1", STUCK={"type": "integer", "value": 0, "on_read": stuck},
                               **keywords), aio.Service("KMANY", config, timeout=WAIT) as svc:
            reads = [svc[f"K{i % 8}"].read(binary=True) for i in range(1000)]
            results = await asyncio.gather(svc["STUCK"].read(timeout=0.5), *reads, return_exceptions=True)
            timeout, values = results[0], results[1:]
            assert isinstance(timeout, client.RequestTimeoutError) and timeout.keyword == "STUCK"
            assert "'update'" in str(timeout) and "0.5 s" in str(timeout)
            assert values == [(i % 8) * 1000 for i in range(1000)]
            assert len(svc._pending) == 0
            release.set()
    run_with_broker("tcp", scenario)


def test_a_cancelled_request_leaves_nothing_behind_and_its_late_answer_is_dropped(transport):
    async def scenario(broker, config):
        entered, release = asyncio.Event(), asyncio.Event()
        answered = []

        async def slow(keyword):
            entered.set()
            await release.wait()
            answered.append(True)
            return 5

        async with serving_aio("KSLOW", config, "SLOW1", context=broker.context,
                               SLOW={"type": "integer", "value": 0, "on_read": slow}), \
                aio.Service("KSLOW", config, timeout=WAIT, context=broker.context) as svc:
            keyword = await svc.keyword("SLOW")
            read = asyncio.ensure_future(keyword.read())
            await asyncio.wait_for(entered.wait(), WAIT)
            assert len(svc._pending) == 1
            read.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read
            assert len(svc._pending) == 0
            release.set()
            await eventually(lambda: answered, message="the slow read answered")
            assert await keyword.read(binary=True) == 5  # the late answer went nowhere; the socket is fine
            assert len(svc._pending) == 0
    run_with_broker(transport, scenario)


def test_monitor_primes_delivers_broadcasts_and_stops_when_the_loop_is_left(transport):
    async def scenario(broker, config):
        async with serving_aio("KTEST", config, "KTEST1", context=broker.context, **KEYWORDS) as disp, \
                aio.Service("KTEST", config, timeout=WAIT, context=broker.context) as svc:
            monitor = svc["VALUE"].monitor()
            primed = await first(monitor)
            assert (primed.ascii, primed.value, primed.primed, primed.dispatcher) == ("1", 1, True, "KTEST1")
            assert isinstance(primed, client.KeywordValue)
            await subscribed(monitor, disp["VALUE"])
            for n in (50, 51, 52):
                await svc["VALUE"].write(n)
            seen = [await first(monitor) for _ in range(3)]
            assert [(v.value, v.primed) for v in seen] == [(50, False), (51, False), (52, False)]
            del monitor
            assert svc.monitoring == {}
            count = 0
            async for value in svc["MODE"].monitor(prime=True):
                assert (value.ascii, value.value) == ("On", 1)  # names from the units map
                count += 1
                break
            assert count == 1 and svc.monitoring == {}  # leaving the loop stopped it
            async with svc["NAME"].monitor(prime=False) as names:
                assert svc.monitoring == {}  # started by the first await
                await subscribed_name(names, disp["NAME"])
                assert svc.monitoring == {"NAME": 1}
            assert svc.monitoring == {}
    run_with_broker(transport, scenario)


async def subscribed_name(monitor, keyword) -> None:
    while True:
        keyword.set("x", force=True)
        try:
            value = await asyncio.wait_for(monitor.__anext__(), 0.1)
            assert (value.ascii, value.primed) == ("x", False)
            return
        except TimeoutError:
            continue


def test_a_monitor_ends_when_the_service_closes():
    async def scenario(broker, config):
        async with serving_aio("KTEST", config, "KTEST1", **KEYWORDS):
            svc = aio.Service("KTEST", config, timeout=WAIT)
            monitor = svc["VALUE"].monitor()
            assert (await first(monitor)).primed
            pending = asyncio.ensure_future(monitor.__anext__())
            await asyncio.sleep(0)
            await svc.aclose()
            with pytest.raises(StopAsyncIteration):
                await pending
            await svc.aclose()  # idempotent
    run_with_broker("tcp", scenario)


def test_aio_client_with_a_threaded_dispatcher():
    async def scenario(broker, config):
        with serving("KTEST", config, "THREADED1", **KEYWORDS) as disp:
            async with aio.Service("KTEST", config, timeout=WAIT) as svc:
                assert await svc["VALUE"].read() == "1"
                assert await svc["VALUE"].write(7) == "7" and disp["VALUE"].value == 7
                assert svc["VALUE"].dispatcher == "THREADED1"
                assert await svc["MODE"].read() == "On"
                monitor = svc["VALUE"].monitor(prime=False)
                await subscribed(monitor, disp["VALUE"])
                disp["VALUE"].set(3)
                assert (await first(monitor)).value == 3
    run_with_broker("tcp", scenario)


def test_aio_client_finds_a_keyword_that_moved_to_another_dispatcher():
    async def scenario(broker, config):
        async with aio.Service("KMOVE", config, timeout=WAIT) as svc:
            async with serving_aio("KMOVE", config, "MOVE-A", VALUE=("integer", 1)):
                assert (await svc["VALUE"].read(), svc["VALUE"].dispatcher) == ("1", "MOVE-A")
            async def expired():
                return not await svc.locate()

            await eventually(expired, message="the broker expiring MOVE-A")
            async with serving_aio("KMOVE", config, "MOVE-B", VALUE=("integer", 2)):
                assert (await svc["VALUE"].read(), svc["VALUE"].dispatcher) == ("2", "MOVE-B")
    run_with_broker("tcp", scenario, timeout=0.2)


def test_a_silent_dispatcher_is_a_dispatcher_timeout_error():
    """A dispatcher that answers identify and then nothing (no heartbeats): the broker expires
    it with the read in flight and answers ``Dispatcher Timed Out``."""
    async def scenario(broker, config):
        with open_peers(zmq.Context()) as peers:
            disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
            register_dispatcher(disp, "KSILENT", "silent1")
            identified = threading.Event()

            def play() -> None:  # answer heartbeats until identify, then go silent
                while not identified.is_set():
                    message = receive(disp)
                    if message.command == "heartbeat":
                        send(disp, message.reply("0").with_prefix(b""))
                    elif message.command == "identify":
                        send(disp, message.reply("integer", dispatcher="silent1"))
                        identified.set()

            player = threading.Thread(target=play)
            player.start()
            try:
                async with aio.Service("KSILENT", config, timeout=WAIT) as svc:
                    with pytest.raises(client.DispatcherTimeoutError) as info:
                        await svc["VALUE"].read()
                    assert isinstance(info.value, TimeoutError) and info.value.dispatcher == "silent1"
            finally:
                player.join(WAIT)
            peers.close()
            peers.context.term()
    run_with_broker("tcp", scenario, timeout=0.2)


def test_the_wire_as_a_raw_broker_sees_it():
    """Lower-case service name, an empty frame for update and units, 'subscribe' for lookup."""
    async def scenario():
        context = zmq.asyncio.Context()
        router = context.socket(zmq.ROUTER)
        router.linger = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")
        try:
            async with aio.Service("KTest", {"broker": f"tcp://127.0.0.1:{port}"}, timeout=WAIT) as svc:
                async def broker_answers(answers):
                    seen = []
                    for payload in answers:
                        peer, *frames = await router.recv_multipart()
                        request = decode(frames)
                        seen.append((frames, request))
                        await router.send_multipart([peer, *encode(request.reply(payload, dispatcher="D1"))])
                    return seen

                answering = asyncio.ensure_future(broker_answers(["integer", "5", "null", "tcp://127.0.0.1:9"]))
                assert await svc["VALUE"].read() == "5"
                assert await svc["VALUE"].units() is None
                assert await svc.lookup() == "tcp://127.0.0.1:9"
                seen = await answering
        finally:
            router.close(linger=0)
            context.term()
        (identify, _), (update_frames, update), (units_frames, _), (_, lookup) = seen
        assert identify[0] == b"" and identify[1] == b"ktest" and identify[4] == b"CSQ"
        assert (update.direction, update.dispatcher, update.keyword) == (Direction.CDQ, "D1", "VALUE")
        assert update_frames[6] == b"" and units_frames[6] == b""  # an empty frame, not blank
        assert lookup.payload == "subscribe"
    asyncio.run(scenario())


def test_the_documented_example_runs(capsys):
    from .conftest import ROOT

    page = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    section = page.split("## Asyncio helpers", 1)[1]
    code = section.split("```python\n", 1)[1].split("\n```", 1)[0]
    assert code.rstrip().endswith("asyncio.run(main())                                     # or await main() in a running loop")
    namespace: dict = {}
    exec(compile(code.rsplit("\n", 1)[0], "docs/python-api.md", "exec"), namespace)

    async def scenario(broker, config):
        namespace["config"] = config
        await namespace["main"]()

    run_with_broker("tcp", scenario)
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["0", "7", "counts", "21.5"]
    assert out[4] == "['TEMP', 'VALUE'] KeywordInfo(name='VALUE', type='integer', dispatcher='KTEST1')"
    assert out[5] == "Write to VALUE refused: more than 100"
    assert "primed=True" in out[6] and "primed=False" in out[-1] and len(out) == 8


def test_a_burst_of_answers_larger_than_a_batch_is_all_delivered():
    """A raw broker holds 1,200 reads, then answers them all at once: more answers are queued
    than the reader takes in one batch, and every one reaches its request."""
    async def scenario():
        context = zmq.asyncio.Context()
        router = context.socket(zmq.ROUTER)
        router.linger = 0
        router.sndhwm = router.rcvhwm = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")

        async def broker(count):
            peer, *frames = await router.recv_multipart()
            await router.send_multipart([peer, *encode(decode(frames).reply("integer", dispatcher="D1"))])
            held = []
            while len(held) < count:
                peer, *frames = await router.recv_multipart()
                held.append(decode(frames))
            for n, request in enumerate(held):  # no await between: one burst
                router.send_multipart([peer, *encode(request.reply(str(n), dispatcher="D1"))], zmq.NOBLOCK)

        try:
            async with aio.Service("KTEST", {"broker": f"tcp://127.0.0.1:{port}"}, timeout=WAIT) as svc:
                svc._dealer.rcvhwm = 0
                playing = asyncio.ensure_future(broker(1200))
                values = await asyncio.gather(*(svc["VALUE"].read(binary=True) for _ in range(1200)))
                await playing
                assert sorted(values) == list(range(1200)) and len(svc._pending) == 0
        finally:
            router.close(linger=0)
            context.term()
    asyncio.run(scenario())


def test_closing_fails_requests_in_flight_with_shut_down_error():
    async def scenario(broker, config):
        entered, release = asyncio.Event(), asyncio.Event()

        async def stuck(keyword):
            entered.set()
            await release.wait()
            return 1

        async with serving_aio("KSTUCK", config, "STUCK1", VALUE={"type": "integer", "value": 0, "on_read": stuck}):
            svc = aio.Service("KSTUCK", config, timeout=WAIT)
            keyword = await svc.keyword("VALUE")
            read = asyncio.ensure_future(keyword.read())
            await asyncio.wait_for(entered.wait(), WAIT)
            await svc.aclose()
            with pytest.raises(client.ShutDownError):
                await read
            assert len(svc._pending) == 0 and svc._dealer is None
            release.set()
    run_with_broker("tcp", scenario)
