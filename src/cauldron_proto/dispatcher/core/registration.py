"""A dispatcher's registration with the broker and its watch on the broker, without I/O.

Theory of operation
-------------------
:class:`Registration` is told what the broker sent and what time it is, and says what to
send and when to start over; it owns no socket and reads no clock.

* ``welcome(now)`` gives the ``DBQ welcome`` to send on a new socket; state ``welcoming``
  until the broker's ``DBP welcome`` (payload ``confirmed``) arrives, when it gives the
  ``DBQ ready`` to send and the state is ``ready``. No confirmation within ``welcome_wait``
  seconds: ``overdue(now)`` says why to start over (a new socket, a new welcome).
* While ``ready`` with heartbeats on, any message from the broker pushes ``expire_at`` to
  ``liveness`` heartbeat periods later (default the spec's ``DISPATCHER_LIVENESS``); the broker sends ``DBP heartbeat`` to a dispatcher
  idle for one period, so silence past ``expire_at`` means the broker is gone or restarted
  and forgot us: ``overdue(now)`` says so.
* With ``ready`` goes an inquiry (``UBQ check``); its answer shows the broker has handled
  ``ready`` (one socket, in order), and the registration is ``routable`` (as it is on the
  first heartbeat or request, from a broker that does not answer the inquiry).
* The broker's heartbeat period must be this dispatcher's (``[zmq] timeout`` on both sides).
  The shortest time between two of its heartbeats while ``ready`` is at least its period:
  ``disagreement()`` says so (once) when that is well under ours. A broker that confirmed
  the registration and then sent no heartbeat for ``liveness`` periods may have a longer
  period than ours: ``overdue`` says that too, with both numbers it knows.
* ``DBP heartbeat`` is answered at once (``DBQ heartbeat``, same identifier, the time as
  payload, with one decimal as the existing dispatcher writes it). A ``DBE`` saying this dispatcher is not registered means start over now.
"""

from __future__ import annotations

import math
from typing import Optional

from ...protocol import DISPATCHER_LIVENESS, Command, Direction, Message, Text, kinds

__all__ = ["Registration", "WELCOMING", "READY"]

WELCOMING, READY = "welcoming", "ready"
#: The broker's heartbeats coming this many times faster than our period is a disagreement.
PERIOD_TOLERANCE = 1.5
_FROM_A_KNOWING_BROKER = frozenset({Direction.CDQ, Direction.SDQ})
_NOT_REGISTERED = Text.DISPATCHER_NOT_REGISTERED.split("{", 1)[0]  # "Dispatcher '"
_NOT_REGISTERED_TAIL = Text.DISPATCHER_NOT_REGISTERED.split("'", 2)[2].split("{", 1)[0]


