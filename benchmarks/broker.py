"""Broker benchmarks, each against its baseline measured in the same run.

Client, broker (the ``cauldron-broker`` command) and dispatchers run in separate processes
over tcp loopback. Figures:

1. one request outstanding (REQ): no broker (REQ straight to a REP worker), the C-level
   forwarding device ``zmq.proxy(ROUTER, DEALER)``, a bare Python forwarding loop, our broker;
2. 64 requests in flight (DEALER): the same four paths; and one request outstanding whose
   payload is 1 MiB (a large write, where copying frames is what costs);
3. CPU time per round trip of the device, the Python loop and the broker, from each
   process's own scheduler accounting (all threads, and without the ZMQ I/O thread);
4. fan-out (CSQ) latency with 1, 2, 4, 8 and 16 dispatchers;
5. broadcast throughput (a flood) and latency (paced, 1 per ms) through the broker's
   XSUB/XPUB relay, against ``zmq.proxy(XSUB, XPUB)``;
6. idle CPU of a broker with nothing to do (no peers; 16 idle dispatchers, T = 1 s), and its
   resident memory while 100,000 distinct clients each connect, make one request and leave.

Given a command that starts the existing Cauldron broker (``reference``, run with the
addresses ROUTER PUBLISH SUBSCRIBE appended, on free loopback ports), it is one more path
of figures 1 (one outstanding, 64 in flight) and 4 (fan-out), measured in the same runs.

    python benchmarks/broker.py [--quick]   (run_all.py runs this with the codec figures)
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queues
import shlex
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402

from cauldron_proto.processes import terminate  # noqa: E402

MP = multiprocessing.get_context("spawn")
PATHS = ("no broker", "zmq.proxy device", "Python forwarding loop", "cauldron_proto broker")
REFERENCE = "existing Cauldron broker"
#: the bare Python forwarding loop on the compiled batched I/O (ab.py --floor)
BATCHED_LOOP = "Python loop, batched I/O"


class Processes:
    """Processes started for one measurement; all stopped on exit."""

    def __init__(self):
        self.started: list = []
        self.queues: list = []  # kept alive until the children have unpickled them

    def start(self, target, *args) -> "Reports":
        queue = MP.Queue()
        self.queues.append(queue)
        proc = MP.Process(target=target, args=(queue, *args), daemon=True)
        proc.start()
        self.started.append(proc)
        return Reports(queue, proc)

    def stop(self):
        for proc in self.started:
            if proc.is_alive():
                proc.terminate()
        for proc in self.started:
            proc.join(5)


class Reports:
    """What one process puts on its queue; a process that dies first is an error, not a hang."""

    def __init__(self, queue, proc):
        self.queue, self.proc = queue, proc

    def get(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.queue.get(timeout=0.2)
            except queues.Empty:
                if not self.proc.is_alive():
                    raise RuntimeError(f"{self.proc.name} exited with {self.proc.exitcode} before reporting") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.proc.name} reported nothing in {timeout} s") from None


@contextmanager
def processes():
    group = Processes()
    try:
        yield group
    finally:
        group.stop()


@contextmanager
def broker_process(timeout: float = 5.0, src: str | None = None, env: dict[str, str] | None = None):
    """``cauldron-broker`` in its own process: yields (endpoints, pid); SIGTERM at the end.

    ``src``: the directory to import ``cauldron_proto`` from (default: the installed one);
    ``env``: more environment variables for it.
    """
    with peers.start_broker(timeout, src, env=env) as broker:
        yield broker.endpoints, broker.pid


def _free_ports(count: int) -> list[int]:
    """Loopback ports free a moment ago (the existing broker cannot bind a wildcard port and say which)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


