"""Processes the broker benchmarks run: workers, dispatchers, devices, clients, the broker.

Each function taking ``report`` is the body of one process (multiprocessing, "spawn"):
servers bind ``tcp://127.0.0.1:*`` and put their real endpoint on the ``report`` queue,
clients put their measurements there. Every frame is built and read with the generated
codec. The peers are kept lean (requests built before the clock starts, frames moved with
plain ``send``/``recv`` calls rather than pyzmq's slower ``*_multipart`` helpers) so that the
path under test, not the load generator, is what limits the figures.
"""

from __future__ import annotations

import glob
import os
import time

import zmq

from cauldron_proto import Direction, Message, decode, encode
from cauldron_proto.testing import BrokerCommandProcess, broker_process, dispatcher_answer, register_dispatcher

SERVICE = "BENCH"
KEYWORD = "VALUE"
_MORE = int(zmq.SNDMORE)
_NOBLOCK = int(zmq.NOBLOCK)
_BACKEND_SEND = zmq.backend.Socket.send


# -- requests and frames ----------------------------------------------------------------

def request(dispatcher: str | None, index: int = 0, direction: Direction = Direction.CDQ,
            command: str = "update", payload: str | None = None) -> list[bytes]:
    """The envelope of benchmark request number ``index`` (its identifier encodes the index)."""
    keyword = KEYWORD if command in ("update", "modify") else None
    return encode(Message.new(direction, service=SERVICE, dispatcher=dispatcher, keyword=keyword,
                              command=command, payload=payload, identifier=index.to_bytes(16, "big")))


def requests(dispatcher: str | None, count: int, **kwargs) -> list[list[bytes]]:
    """``count`` distinct requests, numbered 0 to count - 1."""
    return [request(dispatcher, index, **kwargs) for index in range(count)]


def index_of(frames: list[bytes]) -> int:
    """The number of the request an answer (the envelope, no prefix) answers."""
    return int.from_bytes(decode(frames).identifier, "big")


def recv_frames(sock: zmq.Socket, flags: int = 0) -> list[bytes]:
    """One multipart message as bytes (raises zmq.Again with NOBLOCK when none is ready)."""
    recv = sock.recv
    frame = recv(flags, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = recv(flags, copy=False)
        frames.append(frame.bytes)
    return frames


def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """One multipart message (the backend's ``send``: pyzmq's Python wrapper doubles the cost)."""
    send = _BACKEND_SEND.__get__(sock)
    for frame in frames[:-1]:
        send(frame, _MORE)
    send(frames[-1], 0)


def _bind(ctx: zmq.Context, kind: int) -> tuple[zmq.Socket, str]:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.bind("tcp://127.0.0.1:*")
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)


def _connect(ctx: zmq.Context, kind: int, address: str) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.connect(address)
    return sock


# -- what the operating system says about a process ------------------------------------

def cpu_ns(pid: int) -> dict[str, int]:
    """On-CPU time of process ``pid`` in ns: ``total``, and ``zmq_io`` (its ZMQ I/O threads).

    From the per-thread scheduler accounting (/proc/PID/task/*/schedstat, nanoseconds);
    where the kernel has none, from /proc/PID/stat clock ticks (total only, 10 ms steps).
    """
    total = zmq_io = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/schedstat") as handle:
                ns = int(handle.read().split()[0])
            with open(f"{task}/comm") as handle:
                name = handle.read().strip()
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended, or no schedstat
        total += ns
        if name.startswith("ZMQbg/IO"):
            zmq_io += ns
    if total == 0:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return {"total": total, "zmq_io": zmq_io}


def cpu_us_per(pid: int, before: dict[str, int], count: int) -> dict[str, float]:
    """CPU microseconds per operation since ``before``: whole process and its Python side."""
    after = cpu_ns(pid)
    total = (after["total"] - before["total"]) / count / 1e3
    io = (after["zmq_io"] - before["zmq_io"]) / count / 1e3
    return {"cpu_us_per_rt": total, "cpu_us_per_rt_app": total - io}


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid``, from /proc."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# -- servers ----------------------------------------------------------------------------

def rep_worker(report, connect: str | None = None) -> None:
    """A REP worker answering every request ``42``. Binds unless ``connect`` is given."""
    ctx = zmq.Context()
    if connect is None:
        sock, endpoint = _bind(ctx, zmq.REP)
        report.put(endpoint)
    else:
        sock = _connect(ctx, zmq.REP, connect)
        report.put(connect)
    try:
        while True:
            send_frames(sock, encode(decode(recv_frames(sock)).reply("42", dispatcher="worker")))
    finally:
        sock.close()
        ctx.term()


