"""The sessions the conformance cases were recorded from, by what they record (see ``../sessions.py``)."""

from . import broker, helpers, malformed  # noqa: F401  (each registers its sessions)
from .net import RECORDINGS, SESSIONS, Net, Peer, recording, session

__all__ = ["RECORDINGS", "SESSIONS", "Net", "Peer", "recording", "session"]
