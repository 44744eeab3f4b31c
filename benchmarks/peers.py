"""Processes the broker benchmarks run: workers, dispatchers, devices and clients.

Each function is the body of one process (multiprocessing, "spawn"). Servers bind
``tcp://127.0.0.1:*`` and report their real endpoint through a queue; clients report their
measurements through a queue. Every frame is built and read with the generated codec.
"""

from __future__ import annotations

import os
import time

import zmq

from cauldron_proto import Direction, Message, decode, encode

SERVICE = "BENCH"
KEYWORD = "VALUE"


def request(dispatcher: str | None, payload: str | None = None, direction=Direction.CDQ) -> list[bytes]:
    """The envelope of one benchmark request."""
    return encode(Message.new(direction, service=SERVICE, dispatcher=dispatcher, keyword=KEYWORD,
                              command="update", payload=payload))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid``, from /proc."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _bind(ctx: zmq.Context, kind: int) -> tuple[zmq.Socket, str]:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.bind("tcp://127.0.0.1:*")
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)


def rep_worker(report, connect: str | None = None) -> None:
    """A REP echo worker: decode, reply, encode. Binds unless ``connect`` is given."""
    ctx = zmq.Context()
    if connect is None:
        sock, endpoint = _bind(ctx, zmq.REP)
        report.put(endpoint)
    else:
        sock = ctx.socket(zmq.REP)
        sock.linger = 0
        sock.connect(connect)
        report.put(connect)
    try:
        while True:
            frames = sock.recv_multipart()
            if frames == [b"stop"]:
                sock.send(b"stopped")
                break
            sock.send_multipart(encode(decode(frames).reply("42", dispatcher="worker")))
    finally:
        sock.close()
        ctx.term()


def proxy_device(report, front_kind: str = "ROUTER", back_kind: str = "DEALER") -> None:
    """``zmq.proxy(front, back)``: the C-level forwarding device (the limit for one hop)."""
    ctx = zmq.Context()
    front, front_ep = _bind(ctx, getattr(zmq, front_kind))
    back, back_ep = _bind(ctx, getattr(zmq, back_kind))
    report.put((front_ep, back_ep, os.getpid()))
    try:
        zmq.proxy(front, back)
    except zmq.ContextTerminated:
        pass


def dispatchers(report, router: str, count: int, prefix: str = "disp") -> None:
    """``count`` protocol dispatchers of SERVICE in one process, answering every query."""
    ctx = zmq.Context()
    socks = []
    for index in range(count):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(router)
        name = f"{prefix}{index}"
        sock.send_multipart([b"", *encode(Message.new(Direction.DBQ, service=SERVICE, dispatcher=name,
                                                      command="welcome"))])
        sock.recv_multipart()  # confirmed
        sock.send_multipart([b"", *encode(Message.new(Direction.DBQ, service=SERVICE, dispatcher=name,
                                                      command="ready"))])
        socks.append((sock, name))
    poller = zmq.Poller()
    for sock, _ in socks:
        poller.register(sock, zmq.POLLIN)
    names = {sock: name for sock, name in socks}
    report.put([name for _, name in socks])
    try:
        while True:
            for sock, _ in poller.poll():
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = decode(frames[1:])
                    if msg.command == "heartbeat":
                        answer = msg.reply(str(time.time()))
                    else:
                        answer = msg.reply("42", dispatcher=names[sock])
                    sock.send_multipart([b"", *encode(answer)])
    finally:
        for sock, _ in socks:
            sock.close()
        ctx.term()


