"""The asyncio dispatcher: against a raw broker (the wire), and against a ZMQBroker thread
(tcp and inproc) with aio and threaded clients: coroutine callbacks, heartbeats while a
handler awaits, broadcasts, re-registration after a broker restart, closing."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
import zmq
import zmq.asyncio

from cauldron_proto import Direction, Message, Text, aio, client, decode, encode
from cauldron_proto.client.core import KeywordState

from .aio_helpers import WAIT, eventually, run_with_broker, serving_aio
from .keyword_helpers import restarted_broker


@pytest.fixture(params=["tcp", "inproc"])
def transport(request):
    return request.param


async def refuse_odd(keyword, value):
    await asyncio.sleep(0)
    if value % 2:
        raise ValueError(f"{value} is odd")
    return value * 10 if value > 1000 else None  # a replacement for large values


def test_coroutine_callbacks_validate_and_compute_values(transport):
    async def scenario(broker, config):
        reads = []

        async def temperature(keyword):
            await asyncio.sleep(0)
            reads.append(keyword.name)
            return 21.5

        async with serving_aio("KTEST", config, "KTEST1", context=broker.context,
                               EVEN={"type": "integer", "value": 0, "validate": refuse_odd},
                               TEMP={"type": "double", "value": 20.0, "on_read": temperature},
                               PLAIN={"type": "integer", "value": 1, "validate": lambda kw, value: None}) as disp, \
                aio.Service("KTEST", config, timeout=WAIT, context=broker.context) as svc:
            assert await svc["EVEN"].write(4) == "4" and disp["EVEN"].value == 4
            with pytest.raises(client.DispatcherError) as info:
                await svc["EVEN"].write(5)
            assert info.value.text == "Write to EVEN refused: 5 is odd" and disp["EVEN"].value == 4
            assert await svc["EVEN"].write(2000) == "20000"
            assert await svc["TEMP"].read(binary=True) == 21.5 and reads == ["TEMP"]
            assert disp["TEMP"].value == 21.5
            assert await svc["PLAIN"].write(3) == "3"
            with pytest.raises(client.UnknownKeywordError):  # asked of the dispatcher itself
                await svc.run(svc.core.exchange(KeywordState("KTEST", "NOSUCH", None, "KTEST1"), "update", ""))
            with pytest.raises(client.DispatcherError, match="Bad command 'bogus'!"):
                await svc.run(svc.core.exchange(svc["PLAIN"], "bogus", ""))
    run_with_broker(transport, scenario)


def test_heartbeats_are_answered_while_a_handler_awaits():
    """The handler waits for 8 heartbeats (8 T > the broker's EXPIRY_MULTIPLE T expiry): they are answered
    meanwhile, the dispatcher is not expired, and the read gets the handler's value."""
    async def scenario(broker, config):
        beats = asyncio.Event()
        count = 0

        async def slow(keyword):
            await beats.wait()
            return 4

        async with serving_aio("KSLOW", config, "slow1", VALUE={"type": "integer", "value": 3, "on_read": slow}) as disp, \
                aio.Service("KSLOW", config, timeout=WAIT) as svc:
            heard = disp.registration.heard

            def counting(message, now, wall):
                nonlocal count
                if message.command == "heartbeat":
                    count += 1
                    if count >= 8:
                        beats.set()
                return heard(message, now, wall)

            disp.registration.heard = counting
            keyword = await svc.keyword("VALUE")
            assert await keyword.read(binary=True) == 4
            assert count >= 8 and broker.core.stats.expired == 0 and disp.registrations == 1
    run_with_broker("tcp", scenario, timeout=0.2)


def test_registers_again_after_a_broker_restart(caplog):
    caplog.set_level(logging.INFO, "cauldron_proto.aio.dispatcher")

    async def scenario(broker, config):
        async with serving_aio("KRESTART", config, "RESTART1", VALUE=("integer", 3)) as disp:
            assert disp.registrations == 1
            with contextlib.ExitStack() as stack:
                again = await asyncio.to_thread(stack.enter_context, restarted_broker(broker))
                assert again.endpoints == broker.endpoints
                await eventually(lambda: disp.registrations >= 2, message="registration with the new broker")
                async with aio.Service("KRESTART", config, timeout=WAIT) as svc:
                    await eventually(svc.locate, message="the new broker knowing the dispatcher")
                    assert await svc["VALUE"].write(4) == "4"
                await asyncio.to_thread(stack.close)
    run_with_broker("tcp", scenario, timeout=0.2)
    messages = [r.getMessage() for r in caplog.records]
    assert any("nothing from the broker" in m and "registering again" in m for m in messages), messages
    assert any("registered again" in m for m in messages), messages


def test_a_threaded_client_reads_writes_and_monitors_an_aio_dispatcher(transport):
    async def scenario(broker, config):
        async with serving_aio("KTEST", config, "AIO1", context=broker.context,
                               VALUE={"type": "integer", "value": 1, "validate": refuse_odd}) as disp:
            def threaded() -> list:
                values = []
                with client.Service("KTEST", config, timeout=WAIT, context=broker.context) as svc:
                    values.append(svc["VALUE"].read())
                    values.append(svc["VALUE"].write(8))
                    try:
                        svc["VALUE"].write(9)
                    except client.DispatcherError as exc:
                        values.append(exc.text)
                    values.append(svc.identify("VALUE"))
                return values

            assert await asyncio.to_thread(threaded) == [
                "1", "8", "Write to VALUE refused: 9 is odd", client.KeywordInfo("VALUE", "integer", "AIO1")]
            assert disp["VALUE"].value == 8
    run_with_broker(transport, scenario)


def test_broadcasts_reach_a_threaded_clients_monitor():
    async def scenario(broker, config):
        async with serving_aio("KTEST", config, "AIO1", VALUE=("integer", 1)) as disp:
            with client.Service("KTEST", config, timeout=WAIT) as svc:
                seen: asyncio.Queue = asyncio.Queue()
                loop = asyncio.get_running_loop()
                await asyncio.to_thread(  # svc["VALUE"] blocks for identify: not in the loop
                    lambda: svc["VALUE"].monitor(lambda value: loop.call_soon_threadsafe(seen.put_nowait, value),
                                                 prime=False))
                while True:  # the slow joiner: set values until one arrives
                    disp["VALUE"].set(disp["VALUE"].value + 1)
                    try:
                        value = await asyncio.wait_for(seen.get(), 0.1)
                        break
                    except TimeoutError:
                        continue
                assert (value.keyword, value.dispatcher, value.primed) == ("VALUE", "AIO1", False)
                disp["VALUE"].set(500)
                while (value := await asyncio.wait_for(seen.get(), WAIT)).value != 500:
                    pass
    run_with_broker("tcp", scenario)


def test_closing_cancels_handlers_in_flight():
    async def scenario(broker, config):
        entered = asyncio.Event()

        async def forever(keyword):
            entered.set()
            await asyncio.Event().wait()

        disp = aio.Dispatcher("KSTUCK", config, "STUCK1")
        disp.add_keyword("VALUE", "integer", 0, on_read=forever)
        disp.start()
        assert await disp.wait_registered(WAIT)
        async with aio.Service("KSTUCK", config, timeout=WAIT) as svc:
            read = asyncio.ensure_future(svc["VALUE"].read(timeout=WAIT))
            await asyncio.wait_for(entered.wait(), WAIT)
            assert len(disp._requests) == 1
            await disp.aclose()
            await disp.aclose()  # idempotent
            assert not disp._requests and disp._dealer is None and not disp.registered.is_set()
            read.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read
        with pytest.raises(RuntimeError, match="shut down"):
            disp.start()
    run_with_broker("tcp", scenario)


class RawBroker:
    """A ROUTER and a SUB in the loop, playing the broker to one dispatcher."""

    def __init__(self) -> None:
        self.context = zmq.asyncio.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.sub = self.context.socket(zmq.SUB)
        for sock in (self.router, self.sub):
            sock.linger = 0
        self.sub.subscribe(b"")
        self.config = {"broker": f"tcp://127.0.0.1:{self.router.bind_to_random_port('tcp://127.0.0.1')}",
                       "publish": f"tcp://127.0.0.1:{self.sub.bind_to_random_port('tcp://127.0.0.1')}",
                       "timeout": "0.2"}
        self.peer = b""

    async def receive(self) -> Message:
        self.peer, *frames = await asyncio.wait_for(self.router.recv_multipart(), WAIT)
        return decode(frames)

    async def send(self, message: Message, peer: bytes | None = None) -> None:
        await self.router.send_multipart([peer or self.peer, *encode(message)])

    def close(self) -> None:
        self.router.close(linger=0)
        self.sub.close(linger=0)
        self.context.term()


def test_the_wire_as_a_raw_broker_sees_it():
    """Welcome, ready and an inquiry; a heartbeat answered with its identifier; a request
    answered with its routing prefix and the dispatcher's name; a malformed message dropped;
    a broadcast with the lower-case service; 'not registered' means welcome again at once."""
    async def scenario():
        raw = RawBroker()
        try:
            async with aio.Dispatcher("KTest", raw.config, "RAW1") as disp:
                disp.add_keyword("VALUE", "integer", 7)
                welcome = await raw.receive()
                assert (welcome.direction, welcome.service, welcome.dispatcher, welcome.command) == (
                    Direction.DBQ, "ktest", "RAW1", "welcome")
                await raw.send(welcome.reply(Text.CONFIRMED))
                ready, check = await raw.receive(), await raw.receive()
                assert (ready.command, check.direction, check.command) == ("ready", Direction.UBQ, "check")
                await raw.send(check.reply("Broker Alive"))
                await asyncio.wait_for(disp.registered.wait(), WAIT)
                await raw.router.send_multipart([raw.peer, b"", b"garbage"])
                beat = Message.new(Direction.DBP, service="ktest", dispatcher="RAW1", command="heartbeat")
                await raw.send(beat.with_prefix(b""))
                answer = await raw.receive()
                assert (answer.direction, answer.identifier, answer.dispatcher) == (Direction.DBQ, beat.identifier, "RAW1")
                assert float(answer.payload) > 0 and len(answer.payload.split(".")[1]) == 1
                request = Message.new(Direction.CDQ, service="KTEST", keyword="VALUE", command="update", payload="")
                await raw.send(request.with_prefix(b"", b"client-1", b""))
                reply = await raw.receive()
                assert reply.prefix == (b"", b"client-1", b"")
                assert (reply.direction, reply.dispatcher, reply.payload, reply.identifier) == (
                    Direction.CDP, "RAW1", "7", request.identifier)
                while True:  # the slow joiner: set values until a broadcast arrives
                    disp["VALUE"].set(disp["VALUE"].value + 1)
                    try:
                        broadcast = decode(await asyncio.wait_for(raw.sub.recv_multipart(), 0.1))
                        break
                    except TimeoutError:
                        continue
                assert (broadcast.direction, broadcast.service, broadcast.keyword) == (Direction.CDB, "ktest", "VALUE")
                refused = Text.DISPATCHER_NOT_REGISTERED.format(dispatcher="RAW1", service="ktest")
                await raw.send(Message.new(Direction.DBE, service="ktest", dispatcher="RAW1", command="ready",
                                           payload=refused).with_prefix(b""))
                again = await raw.receive()
                assert again.command == "welcome" and not disp.registered.is_set()
        finally:
            raw.close()
    asyncio.run(scenario())


def test_a_burst_of_requests_larger_than_a_batch_is_all_answered():
    async def scenario():
        raw = RawBroker()
        try:
            async with aio.Dispatcher("KTEST", raw.config, "RAW1") as disp:
                disp.add_keyword("VALUE", "integer", 7)
                welcome = await raw.receive()
                await raw.send(welcome.reply(Text.CONFIRMED))
                await raw.receive(), await raw.receive()  # ready, check
                requests = [Message.new(Direction.CDQ, service="ktest", keyword="VALUE", command="update", payload="")
                            for _ in range(700)]
                for request in requests:  # no await between: one burst
                    raw.router.send_multipart([raw.peer, *encode(request.with_prefix(b"", b"c", b""))], zmq.NOBLOCK)
                replies = set()
                while len(replies) < len(requests):
                    reply = await raw.receive()
                    if reply.direction == Direction.CDP:
                        replies.add(reply.identifier)
                assert replies == {request.identifier for request in requests}
        finally:
            raw.close()
    asyncio.run(scenario())


def test_replies_wait_for_room_in_the_send_queue_rather_than_being_dropped():
    """Over inproc (no kernel buffers), a broker that reads nothing while 1,500 requests are
    answered: more replies than the queue holds (about 1,000) wait for room, none is dropped."""
    async def scenario():
        context = zmq.asyncio.Context()
        router = context.socket(zmq.ROUTER)
        router.linger = 0
        router.rcvhwm = 1
        router.sndhwm = 0
        router.bind("inproc://aio-dispatcher-backpressure")
        config = {"broker": "inproc://aio-dispatcher-backpressure", "publish": "inproc://aio-nobody", "timeout": "5"}
        try:
            async with aio.Dispatcher("KTEST", config, "RAW1", context=context) as disp:
                disp.add_keyword("VALUE", "integer", 7)
                heard, real = [0], disp.registration.heard

                def counting(message, now, wall):
                    heard[0] += message.direction == Direction.CDQ
                    return real(message, now, wall)

                disp.registration.heard = counting
                peer, *frames = await asyncio.wait_for(router.recv_multipart(), WAIT)
                await router.send_multipart([peer, *encode(decode(frames).reply(Text.CONFIRMED))])
                for _ in range(2):  # ready, check
                    await asyncio.wait_for(router.recv_multipart(), WAIT)
                requests = [Message.new(Direction.CDQ, service="ktest", keyword="VALUE", command="update", payload="")
                            for _ in range(1500)]
                for start in range(0, len(requests), 100):
                    for request in requests[start:start + 100]:
                        router.send_multipart([peer, *encode(request.with_prefix(b"", b"c", b""))], zmq.NOBLOCK)
                    await asyncio.sleep(0)  # let the dispatcher take them and answer
                await eventually(lambda: heard[0] == len(requests), message="every request taken")
                for _ in range(3):  # each request's task answers and tries to send
                    await asyncio.sleep(0)
                assert len(disp._requests) > 0  # some wait for room: the broker reads nothing yet
                replies = set()
                while len(replies) < len(requests):
                    peer, *frames = await asyncio.wait_for(router.recv_multipart(), WAIT)
                    replies.add(decode(frames).identifier)
                assert replies == {request.identifier for request in requests}
        finally:
            router.close(linger=0)
            context.term()
    asyncio.run(scenario())


def test_a_broker_heartbeating_faster_than_the_dispatcher_is_named_with_both_periods(caplog):
    caplog.set_level(logging.WARNING, "cauldron_proto.aio.dispatcher")

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "heartbeats every" in r.getMessage()]

    async def scenario(broker, config):
        async with serving_aio("KPERIOD", {**config, "timeout": "1.0"}, "aperiod1", VALUE=("integer", 3)):
            await eventually(said, message="a warning naming both heartbeat periods")
    run_with_broker("tcp", scenario, timeout=0.1)
    assert said()[0].startswith("aperiod1: the broker sends heartbeats every 0.1 s but this dispatcher's heartbeat "
                                "period is 1 s")
