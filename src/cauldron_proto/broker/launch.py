"""Starting brokers: from a configuration, in a thread, in a process or in the foreground.

The functions here are ZMQBroker's classmethods (``check``, ``from_config``, ``serve``,
``setup``, ``sub``, ``thread``, ``daemon``: a child process, see :mod:`.process`); each takes the
broker class first. Whatever ``sub()`` chooses, the handle it returns has ``running``,
``wait_running(timeout)``, ``endpoints``, ``is_alive()``, ``join()`` and ``stop(timeout)``.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import signal
import socket
import sys
import threading
import types

import zmq

from .. import config as _config
from . import process
from .process import BrokerProcess
from .sockets import BrokerError, is_wildcard
from ..config import ConfigError, bind_address, get_bool, get_float, get_int, invalid, read_configuration
from .core.limits import LIMIT_KEYS, Limits
from ..security import broker_curve, peer_curve
from ..peer import inquire

log = logging.getLogger("cauldron_proto.broker")

__all__ = ["BrokerProcess", "DaemonFlagOrLauncher", "check", "configured", "daemon", "default_configuration",
           "from_config", "serve", "serve_until_signalled", "setup", "sub", "thread"]

STARTUP_TIMEOUT = 30.0  # seconds a new broker (a spawned process on a busy machine) may take to bind
_ADDRESS_KEYS = ("broker", "publish", "subscribe")


def default_configuration(cls):
    """What ``config=None`` means in the classmethods: the active configuration of the
    existing Cauldron package when it is loaded (``Cauldron.config.cauldron_configuration``,
    which the existing broker reads then, so a drop-in replacement inside Cauldron finds the
    addresses its tests configure), else None: the spec's defaults."""
    existing = getattr(sys.modules.get("Cauldron.config"), "cauldron_configuration", None)
    return existing if isinstance(existing, configparser.RawConfigParser) else None


def configured(cls, config) -> configparser.ConfigParser:
    """``config`` read (``cls.default_configuration()`` when it is None), defaults filled in."""
    return read_configuration(cls.default_configuration() if config is None else config)


def from_config(cls, config, name="ConfiguredBroker"):
    """A broker (not started) from a configuration: an INI path, a ConfigParser or None.

    Binds follow the configuration rules (``bind_address``: a literal IP binds that interface,
    ``*`` every one, a host name what it resolves to); ``lookup`` answers the ``subscribe``
    address as written; ``timeout``, ``heartbeat`` and the limits (``max_*``) apply.
    """
    cfg = configured(cls, config)
    connect = {key: _config.address(cfg, key) for key in _ADDRESS_KEYS}
    bind = {key: _bind(cfg, key) for key in _ADDRESS_KEYS}
    broker = cls(name, bind["broker"], bind["subscribe"], bind["publish"], connect["subscribe"],
                 timeout=get_float(cfg, "timeout"), heartbeat=get_bool(cfg, "heartbeat"))
    values = {key: get_int(cfg, key) for key in LIMIT_KEYS}
    for key, value in values.items():
        if value < 1:
            raise invalid(cfg, key, "not a positive whole number (a limit)")
    broker.limits = Limits(**values)
    broker.security = broker_curve(cfg)  # CURVE (curve_secret_key, curve_authorized), or None
    broker.configured_as(connect)
    return broker


def _bind(cfg, key: str) -> str:
    try:
        return bind_address(_config.address(cfg, key))
    except ConfigError as exc:
        raise invalid(cfg, key, str(exc)) from None


