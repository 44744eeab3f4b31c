# The compiled part (_batchio.c): its signatures, for the type checker.
from typing import Callable

def receive(handle: int, limit: int, max_frames: int, max_size: int, kept_size: int, want_key: bool = False,
            note_at: int = 0, note_at_least: int = 0, note: bytes | None = None, counts: dict[int, int] | None = None,
            frame_overhead: int = 0) -> list[tuple[bytes, list[bytes | None] | None, int, int, int, bool, str | None, str | None]]: ...
def transmit(handle: int, gone_errno: int, messages: list[list[bytes]]) -> list[tuple[list[bytes], bool]] | None: ...
def relay(source: int, destination: int, limit: int, max_frames: int, max_size: int, frames_reason: str,
          size_reason: str, decide: Callable[[str, bytes, int], str | None] | None = None,
          counts: dict[int, int] | None = None, frame_overhead: int = 0) -> tuple[int, list[tuple[str, int, int, bytes | None, str | None]]]: ...
