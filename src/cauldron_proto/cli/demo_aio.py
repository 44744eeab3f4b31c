"""``cauldron-demo --asyncio``: the demo's dispatcher and client on asyncio, in one event loop.

The same keywords and the same conversation as the threaded demo (and the same lines
printed), with :class:`cauldron_proto.aio.Dispatcher` serving (``TARGET`` validated by a
coroutine, ``CLOCK`` ticked by a task) and :class:`cauldron_proto.aio.Service` asking, its
monitors read with ``async for``. The broker is the demo's broker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import aio, client
from .command import say
from .keywords import format_value

SERVICE = "DEMO"


async def _in_range(keyword: Any, value: float) -> None:
    await asyncio.sleep(0)  # a coroutine validator: it could ask hardware here
    if not 0 <= value <= 100:
        raise ValueError(f"{value:g} mm is outside 0..100 mm")


def _read_only(keyword: Any, value: str) -> None:
    raise PermissionError(f"{keyword.name} is read-only")


async def _tick(disp: aio.Dispatcher) -> None:
    while True:
        await asyncio.sleep(0.5)
        disp["CLOCK"].set(disp["CLOCK"].value + 1)


async def _attempt(label: str, operation) -> None:
    try:
        say(f"client     {label} -> {await operation!r}")
    except (client.DispatcherError, KeyError) as exc:
        say(f"client     {label} -> {type(exc).__name__}: {exc}")


async def _watch(monitor: aio.Monitor, seen: list, subscribed: asyncio.Event) -> None:
    async for value in monitor:
        seen.append(value)
        if not value.primed:
            subscribed.set()
        say(f"monitor    {format_value(value)}{'  (primed)' if value.primed else ''}")


async def _client(config: dict, duration: float) -> int:
    seen: list = []
    subscribed = asyncio.Event()  # a broadcast arrived: the subscription reached the dispatcher
    loop = asyncio.get_running_loop()
    async with aio.Service(SERVICE, config, timeout=5.0) as svc:
        say(f"client     keywords() -> {await svc.keywords()}")
        say(f"client     identify('TARGET') -> {tuple(await svc.identify('TARGET'))}")
        await _attempt("read GREETING", svc["GREETING"].read())
        await _attempt("TARGET units", svc["TARGET"].units())
        watchers = [asyncio.create_task(_watch(svc[name].monitor(), seen, subscribed)) for name in ("CLOCK", "TARGET")]
        end = loop.time() + duration
        try:
            await asyncio.wait_for(subscribed.wait(), 5.0)  # CLOCK ticks every 0.5 s
        except TimeoutError:
            pass
        for value in (12.5, 87.0):
            await asyncio.sleep(duration / 4)
            await _attempt(f"write TARGET = {value}", svc["TARGET"].write(value))
        await _attempt("write TARGET = 500", svc["TARGET"].write(500))
        await _attempt("write GREETING = 'bye'", svc["GREETING"].write("bye"))
        await _attempt("read NOSUCH", svc["NOSUCH"].read())
        await asyncio.sleep(max(0.0, end - loop.time()))
        await _attempt("read TARGET (binary)", svc["TARGET"].read(True))
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    ticks = sum(1 for value in seen if value.keyword == "CLOCK")
    say(f"done       {len(seen)} values monitored, {ticks} of them CLOCK ticks")
    return 0


async def demo(config: dict, duration: float) -> int:
    """Serve the demo keywords and talk to them for ``duration`` seconds; the exit status."""
    async with aio.Dispatcher(SERVICE, config, "demo-dispatcher") as disp:
        disp.add_keyword("CLOCK", "integer", 0, "ticks")
        disp.add_keyword("TARGET", "double", 50.0, "mm", validate=_in_range)
        disp.add_keyword("GREETING", "string", "hello from the demo dispatcher", validate=_read_only)
        if not await disp.wait_registered(10):
            raise RuntimeError("the dispatcher did not register with the broker")
        say(f"dispatcher {disp.dispatcher} serves {SERVICE}: {', '.join(disp.keywords())} (asyncio)")
        ticking = asyncio.create_task(_tick(disp))
        try:
            return await _client(config, duration)
        finally:
            ticking.cancel()
            await asyncio.gather(ticking, return_exceptions=True)