def lean_rep_worker(report, connect: str) -> None:
    """A REP worker answering every request ``42`` without the codec: one reply built before
    the clock starts, the request's identifier (its last frame) put in (the second harness)."""
    ctx = zmq.Context()
    sock = _connect(ctx, zmq.REP, connect)
    reply = encode(decode(request("worker")).reply("42", dispatcher="worker"))[:-1]
    report.put(connect)
    try:
        while True:
            send_frames(sock, [*reply, recv_frames(sock)[-1]])
    finally:
        sock.close()
        ctx.term()


def c_device(report, front_kind: int = zmq.ROUTER, back_kind: int = zmq.DEALER) -> None:
    """``zmq.proxy(front, back)`` in C: ROUTER/DEALER, the limit for one forwarding hop, or
    XSUB/XPUB, the broadcast relay (default high-water marks, as the broker)."""
    ctx = zmq.Context()
    front, front_ep = _bind(ctx, front_kind)
    back, back_ep = _bind(ctx, back_kind)
    report.put((front_ep, back_ep, os.getpid()))
    try:
        zmq.proxy(front, back)
    except zmq.ContextTerminated:
        pass


def proxy_device(report) -> None:
    """``zmq.proxy(ROUTER, DEALER)``: the C-level forwarding device (the limit for one hop)."""
    c_device(report, zmq.ROUTER, zmq.DEALER)


def _device_sockets(report) -> tuple[zmq.Poller, dict[zmq.Socket, zmq.Socket]]:
    """A ROUTER (front) and a DEALER (back) bound, reported, polled: (poller, the other of each)."""
    ctx = zmq.Context()
    front, front_ep = _bind(ctx, zmq.ROUTER)
    back, back_ep = _bind(ctx, zmq.DEALER)
    report.put((front_ep, back_ep, os.getpid()))
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    return poller, {front: back, back: front}


def python_device(report) -> None:
    """A bare Python ROUTER/DEALER forwarding loop: no routing, no codec (the Python floor)."""
    poller, other = _device_sockets(report)
    while True:
        for sock, _ in poller.poll():
            send = _BACKEND_SEND.__get__(other[sock])
            while True:
                try:
                    frames = recv_frames(sock, _NOBLOCK)
                except zmq.Again:
                    break
                for frame in frames[:-1]:
                    send(frame, _MORE)
                send(frames[-1], 0)


def batched_python_device(report) -> None:
    """The bare Python forwarding loop on the broker's compiled batched I/O (``_batchio``): no
    routing, no codec, one ``receive`` of up to 32 messages and one ``transmit`` of them per call.
    The floor of any broker whose loop runs in a Python thread (issue 22's targets against it)."""
    from cauldron_proto.broker import _batchio

    poller, other = _device_sockets(report)
    receive, transmit, gone = _batchio.receive, _batchio.transmit, int(zmq.EHOSTUNREACH)
    while True:
        for sock, _ in poller.poll():
            source, destination = sock.underlying, other[sock].underlying
            while True:
                messages = receive(source, 32, 16, 1 << 20, 4096)
                if messages:
                    transmit(destination, gone, [[peer, *frames] for peer, frames, *_ in messages])
                if len(messages) < 32:
                    break


def xpub_xsub_device(report) -> None:
    """``zmq.proxy(xsub, xpub)``: the C-level broadcast relay."""
    c_device(report, zmq.XSUB, zmq.XPUB)


def dispatchers(report, router: str, count: int, prefix: str = "disp") -> None:
    """``count`` protocol dispatchers of SERVICE in one process, answering every query ``42``.

    Each registers (welcome, then ready) and answers heartbeats, as a real dispatcher does.
    """
    ctx = zmq.Context()
    names = {}
    for index in range(count):
        sock = _connect(ctx, zmq.DEALER, router)
        names[sock] = f"{prefix}{index}"
        register_dispatcher(sock, SERVICE, names[sock])
    poller = zmq.Poller()
    for sock in names:
        poller.register(sock, zmq.POLLIN)
    report.put(list(names.values()))
    try:
        while True:
            for sock, _ in poller.poll():
                while True:
                    try:
                        frames = recv_frames(sock, _NOBLOCK)
                    except zmq.Again:
                        break
                    answer = dispatcher_answer(decode(frames[1:]), names[sock], "42")  # or a heartbeat's
                    send_frames(sock, [b"", *encode(answer)])
    finally:
        for sock in names:
            sock.close()
        ctx.term()


