"""Who may serve what under CURVE: the ``curve_dispatchers`` policy file.

Theory of operation
-------------------
With CURVE on, every connection to the broker is authenticated as a key, named after its
public key file's stem in ``curve_authorized`` (the ZAP User-Id). A policy names, per key,
the services whose dispatchers that key may register; a key it does not name is a client
only. The file is plain text, one key per line::

    # key name: services (names or globs, any case), separated by spaces or commas
    disp:   SECURE*
    ktest1: KTEST, KTEST2

:class:`ServePolicy` is the parsed rules, pure data: ``allows(key, service)``.
:class:`PolicyFile` is the file, read again when it changes (mtime, size or inode);
``current()`` gives the rules in force. A file that cannot be read or parsed at start is a
:class:`~cauldron_proto.config.ConfigError` naming the file and line; later, the rules in force
are kept and the error is logged once per version of the file (a broker never stops, nor
opens up, because someone saved a half-edited policy).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
from typing import Mapping, Optional, Sequence

from ..config import ConfigError

__all__ = ["PolicyError", "PolicyFile", "ServePolicy"]

_log = logging.getLogger("cauldron_proto.policy")
_NAME = re.compile(r"^[^\s:,#]+$")
_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")
_SEPARATOR = re.compile(r"[\s,]+")


class PolicyError(ConfigError):
    """A policy file that cannot be used; names the file and the line."""


class ServePolicy:
    """Which key names may register dispatchers of which services (names or globs, any case)."""

    __slots__ = ("rules", "source", "_compiled")

    def __init__(self, rules: Mapping[str, Sequence[str]], source: str = "policy"):
        self.rules = {key: tuple(p.upper() for p in patterns) for key, patterns in rules.items()}
        self.source = source
        self._compiled = {key: re.compile("|".join(fnmatch.translate(p) for p in patterns))
                          for key, patterns in self.rules.items() if patterns}

    @classmethod
    def parse(cls, text: str, source: str = "policy") -> "ServePolicy":
        """Rules from the text of a policy file; :class:`PolicyError` names the first bad line."""
        rules: dict[str, list[str]] = {}
        first_line: dict[str, int] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{source}, line {number}"
            key, colon, rest = line.partition(":")
            key = key.strip()
            if not colon:
                raise PolicyError(f"{where}: expected 'KEY: SERVICE ...', got {raw.strip()!r} (no ':')")
            if not _NAME.match(key):
                raise PolicyError(f"{where}: {key!r} is not a key name (a key file's stem, with no spaces, "
                                  f"commas or ':')")
            if key in first_line:
                raise PolicyError(f"{where}: key {key!r} is named again (first on line {first_line[key]})")
            patterns = [p for p in _SEPARATOR.split(rest.strip()) if p]
            if not patterns:
                raise PolicyError(f"{where}: key {key!r} names no service (leave a client-only key out)")
            for pattern in patterns:
                if not _PATTERN.match(pattern):
                    raise PolicyError(f"{where}: {pattern!r} is not a service name or glob "
                                      f"(letters, digits, _ . - and the glob characters * ? [ ] !)")
            first_line[key] = number
            rules[key] = patterns
        return cls(rules, source)

    def allows(self, key: Optional[str], service: str) -> bool:
        """Whether ``key`` may register dispatchers of ``service`` (matched upper-cased)."""
        pattern = self._compiled.get(key)  # type: ignore[arg-type]
        return pattern is not None and pattern.match(service.upper()) is not None

    def __repr__(self) -> str:
        return f"<ServePolicy {self.source}: {self.rules}>"


class PolicyFile:
    """The policy in a file, read again when it changes (its mtime, size or inode).

    ``current()`` looks at the file once per call (one ``stat``); the broker asks once per
    registration, and its broadcast relay at most every ``relay_interval`` seconds.
    """

    relay_interval = 0.25

    def __init__(self, path: "str | os.PathLike[str]"):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._policy = self._read()
        self._failed: object = None  # the version of the file last found unusable

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise PolicyError(f"{self.path}: cannot read the curve_dispatchers policy: {exc.strerror}") from None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read(self) -> ServePolicy:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{self.path}: cannot read the curve_dispatchers policy: {exc}") from None
        return ServePolicy.parse(text, self.path)

    def current(self) -> ServePolicy:
        """The rules in force, the file read again first if it changed since."""
        try:
            stamp = self._stat()
        except PolicyError as exc:
            return self._kept(exc, None)
        if stamp == self._stamp:
            self._failed = None
            return self._policy
        with self._lock:
            if stamp != self._stamp:
                try:
                    policy = self._read()
                except PolicyError as exc:
                    return self._kept(exc, stamp)
                self._policy, self._stamp, self._failed = policy, stamp, None
                _log.info("%s: policy read again: %s", self.path, _summary(policy))
        return self._policy

    def _kept(self, exc: PolicyError, stamp: Optional[tuple[int, int, int]]) -> ServePolicy:
        """The file is gone or bad: keep the rules in force, log it once per version of the file."""
        marker = stamp if stamp is not None else "missing"
        if marker != self._failed:
            self._failed = marker
            _log.error("%s; the rules read before stay in force", exc)
        return self._policy

    def allows(self, key: Optional[str], service: str) -> bool:
        return self.current().allows(key, service)

    def __repr__(self) -> str:
        return f"<PolicyFile {self.path}: {_summary(self._policy)}>"


def _summary(policy: ServePolicy) -> str:
    return "; ".join(f"{key}: {' '.join(patterns)}" for key, patterns in policy.rules.items()) or "no dispatcher keys"