def check(cls, config=None, timeout=2.0, ctx=None, address=None):
    """True if a broker answers an inquiry at ``address`` (default: the configured ``broker``).

    Waits at most ``timeout`` seconds; the REQ socket is closed with linger 0 whatever happens.
    An address no broker can be at (a host that does not resolve, a port out of range) is a
    ConfigError at once. With ``curve_server_key`` (and ``curve_key``) configured, the inquiry goes over CURVE. A
    broker that refuses the connection in its handshake (a CURVE key it does not authorize,
    CURVE on one side only) is False at once, with a warning on the
    ``cauldron_proto.broker`` logger saying why.
    """
    cfg = configured(cls, config)
    if address is None:
        address = _config.address(cfg, "broker")
    if is_wildcard(address):
        return False  # no broker can be reached at a port left unspecified
    problem = _config.unusable(address)
    if problem is not None:
        raise ConfigError(f"cannot connect to a broker at {problem}")
    try:
        return inquire(ctx if ctx is not None else zmq.Context.instance(), address, peer_curve(cfg), timeout, log)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot connect to a broker at {address!r}: {zmq.strerror(exc.errno)}") from None


@contextlib.contextmanager
def _stop_on_signals(broker):
    """While inside, SIGINT and SIGTERM stop ``broker`` (main thread only; elsewhere a no-op).

    Yields the read end of a ``signal.set_wakeup_fd`` socket pair for the broker to poll, so a
    signal arriving just before the poll blocks still wakes it (None outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = {signum: signal.signal(signum, lambda _signum, _frame: broker.stop())
                for signum in (signal.SIGINT, signal.SIGTERM)}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield reader
    finally:
        signal.set_wakeup_fd(old_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reader.close()
        writer.close()


def serve_until_signalled(broker, ready=None):
    """Bind, call ``ready(broker)``, then serve in the calling thread until SIGINT/SIGTERM or ``stop()``."""
    with _stop_on_signals(broker) as wakeup:
        broker.prepare()
        if wakeup is not None:
            broker.wake_on(wakeup)
        if ready is not None:
            ready(broker)
        broker.run()
    return broker


def serve(cls, config=None, name="ServerBroker"):
    """Run a configured broker in the current thread until stopped (SIGINT or SIGTERM)."""
    return serve_until_signalled(cls.from_config(config, name))


def daemon(cls, config=None, daemon=True):
    """Start a configured broker in a child process; returns a :class:`BrokerProcess` at once.

    ``daemon``: the child is stopped when this process exits (else it outlives it). Raises
    ValueError, as the existing method does, for an ``inproc://`` address (no other process
    can reach it).
    """
    return process.start(cls, configured(cls, config), daemon)


def thread(cls, config=None, daemon=True):
    """Start a configured broker thread; returns it once its sockets are bound."""
    broker = cls.from_config(config)
    broker.daemon = daemon
    broker.start()
    return broker


def sub(cls, config=None, daemon=True):
    """A thread (in the global context) if any address is ``inproc://``, else a process."""
    cfg = configured(cls, config)
    if any(_config.address(cfg, key).startswith("inproc://") for key in _ADDRESS_KEYS):
        return cls.thread(cfg, daemon=daemon)
    return cls.daemon(cfg, daemon=daemon)


def setup(cls, config=None, timeout=2.0, daemon=True):
    """None if a broker already answers; else start one with ``sub()`` and wait until it answers.

    The handle returned (a thread or a :class:`BrokerProcess`) can be ``stop()``-ped.
    """
    if cls.check(config, timeout=timeout):
        return None
    handle = cls.sub(config, daemon=daemon)
    try:
        handle.wait_running(timeout=max(timeout, STARTUP_TIMEOUT))
        where = handle.endpoints["broker"]
        if not cls.check(config, timeout=max(timeout, STARTUP_TIMEOUT), address=where):
            raise BrokerError(f"a broker was started at {where} but does not answer")
    except BaseException:
        handle.stop()
        raise
    return handle


class DaemonFlagOrLauncher:
    """``ZMQBroker.daemon(config, daemon)`` on the class starts a broker process (seed API);
    ``broker.daemon`` on an instance is the Thread's daemon flag, so threading keeps working."""

    def __get__(self, obj, owner=None):
        if obj is None:
            return types.MethodType(daemon, owner)
        return threading.Thread.daemon.__get__(obj)

    def __set__(self, obj, value) -> None:
        threading.Thread.daemon.__set__(obj, value)  # type: ignore[attr-defined]  # a property (typeshed: a bool)
