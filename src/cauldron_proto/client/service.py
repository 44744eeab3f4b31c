"""The client :class:`Service`: a service's keywords, reached through the broker.

A thin threaded layer over :class:`~cauldron_proto.client.core.ClientCore`: :meth:`Service.run`
carries a core procedure's requests through the I/O thread and blocks for each reply.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Mapping, Optional

import zmq

from ..protocol import Message
from ..config import ConfigError, ConfigLike, unusable
from ..peer import INQUIRY_WAIT, HelperSettings, ShutDownError, inquire, term_owned_context
from .core import ClientCore, KeywordInfo, Procedure, T, topics_for
from .errors import DispatcherError
from .keyword import Keyword
from .notifier import Monitors
from .io_thread import ClientIO

__all__ = ["Service", "KeywordInfo"]

#: Seconds a request that timed out waits for a broker to answer an inquiry, to say which of
#: the broker and the dispatcher did not answer.


class Service:
    """Client of service ``name``: ``svc["KW"]`` is a :class:`Keyword` to read, write, monitor.

    ``config`` is a path, a ConfigParser, a mapping of `[zmq]` keys or None (the defaults);
    ``broker=``, ``subscribe=``, ``timeout=``, ``curve_key=`` and ``curve_server_key=`` (files:
    this client's CURVE secret key, the broker's public key) override single keys. ``timeout`` is also
    the default time, in seconds, to wait for any answer; a request not answered in time is a
    RequestTimeoutError saying whether no broker answers at the address (one inquiry tells) or
    the dispatcher does not. An address no broker can be at (a port out of range, a host that
    does not resolve) is a ConfigError at once. Requests may be made from any
    number of threads at once. Use as a context manager, or call :meth:`shutdown`.
    """

    def __init__(self, name: str, config: "ConfigLike | Mapping[str, Any]" = None, *,
                 timeout: Optional[float] = None, context: Optional[zmq.Context] = None,
                 broker: Optional[str] = None, subscribe: Optional[str] = None,
                 curve_key: Optional[str] = None, curve_server_key: Optional[str] = None):
        self.name = name
        #: the service name as it goes on the wire: lower case, as existing Cauldron
        #: dispatchers expect it (they compare it exactly); answers in any case are accepted
        self.wire_name = name.lower()
        self.settings = HelperSettings.load(config, broker=broker, subscribe=subscribe, timeout=timeout,
                                      curve_key=curve_key, curve_server_key=curve_server_key)
        self.timeout = self.settings.timeout
        problem = unusable(self.settings.broker)
        if problem is not None:  # at once, rather than a request never answered
            raise ConfigError(f"cannot connect to a broker at {problem}")
        self.log = logging.getLogger(f"cauldron_proto.client.{name}")
        #: the I/O-free protocol core: requests, replies, errors, values
        self.core = ClientCore(name, self.settings.broker, self.log)
        #: the monitors of this service's keywords (their callbacks run in one notifier thread)
        self.monitors = Monitors(name, self.log, self._subscribe)
        self._subscribe_lock = threading.Lock()
        self._subscribed = False
        self._closed = False
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._io = ClientIO(self.core, self.settings.broker, self._context, self.log, self._on_broadcast,
                            self.settings.curve)
        try:
            self._io.start_and_wait()
        except BaseException:
            self._term()
            raise

    def __repr__(self) -> str:
        return f"<client.Service {self.name} via {self.settings.broker}>"

    # Keywords --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Keyword:
        """Keyword ``name``; identified on first use. KeyError when no dispatcher has it."""
        key = name.upper()
        keyword = self.core.keywords.get(key)
        if keyword is None:
            keyword = self.run(self.core.describe(Keyword(self, key, None, None)))
            keyword = self.core.keywords.setdefault(key, keyword)
        return keyword  # type: ignore[return-value]  # the core holds this service's Keyword handles

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self[name]
        except (KeyError, DispatcherError):
            return False
        return True

    def identify(self, name: str, timeout: Optional[float] = None) -> KeywordInfo:
        """Ask every dispatcher of the service (fan-out) for keyword ``name``'s type and owner."""
        return self.run(self.core.identify(name), timeout)

    def keywords(self, timeout: Optional[float] = None) -> list[str]:
        """The names of the service's keywords, from every dispatcher (fan-out)."""
        return self.run(self.core.enumerate(), timeout)

    def locate(self, timeout: Optional[float] = None) -> bool:
        """Whether the broker has at least one dispatcher for this service."""
        return self.run(self.core.locate(), timeout)

    def lookup(self, timeout: Optional[float] = None) -> str:
        """The address the broker says to connect a SUB socket to, for broadcasts."""
        return self.run(self.core.lookup(), timeout)

    # Lifecycle -------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close every socket and stop the threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._io.stop()
        self.monitors.stop()
        self._term()

    def _term(self) -> None:
        if self._own_context:
            term_owned_context(self._context, self._io, self.log, f"client of {self.name}")

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    # Requests --------------------------------------------------------------------------
    def run(self, procedure: Procedure[T], timeout: Optional[float] = None) -> T:
        """Run a core procedure: send each request it yields, block for the reply (at most
        ``timeout`` seconds each, default :attr:`timeout`), and return its result."""
        wait = self.timeout if timeout is None else timeout
        try:
            request = next(procedure)
            while True:
                request = procedure.send(self._exchange(request, wait))
        except StopIteration as done:
            return done.value
        finally:
            procedure.close()

    def _exchange(self, request: Message, wait: float) -> Message:
        if self._closed:
            raise ShutDownError(f"{self!r} was shut down")
        reply = self._io.request(request, wait)
        if reply is None:
            if self._closed or not self._io.is_alive():
                raise ShutDownError(f"{self!r} was shut down")
            handshake = self._io.handshake_failure
            raise self.core.timeout_error(request, wait, handshake, None if handshake else self._broker_alive())
        return reply

    def _broker_alive(self) -> Optional[bool]:
        """Whether a broker answers an inquiry (one round trip, at most :data:`INQUIRY_WAIT` s)."""
        try:
            return inquire(self._context, self.settings.broker, self.settings.curve, INQUIRY_WAIT, self.log)
        except zmq.ZMQError:
            return None

    # Monitors --------------------------------------------------------------------------
    def _subscribe(self) -> None:
        with self._subscribe_lock:
            if self._subscribed:
                return
            try:
                address = self.lookup()
            except DispatcherError as exc:
                address = self.settings.subscribe
                self.log.warning("lookup failed (%s); using the configured subscribe address %s", exc, address)
            self._io.subscribe(address, topics_for(self.name))
            self._subscribed = True

    def _on_broadcast(self, message: Message) -> None:
        """In the I/O thread: queue a broadcast for the monitors of its keyword."""
        key = message.keyword_key
        monitors = self.monitors.of(key) if key is not None else []
        if not monitors:
            return
        value = self.core.broadcast_value(message, time.time())
        if value is not None:
            self.monitors.notify(monitors, value)
