"""Which socket I/O the broker's loop runs: the compiled ``_batchio`` (batched), or pure Python.

``_batchio`` (``_batchio.c``, built by ``pip install`` when a C compiler is there; see
docs/native.md) receives every waiting multipart message of a socket, and sends a list of
them, in one call each, without blocking; the routing core, the codec and the limits stay the
Python they are, and the pure-Python loop (:mod:`.sockets`) is the same behaviour, frame by
frame. Chosen once, at import: the compiled one when it was built and loads, unless
``CAULDRON_PROTO_PURE`` is set (to anything but ``0`` or nothing).

:data:`IO` names the one running (``cauldron-broker --version``, the status query's ``io``);
:data:`WHY_PURE` says why it is pure Python (None when it is not).
"""

from __future__ import annotations

import os
from functools import partial
from types import ModuleType
from typing import Callable

import zmq

from .sockets import fast_send, transmit_all

__all__ = ["IO", "WHY_PURE", "Sender", "native", "sender"]

#: the list of messages -> what could not go (see :func:`.sockets.transmit_all`)
Sender = Callable[[list[list[bytes]]], "list[tuple[list[bytes], bool]] | None"]

native: ModuleType | None = None
WHY_PURE: str | None = None
if os.environ.get("CAULDRON_PROTO_PURE", "") not in ("", "0"):
    WHY_PURE = "CAULDRON_PROTO_PURE is set"
else:
    try:
        from . import _batchio as native
    except ImportError as exc:  # not built (no compiler), or no libzmq it can use
        WHY_PURE = f"the compiled part does not load: {exc}"
IO = "pure Python" if native is None else "compiled"
_GONE = int(zmq.EHOSTUNREACH)


def sender(sock, batched: bool = True) -> Sender:
    """A function sending a list of multipart messages on ``sock`` without blocking, returning
    what could not go as :func:`.sockets.transmit_all` does; in one compiled call when
    ``batched`` and it can be, else frame by frame."""
    if native is None or not batched:
        return partial(transmit_all, fast_send(sock))
    return partial(native.transmit, sock.underlying, _GONE)