def lean_dispatcher(report, router: str, name: str = "disp0") -> None:
    """One protocol dispatcher of SERVICE answering every query ``42`` without the codec: one
    reply envelope built before the clock starts, the request's routing prefix and identifier
    put in (the second harness); heartbeats, rare, are answered through the codec."""
    ctx = zmq.Context()
    sock = _connect(ctx, zmq.DEALER, router)
    register_dispatcher(sock, SERVICE, name)
    query = encode(dispatcher_answer(decode(request(name)), name, "42"))
    reply, query_direction = query[:-1], request(name)[3]
    report.put([name])
    try:
        while True:
            frames = recv_frames(sock)
            if frames[-4] == query_direction:  # the envelope's direction frame: a forwarded query
                send_frames(sock, [*frames[:-7], *reply, frames[-1]])
            else:
                send_frames(sock, [b"", *encode(dispatcher_answer(decode(frames[1:]), name, "42"))])
    finally:
        sock.close()
        ctx.term()


def start_broker(timeout: float = 5.0, src: str | None = None, extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> BrokerCommandProcess:
    """``cauldron-broker`` on ephemeral loopback ports (as a user runs it), once bound: its
    ``endpoints`` by config key, ``pid``; ``stop()`` it, or use it as a context manager.

    ``src``: run the ``cauldron_proto`` found in this directory instead (another version of
    the broker, for before/after comparisons). ``extra``: more arguments (e.g. CURVE's).
    ``env``: more environment variables (e.g. ``CAULDRON_PROTO_PURE=1``).
    """
    env = dict(env or {})
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (os.path.abspath(src), os.environ.get("PYTHONPATH"))))
    return broker_process(*extra, timeout=timeout, env=env or None)


# -- clients ----------------------------------------------------------------------------

def req_client(report, address: str, envelopes: list[list[bytes]], count: int, warmup: int = 200) -> None:
    """One request outstanding (REQ): latencies (ns) of ``count`` requests and the wall time.

    The first ``warmup`` envelopes go first, untimed; the timed ones start again from the
    first, going round the list again if it is shorter than ``count``.
    """
    ctx = zmq.Context()
    sock = _connect(ctx, zmq.REQ, address)
    clock = time.perf_counter_ns
    try:
        for index in range(warmup):
            send_frames(sock, envelopes[index % len(envelopes)])
            recv_frames(sock)
        latencies = []
        start = clock()
        for index in range(count):
            envelope = envelopes[index % len(envelopes)]
            t0 = clock()
            send_frames(sock, envelope)
            answer = recv_frames(sock)
            latencies.append(clock() - t0)
        decode(answer)  # the last answer is a protocol message
        report.put({"wall_ns": clock() - start, "latencies_ns": latencies})
    finally:
        sock.close()
        ctx.term()


def req_requests(report, address: str, dispatcher: str | None, count: int, warmup: int = 200,
                 options: dict | None = None) -> None:
    """:func:`req_client` with distinct requests built before the clock starts.

    ``options``: keyword arguments of :func:`request` (direction, command), and
    ``payload_size``: a ``modify`` with a payload of that many bytes (16 distinct requests,
    taken in turn: one at a time, each answered before the next).
    """
    options = dict(options or {})
    size = options.pop("payload_size", None)
    if size is not None:
        envelopes = requests(dispatcher, 16, command="modify", payload="x" * size, **options)
    else:
        envelopes = requests(dispatcher, max(count, warmup), **options)
    req_client(report, address, envelopes, count, warmup)