@contextmanager
def reference_process(command: str, timeout: float = 5.0):
    """The existing broker, ``command`` + ROUTER PUBLISH SUBSCRIBE: yields (endpoints, pid) once it answers."""
    from cauldron_proto import ZMQBroker

    router, publish, subscribe = (f"tcp://127.0.0.1:{port}" for port in _free_ports(3))
    env = dict(os.environ, BROKER_TIMEOUT=repr(timeout), BROKER_LOGLEVEL="WARNING")
    proc = subprocess.Popen([*shlex.split(command), router, publish, subscribe], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ZMQBroker.check(address=router, timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the existing broker ({command}) did not start (status {proc.poll()})")
        yield {"broker": router, "publish": publish, "subscribe": subscribe}, proc.pid
    finally:
        terminate(proc)


@contextmanager
def a_broker(reference: str | None = None, src: str | None = None, timeout: float = 5.0,
             env: dict[str, str] | None = None):
    """Ours (``src``: which version; ``env``: more environment), or the existing one when
    ``reference`` is its command."""
    with (reference_process(reference, timeout) if reference else broker_process(timeout, src, env)) as started:
        yield started


def summary(result: dict, count: int) -> dict:
    lat = sorted(result["latencies_ns"])
    return {
        "rate_per_s": count / (result["wall_ns"] / 1e9),
        "p50_us": lat[len(lat) // 2] / 1e3,
        "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3,
    }


# -- 1-3: round trips ---------------------------------------------------------------------

def _client(group: Processes, inflight: int, address: str, dispatcher: str, count: int,
            options: dict | None = None) -> dict:
    if inflight == 1:
        reports = group.start(peers.req_requests, address, dispatcher, count, 200 if options is None else 20, options)
    else:
        reports = group.start(peers.dealer_client, address, dispatcher, count, inflight)
    return summary(reports.get(timeout=600), count)


def _measured(group: Processes, pid: int, inflight: int, address: str, dispatcher: str, count: int,
              options: dict | None = None) -> dict:
    before = peers.cpu_ns(pid)
    result = _client(group, inflight, address, dispatcher, count, options)
    warmup = 1000 if inflight > 1 else 200 if options is None else 20
    result.update(peers.cpu_us_per(pid, before, count + warmup))
    return result


def round_trips(path: str, inflight: int, count: int, src: str | None = None, options: dict | None = None,
                reference: str | None = None, env: dict[str, str] | None = None, lean: bool = False) -> dict:
    """Round trips through ``path`` (one of PATHS, or REFERENCE) with ``inflight`` requests outstanding.

    ``src``: for our broker, the source directory of the version to run (default: installed).
    ``options``: what the requests are (one outstanding only; see ``peers.req_requests``).
    ``reference``: for REFERENCE, the command that starts the existing broker. ``env``: more
    environment variables for our broker (``CAULDRON_PROTO_PURE=1``: its pure-Python I/O).
    ``lean``: the second harness, workers that answer without the codec behind the broker
    (``peers.lean_dispatcher``) and behind the devices (``peers.lean_rep_worker``).
    """
    with processes() as group:
        if path == "no broker":
            address = group.start(peers.rep_worker).get()
            return _client(group, inflight, address, "worker", count, options)
        if path in ("cauldron_proto broker", REFERENCE):
            with a_broker(reference if path == REFERENCE else None, src, env=env) as (endpoints, pid):
                worker = (peers.lean_dispatcher, endpoints["broker"]) if lean else (peers.dispatchers, endpoints["broker"], 1)
                [name] = group.start(*worker).get()
                return _measured(group, pid, inflight, endpoints["broker"], name, count, options)
        device = {"zmq.proxy device": peers.proxy_device, BATCHED_LOOP: peers.batched_python_device}.get(
            path, peers.python_device)
        front, back, pid = group.start(device).get()
        group.start(peers.lean_rep_worker if lean else peers.rep_worker, back).get()
        return _measured(group, pid, inflight, front, "worker", count, options)


# -- 4: fan-out -----------------------------------------------------------------------------

def fanout(dispatcher_count: int, count: int, reference: str | None = None) -> dict:
    """CSQ enumerate round trips (REQ) to a service of ``dispatcher_count`` dispatchers
    (through the existing broker when ``reference`` is its command)."""
    with a_broker(reference) as (endpoints, _pid), processes() as group:
        group.start(peers.dispatchers, endpoints["broker"], dispatcher_count).get()
        reports = group.start(peers.req_requests, endpoints["broker"], None, count, 50,
                              {"direction": peers.Direction.CSQ, "command": "enumerate"})
        return summary(reports.get(timeout=600), count)


# -- 5: broadcasts --------------------------------------------------------------------------

def _broadcast(publish: str, subscribe: str, count: int, size: int, interval: float) -> dict:
    return _broadcast_with(publish, subscribe, count, size, interval)


def _broadcast_with(publish: str, subscribe: str, count: int, size: int, interval: float,
                    pub_curve=None, sub_curve=None) -> dict:
    """``_broadcast``, the publisher and subscriber CURVE clients with these keys (see peers)."""
    with processes() as group:
        go = MP.Queue()  # the subscriber puts a token once probes arrive: the subscription is in place
        group.queues.append(go)
        results = group.start(peers.subscriber, subscribe, count, go, 2000, sub_curve)
        group.start(peers.publisher, publish, count, size, go, interval, pub_curve)
        result = results.get(timeout=600)
        received = len(result["latencies_ns"])
        out = summary(result, received)
        out["received_percent"] = received / count * 100
        return out


def broadcasts(path: str, count: int, size: int, interval: float) -> dict:
    """Broadcasts of ``size`` bytes through ``path``: a flood (interval 0) or paced."""
    if path == "cauldron_proto broker":
        with broker_process() as (endpoints, _pid):
            return _broadcast(endpoints["publish"], endpoints["subscribe"], count, size, interval)
    with processes() as group:
        xsub, xpub, _pid = group.start(peers.xpub_xsub_device).get()
        return _broadcast(xsub, xpub, count, size, interval)


# -- 6: idle CPU, memory --------------------------------------------------------------------

def idle_cpu(seconds: float, dispatcher_count: int = 0) -> dict:
    """CPU of a broker over ``seconds`` with no traffic but heartbeats to idle dispatchers (T = 1 s)."""
    with broker_process(timeout=1.0) as (endpoints, pid), processes() as group:
        if dispatcher_count:
            group.start(peers.dispatchers, endpoints["broker"], dispatcher_count).get()
        time.sleep(1.0)
        before = peers.cpu_ns(pid)
        time.sleep(seconds)
        return {"idle_cpu_percent": (peers.cpu_ns(pid)["total"] - before["total"]) / (seconds * 1e9) * 100}


def memory_after_clients(clients: int, steps: int = 4, workers: int = 2) -> dict:
    """Broker RSS while ``clients`` distinct clients each connect, make one request and leave.

    The clients come from ``workers`` processes at once, 50 connected at a time each; RSS is
    read after a warm-up of 2,000 clients (the baseline), then after each of ``steps`` equal parts.
    """
    with broker_process() as (endpoints, pid), processes() as group:
        [name] = group.start(peers.dispatchers, endpoints["broker"], 1).get()
        router, started = endpoints["broker"], time.monotonic()

        def wave(first: int, count: int) -> int:
            share = -(-count // workers)
            runs = [group.start(peers.one_shot_clients, router, name, first + i * share, min(share, count - i * share))
                    for i in range(workers) if count > i * share]
            return sum(run.get(timeout=900) for run in runs)

        answered = wave(0, 2000)
        time.sleep(0.5)
        before = peers.rss_bytes(pid)
        rss, step = [], clients // steps
        for index in range(steps):
            answered += wave(2000 + index * step, step)
            time.sleep(0.5)
            rss.append(peers.rss_bytes(pid) / 2**20)
        return {"clients": clients, "answered": answered - 2000, "seconds": time.monotonic() - started,
                "rss_before_mib": before / 2**20, "rss_after_mib": rss[-1], "rss_steps_mib": rss,
                "growth_mib": rss[-1] - before / 2**20}


# -- running them all -------------------------------------------------------------------------

def median_of(runs: int, func, *args) -> dict:
    """Each number of ``func(*args)`` as the median over ``runs`` runs (lists: the median run's)."""
    results = [func(*args) for _ in range(runs)]
    out = {}
    for key, value in results[0].items():
        if isinstance(value, (int, float)):
            out[key] = statistics.median(r[key] for r in results)
        else:
            out[key] = value
    out["runs"] = runs
    return out


def run(quick: bool = False, runs: int = 3, progress=print, reference: str | None = None) -> dict:
    """Every figure; with ``reference`` (the existing broker's command) also its round trips and fan-outs."""
    n1, n64 = (2000, 10000) if quick else (8000, 50000)
    out: dict = {"round_trips_1": {}, "round_trips_64": {}, "round_trips_1mib": {}, "fanout": {},
                 "broadcast_flood": {}, "broadcast_paced": {}}
    for path in PATHS + ((REFERENCE,) if reference else ()):
        progress(f"round trips through {path}")
        out["round_trips_1"][path] = median_of(runs, round_trips, path, 1, n1, None, None, reference)
        out["round_trips_64"][path] = median_of(runs, round_trips, path, 64, n64, None, None, reference)
        if path != REFERENCE:
            out["round_trips_1mib"][path] = median_of(runs, round_trips, path, 1, 100 if quick else 400, None,
                                                      {"payload_size": 1 << 20})
    fanout_counts = (1, 2, 4, 8, 16)
    for count in fanout_counts:
        progress(f"fan-out to {count}")
        out["fanout"][count] = median_of(runs, fanout, count, 300 if quick else 1500)
    if reference:
        out["fanout_reference"] = {}
        for count in fanout_counts:
            progress(f"fan-out to {count} through the {REFERENCE}")
            out["fanout_reference"][count] = median_of(runs, fanout, count, 300 if quick else 1500, reference)
    for path in ("zmq.proxy XSUB/XPUB", "cauldron_proto broker"):
        progress(f"broadcasts through {path}")
        out["broadcast_flood"][path] = median_of(runs, broadcasts, path, 20000 if quick else 100000, 100, 0.0)
        out["broadcast_paced"][path] = median_of(runs, broadcasts, path, 300 if quick else 2000, 100, 0.001)
    progress("idle CPU")
    out["idle"] = median_of(runs, idle_cpu, 2.0 if quick else 5.0)
    out["idle_16"] = median_of(runs, idle_cpu, 2.0 if quick else 5.0, 16)
    progress("memory")
    out["memory"] = memory_after_clients(10000 if quick else 100000)
    return out


if __name__ == "__main__":
    import argparse
    import json

    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--quick", action="store_true", help="fewer round trips and broadcasts (about 1.5 minutes)")
    options.add_argument("--runs", type=int, default=3, help="runs of each figure (its median is reported)")
    args = options.parse_args()
    print(json.dumps(run(quick=args.quick, runs=args.runs), indent=1))