class Registration:
    """State of one dispatcher's registration: ``welcoming`` or ``ready``."""

    def __init__(self, service: str, name: str, period: float, heartbeat: bool = True,
                 liveness: float = DISPATCHER_LIVENESS, welcome_wait: Optional[float] = None):
        self.service, self.name = service, name
        self.period, self.heartbeat, self.liveness = period, heartbeat, liveness
        self.welcome_wait = welcome_wait if welcome_wait is not None else max(period, 1.0)
        self.state = WELCOMING
        self.expire_at = math.inf
        self.registrations = 0
        self.routable = False
        self._check: Optional[Message] = None
        #: The shortest time between two heartbeats of the broker seen while ready (None: not yet).
        self.broker_period: Optional[float] = None
        #: gaps between the broker's heartbeats well under this dispatcher's period: one alone is no
        #: disagreement (the broker sends an extra heartbeat when it checks a name's holder)
        self._short_gaps = 0
        self._beat_at: Optional[float] = None  # the broker's last heartbeat on this socket, while ready
        self._told = False
        #: why the broker refused the last welcome (a live dispatcher holds the name, a limit), or None
        self.refused: Optional[str] = None
        self._refusal_told: Optional[str] = None

    def welcome(self, now: float) -> Message:
        """Start (over): the welcome to send on a new socket."""
        self.state = WELCOMING
        self.routable = False
        self.expire_at = now + self.welcome_wait
        self._beat_at = None
        return kinds.welcome(self.service, self.name)

    def heard(self, message: Message, now: float, wall: float) -> tuple[list[Message], Optional[str]]:
        """A message from the broker: (messages to send, a reason to start over or None)."""
        if self.state == READY:
            if self.heartbeat:
                self.expire_at = now + self.liveness * self.period
            if message.direction in _FROM_A_KNOWING_BROKER:
                self.routable = True  # a broker that heartbeats us or routes to us knows us
        if message.direction == Direction.DBP and message.command == Command.HEARTBEAT:
            self.routable = self.routable or self.state == READY
            if self.state == READY:
                self._beaten(now)
            return [kinds.heartbeat_answer(message, wall, dispatcher=self.name).with_prefix(b"")], None
        if message.direction == Direction.DBP and message.command == Command.WELCOME:
            return self._confirmed(message, now), None
        if message.direction == Direction.UBP and self._check is not None \
                and message.identifier == self._check.identifier:
            self.routable, self._check = True, None
            return [], None
        if message.direction == Direction.DBE and self._not_registered(message.payload):
            return [], f"the broker says: {message.payload}"
        if message.direction == Direction.DBE and message.command == Command.WELCOME and self.state == WELCOMING:
            self.refused = str(message.payload)  # tried again when the welcome's wait is over
        return [], None

    def refusal(self) -> Optional[str]:
        """Once per reason: why the broker refused this dispatcher's welcome, or None."""
        if self.refused is None or self.refused == self._refusal_told:
            return None
        self._refusal_told = self.refused
        return f"the broker refused the registration: {self.refused}"

    def _confirmed(self, message: Message, now: float) -> list[Message]:
        if self.state != WELCOMING or message.payload != Text.CONFIRMED:
            return []
        self.state = READY
        self.refused = self._refusal_told = None
        self.registrations += 1
        self.expire_at = now + self.liveness * self.period if self.heartbeat else math.inf
        self._check = kinds.inquiry(Command.CHECK, service=self.service, dispatcher=self.name)
        return [kinds.ready(self.service, self.name), self._check]

    def _beaten(self, now: float) -> None:
        if self._beat_at is not None:
            between = now - self._beat_at
            self.broker_period = between if self.broker_period is None else min(self.broker_period, between)
            if between * PERIOD_TOLERANCE < self.period:
                self._short_gaps += 1
        self._beat_at = now

    def disagreement(self) -> Optional[str]:
        """Once: that the broker's heartbeats come well within this dispatcher's period, or None."""
        if self._told or not self.heartbeat or self.broker_period is None \
                or self.broker_period * PERIOD_TOLERANCE >= self.period or self._short_gaps < 2:
            return None
        self._told = True
        return (f"the broker sends heartbeats every {self.broker_period:.2g} s but this dispatcher's heartbeat "
                f"period is {self.period:g} s: set [zmq] timeout (cauldron-dispatcher --timeout) to the broker's")

    def _not_registered(self, payload) -> bool:
        return isinstance(payload, str) and payload.startswith(_NOT_REGISTERED) \
            and _NOT_REGISTERED_TAIL in payload

    def overdue(self, now: float) -> Optional[str]:
        """Why to start over at ``now`` (no confirmation, or the broker silent), or None."""
        if now < self.expire_at:
            return None
        if self.state == WELCOMING:
            if self.refused is not None:
                return f"the broker refused the registration ({self.refused})"
            return f"no answer to welcome within {self.welcome_wait:g} s"
        silence = self.liveness * self.period
        reason = f"nothing from the broker for {silence:g} s ({self.liveness:g} heartbeat periods)"
        if self._beat_at is None:  # confirmed, then not one heartbeat
            reason += (f"; the broker confirmed the registration but sent no heartbeat since: if its heartbeat "
                       f"period is longer than {silence:g} s, this dispatcher's ({self.period:g} s) is too short: "
                       "set [zmq] timeout (cauldron-dispatcher --timeout) to the broker's")
        return reason
