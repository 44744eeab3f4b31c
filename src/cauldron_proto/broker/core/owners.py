"""What the broker learned from dispatchers' answers: which dispatcher owns a keyword, and its type.

A successful answer about a keyword teaches that its dispatcher owns it (so a later CDQ
naming only the keyword is routed there) and, for ``identify``, its KTL type (the identify
cache, which answers a later identify fan-out at once). The type cache of a service goes with
the service's last dispatcher, and a dispatcher's cached types with its expiry. The owners
outlive the service by ``owner_retention`` seconds (a day; at most ``max_retained``
services, the oldest dropped first) and count again when a dispatcher of the service
registers: an existing Cauldron client identifies a keyword once and then always routes by
the learned owner, even across a dispatcher's restart.

Bounded (:mod:`.limits`): at most ``max_keywords_per_dispatcher`` keywords learned from one
dispatcher name and ``max_keywords`` in all, keyword names of at most ``max_name_length``
characters, and types of at most ``MAX_TYPE_LENGTH``: past a limit an answer is still relayed,
only not learned (:meth:`LearnedOwners.learn` says which limit).

Names only: which record holds a name now is the :class:`~.registry.Registry`'s to say.
"""

from __future__ import annotations

from .limits import Limits

#: The longest KTL type the identify cache keeps (KTL's are a few words: ``KTL_DOUBLE_ARRAY``).
MAX_TYPE_LENGTH = 256


class LearnedOwners:
    """Keyword owners and types by service key (see the module docstring)."""

    def __init__(self, owner_retention: float = 86_400.0, max_retained: int = 1024) -> None:
        self.owner_retention = owner_retention  #: seconds the owners outlive their service
        self.max_retained = max_retained  #: services whose owners are kept after they left, at most
        self.owners: dict[str, dict[str, str]] = {}  #: service key -> keyword key -> dispatcher name
        self.types: dict[str, dict[str, str]] = {}  #: service key -> keyword key -> KTL type
        #: service key -> when its owners are forgotten, for services that left (oldest first)
        self.retained: dict[str, float] = {}
        self.limits = Limits()  #: the broker's limits (the core sets them)
        #: service key -> dispatcher name -> keywords learned from it; and their sum
        self.counts: dict[str, dict[str, int]] = {}
        self.total = 0

    def learn(self, service: str, keyword: str, name: str, command: str | None, payload: object) -> str | None:
        """A successful answer from dispatcher ``name`` about ``keyword`` (``payload``: read for
        identify). None when learned (or known already); else the name of the limit it is over."""
        owners = self.owners.get(service)
        current = None if owners is None else owners.get(keyword)
        if current != name:
            over = self._over(service, keyword, name, current)
            if over is not None:
                return over
            if owners is None:
                owners = self.owners[service] = {}
            owners[keyword] = name
        if command == "identify" and isinstance(payload, str) and len(payload) <= MAX_TYPE_LENGTH:
            self.types.setdefault(service, {})[keyword] = payload
        return None

    def _over(self, service: str, keyword: str, name: str, current: str | None) -> str | None:
        """Count ``keyword`` as learned from ``name`` (no longer from ``current``), or the limit it is over."""
        limits = self.limits
        count = self.counts.get(service, {}).get(name, 0)
        if len(keyword) > limits.max_name_length:
            return "max_name_length"
        if count >= limits.max_keywords_per_dispatcher:
            return "max_keywords_per_dispatcher"
        if current is None and self.total >= limits.max_keywords:
            return "max_keywords"
        counts = self.counts.setdefault(service, {})  # past the limits: nothing kept for a refusal
        if current is None:
            self.total += 1
        elif counts[current] > 1:
            counts[current] -= 1
        else:
            del counts[current]
        counts[name] = count + 1
        return None

    def _forget(self, service: str) -> None:
        """Forget every owner learned for ``service``."""
        self.owners.pop(service, None)
        self.total -= sum(self.counts.pop(service, {}).values())

    def owner(self, service: str, keyword: str) -> str | None:
        """The name of the dispatcher learned to own ``keyword`` of ``service``, if any."""
        return self.owners.get(service, {}).get(keyword)

    def type_of(self, service: str, keyword: str) -> tuple[str, str] | None:
        """(owner name, KTL type) from the identify cache, if both are known."""
        ktl_type = self.types.get(service, {}).get(keyword)
        if ktl_type is None:
            return None
        name = self.owner(service, keyword)
        return None if name is None else (name, ktl_type)

    def forget_types_of(self, service: str, name: str) -> None:
        """Drop the cached types of keywords owned by dispatcher ``name`` (it expired)."""
        types, owners = self.types.get(service), self.owners.get(service, {})
        if types:
            for keyword in [k for k in types if owners.get(k) == name]:
                del types[keyword]

    def left(self, service: str, now: float) -> None:
        """The service's last dispatcher is gone: its types go, its owners are kept a while."""
        self.types.pop(service, None)
        owners = self.owners.get(service)
        if not owners or self.owner_retention <= 0 or self.max_retained <= 0:
            self._forget(service)
            return
        self.retained.pop(service, None)
        self.retained[service] = now + self.owner_retention
        while len(self.retained) > self.max_retained:
            oldest = next(iter(self.retained))
            del self.retained[oldest]
            self._forget(oldest)

    def back(self, service: str) -> None:
        """A dispatcher of ``service`` registered: its owners count again, no longer retained."""
        self.retained.pop(service, None)

    def purge(self, now: float) -> None:
        """Forget the retained owners whose time is up (they are kept oldest first)."""
        retained = self.retained
        while retained:
            service, forget_at = next(iter(retained.items()))
            if forget_at > now:
                return
            del retained[service]
            self._forget(service)
