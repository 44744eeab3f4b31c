"""Running a dispatcher's answer, whose user callbacks may be plain functions or coroutines.

A keyword's read and write (and so every answer to a request) are *steps*: a generator
that yields each user callback to call (a zero-argument callable: ``on_read``,
``validate``) and is sent its result, or has what it raised thrown in at the same point,
so the rules around the callbacks (parse, validate, store, broadcast, map errors to error
replies) are written once. :func:`run` calls the callbacks in place (the threaded
dispatcher's workers); :func:`run_async` awaits those that return an awaitable
(:class:`cauldron_proto.aio.Dispatcher`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generator, TypeVar

__all__ = ["Steps", "run", "run_async"]

T = TypeVar("T")
#: Yields user callbacks to call, is sent their results, returns ``T``.
Steps = Generator[Callable[[], Any], Any, T]


def run(steps: Steps[T]) -> T:
    """Run ``steps``, calling each callback in place; a callback returning an awaitable is a
    TypeError (thrown in, so it is answered as the callback's failure)."""
    try:
        call = next(steps)
        while True:
            try:
                result = call()
                if inspect.isawaitable(result):
                    getattr(result, "close", lambda: None)()
                    raise TypeError(f"{getattr(call, 'func', call)!r} returned an awaitable: "
                                    "coroutine callbacks need cauldron_proto.aio.Dispatcher")
            except Exception as exc:
                call = steps.throw(exc)
            else:
                call = steps.send(result)
    except StopIteration as done:
        return done.value


async def run_async(steps: Steps[T]) -> T:
    """Run ``steps``, awaiting each callback's result when it is awaitable (a coroutine)."""
    try:
        call = next(steps)
        while True:
            try:
                result = call()
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                call = steps.throw(exc)
            else:
                call = steps.send(result)
    except StopIteration as done:
        return done.value