def req_client(report, address: str, envelope: list[bytes], count: int, warmup: int = 200) -> None:
    """One request outstanding (REQ): report per-request latencies in ns and the wall time."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.connect(address)
    try:
        for _ in range(warmup):
            sock.send_multipart(envelope)
            sock.recv_multipart()
        latencies = []
        clock = time.perf_counter_ns
        start = clock()
        for _ in range(count):
            t0 = clock()
            sock.send_multipart(envelope)
            sock.recv_multipart()
            latencies.append(clock() - t0)
        report.put({"wall_ns": clock() - start, "latencies_ns": latencies})
    finally:
        sock.close()
        ctx.term()


def dealer_client(report, address: str, envelope: list[bytes], count: int, inflight: int = 64) -> None:
    """``inflight`` requests outstanding (DEALER): report latencies and the wall time."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    clock = time.perf_counter_ns
    try:
        sent_at: dict[bytes, int] = {}
        latencies = []

        def send_one():
            msg = decode(envelope).replace(identifier=None)
            sent_at[msg.identifier] = clock()
            sock.send_multipart([b"", *encode(msg)])

        for _ in range(min(inflight, count)):
            send_one()
        sent, start = min(inflight, count), clock()
        while len(latencies) < count:
            frames = sock.recv_multipart()
            latencies.append(clock() - sent_at.pop(frames[-1]))
            if sent < count:
                send_one()
                sent += 1
        report.put({"wall_ns": clock() - start, "latencies_ns": latencies})
    finally:
        sock.close()
        ctx.term()


def fanout_client(report, address: str, count: int) -> None:
    """CSQ fan-out round trips (REQ): report latencies."""
    envelope = request(None, direction=Direction.CSQ)
    req_client(report, address, envelope, count, warmup=20)


def publisher(report, address: str, count: int, size: int, go) -> None:
    """Publish probes until something is put on queue ``go``, then ``count`` broadcasts of about ``size`` bytes.

    The payload starts with the send time (perf_counter_ns, 20 digits).
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.linger = 1000
    sock.sndhwm = 0
    sock.connect(address)
    pad = "x" * max(0, size - 20)

    def broadcast(keyword: str, payload: str) -> list[bytes]:
        return encode(Message.new(Direction.CDB, service=SERVICE, dispatcher="pub", keyword=keyword,
                                  command="broadcast", payload=payload))

    try:
        while go.empty():
            sock.send_multipart(broadcast("PROBE", "probe"))
            time.sleep(0.01)
        for _ in range(count):
            sock.send_multipart(broadcast(KEYWORD, f"{time.perf_counter_ns():020d}{pad}"))
        report.put("sent")
    finally:
        sock.close()
        ctx.term()


def subscriber(report, address: str, count: int, go) -> None:
    """Put a token on queue ``go`` at the first probe, then receive ``count`` broadcasts; report their latencies."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.rcvhwm = 0
    sock.setsockopt(zmq.SUBSCRIBE, SERVICE.encode())
    sock.connect(address)
    clock = time.perf_counter_ns
    latencies = []
    try:
        first = None
        while len(latencies) < count:
            if not sock.poll(10_000):
                break
            msg = decode(sock.recv_multipart())
            if msg.keyword == "PROBE":
                if go.empty():
                    go.put("go")
                continue
            now = clock()
            first = first or now
            latencies.append(now - int(msg.payload[:20]))
        report.put({"wall_ns": clock() - (first or clock()), "latencies_ns": latencies})
    finally:
        sock.close()
        ctx.term()


def our_broker(report, stop, timeout: float = 5.0) -> None:
    """The project's ZMQBroker on ephemeral loopback ports, until told to stop."""
    from cauldron_proto import ZMQBroker

    any_port = "tcp://127.0.0.1:*"
    broker = ZMQBroker("bench", any_port, any_port, any_port, any_port, timeout=timeout)
    broker.start()
    if not broker.running.wait(10):
        raise RuntimeError("the broker did not start")
    report.put((dict(broker.endpoints), os.getpid()))
    try:
        stop.wait()
    finally:
        broker.stop()


def xpub_xsub_device(report) -> None:
    """``zmq.proxy(xsub, xpub)``: the C-level broadcast relay."""
    ctx = zmq.Context()
    xsub, xsub_ep = _bind(ctx, zmq.XSUB)
    xpub, xpub_ep = _bind(ctx, zmq.XPUB)
    xsub.rcvhwm = xpub.sndhwm = 0
    report.put((xsub_ep, xpub_ep, os.getpid()))
    try:
        zmq.proxy(xsub, xpub)
    except zmq.ContextTerminated:
        pass
