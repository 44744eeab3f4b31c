"""The broker's sockets: errors, addresses, and moving whole messages without blocking.

Used by :mod:`cauldron_proto.broker.zmq_broker` (the thread) and :mod:`cauldron_proto.broker.launch`.
The hot path passes flags as plain ints (pyzmq's flag enums cost more than a send), reads
frames without copying them twice, and sends through the backend socket's ``send`` (pyzmq's
Python-level ``Socket.send`` only adds draft-socket arguments and doubles the cost of a
frame): together about three times as fast as ``recv/send_multipart``. At most ``BATCH``
messages are taken from one socket per call, so no socket starves the others; answers are
sent ``FLUSH`` messages at a time (see ``ZMQBroker._serve_router``).
"""

from __future__ import annotations

import ctypes
import os

import zmq

from ..config import TCP_ADDRESS

__all__ = ["BATCH", "FLUSH", "seed_routing_ids", "BindError", "BrokerError", "BrokerSockets", "connect_form",
           "is_wildcard", "drain", "fast_send", "peer_address", "poke", "transmit_all", "user_id"]

BATCH = 1000
FLUSH = 32
LARGE = 65536  # bytes: frames this large are sent without copying (pyzmq's own copy threshold)
_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_GONE = zmq.EHOSTUNREACH  # a ROUTER_MANDATORY send to a routing id with no connection
_ANY_HOST = {"*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]", "[::0]": "[::1]"}


class BrokerError(RuntimeError):
    """A broker could not be started, or started but does not answer."""


class BindError(BrokerError, zmq.ZMQError):
    """A broker socket could not be bound; names the socket type and the address.

    Also a ``zmq.ZMQError`` (with its ``errno``), which the existing broker raises there.
    """

    def __init__(self, mode: str, address: str, errno: int, configured: str | None = None):
        self.mode, self.address, self.errno, self.configured = mode, address, errno, configured
        where = f"{address} (configured as {configured})" if configured else address
        self.strerror = f"cannot bind the broker's {mode} socket to {where}: {zmq.strerror(errno)}"
        RuntimeError.__init__(self, self.strerror)


def is_wildcard(addr: str) -> bool:
    """Whether ``addr`` is a tcp address with a port left for the system to choose (``*`` or 0)."""
    match = TCP_ADDRESS.match(addr or "")
    return match is not None and match["port"] in ("*", "0")


def connect_form(bound: str, host: str | None = None) -> str:
    """The address peers connect to for the bound endpoint ``bound`` (``zmq.LAST_ENDPOINT``).

    A wildcard host (all interfaces) becomes ``host`` (the configured one) or loopback.
    """
    match = TCP_ADDRESS.match(bound)
    if match is None or match["host"] not in _ANY_HOST:
        return bound
    return f"tcp://{host or _ANY_HOST[match['host']]}:{match['port']}"


def host_of(addr: str) -> str | None:
    """The host of a tcp address, None for another transport or a wildcard host."""
    match = TCP_ADDRESS.match(addr)
    return None if match is None or match["host"] in _ANY_HOST else match["host"]


def seed_routing_ids() -> bool:
    """Seed libc's ``rand()`` with random bits, so that a ROUTER made after this starts its
    automatic routing ids (a zero byte and a 32-bit counter) at a value nobody can guess.

    libzmq draws the counter's start from ``rand()``, which nothing seeds: unseeded, every
    broker process would start at the same value, and a peer could claim the next ids itself
    (see :mod:`cauldron_proto.broker.core.aliases`). False where libc cannot be reached.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.srand(ctypes.c_uint(int.from_bytes(os.urandom(4), "little")))
    except (OSError, AttributeError):
        return False
    return True


def fast_send(sock):
    """``sock.send`` without pyzmq's Python-level wrapper (same arguments, half the cost per frame)."""
    backend = getattr(zmq.backend, "Socket", None)
    if backend is not None and isinstance(sock, backend):
        return backend.send.__get__(sock)
    return sock.send


def user_id(frame) -> str:
    """The key name of the CURVE connection a received ``zmq.Frame`` came by (its ZAP User-Id).

    '' if it has none (every connection to a CURVE broker has one): a name no rule allows.
    """
    try:
        return frame.get("User-Id")
    except zmq.ZMQError:
        return ""


def peer_address(frame) -> str:
    """The network address (IP) of the connection a received ``zmq.Frame`` came by, '' if none
    (inproc, ipc)."""
    try:
        return frame.get("Peer-Address")
    except zmq.ZMQError:
        return ""


