"""Fuzz programs (see :mod:`fuzz.core_driver`) from bytes or from a random generator.

:func:`program_from_bytes` reads any byte string as a program, so a coverage-guided fuzzer
(atheris) or hypothesis's ``binary()`` can drive the core; :func:`random_program` makes
long programs quickly for soak runs. :func:`frames_from_bytes` reads bytes as a frame list
(a seed, mutated) for the codec checks.
"""

from __future__ import annotations

import random
from typing import Iterator

from .core_driver import ADVANCE, BEAT, PEERS, REPLY, SEND, STEPS
from .seeds import N_OPS, TEMPLATES, Mutation, mutate, seed

__all__ = ["ByteReader", "program_from_bytes", "frames_from_bytes", "random_program", "random_mutations"]


class ByteReader:
    """Small ints and byte strings read from the front of ``data`` (zeros once it runs out)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def byte(self) -> int:
        if self.at >= len(self.data):
            return 0
        self.at += 1
        return self.data[self.at - 1]

    def short(self) -> int:
        return self.byte() | self.byte() << 8

    def chunk(self, most: int) -> bytes:
        n = self.byte() % (most + 1)
        out = self.data[self.at:self.at + n]
        self.at += len(out)
        return out

    def mutations(self) -> tuple[Mutation, ...]:
        count = self.byte()
        count = 0 if count < 96 else 1 + count % 4  # most seeds go unchanged, so the core gets far
        return tuple((self.byte() % N_OPS, self.byte(), self.short(), self.chunk(8)) for _ in range(count))


def program_from_bytes(data: bytes, most: int = 400) -> list[tuple]:
    """The program ``data`` spells: at most ``most`` actions, one per few bytes."""
    reader, program = ByteReader(data), []
    while reader.left > 0 and len(program) < most:
        choice = reader.byte() % 16
        if choice < 9:
            program.append((SEND, reader.byte(), reader.byte(), reader.short(), reader.mutations()))
        elif choice < 12:
            program.append((REPLY, reader.short(), reader.byte(), reader.mutations()))
        elif choice < 13:
            program.append((BEAT, reader.byte()))
        else:
            program.append((ADVANCE, reader.byte()))
    return program


def frames_from_bytes(data: bytes) -> list[bytes]:
    """A frame list from ``data``: a seed of any kind, mutated; or raw frames."""
    reader = ByteReader(data)
    if reader.byte() % 4 == 0:
        return [reader.chunk(24) for _ in range(reader.byte() % 12)]
    frames = seed(reader.byte(), reader.short(), reader.chunk(16) or b"\x00" * 16)
    return mutate(frames, tuple((reader.byte() % N_OPS, reader.byte(), reader.short(), reader.chunk(8))
                                for _ in range(reader.byte() % 5)))


def random_mutations(rng: random.Random, most: int = 4) -> tuple[Mutation, ...]:
    count = 0 if rng.random() < 0.6 else rng.randint(1, most)
    return tuple((rng.randrange(N_OPS), rng.randrange(256), rng.randrange(65536), rng.randbytes(rng.randrange(9)))
                 for _ in range(count))


def random_program(rng: random.Random, length: int) -> Iterator[tuple]:
    """``length`` random actions, weighted toward traffic the core routes."""
    for _ in range(length):
        roll = rng.random()
        if roll < 0.55:
            yield (SEND, rng.randrange(len(PEERS)), rng.randrange(len(TEMPLATES)), rng.randrange(65536),
                   random_mutations(rng))
        elif roll < 0.8:
            yield (REPLY, rng.randrange(65536), rng.randrange(256), random_mutations(rng, 2))
        elif roll < 0.9:
            yield (BEAT, rng.randrange(256))
        else:
            yield (ADVANCE, rng.randrange(len(STEPS)) if rng.random() < 0.3 else rng.randrange(10))
