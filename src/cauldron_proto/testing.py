"""Brokers and raw peers for tests of dispatchers and clients (and for benchmarks and scripts).

    from cauldron_proto import Direction, Message
    from cauldron_proto.testing import answer_request, broker_thread, open_peers, receive, register_dispatcher, send

    with broker_thread("tcp") as broker, open_peers() as peers:
        disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(disp, "KTEST", "disp1")
        client = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        send(client, Message.new(Direction.CDQ, service="KTEST", keyword="VALUE", command="update"))
        answer_request(disp, "disp1", "42")
        assert receive(client).payload == "42"

An I/O layer (it imports zmq): import it as ``cauldron_proto.testing``; ``import
cauldron_proto`` does not load it. It needs no test framework. Every wait has a timeout
(seconds, default :data:`WAIT`); every socket, thread and process it starts is closed,
stopped and reaped by the context manager or ``stop()``/``close()`` that goes with it.

Brokers
-------
- :func:`broker_thread` ``(transport="tcp", *, name, context, lookup, timeout=1.0,
  heartbeat=True, **attributes)``: a context manager yielding a started
  :class:`~cauldron_proto.broker.ZMQBroker` thread on ephemeral loopback tcp ports
  (``"tcp"``) or fresh inproc addresses (``"inproc"``: peers must use ``broker.context``);
  ``broker.endpoints`` holds the addresses to connect to. ``attributes`` are set on the broker
  before it starts (e.g. ``max_message_size=1024``; a limit by its name). Stopped on exit, even when the body
  raises; a broker that does not stop raises :class:`~cauldron_proto.broker.BrokerError`.
- :func:`inproc_addresses` ``(tag="broker")``: fresh ``inproc://`` addresses by config key
  (``broker``, ``publish``, ``subscribe``), unique in this process.
- :func:`broker_process` ``(*arguments, router, publish, subscribe, timeout=1.0, program,
  env, startup_timeout=30.0)``: the ``cauldron-broker`` command in a child process, on
  ephemeral loopback ports unless told otherwise (an address of None leaves its option out);
  returns a :class:`BrokerCommandProcess` once the child has announced its endpoints, or raises
  :class:`~cauldron_proto.broker.BrokerError` with its exit status and what it wrote on
  stderr. ``arguments`` are more options (``--lookup ADDR``, the CURVE options, ``-c FILE``);
  ``program`` the command itself (default :func:`broker_command`'s); ``env`` variables set
  for the child over this process's (e.g. ``PYTHONPATH`` to run another version).
- :func:`broker_command` ``(*arguments, router, publish, subscribe, timeout, program)``: the
  argument list :func:`broker_process` runs.
- :func:`config_for` ``(broker, **extra)``: the ``[zmq]`` settings pointing at a broker
  thread or :class:`BrokerCommandProcess`: its three endpoints and its ``timeout`` (text, as a
  configuration holds them), ``extra`` added; what ``client.Service`` and
  ``dispatcher.Service`` take as their configuration.

Child processes
---------------
- :class:`ChildProcess` ``(argv, *, env=None)``: a command run as a child process (stdin
  empty): ``popen``, ``pid``, ``read_line(timeout)`` (its next stdout line, as they come),
  ``stderr_text()`` (what it wrote on stderr so far), ``freeze()`` (SIGSTOP), ``thaw()``
  (SIGCONT), ``kill()`` (SIGKILL, reaped), ``wait(timeout)`` (its exit status once it exits
  by itself), ``stop(timeout=10.0)`` (SIGTERM, SIGKILL after ``timeout``; reaped, pipes
  closed; its exit status). A context manager: ``stop()`` on exit.
- :class:`BrokerCommandProcess`: a :class:`ChildProcess` running ``cauldron-broker``, as
  :func:`broker_process` returns it: ``endpoints`` (by config key) and ``timeout`` (its
  heartbeat period).

Raw peers
---------
Sockets that speak the protocol frame by frame, every message built and read with
:func:`~cauldron_proto.encode` and :func:`~cauldron_proto.decode`.

- :class:`PeerSockets` ``(context=None)``: ``socket(kind, connect=None, *, identity,
  subscribe)`` opens one (linger 0) in ``context`` (default: the global context);
  ``close()`` closes them all.
- :func:`open_peers` ``(context=None)``: a context manager yielding a :class:`PeerSockets`,
  all of them closed on exit.
- :func:`send` ``(sock, message, flags=0, timeout=WAIT)``: send a
  :class:`~cauldron_proto.Message`; a DEALER puts the empty delimiter first when the message
  has no routing prefix. It waits at most ``timeout`` seconds for the socket to take the
  message (:class:`NothingSentError` after that; ``zmq.NOBLOCK`` in ``flags`` does not wait
  and raises ``zmq.Again``): a DEALER whose CURVE handshake the broker refused has no
  connection left to send on, and a plain blocking send would wait forever.
- :func:`receive` ``(sock, timeout=WAIT)``: the next message, decoded (a DEALER's keeps its
  prefix: the delimiter, and the client's route on a forwarded request).
- :func:`ask` ``(sock, message, timeout=WAIT)``: send ``message`` and return the answer with
  its identifier (messages arriving first are skipped).
- :func:`register_dispatcher` ``(sock, service, name, timeout=WAIT)``: play a dispatcher on
  a DEALER: welcome (answered ``confirmed``), ready, then an inquiry, so the broker has
  handled ``ready`` on return.
- :func:`dispatcher_answer` ``(message, name, payload="42", *, error=False)``: what a raw
  dispatcher named ``name`` sends back for a message the broker forwarded: a heartbeat's
  answer (:func:`cauldron_proto.kinds.heartbeat_answer`: the time now, the heartbeat's other
  fields kept), else the reply (with ``error``, the error reply) carrying ``payload``.
- :func:`answer_heartbeat` ``(sock, timeout=WAIT)``: take the next message, which must be a
  heartbeat, and answer it; returns the heartbeat.
- :func:`answer_request` ``(sock, name, payload, *, error=False, timeout=WAIT)``: take the
  next message, which must be a request (not a heartbeat), and answer it as ``name``;
  returns the request.
- :func:`zmtp_connection` ``(address, socket_type, rcvbuf=None)``: a plain TCP
  ``socket.socket`` that has done ZMTP 3.0's NULL handshake as a ``socket_type`` peer
  (``b"DEALER"``, ``b"PUB"``, ``b"SUB"``), to send what libzmq would not (frames of a message
  that never ends); :func:`zmtp_frame` ``(data, more=False)``: one ZMTP frame's bytes;
  :func:`send_until_closed` ``(conn, chunk, most)``: send ``chunk`` on such a connection over and
  over until the broker closes it or ``most`` bytes went (the bytes sent; ``conn`` closed).

Errors and constants
--------------------
- :class:`NothingReceivedError`: nothing arrived in time (on a socket, or a child's stdout;
  also when the child exited first). An ``AssertionError``, so a test fails with its text.
- :class:`NothingSentError`: the socket took no message in time (it has no peer to send
  to); an ``AssertionError``.
- :class:`UnexpectedMessageError`: a message arrived, but not the one the helper needs
  (``confirmed`` to a welcome, a heartbeat, a request); an ``AssertionError``.
- Bad arguments raise ``TypeError`` (not a Message, not a DEALER where one is needed, an
  attribute the broker does not have) or ``ValueError`` (an unknown transport, a timeout that
  is not a non-negative number).
- :data:`WAIT` (10.0): the seconds a helper waits by default. :data:`ANY_TCP`
  (``tcp://127.0.0.1:*``): an ephemeral loopback port, as :class:`ZMQBroker` binds it.
  :data:`ANY_LOOPBACK` (``tcp://localhost:*``): the same for ``cauldron-broker``, which binds
  ``localhost`` to loopback only (any other host binds all interfaces).
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import zmq

from .broker.core.limits import LIMIT_KEYS
from .broker.zmq_broker import BrokerError, ZMQBroker
from .processes import terminate
from .protocol import Direction, Message, Text, decode, encode, kinds

__all__ = ["ANY_LOOPBACK", "ANY_TCP", "BrokerCommandProcess", "ChildProcess", "NothingReceivedError",
           "NothingSentError", "PeerSockets", "UnexpectedMessageError", "WAIT", "answer_heartbeat", "answer_request",
           "ask", "broker_command", "broker_process", "broker_thread", "config_for", "dispatcher_answer",
           "inproc_addresses", "open_peers", "receive", "register_dispatcher", "send", "send_until_closed",
           "zmtp_connection", "zmtp_frame"]

ANY_TCP = "tcp://127.0.0.1:*"
ANY_LOOPBACK = "tcp://localhost:*"
WAIT = 10.0
STOP_WAIT = 10.0  # seconds stop() waits for a clean exit before killing
_names = itertools.count()
#: How cauldron-broker announces a bound socket: "broker    ROUTER tcp://127.0.0.1:40383  (...)"
_ANNOUNCED = re.compile(r"^(broker|publish|subscribe)\s+\w+\s+(\S+)")
_EXITED = object()  # the end of a child's stdout, in its line queue


class NothingReceivedError(AssertionError):
    """Nothing arrived within the time allowed (on a socket, or on a child process's stdout)."""


class NothingSentError(AssertionError):
    """A socket took no message within the time allowed: it has no peer to send to."""


class UnexpectedMessageError(AssertionError):
    """A message arrived, but not the kind the helper waits for."""


def _seconds(timeout: Any, what: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"{what} must be a non-negative number of seconds, not {timeout!r}")
    return float(timeout)


# -- brokers -----------------------------------------------------------------------------

def inproc_addresses(tag: str = "broker") -> dict[str, str]:
    """Fresh inproc addresses, by config key, unique in this process."""
    base = f"inproc://{tag}-{next(_names)}-{uuid.uuid4().hex[:8]}"
    return {"broker": f"{base}-router", "publish": f"{base}-publish", "subscribe": f"{base}-subscribe"}


def _constructor_addresses(transport: str, lookup: str | None) -> tuple[str, str, str, str]:
    """(address, pub_address, sub_address, mon_address) in ZMQBroker's constructor order."""
    if transport == "tcp":
        return ANY_TCP, ANY_TCP, ANY_TCP, lookup or ANY_TCP
    if transport == "inproc":
        a = inproc_addresses()
        return a["broker"], a["subscribe"], a["publish"], lookup or a["subscribe"]
    raise ValueError(f"transport must be 'tcp' or 'inproc', not {transport!r}")


@contextmanager
def broker_thread(transport: str = "tcp", *, name: str = "test-broker", context: zmq.Context | None = None,
                  lookup: str | None = None, timeout: float = 1.0, heartbeat: bool = True,
                  **attributes: Any) -> Iterator[ZMQBroker]:
    """A started ZMQBroker thread on ephemeral tcp ports or fresh inproc addresses; stopped on exit.

    ``broker.endpoints`` holds the real addresses to connect to; inproc peers must use
    ``broker.context`` (the global context unless ``context`` is given). ``attributes`` are
    set on the broker before it starts (e.g. ``max_message_size=1024``); a limit's name sets
    that limit (``max_frames=10``: ``broker.limits``).
    """
    broker = ZMQBroker(name, *_constructor_addresses(transport, lookup), context=context, timeout=timeout,
                       heartbeat=heartbeat)
    for key, value in attributes.items():
        if key in LIMIT_KEYS:
            broker.limits = broker.limits.replace(**{key: value})
        elif key.startswith("_") or not hasattr(broker, key):
            raise TypeError(f"ZMQBroker has no setting {key!r}")
        else:
            setattr(broker, key, value)
    broker.daemon = True
    broker.start()  # raises if the broker cannot bind
    try:
        yield broker
    finally:
        broker.stop(timeout=WAIT)
        if broker.is_alive():
            raise BrokerError(f"broker {name!r} did not stop within {WAIT} s")


def broker_command(*arguments: str, router: str | None = ANY_LOOPBACK, publish: str | None = ANY_LOOPBACK,
                   subscribe: str | None = ANY_LOOPBACK, timeout: float | None = 1.0,
                   program: Sequence[str] | None = None) -> list[str]:
    """The ``cauldron-broker`` argument list: ``program`` (default: this interpreter running
    ``-m cauldron_proto.cli.broker``), the addresses and heartbeat period given (None: the
    option left out), then ``arguments``."""
    if isinstance(program, (str, bytes)) or (program is not None and not program):
        raise TypeError(f"program must be a list of the command's words, not {program!r}")
    argv = [sys.executable, "-m", "cauldron_proto.cli.broker"] if program is None else [str(p) for p in program]
    for option, address in (("--router", router), ("--publish", publish), ("--subscribe", subscribe)):
        if address is not None:
            if not isinstance(address, str):
                raise TypeError(f"{option} takes an address string, not {address!r}")
            argv += [option, address]
    if timeout is not None:
        if not _seconds(timeout) > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        argv += ["--timeout", repr(float(timeout))]
    for argument in arguments:
        if not isinstance(argument, str):
            raise TypeError(f"broker arguments are strings, not {argument!r}")
    return argv + list(arguments)


def broker_process(*arguments: str, router: str | None = ANY_LOOPBACK, publish: str | None = ANY_LOOPBACK,
                   subscribe: str | None = ANY_LOOPBACK, timeout: float | None = 1.0,
                   program: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
                   startup_timeout: float = 30.0) -> "BrokerCommandProcess":
    """``cauldron-broker`` in a child process, once it has announced its endpoints.

    Use it as a context manager (stopped and reaped on exit) or call ``stop()``. Raises
    BrokerError, naming the exit status and the child's stderr, if it exits or says nothing
    within ``startup_timeout`` seconds (the child is stopped first).
    """
    argv = broker_command(*arguments, router=router, publish=publish, subscribe=subscribe, timeout=timeout,
                          program=program)
    return BrokerCommandProcess(argv, timeout=timeout, env=env, startup_timeout=_seconds(startup_timeout))


def config_for(broker: Any, **extra: Any) -> dict[str, str]:
    """A ``[zmq]`` mapping pointing at ``broker`` (a ZMQBroker or a BrokerCommandProcess),
    with its heartbeat period; ``extra`` settings added as text."""
    endpoints = getattr(broker, "endpoints", None)
    if not isinstance(endpoints, dict):
        raise TypeError(f"config_for takes a broker thread or broker process, not {broker!r}")
    missing = [key for key in ("broker", "publish", "subscribe") if key not in endpoints]
    if missing:
        raise ValueError(f"{broker!r} has no {', '.join(missing)} endpoint (not started yet?)")
    config = {key: endpoints[key] for key in ("broker", "publish", "subscribe")}
    if getattr(broker, "timeout", None) is not None:
        config["timeout"] = repr(float(broker.timeout))
    config.update({key: str(value) for key, value in extra.items()})
    return config


# -- child processes -----------------------------------------------------------------------

class ChildProcess:
    """A command run as a child process: its stdout lines as they come, its stderr kept."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None):
        if isinstance(argv, (str, bytes)) or not argv:
            raise TypeError(f"argv must be a non-empty list of the command's words, not {argv!r}")
        self.argv = [str(word) for word in argv]
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      env=None if env is None else {**os.environ, **env})
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        self._stderr: list[str] = []
        self._stderr_lock = threading.Lock()
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True, name=f"stdout of {self.pid}"),
                         threading.Thread(target=self._read_stderr, daemon=True, name=f"stderr of {self.pid}")]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.popen.stdout is not None  # a pipe
        try:
            for line in self.popen.stdout:
                self._lines.put(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us
        finally:
            self._lines.put(_EXITED)

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None  # a pipe
        try:
            for line in self.popen.stderr:
                with self._stderr_lock:
                    self._stderr.append(line)
        except (OSError, ValueError):
            pass

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr_text(self) -> str:
        """What the child has written on stderr so far."""
        with self._stderr_lock:
            return "".join(self._stderr)

    def read_line(self, timeout: float = WAIT) -> str:
        """The child's next stdout line (with its newline); NothingReceivedError if none comes
        within ``timeout`` seconds or the child's stdout ends first."""
        try:
            line = self._lines.get(timeout=_seconds(timeout))
        except queue.Empty:
            raise NothingReceivedError(f"{self._name()}: no output within {timeout} s "
                                       f"(still running; stderr: {self.stderr_text()!r})") from None
        if line is _EXITED:
            self._lines.put(_EXITED)  # it stays at its end for the next call
            try:
                status = self.popen.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                status = None
            self._readers[1].join(STOP_WAIT)
            ended = "closed its stdout" if status is None else f"exited (status {status})"
            raise NothingReceivedError(f"{self._name()}: {ended} with no more output; "
                                       f"stderr: {self.stderr_text()!r}")
        return line

    def _name(self) -> str:
        return os.path.basename(self.argv[0]) if len(self.argv) < 3 or self.argv[1] != "-m" else self.argv[2]

    def freeze(self) -> None:
        """SIGSTOP: the child stops running (its sockets stay open) until ``thaw()``."""
        self.popen.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen child runs again."""
        self.popen.send_signal(signal.SIGCONT)

    def kill(self) -> int:
        """SIGKILL, and wait until it is gone (the system closes its sockets); its exit status."""
        if self.popen.poll() is None:
            self.popen.kill()
        return self.popen.wait(STOP_WAIT)

    def wait(self, timeout: float = WAIT) -> int:
        """Wait for the child to exit by itself: its exit status (negative: the signal that
        ended it); TimeoutError if it is still running after ``timeout`` seconds."""
        try:
            status = self.popen.wait(_seconds(timeout))
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self._name()} (pid {self.pid}) still running after {timeout} s") from None
        for reader in self._readers:
            reader.join(STOP_WAIT)
        return status

    def stop(self, timeout: float = STOP_WAIT) -> int:
        """SIGTERM (SIGCONT first, were it frozen), SIGKILL if still there after ``timeout``
        seconds; reaped, its pipes closed. Returns its exit status; safe to call again."""
        status = terminate(self.popen, _seconds(timeout))
        for reader in self._readers:
            reader.join(STOP_WAIT)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        return status

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} {self._name()} status={self.popen.poll()}>"


class BrokerCommandProcess(ChildProcess):
    """``cauldron-broker`` as a child process (see :func:`broker_process`): ``endpoints`` by
    config key, as it announced them, and ``timeout``, its heartbeat period."""

    def __init__(self, argv: Sequence[str], *, timeout: float | None, env: Mapping[str, str] | None = None,
                 startup_timeout: float = 30.0):
        super().__init__(argv, env=env)
        self.timeout = timeout
        self.endpoints: dict[str, str] = {}
        deadline = time.monotonic() + startup_timeout
        try:
            while len(self.endpoints) < 3:
                match = _ANNOUNCED.match(self.read_line(max(0.0, deadline - time.monotonic())))
                if match:
                    self.endpoints[match[1]] = match[2]
        except NothingReceivedError:
            exited = self.popen.poll() is not None
            status = self.stop()
            why = f"exited (status {status})" if exited else f"announced no endpoints within {startup_timeout} s"
            raise BrokerError(f"cauldron-broker {why}: {' '.join(self.argv)}; "
                              f"stderr: {self.stderr_text().strip()!r}") from None
        except BaseException:
            self.stop()
            raise

# -- raw peers -------------------------------------------------------------------------------

class PeerSockets:
    """Sockets playing clients and dispatchers; ``close()`` closes them all with linger 0."""

    def __init__(self, context: zmq.Context | None = None):
        self.context = context if context is not None else zmq.Context.instance()
        self.sockets: list[zmq.Socket] = []

    def socket(self, kind: int, connect: str | None = None, *, identity: bytes | None = None,
               subscribe: bytes | None = None) -> zmq.Socket:
        """A new socket of ``kind`` (``zmq.DEALER``...), linger 0: its routing ``identity`` and
        SUB topic ``subscribe`` set, connected to ``connect``, when given."""
        sock = self.context.socket(kind)
        self.sockets.append(sock)
        sock.linger = 0
        if identity is not None:
            sock.identity = identity
        if subscribe is not None:
            sock.subscribe(subscribe)
        if connect is not None:
            sock.connect(connect)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets.clear()


@contextmanager
def open_peers(context: zmq.Context | None = None) -> Iterator[PeerSockets]:
    """A :class:`PeerSockets`, every socket of it closed on exit."""
    peers = PeerSockets(context)
    try:
        yield peers
    finally:
        peers.close()


def send(sock: zmq.Socket, message: Message, flags: int = 0, timeout: float = WAIT) -> None:
    """Send ``message``; a DEALER sending a message with no prefix puts the empty delimiter first.

    Waits at most ``timeout`` s for the socket to take it (NothingSentError after that), unless
    ``flags`` has zmq.NOBLOCK.
    """
    if not isinstance(message, Message):
        raise TypeError(f"send takes a Message, not {type(message).__name__}")
    wait = _seconds(timeout)
    if sock.type == zmq.DEALER and not message.prefix:
        message = message.with_prefix(b"")
    frames = encode(message)
    if flags & zmq.NOBLOCK:
        sock.send_multipart(frames, flags)
        return
    deadline = time.monotonic() + wait
    while sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000), zmq.POLLOUT):
        try:
            sock.send_multipart(frames, flags | zmq.NOBLOCK)
            return
        except zmq.Again:  # writable a moment ago, not now (a connection dropped in between)
            if time.monotonic() >= deadline:
                break
    raise NothingSentError(f"{message.direction} {message.command!r} could not be sent within {timeout} s: "
                           f"the socket has no peer to send to")


def receive(sock: zmq.Socket, timeout: float = WAIT) -> Message:
    """The next message on ``sock`` decoded (a DEALER's keeps its routing prefix);
    NothingReceivedError after ``timeout`` s."""
    if not sock.poll(int(_seconds(timeout) * 1000)):
        raise NothingReceivedError(f"nothing arrived within {timeout} s")
    return decode(sock.recv_multipart())


def ask(sock: zmq.Socket, message: Message, timeout: float = WAIT) -> Message:
    """Send ``message`` and return the answer to it (other messages arriving first are skipped)."""
    deadline = time.monotonic() + _seconds(timeout)
    send(sock, message, timeout=timeout)
    while True:
        try:
            answer = receive(sock, max(0.0, deadline - time.monotonic()))
        except NothingReceivedError:
            raise NothingReceivedError(f"no answer to {message.direction} {message.command!r} "
                                       f"within {timeout} s") from None
        if answer.identifier == message.identifier:
            return answer


def _dealer(sock: zmq.Socket, what: str) -> None:
    if sock.type != zmq.DEALER:
        raise TypeError(f"{what} needs a DEALER socket (a dispatcher's), not socket type {int(sock.type)}")


def register_dispatcher(sock: zmq.Socket, service: str, name: str, timeout: float = WAIT) -> None:
    """Play a dispatcher on DEALER ``sock``: welcome (answered ``confirmed``) then ready.

    An inquiry from the same socket follows, so ``ready`` has been handled on return.
    """
    _dealer(sock, "register_dispatcher")
    confirmed = ask(sock, Message.new(Direction.DBQ, service=service, dispatcher=name, command="welcome"), timeout)
    if (confirmed.direction, confirmed.payload) != (Direction.DBP, Text.CONFIRMED):
        raise UnexpectedMessageError(f"welcome of {service}/{name} not confirmed: {confirmed!r}")
    send(sock, Message.new(Direction.DBQ, service=service, dispatcher=name, command="ready"))
    alive = ask(sock, Message.new(Direction.UBQ, command="check"), timeout)
    if alive.payload != Text.BROKER_ALIVE:
        raise UnexpectedMessageError(f"inquiry answered {alive!r}")


def dispatcher_answer(message: Message, name: str | None, payload: Any = "42", *, error: bool = False) -> Message:
    """What dispatcher ``name`` sends back for ``message``: a heartbeat's answer (the time
    now), else the reply, or the error reply, carrying ``payload``; the prefix kept."""
    if not isinstance(message, Message):
        raise TypeError(f"dispatcher_answer takes a Message, not {type(message).__name__}")
    if kinds.is_heartbeat(message):
        return kinds.heartbeat_answer(message, time.time())
    return message.error(payload, dispatcher=name) if error else message.reply(payload, dispatcher=name)


def answer_heartbeat(sock: zmq.Socket, timeout: float = WAIT) -> Message:
    """Take the next message on DEALER ``sock``, a heartbeat, and answer it; returns the heartbeat."""
    _dealer(sock, "answer_heartbeat")
    beat = receive(sock, timeout)
    if not kinds.is_heartbeat(beat):
        raise UnexpectedMessageError(f"expected a heartbeat, got {beat!r}")
    send(sock, kinds.heartbeat_answer(beat, time.time()))
    return beat


def answer_request(sock: zmq.Socket, name: str, payload: Any, *, error: bool = False,
                   timeout: float = WAIT) -> Message:
    """Play dispatcher ``name``: take the next forwarded request on DEALER ``sock`` and answer
    it with ``payload`` (the error reply with ``error``); returns the request."""
    _dealer(sock, "answer_request")
    request = receive(sock, timeout)
    if kinds.is_heartbeat(request):
        raise UnexpectedMessageError(f"expected a request, got a heartbeat {request!r} (answer_heartbeat it)")
    send(sock, dispatcher_answer(request, name, payload, error=error))
    return request


def zmtp_connection(address: str, socket_type: bytes, rcvbuf: int | None = None) -> socket.socket:
    """A TCP connection to ``address`` (``tcp://host:port``) that has done ZMTP 3.0's NULL
    handshake as a ``socket_type`` peer; ``rcvbuf``: its kernel receive buffer, in bytes."""
    host, port = address.rsplit("//", 1)[1].rsplit(":", 1)
    sock = socket.socket()
    sock.settimeout(WAIT)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect((host, int(port)))
        sock.sendall(b"\xff" + bytes(8) + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\0") + bytes(32))
        greeting = b""
        while len(greeting) < 64:
            part = sock.recv(64 - len(greeting))
            if not part:
                raise ConnectionError(f"{address} closed the connection during the ZMTP greeting")
            greeting += part
        body = b"\x05READY\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
        sock.sendall(b"\x04" + bytes([len(body)]) + body)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def zmtp_frame(data: bytes, more: bool = False) -> bytes:
    """The bytes of one ZMTP 3 message frame holding ``data`` (``more``: another frame follows)."""
    if len(data) < 256:
        return bytes([int(more), len(data)]) + data
    return bytes([2 | int(more)]) + struct.pack(">Q", len(data)) + data


def send_until_closed(conn: socket.socket, chunk: bytes, most: int) -> int:
    """Send ``chunk`` on the raw connection ``conn`` over and over until the broker closes it
    (or takes nothing for :data:`WAIT` s) or ``most`` bytes went; close ``conn``; the bytes sent."""
    sent = 0
    conn.settimeout(WAIT)
    try:
        while sent < most:
            conn.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the broker shut the connection down
    finally:
        conn.close()
    return sent
