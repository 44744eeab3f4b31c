"""What dispatchers see of a client's routing id: an alias that tells them nothing.

A request forwarded to a dispatcher carries, in its routing frames, who to answer; the
dispatcher echoes them in its reply. The broker's ROUTER gives every peer that chooses no
routing id of its own an automatic one: a zero byte and a 32-bit counter, one more for each
connection. libzmq 4.3 checks a routing id a peer chooses against those in use, but not the
automatic id it gives next against the ids peers chose: a peer that connects with the id the
counter is about to give makes libzmq abort the whole broker process (``Assertion failed: ok
(src/socket_base.cpp:2113)``) when the next ordinary peer connects. Nothing in libzmq's API lets
an application refuse a peer's chosen id, so the broker keeps the counter secret instead:

- the ZMQ broker seeds libc's ``rand()``, which libzmq draws the counter's start from, with
  random bits before it makes its ROUTER (unseeded, it starts at the same value in every
  process), and
- the core never shows a dispatcher a client's routing id: :class:`ClientAliases` maps each
  automatic id (five bytes, the first zero) to another of the same form by a keyed
  permutation (a four-round Feistel network on the counter, keyed with random bits per
  broker), and back when the reply comes; any other id is its own alias. The map is a
  bijection, so two clients never share an alias.

A peer that wants to crash the broker must then guess the next id among 2**32 for each
connection it opens. Aliases are computed once per client and cached (at most
``CACHE_SIZE``; past that the cache starts again), so the routing loop pays a dict look-up.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["ClientAliases"]

_ROUNDS = 4


class ClientAliases:
    """A keyed bijection on routing ids, hiding the ROUTER's automatic ids (see the module docstring)."""

    CACHE_SIZE = 65_536

    def __init__(self, key: bytes | None = None):
        self._keys = [hashlib.blake2b(key or os.urandom(32), digest_size=16, person=b"cauldron%d" % i).digest()
                      for i in range(_ROUNDS)]
        self._to: dict[bytes, bytes] = {}
        self._back: dict[bytes, bytes] = {}

    def alias(self, client: bytes) -> bytes:
        """The alias a dispatcher sees for the routing id ``client``."""
        alias = self._to.get(client)
        if alias is None:
            alias = self._remember(client, self._permute(client, forward=True))
        return alias

    def client(self, alias: bytes) -> bytes:
        """The routing id whose alias is ``alias`` (the inverse of :meth:`alias`)."""
        client = self._back.get(alias)
        if client is None:
            client = self._permute(alias, forward=False)
            self._remember(client, alias)
        return client

    def _remember(self, client: bytes, alias: bytes) -> bytes:
        if len(self._to) >= self.CACHE_SIZE:
            self._to.clear()
            self._back.clear()
        self._to[client] = alias
        self._back[alias] = client
        return alias

    def _permute(self, rid: bytes, forward: bool) -> bytes:
        if len(rid) != 5 or rid[0] != 0:
            return rid  # a routing id the peer chose: it knows it already
        left, right = rid[1:3], rid[3:5]
        keys = self._keys if forward else self._keys[::-1]
        for key in keys:
            if forward:
                left, right = right, _xor(left, _round(key, right))
            else:
                left, right = _xor(right, _round(key, left)), left
        return b"\x00" + left + right


def _round(key: bytes, half: bytes) -> bytes:
    return hashlib.blake2b(half, key=key, digest_size=2).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))
