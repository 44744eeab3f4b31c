"""What a helper's socket learns of its handshakes with the broker, from the socket's monitor.

A broker that refuses a connection says so only in the ZMTP handshake. Without looking, the
peer sees nothing but timeouts. :class:`HandshakeWatch` reads the socket's monitor
(``ZMQ_EVENT_HANDSHAKE_*``), and :func:`handshake_failure` says what each failure means:

- ``HANDSHAKE_FAILED_AUTH``: the broker's authenticator refused this peer's CURVE key (ZAP
  status 400: not among its authorized keys; 300 and 500: its authenticator failed). libzmq
  gives the connection up for good (it does not reconnect): ``permanent``.
- ``HANDSHAKE_FAILED_PROTOCOL``: the two sides disagree on the security mechanism (CURVE on
  one side only) or broke ZMTP. Given up for good too: ``permanent``.
- ``HANDSHAKE_FAILED_NO_DETAIL``: the broker dropped the handshake. On a CURVE socket that is
  most often a ``curve_server_key`` that is not the broker's public key. On a plain socket it
  is often a CURVE broker closing the connection before the mechanisms were compared (seen
  between processes: a few such attempts, then ``HANDSHAKE_FAILED_PROTOCOL``), or a broker
  stopping mid-handshake. libzmq reconnects and tries again, so it is not permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import zmq
from zmq.utils.monitor import parse_monitor_message

__all__ = ["HandshakeFailure", "HandshakeWatch", "TellOnce", "handshake_failure"]

_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
#: ZAP status codes (ZeroMQ RFC 27) other than 200.
_ZAP_STATUS = {300: "its authenticator failed for now", 400: "this peer's CURVE key is not authorized",
               500: "its authenticator failed"}


@dataclass(frozen=True)
class HandshakeFailure:
    """Why a handshake with the broker failed; ``permanent``: libzmq will not try again."""

    reason: str
    permanent: bool

    def describe(self, broker: str) -> str:
        """The line to log: a refusal (permanent), or a failed handshake libzmq tries again."""
        if self.permanent:
            return f"the broker at {broker} refused the connection: {self.reason}"
        return f"a handshake with the broker at {broker} failed: {self.reason}"


def handshake_failure(event: int, value: int, curve: bool) -> Optional[HandshakeFailure]:
    """What monitor ``event`` (with its ``value``) means for a peer (``curve``: it has CURVE
    keys); None for an event that is no refusal."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        meaning = _ZAP_STATUS.get(value, "its authenticator said no")
        return HandshakeFailure(f"{meaning} (ZAP status {value})", True)
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            reason = ("it does not use CURVE, and this peer does (curve_server_key is set)" if curve else
                      "it uses CURVE, and this peer has no keys (set curve_key and curve_server_key)")
        else:
            reason = f"the handshake broke the ZMTP protocol (libzmq error {value:#x})"
        return HandshakeFailure(reason, True)
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        return HandshakeFailure("the CURVE handshake failed (is curve_server_key the broker's public key?)" if curve
                                else "the broker dropped the handshake (if it uses CURVE, set curve_key and "
                                     "curve_server_key)", False)
    return None


class TellOnce:
    """Which handshake failure a helper has told: each is told once, and again only after a
    handshake succeeds or for another reason. It outlives the sockets it hears about (a
    dispatcher refused on every new socket logs one line)."""

    def __init__(self) -> None:
        #: why the last handshake failed; None once one succeeds
        self.reason: Optional[str] = None

    def heard(self, succeeded: bool, failure: Optional[HandshakeFailure]) -> bool:
        """Take one handshake outcome; True when ``failure`` is one to tell."""
        if succeeded:
            self.reason = None
        if failure is None or failure.reason == self.reason:
            return False
        self.reason = failure.reason
        return True


class HandshakeWatch:
    """The monitor of ``sock`` (a socket to the broker), for its handshake events.

    :attr:`socket` is a PAIR in ``sock``'s context (a ``zmq.asyncio`` one for an asyncio
    socket). With a plain socket, poll it for POLLIN (:meth:`register` registers both), then
    :meth:`read`; with an asyncio one, await its messages and give each to :meth:`outcome`.
    Made by the thread or task that owns ``sock``; :meth:`close` there closes the monitor,
    then ``sock``: the two live and end together.
    """

    def __init__(self, sock: zmq.Socket, curve: bool):
        self.curve = curve
        self._watched = sock
        self.socket: zmq.Socket = sock.get_monitor_socket(_EVENTS)
        self.socket.linger = 0

    def outcome(self, frames: list[bytes]) -> tuple[bool, Optional[HandshakeFailure]]:
        """What one monitor message says: (whether a handshake succeeded, the failure or None)."""
        event = parse_monitor_message(frames)
        return (event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED,
                handshake_failure(event["event"], event["value"], self.curve))

    def read(self) -> list[tuple[bool, Optional[HandshakeFailure]]]:
        """The outcomes of the events waiting now on a plain socket, in order."""
        outcomes = []
        while True:
            try:
                outcomes.append(self.outcome(self.socket.recv_multipart(zmq.NOBLOCK)))
            except zmq.Again:
                return outcomes

    def register(self, poller: zmq.Poller) -> None:
        """Poll the watched socket and its monitor for POLLIN."""
        poller.register(self._watched, zmq.POLLIN)
        poller.register(self.socket, zmq.POLLIN)

    def close(self, poller: Optional[zmq.Poller] = None) -> None:
        """Close the monitor, then the watched socket (linger 0); unregister both from ``poller``."""
        if poller is not None:
            poller.unregister(self.socket)
            poller.unregister(self._watched)
        try:
            self._watched.disable_monitor()
        except zmq.ZMQError:
            pass
        self.socket.close(linger=0)
        self._watched.close(linger=0)
