"""The broker's books: services, the dispatchers registered in them, requests in flight.

Plain bookkeeping with no protocol logic: :class:`BrokerCore` decides, these classes
remember. Deadlines are data (``expire_at``, ``next_beat_at``, set from the caller's ``now``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import msgspec

from ...protocol import Message

if TYPE_CHECKING:
    from .fanout import FanOut

#: What identifies a request in flight at one dispatcher: the pair it travels on ("CD" for
#: a routed request, "SD" for a fan-out copy), the client's routing id and the identifier.
#: Two clients may use the same identifier; one client's requests are told apart by it.
InFlightKey = tuple[str, bytes, bytes]


class InFlight(msgspec.Struct, gc=False):
    """A request forwarded to a dispatcher and not answered yet."""

    request: Message  #: the client's request as received (prefix ``(b"",)``; the client is in the key)
    fanout: "FanOut | None" = None  #: the fan-out this is a copy of (SD only)


class DispatcherRecord:
    """One dispatcher name of one service, registered at one socket (routing id)."""

    __slots__ = ("service", "service_name", "name", "peer", "key", "ready", "expire_at", "next_beat_at",
                 "in_flight", "unanswered")

    #: The broker's own messages (replies, heartbeats) ``unanswered`` counts at most.
    MAX_UNANSWERED = 64

    def __init__(self, service_name: str, name: str, peer: bytes, now: float, timeout: float,
                 key: str | None = None):
        self.service = service_name.upper()  #: the service key
        self.service_name = service_name  #: the service name as the dispatcher wrote it
        self.name = name  #: the dispatcher name, case-sensitive
        self.peer = peer
        self.key = key  #: the CURVE key its socket authenticated with (None without CURVE)
        self.ready = False  #: heartbeats start once the dispatcher said ``ready``
        self.in_flight: dict[InFlightKey, InFlight] = {}
        #: identifiers of the broker's own messages to it (a welcome's ``confirmed``, heartbeats,
        #: errors) no message from it has carried since: the rest of the existing ``active`` count
        self.unanswered: dict[bytes, None] = {}
        self.expire_at = self.next_beat_at = 0.0
        self.seen(now, timeout)

    def seen(self, now: float, timeout: float) -> None:
        """Something arrived from this dispatcher: it is alive for 5 T more, idle from now."""
        self.expire_at = now + 5 * timeout
        self.next_beat_at = now + timeout

    def sent(self, identifier: bytes) -> None:
        """The broker sent it a message of its own with ``identifier`` (the oldest of too many forgotten)."""
        unanswered = self.unanswered
        if len(unanswered) >= self.MAX_UNANSWERED:
            del unanswered[next(iter(unanswered))]
        unanswered[identifier] = None

    def deadline(self, heartbeat: bool) -> float | None:
        if not heartbeat:
            return None
        return min(self.expire_at, self.next_beat_at) if self.ready else self.expire_at

    def __repr__(self) -> str:
        return f"<Dispatcher {self.service}/{self.name} at {self.peer.hex()} in_flight={len(self.in_flight)}>"


class Service:
    """One service: its dispatchers by name, what it learned about keywords, its fan-outs."""

    __slots__ = ("name", "dispatchers", "owners", "types", "fanouts")

    def __init__(self, name: str):
        self.name = name  #: the service key (upper-cased)
        self.dispatchers: dict[str, DispatcherRecord] = {}
        self.owners: dict[str, str] = {}  #: keyword key -> dispatcher name (learned)
        self.types: dict[str, str] = {}  #: keyword key -> KTL type (the identify cache)
        self.fanouts: dict[tuple[bytes, bytes], FanOut] = {}

    @property
    def idle(self) -> bool:
        """No dispatcher and nothing in flight: nothing worth remembering."""
        return not self.dispatchers and not self.fanouts

    def learn(self, keyword: str, name: str, command: str | None, payload: str | None) -> None:
        """A successful answer from dispatcher ``name`` about ``keyword`` (``payload``: read for identify)."""
        self.owners[keyword] = name
        if command == "identify":
            self.types[keyword] = payload

    def owner(self, keyword: str) -> DispatcherRecord | None:
        name = self.owners.get(keyword)
        return None if name is None else self.dispatchers.get(name)

    def cached_type(self, keyword: str) -> tuple[DispatcherRecord, str] | None:
        """The identify cache: the registered owner of ``keyword`` and its type, if known."""
        record, ktl_type = self.owner(keyword), self.types.get(keyword)
        return None if record is None or ktl_type is None else (record, ktl_type)

    def forget_types_of(self, name: str) -> None:
        """Drop the cached types of keywords owned by ``name`` (it expired)."""
        for keyword in [k for k in self.types if self.owners.get(k) == name]:
            del self.types[keyword]


class Books:
    """Every service by key, and every dispatcher record by its socket's routing id.

    When a service's last dispatcher is gone, what it learned of keyword owners is kept for
    ``owner_retention`` seconds (for at most ``max_retained`` services, the oldest dropped
    first) and given back when a dispatcher of that service registers again: an existing
    Cauldron client identifies a keyword once and then always routes by the learned owner.
    """

    def __init__(self, owner_retention: float = 86_400.0, max_retained: int = 1024) -> None:
        self.services: dict[str, Service] = {}
        self.by_peer: dict[bytes, dict[tuple[str, str], DispatcherRecord]] = {}
        self.owner_retention = owner_retention
        self.max_retained = max_retained
        #: service key -> (forget at, learned owners), oldest first
        self.retained: dict[str, tuple[float, dict[str, str]]] = {}

    def add(self, record: DispatcherRecord) -> None:
        service = self.services.get(record.service)
        if service is None:
            service = self.services[record.service] = Service(record.service)
            kept = self.retained.pop(record.service, None)
            if kept is not None:
                service.owners.update(kept[1])
        service.dispatchers[record.name] = record
        self.by_peer.setdefault(record.peer, {})[(record.service, record.name)] = record

    def remove(self, record: DispatcherRecord) -> None:
        """Forget ``record`` (its requests in flight are the caller's to answer first)."""
        service = self.services.get(record.service)
        if service is not None and service.dispatchers.get(record.name) is record:
            del service.dispatchers[record.name]
        at_peer = self.by_peer.get(record.peer)
        if at_peer is not None and at_peer.get((record.service, record.name)) is record:
            del at_peer[(record.service, record.name)]
            if not at_peer:
                del self.by_peer[record.peer]

    def forget_if_idle(self, key: str, now: float) -> None:
        """Forget service ``key`` if it is idle, keeping its learned owners for a while."""
        service = self.services.get(key)
        if service is None or not service.idle:
            return
        del self.services[key]
        if service.owners and self.owner_retention > 0 and self.max_retained > 0:
            self.retained[key] = (now + self.owner_retention, service.owners)
            while len(self.retained) > self.max_retained:
                del self.retained[next(iter(self.retained))]

    def purge_retained(self, now: float) -> None:
        """Drop the retained owners whose time is up (they are kept oldest first)."""
        while self.retained:
            key, (forget_at, _) = next(iter(self.retained.items()))
            if forget_at > now:
                return
            del self.retained[key]

    def registered(self, peer: bytes, service: str, name: str) -> DispatcherRecord | None:
        return self.by_peer.get(peer, {}).get((service, name))

    def find_in_flight(self, peer: bytes, key: InFlightKey) -> tuple[DispatcherRecord, InFlight] | None:
        """The request ``key`` in flight at any dispatcher registered at ``peer``, removed."""
        for record in self.by_peer.get(peer, {}).values():
            entry = record.in_flight.pop(key, None)
            if entry is not None:
                return record, entry
        return None

    def records(self) -> Iterator[DispatcherRecord]:
        for service in self.services.values():
            yield from service.dispatchers.values()
