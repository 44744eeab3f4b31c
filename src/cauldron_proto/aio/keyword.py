"""A keyword seen from the asyncio client: a handle to await, and its monitors.

:class:`Keyword` is the client core's :class:`~cauldron_proto.client.core.KeywordState`
(type, owner, enumerators, last value) with awaited operations; each runs a core procedure
through its :class:`~cauldron_proto.aio.Service`. A :class:`Monitor` is an async iterator
over a queue (a :class:`Feed`) the service fills with the keyword's broadcasts.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Optional

from ..protocol import Message
from ..client.core import KeywordState, KeywordValue, Procedure

if TYPE_CHECKING:
    from .client import Service

__all__ = ["Keyword", "Monitor", "Feed", "END"]

END = object()  # on a monitor's queue: the service closed


class Feed(asyncio.Queue):
    """A monitor's queue of values (unbounded: a consumer slower than the broadcasts holds them all)."""


class Keyword(KeywordState):
    """Keyword ``name`` of an :class:`aio.Service <Service>`: a handle whose operations are awaited.

    ``svc["VALUE"]`` gives the handle at once; its first awaited operation identifies it
    (fan-out ``identify``, and ``units`` for an enumerated keyword, as the threaded client
    does on ``svc["VALUE"]``), once however many tasks await it together. ``type``,
    ``dispatcher`` and ``enumerators`` are None/empty until then (``is_identified`` says;
    ``await keyword.identified()`` identifies it now).
    Values are those of the threaded client: ascii text, or with ``binary=True`` the Python value.
    """

    def __init__(self, service: "Service", name: str):
        super().__init__(service.name, name)
        self.service = service
        self._identified = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<aio.Keyword {self.service.name}.{self.name} {self.type or '(not identified)'}>"

    @property
    def is_identified(self) -> bool:
        """Whether ``identify`` has answered for this handle (its type and owner are known)."""
        return self._identified

    async def identified(self, timeout: Optional[float] = None) -> "Keyword":
        """This handle, identified (now, if it was not yet)."""
        if not self._identified:
            async with self._lock:
                if not self._identified:
                    await self.service.run(self.service.core.describe(self), timeout)
                    self.service.core.keywords[self.name] = self
                    self._identified = True
        return self

    async def read(self, binary: bool = False, timeout: Optional[float] = None) -> Any:
        """The current value: ascii text, or with ``binary=True`` the Python value."""
        await self.identified(timeout)
        value = await self._value(self.service.core.read(self), timeout, False)
        return value.value if binary else value.ascii

    async def write(self, value: Any, timeout: Optional[float] = None) -> Optional[str]:
        """Write ``value`` (checked against the type first); the resulting ascii value."""
        await self.identified(timeout)
        return (await self._value(self.service.core.write(self, value), timeout, False)).ascii

    async def units(self, timeout: Optional[float] = None) -> Any:
        """The keyword's units, decoded (an enumerated keyword's: the map of integer text to names)."""
        await self.identified(timeout)
        return await self.service.run(self.service.core.units(self), timeout)

    def monitor(self, prime: bool = True, timeout: Optional[float] = None) -> "Monitor":
        """The keyword's values as they come: ``async for value in keyword.monitor():``, first
        the current value (``prime``), then every broadcast, as :class:`KeywordValue` s.
        Leaving the loop (or ``async with``) stops it."""
        return Monitor(self, prime, timeout)

    async def _value(self, procedure: Procedure[Message], timeout: Optional[float], primed: bool) -> KeywordValue:
        reply = await self.service.run(procedure, timeout)
        return self.value_of(reply.payload, reply.dispatcher, time.time(), primed)


class Monitor:
    """An async iterator of a keyword's values (see :meth:`Keyword.monitor`).

    Started by its first ``__anext__``: the keyword is identified, the service subscribes to
    broadcasts (once), the current value is read if ``prime``. :meth:`close` (or leaving
    ``async with``, or the iterator being dropped after ``break``) stops it; it also ends
    when the service closes. A broadcast in the moment after it starts may be missed while
    the subscription travels to the dispatcher (ZMQ's slow joiner).
    """

    def __init__(self, keyword: Keyword, prime: bool = True, timeout: Optional[float] = None):
        self.keyword, self.prime, self.timeout = keyword, prime, timeout
        self._feed = Feed()
        self._started = self._closed = False

    def __aiter__(self) -> "Monitor":
        return self

    async def __anext__(self) -> KeywordValue:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            primed = await self._start()
            if primed is not None:
                return primed
        value = await self._feed.get()
        if value is END:
            self.close()
            raise StopAsyncIteration
        return value

    async def _start(self) -> Optional[KeywordValue]:
        service = self.keyword.service
        await self.keyword.identified(self.timeout)
        service._add_feed(self.keyword.name, self._feed)
        try:
            await service._subscribe(self.timeout)
            self._started = True
            if self.prime:
                return await self.keyword._value(service.core.read(self.keyword), self.timeout, True)
        except BaseException:
            self.close()
            raise
        return None

    def close(self) -> None:
        """Stop: no more values are taken for it."""
        if not self._closed:
            self._closed = True
            self.keyword.service._remove_feed(self.keyword.name, self._feed)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "Monitor":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()
