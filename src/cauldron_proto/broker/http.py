"""The broker's HTTP monitor: ``/healthz``, ``/status`` and ``/metrics`` (``cauldron-broker --http``).

Theory of operation
-------------------
:class:`HTTPMonitor` serves a running :class:`~.zmq_broker.ZMQBroker` over HTTP with
``http.server.ThreadingHTTPServer`` in a thread of its own (a thread per request); it never
touches a ZMQ socket. It reads the broker only through two calls that are safe from any
thread: ``broker.health()`` (the stamps the routing loop leaves each step) and
``broker.status()`` (the core's status, built under the lock the loop holds while it changes
the books, never while it polls).

- ``/healthz``: 200 ``ok`` while the routing loop turns, 503 with the reason otherwise (the
  loop stopped, or it has not come back from a step or an overdue poll for max(2 T, 1 s);
  an idle loop blocked in a poll with no timer due is healthy: nothing waits for it).
- ``/status``: the JSON a ``status`` query is answered with (``?service=NAME``: one service).
- ``/metrics``: Prometheus' text format, written by ``prometheus_client`` from one status
  read per scrape (:mod:`.metrics`).

The server closes with :meth:`HTTPMonitor.stop` (``shutdown``, ``server_close``, join).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Any
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .sockets import BrokerError

__all__ = ["HTTPMonitor", "http_address"]

log = logging.getLogger("cauldron_proto.broker.http")
LOOPBACK = "127.0.0.1"


def http_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` as (host, port): loopback without a host, ``[::1]:PORT`` for IPv6;
    ValueError naming the text otherwise (port 0: one the system chooses)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]") if sep else LOOPBACK
    if not port.isdigit() or int(port) > 65535 or (sep and not host):
        raise ValueError(f"{text!r} is not [HOST:]PORT (a port from 0 to 65535)")
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler, monitor: "HTTPMonitor"):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.monitor = monitor
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        monitor = self.server.monitor
        if url.path == "/healthz":
            ok, why = monitor.broker.health()
            self._reply(200 if ok else 503, ("ok: " if ok else "unhealthy: ") + why + "\n", "text/plain")
        elif url.path == "/status":
            service = parse_qs(url.query).get("service", [None])[0]
            self._reply(200, json.dumps(monitor.broker.status(service)), "application/json")
        elif url.path == "/metrics":
            body, content_type = monitor.metrics()
            self._reply(200, body, content_type)
        else:
            self._reply(404, "not found: /healthz, /status or /metrics\n", "text/plain")

    def _reply(self, code: int, body: str | bytes, content_type: str) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type if "charset" in content_type else content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)


class HTTPMonitor:
    """``/healthz``, ``/status`` and ``/metrics`` of ``broker`` at ``address`` ([HOST:]PORT).

    ``start()`` binds (BrokerError naming the address if it cannot, or if prometheus_client
    is not installed) and serves in a thread; ``stop()`` closes. ``address``: what was bound.
    """

    def __init__(self, broker, address: str):
        self.broker = broker
        self.requested = http_address(address)
        self.address: tuple[str, int] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._metrics: Any = None  # a metrics.BrokerMetrics once started (prometheus_client is optional)

    @property
    def url(self) -> str:
        host, port = self.address or self.requested
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> "HTTPMonitor":
        from .metrics import BrokerMetrics  # needs prometheus_client: said at start, not at a scrape

        self._metrics = BrokerMetrics(self.broker)
        try:
            self._server = _Server(self.requested, _Handler, self)
        except OSError as exc:
            host, port = self.requested
            raise BrokerError(f"cannot serve HTTP at {host}:{port}: {exc.strerror or exc}") from None
        bound = self._server.server_address
        self.address = (str(bound[0]), int(bound[1]))
        self._thread = threading.Thread(target=self._server.serve_forever, name="cauldron_proto broker HTTP",
                                        daemon=True)
        self._thread.start()
        return self

    def metrics(self) -> tuple[bytes, str]:
        return self._metrics.exposition()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join()

    def __enter__(self) -> "HTTPMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
