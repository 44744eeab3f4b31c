"""Helpers for the asyncio helpers' tests: run a coroutine test, a broker on either transport,
an aio dispatcher serving keywords, polling in the loop.

    def test_read(any_transport):
        async def scenario(broker, config):
            async with serving_aio("KTEST", config, VALUE=("integer", 1)) as disp, \\
                    aio.Service("KTEST", config, context=broker.context) as svc:
                assert await svc["VALUE"].read() == "1"
        run_with_broker(any_transport, scenario)
"""

from __future__ import annotations

import asyncio
import inspect
from contextlib import asynccontextmanager
from typing import Any, Awaitable, Callable

from cauldron_proto import aio
from cauldron_proto.testing import WAIT, broker_thread

from .keyword_helpers import config_for

__all__ = ["run_with_broker", "serving_aio", "eventually", "WAIT"]


def run_with_broker(transport: str, scenario: Callable[..., Awaitable[Any]], **broker_options: Any) -> Any:
    """Run ``scenario(broker, config)`` in a new event loop, with a broker thread on ``transport``."""
    with broker_thread(transport, **broker_options) as broker:
        return asyncio.run(asyncio.wait_for(scenario(broker, config_for(broker)), 4 * WAIT))


@asynccontextmanager
async def serving_aio(service: str, config: dict, name: str | None = None, *, context=None, **keywords: Any):
    """A started aio.Dispatcher registered with the broker; ``keywords`` map NAME to
    (type, value) or to a dict of ``add_keyword`` arguments. Closed on exit."""
    disp = aio.Dispatcher(service, config, name, context=context)
    try:
        for keyword, spec in keywords.items():
            if isinstance(spec, dict):
                disp.add_keyword(keyword, **spec)
            else:
                disp.add_keyword(keyword, *spec)
        disp.start()
        assert await disp.wait_registered(WAIT), f"dispatcher {disp.dispatcher} did not register"
        yield disp
    finally:
        await disp.aclose()


async def eventually(condition: Callable[[], Any], timeout: float = WAIT, message: str = "condition") -> Any:
    """Poll ``condition`` (a function, or a coroutine function) in the loop until it is true;
    fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > end:
            raise AssertionError(f"{message} not met within {timeout} s")
        await asyncio.sleep(0.02)
