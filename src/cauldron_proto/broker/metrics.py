"""The broker's status as Prometheus metrics, written by ``prometheus_client``.

:func:`families` turns one status (:mod:`.core.status`) into metric families named by
Prometheus' conventions (``cauldron_broker_`` prefix, ``_total`` counters, ``_seconds``
units, labels for kinds); :class:`BrokerMetrics` reads the status once per scrape (a
custom collector in a registry of its own) and writes the text format.
"""

from __future__ import annotations

from typing import Any, Iterator

from .sockets import BrokerError

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError:  # the [metrics] extra is not installed
    CollectorRegistry = None  # type: ignore[assignment,misc]

__all__ = ["BrokerMetrics", "families"]

P = "cauldron_broker_"
#: Counters of the core (``Stats`` field -> metric name without ``_total``, help).
COUNTERS = (
    ("received", "messages_received", "Messages received on the ROUTER"),
    ("sent", "messages_sent", "Messages sent on the ROUTER"),
    ("refused", "requests_refused", "Requests answered with an error because their frames broke a rule"),
    ("registered", "registrations", "Dispatchers registered (new, or from a new connection)"),
    ("replaced", "dispatchers_replaced", "Dispatchers that registered again from a new connection"),
    ("readmitted", "dispatchers_readmitted", "Dispatchers registered again by a ready or heartbeat answer"),
    ("registrations_refused", "registrations_refused", "Registrations refused (a held name, a limit, a key)"),
    ("expired", "dispatchers_expired", "Dispatchers expired after EXPIRY_MULTIPLE T of silence"),
    ("heartbeats", "heartbeats_sent", "Heartbeats sent to dispatchers"),
    ("timed_out", "requests_timed_out", "Requests answered 'Dispatcher Timed Out'"),
    ("fanouts", "fanouts", "Fan-outs answered"),
    ("cache_hits", "identify_cache_hits", "Identify fan-outs answered from the cache"),
)


def families(status: dict[str, Any]) -> Iterator[Any]:
    """The metric families of one status."""
    broker, counters, services = status["broker"], status["counters"], status["services"]
    info = GaugeMetricFamily(P + "info", "The broker's version and CURVE (1)", labels=["version", "curve"])
    info.add_metric([str(broker.get("version")), "on" if broker.get("curve") else "off"], 1)
    yield info
    if broker.get("uptime") is not None:
        yield GaugeMetricFamily(P + "uptime_seconds", "Seconds since the broker bound its sockets", broker["uptime"])
    yield GaugeMetricFamily(P + "heartbeat_period_seconds", "The heartbeat period T", broker["timeout"])
    for key, name, text in COUNTERS:
        yield CounterMetricFamily(P + name, text, counters.get(key, 0))
    for name, text, label, by in (
            ("messages_dropped", "Messages dropped, by reason", "reason", counters.get("dropped_by_reason", {})),
            ("error_replies", "Error replies the broker itself sent, by the spec's name of their text", "kind",
             counters.get("errors", {})),
            ("limited", "Messages, registrations and keywords over a limit, by limit", "limit",
             counters.get("limited", {}))):
        family = CounterMetricFamily(P + name, text, labels=[label])
        for value, count in sorted(by.items()):
            family.add_metric([value], count)
        yield family
    yield GaugeMetricFamily(P + "dispatcher_connections", "Connections with a registered dispatcher",
                            status["connections"]["dispatchers"])
    yield from _by_service(services)
    for key, value in sorted((status.get("relay") or {}).items()):
        if isinstance(value, int) and not isinstance(value, bool):
            yield CounterMetricFamily(P + f"relay_{key}", f"The broadcast relay's {key} counter", value)


def _by_service(services: dict[str, Any]) -> Iterator[Any]:
    gauges = {name: GaugeMetricFamily(P + name, text, labels=["service"]) for name, text in (
        ("dispatchers", "Dispatchers registered"), ("dispatchers_ready", "Dispatchers registered and ready"),
        ("requests_in_flight", "Routed requests forwarded and not answered"),
        ("fanouts_in_flight", "Fan-outs waiting for answers"), ("keywords_learned", "Keyword owners learned"))}
    latency = HistogramMetricFamily(P + "request_duration_seconds",
                                    "Seconds from forwarding a routed request to relaying its reply",
                                    labels=["service"])
    for service, s in sorted(services.items()):
        dispatchers = s["dispatchers"].values()
        for name, value in (("dispatchers", len(dispatchers)),
                            ("dispatchers_ready", sum(d["state"] == "ready" for d in dispatchers)),
                            ("requests_in_flight", sum(d["in_flight"] for d in dispatchers)),
                            ("fanouts_in_flight", s["fanouts"]), ("keywords_learned", s["keywords"])):
            gauges[name].add_metric([service], value)
        h = s.get("latency")
        if h:
            cumulative, buckets = 0, []
            for bound, count in zip([*map(str, h["le"]), "+Inf"], h["counts"]):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([service], buckets, h["sum"])
    yield from gauges.values()
    yield latency


class BrokerMetrics:
    """The metrics of ``broker`` (anything with ``status()``), one status read per scrape."""

    def __init__(self, broker):
        if CollectorRegistry is None:
            raise BrokerError("--http needs prometheus_client: pip install 'cauldron_proto[metrics]'")
        self.broker = broker
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def collect(self) -> Iterator[Any]:
        return families(self.broker.status())

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
