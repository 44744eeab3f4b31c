"""Latency of routed requests by service: a fixed-bucket histogram, fed with the caller's times.

A routed request (CDQ) remembers the ``now`` it was forwarded at; when its dispatcher's
reply is relayed, ``now - sent_at`` goes into its service's histogram. Observing is a
bisection over :data:`BOUNDS` and three additions, so the routing loop hardly notices; the
buckets are those a Prometheus histogram exposes (``le``: the upper bounds, cumulative when
exported). At most :attr:`Latencies.MAX_SERVICES` services are kept (a service name comes
from a peer): past that, a new service's requests are not measured.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

__all__ = ["BOUNDS", "Latencies"]

#: Upper bounds of the buckets, in seconds (a last bucket, +Inf, holds the rest).
BOUNDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Latencies:
    """Per service: requests counted by bucket (``len(BOUNDS) + 1`` counts) and their sum."""

    MAX_SERVICES = 1024

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, service: str, seconds: float) -> None:
        counts = self.counts.get(service)
        if counts is None:
            if len(self.counts) >= self.MAX_SERVICES:
                return
            counts = self.counts[service] = [0] * (len(BOUNDS) + 1)
            self.sums[service] = 0.0
        counts[bisect_left(BOUNDS, seconds)] += 1
        self.sums[service] += seconds

    def of(self, service: str) -> dict[str, Any] | None:
        """One service's histogram as JSON data (``le``, per-bucket ``counts``, ``sum``, ``count``), or None."""
        counts = self.counts.get(service)
        if counts is None:
            return None
        return {"le": list(BOUNDS), "counts": list(counts), "sum": self.sums[service], "count": sum(counts)}
