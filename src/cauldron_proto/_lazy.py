"""Names a package loads on first use (PEP 562), so importing it loads no more than it must."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_exports(package: str, names: dict[str, tuple[str, str | None]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps a name to (module relative to
    the package, attribute, or None for the module itself); the first use imports it."""
    def __getattr__(name: str) -> Any:
        try:
            module, attribute = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = import_module(module, package)
        value = value if attribute is None else getattr(value, attribute)
        setattr(import_module(package), name, value)
        return value

    return __getattr__
