"""The client's protocol core, without I/O: requests out, replies in, values and errors out.

Theory of operation
-------------------
:class:`ClientCore` knows one service: it builds requests (the service name in lower case
on the wire, an empty payload for ``update`` and ``units``, ``subscribe`` for ``lookup``),
reads replies (typed payloads, error replies mapped to the client's typed errors) and turns
payloads into :class:`KeywordValue` s. It owns no socket, starts no thread, reads no clock.

Every operation is a *procedure*: a generator that yields each request to send and is sent
the reply to it (``reply = yield request``); its return value is the operation's result,
and an error reply is raised out of it. A layer that does I/O runs a procedure with a loop
of a few lines (send the request, wait for the reply by its identifier in a
:class:`Pending` table, send the reply in), blocking in the threaded client and awaiting in
:mod:`cauldron_proto.aio`: both run the very same procedures, so the rules (re-identify once
a keyword's dispatcher is gone, merge ``identify`` answers, read ``units`` of an enumerated
keyword) exist once. A reply that does not come in time is the layer's to notice; it raises
:meth:`ClientCore.timeout_error`.

Invariants: a request's identifier is fresh (``Message.new``); a reply is matched to its
request only by identifier; a keyword's ``type``, ``dispatcher`` and ``enumerators`` change
only through :meth:`KeywordState.learn` and :meth:`KeywordState.units_of`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Generator, Generic, NamedTuple, Optional, TypeVar

from ..protocol import FAIL, Command, Direction, Message, RemoteProtocolError, Text, decode
from ..protocol.payloads import (PayloadError, decode_address, decode_ktl_type, decode_list, decode_units,
                                   decode_yesno)
from ..ktl import UNKNOWN_KEYWORD, KTLValueError, enumerator_name, enumerators, from_ascii, to_ascii
from .errors import (BrokerRefusedError, DispatcherError, DispatcherTimeoutError, InvalidValueError,
                     RequestTimeoutError, UnknownKeywordError)

__all__ = ["ClientCore", "KeywordState", "KeywordValue", "KeywordInfo", "Pending", "Procedure",
           "is_broadcast_for", "topics_for", "received"]

T = TypeVar("T")
W = TypeVar("W")
#: An operation: yields requests, is sent their replies, returns its result.
Procedure = Generator[Message, Message, T]

_NOT_AVAILABLE = Text.DISPATCHER_NOT_AVAILABLE.split("{", 1)[0]  # "Dispatcher '"
_FAIL_ALLOWED = frozenset({Command.IDENTIFY, Command.ENUMERATE})


def topics_for(service: str) -> list[bytes]:
    """SUB topics for ``service``: as written, upper- and lower-cased (names are case-insensitive)."""
    return sorted({name.encode("utf-8") for name in (service, service.upper(), service.lower())})


def received(frames: list[bytes], log: logging.Logger) -> Optional[Message]:
    """A message a client received, decoded; None, logged at WARNING, when its frames break
    the protocol (the client drops it and goes on)."""
    try:
        return decode(frames)
    except RemoteProtocolError as exc:
        log.warning("dropped a malformed message: %s", exc)
        return None


def is_broadcast_for(message: Message, service_key: str) -> bool:
    """A keyword broadcast of this very service (not of one whose name only starts with it)."""
    return (message.direction == Direction.CDB and message.keyword is not None
            and message.service_key == service_key)


@dataclass(frozen=True)
class KeywordValue:
    """One value of a keyword, as a monitor receives it.

    ``ascii`` is the KTL ascii text (an enumerated keyword's enumerator name; None when the
    keyword has no value), ``value`` its Python value for the keyword's type (the text itself
    if it does not parse), ``time`` when it arrived (``time.time()``), ``primed`` True for the
    value read when monitoring started, False for a broadcast.
    """

    service: str
    keyword: str
    ascii: Optional[str]
    value: Any
    dispatcher: Optional[str]
    time: float
    primed: bool


class KeywordInfo(NamedTuple):
    """What ``identify`` says of a keyword: its KTL type and the dispatcher that owns it
    (None when the broker's answer did not name a single dispatcher)."""

    name: str
    type: str
    dispatcher: Optional[str]


class Pending(Generic[W]):
    """Requests in flight, by identifier: ``file`` a waiter, ``answer`` a reply to it."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, W] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def file(self, request: Message, waiter: W) -> bytes:
        key = request.identifier
        self._waiters[key] = waiter
        return key

    def answer(self, reply: Message) -> Optional[W]:
        """The waiter for ``reply`` (taken off the table), or None: nobody waits for it."""
        return self._waiters.pop(reply.identifier, None)

    def forget(self, key: bytes) -> None:
        self._waiters.pop(key, None)

    def drain(self) -> list[W]:
        """Every waiter, taken off the table (at shutdown)."""
        waiters, self._waiters = list(self._waiters.values()), {}
        return waiters


class KeywordState:
    """What a client knows of keyword ``name``: type, owner, enumerators, the last value."""

    def __init__(self, service: str, name: str, ktl_type: Optional[str] = None, dispatcher: Optional[str] = None):
        self.service_name, self.name = service, name.upper()
        self.type, self.dispatcher = ktl_type, dispatcher
        self.enumerators: dict[int, str] = {}
        self._last: Optional[KeywordValue] = None

    @property
    def last(self) -> Optional[KeywordValue]:
        """The last value read, written or broadcast (None before the first)."""
        return self._last

    def learn(self, info: KeywordInfo) -> None:
        """Take the type and owner an ``identify`` answer gave."""
        self.type, self.dispatcher = info.type, info.dispatcher

    def ascii_of(self, value: Any) -> str:
        """The text to write for ``value`` (checked against the type; an enumerator by name or
        number); :class:`~.errors.InvalidValueError` for a value of the wrong type."""
        try:
            return to_ascii(value, self.type or "basic", self.enumerators)
        except KTLValueError as exc:
            raise InvalidValueError.of(exc) from None

    def value_of(self, payload: Any, dispatcher: Optional[str], now: float, primed: bool) -> KeywordValue:
        """The :class:`KeywordValue` of a reply's or broadcast's payload arriving at ``now``; remembered as ``last``."""
        text = payload if isinstance(payload, str) else None
        try:
            value = from_ascii(text, self.type or "basic", self.enumerators)
        except KTLValueError:
            value = text
        if self.type == "enumerated" and isinstance(value, int):
            text = enumerator_name(value, self.enumerators)
        result = KeywordValue(self.service_name, self.name, text, value, dispatcher, now, primed)
        self._last = result
        return result

    def units_of(self, payload: Any) -> Any:
        """A ``units`` answer decoded (the payload as sent if it is not JSON); refreshes an
        enumerated keyword's ``enumerators``."""
        try:
            units = decode_units(payload) if payload is not None else None
        except PayloadError:
            return payload
        if self.type == "enumerated" and isinstance(units, dict):
            try:
                self.enumerators = enumerators(units)
            except ValueError:
                pass
        return units


class ClientCore:
    """Requests and replies of a client of service ``name`` through broker ``broker``."""

    def __init__(self, name: str, broker: str, log: Optional[logging.Logger] = None):
        self.name = name
        self.wire_name = name.lower()  # as existing dispatchers expect it (they compare it exactly)
        self.service_key = name.upper()
        self.broker = broker
        self.log = log or logging.getLogger(f"cauldron_proto.client.{name}")
        #: identified keywords, by upper-case name (a layer adds them once described)
        self.keywords: dict[str, KeywordState] = {}

    # Building and reading ------------------------------------------------------------------
    def request(self, direction: Direction, command: str, *, keyword: Optional[str] = None,
                dispatcher: Optional[str] = None, payload: Optional[str] = None) -> Message:
        return Message.new(direction, service=self.wire_name, dispatcher=dispatcher, keyword=keyword,
                           command=command, payload=payload)

    def check(self, reply: Message, keyword: Optional[str]) -> Message:
        """``reply``, or the typed error an error reply (or an unusable fan-out) means."""
        if reply.is_error:
            text = reply.payload if isinstance(reply.payload, str) else repr(reply.payload)
            if keyword and text.startswith(UNKNOWN_KEYWORD.split("{service}")[0].format(keyword=keyword)):
                raise UnknownKeywordError(self.name, keyword)
            error = DispatcherTimeoutError if text == Text.DISPATCHER_TIMED_OUT else DispatcherError
            raise error(self.name, keyword, reply.command or "", text, reply.dispatcher)
        if reply.payload is FAIL and reply.command not in _FAIL_ALLOWED:
            raise DispatcherError(self.name, keyword, reply.command or "", "no usable answer")
        return reply

    def refused_error(self, request: Message, reason: str) -> BrokerRefusedError:
        """The error for ``request`` when the broker refused the connection (``reason``: why)."""
        return BrokerRefusedError(self.name, request.keyword, request.command or "", self.broker, reason)

    def timeout_error(self, request: Message, wait: float, handshake: Optional[str] = None,
                      alive: Optional[bool] = None) -> RequestTimeoutError:
        """The error for ``request`` unanswered after ``wait`` seconds (``handshake``: why the
        last handshake with the broker failed, if it did; ``alive``: whether the broker
        answered an inquiry since, None if not asked), saying which did not answer."""
        diagnosis = None
        if alive is False:
            diagnosis = f"no broker answers at {self.broker}"
        elif alive:
            key = request.keyword_key if request.keyword else None
            known = self.keywords.get(key) if key is not None else None
            who = f"its dispatcher {known.dispatcher!r}" if known is not None and known.dispatcher else "a dispatcher"
            diagnosis = (f"the broker at {self.broker} answers, so {who} of {self.name} is registered "
                         "but not answering")
        return RequestTimeoutError(self.name, request.keyword, request.command or "", wait, self.broker, handshake,
                                   diagnosis)

    def is_broadcast(self, message: Message) -> bool:
        return is_broadcast_for(message, self.service_key)

    def broadcast_value(self, message: Message, now: float) -> Optional[KeywordValue]:
        """The value a broadcast carries for a known keyword of this service, else None."""
        if not self.is_broadcast(message):
            return None
        key = message.keyword_key
        keyword = self.keywords.get(key) if key is not None else None
        if keyword is None:
            return None
        return keyword.value_of(message.payload, message.dispatcher, now, primed=False)

    def identified(self, reply: Message, key: str) -> KeywordInfo:
        """An ``identify`` fan-out's answer: the one type, and the owner if only one answered."""
        self.check(reply, key)
        answers = [] if reply.payload is FAIL else decode_list(reply.payload)
        types = set()
        for answer in answers:
            try:
                types.add(decode_ktl_type(answer))
            except PayloadError:
                self.log.warning("%s: identify %s: not a KTL type: %r", self.name, key, answer)
        types.discard(None)
        if not types:
            raise UnknownKeywordError(self.name, key)
        if len(types) > 1:
            raise DispatcherError(self.name, key, Command.IDENTIFY,
                                  f"dispatchers disagree on the type: {', '.join(sorted(types))}")
        return KeywordInfo(key, types.pop(), reply.dispatcher if len(answers) == 1 else None)

    def _moved(self, reply: Message, keyword: KeywordState) -> bool:
        return reply.is_error and isinstance(reply.payload, str) \
            and reply.payload.startswith(f"{_NOT_AVAILABLE}{keyword.dispatcher}'")

    # Procedures ------------------------------------------------------------------------------
    def identify(self, name: str) -> Procedure[KeywordInfo]:
        """Fan-out ``identify``: keyword ``name``'s type and owner (a known keyword learns them)."""
        key = name.upper()
        reply = yield self.request(Direction.CSQ, Command.IDENTIFY, keyword=key, payload=key)
        info = self.identified(reply, key)
        known = self.keywords.get(key)
        if known is not None:
            known.learn(info)
        return info

    def enumerate(self) -> Procedure[list[str]]:
        """Fan-out ``enumerate``: the names of every keyword of the service."""
        reply = self.check((yield self.request(Direction.CSQ, Command.ENUMERATE)), None)
        return [] if reply.payload is FAIL else list(dict.fromkeys(decode_list(reply.payload)))

    def locate(self) -> Procedure[bool]:
        reply = self.check((yield self.request(Direction.CBQ, Command.LOCATE)), None)
        return decode_yesno(reply.payload)

    def lookup(self) -> Procedure[str]:
        reply = self.check((yield self.request(Direction.CBQ, Command.LOOKUP, payload="subscribe")), None)
        return decode_address(reply.payload)

    def exchange(self, keyword: KeywordState, command: str, payload: Optional[str]) -> Procedure[Message]:
        """A ``CDQ`` about ``keyword`` to its dispatcher: the checked reply. If that dispatcher
        is gone (the broker says it is not available), identify the keyword again, once."""
        for attempt in (1, 2):
            reply = yield self.request(Direction.CDQ, command, keyword=keyword.name,
                                       dispatcher=keyword.dispatcher, payload=payload)
            if attempt == 1 and self._moved(reply, keyword):
                self.log.info("%s.%s: %s; identifying it again", self.name, keyword.name, reply.payload)
                keyword.learn((yield from self.identify(keyword.name)))
                continue
            return self.check(reply, keyword.name)
        raise AssertionError("unreachable")

    def read(self, keyword: KeywordState) -> Procedure[Message]:
        """``update`` (an empty payload, as the existing client sends it): the reply."""
        return (yield from self.exchange(keyword, Command.UPDATE, ""))

    def write(self, keyword: KeywordState, value: Any) -> Procedure[Message]:
        """``modify`` with ``value`` as ascii text (checked before anything is sent): the reply."""
        text = keyword.ascii_of(value)
        return (yield from self.exchange(keyword, Command.MODIFY, text))

    def units(self, keyword: KeywordState) -> Procedure[Any]:
        """``units`` (an empty payload): the decoded answer (see :meth:`KeywordState.units_of`)."""
        reply = yield from self.exchange(keyword, Command.UNITS, "")
        return keyword.units_of(reply.payload)

    def describe(self, keyword: KeywordState) -> Procedure[KeywordState]:
        """Identify ``keyword`` (and ask an enumerated keyword's ``units``: its enumerators)."""
        keyword.learn((yield from self.identify(keyword.name)))
        if keyword.type == "enumerated":
            yield from self.units(keyword)
        return keyword
