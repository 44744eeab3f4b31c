"""Sessions of malformed input, each followed by an inquiry the broker must still answer.

The malformed frames are the only frames written by hand, on purpose. The frames every
decoder must refuse are not here: their cases (robust.spec-*) are generated from the spec's
invalid_examples by ``python -m codegen``."""

from __future__ import annotations

from cauldron_proto import Direction

from .net import SESSIONS, Net, Peer

# -- sessions: malformed input, then an inquiry (robustness) ----------------------------

def _then_inquiry(peer: Peer, frames: list[bytes], delimiter=True):
    peer.sock.send_multipart(([b""] if delimiter else []) + frames)
    peer.send(Direction.UBQ, command="check")
    while peer.recv().direction != Direction.UBP:
        pass


_ENVELOPE = [b"KTEST", b"disp1", b"VALUE", b"CDQ", b"update", b"\x01", b"\x10\x11\x12\x13"]


def _malformed(frames, delimiter=True):
    def play(net: Net):
        _then_inquiry(net.dealer(), frames, delimiter)
    return play


for _name, _frames, _delimiter in [
    ("malformed_one_frame", [b"KTEST"], False),
    ("malformed_cdb_to_router", [b"KTEST", b"disp1", b"TICK", b"CDB", b"broadcast", b"17", b"\x20\x21"], True),
    ("malformed_dbp_to_router", [b"KTEST", b"disp1", b"\x01", b"DBP", b"welcome", b"confirmed", b"\x30\x31"], True),
    ("malformed_no_delimiter", _ENVELOPE, False),
    ("client_sends_sdq", [b"KTEST", b"disp1", b"VALUE", b"SDQ", b"update", b"\x01", b"\x80\x81"], True),
]:
    SESSIONS[_name.replace("_", "-")] = (_malformed(_frames, _delimiter), 5.0)
