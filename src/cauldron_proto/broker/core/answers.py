"""How the core's parts answer: along a request's route, and at most once per period per socket.

Every part of the core returns what to send as a list of multipart messages (:data:`Out`),
each starting with its destination's routing id; none of them sends or keeps output.
"""

from __future__ import annotations

from ...protocol import Message, encode

#: What a call of the core (or of one of its parts) gives to send: multipart messages, each
#: starting with the routing id of its destination.
Out = list[list[bytes]]

#: The prefix of a routed request as the core sees it: the peer's empty delimiter.
DELIMITER = (b"",)


def answer(peer: bytes, request: Message, reply: Message) -> list[bytes]:
    """``reply`` to ``request``, back along the route the request came by from ``peer``."""
    return encode(reply, (peer, *request.prefix))


def to_client(client: bytes, message: Message) -> list[bytes]:
    """``message`` to the client at routing id ``client`` (behind its empty delimiter)."""
    return encode(message, (client, b""))


class OncePerPeriod:
    """When each socket was last told something, so it is told at most once per ``period``
    seconds of the caller's clock (a dispatcher answers every DBE with a DBQ: no ping-pong).
    At most ``limit`` sockets are remembered; the stale ones go first."""

    def __init__(self, period: float, limit: int = 4096):
        self.period, self.limit = period, limit
        self._told: dict[bytes, float] = {}

    def __call__(self, peer: bytes, now: float) -> bool:
        """True (and noted) unless ``peer`` was told within the last period."""
        told = self._told
        if told.get(peer, -float("inf")) + self.period > now:
            return False
        if len(told) >= self.limit:
            for stale in [p for p, at in told.items() if at + self.period <= now]:
                del told[stale]
        told[peer] = now
        return True
