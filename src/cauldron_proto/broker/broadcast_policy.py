"""The broadcast relay's check under a ``curve_dispatchers`` policy: only a key allowed to serve
a service may broadcast for it.

A broadcast is seven frames with no prefix, the first its service (what subscribers' topics
match): it passes when ``policy.allows(User-Id, service)`` (the ZAP User-Id of the publisher's
connection, on the frames received with ``copy=False``); else it is refused (``policy``), as is
a message of another length (``not_a_broadcast``), logged at WARNING once per key and service
per 10 s. Decisions are remembered per (key, service frame) and forgotten when the policy
changes; the policy file is looked at (one ``stat``) at most every ``relay_interval`` s.
"""

from __future__ import annotations

import logging

from ..protocol import BLANK, ENVELOPE_SIZE, Direction, RemoteProtocolError, decode
from ..security.policy import PolicyFile
from .core.stats import LogLimit
from .sockets import user_id

__all__ = ["PolicyCheck"]

_CDB = Direction.CDB.encode("ascii")
_LOG_INTERVAL = 10.0  # seconds between two WARNING lines about one (key, service)
_log = logging.getLogger("cauldron_proto.broker.relay")


class PolicyCheck:
    """Whether a broadcast's key may serve its service, as the ``curve_dispatchers`` policy says."""

    def __init__(self, policy: PolicyFile, clock):
        self.policy, self._clock = policy, clock
        self._rules = policy.current()
        self._looked_at = clock()
        self._decisions: dict[tuple[str, bytes], bool] = {}
        self._log_limit = LogLimit(_LOG_INTERVAL)  # per (key, service)

    def refusal(self, frames) -> str | None:
        """Why ``frames`` (received ``zmq.Frame``) may not pass (``not_a_broadcast``, ``policy``), or None."""
        if len(frames) != ENVELOPE_SIZE:
            return "not_a_broadcast"
        return self.decide(user_id(frames[0]), frames[0].bytes, ENVELOPE_SIZE)

    def decide(self, user: str, service: bytes, count: int) -> str | None:
        """:meth:`refusal` for a broadcast of ``count`` frames, the first ``service``, from key
        name ``user`` (the compiled relay's question, :func:`.batchio.native.relay`)."""
        if count != ENVELOPE_SIZE:
            return "not_a_broadcast"
        key = (user, service)
        allowed = self._decisions.get(key)
        if allowed is None:
            allowed = self._decide(key)
        return None if allowed else "policy"

    def _decide(self, key: tuple[str, bytes]) -> bool:
        """Whether key name ``key[0]`` may broadcast with service frame ``key[1]`` (remembered)."""
        try:  # the service frame read as the codec reads it, in an envelope of blanks
            service = decode([key[1], BLANK, BLANK, _CDB, BLANK, BLANK, BLANK]).service_key
        except RemoteProtocolError:
            service = None  # not a text frame
        allowed = service is not None and self._rules.allows(key[0], service)
        if len(self._decisions) >= 4096:
            self._decisions.clear()
        self._decisions[key] = allowed
        return allowed

    def refresh(self) -> None:
        """Look at the policy file at most every ``relay_interval`` s; forget decisions if it changed."""
        now = self._clock()
        if now - self._looked_at < self.policy.relay_interval:
            return
        self._looked_at = now
        rules = self.policy.current()
        if rules is not self._rules:
            self._rules, self._decisions = rules, {}

    def log(self, frames, reason: str) -> None:
        self.note(user_id(frames[0]), frames[0].bytes, len(frames), reason)

    def note(self, user: str, service: bytes, count: int, reason: str) -> None:
        """Log a broadcast refused for ``reason`` (from :meth:`decide`), once per key and service per 10 s."""
        if _log.isEnabledFor(logging.WARNING) and self._log_limit.due((user, service), self._clock()):
            why = ("not a broadcast (a broadcast is 7 frames, no prefix)" if reason == "not_a_broadcast"
                   else "the policy does not let that key serve it")
            _log.warning("broadcast for %r from key %r not relayed: %s (%d frames)",
                         service.decode("utf-8", "replace"), user, why, count)
