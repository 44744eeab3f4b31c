"""Read-only snapshots of the core's books, for introspection (``ZMQBroker.get_service``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

import msgspec

from .books import DispatcherRecord, Service


class DispatcherView(msgspec.Struct, frozen=True):
    """One registered dispatcher, as the core saw it when the view was taken."""

    service: str  #: the service key (upper-cased)
    name: str
    peer: bytes  #: the routing id of its socket
    ready: bool
    in_flight: int  #: requests forwarded to it and not answered yet
    expire_at: float
    next_beat_at: float

    @classmethod
    def of(cls, record: DispatcherRecord) -> "DispatcherView":
        return cls(record.service, record.name, record.peer, record.ready, len(record.in_flight),
                   record.expire_at, record.next_beat_at)


class ServiceView(msgspec.Struct, frozen=True):
    """One service's books: dispatchers by name, learned keyword owners, the identify cache."""

    name: str  #: the service key (upper-cased)
    dispatchers: Mapping[str, DispatcherView]
    keywords: Mapping[str, str]  #: keyword key -> the dispatcher name learned to own it
    identify: Mapping[str, str]  #: keyword key -> KTL type (answers to identify)
    fanouts: int  #: fan-outs in flight

    @classmethod
    def of(cls, service: Service) -> "ServiceView":
        dispatchers = {name: DispatcherView.of(r) for name, r in service.dispatchers.items()}
        return cls(service.name, MappingProxyType(dispatchers), MappingProxyType(dict(service.owners)),
                   MappingProxyType(dict(service.types)), len(service.fanouts))


class ServicesView(Mapping[str, ServiceView]):
    """The current services by key; looking one up never creates it (any case works)."""

    def __init__(self, services: dict[str, Service]):
        self._services = services

    def __getitem__(self, name: str) -> ServiceView:
        return ServiceView.of(self._services[name.upper()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._services

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._services))

    def __len__(self) -> int:
        return len(self._services)
