"""A keyword seen from a client: read, write and monitor it; and the values it reports."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._generated import Command
from .._generated.payloads import PayloadError, decode_units
from ..ktl import KTLValueError, enumerator_name, enumerators, from_ascii, to_ascii

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Keyword", "KeywordValue", "Monitor"]


@dataclass(frozen=True)
class KeywordValue:
    """One value of a keyword, as a monitor callback receives it.

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


class Monitor:
    """A callback registered by :meth:`Keyword.monitor`; :meth:`cancel` stops it."""

    def __init__(self, keyword: "Keyword", callback: Callable[[KeywordValue], Any]):
        self.keyword, self.callback = keyword, callback
        self.active = True

    def cancel(self) -> None:
        """Stop calling the callback (broadcasts already queued are not delivered)."""
        self.active = False
        self.keyword.service._remove_monitor(self)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.cancel()


class Keyword:
    """Keyword ``name`` of a client :class:`~cauldron_proto.client.Service`.

    ``type`` is its KTL type name and ``dispatcher`` the dispatcher that owns it, as
    ``identify`` answered. An enumerated keyword's ``enumerators`` (integer -> name) come from
    its ``units`` answer, asked when it is identified: values travel as the integer text,
    ``read()`` gives the name (``binary=True``: the integer) and ``write()`` takes either.
    Methods are safe to call from any thread.
    """

    def __init__(self, service: "Service", name: str, ktl_type: str, dispatcher: Optional[str]):
        self.service, self.name = service, name.upper()
        self.type, self.dispatcher = ktl_type, dispatcher
        self.enumerators: dict[int, str] = {}
        self._lock = threading.Lock()
        self._last: Optional[KeywordValue] = None

    def __repr__(self) -> str:
        return f"<client.Keyword {self.service.name}.{self.name} {self.type}>"

    @property
    def last(self) -> Optional[KeywordValue]:
        """The last value read, written or broadcast (None before the first)."""
        return self._last

    def read(self, binary: bool = False, timeout: Optional[float] = None) -> Any:
        """The current value: ascii text, or with ``binary=True`` the Python value (None: the
        keyword has no value)."""
        reply = self.service._keyword_request(self, Command.UPDATE, "", timeout)
        value = self._remember(reply.payload, reply.dispatcher, primed=False)
        return value.value if binary else value.ascii

    def write(self, value: Any, timeout: Optional[float] = None) -> str:
        """Write ``value`` (checked against the type first); the resulting ascii value."""
        text = to_ascii(value, self.type, self.enumerators)
        reply = self.service._keyword_request(self, Command.MODIFY, text, timeout)
        return self._remember(reply.payload, reply.dispatcher, primed=False).ascii

    def units(self, timeout: Optional[float] = None) -> Any:
        """The keyword's units, as the dispatcher's JSON answer decoded (an enumerated
        keyword's: the map of integer text to names, which also refreshes ``enumerators``)."""
        reply = self.service._keyword_request(self, Command.UNITS, "", timeout)
        try:
            units = decode_units(reply.payload) if reply.payload is not None else None
        except PayloadError:
            return reply.payload
        if self.type == "enumerated" and isinstance(units, dict):
            try:
                self.enumerators = enumerators(units)
            except ValueError:
                pass
        return units

    def monitor(self, callback: Callable[[KeywordValue], Any], prime: bool = True,
                timeout: Optional[float] = None) -> Monitor:
        """Call ``callback(KeywordValue)`` for every new value: the current value first
        (``prime``), then every broadcast. Callbacks run one at a time, in order, in the
        service's notifier thread. Returns a :class:`Monitor` (``.cancel()`` to stop).

        A broadcast sent in the moment after this returns may be missed while the
        subscription travels to the dispatcher (ZMQ's slow-joiner effect).
        """
        monitor = Monitor(self, callback)
        self.service._add_monitor(monitor)
        if prime:
            try:
                reply = self.service._keyword_request(self, Command.UPDATE, "", timeout)
            except BaseException:
                monitor.cancel()
                raise
            value = self._remember(reply.payload, reply.dispatcher, primed=True)
            self.service._notify([monitor], value)
        return monitor

    def _remember(self, payload: Any, dispatcher: Optional[str], primed: bool) -> KeywordValue:
        text = payload if isinstance(payload, str) else None
        try:
            value = from_ascii(text, self.type, self.enumerators)
        except KTLValueError:
            value = text
        if self.type == "enumerated" and isinstance(value, int):
            text = enumerator_name(value, self.enumerators)
        result = KeywordValue(self.service.name, self.name, text, value, dispatcher, time.time(), primed)
        with self._lock:
            self._last = result
        return result
