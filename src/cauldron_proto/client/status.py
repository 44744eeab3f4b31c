"""A broker's status: the ``status`` query (CBQ), asked once, for ``cauldron-status`` and scripts.

>>> from cauldron_proto.client.status import broker_status
>>> broker_status({"broker": "tcp://localhost:6513"})["services"]     # doctest: +SKIP
{'KTEST': {'dispatchers': {'disp1': {'state': 'ready', 'last_heard': 0.8, ...}}, ...}}

The JSON's shape is in :mod:`cauldron_proto.broker.core.status`. A broker that answers the
query with an error (the existing Cauldron broker: ``unknown command``) raises
:class:`~.errors.StatusNotServedError`; no answer at all, :class:`~.errors.NoBrokerError`.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import zmq

from ..config import ConfigError, ConfigLike, unusable
from ..peer import HelperSettings, ask
from ..protocol import kinds
from ..protocol.payloads import decode_status
from .errors import NoBrokerError, StatusNotServedError

__all__ = ["broker_status"]

log = logging.getLogger("cauldron_proto.client")


def broker_status(config: ConfigLike | dict = None, service: Optional[str] = None, *, timeout: float = 2.0,
                  context: Optional[zmq.Context] = None, **overrides: Any) -> dict:
    """The status of the broker ``config`` names (keys as in ``[zmq]``; ``overrides`` replace
    them, e.g. ``broker="tcp://..."``): every service, or only ``service``. Over CURVE when
    ``curve_server_key`` is configured. ConfigError at once for an address no broker can be at."""
    settings = HelperSettings.load(config, **overrides)
    problem = unusable(settings.broker)
    if problem is not None:
        raise ConfigError(f"cannot connect to a broker at {problem}")
    request = kinds.build("status", service=service)
    try:
        answer = ask(context if context is not None else zmq.Context.instance(), settings.broker, settings.curve,
                     request, timeout, log)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot connect to a broker at {settings.broker!r}: {zmq.strerror(exc.errno or 0)}") from None
    if answer is None:
        raise NoBrokerError(settings.broker, timeout)
    if answer.is_error:
        raise StatusNotServedError(settings.broker, str(answer.payload))
    return decode_status(answer.payload)
