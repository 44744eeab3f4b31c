"""The asyncio client: a service's keywords, awaited, on ``zmq.asyncio`` sockets.

Theory of operation
-------------------
A thin layer over :class:`~cauldron_proto.client.core.ClientCore`, the threaded client's
protocol core: :meth:`Service.run` sends each request a core procedure yields on the one
DEALER socket, files a future under the request's identifier in a
:class:`~cauldron_proto.client.core.Pending` table and awaits it, with the request's own
timeout. One reader task takes every answer off the DEALER and sets the future filed under
its identifier (answers nobody waits for any more are dropped), so any number of requests
may be in flight at once from any number of tasks. A request that times out or is cancelled
takes its future off the table in ``finally``: nothing is left behind. Broadcasts arrive on
a SUB socket (made for the first monitor, at the address ``lookup`` gives) read by a second
task, and are put on the queue of every monitor of their keyword.

A third task reads the DEALER's handshake monitor
(:class:`~cauldron_proto.security.handshake.HandshakeWatch`), as the threaded client does: a
broker that refuses the connection for good (a CURVE key it does not authorize, CURVE on one
side only) fails every request in flight at once with
:class:`~cauldron_proto.client.BrokerRefusedError`, and the DEALER and its tasks are closed;
the next request connects again. A request waiting for room to send races its own future, so
a refusal ends it even when the socket can take nothing.

Nothing here starts an event loop or a thread: sockets and tasks are made in the running
loop on ``async with`` (or the first request), and :meth:`Service.aclose` cancels the tasks
and closes every socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Mapping, Optional, cast

import zmq
import zmq.asyncio

from ..protocol import Message, encode
from ..client.core import ClientCore, KeywordInfo, Pending, Procedure, T, received, topics_for
from ..client.errors import DispatcherError
from ..config import ConfigError, ConfigLike, unusable
from ..peer import INQUIRY_WAIT, HelperSettings, ShutDownError, inquire
from ..security.handshake import HandshakeWatch, TellOnce
from ._zmq import async_context, batch
from .keyword import END, Feed, Keyword, Monitor

__all__ = ["Service", "Keyword", "Monitor"]

_BATCH = 500  # messages taken at once before the reader task lets others run


class _Refused(Exception):
    """Set on the futures of requests in flight when the broker refuses the connection."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Service:
    """Asyncio client of service ``name``: ``svc["KW"]`` is a :class:`Keyword` handle to await.

    ``config``, ``timeout``, ``broker``, ``subscribe``, ``curve_key`` and ``curve_server_key``
    are those of :class:`cauldron_proto.client.Service`. ``context``: a ``zmq.asyncio``
    context, or any ``zmq.Context`` (shadowed: inproc peers share it); default a new one.
    Use ``async with``, or call :meth:`aclose`.
    """

    def __init__(self, name: str, config: "ConfigLike | Mapping[str, Any]" = None, *,
                 timeout: Optional[float] = None, context: Optional[zmq.Context] = None,
                 broker: Optional[str] = None, subscribe: Optional[str] = None,
                 curve_key: Optional[str] = None, curve_server_key: Optional[str] = None):
        self.name = name
        self.settings = HelperSettings.load(config, broker=broker, subscribe=subscribe, timeout=timeout,
                                      curve_key=curve_key, curve_server_key=curve_server_key)
        self.timeout = self.settings.timeout
        problem = unusable(self.settings.broker)
        if problem is not None:  # at once, rather than a request never answered
            raise ConfigError(f"cannot connect to a broker at {problem}")
        self.log = logging.getLogger(f"cauldron_proto.aio.client.{name}")
        #: the I/O-free protocol core, shared with the threaded client
        self.core = ClientCore(name, self.settings.broker, self.log)
        self.wire_name = self.core.wire_name
        self._given_context = context
        self._context: Optional[zmq.asyncio.Context] = None
        self._own_context = False
        self._dealer: Optional[zmq.asyncio.Socket] = None
        self._watch: Optional[HandshakeWatch] = None
        self._connection_tasks: list[asyncio.Task] = []  # the DEALER's reader and its handshake watch
        self._told = TellOnce()  # the handshake failures logged
        self._sub: Optional[zmq.asyncio.Socket] = None
        self._tasks: list[asyncio.Task] = []
        self._pending: Pending[asyncio.Future] = Pending()
        self._handles: dict[str, Keyword] = {}
        self._feeds: dict[str, list[Feed]] = {}  # the monitors' queues, by keyword (not the monitors:
        # a monitor dropped after ``break`` is collected at once, and closing removes its feed)
        self._subscribe_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<aio.Service {self.name} via {self.settings.broker}>"

    # Keywords --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Keyword:
        """Keyword ``name``'s handle, at once: identified on its first awaited operation (an
        :class:`~cauldron_proto.client.UnknownKeywordError` then if no dispatcher has it)."""
        key = name.upper()
        handle = self._handles.get(key)
        if handle is None:
            handle = self._handles[key] = Keyword(self, key)
        return handle

    async def keyword(self, name: str, timeout: Optional[float] = None) -> Keyword:
        """Keyword ``name``'s handle, identified now."""
        return await self[name].identified(timeout)

    async def identify(self, name: str, timeout: Optional[float] = None) -> KeywordInfo:
        """Fan-out ``identify``: keyword ``name``'s type and owner."""
        return await self.run(self.core.identify(name), timeout)

    async def keywords(self, timeout: Optional[float] = None) -> list[str]:
        """Fan-out ``enumerate``: the names of every keyword of the service."""
        return await self.run(self.core.enumerate(), timeout)

    async def locate(self, timeout: Optional[float] = None) -> bool:
        """Whether the broker has at least one dispatcher for this service."""
        return await self.run(self.core.locate(), timeout)

    async def lookup(self, timeout: Optional[float] = None) -> str:
        """The address the broker says to connect a SUB socket to, for broadcasts."""
        return await self.run(self.core.lookup(), timeout)

    # Lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Make the DEALER and its reader task in the running loop (done by ``async with``
        and by the first request); ShutDownError after :meth:`aclose`."""
        if self._closed:
            raise ShutDownError(f"{self!r} was shut down")
        if self._dealer is not None:
            return
        loop = asyncio.get_running_loop()
        if self._context is None:
            self._context, self._own_context = async_context(self._given_context)
        self._dealer = self.settings.socket(self._context, zmq.DEALER)
        self._watch = HandshakeWatch(self._dealer, self.settings.curve is not None)
        self._dealer.connect(self.settings.broker)
        self._connection_tasks = [
            loop.create_task(self._read(self._dealer, self._answered), name=f"{self!r} answers"),
            loop.create_task(self._handshakes(self._watch), name=f"{self!r} handshakes")]

    async def aclose(self) -> None:
        """Cancel the tasks, fail requests in flight with ShutDownError, end the monitors,
        close every socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._tasks, *self._connection_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in self._pending.drain():
            if not future.done():
                future.set_exception(ShutDownError(f"{self!r} was shut down"))
        for feeds in self._feeds.values():
            for feed in feeds:
                feed.put_nowait(END)
        self._disconnect()
        if self._sub is not None:
            self._sub.close(linger=0)
        self._sub = None
        if self._own_context and self._context is not None:
            self._context.term()

    async def __aenter__(self) -> "Service":
        self.open()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    @property
    def handshake_failure(self) -> Optional[str]:
        """Why the last handshake with the broker failed; None once one succeeds."""
        return self._told.reason

    # Requests --------------------------------------------------------------------------
    async def run(self, procedure: Procedure[T], timeout: Optional[float] = None) -> T:
        """Run a core procedure: send each request it yields and await its reply (at most
        ``timeout`` seconds each, default :attr:`timeout`); its result."""
        wait = self.timeout if timeout is None else timeout
        try:
            request = next(procedure)
            while True:
                request = procedure.send(await self._exchange(request, wait))
        except StopIteration as done:
            return done.value
        finally:
            procedure.close()

    async def _broker_alive(self) -> Optional[bool]:
        """Whether a broker answers an inquiry (one round trip, at most ``INQUIRY_WAIT`` s), asked
        from a worker thread so the event loop goes on meanwhile."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, inquire, zmq.Context.instance(), self.settings.broker, self.settings.curve, INQUIRY_WAIT,
                self.log)
        except zmq.ZMQError:
            return None

    async def _exchange(self, request: Message, wait: float) -> Message:
        self.open()
        future = asyncio.get_running_loop().create_future()
        key = self._pending.file(request, future)
        assert self._dealer is not None, "open() made it, or raised"
        # a Future (pyzmq's stubs say only Awaitable)
        sent = cast("asyncio.Future[Any]", self._dealer.send_multipart([b"", *encode(request)]))
        try:
            async with asyncio.timeout(wait):
                if not sent.done():  # no room yet: wait for it, or for a refusal
                    await asyncio.wait((sent, future), return_when=asyncio.FIRST_COMPLETED)
                if sent.done() and not sent.cancelled() and (error := sent.exception()) is not None:
                    raise error
                return await future
        except TimeoutError:
            handshake = self.handshake_failure
            alive = None if handshake else await self._broker_alive()
            raise self.core.timeout_error(request, wait, handshake, alive) from None
        except _Refused as refused:
            raise self.core.refused_error(request, refused.reason) from None
        finally:
            if not sent.done():
                sent.cancel()  # not sent in time: never send it later
            self._pending.forget(key)

    async def _handshakes(self, watch: HandshakeWatch) -> None:
        """Read the DEALER's handshake monitor until the broker refuses the connection for good."""
        while True:
            succeeded, failure = watch.outcome(await cast(zmq.asyncio.Socket, watch.socket).recv_multipart())
            if self._told.heard(succeeded, failure) and failure is not None:  # INFO: BrokerRefusedError tells
                self.log.info("%s: %s", self.name, failure.describe(self.settings.broker))
            if failure is not None and failure.permanent:
                self._refused(failure.reason)
                return

    def _refused(self, reason: str) -> None:
        """libzmq gave the connection up: fail every request in flight, close the DEALER."""
        for future in self._pending.drain():
            if not future.done():
                future.set_exception(_Refused(reason))
        current = asyncio.current_task()
        for task in self._connection_tasks:
            if task is not current:
                task.cancel()
        self._disconnect()

    def _disconnect(self) -> None:
        if self._watch is not None:
            self._watch.close()  # its monitor, then the DEALER
            self._watch = self._dealer = None

    async def _read(self, sock: zmq.asyncio.Socket, handle) -> None:
        """Await a message, then take what else is queued without waiting (up to a batch)."""
        now: zmq.Socket = zmq.Socket.shadow(sock.underlying)  # the same socket, for receives that never wait
        while True:
            for frames in batch(await sock.recv_multipart(), now, _BATCH):
                message = received(frames, self.log)
                if message is not None:
                    handle(message)

    def _answered(self, message: Message) -> None:
        future = self._pending.answer(message)
        if future is None or future.done():
            self.log.debug("dropped an answer nobody waits for: %r", message)
            return
        future.set_result(message)

    # Monitors --------------------------------------------------------------------------
    async def _subscribe(self, timeout: Optional[float]) -> None:
        async with self._subscribe_lock:
            if self._sub is not None:
                return
            try:
                address = await self.lookup(timeout)
            except DispatcherError as exc:
                address = self.settings.subscribe
                self.log.warning("lookup failed (%s); using the configured subscribe address %s", exc, address)
            if self._closed:
                raise ShutDownError(f"{self!r} was shut down")
            assert self._context is not None, "open() made it"
            self._sub = self.settings.socket(self._context, zmq.SUB)
            self._sub.connect(address)
            for topic in topics_for(self.name):
                self._sub.setsockopt(zmq.SUBSCRIBE, topic)
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._read(self._sub, self._broadcast), name=f"{self!r} broadcasts"))

    def _broadcast(self, message: Message) -> None:
        feeds = self._feeds.get(message.keyword_key or "")
        if feeds:
            value = self.core.broadcast_value(message, time.time())
            if value is not None:
                for feed in feeds:
                    feed.put_nowait(value)

    def _add_feed(self, key: str, feed: Feed) -> None:
        self._feeds.setdefault(key, []).append(feed)

    def _remove_feed(self, key: str, feed: Feed) -> None:
        feeds = self._feeds.get(key, [])
        if feed in feeds:
            feeds.remove(feed)
        if not feeds:
            self._feeds.pop(key, None)

    @property
    def monitoring(self) -> dict[str, int]:
        """How many monitors run, by keyword name."""
        return {key: len(feeds) for key, feeds in self._feeds.items()}