def transmit_all(send, messages) -> list[tuple[list[bytes], bool]] | None:
    """Send each multipart message of ``messages`` without blocking; what could not go.

    On a ROUTER with ROUTER_MANDATORY (the broker's), a message to a peer whose queue is full
    or whose connection is gone raises on its first frame, so nothing of it is sent: it comes
    back as ``(frames, gone)`` (``gone``: the connection is closed; else the peer is not
    reading). None when everything went (the usual case: no list is made).

    A message whose next-to-last frame (a protocol message's payload) is LARGE bytes or more
    is sent without copying its large frames (ZMQ holds a reference to the bytes instead).
    """
    failed = None
    for frames in messages:
        try:
            if len(frames[-2]) < LARGE:
                for frame in frames[:-1]:
                    send(frame, _MORE)
            else:
                for frame in frames[:-1]:
                    send(frame, _MORE, len(frame) < LARGE)
            send(frames[-1], _NOBLOCK)
        except zmq.ZMQError as exc:  # zmq.Again (queue full) is one too
            if failed is None:
                failed = []
            failed.append((frames, exc.errno == _GONE))
    return failed


def drain(sock) -> None:
    """Discard whatever waits on a zmq socket (the control socket)."""
    while sock.poll(0):
        sock.recv(_NOBLOCK)


def drain_wakeup(sock) -> None:
    """Discard the bytes the signal module wrote to a ``set_wakeup_fd`` socket."""
    try:
        while sock.recv(512):
            pass
    except OSError:
        pass


def poke(context, address: str) -> None:
    """Send one empty message to the inproc control socket at ``address`` (wakes its poll)."""
    if context.closed:
        return
    try:
        waker = context.socket(zmq.PUSH)
    except zmq.ZMQError:
        return  # the context is terminating: the broker is leaving anyway
    try:
        waker.connect(address)
        waker.send(b"", _NOBLOCK)
    except zmq.ZMQError:
        pass
    finally:
        waker.close(linger=0)


class BrokerSockets:
    """The bound sockets of one prepared broker, owned by the thread that prepared them
    (XSUB and XPUB lent to the broadcast relay until ``close()``).

    ``longest_wait``: milliseconds a poll may last when no timer is due (None: forever).
    ``wakeup``: a ``set_wakeup_fd`` socket polled too, so no signal waits for the next message.
    ``relay``: the broadcast relay started on ``xsub`` and ``xpub``
    (:class:`~cauldron_proto.broker.relay.BroadcastRelay`), stopped by :meth:`close`.
    ``unfinished``: the ROUTER's TCP connections and their unfinished messages
    (:class:`~cauldron_proto.broker.unfinished.ConnectionWatch`), or None (not bound to TCP).
    """

    __slots__ = ("router", "xpub", "xsub", "control", "relay", "unfinished", "poller", "wakeup", "longest_wait")

    def __init__(self, router, xpub, xsub, control, relay, unfinished=None, longest_wait: int | None = None):
        self.router, self.xpub, self.xsub, self.control = router, xpub, xsub, control
        self.relay, self.unfinished = relay, unfinished
        self.wakeup = None
        self.longest_wait = longest_wait
        self.poller = zmq.Poller()
        for sock in (control, router):
            self.poller.register(sock, zmq.POLLIN)
        if unfinished is not None:  # connections accepted and gone wake the loop
            self.poller.register(unfinished.monitor, zmq.POLLIN)

    def watch(self, wakeup) -> None:
        """Poll ``wakeup`` (a non-blocking ``socket.socket``) too; what arrives on it is discarded."""
        self.wakeup = wakeup
        # the poller reports a non-zmq socket by its file descriptor: register that, to find it
        self.poller.register(wakeup.fileno(), zmq.POLLIN)

    def waited(self, wait_ms: int | None) -> int | None:
        """How long a ``poll(wait_ms)`` may wait (ms; None: until a socket is ready)."""
        longest = self.longest_wait
        if wait_ms is None or (longest is not None and longest < wait_ms):
            return longest
        return wait_ms

    def poll(self, wait_ms: int | None) -> dict:
        """Ready sockets, waiting at most ``wait_ms`` (None: ``longest_wait``), never longer."""
        ready = dict(self.poller.poll(self.waited(wait_ms)))
        wakeup = self.wakeup
        if wakeup is not None and wakeup.fileno() in ready:
            drain_wakeup(wakeup)  # a signal arrived; its Python handler runs on return
        return ready

    def close(self) -> None:
        """Stop the relay; unbind (so an inproc address is free at once, not when the reaper gets to it), close."""
        self.relay.stop()
        if self.unfinished is not None:
            self.unfinished.close(self.router)
        for sock in (self.router, self.xpub, self.xsub, self.control):
            try:
                sock.unbind(sock.getsockopt_string(zmq.LAST_ENDPOINT))
            except zmq.ZMQError:
                pass  # the context is terminating, or nothing to unbind
            sock.close(linger=0)
