"""What the asyncio client and dispatcher share: their context, and sends that never wait."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, cast

import zmq
import zmq.asyncio

__all__ = ["async_context", "send_now", "batch"]


def async_context(context: Optional[zmq.Context]) -> tuple[zmq.asyncio.Context, bool]:
    """(an asyncio context, whether it is ours to terminate): a new one for None, the same one
    for a ``zmq.asyncio.Context``, a shadow of any other context (inproc peers share it)."""
    if context is None:
        return zmq.asyncio.Context(), True
    if isinstance(context, zmq.asyncio.Context):
        return context, False
    return zmq.asyncio.Context.shadow(context.underlying), False


def send_now(sock: zmq.asyncio.Socket, frames: list[bytes], log: logging.Logger, what: str) -> bool:
    """Send ``frames`` at once or drop them with a warning (a full queue): False when dropped."""
    # finished unless other sends are queued; a Future (pyzmq's stubs say only Awaitable)
    sent = cast("asyncio.Future[Any]", sock.send_multipart(frames, zmq.NOBLOCK))
    if not sent.done():
        sent.add_done_callback(lambda done: _warn_failed(done, log, what))
        return True
    error = sent.exception()
    if error is None:
        return True
    if isinstance(error, zmq.Again):
        log.warning("%s dropped: send queue full", what)
        return False
    raise error


def _warn_failed(done: asyncio.Future[Any], log: logging.Logger, what: str) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("%s dropped: %s", what, done.exception())


def batch(first: list[bytes], sock: zmq.Socket, size: int) -> list[list[bytes]]:
    """``first`` (a message just awaited), and up to ``size - 1`` more already queued on
    ``sock`` (a plain socket shadowing the asyncio one), taken without waiting."""
    messages = [first]
    while len(messages) < size:
        try:
            messages.append(sock.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            break
    return messages
