"""One message of N 1-byte frames waiting on a ROUTER (tcp loopback): the time to read and
discard it, with the pure-Python loop of ``ZMQBroker._over_limit`` and with the compiled
``_batchio.receive`` (docs/native.md). A peer can send such a message; both paths drop it.

    python benchmarks/frame_flood.py [N]    (default 1,000,000)
"""
import sys, time
import zmq
from cauldron_proto.broker import batchio

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ctx = zmq.Context()
router = ctx.socket(zmq.ROUTER)
port = router.bind_to_random_port("tcp://127.0.0.1")
dealer = ctx.socket(zmq.DEALER)
dealer.connect(f"tcp://127.0.0.1:{port}")
flood = [b"."] * N


def pure() -> int:
    recv, count, size = router.recv, 0, 0
    frame = recv(zmq.NOBLOCK, False)
    while frame.more:  # as _over_limit: counted; nothing kept past max_frames
        frame = recv(zmq.NOBLOCK, False)
        size, count = size + len(frame), count + 1
    return count


def compiled() -> int:
    (message,) = batchio.native.receive(router.underlying, 1, 16, 1 << 20, 4096)
    return message[3]


for name, read in (("pure Python", pure), ("compiled", compiled)) if batchio.native else (("pure Python", pure),):
    dealer.send_multipart(flood)
    assert router.poll(60_000)
    started = time.perf_counter()
    count = read()
    took = time.perf_counter() - started
    print(f"{name}: {count:,} frames read and discarded in {took:.3f} s ({took / count * 1e9:.0f} ns a frame)")
ctx.destroy(linger=0)
