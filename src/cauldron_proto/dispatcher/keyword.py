"""A keyword a dispatcher owns, as its user holds it, and the keyword mapping of a dispatcher.

:class:`Keyword` is the core's :class:`~.core.keywords.KeywordState` with a handle on the
dispatcher that serves it (the threaded :class:`~cauldron_proto.dispatcher.Service` or
:class:`cauldron_proto.aio.Dispatcher`), which stores a new value and sends the broadcast
the core returns: :meth:`Keyword.set` broadcasts at once. :class:`KeywordOwner` is the
mapping side both dispatchers share (``add_keyword``, ``svc["NAME"]``, ``in``, ``len``).
Neither does I/O itself, nor holds a lock.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from .core.keywords import KeywordState, KeywordTable, Reader, Validator
from .core.steps import run

__all__ = ["Keyword", "KeywordOwner", "Validator", "Reader"]


class Keyword(KeywordState):
    """One keyword of a dispatcher :class:`~cauldron_proto.dispatcher.Service` (or
    :class:`cauldron_proto.aio.Dispatcher`).

    The value is kept as KTL ascii text as it travels (:attr:`ascii`; None while the keyword
    has no value, answered as blank); :attr:`value` is its Python value. :meth:`set`
    changes the value and broadcasts it when it changed. Made by ``add_keyword``; with the
    threaded service, safe to use from any thread.
    """

    def __init__(self, service: "KeywordOwner", name: str, type: str = "basic", value: Any = None,
                 units: Optional[str] = None, validate: Optional[Validator] = None,
                 on_read: Optional[Reader] = None, enumerators: Any = None):
        super().__init__(name, type, value, units, validate, on_read, enumerators)
        self.service = service

    def __repr__(self) -> str:
        return f"<Keyword {self.service.name}.{self.name} {self.type} = {self.ascii!r}>"

    def set(self, value: Any, force: bool = False) -> str:
        """Set the value (checked against the type); broadcast it if it changed or ``force``.

        Returns the ascii text stored. Raises ``KTLValueError`` for a value of the wrong type.
        """
        return self.service._store(self, value, force)

    def read(self) -> Optional[str]:
        """The current ascii value (None: no value), refreshed by ``on_read`` if it has one."""
        return self.ascii if self.on_read is None else self.set(run(self.reading()))

    def write(self, text: Optional[str]) -> str:
        """A client's write of ascii ``text``: parse, validate, store; the stored ascii value.

        Raises ``KTLValueError`` for text of the wrong type, and whatever ``validate`` raises.
        """
        return self.set(run(self.writing(text)))


class KeywordOwner:
    """The keywords a dispatcher owns, by upper-cased name: the mapping side of the threaded
    ``dispatcher.Service`` and of ``aio.Dispatcher``, over their core :class:`KeywordTable`
    (``table``). Each stores values with ``_store(keyword, value, force)``: the text stored."""

    name: str
    table: KeywordTable

    def _store(self, keyword: KeywordState, value: Any, force: bool = False) -> str:
        raise NotImplementedError

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
        self.table.add(keyword)
        return keyword

    def __getitem__(self, name: str) -> Keyword:
        keyword = self.table.get(name)
        if keyword is None:
            raise KeyError(f"service {self.name} has no keyword {name!r}")
        return keyword  # type: ignore[return-value]  # add_keyword adds only Keywords

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.table.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)

    def keywords(self) -> list[str]:
        """The names of this dispatcher's keywords, in the order they were added."""
        return list(self.table)
