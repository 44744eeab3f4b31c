"""A keyword a dispatcher owns: its KTL type, units, current value and user callbacks."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from ..ktl import check_type, enumerators as _enumerators, from_ascii, to_ascii
from .core.steps import Steps, run

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Keyword", "KeywordTable", "Validator", "Reader"]

#: ``validate(keyword, value)``: return None to accept a client's write of ``value`` (the
#: Python value for the keyword's type), return another value to store that instead, or
#: raise an exception to refuse the write (its text is the reason sent to the client).
#: With :class:`cauldron_proto.aio.Dispatcher` it may be a coroutine function.
Validator = Callable[["Keyword", Any], Any]
#: ``on_read(keyword)``: the keyword's current value, computed when a client reads it
#: (a coroutine function too, with :class:`cauldron_proto.aio.Dispatcher`).
Reader = Callable[["Keyword"], Any]


class Keyword:
    """One keyword of a dispatcher :class:`~cauldron_proto.dispatcher.Service`.

    The value is kept as KTL ascii text as it travels (:attr:`ascii`; None while the keyword
    has no value, answered as blank); :attr:`value` is its Python value. An enumerated
    keyword has ``enumerators`` (integer -> name): its value travels as the integer text and
    its ``units`` answer is the map of them, as existing Cauldron peers expect. :meth:`set`
    changes the value and broadcasts it when it changed. Made by ``Service.add_keyword``;
    safe to use from any thread.
    """

    def __init__(self, service: "Service", name: str, type: str = "basic", value: Any = None,
                 units: Optional[str] = None, validate: Optional[Validator] = None,
                 on_read: Optional[Reader] = None, enumerators: Any = None):
        self.service = service
        self.name = name.upper()
        self.type = check_type(type)
        self.enumerators = _enumerators(enumerators)
        if self.type == "enumerated" and not self.enumerators:
            raise ValueError(f"enumerated keyword {self.name} needs enumerators (names, or integer -> name)")
        self.units = units
        self.validate = validate
        self.on_read = on_read
        self._lock = threading.Lock()
        self._ascii: Optional[str] = None if value is None else to_ascii(value, self.type, self.enumerators)

    def __repr__(self) -> str:
        return f"<Keyword {self.service.name}.{self.name} {self.type} = {self._ascii!r}>"

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

    def set(self, value: Any, force: bool = False) -> str:
        """Set the value (checked against the type); broadcast it if it changed or ``force``.

        Returns the ascii text stored. Raises ``KTLValueError`` for a value of the wrong type.
        """
        text = to_ascii(value, self.type, self.enumerators)
        with self._lock:
            changed = text != self._ascii
            self._ascii = text
            if changed or force:
                self.service._broadcast(self, text)
        return text

    def read(self) -> Optional[str]:
        """The current ascii value (None: no value), refreshed by ``on_read`` if it has one."""
        return run(self.reading())

    def write(self, text: Optional[str]) -> str:
        """A client's write of ascii ``text``: parse, validate, store; the stored ascii value.

        Raises ``KTLValueError`` for text of the wrong type, and whatever ``validate`` raises.
        """
        return run(self.writing(text))

    def reading(self) -> Steps[Optional[str]]:
        """:meth:`read` as steps (see :mod:`.steps`): ``on_read`` is yielded to be called."""
        if self.on_read is None:
            return self._ascii
        return self.set((yield functools.partial(self.on_read, self)))

    def writing(self, text: Optional[str]) -> Steps[str]:
        """:meth:`write` as steps: ``validate`` is yielded to be called."""
        value = from_ascii("" if text is None else text, self.type, self.enumerators)
        if self.validate is not None:
            replacement = yield functools.partial(self.validate, self, value)
            if replacement is not None:
                value = replacement
        return self.set(value)


class KeywordTable:
    """The keywords a dispatcher owns, by upper-cased name: the mapping side of the threaded
    ``dispatcher.Service`` and of ``aio.Dispatcher`` (which set ``name`` and ``_keywords``)."""

    name: str
    _keywords: dict[str, Keyword]

    def add_keyword(self, name: str, type: str = "basic", value: Any = None, units: Optional[str] = None,
                    *, validate: Optional[Validator] = None, on_read: Optional[Reader] = None,
                    enumerators: Any = None) -> Keyword:
        """Add (or replace) keyword ``name`` with a KTL ``type``, initial ``value`` and ``units``.

        An ``enumerated`` keyword needs ``enumerators``: a list of names (the index is the
        integer) or a mapping of integers to names; its value is written as a name or an integer.

        ``validate(keyword, value)`` checks clients' writes (see :data:`Validator`);
        ``on_read(keyword)`` computes the value when a client reads it. The threaded service
        runs both in its worker pool, ``aio.Dispatcher`` awaits them when they are
        coroutine functions; either way they may be slow without delaying heartbeats.
        """
        keyword = Keyword(self, name, type, value, units, validate, on_read, enumerators)
        self._keywords[keyword.name] = keyword
        return keyword

    def __getitem__(self, name: str) -> Keyword:
        try:
            return self._keywords[name.upper()]
        except KeyError:
            raise KeyError(f"service {self.name} has no keyword {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._keywords

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keywords))

    def __len__(self) -> int:
        return len(self._keywords)

    def keywords(self) -> list[str]:
        """The names of this dispatcher's keywords, in the order they were added."""
        return list(self._keywords)
