"""Broker benchmarks, each against its baseline measured in the same run.

Client, broker and dispatchers run in separate processes over tcp loopback. Figures:

1. one request outstanding (REQ): no broker (REQ straight to a REP worker), the C-level
   forwarding device ``zmq.proxy(ROUTER, DEALER)``, our broker;
2. 64 requests in flight (DEALER): the same three paths;
3. broker CPU time per round trip, from the broker process's own accounting (/proc);
4. fan-out (CSQ) latency with 1, 2, 4, 8 and 16 dispatchers;
5. broadcast throughput and latency through the XSUB/XPUB relay (against ``zmq.proxy``);
6. idle CPU of a broker with nothing to do, and its resident memory after many distinct
   clients have each made one request.

    python benchmarks/broker.py [--quick]   (run_all.py runs this with the codec figures)
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402

MP = multiprocessing.get_context("spawn")


class Processes:
    """Processes started for one measurement; all stopped on exit."""

    def __init__(self):
        self.started: list = []
        self.queues: list = []  # kept alive until the children have unpickled them

    def start(self, target, *args) -> multiprocessing.Queue:
        queue = MP.Queue()
        self.queues.append(queue)
        proc = MP.Process(target=target, args=(queue, *args), daemon=True)
        proc.start()
        self.started.append(proc)
        return queue

    def stop(self):
        for proc in self.started:
            if proc.is_alive():
                proc.terminate()
        for proc in self.started:
            proc.join(5)


@contextmanager
def processes():
    group = Processes()
    try:
        yield group
    finally:
        group.stop()


@contextmanager
def broker_process(timeout: float = 5.0):
    """Our broker in its own process: yields (endpoints, pid)."""
    stop = MP.Event()
    with processes() as group:
        queue = group.start(peers.our_broker, stop, timeout)
        endpoints, pid = queue.get(timeout=30)
        try:
            yield endpoints, pid
        finally:
            stop.set()
            group.started[0].join(10)


def summary(result: dict, count: int) -> dict:
    lat = sorted(result["latencies_ns"])
    return {
        "rate_per_s": count / (result["wall_ns"] / 1e9),
        "p50_us": lat[len(lat) // 2] / 1e3,
        "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3,
    }


def _client(group: Processes, inflight: int, address: str, envelope, count: int) -> dict:
    if inflight == 1:
        queue = group.start(peers.req_client, address, envelope, count)
    else:
        queue = group.start(peers.dealer_client, address, envelope, count, inflight)
    return summary(queue.get(timeout=300), count)


def round_trips_direct(inflight: int, count: int) -> dict:
    with processes() as group:
        address = group.start(peers.rep_worker).get(timeout=30)
        return _client(group, inflight, address, peers.request("worker"), count)


def round_trips_device(inflight: int, count: int) -> dict:
    with processes() as group:
        front, back, pid = group.start(peers.proxy_device).get(timeout=30)
        group.start(peers.rep_worker, back).get(timeout=30)
        cpu0 = peers.cpu_seconds(pid)
        result = _client(group, inflight, front, peers.request("worker"), count)
        result["cpu_us_per_rt"] = (peers.cpu_seconds(pid) - cpu0) / count * 1e6
        return result


def round_trips_broker(inflight: int, count: int) -> dict:
    with broker_process() as (endpoints, pid):
        with processes() as group:
            names = group.start(peers.dispatchers, endpoints["broker"], 1).get(timeout=30)
            cpu0 = peers.cpu_seconds(pid)
            result = _client(group, inflight, endpoints["broker"], peers.request(names[0]), count)
            result["cpu_us_per_rt"] = (peers.cpu_seconds(pid) - cpu0) / count * 1e6
            return result


def fanout(dispatcher_count: int, count: int) -> dict:
    with broker_process() as (endpoints, _pid):
        with processes() as group:
            group.start(peers.dispatchers, endpoints["broker"], dispatcher_count).get(timeout=30)
            queue = group.start(peers.fanout_client, endpoints["broker"], count)
            return summary(queue.get(timeout=300), count)


def _broadcast(publish: str, subscribe: str, count: int, size: int) -> dict:
    with processes() as group:
        go = MP.Queue()  # the subscriber puts a token once probes arrive: the subscription is in place
        results = group.start(peers.subscriber, subscribe, count, go)
        group.start(peers.publisher, publish, count, size, go)
        result = results.get(timeout=300)
        received = len(result["latencies_ns"])
        out = summary(result, received)
        out["received"] = received
        return out


def broadcast_device(count: int, size: int) -> dict:
    with processes() as group:
        xsub, xpub, _pid = group.start(peers.xpub_xsub_device).get(timeout=30)
        return _broadcast(xsub, xpub, count, size)


def broadcast_broker(count: int, size: int) -> dict:
    with broker_process() as (endpoints, _pid):
        return _broadcast(endpoints["publish"], endpoints["subscribe"], count, size)


def idle_cpu(seconds: float) -> dict:
    with broker_process(timeout=0.1) as (_endpoints, pid):
        time.sleep(0.5)
        cpu0 = peers.cpu_seconds(pid)
        time.sleep(seconds)
        return {"idle_cpu_percent": (peers.cpu_seconds(pid) - cpu0) / seconds * 100}


def memory_after_clients(clients: int) -> dict:
    """Broker RSS before and after ``clients`` distinct client identities made one request each."""
    with broker_process() as (endpoints, pid):
        with processes() as group:
            names = group.start(peers.dispatchers, endpoints["broker"], 1).get(timeout=30)
            before = peers.rss_bytes(pid)
            ctx = zmq.Context()
            try:
                envelope = peers.request(names[0])
                for batch in range(0, clients, 500):
                    socks = []
                    for index in range(batch, min(clients, batch + 500)):
                        sock = ctx.socket(zmq.DEALER)
                        sock.linger = 0
                        sock.routing_id = b"client-%d" % index
                        sock.connect(endpoints["broker"])
                        sock.send_multipart([b"", *envelope])
                        socks.append(sock)
                    for sock in socks:
                        sock.recv_multipart()
                        sock.close()
            finally:
                ctx.term()
            time.sleep(1.0)
            after = peers.rss_bytes(pid)
            return {"clients": clients, "rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20,
                    "growth_mib": (after - before) / 2**20}


def median_of(runs: int, func, *args) -> dict:
    """Each figure of ``func(*args)`` as the median over ``runs`` runs."""
    results = [func(*args) for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def run(quick: bool = False, runs: int = 3) -> dict:
    n1, n64 = (2000, 10000) if quick else (10000, 50000)
    out: dict = {"round_trips_1": {}, "round_trips_64": {}, "fanout": {}, "broadcast": {}}
    for label, func in (("no broker", round_trips_direct), ("zmq.proxy device", round_trips_device),
                        ("cauldron_proto broker", round_trips_broker)):
        out["round_trips_1"][label] = median_of(runs, func, 1, n1)
        out["round_trips_64"][label] = median_of(runs, func, 64, n64)
    for count in (1, 2, 4, 8, 16):
        out["fanout"][count] = median_of(runs, fanout, count, 300 if quick else 1000)
    nb = 20000 if quick else 100000
    out["broadcast"]["zmq.proxy XSUB/XPUB"] = median_of(runs, broadcast_device, nb, 100)
    out["broadcast"]["cauldron_proto broker"] = median_of(runs, broadcast_broker, nb, 100)
    out["idle"] = median_of(runs, idle_cpu, 3.0 if quick else 10.0)
    out["memory"] = memory_after_clients(10000 if quick else 100000)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
