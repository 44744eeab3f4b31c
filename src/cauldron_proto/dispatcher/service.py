"""The dispatcher :class:`Service`: keywords of one service, served through a broker."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping, Optional

import zmq

from ..protocol import DISPATCHER_LIVENESS, Message, encode
from ..config import ConfigLike
from ..peer import HelperSettings, WorkerPool, term_owned_context
from .core.handlers import answering, finish
from .core.keywords import KeywordState, KeywordTable, default_dispatcher_name
from .core.steps import run
from .keyword import KeywordOwner
from .io_thread import PUBLISH, SEND, DispatcherIO

__all__ = ["Service", "default_dispatcher_name"]

class Service(KeywordOwner):
    """A dispatcher: owns keywords of service ``name`` and answers for them via the broker.

    ``config`` is a path, a ConfigParser, a mapping of `[zmq]` keys or None (the defaults);
    ``broker=``, ``publish=``, ``timeout=`` (the broker's heartbeat period), ``heartbeat=``,
    ``pool=``, ``curve_key=`` and ``curve_server_key=`` (files: this dispatcher's CURVE secret
    key, the broker's public key) override single keys. ``dispatcher`` is this dispatcher's
    name (default :func:`default_dispatcher_name`). ``setup(service)``, if given, is called before
    serving starts, to add keywords. With ``start=True`` (the default) the constructor
    calls :meth:`begin`. ``liveness``: heartbeat periods of silence from the broker after
    which the dispatcher reconnects and registers again (default
    :data:`~cauldron_proto.protocol.DISPATCHER_LIVENESS`).

    Use as a context manager, or call :meth:`shutdown`. The keywords and their values are
    the core's :class:`~.core.keywords.KeywordTable` (``table``); a change of value is stored
    and its broadcast posted under one lock, so broadcasts leave in the order of the values.
    """

    def __init__(self, name: str, config: "ConfigLike | Mapping[str, Any]" = None,
                 dispatcher: Optional[str] = None, *, setup: Optional[Callable[["Service"], Any]] = None,
                 start: bool = True, context: Optional[zmq.Context] = None, liveness: float = DISPATCHER_LIVENESS,
                 broker: Optional[str] = None, publish: Optional[str] = None,
                 timeout: Optional[float] = None, heartbeat: Optional[bool] = None,
                 pool: Optional[int] = None, curve_key: Optional[str] = None,
                 curve_server_key: Optional[str] = None):
        self.name = name
        self.dispatcher = dispatcher or default_dispatcher_name(name)
        self.table = KeywordTable(name, self.dispatcher)
        #: the service name as it goes on the wire: lower case, as existing Cauldron peers send
        #: it and as existing clients subscribe to it (requests in any case are answered)
        self.wire_name = self.table.wire_name
        self.settings = HelperSettings.load(config, broker=broker, publish=publish, timeout=timeout,
                                      heartbeat=None if heartbeat is None else ("yes" if heartbeat else "no"),
                                      pool=pool, curve_key=curve_key, curve_server_key=curve_server_key)
        self.liveness = liveness
        self.log = logging.getLogger(f"cauldron_proto.dispatcher.{name}")
        #: Set while registered with a broker (cleared while registering again).
        self.registered = threading.Event()
        self._changing = threading.Lock()  # held while a value is stored and its broadcast posted
        self._context, self._own_context = context, context is None
        self._io: Optional[DispatcherIO] = None
        self._pool: Optional[WorkerPool] = None
        self._closed = False
        if setup is not None:
            setup(self)
        if start:
            self.begin()

    def __repr__(self) -> str:
        return f"<dispatcher.Service {self.name} ({self.dispatcher}) {len(self.table)} keywords>"


    # Lifecycle -------------------------------------------------------------------------
    def begin(self) -> None:
        """Start serving: the I/O thread, the worker pool, registration with the broker."""
        if self._io is not None:
            return
        if self._closed:
            raise RuntimeError(f"{self!r} was shut down")
        if self._context is None:
            self._context = zmq.Context()
        self._pool = WorkerPool(self.settings.pool, f"cauldron-dispatcher-{self.dispatcher}-worker", self.log)
        self._io = DispatcherIO(self, self._context, self.log)
        self._io.start_and_wait()

    def wait_registered(self, timeout: Optional[float] = None) -> bool:
        """Wait until registered with a broker; False if ``timeout`` passed first."""
        return self.registered.wait(timeout)

    @property
    def registrations(self) -> int:
        """How many times this dispatcher registered (more than 1 after a broker restart)."""
        return self._io.registration.registrations if self._io is not None else 0

    def shutdown(self) -> None:
        """Stop serving: close every socket, stop the workers; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.registered.clear()
        if self._io is not None:
            self._io.stop()
        if self._pool is not None:
            self._pool.shutdown(timeout=0.5)
        if self._own_context and self._context is not None:
            term_owned_context(self._context, self._io, self.log, self.dispatcher)

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    # Called by keywords, workers and the I/O thread ------------------------------------
    def _store(self, keyword: KeywordState, value: Any, force: bool = False) -> str:
        with self._changing:
            change = self.table.store(keyword, value, force)
            self._publish(change.broadcast)
        return change.text

    def _announce(self) -> None:
        """Registered (again): every keyword's value broadcast, for monitors that had them from
        an earlier dispatcher or broker (called by the I/O thread)."""
        with self._changing:
            for broadcast in self.table.announcements():
                self._publish(broadcast)

    def _publish(self, broadcast: Optional[Message]) -> None:
        if broadcast is not None and self._io is not None:
            self._io.post((PUBLISH, 0, encode(broadcast)))

    def _submit(self, request: Message, generation: int) -> None:
        assert self._pool is not None, "requests arrive once begun"
        self._pool.submit(self._answer, request, generation)

    def _answer(self, request: Message, generation: int) -> None:
        outcome = run(answering(request, self.table, time.time()))
        with self._changing:
            reply, broadcast = finish(outcome, self.table)
            self._publish(broadcast)
        assert self._io is not None, "requests arrive once begun"
        self._io.post((SEND, generation, encode(reply)))
