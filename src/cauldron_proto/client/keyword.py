"""A keyword seen from a client: read, write and monitor it; and the values it reports."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from .core import KeywordState, KeywordValue

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Keyword", "KeywordValue", "Monitor"]


class Monitor:
    """A callback registered by :meth:`Keyword.monitor`; :meth:`cancel` stops it."""

    def __init__(self, keyword: "Keyword", callback: Callable[[KeywordValue], Any]):
        self.keyword, self.callback = keyword, callback
        self.active = True

    def cancel(self) -> None:
        """Stop calling the callback (broadcasts already queued are not delivered)."""
        self.active = False
        self.keyword.service.monitors.remove(self)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.cancel()


class Keyword(KeywordState):
    """Keyword ``name`` of a client :class:`~cauldron_proto.client.Service`.

    ``type`` is its KTL type name and ``dispatcher`` the dispatcher that owns it, as
    ``identify`` answered. An enumerated keyword's ``enumerators`` (integer -> name) come from
    its ``units`` answer, asked when it is identified: values travel as the integer text,
    ``read()`` gives the name (``binary=True``: the integer) and ``write()`` takes either.
    Methods are safe to call from any thread. Requests and replies are the client core's
    (:class:`~cauldron_proto.client.core.ClientCore`); the service only carries them.
    """

    def __init__(self, service: "Service", name: str, ktl_type: Optional[str], dispatcher: Optional[str]):
        super().__init__(service.name, name, ktl_type, dispatcher)
        self.service = service

    def __repr__(self) -> str:
        return f"<client.Keyword {self.service.name}.{self.name} {self.type}>"

    def read(self, binary: bool = False, timeout: Optional[float] = None) -> Any:
        """The current value: ascii text, or with ``binary=True`` the Python value (None: the
        keyword has no value)."""
        reply = self.service.run(self.service.core.read(self), timeout)
        value = self._remember(reply, primed=False)
        return value.value if binary else value.ascii

    def write(self, value: Any, timeout: Optional[float] = None) -> Optional[str]:
        """Write ``value`` (checked against the type first); the resulting ascii value."""
        reply = self.service.run(self.service.core.write(self, value), timeout)
        return self._remember(reply, primed=False).ascii

    def units(self, timeout: Optional[float] = None) -> Any:
        """The keyword's units, as the dispatcher's JSON answer decoded (an enumerated
        keyword's: the map of integer text to names, which also refreshes ``enumerators``)."""
        return self.service.run(self.service.core.units(self), timeout)

    def monitor(self, callback: Callable[[KeywordValue], Any], prime: bool = True,
                timeout: Optional[float] = None) -> Monitor:
        """Call ``callback(KeywordValue)`` for every new value: the current value first
        (``prime``), then every broadcast. Callbacks run one at a time, in order, in the
        service's notifier thread. Returns a :class:`Monitor` (``.cancel()`` to stop).

        A broadcast sent in the moment after this returns may be missed while the
        subscription travels to the dispatcher (ZMQ's slow-joiner effect).
        """
        monitor = Monitor(self, callback)
        self.service.monitors.add(monitor)
        if prime:
            try:
                reply = self.service.run(self.service.core.read(self), timeout)
            except BaseException:
                monitor.cancel()
                raise
            self.service.monitors.notify([monitor], self._remember(reply, primed=True))
        return monitor

    def _remember(self, reply, primed: bool) -> KeywordValue:
        return self.value_of(reply.payload, reply.dispatcher, time.time(), primed)
