"""The child of ``ZMQBroker.daemon()``: read the order on stdin, bind, report, serve.

Run by :mod:`.process` as a fresh interpreter (``python -m cauldron_proto.broker.child``
does the same); see :mod:`.process` for the order and the report. Only the child imports
this module, so the broker's modules import one another in one direction: ``child`` ->
``launch``, ``zmq_broker`` -> ``launch`` -> ``process``.
"""

from __future__ import annotations

import configparser
import importlib
import json
import os
import sys
import threading

from ..config import ConfigError
from .launch import serve_until_signalled
from .sockets import BrokerError
from .zmq_broker import ZMQBroker

__all__ = ["main"]


def main() -> int:
    """The child: read the order on stdin, bind, report on stdout, serve until told to stop."""
    order = json.loads(_read_line(0) or b"{}")
    sys.path.extend(p for p in order.get("path", []) if p not in sys.path)  # to import the broker class
    cfg = configparser.ConfigParser()
    cfg.read_dict(order.get("sections", {}))
    report = sys.stdout

    def say(**what) -> None:
        report.write(json.dumps(what) + "\n")
        report.flush()

    try:
        broker = _broker_class(order.get("broker", "cauldron_proto.broker:ZMQBroker")).from_config(cfg, "ProcessBroker")
        if order.get("exit_with_parent", True):
            threading.Thread(target=_stop_at_end_of_input, args=(broker,), daemon=True).start()
        serve_until_signalled(broker, lambda served: say(running=dict(served.endpoints)))
    except (BrokerError, ConfigError, ValueError, ImportError) as exc:
        say(error=str(exc))
        return 1
    return 0


def _broker_class(name: str):
    module, _, qualname = name.partition(":")
    found = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, ZMQBroker)):
        raise ValueError(f"{name} is not a ZMQBroker class")
    return found


def _read_line(fd: int) -> bytes:
    """One line from ``fd``, unbuffered (the parent writes one line, then nothing)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _stop_at_end_of_input(broker) -> None:
    """The parent closed our stdin, or died: stop serving. (``os.read``, not ``sys.stdin``:
    a daemon thread must hold no lock of a buffered file at interpreter shutdown.)"""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    broker.stop()


if __name__ == "__main__":
    sys.exit(main())
