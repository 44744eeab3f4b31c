"""What the client and dispatcher helpers share: their settings, the I/O thread and a worker pool.

Theory of operation
-------------------
ZMQ sockets are not thread-safe, so each helper has one :class:`IOThread` that creates,
uses and closes every socket of the helper. Other threads never touch those sockets: they
hand work over with :meth:`IOThread.post`, which appends to a :class:`Mailbox` (a deque) and
wakes the I/O thread through an inproc PUSH/PULL pair (one wake-up byte at most is in
flight; the sending side is used under a lock). The I/O thread polls its own sockets and
the mailbox together, so a posted item is handled at once; ``stop()`` is a posted item too.
Sockets close with linger 0 in ``finally``; a terminated context is a clean exit.

Slow work (a dispatcher's keyword handlers) runs in a :class:`WorkerPool` of daemon threads,
never in the I/O thread, whose only jobs are moving frames and keeping time.
"""

from __future__ import annotations

import collections
import configparser
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, TypeVar

import zmq

from .protocol import CONFIG_SECTION, Direction, Message, RemoteProtocolError, Text, decode, encode
from .config import ConfigLike, address, get_bool, get_float, get_int, is_ipv6, read_configuration
from .security import PeerCurve, peer_curve
from .security.handshake import HandshakeWatch
from .client.errors import ShutDownError

__all__ = ["HelperSettings", "Mailbox", "IOThread", "WorkerPool", "ShutDownError", "ask", "inquire", "term_owned_context"]

_STOP = object()
#: A socket of the type its context makes (a ``zmq.asyncio.Socket`` for an asyncio context).
_Socket = TypeVar("_Socket", bound=zmq.Socket)


@dataclass(frozen=True)
class HelperSettings:
    """The `[zmq]` settings a helper uses: addresses, the heartbeat period, pool size, and
    CURVE keys (``curve``: None unless ``curve_server_key`` is set)."""

    broker: str
    publish: str
    subscribe: str
    timeout: float
    heartbeat: bool
    pool: int
    curve: Optional[PeerCurve] = None

    @classmethod
    def load(cls, config: "ConfigLike | Mapping[str, Any]" = None, **overrides: Any) -> "HelperSettings":
        """The settings from a path, a ConfigParser, a mapping of `[zmq]` keys or None.

        Keyword arguments that are not None replace the configured value of that key.
        """
        if isinstance(config, Mapping) and not isinstance(config, configparser.RawConfigParser):
            parser = configparser.ConfigParser()
            parser.read_dict({CONFIG_SECTION: {k: str(v) for k, v in config.items()}})
            config = parser
        cfg = read_configuration(config)
        cfg.override(overrides, origin="arguments")
        return cls(address(cfg, "broker"), address(cfg, "publish"), address(cfg, "subscribe"),
                   get_float(cfg, "timeout"), get_bool(cfg, "heartbeat"), max(1, get_int(cfg, "pool")),
                   peer_curve(cfg))

    def socket(self, context: zmq.Context[_Socket], kind: int) -> _Socket:
        """A new socket of ``kind`` toward the broker: linger 0, and a CURVE client if configured."""
        sock = context.socket(kind)
        sock.linger = 0
        sock.ipv6 = any(is_ipv6(where) for where in (self.broker, self.publish, self.subscribe))
        if self.curve is not None:
            self.curve.client_socket(sock)
        return sock


#: Seconds a client helper waits for the inquiry that tells, after a request got no answer,
#: whether a broker answers at all (the diagnosis in ``RequestTimeoutError``).
INQUIRY_WAIT = 2.0


def inquire(context: zmq.Context, address: str, curve: Optional[PeerCurve], timeout: float,
            log: logging.Logger) -> bool:
    """True if a broker answers an inquiry (``UBQ check``) at ``address`` within ``timeout`` s
    (see :func:`ask`)."""
    answer = ask(context, address, curve, Message.new(Direction.UBQ, command="check"), timeout, log)
    return answer is not None and answer.payload == Text.BROKER_ALIVE


def ask(context: zmq.Context, address: str, curve: Optional[PeerCurve], request: Message, timeout: float,
        log: logging.Logger) -> Optional[Message]:
    """The broker's answer to ``request`` at ``address`` within ``timeout`` s, or None.

    One REQ socket (a CURVE client with ``curve``), closed with linger 0 whatever happens. A
    broker that refuses the connection in its handshake is None at once, with a warning on
    ``log`` saying why. ``zmq.ZMQError`` if the address cannot be connected to.
    """
    sock = context.socket(zmq.REQ)
    sock.linger = 0
    sock.ipv6 = is_ipv6(address)
    watch = HandshakeWatch(sock, curve is not None)
    try:
        if curve is not None:
            curve.client_socket(sock)
        sock.connect(address)
        sock.send_multipart(encode(request), zmq.NOBLOCK)
        poller = zmq.Poller()
        watch.register(poller)
        deadline = time.monotonic() + timeout
        while True:
            ready = dict(poller.poll(int(max(0.0, deadline - time.monotonic()) * 1000)))
            if sock in ready:
                answer = decode(sock.recv_multipart())
                return answer if answer.identifier == request.identifier else None
            if watch.socket in ready:
                refused = [failure for _, failure in watch.read() if failure is not None and failure.permanent]
                if refused:
                    log.warning("the broker at %s refused the connection: %s", address, refused[0].reason)
                    return None
            if time.monotonic() >= deadline:
                return None
    except (zmq.Again, RemoteProtocolError):
        return None
    finally:
        watch.close()  # its monitor, then the REQ socket


