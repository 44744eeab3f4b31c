"""The dispatcher conformance suite against aio.Dispatcher: the runner plays the broker, the
dispatcher runs in an event loop of its own (a thread this test starts: the library starts
none), with coroutine callbacks; every case passes, strict."""

from __future__ import annotations

import asyncio
import threading

from cauldron_proto import Direction, aio
from cauldron_proto.aio import dispatcher as aio_dispatcher
from cauldron_proto.conformance import Settings, load_cases
from cauldron_proto.conformance.dispatcher_link import run_dispatcher_suite

T = 0.3  # the dispatcher's heartbeat period, as in test_conformance_dispatcher
CASES = load_cases(suite="dispatcher")


async def slow_check(keyword, value):
    await asyncio.sleep(0)  # a coroutine validator: awaited by the dispatcher


class LoopThread:
    """An event loop in a thread, serving an aio.Dispatcher until ``stop()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aio-dispatcher-loop", daemon=True)
        self.thread.start()
        self.dispatcher = None

    def serve(self, endpoints: dict[str, str]) -> None:
        async def start() -> None:
            disp = aio.Dispatcher("testsvc", {"broker": endpoints["router"], "publish": endpoints["publish"],
                                              "timeout": str(T)}, "disp1")
            disp.add_keyword("NAME", "string", "hello", validate=slow_check)
            disp.add_keyword("COUNT", "integer", 1, validate=slow_check)
            disp.add_keyword("MODE", "enumerated", 1, enumerators=["Off", "On", "Standby"])
            disp.start()
            self.dispatcher = disp

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def stop(self) -> None:
        if self.dispatcher is not None:
            asyncio.run_coroutine_threadsafe(self.dispatcher.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def run_suite() -> list:
    runner = LoopThread()
    try:
        settings = Settings(heartbeat_timeout=T, write_keyword="NAME", write_value="written-1",
                            refuse_keyword="COUNT", refuse_value="abc")
        return run_dispatcher_suite(settings, on_bound=runner.serve)
    finally:
        runner.stop()


def test_aio_dispatcher_passes_the_dispatcher_suite():
    results = run_suite()
    failing = {r.id: (r.expected, r.actual) for r in results if r.status != "pass"}
    assert failing == {} and len(results) == len(CASES) >= 15


def test_an_aio_dispatcher_broken_on_purpose_fails_the_cases_it_breaks(monkeypatch):
    """Fan-out replies without the dispatcher's name: the fan-out cases fail, the others pass."""
    real = aio_dispatcher.finish

    def nameless(*args):
        done = real(*args)
        fanout = done.reply.direction in (Direction.SDP, Direction.SDE)
        return done._replace(reply=done.reply.replace(dispatcher=None)) if fanout else done

    monkeypatch.setattr(aio_dispatcher, "finish", nameless)
    failing = {r.id for r in run_suite() if r.status != "pass"}
    assert failing == {"request.identify-own-keyword", "request.identify-missing-keyword", "request.enumerate",
                       "request.fanout-update", "errors.fanout-error-names-dispatcher"}
