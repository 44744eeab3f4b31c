"""Unfinished messages: what libzmq holds of a multipart message whose last frame never comes.

libzmq gives a socket a multipart message only once its last frame has arrived: until then it
keeps every frame in the connection's pipe (RCVHWM counts whole messages, MAXMSGSIZE bounds
each frame, nothing bounds their number), and no application sees any of it. A peer speaking
ZMTP itself can send frames with "more" for ever and grow the broker by hundreds of MB a
second, on the ROUTER, the XSUB and the XPUB alike. libzmq 4.3.5 has no option against it.

The kernel knows what libzmq took: for each TCP connection, the bytes received
(``TCP_INFO``'s ``tcpi_bytes_received``) less those still unread (``FIONREAD``). The broker
knows what it read: each message it receives names its connection (the file descriptor,
ZMQ_SRCFD). The difference, a connection's *residue*, is its handshake and commands plus the
part of a message not finished yet. Checked when the socket has nothing more to read (every
finished message taken), a residue that has grown by more than ``allowance`` bytes while the
connection finished no message is a message larger than any the broker accepts: the
connection is shut down, and libzmq, seeing its peer leave, drops the frames it held.

:class:`UnfinishedMessages` is the bookkeeping, without I/O; :class:`ConnectionWatch` reads
the kernel and a socket's monitor, and shuts connections down. Only TCP connections are
watched (an ipc or inproc peer is local, and the kernel counts nothing for them).
"""

from __future__ import annotations

import array
import ctypes
import fcntl
import os
import socket
import struct
import termios
import time

import zmq

__all__ = ["UnfinishedMessages", "ConnectionWatch", "FRAME_OVERHEAD", "allowance_for", "connection_of",
           "give_memory_back", "tcp_taken", "peer_name", "shut_down"]

#: Bytes counted per frame read on top of its data: more than ZMTP's frame header (9 bytes at
#: most) plus CURVE's per-message box (about 42), so what the broker counts as read is never
#: less than what came on the wire for it.
FRAME_OVERHEAD = 64
#: Bytes of handshake and commands a connection may add without finishing a message.
SLACK = 64 * 1024
#: Seconds between two checks while a connection holds part of a message (longer with many
#: connections); IDLE_INTERVAL when none does. A connection sending as fast as loopback goes
#: gets about 10 MB into libzmq in 20 ms, 50 MB in 100 ms.
INTERVAL, IDLE_INTERVAL = 0.02, 0.1
#: Seconds between checks of a socket under a load that never lets it be read to its end.
BUSY_INTERVAL = 1.0
_SRCFD = 2  # ZMQ_SRCFD: zmq_msg_get of a received message's file descriptor (deprecated, kept in 4.3)
_ACCEPTED, _DISCONNECTED = int(zmq.EVENT_ACCEPTED), int(zmq.EVENT_DISCONNECTED)
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)
_TCP_INFO, _BYTES_RECEIVED = 11, 128  # getsockopt(IPPROTO_TCP, TCP_INFO); tcpi_bytes_received's offset


def allowance_for(max_size: int, max_frames: int) -> int:
    """Bytes a connection's residue may grow without finishing a message: two of the largest
    messages allowed (one arriving behind another not yet read) and the slack."""
    return 2 * (max_size + (max_frames + 1) * FRAME_OVERHEAD) + SLACK


def connection_of(frame) -> int:
    """The file descriptor of the connection a received ``zmq.Frame`` came by; -1 if none."""
    try:
        return int(frame.get(_SRCFD))
    except (zmq.ZMQError, ValueError):
        return -1


