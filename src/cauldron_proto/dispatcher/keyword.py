"""A keyword a dispatcher owns: its KTL type, units, current value and user callbacks."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..ktl import check_type, enumerators as _enumerators, from_ascii, to_ascii

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Keyword", "Validator", "Reader"]

#: ``validate(keyword, value)``: return None to accept a client's write of ``value`` (the
#: Python value for the keyword's type), return another value to store that instead, or
#: raise an exception to refuse the write (its text is the reason sent to the client).
Validator = Callable[["Keyword", Any], Any]
#: ``on_read(keyword)``: the keyword's current value, computed when a client reads it.
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
        if self.on_read is not None:
            return self.set(self.on_read(self))
        return self._ascii

    def write(self, text: Optional[str]) -> str:
        """A client's write of ascii ``text``: parse, validate, store; the stored ascii value.

        Raises ``KTLValueError`` for text of the wrong type, and whatever ``validate`` raises.
        """
        value = from_ascii("" if text is None else text, self.type, self.enumerators)
        if self.validate is not None:
            replacement = self.validate(self, value)
            if replacement is not None:
                value = replacement
        return self.set(value)
