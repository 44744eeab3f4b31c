"""The thread that runs monitor callbacks, one at a time and in order of arrival."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Iterable, Optional

__all__ = ["Notifier", "Monitors"]


class Notifier:
    """Runs ``monitor.callback(value)`` for queued values, off the I/O thread.

    A slow callback delays the callbacks after it, never the sockets. Exceptions from a
    callback are logged and do not stop the others.
    """

    def __init__(self, name: str, log: logging.Logger):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._log = log
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def notify(self, monitors: Iterable[Any], value: Any) -> None:
        self._queue.put((tuple(monitors), value))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            monitors, value = job
            for monitor in monitors:
                if not monitor.active:
                    continue
                try:
                    monitor.callback(value)
                except Exception:
                    self._log.exception("monitor callback for %s.%s raised", value.service, value.keyword)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop after the callbacks already queued (waits at most ``timeout``)."""
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class Monitors:
    """The monitors of one client service, by keyword; their callbacks run in a :class:`Notifier`.

    ``subscribe()`` is called before the first monitor is filed (it connects the SUB socket);
    safe to use from any thread.
    """

    def __init__(self, name: str, log: logging.Logger, subscribe: Callable[[], None]):
        self._name, self._log, self._subscribe = name, log, subscribe
        self._by_keyword: dict[str, list] = {}
        self._lock = threading.Lock()
        self._notifier: Optional[Notifier] = None

    def add(self, monitor: Any) -> None:
        self._subscribe()
        with self._lock:
            if self._notifier is None:
                self._notifier = Notifier(f"cauldron-client-{self._name}-callbacks", self._log)
            self._by_keyword.setdefault(monitor.keyword.name, []).append(monitor)

    def remove(self, monitor: Any) -> None:
        with self._lock:
            monitors = self._by_keyword.get(monitor.keyword.name, [])
            if monitor in monitors:
                monitors.remove(monitor)

    def of(self, key: str) -> list:
        """The monitors of keyword ``key`` now."""
        with self._lock:
            return list(self._by_keyword.get(key, ()))

    def notify(self, monitors: Iterable[Any], value: Any) -> None:
        if self._notifier is not None:
            self._notifier.notify(monitors, value)

    def stop(self) -> None:
        if self._notifier is not None:
            self._notifier.stop()