class UnfinishedMessages:
    """Per connection (file descriptor): what the broker read, and the lowest residue seen.

    ``read(fd, size, frames)`` is the hot path. ``check(taken)``, given what libzmq took from
    each connection, returns the connections to cut: a residue grown by more than
    ``allowance`` over its lowest while no message of it was read since the last check. A
    connection that did finish a message may keep up to half the allowance (a ZMTP heartbeat
    adds a few bytes at a time, for as long as it lives).

    Checked while finished messages may still wait (``confirm``: a socket never read to its
    end, under a load that does not let up), a connection is cut only when two checks in a
    row find it so: finished messages of its own waiting would have been read in between
    (libzmq takes one message from each connection in turn).
    """

    __slots__ = ("allowance", "growing", "_read", "_seen", "_lowest", "_suspect")

    def __init__(self, allowance: int):
        self.allowance = allowance
        self._read: dict[int, int] = {}  # fd -> bytes counted read (data and FRAME_OVERHEAD per frame)
        self._seen: dict[int, int] = {}  # fd -> _read at the last check
        self._lowest: dict[int, int] = {}  # fd -> the lowest residue since it was accepted
        self._suspect: set[int] = set()  # over the allowance at the last check, unconfirmed
        self.growing = False  #: whether the last check found a residue a sixteenth of the allowance over its lowest

    def accepted(self, fd: int) -> None:
        """A new connection on ``fd`` (whatever was counted on that descriptor was another's)."""
        self.gone(fd)
        self._read[fd] = 0
        self._lowest[fd] = 0  # nothing taken yet: the handshake is within the slack

    def gone(self, fd: int) -> None:
        for book in (self._read, self._seen, self._lowest):
            book.pop(fd, None)
        self._suspect.discard(fd)

    def unknown(self, known) -> list[int]:
        """The descriptors messages were read from that are not in ``known``."""
        return [fd for fd in self._read if fd not in known and fd >= 0]

    @property
    def counts(self) -> dict[int, int]:
        """What :meth:`read` adds to, by descriptor (the compiled relay adds to it itself)."""
        return self._read

    def read(self, fd: int, size: int, frames: int) -> None:
        """The broker read a message of ``frames`` frames and ``size`` bytes from ``fd``."""
        read = self._read
        read[fd] = read.get(fd, 0) + size + frames * FRAME_OVERHEAD

    def check(self, taken: dict[int, int], confirm: bool = False) -> list[int]:
        """``taken``: bytes libzmq took from the kernel, per connection. The ones to cut."""
        cut, allowance, suspect = [], self.allowance, self._suspect
        read, seen, lowest = self._read, self._seen, self._lowest
        growing = False
        for fd, took in taken.items():
            done = read.get(fd, 0)
            residue = took - done
            low = min(lowest.get(fd, residue), residue)
            growing = growing or residue - low > allowance // 16
            if seen.get(fd) != done:  # it finished a message since the last check
                low = max(low, residue - allowance // 2)
                suspect.discard(fd)
            elif residue - low > allowance:
                if not confirm or fd in suspect:
                    cut.append(fd)
                else:
                    suspect.add(fd)
            lowest[fd], seen[fd] = low, done
        self.growing = growing
        return cut


def tcp_taken(fd: int, info=None) -> int | None:
    """Bytes libzmq has taken from TCP connection ``fd``: received less unread; None if no TCP.
    ``info``: a buffer of 256 bytes to read ``struct tcp_info`` into (one per thread)."""
    info = ctypes.create_string_buffer(256) if info is None else info
    length = ctypes.c_uint32(len(info))
    if _getsockopt is None or _getsockopt(fd, socket.IPPROTO_TCP, _TCP_INFO, info, ctypes.byref(length)) != 0 \
            or length.value < _BYTES_RECEIVED + 8:
        return None
    unread = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, unread)
    except OSError:
        return None
    return struct.unpack_from("=Q", info.raw, _BYTES_RECEIVED)[0] - unread[0]


