"""The broadcast attacks of issue 19 against ``cauldron-broker``: broker RSS at the start, at its
peak and 3 s after the attacker left. Loopback only; each attack stops by itself after
``--seconds`` or once the broker's RSS passes ``--cap-mb``.

* ``large-broadcasts``: a publisher sends 10 MB broadcasts (40 frames of 250,000 bytes, each
  under ``max_broadcast_size``) while a subscriber that subscribed to everything never reads;
* ``largest-allowed``: the same with broadcasts of one 250,000-byte frame (under the limit, so
  relayed): what the XPUB queues toward the never-reading subscriber (``max_queued_broadcasts``);
* ``subscriptions``: one connection sends distinct 16-byte subscriptions as fast as it can;
* ``endless-message``: a publisher sends 1 KB frames of one multipart message that never ends
  (libzmq holds a message until its last frame has come, so no relay sees any of it).

The attackers speak ZMTP 3.0 themselves (a raw TCP socket), so no libzmq of theirs buffers or
throttles what they send, and the never-reading subscriber's kernel buffers stay small.

    python scripts/relay_attack.py [--src DIR] [--seconds 15] [--cap-mb 1500] [ATTACK...]

``--src DIR``: run the ``cauldron_proto`` found in DIR (e.g. ``git archive 7b26562 src | tar -x
-C /tmp/before``, then ``--src /tmp/before/src``) instead of the installed one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import select
import socket
import struct
import sys
import threading
import time

from cauldron_proto.testing import broker_process, zmtp_connection, zmtp_frame

ATTACKS = ("large-broadcasts", "largest-allowed", "subscriptions", "endless-message")
AFTER = 3.0  # seconds after the attacker leaves when RSS is read again
_SAID = ("not relayed", "not applied", "disconnected")  # what the broker's WARNING lines say


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _flood(sock: socket.socket, stop: threading.Event, chunks, *others: socket.socket) -> None:
    """Send each of ``chunks`` whole on ``sock`` until ``stop`` is set or the broker cuts the
    connection; then close ``sock`` and ``others``."""
    sock.setblocking(False)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                if stop.is_set():
                    return
                if select.select([], [sock], [], 0.5)[1]:
                    try:
                        view = view[sock.send(view):]
                    except BlockingIOError:
                        continue
    except OSError:
        pass  # the broker cut the connection
    finally:
        for each in (sock, *others):
            each.close()


def _publish(endpoints, stop: threading.Event, frames: int) -> None:
    subscriber = zmtp_connection(endpoints["subscribe"], b"SUB", rcvbuf=4096)
    subscriber.sendall(zmtp_frame(b"\x01"))  # everything; then it never reads
    part = bytes(250_000)
    broadcast = b"".join(zmtp_frame(part, more=n < frames - 1) for n in range(frames))
    _flood(zmtp_connection(endpoints["publish"], b"PUB"), stop, itertools.repeat(broadcast), subscriber)


def _endless(endpoints, stop: threading.Event) -> None:
    chunk = zmtp_frame(bytes(1000), more=True) * 1000
    _flood(zmtp_connection(endpoints["publish"], b"PUB"), stop, itertools.repeat(chunk))


def _subscribe(endpoints, stop: threading.Event) -> None:
    batches = (b"".join(zmtp_frame(b"\x01" + struct.pack(">QQ", os.getpid(), first + n)) for n in range(10_000))
               for first in itertools.count(0, 10_000))
    _flood(zmtp_connection(endpoints["subscribe"], b"SUB"), stop, batches)


def attack(name: str, endpoints: dict, pid: int, seconds: float, cap_mb: float) -> dict:
    """Run attack ``name`` against the broker at ``endpoints`` (process ``pid``): RSS figures."""
    stop = threading.Event()
    target = {"large-broadcasts": lambda: _publish(endpoints, stop, 40),
              "largest-allowed": lambda: _publish(endpoints, stop, 1),
              "subscriptions": lambda: _subscribe(endpoints, stop),
              "endless-message": lambda: _endless(endpoints, stop)}[name]
    start = peak = rss_mb(pid)
    began = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    capped = False
    while time.monotonic() - began < seconds:
        peak = max(peak, rss_mb(pid))
        if peak > cap_mb:
            capped = True
            break
        time.sleep(0.1)
    stop.set()
    thread.join(5)
    left = time.monotonic()
    while time.monotonic() - left < AFTER:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.1)
    return {"attack": name, "start_mb": start, "peak_mb": peak, "after_mb": rss_mb(pid),
            "seconds": round(left - began, 1), "capped": capped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attacks", nargs="*", help=f"of {', '.join(ATTACKS)} (default: all)")
    parser.add_argument("--src", help="a directory holding another cauldron_proto to run")
    parser.add_argument("--seconds", type=float, default=15.0, help="each attack at most (default 15)")
    parser.add_argument("--cap-mb", type=float, default=1500.0, help="stop an attack past this broker RSS")
    args = parser.parse_args(argv)
    unknown = set(args.attacks) - set(ATTACKS)
    if unknown:
        parser.error(f"no attack {', '.join(sorted(unknown))}")
    env = None if args.src is None else {"PYTHONPATH": os.path.abspath(args.src)}
    for name in args.attacks or ATTACKS:
        with broker_process(env=env) as broker:
            result = attack(name, broker.endpoints, broker.pid, args.seconds, args.cap_mb)
            result["alive"] = broker.popen.poll() is None
            said = broker.stderr_text().splitlines()
        lines = {what: sum(what in line for line in said) for what in _SAID}
        result["said"] = ", ".join(f"{count} '{what}'" for what, count in lines.items() if count)
        print(f"{name:<17} RSS start {result['start_mb']:6.0f} MB  peak {result['peak_mb']:6.0f} MB"
              f"{' (capped)' if result['capped'] else ''}  {AFTER:g} s after {result['after_mb']:6.0f} MB"
              f"  over {result['seconds']} s  broker alive: {result['alive']}"
              f"{'  log: ' + result['said'] if result['said'] else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
