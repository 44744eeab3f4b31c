"""The thread that runs monitor callbacks, one at a time and in order of arrival."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Iterable

__all__ = ["Notifier"]


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