def dealer_client(report, address: str, dispatcher: str, count: int, inflight: int = 64,
                  warmup: int = 1000) -> None:
    """``inflight`` requests outstanding (DEALER): latencies and wall time of ``count`` requests.

    ``warmup`` more requests go first, untimed (connections and caches settle).
    """
    ctx = zmq.Context()
    sock = _connect(ctx, zmq.DEALER, address)
    envelopes = [[b"", *envelope] for envelope in requests(dispatcher, warmup + count)]
    clock = time.perf_counter_ns
    sent_at = [0] * len(envelopes)
    try:
        def run(first: int, last: int) -> int:
            sent = first
            for _ in range(min(inflight, last - first)):
                sent_at[sent] = clock()
                send_frames(sock, envelopes[sent])
                sent += 1
            for _ in range(last - first):
                index = index_of(recv_frames(sock)[1:])
                sent_at[index] = clock() - sent_at[index]
                if sent < last:
                    sent_at[sent] = clock()
                    send_frames(sock, envelopes[sent])
                    sent += 1
            return sent

        run(0, warmup)
        start = clock()
        run(warmup, warmup + count)
        report.put({"wall_ns": clock() - start, "latencies_ns": sent_at[warmup:]})
    finally:
        sock.close()
        ctx.term()


def one_shot_clients(report, router: str, dispatcher: str, first: int, count: int, batch: int = 50) -> None:
    """``count`` distinct clients (routing ids ``client-N``), each a new connection making one request.

    ``batch`` clients are connected at a time; each waits for its answer, then closes.
    """
    ctx = zmq.Context()
    envelope = [b"", *request(dispatcher)]
    answered = 0
    try:
        for start in range(first, first + count, batch):
            socks = []
            for index in range(start, min(first + count, start + batch)):
                sock = ctx.socket(zmq.DEALER)
                sock.linger = 0
                sock.routing_id = b"client-%d" % index
                sock.connect(router)
                send_frames(sock, envelope)
                socks.append(sock)
            for sock in socks:
                if sock.poll(30_000):
                    decode(recv_frames(sock)[1:])
                    answered += 1
                sock.close()
        report.put(answered)
    finally:
        ctx.term()


# -- broadcasts -------------------------------------------------------------------------

def _broadcast(keyword: str, payload: str) -> list[bytes]:
    return encode(Message.new(Direction.CDB, service=SERVICE, dispatcher="pub", keyword=keyword,
                              command="broadcast", payload=payload))


def _curve_client(sock: zmq.Socket, curve: tuple[bytes, bytes, bytes] | None) -> None:
    """Make ``sock`` a CURVE client: ``curve`` is (broker's public key, own public, own secret)."""
    if curve is not None:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = curve


def publisher(report, address: str, count: int, size: int, go, interval: float = 0.0,
              curve: tuple[bytes, bytes, bytes] | None = None) -> None:
    """Publish probes until something is put on queue ``go``, then ``count`` broadcasts of ``size`` bytes.

    Each payload starts with its send time (perf_counter_ns, 20 digits). ``interval``: seconds
    between broadcasts (0: as fast as possible). ``curve``: see ``_curve_client``.
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.linger = 2000
    _curve_client(sock, curve)
    sock.connect(address)
    pad = "x" * max(0, size - 20)
    try:
        while go.empty():
            send_frames(sock, _broadcast("PROBE", "probe"))
            time.sleep(0.01)
        time.sleep(0.05)  # the probes still on their way arrive first
        clock, next_at = time.perf_counter_ns, time.perf_counter()
        for _ in range(count):
            if interval:
                next_at += interval
                while time.perf_counter() < next_at:
                    pass
            send_frames(sock, _broadcast(KEYWORD, f"{clock():020d}{pad}"))
        report.put("sent")
    finally:
        sock.close()
        ctx.term()


def subscriber(report, address: str, count: int, go, quiet_ms: int = 2000,
               curve: tuple[bytes, bytes, bytes] | None = None) -> None:
    """Put a token on queue ``go`` at the first probe, then receive up to ``count`` broadcasts.

    Stops after ``count``, or ``quiet_ms`` with nothing arriving (some were dropped on the
    way); reports each broadcast's latency and the time from the first to the last.
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.rcvhwm = 0
    sock.setsockopt(zmq.SUBSCRIBE, SERVICE.encode())
    _curve_client(sock, curve)
    sock.connect(address)
    clock = time.perf_counter_ns
    latencies = []
    first = last = 0
    try:
        while len(latencies) < count and sock.poll(quiet_ms if latencies else 30_000):
            frames = recv_frames(sock)
            now = clock()
            msg = decode(frames)
            if msg.keyword == "PROBE":
                if go.empty():
                    go.put("go")
                continue
            first = first or now
            last = now
            latencies.append(now - int(msg.payload[:20]))
        report.put({"wall_ns": max(1, last - first), "latencies_ns": latencies or [0]})
    finally:
        sock.close()
        ctx.term()
