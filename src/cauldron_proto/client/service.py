"""The client :class:`Service`: a service's keywords, reached through the broker."""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping, NamedTuple, Optional

import zmq

from .._generated import FAIL, Command, Direction, Message, Text
from .._generated.payloads import PayloadError, decode_address, decode_ktl_type, decode_list, decode_yesno
from ..config import ConfigLike
from ..ktl import UNKNOWN_KEYWORD
from ..peer import Settings, ShutDownError, term_owned_context
from .errors import DispatcherError, DispatcherTimeoutError, RequestTimeoutError, UnknownKeywordError
from .keyword import Keyword, KeywordValue, Monitor
from .notifier import Notifier
from .transport import ClientIO, topics_for

__all__ = ["Service", "KeywordInfo"]

_NOT_AVAILABLE = Text.DISPATCHER_NOT_AVAILABLE.split("{", 1)[0]  # "Dispatcher '"


class KeywordInfo(NamedTuple):
    """What ``identify`` says of a keyword: its KTL type and the dispatcher that owns it
    (None when the broker's answer did not name a single dispatcher)."""

    name: str
    type: str
    dispatcher: Optional[str]


class Service:
    """Client of service ``name``: ``svc["KW"]`` is a :class:`Keyword` to read, write, monitor.

    ``config`` is a path, a ConfigParser, a mapping of `[zmq]` keys or None (the defaults);
    ``broker=``, ``subscribe=``, ``timeout=``, ``curve_key=`` and ``curve_server_key=`` (files:
    this client's CURVE secret key, the broker's public key) override single keys. ``timeout`` is also
    the default time, in seconds, to wait for any answer. Requests may be made from any
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
        self.settings = Settings.load(config, broker=broker, subscribe=subscribe, timeout=timeout,
                                      curve_key=curve_key, curve_server_key=curve_server_key)
        self.timeout = self.settings.timeout
        self.log = logging.getLogger(f"cauldron_proto.client.{name}")
        self._keywords: dict[str, Keyword] = {}
        self._monitors: dict[str, list[Monitor]] = {}
        self._lock = threading.Lock()
        self._subscribe_lock = threading.Lock()
        self._subscribed = False
        self._notifier: Optional[Notifier] = None
        self._closed = False
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._io = ClientIO(name, self.settings.broker, self._context, self.log, self._on_broadcast,
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
        keyword = self._keywords.get(key)
        if keyword is None:
            info = self.identify(key)
            keyword = Keyword(self, key, info.type, info.dispatcher)
            if keyword.type == "enumerated":
                keyword.units()  # its enumerators: values travel as their integer text
            keyword = self._keywords.setdefault(key, keyword)
        return keyword

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
        key = name.upper()
        reply = self._request(Direction.CSQ, Command.IDENTIFY, keyword=key, payload=key, timeout=timeout)
        self._raise_for_error(reply, key)
        answers = [] if reply.payload is FAIL else decode_list(reply.payload)
        types = set()
        for answer in answers:
            try:
                types.add(decode_ktl_type(answer))
            except PayloadError:
                self.log.warning("%s: identify %s: %s", self.name, key, "not a KTL type: %r" % answer)
        types.discard(None)
        if not types:
            raise UnknownKeywordError(self.name, key)
        if len(types) > 1:
            raise DispatcherError(self.name, key, Command.IDENTIFY,
                                  f"dispatchers disagree on the type: {', '.join(sorted(types))}")
        dispatcher = reply.dispatcher if len(answers) == 1 else None
        info = KeywordInfo(key, types.pop(), dispatcher)
        known = self._keywords.get(key)
        if known is not None:
            known.type, known.dispatcher = info.type, info.dispatcher
        return info

    def keywords(self, timeout: Optional[float] = None) -> list[str]:
        """The names of the service's keywords, from every dispatcher (fan-out)."""
        reply = self._request(Direction.CSQ, Command.ENUMERATE, timeout=timeout)
        self._raise_for_error(reply, None)
        if reply.payload is FAIL:
            return []
        return list(dict.fromkeys(decode_list(reply.payload)))

    def locate(self, timeout: Optional[float] = None) -> bool:
        """Whether the broker has at least one dispatcher for this service."""
        reply = self._request(Direction.CBQ, Command.LOCATE, timeout=timeout)
        self._raise_for_error(reply, None)
        return decode_yesno(reply.payload)

    def lookup(self, timeout: Optional[float] = None) -> str:
        """The address the broker says to connect a SUB socket to, for broadcasts."""
        reply = self._request(Direction.CBQ, Command.LOOKUP, payload="subscribe", timeout=timeout)
        self._raise_for_error(reply, None)
        return decode_address(reply.payload)

    # Lifecycle -------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close every socket and stop the threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._io.stop()
        if self._notifier is not None:
            self._notifier.stop()
        self._term()

    def _term(self) -> None:
        if self._own_context:
            term_owned_context(self._context, self._io, self.log, f"client of {self.name}")

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    # Requests --------------------------------------------------------------------------
    def _request(self, direction: Direction, command: str, *, keyword: Optional[str] = None,
                 dispatcher: Optional[str] = None, payload: Optional[str] = None,
                 timeout: Optional[float] = None) -> Message:
        if self._closed:
            raise ShutDownError(f"{self!r} was shut down")
        wait = self.timeout if timeout is None else timeout
        message = Message.new(direction, service=self.wire_name, dispatcher=dispatcher, keyword=keyword,
                              command=command, payload=payload)
        reply = self._io.request(message, wait)
        if reply is None:
            if self._closed or not self._io.is_alive():
                raise ShutDownError(f"{self!r} was shut down")
            raise RequestTimeoutError(self.name, keyword, command, wait, self.settings.broker)
        return reply

    def _raise_for_error(self, reply: Message, keyword: Optional[str]) -> None:
        if reply.is_error:
            text = reply.payload if isinstance(reply.payload, str) else repr(reply.payload)
            if keyword and text.startswith(UNKNOWN_KEYWORD.split("{service}")[0].format(keyword=keyword)):
                raise UnknownKeywordError(self.name, keyword)
            error = DispatcherTimeoutError if text == Text.DISPATCHER_TIMED_OUT else DispatcherError
            raise error(self.name, keyword, reply.command or "", text, reply.dispatcher)
        if reply.payload is FAIL and reply.command not in (Command.IDENTIFY, Command.ENUMERATE):
            raise DispatcherError(self.name, keyword, reply.command or "", "no usable answer")

    def _keyword_request(self, keyword: Keyword, command: str, payload: Optional[str],
                         timeout: Optional[float]) -> Message:
        """A CDQ about ``keyword`` to its dispatcher; re-identifies once if that one left."""
        for attempt in (1, 2):
            reply = self._request(Direction.CDQ, command, keyword=keyword.name,
                                  dispatcher=keyword.dispatcher, payload=payload, timeout=timeout)
            gone = reply.is_error and isinstance(reply.payload, str) \
                and reply.payload.startswith(f"{_NOT_AVAILABLE}{keyword.dispatcher}'")
            if gone and attempt == 1:
                self.log.info("%s.%s: %s; identifying it again", self.name, keyword.name, reply.payload)
                self.identify(keyword.name, timeout)
                continue
            self._raise_for_error(reply, keyword.name)
            return reply
        raise AssertionError("unreachable")

    # Monitors --------------------------------------------------------------------------
    def _add_monitor(self, monitor: Monitor) -> None:
        self._subscribe()
        with self._lock:
            if self._notifier is None:
                self._notifier = Notifier(f"cauldron-client-{self.name}-callbacks", self.log)
            self._monitors.setdefault(monitor.keyword.name, []).append(monitor)

    def _remove_monitor(self, monitor: Monitor) -> None:
        with self._lock:
            monitors = self._monitors.get(monitor.keyword.name, [])
            if monitor in monitors:
                monitors.remove(monitor)

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

    def _notify(self, monitors: list[Monitor], value: KeywordValue) -> None:
        if self._notifier is not None:
            self._notifier.notify(monitors, value)

    def _on_broadcast(self, message: Message) -> None:
        """In the I/O thread: queue a broadcast for the monitors of its keyword."""
        key = message.keyword_key
        with self._lock:
            monitors = list(self._monitors.get(key, ()))
        keyword = self._keywords.get(key)
        if monitors and keyword is not None:
            self._notify(monitors, keyword._remember(message.payload, message.dispatcher, primed=False))
