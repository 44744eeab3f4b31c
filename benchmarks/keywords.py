"""Benchmark of the client and dispatcher helpers: keyword reads and broadcasts through a broker.

    python benchmarks/keywords.py [--reads 3000] [--threads 8] [--concurrency 64]

The broker and the dispatcher helper each run in their own process (multiprocessing,
"spawn"); the client runs here. Measured in the same run:
* ``client.Keyword.read()`` round trips, one at a time (rate, p50, p99);
* the same requests from a raw DEALER built with the codec (the floor the helpers add to);
* ``aio.Keyword.read()`` (the asyncio client), one at a time;
* reads from ``--threads`` threads at once through one ``client.Service``;
* ``--concurrency`` requests in flight at once: threads on one ``client.Service``, tasks on
  one ``aio.Service``, and the raw DEALER keeping that many requests outstanding;
* broadcasts: values set on the dispatcher, received by a ``monitor`` callback (rate).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import zmq

from cauldron_proto import Direction, Message, aio, client, decode, dispatcher, encode
from cauldron_proto.broker import ZMQBroker
from cauldron_proto.testing import open_peers

ANY = "tcp://127.0.0.1:*"


def run_broker(report, stop) -> None:
    broker = ZMQBroker("bench-broker", ANY, ANY, ANY, ANY, timeout=1.0)
    broker.start()
    report.put(dict(broker.endpoints))
    stop.wait()
    broker.stop(timeout=5)


def run_dispatcher(config, report, stop, commands) -> None:
    with dispatcher.Service("KBENCH", config, "BENCH1", start=False) as svc:
        svc.add_keyword("VALUE", "integer", 7)
        svc.add_keyword("TICK", "integer", 0)
        svc.begin()
        svc.wait_registered(10)
        report.put("ready")
        while not stop.is_set():
            try:
                count = commands.get(timeout=0.1)
            except Exception:
                continue
            for n in range(1, count + 1):
                svc["TICK"].set(n)


def timed(call, count: int) -> dict:
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"rate_per_s": count / elapsed, "p50_us": latencies[len(latencies) // 2] * 1e6,
            "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6}


@contextmanager
def raw_dealer(config: dict) -> Iterator[zmq.Socket]:
    """A DEALER on a context of its own, connected to the broker; closed, and the context ended, after."""
    ctx = zmq.Context()
    try:
        with open_peers(ctx) as peers:
            yield peers.socket(zmq.DEALER, config["broker"])
    finally:
        ctx.term()


def read_request() -> Message:
    """A read of VALUE from BENCH1, as the raw clients send it (behind the DEALER's delimiter)."""
    return Message.new(Direction.CDQ, service="kbench", dispatcher="BENCH1", keyword="VALUE", command="update",
                       payload="")


def raw_reads(config: dict, count: int) -> dict:
    with raw_dealer(config) as sock:
        def read() -> None:
            request = read_request()
            sock.send_multipart([b"", *encode(request)])
            while decode(sock.recv_multipart()).identifier != request.identifier:
                pass

        return timed(read, count)


def raw_pipelined(config: dict, count: int, in_flight: int) -> dict:
    """A raw DEALER keeping ``in_flight`` reads outstanding until ``count`` are answered."""
    with raw_dealer(config) as sock:
        def send() -> None:
            sock.send_multipart([b"", *encode(read_request())])

        start = time.perf_counter()
        sent = 0
        for _ in range(min(in_flight, count)):
            send()
            sent += 1
        for _ in range(count):
            decode(sock.recv_multipart())
            if sent < count:
                send()
                sent += 1
        return {"rate_per_s": count / (time.perf_counter() - start)}


def aio_reads(config: dict, count: int, in_flight: int) -> dict:
    """``count`` reads through one aio.Service from ``in_flight`` tasks at once (1: one at a time)."""
    async def run() -> dict:
        async with aio.Service("KBENCH", config, timeout=10) as svc:
            keyword = await svc.keyword("VALUE")
            if in_flight == 1:
                latencies = []
                start = time.perf_counter()
                for _ in range(count):
                    t0 = time.perf_counter()
                    await keyword.read()
                    latencies.append(time.perf_counter() - t0)
                elapsed = time.perf_counter() - start
                latencies.sort()
                return {"rate_per_s": count / elapsed, "p50_us": latencies[len(latencies) // 2] * 1e6,
                        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6}
            per_task = count // in_flight

            async def reader() -> None:
                for _ in range(per_task):
                    await keyword.read()

            start = time.perf_counter()
            await asyncio.gather(*(reader() for _ in range(in_flight)))
            return {"rate_per_s": per_task * in_flight / (time.perf_counter() - start)}

    return asyncio.run(run())


def threaded_reads(svc: client.Service, count: int, threads: int) -> dict:
    keyword = svc["VALUE"]
    per_thread = count // threads
    workers = [threading.Thread(target=lambda: [keyword.read() for _ in range(per_thread)]) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"rate_per_s": per_thread * threads / (time.perf_counter() - start)}


def broadcasts(svc: client.Service, commands, count: int) -> dict:
    done = threading.Event()
    seen = []
    svc["TICK"].monitor(lambda v: (seen.append(v.value), v.value == count and done.set()), prime=False)
    time.sleep(0.5)  # let the subscription reach the dispatcher (slow joiner)
    start = time.perf_counter()
    commands.put(count)
    done.wait(60)
    elapsed = time.perf_counter() - start
    return {"rate_per_s": len(seen) / elapsed, "received": len(seen), "sent": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight at once (default 64)")
    parser.add_argument("--broadcasts", type=int, default=20000)
    args = parser.parse_args()
    spawn = mp.get_context("spawn")
    report, stop, commands = spawn.Queue(), spawn.Event(), spawn.Queue()
    processes = [spawn.Process(target=run_broker, args=(report, stop))]
    processes[0].start()
    endpoints = report.get(timeout=30)
    config = {**endpoints, "timeout": "1.0"}
    processes.append(spawn.Process(target=run_dispatcher, args=(config, report, stop, commands)))
    processes[1].start()
    assert report.get(timeout=30) == "ready"
    try:
        with client.Service("KBENCH", config, timeout=10) as svc:
            keyword = svc["VALUE"]
            n = args.concurrency
            results = {
                "client.Keyword.read(), 1 at a time": timed(keyword.read, args.reads),
                "raw DEALER + codec, 1 at a time": raw_reads(config, args.reads),
                "aio.Keyword.read(), 1 at a time": aio_reads(config, args.reads, 1),
                f"client.Keyword.read(), {args.threads} threads": threaded_reads(svc, args.reads, args.threads),
                f"client.Keyword.read(), {n} threads": threaded_reads(svc, args.reads, n),
                f"raw DEALER + codec, {n} in flight": raw_pipelined(config, args.reads, n),
                f"aio.Keyword.read(), {n} tasks": aio_reads(config, args.reads, n),
                "broadcast -> monitor callback": broadcasts(svc, commands, args.broadcasts),
            }
    finally:
        stop.set()
        for process in processes:
            process.join(10)
    for name, result in results.items():
        figures = ", ".join(f"{key} {value:,.0f}" for key, value in result.items())
        print(f"{name:<42} {figures}")


if __name__ == "__main__":
    main()
