"""The broker's status, as the JSON object a ``status`` query (CBQ) is answered with.

Built in the routing core from its books at the caller's ``now``, plus what only the I/O
layer knows (version, uptime, addresses, CURVE, the broadcast relay's counters), which it
hands the core as :attr:`BrokerCore.about`, a callable giving a dict. Connections are shown
only as counts: a routing id never leaves the broker (see :mod:`.aliases`).

Shape (every time in seconds)::

    {"broker": {"name", "version", "uptime", "timeout", "heartbeat", "fanout_timeout",
                "limits", "addresses", "bound", "curve", "lookup"},
     "connections": {"dispatchers": sockets with a registered dispatcher},
     "services": {KEY: {"dispatchers": {NAME: {"state": "ready" | "registered",
                                              "last_heard", "key", "keywords", "in_flight"}},
                        "keywords", "fanouts", "latency": {"le", "counts", "sum", "count"} | null}},
     "counters": the core's Stats, "relay": the relay's counters or null}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ...protocol import EXPIRY_MULTIPLE

if TYPE_CHECKING:
    from .core import BrokerCore
    from .registry import DispatcherRecord

__all__ = ["status"]


def status(core: "BrokerCore", now: float, service: str | None = None) -> dict[str, Any]:
    """The status at ``now``: every service, or only the service key ``service``."""
    about = dict(core.about()) if core.about is not None else {}
    relay = about.pop("relay", None)
    broker = {"name": core.name, "version": about.pop("version", None), "uptime": about.pop("uptime", None),
              "timeout": core.timeout, "heartbeat": core.heartbeat, "fanout_timeout": core.fanout_timeout,
              "limits": core.limits.as_dict(), "lookup": core.lookup_address, **about}
    names = list(core.registry.services) if service is None else [service]
    services = {name: _service(core, name, now) for name in names if name in core.registry.services}
    return {"broker": broker, "connections": {"dispatchers": len(core.registry.by_peer)}, "services": services,
            "counters": msgspec.to_builtins(core.stats), "relay": relay}


def _service(core: "BrokerCore", name: str, now: float) -> dict[str, Any]:
    counts = core.owners.counts.get(name, {})
    dispatchers = {record.name: _dispatcher(core, record, counts.get(record.name, 0), now)
                   for record in list(core.registry.dispatchers(name).values())}
    return {"dispatchers": dispatchers, "keywords": len(core.owners.owners.get(name, {})),
            "fanouts": core.fanouts.count(name), "latency": core.latencies.of(name)}


def _dispatcher(core: "BrokerCore", record: "DispatcherRecord", keywords: int, now: float) -> dict[str, Any]:
    heard = record.expire_at - EXPIRY_MULTIPLE * core.timeout  # heard_from() set expire_at from it
    return {"state": "ready" if record.ready else "registered", "last_heard": round(max(0.0, now - heard), 3),
            "key": record.key, "keywords": keywords, "in_flight": len(core.requests.pending(record))}
