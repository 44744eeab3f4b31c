"""The broker's limits: every resource a peer can make the broker hold has a bound.

Each limit is a ``[zmq]`` configuration key named ``max_*`` in ``spec/protocol.yaml`` (its
default and meaning are there, and in the README's table of limits), a ``cauldron-broker``
flag of the same name (``--max-message-size``), and a field of :class:`Limits`. Where each
one is enforced:

========================================  =================================================
limit                                     enforced by
========================================  =================================================
``max_message_size``, ``max_frames``      the serve loop (``broker.zmq_broker``), as it reads,
                                          and the core's ``over_limit``
``max_queued_messages``                   the ROUTER (SNDHWM, ROUTER_MANDATORY) and the loop
``max_in_flight``                         the routing core (``core.requests``)
``max_dispatchers``,                      the routing core (``core.registry``)
``max_dispatchers_per_connection``,
``max_name_length``
``max_keywords_per_dispatcher``,          the routing core (``core.owners``)
``max_keywords``
``max_broadcast_size``,                   the broadcast relay (``broker.relay``)
``max_queued_broadcasts``,
``max_subscriptions``
========================================  =================================================
"""

from __future__ import annotations

import msgspec

from ...protocol import CONFIG_DEFAULTS

__all__ = ["Limits", "LIMIT_KEYS"]

#: The configuration keys that are limits, in the spec's order.
LIMIT_KEYS = tuple(key for key in CONFIG_DEFAULTS if key.startswith("max_"))


def _default(key: str) -> int:
    return int(CONFIG_DEFAULTS[key])


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The broker's limits (see the module docstring); every field is a positive integer."""

    max_message_size: int = _default("max_message_size")
    max_frames: int = _default("max_frames")
    max_queued_messages: int = _default("max_queued_messages")
    max_in_flight: int = _default("max_in_flight")
    max_dispatchers: int = _default("max_dispatchers")
    max_dispatchers_per_connection: int = _default("max_dispatchers_per_connection")
    max_keywords_per_dispatcher: int = _default("max_keywords_per_dispatcher")
    max_keywords: int = _default("max_keywords")
    max_name_length: int = _default("max_name_length")
    max_broadcast_size: int = _default("max_broadcast_size")
    max_queued_broadcasts: int = _default("max_queued_broadcasts")
    max_subscriptions: int = _default("max_subscriptions")

    def __post_init__(self) -> None:
        for key in LIMIT_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive whole number, not {value!r}")

    def replace(self, **changes: int) -> "Limits":
        """These limits with some changed (checked again)."""
        return msgspec.structs.replace(self, **changes)

    def as_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in LIMIT_KEYS}
