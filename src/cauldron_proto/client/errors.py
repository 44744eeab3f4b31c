"""The client helper's errors: a timeout, an error reply, a refused connection, an unknown keyword.

One root, :class:`ClientError`, so ``except ClientError`` catches every error the client
helpers raise for a request; each is also the builtin a caller would expect (as caproto's
errors are): :class:`RequestTimeoutError` a ``TimeoutError``, :class:`UnknownKeywordError`
a ``KeyError``, :class:`BrokerRefusedError` a ``ConnectionRefusedError``,
:class:`ShutDownError` a ``RuntimeError``, :class:`InvalidValueError` a ``KTLValueError``
(so a ``ValueError``).
"""

from __future__ import annotations

from typing import Optional

from ..ktl import KTLValueError

__all__ = ["ClientError", "RequestTimeoutError", "DispatcherError", "DispatcherTimeoutError",
           "UnknownKeywordError", "ShutDownError", "BrokerRefusedError", "InvalidValueError", "NoBrokerError",
           "StatusNotServedError"]


def _where(service: str, keyword: Optional[str]) -> str:
    return f"{service}.{keyword}" if keyword else service


class ClientError(Exception):
    """Base of every error the client helpers (threaded and asyncio) raise for a request."""


class ShutDownError(ClientError, RuntimeError):
    """The helper was shut down: no more requests can be sent through it. A
    :class:`ClientError` and a ``RuntimeError``."""


class RequestTimeoutError(ClientError, TimeoutError):
    """No answer within ``timeout`` seconds; names the service, keyword and command,
    ``handshake``, why the last handshake with the broker failed (None: none failed), and
    ``diagnosis``, which of broker or dispatcher did not answer (None: not asked). A
    :class:`ClientError` and a ``TimeoutError``."""

    def __init__(self, service: str, keyword: Optional[str], command: str, timeout: float, broker: str,
                 handshake: Optional[str] = None, diagnosis: Optional[str] = None):
        self.service, self.keyword, self.command = service, keyword, str(command)
        self.timeout, self.broker, self.handshake, self.diagnosis = timeout, broker, handshake, diagnosis
        failed = "" if handshake is None else f"; its last handshake failed: {handshake}"
        why = f": {diagnosis}" if diagnosis else f" (broker {broker}{failed})"
        super().__init__(f"{_where(service, keyword)}: no answer to {self.command!r} within {timeout:g} s{why}")


class DispatcherError(ClientError):
    """An error reply from the broker or a dispatcher; ``text`` is its payload, as sent."""

    def __init__(self, service: str, keyword: Optional[str], command: str, text: str,
                 dispatcher: Optional[str] = None):
        self.service, self.keyword, self.command = service, keyword, str(command)
        self.text, self.dispatcher = text, dispatcher
        super().__init__(f"{_where(service, keyword)}: {self.command} failed: {text}")


class DispatcherTimeoutError(DispatcherError, TimeoutError):
    """The broker answered ``Dispatcher Timed Out``: the dispatcher went silent (killed,
    frozen, cut off) with this request in flight. A :class:`DispatcherError` and a
    ``TimeoutError``; ``text`` is the broker's text, ``dispatcher`` the silent dispatcher."""


class BrokerRefusedError(ClientError, ConnectionRefusedError):
    """The broker refused the connection in its handshake (a CURVE key it does not authorize,
    CURVE on one side only), so this request was never answered. ``reason`` says which; the
    next request connects again (the broker may have authorized the key meanwhile). A
    :class:`ClientError` and a ``ConnectionRefusedError``."""

    def __init__(self, service: str, keyword: Optional[str], command: str, broker: str, reason: str):
        self.service, self.keyword, self.command = service, keyword, str(command)
        self.broker, self.reason = broker, reason
        super().__init__(f"{_where(service, keyword)}: {self.command} not answered: the broker at {broker} "
                         f"refused the connection: {reason}")


class NoBrokerError(ClientError, ConnectionError):
    """No broker answered a question to the broker itself (``status``) at ``broker`` within
    ``timeout`` seconds (or it refused the connection). A ``ConnectionError``."""

    def __init__(self, broker: str, timeout: float):
        self.broker, self.timeout = broker, timeout
        super().__init__(f"no broker answers at {broker} (no answer within {timeout:g} s)")


class StatusNotServedError(ClientError):
    """The broker at ``broker`` answered a ``status`` query with an error (``text``): it does
    not answer status queries (the existing Cauldron broker: ``unknown command``)."""

    def __init__(self, broker: str, text: str):
        self.broker, self.text = broker, text
        super().__init__(f"this broker does not answer status queries: the broker at {broker} answered {text!r}")


class UnknownKeywordError(ClientError, KeyError):
    """Service ``service`` has no keyword ``keyword`` (no dispatcher identifies it). A
    :class:`ClientError` and a ``KeyError``."""

    def __init__(self, service: str, keyword: str):
        self.service, self.keyword = service, keyword
        super().__init__(keyword)

    def __str__(self) -> str:
        return f"{self.service} has no keyword {self.keyword!r}"


class InvalidValueError(ClientError, KTLValueError):
    """A value written that cannot be given the keyword's KTL type, refused before sending. A
    :class:`ClientError` and a :class:`~cauldron_proto.ktl.KTLValueError` (a ``ValueError``)."""

    @classmethod
    def of(cls, error: KTLValueError) -> "InvalidValueError":
        """The same refusal as ``error``, with its text."""
        refused = cls(error.ktl_type, error.value)
        refused.args = error.args
        return refused
