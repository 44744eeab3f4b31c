"""The key rules under CURVE: a dispatcher name belongs to the key that registered it.

Theory of operation
-------------------
With CURVE on, the shell hands ``handle`` the name of the key each message's connection
authenticated with (``key``, the ZAP User-Id); without CURVE it is None and none of this
applies. A registration is a ``welcome`` that creates a record, or the re-admission of a free
name by ``ready`` or a heartbeat answer (:meth:`.Registry.alive`). The rules, all decided here from
data the core holds:

1. A record remembers its ``key``. A name held by a record of key K is taken over only by a
   welcome authenticated as K (the same dispatcher restarted); from any other key the
   welcome is refused: DBE ``Dispatcher 'X' of 'S' is registered by another key; refused``.
   Once the record is gone (expired, or replaced by K) the name is free again.
2. With a ``policy`` (``allows(key, service)``, the ``curve_dispatchers`` file), a
   registration from a key the policy does not let serve the service is refused: DBE
   ``Key 'K' may not register dispatchers of 'S'; refused``. Without one, any key may
   register a free name.
3. A routing id belongs to one connection at a time, so a message from the routing id of a
   record, authenticated as another key, shows that record's connection gone (its id reused
   by another peer): the record is retired at once (its requests in flight answered
   ``Dispatcher Timed Out``) and the message is handled as a stranger's.

The policy is data the core holds (a :class:`~cauldron_proto.security.policy.ServePolicy`, or any
object with ``allows``); the broker's shell keeps it current, handing the core the rules of
the ``curve_dispatchers`` file (read again if it changed) before each DBQ, the direction of
every registration. The core reads no file.

A refusal is counted (``stats.registrations_refused``), logged at WARNING with both key
names (at most one line per key and reason per 10 s), and answered at most once per T per
socket (an existing dispatcher answers every DBE with a DBQ: no ping-pong).
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional, Protocol

from ...protocol import Message, Text
from .answers import OncePerPeriod, Out, answer
from .stats import DropLog, Stats


class ServicePolicy(Protocol):
    """What the core asks a ``curve_dispatchers`` policy (``cauldron_proto.security.policy``)."""

    def allows(self, key: Optional[str], service: str) -> bool: ...


class KeyRules:
    """The registration rules by CURVE key (see the module docstring).

    ``policy``: who may register dispatchers of what (``allows(key, service)``), or None: any
    key may register a free name. The broker's shell keeps it current.
    """

    def __init__(self, stats: Stats, drops: DropLog, *, timeout: float, name: str):
        self.stats, self.drops, self.name = stats, drops, name
        self.policy: ServicePolicy | None = None
        self._told_refused = OncePerPeriod(float(timeout))

    def reused(self, peer: bytes, key: str, records: Iterable, now: float) -> list:
        """The ``records`` at ``peer`` that belong to another key than ``key`` (rule 3: the
        routing id now names another connection; the caller retires them), each logged."""
        stale = [record for record in records if record.key != key]
        for record in stale:
            self._warn(("reused", key), now, "routing id %s of dispatcher %s/%s (key %r) is now used by key %r: "
                       "dispatcher retired", peer.hex(), record.service, record.name, record.key, key)
        return stale

    def refusal(self, peer: bytes, message: Message, old, key: str | None, now: float) -> Out | None:
        """None when the connection's ``key`` may register ``message``'s dispatcher (``old``: the
        record holding the name, if any); else what to send for the refusal (maybe nothing)."""
        if key is None:
            return None  # no CURVE: no key rules
        if self.policy is not None and not self.policy.allows(key, message.service_key):  # type: ignore[arg-type]
            text = Text.KEY_MAY_NOT_SERVE.format(key=key, service=message.service)
            self._warn(("policy", key), now, "refused %s of %s/%s from key %r at %s: the policy does not let it "
                       "serve %s", message.command, message.service_key, message.dispatcher, key, peer.hex(),
                       message.service_key)
            return self._refuse(peer, message, "key_may_not_serve", text, now)
        if old is not None and old.key != key:
            text = Text.DISPATCHER_OWNED_BY_ANOTHER_KEY.format(dispatcher=message.dispatcher, service=message.service)
            self._warn(("owned", key), now, "refused %s of %s/%s from key %r at %s: registered by key %r at %s",
                       message.command, message.service_key, message.dispatcher, key, peer.hex(), old.key,
                       old.peer.hex())
            return self._refuse(peer, message, "dispatcher_owned_by_another_key", text, now)
        return None

    def _refuse(self, peer: bytes, message: Message, kind: str, text: str, now: float) -> Out:
        """Count a refused registration; its answer, at most once per T per socket."""
        self.stats.registrations_refused += 1
        if self._told_refused(peer, now):
            self.stats.error(kind)
            return [answer(peer, message, message.error(text))]
        self.drops.drop("registration_refused_told_already", now, peer, message)
        return []

    def _warn(self, reason: object, now: float, text: str, *args: object) -> None:
        self.drops.note(reason, now, logging.WARNING, "%s: " + text, self.name, *args)