class Mailbox:
    """Items handed to the I/O thread from any thread, with an inproc wake-up."""

    def __init__(self, context: zmq.Context):
        self._context = context
        self._address = f"inproc://cauldron-mailbox-{uuid.uuid4().hex}"
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._signalled = False
        self._closed = False
        self._sender: zmq.Socket | None = None
        self.receiver: zmq.Socket | None = None

    def open(self) -> None:
        """Create the sockets (in the I/O thread)."""
        self.receiver = self._context.socket(zmq.PULL)
        self.receiver.linger = 0
        self.receiver.bind(self._address)
        sender = self._context.socket(zmq.PUSH)
        sender.linger = 0
        sender.connect(self._address)
        with self._lock:
            self._sender = sender
            self._wake()

    def post(self, item: Any) -> bool:
        """Queue ``item`` for the I/O thread; False when the mailbox is closed."""
        with self._lock:
            if self._closed:
                return False
            self._items.append(item)
            self._wake()
        return True

    def _wake(self) -> None:
        if self._sender is not None and not self._signalled and self._items:
            self._signalled = True
            try:
                self._sender.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                self._signalled = False

    def drain(self) -> list:
        """Every queued item, oldest first (in the I/O thread)."""
        receiver = self.receiver
        assert receiver is not None, "drain() is for a mailbox open()ed"
        while True:
            try:
                receiver.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        with self._lock:
            self._signalled = False
            items = list(self._items)
            self._items.clear()
        return items

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for sock in (self._sender, self.receiver):
                if sock is not None:
                    sock.close(linger=0)
            self._sender = self.receiver = None


def term_owned_context(context: zmq.Context, io_thread: "IOThread | None", log: logging.Logger, who: str) -> None:
    """Terminate the context a helper created, unless its I/O thread still runs (term would hang)."""
    if io_thread is not None and io_thread.is_alive():
        log.error("%s: the I/O thread did not stop; leaving its context open", who)
    else:
        context.term()


class IOThread(threading.Thread):
    """The thread that owns a helper's sockets. Subclasses fill in the hooks.

    ``setup()`` creates sockets and registers them with ``self.poller``; ``on_item(item)``
    handles a posted item; ``on_ready(events)`` the ready sockets; ``on_timer(now)`` runs after
    every poll; ``next_deadline()`` is the monotonic time the next timer is due (or None);
    ``teardown()`` closes the sockets.
    """

    def __init__(self, name: str, context: zmq.Context, log: logging.Logger):
        super().__init__(name=name, daemon=True)
        self.context = context
        self.log = log
        self.mailbox = Mailbox(context)
        self.poller = zmq.Poller()
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self._stopping = False

    def start_and_wait(self, timeout: float = 10.0) -> None:
        """Start, and wait until the sockets are set up; raise what set-up raised."""
        self.start()
        if not self.started.wait(timeout):
            raise RuntimeError(f"{self.name} did not start within {timeout} s")
        if self.failure is not None:
            raise self.failure

    def post(self, item: Any) -> bool:
        return self.mailbox.post(item)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop, and wait for it (at most ``timeout`` seconds)."""
        self.mailbox.post(_STOP)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        try:
            self.mailbox.open()
            self.poller.register(self.mailbox.receiver, zmq.POLLIN)
            self.setup()
        except Exception as exc:  # reported to start_and_wait
            self.failure = exc
            self.started.set()
            self._close()
            return
        self.started.set()
        try:
            self._loop()
        except zmq.ContextTerminated:
            pass
        except Exception as exc:
            self.failure = exc
            self.log.exception("%s stopped by an unexpected error", self.name)
        finally:
            self._close()

    def _loop(self) -> None:
        while not self._stopping:
            deadline = self.next_deadline()
            wait = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
            events = dict(self.poller.poll(wait))
            if events.pop(self.mailbox.receiver, None):
                for item in self.mailbox.drain():
                    if item is _STOP:
                        self._stopping = True
                    elif not self._stopping:
                        self.on_item(item)
            if self._stopping:
                break
            if events:
                self.on_ready(events)
            self.on_timer(time.monotonic())

    def _close(self) -> None:
        try:
            self.teardown()
        finally:
            self.mailbox.close()

    # Hooks -------------------------------------------------------------------------------
    def setup(self) -> None:
        raise NotImplementedError

    def on_item(self, item: Any) -> None:
        raise NotImplementedError

    def on_ready(self, events: dict) -> None:
        raise NotImplementedError

    def on_timer(self, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def teardown(self) -> None:
        pass


class WorkerPool:
    """A fixed number of daemon threads running submitted calls in order of submission."""

    def __init__(self, size: int, name: str, log: logging.Logger):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._log = log
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, size))]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        self._jobs.put((function, args))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            function, args = job
            try:
                function(*args)
            except Exception:
                self._log.exception("a worker's job raised")

    def shutdown(self, timeout: float = 1.0) -> None:
        """Stop the workers once their current job is done (waits at most ``timeout``)."""
        for _ in self._threads:
            self._jobs.put(None)
        end = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))
