"""Live, read-only views of the core's books, for introspection (``ZMQBroker.services``).

A view holds no copy: every attribute is read from the books when it is read, so a test may
keep one object across ``respond()`` calls and watch it change, as the existing broker's
tests do with its ``Service`` and ``Dispatcher`` objects. A view follows its name: a
dispatcher that registers again from a new socket is the same view, and a view of a
dispatcher (or service) that left shows the last record it had (not ``alive``, nothing
``active``). Views give out only numbers, strings, bytes and read-only mappings, so nothing
read from them can change the books. Times (``lifetime``, ``alive``) come from ``clock``,
the caller's: the core itself reads no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from .registry import DispatcherRecord

if TYPE_CHECKING:
    from .core import BrokerCore

Clock = Callable[[], float]


class _LiveMapping(Mapping):
    """A read-only mapping read from the books at each access (``wrap``: what a value is shown as)."""

    __slots__ = ("_get", "_wrap")

    def __init__(self, get: Callable[[], Mapping], wrap: Callable | None = None):
        self._get, self._wrap = get, wrap

    def __getitem__(self, key):
        value = self._get()[key]
        return value if self._wrap is None else self._wrap(value)

    def __iter__(self) -> Iterator:
        return iter(list(self._get()))

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class DispatcherView:
    """One dispatcher of one service, read live (the names the existing broker's tests read,
    and this project's own).

    ``name``; ``id``/``peer``: the routing id of its socket; ``active``: messages sent to it
    that it has not answered (requests in flight, and the broker's own replies and heartbeats
    until a message with their identifier comes back); ``in_flight``: requests forwarded to
    it and not answered; ``alive``; ``lifetime``: seconds left before it expires;
    ``keywords``: its keywords' types learned from ``identify``; ``ready``; ``expire_at``,
    ``next_beat_at`` (times of the broker's clock); ``service``: the service key.
    """

    __slots__ = ("_core", "_clock", "_service", "_name", "_last")

    def __init__(self, core: "BrokerCore", clock: Clock, record: DispatcherRecord):
        self._core, self._clock = core, clock
        self._service, self._name, self._last = record.service, record.name, record

    def _record(self) -> tuple[DispatcherRecord, bool]:
        """The current record of this name (or the last one seen) and whether it is registered."""
        current = self._core.registry.get(self._service, self._name)
        if current is not None:
            self._last = current
        return self._last, current is not None

    @property
    def service(self) -> str:
        return self._service

    @property
    def name(self) -> str:
        return self._name

    @property
    def peer(self) -> bytes:
        return self._record()[0].peer

    id = peer

    @property
    def ready(self) -> bool:
        record, registered = self._record()
        return registered and record.ready

    @property
    def in_flight(self) -> int:
        record, registered = self._record()
        return len(self._core.requests.pending(record)) if registered else 0

    @property
    def active(self) -> int:
        record, registered = self._record()
        return len(self._core.requests.pending(record)) + len(record.unanswered) if registered else 0

    @property
    def expire_at(self) -> float:
        return self._record()[0].expire_at

    @property
    def next_beat_at(self) -> float:
        return self._record()[0].next_beat_at

    @property
    def lifetime(self) -> float:
        """Seconds left before expiry (inf with heartbeats off; 0 once it left)."""
        record, registered = self._record()
        if not registered:
            return 0.0
        if not self._core.heartbeat:
            return math.inf
        return record.expire_at - self._clock()

    @property
    def alive(self) -> bool:
        return self.lifetime > 0

    @property
    def keywords(self) -> Mapping[str, str]:
        """Keyword key -> KTL type, for the keywords ``identify`` answers say it owns."""
        learned = self._core.owners

        def owned() -> dict[str, str]:
            owners = learned.owners.get(self._service, {})  # list(): copied at once, while the broker
            types = learned.types.get(self._service, {})  # thread may be changing it
            return {k: t for k, t in list(types.items()) if owners.get(k) == self._name}
        return _LiveMapping(owned)

    def __repr__(self) -> str:
        return (f"<DispatcherView {self._service}/{self._name} alive={self.alive} active={self.active} "
                f"in_flight={self.in_flight}>")


class ServiceView:
    """One service, read live: ``name`` (the upper-cased key); ``dispatchers`` (by name);
    ``keywords`` (keyword key -> the dispatcher learned to own it); ``identify`` (keyword key ->
    KTL type, the identify cache); ``fanouts`` (fan-outs in flight)."""

    __slots__ = ("_core", "_clock", "_name")

    def __init__(self, core: "BrokerCore", clock: Clock, name: str):
        self._core, self._clock, self._name = core, clock, name

    @property
    def name(self) -> str:
        return self._name

    @property
    def dispatchers(self) -> Mapping[str, DispatcherView]:
        core, clock = self._core, self._clock
        return _LiveMapping(lambda: core.registry.dispatchers(self._name),
                            lambda record: DispatcherView(core, clock, record))

    @property
    def keywords(self) -> Mapping[str, str]:
        """Keyword key -> the dispatcher learned to own it (kept a while after the service left)."""
        owners = self._core.owners.owners
        return _LiveMapping(lambda: owners.get(self._name, {}))

    @property
    def identify(self) -> Mapping[str, str]:
        types = self._core.owners.types
        return _LiveMapping(lambda: types.get(self._name, {}))

    @property
    def fanouts(self) -> int:
        return self._core.fanouts.count(self._name)

    def __repr__(self) -> str:
        return f"<ServiceView {self._name} dispatchers={sorted(self.dispatchers)}>"


class ServicesView(Mapping[str, ServiceView]):
    """The current services by key; looking one up never creates it (any case works)."""

    def __init__(self, core: "BrokerCore", clock: Clock):
        self._core, self._clock = core, clock

    def __getitem__(self, name: str) -> ServiceView:
        if name not in self:
            raise KeyError(name)
        return ServiceView(self._core, self._clock, name.upper())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._core.registry.services

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._core.registry.services))

    def __len__(self) -> int:
        return len(self._core.registry.services)

    def __repr__(self) -> str:
        return f"<ServicesView {sorted(self)}>"