def peer_name(fd: int):
    """The peer address of connection ``fd`` (to tell it from a later one on the same descriptor)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            return sock.getpeername()
    except OSError:
        return None


def shut_down(fd: int, expected) -> bool:
    """Shut connection ``fd`` down (libzmq sees its peer leave and closes it); False if the
    descriptor is no longer the connection to ``expected``.

    Linux still queues what the peer sends after ``shutdown(SHUT_RD)``, and a read returns
    the end of the stream only once that queue is empty: a peer that goes on sending would
    keep libzmq reading for ever. So the connection first gets a socket filter that drops
    every packet (a classic BPF ``ret #0``, which needs no privilege): nothing more is queued,
    libzmq reads the end of the stream and closes the descriptor.
    """
    if expected is None:
        return False
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            if sock.getpeername() != expected:
                return False  # the descriptor was closed and reused meanwhile
            if _setsockopt is not None:
                _setsockopt(sock.fileno(), socket.SOL_SOCKET, _SO_ATTACH_FILTER, ctypes.byref(_DROP_ALL),
                            ctypes.sizeof(_DROP_ALL))
            sock.shutdown(socket.SHUT_RDWR)  # the connection, not only this duplicate of it
    except OSError:
        return False
    return True


class ConnectionWatch:
    """The TCP connections of one bound zmq socket, from its monitor, and their unfinished messages.

    ``events()`` reads the monitor (call it before a message's descriptor is counted, so a
    descriptor reused by a new connection is not mistaken for the old one); ``read(fd, size,
    frames)`` counts a message; ``check(now, drained)`` shuts down the connections over the
    allowance, every ``interval`` s while one holds part of a message, else IDLE_INTERVAL (longer
    with many connections, so that reading the
    kernel costs at most about 2% of a core), and returns their peer addresses. ``drained``:
    the socket was just read to its end; else the check waits ``BUSY_INTERVAL`` and a
    connection must be found over twice.
    """

    def __init__(self, sock, allowance: int, interval: float = INTERVAL, monitor=None):
        self.books = UnfinishedMessages(allowance)
        self.read = self.books.read
        self.interval = interval
        self.peers: dict[int, object] = {}  # fd -> peer address (None: no TCP)
        self.cut = 0  # connections shut down in all
        self._own = monitor is None
        self.monitor = sock.get_monitor_socket(_ACCEPTED | _DISCONNECTED) if monitor is None else monitor
        self._due = self._last = 0.0
        self._dead: dict[int, object] = {}  # fd -> peer of a connection cut off (its events may come late)
        self._trim = False  # give freed memory back to the system at the next check
        self._info = ctypes.create_string_buffer(256)  # struct tcp_info (232 bytes on Linux 5+)

    def due(self) -> float | None:
        """When the next check is due (None: no TCP connection to watch, no memory to give back)."""
        return self._due if self.peers or self._trim else None

    def events(self) -> list[tuple[int, int]]:
        """Read the monitor: (event, fd) of each connection accepted or gone since the last call."""
        monitor, seen = self.monitor, []
        while monitor.getsockopt(_EVENTS) & _POLLIN:  # cheaper than a recv raising Again
            event = monitor.recv(_NOBLOCK)
            while monitor.getsockopt(zmq.RCVMORE):
                monitor.recv(_NOBLOCK)  # the endpoint
            kind, fd = struct.unpack("=HI", event[:6])
            if kind != _ACCEPTED:
                self._trim = self._trim or self.books.growing  # it may have left part of a message
                self.gone(fd)
            elif not self.accepted(fd):
                continue  # a connection already cut off, whose acceptance is read only now
            seen.append((kind, fd))
        return seen

    def accepted(self, fd: int) -> bool:
        """Watch connection ``fd``; False if it is one this watch cut off."""
        peer = peer_name(fd)
        if peer is not None and self._dead.pop(fd, None) == peer:
            return False
        self.books.accepted(fd)
        self.peers[fd] = peer
        return True

    def gone(self, fd: int) -> None:
        self.books.gone(fd)
        self.peers.pop(fd, None)

    def check(self, now: float, drained: bool = True) -> list[object]:
        """If due: shut down the connections holding an unfinished message over the allowance."""
        if now < (self._due if drained else self._last + BUSY_INTERVAL):
            return []
        self._last = now
        self.events()
        started = time.thread_time()
        for fd in self.books.unknown(self.peers):  # accepted before the monitor began
            self.peers[fd] = peer_name(fd)
        taken = {}
        for fd, peer in self.peers.items():
            if peer is not None and (took := tcp_taken(fd, self._info)) is not None:
                taken[fd] = took
        if self._trim:  # what libzmq held for the connections cut last time is freed by now
            self._trim = False
            give_memory_back()
        cut = []
        for fd in self.books.check(taken, confirm=not drained):
            if shut_down(fd, self.peers.get(fd)):
                cut.append(self.peers[fd])
                self.cut += 1
                self._dead[fd] = self.peers[fd]
                self.gone(fd)  # its DISCONNECTED event follows; nothing more is counted on it
                self._trim = True
        # the CPU time the check took, not the wall time: a broker starved of CPU must not
        # check less often because of it
        interval = self.interval if self.books.growing else IDLE_INTERVAL
        self._due = now + max(interval, 50 * (time.thread_time() - started))
        return cut

    def close(self, sock) -> None:
        """Stop monitoring ``sock`` (before it closes) and close the monitor socket."""
        if self._own:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(linger=0)


def give_memory_back() -> None:
    """Return the memory freed in every arena to the system (glibc's ``malloc_trim``; else nothing)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _libc_function(name: str):
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None  # not glibc


def _libc_getsockopt():
    call = _libc_function("getsockopt")
    if call is None:
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    call.restype = ctypes.c_int
    return call


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


_SO_ATTACH_FILTER = 26  # Linux
_RET_ZERO = (_SockFilter * 1)(_SockFilter(0x06, 0, 0, 0))  # BPF_RET | BPF_K, 0: keep no byte of any packet
_DROP_ALL = _SockFprog(1, ctypes.cast(_RET_ZERO, ctypes.POINTER(_SockFilter)))
_getsockopt = _libc_getsockopt()
_setsockopt = _libc_function("setsockopt")
_malloc_trim = _libc_function("malloc_trim")
