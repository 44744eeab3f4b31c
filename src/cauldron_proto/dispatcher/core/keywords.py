"""A dispatcher's keywords without I/O: their values, and what a change of value broadcasts.

Theory of operation
-------------------
A :class:`KeywordState` is one keyword: its KTL type, units, enumerators, the user's
``validate`` and ``on_read`` callbacks, and its value, kept as KTL ascii text as it travels
(``ascii``; None while it has none). A :class:`KeywordTable` holds the keywords of one
dispatcher by upper-cased name, with the names that go on the wire.

Every change of value goes through :meth:`KeywordTable.store`, which checks the value
against the type, stores its text and returns a :class:`Change`: the text stored and the
broadcast (``CDB broadcast``) to send, or None when the value did not change and no
broadcast was forced. Nothing here sends, locks or reads a clock: the layer that does I/O
sends the broadcast, and a threaded layer stores and sends under one lock of its own, so
broadcasts leave in the order the values were stored.

A client's write is :meth:`KeywordState.writing`, *steps* (see :mod:`.steps`): the text is
parsed, ``validate`` is yielded to be called (or awaited), and the value to store is
returned; the layer then stores it.
"""

from __future__ import annotations

import functools
import itertools
import os
import platform
from typing import Any, Callable, Iterator, NamedTuple, Optional

from ...ktl import check_type, enumerators as _enumerators, from_ascii, to_ascii
from ...protocol import Message, kinds
from .steps import Steps

__all__ = ["KeywordState", "KeywordTable", "Change", "Validator", "Reader", "default_dispatcher_name"]

#: ``validate(keyword, value)``: return None to accept a client's write of ``value`` (the
#: Python value for the keyword's type), return another value to store that instead, or
#: raise an exception to refuse the write (its text is the reason sent to the client).
#: With :class:`cauldron_proto.aio.Dispatcher` it may be a coroutine function.
Validator = Callable[[Any, Any], Any]
#: ``on_read(keyword)``: the keyword's current value, computed when a client reads it
#: (a coroutine function too, with :class:`cauldron_proto.aio.Dispatcher`).
Reader = Callable[[Any], Any]

_names = itertools.count(1)


def default_dispatcher_name(service: str) -> str:
    """A dispatcher name unique to this process: ``SERVICE-host-pid`` (then ``-2``, ...)."""
    n = next(_names)
    base = f"{service}-{platform.node()}-{os.getpid()}"
    return base if n == 1 else f"{base}-{n}"


class Change(NamedTuple):
    """What storing a value did: the ascii ``text`` stored, and the ``broadcast`` to send
    (None: the value did not change, and no broadcast was forced)."""

    text: str
    broadcast: Optional[Message]


class KeywordState:
    """One keyword of a dispatcher: its KTL type, units, enumerators, callbacks and value.

    An enumerated keyword has ``enumerators`` (integer -> name): its value travels as the
    integer text and its ``units`` answer is the map of them, as existing Cauldron peers
    expect. The value changes only through :meth:`KeywordTable.store`.
    """

    def __init__(self, name: str, type: str = "basic", value: Any = None, units: Optional[str] = None,
                 validate: Optional[Validator] = None, on_read: Optional[Reader] = None, enumerators: Any = None):
        self.name = name.upper()
        self.type = check_type(type)
        self.enumerators = _enumerators(enumerators)
        if self.type == "enumerated" and not self.enumerators:
            raise ValueError(f"enumerated keyword {self.name} needs enumerators (names, or integer -> name)")
        self.units = units
        self.validate = validate
        self.on_read = on_read
        self._ascii: Optional[str] = None if value is None else self.text_of(value)

    @property
    def ascii(self) -> Optional[str]:
        """The current value as KTL ascii text (None: no value)."""
        return self._ascii

    @property
    def value(self) -> Any:
        """The current value as a Python value for the keyword's type (None: no value)."""
        return from_ascii(self._ascii, self.type, self.enumerators)

    @property
    def units_answer(self) -> Any:
        """What ``units`` answers (as JSON): the enumerators of an enumerated keyword
        (integer text -> name), else the units text or None."""
        if self.type == "enumerated":
            return {str(number): name for number, name in sorted(self.enumerators.items())}
        return self.units

    def text_of(self, value: Any) -> str:
        """The ascii text of ``value``; ``KTLValueError`` for a value of the wrong type."""
        return to_ascii(value, self.type, self.enumerators)

    def writing(self, text: Optional[str]) -> Steps[Any]:
        """A client's write of ascii ``text`` as steps: parse it (``KTLValueError`` for text of
        the wrong type), yield ``validate`` to be called; the value to store."""
        value = from_ascii("" if text is None else text, self.type, self.enumerators)
        if self.validate is not None:
            replacement = yield functools.partial(self.validate, self, value)
            if replacement is not None:
                value = replacement
        return value

    def reading(self) -> Steps[Any]:
        """A read as steps: yield ``on_read`` to be called; the value it gave (to store).
        Only for a keyword with ``on_read``."""
        assert self.on_read is not None, "reading() is only for a keyword with on_read"
        return (yield functools.partial(self.on_read, self))


class KeywordTable:
    """The keywords of dispatcher ``dispatcher`` of service ``service``, by upper-cased name.

    ``wire_name`` is the service name as it goes on the wire: lower case, as existing
    Cauldron peers send it and as existing clients subscribe to it.
    """

    def __init__(self, service: str, dispatcher: str):
        self.service, self.wire_name, self.dispatcher = service, service.lower(), dispatcher
        self.keywords: dict[str, KeywordState] = {}

    def add(self, keyword: KeywordState) -> KeywordState:
        """Add ``keyword`` (replacing one of the same name)."""
        self.keywords[keyword.name] = keyword
        return keyword

    def get(self, name: Optional[str]) -> Optional[KeywordState]:
        """The keyword ``name`` (any case), or None."""
        return self.keywords.get(name.upper()) if name else None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.keywords))

    def __len__(self) -> int:
        return len(self.keywords)

    def store(self, keyword: KeywordState, value: Any, force: bool = False) -> Change:
        """Store ``value`` (checked against the type: ``KTLValueError``); what to broadcast."""
        text = keyword.text_of(value)
        changed = text != keyword._ascii
        keyword._ascii = text
        return Change(text, self.broadcast(keyword, text) if changed or force else None)

    def announcements(self) -> list[Message]:
        """The broadcast of every keyword's value (keywords without one: none), as a dispatcher
        sends them each time it registers: a monitor then has the values of a dispatcher that
        restarted (or of a broker that did) without waiting for a change."""
        return [self.broadcast(k, k.ascii) for k in list(self.keywords.values()) if k.ascii is not None]

    def broadcast(self, keyword: KeywordState, text: str) -> Message:
        """The broadcast of ``keyword``'s value ``text``."""
        return kinds.broadcast(self.wire_name, self.dispatcher, keyword.name, text)
