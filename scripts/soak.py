#!/usr/bin/env python
"""Load and soak a broker on loopback, accounting for every request.

    python scripts/soak.py [--clients 50] [--dispatchers 4] [--duration 30] [--window 8]
                           [--helpers 4] [--timeout 1.0] [--kill-dispatcher-at SECONDS] [--json FILE]

Starts ``cauldron-broker`` (a process, ephemeral ports) and one ``dispatcher.Service`` per
process (``--dispatchers``), then drives ``--clients`` raw DEALER clients from one thread,
each keeping ``--window`` requests in flight, for ``--duration`` seconds: writes of the
client's own keywords (the reply must carry the value written), reads of shared keywords,
fan-outs (``identify``: one dispatcher's type; ``enumerate``: every keyword of the service),
``locate``. Every write changes a value, so every write is also a broadcast, which two SUB
sockets receive. ``--helpers`` threads use ``client.Service`` (write, then read back).

Accounting: every request is filed under (client, identifier) with what its answer must
say. An answer is checked and crossed off; an answer to something already crossed off is
a duplicate, one the client never asked for is misrouted, one that says the wrong thing is
wrong; whatever is still filed when the run has drained is lost. Broadcasts must carry a
value that was written, per keyword in the order written, never twice. Exit status 1 if
anything was lost, duplicated, misrouted or wrong (or a helper call failed).

``--kill-dispatcher-at SECONDS``: dispatcher 0's process is killed (SIGKILL) that many seconds
into the load. From then on, an answer to a request concerning it (its keywords, its name,
an ``enumerate``) may say what a killed dispatcher makes the broker say, and is counted apart
by text under ``expected``: the error replies ``Dispatcher Timed Out``, ``... is not
available ...``, ``No dispatcher is available ...``, ``... re-registered before answering``,
``... has gone: its connection is closed`` (the broker saw its connection close);
``identify`` answered with the fail sentinel (nobody left knows the keyword); ``enumerate``
without the killed dispatcher's keywords; a helper call on its keyword failing. Any other
error is still wrong, and the run passes when nothing is lost, duplicated, misrouted or wrong.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import zmq

from cauldron_proto import FAIL, Direction, Message, RemoteProtocolError, Text, client, decode, dispatcher
from cauldron_proto.processes import terminate
from cauldron_proto.testing import PeerSockets, broker_process, send

SERVICE = "KLOAD"
SLOTS = 4  # keywords of their own per raw client: one write in flight per keyword


def owner(index: int, dispatchers: int) -> str:
    return f"load{index % dispatchers}"


def own_keyword(client_index: int, slot: int) -> str:
    return f"C{client_index}S{slot}"


def keywords_of(index: int, clients: int, dispatchers: int, helpers: int) -> set[str]:
    """The keywords dispatcher ``index`` serves, upper-cased."""
    own = {own_keyword(c, s).upper() for c in range(index, clients, dispatchers) for s in range(SLOTS)}
    return own | {f"H{h}" for h in range(index, helpers, dispatchers)} | {f"SHARED{index}"}


#: what the broker answers about a dispatcher that died (error replies)
KILLED_TEXTS = (Text.DISPATCHER_TIMED_OUT, Text.DISPATCHER_NOT_AVAILABLE, Text.NO_DISPATCHER_FOR_KEYWORD,
                Text.DISPATCHER_REPLACED, Text.DISPATCHER_GONE)
_KILLED_PATTERNS = [(text, re.compile(re.sub(r"\\\{\w+\\\}", ".*", re.escape(text)))) for text in KILLED_TEXTS]


class Kill:
    """The dispatcher killed mid-run (``--kill-dispatcher-at``): when, who, and what it explains."""

    def __init__(self, at: float | None, args):
        self.at, self.done = at, False
        self.name = owner(0, args.dispatchers)
        self.keywords = keywords_of(0, args.clients, args.dispatchers, args.helpers)

    def concerns(self, name: str | None, keyword: str | None = None) -> bool:
        return self.done and (name == self.name or (keyword or "").upper() in self.keywords)

    def explains(self, answer: Message, kind: str, name: str | None, all_keywords: set) -> str | None:
        """The expected outcome ``answer`` is, a request of ``kind`` to ``name`` after the kill
        (None: none; the answer must be right)."""
        if kind == "enumerate":
            names = {n.upper() for n in answer.payload.split(":")} if isinstance(answer.payload, str) else None
            if self.done and not answer.is_error and names == all_keywords - self.keywords:
                return "enumerate without the killed dispatcher's keywords"
            return None
        if not self.concerns(name):
            return None
        if kind == "identify" and not answer.is_error and answer.payload is FAIL:
            return "identify answered fail"
        if answer.is_error and isinstance(answer.payload, str):
            return next((text for text, pattern in _KILLED_PATTERNS if pattern.fullmatch(answer.payload)), None)
        return None


# -- the peers in their own processes -----------------------------------------------------

def start_dispatchers(endpoints: dict[str, str], args) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, __file__, "--serve-dispatcher", str(index),
                               "--router", endpoints["broker"], "--publish", endpoints["publish"],
                               "--timeout", repr(args.timeout), "--clients", str(args.clients),
                               "--dispatchers", str(args.dispatchers), "--helpers", str(args.helpers)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for index in range(args.dispatchers)]
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != "registered":
            raise RuntimeError(f"a dispatcher did not register: {line!r} (status {proc.poll()})")
    return procs


def serve_dispatcher(args) -> int:
    """In a dispatcher process: serve this dispatcher's keywords until stdin closes."""
    index, count = args.serve_dispatcher, args.dispatchers
    config = {"broker": args.router, "publish": args.publish, "timeout": repr(args.timeout)}
    with dispatcher.Service(SERVICE, config, owner(index, count), start=False) as svc:
        for c in range(index, args.clients, count):
            for slot in range(SLOTS):
                svc.add_keyword(own_keyword(c, slot), "string", "")
        for h in range(index, args.helpers, count):
            svc.add_keyword(f"H{h}", "string", "")
        svc.add_keyword(f"SHARED{index}", "integer", index)
        svc.begin()
        if not svc.wait_registered(30):
            print("not registered", flush=True)
            return 1
        print("registered", flush=True)
        sys.stdin.read()  # until the driver closes our stdin (or kills us)
    return 0


# -- the driver ---------------------------------------------------------------------------

@dataclass
class Report:
    clients: int = 0
    dispatchers: int = 0
    window: int = 0
    seconds: float = 0.0
    requests: int = 0
    answers: int = 0
    by_kind: dict = field(default_factory=dict)
    lost: int = 0
    duplicates: int = 0
    misrouted: int = 0
    wrong: int = 0
    examples: list = field(default_factory=list)
    broadcasts_sent: int = 0
    broadcasts_received: int = 0  #: by all subscribers together
    broadcasts_missed: int = 0  #: subscribers x sent - received (PUB/SUB may drop; not a failure)
    broadcasts_out_of_order: int = 0
    helper_calls: int = 0
    helper_failures: int = 0
    killed_dispatcher: str | None = None  #: --kill-dispatcher-at: its name
    expected: dict = field(default_factory=dict)  #: outcomes the killed dispatcher explains, by text
    latency_ms: dict = field(default_factory=dict)
    broker_rss_kb: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.misrouted or self.wrong or self.helper_failures
                    or self.broadcasts_out_of_order)

    def problem(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)

    def expect(self, text: str) -> None:
        self.expected[text] = self.expected.get(text, 0) + 1


class RawClient:
    """One DEALER client, its requests in flight and what their answers must say."""

    def __init__(self, peers: PeerSockets, index: int, router: str, dispatchers: int, kill: Kill):
        self.sock = peers.socket(zmq.DEALER, router)
        self.index, self.dispatchers, self.kill = index, dispatchers, kill
        self.pending: dict[bytes, tuple] = {}  # identifier -> (kind, sent at, expectation, slot)
        self.answered: set[bytes] = set()
        self.busy = [False] * SLOTS
        self.seq = 0

    def send_one(self, rng: random.Random, report: Report, written: dict) -> None:
        roll, own = rng.random(), owner(self.index, self.dispatchers)
        free = [s for s in range(SLOTS) if not self.busy[s]]
        if roll < 0.5 and free:
            slot = rng.choice(free)
            self.seq += 1
            value, keyword = f"c{self.index}.{self.seq}", own_keyword(self.index, slot)
            request = Message.new(Direction.CDQ, service=SERVICE, dispatcher=own, keyword=keyword,
                                  command="modify", payload=value)
            expect, self.busy[slot] = ("write", value, own), True
            written.setdefault(keyword, {})[self.seq] = value
        elif roll < 0.75:
            d = rng.randrange(self.dispatchers)
            request = Message.new(Direction.CDQ, service=SERVICE, dispatcher=owner(d, self.dispatchers),
                                  keyword=f"SHARED{d}", command="update")
            expect, slot = ("read", str(d), owner(d, self.dispatchers)), None
        elif roll < 0.9:
            keyword = own_keyword(self.index, rng.randrange(SLOTS))
            request = Message.new(Direction.CSQ, service=SERVICE, keyword=keyword, command="identify", payload=keyword)
            expect, slot = ("identify", "string", own), None
        elif roll < 0.95:
            request = Message.new(Direction.CSQ, service=SERVICE, command="enumerate")
            expect, slot = ("enumerate", None, None), None
        else:
            request = Message.new(Direction.CBQ, service=SERVICE, command="locate")
            expect, slot = ("locate", "yes", None), None
        send(self.sock, request, zmq.NOBLOCK)
        self.pending[request.identifier] = (expect, time.monotonic(), slot)
        report.requests += 1
        report.by_kind[expect[0]] = report.by_kind.get(expect[0], 0) + 1

    def receive(self, report: Report, latencies: list, all_keywords: set) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                answer = decode(frames)
            except RemoteProtocolError as exc:
                report.wrong += 1
                report.problem(f"client {self.index}: undecodable answer ({exc})")
                continue
            self._check(answer, report, latencies, all_keywords)

    def _check(self, answer: Message, report: Report, latencies: list, all_keywords: set) -> None:
        ident = answer.identifier
        filed = self.pending.pop(ident, None)
        if filed is None:
            if ident in self.answered:
                report.duplicates += 1
                report.problem(f"client {self.index}: a second answer {answer!r}")
            else:
                report.misrouted += 1
                report.problem(f"client {self.index}: an answer to a request it never sent {answer!r}")
            return
        (kind, payload, name), sent_at, slot = filed
        self.answered.add(ident)
        report.answers += 1
        latencies.append(time.monotonic() - sent_at)
        if slot is not None:
            self.busy[slot] = False
        explained = answer.prefix == (b"",) and self.kill.explains(answer, kind, name, all_keywords)
        if explained:
            report.expect(explained)
            return
        good = answer.prefix == (b"",) and not answer.is_error
        if kind == "enumerate":
            good = good and isinstance(answer.payload, str) and \
                {n.upper() for n in answer.payload.split(":")} == all_keywords
        else:
            good = good and answer.payload == payload and (name is None or answer.dispatcher == name)
        if not good:
            report.wrong += 1
            report.problem(f"client {self.index}: {kind} expected {payload!r} from {name}, got {answer!r}")


class BroadcastWatch:
    """SUB sockets on the service; every broadcast must carry a written value, in order (or be a
    dispatcher announcing its values as it registers: the first, or the last written again)."""

    def __init__(self, peers: PeerSockets, subscribe: str, count: int = 2):
        # the topic our dispatchers (and existing ones) publish under
        self.subs = [peers.socket(zmq.SUB, subscribe, subscribe=SERVICE.lower().encode()) for _ in range(count)]
        self.last_seq: list[dict] = [{} for _ in self.subs]

    def receive(self, report: Report, written: dict) -> None:
        for sub, last in zip(self.subs, self.last_seq):
            while True:
                try:
                    message = decode(sub.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
                report.broadcasts_received += 1
                keyword, value = message.keyword_key, message.payload
                seq = int(value.rsplit(".", 1)[1]) if isinstance(value, str) and "." in value else -1
                if (value == "" and keyword not in last) or (seq >= 0 and seq == last.get(keyword)):
                    continue  # a dispatcher registering announces its values: the first, or the last again
                if written.get(keyword, {}).get(seq) != value or seq <= last.get(keyword, 0):
                    report.broadcasts_out_of_order += 1
                    report.problem(f"broadcast {keyword} = {value!r} not written, or out of order")
                last[keyword] = seq


def helper_loop(index: int, config: dict, stop: threading.Event, report: Report, written: dict,
                lock: threading.Lock, kill: Kill) -> None:
    """A client.Service writing its own keyword and reading it back, until ``stop``; a call
    failing on the killed dispatcher's keyword is expected."""
    with client.Service(SERVICE, config, timeout=10.0) as svc:
        keyword, n = svc[f"H{index}"], 0
        while not stop.is_set():
            n += 1
            value = f"h{index}.{n}"
            written.setdefault(keyword.name, {})[n] = value
            try:
                ok = keyword.write(value) == value and keyword.read() == value
            except Exception as exc:  # noqa: BLE001 - counted and reported
                ok = False
                if kill.concerns(None, keyword.name):
                    with lock:
                        report.helper_calls += 2
                        report.expect(f"helper call failed: {type(exc).__name__}")
                    continue
                report.problem(f"helper {index}: {type(exc).__name__}: {exc}")
            with lock:
                report.helper_calls += 2
                report.helper_failures += not ok


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def drive(endpoints: dict[str, str], args, broker_pid: int | None = None,
          kill_dispatcher: Callable[[], object] | None = None) -> Report:
    """Run the load against the broker at ``endpoints`` (dispatchers already registered);
    ``kill_dispatcher()`` is called ``args.kill_dispatcher_at`` seconds in."""
    report = Report(clients=args.clients, dispatchers=args.dispatchers, window=args.window)
    kill = Kill(args.kill_dispatcher_at if kill_dispatcher else None, args)
    rng, context, written, latencies = random.Random(args.seed), zmq.Context(), {}, []
    peers = PeerSockets(context)
    all_keywords = {own_keyword(c, s).upper() for c in range(args.clients) for s in range(SLOTS)}
    all_keywords |= {f"H{h}" for h in range(args.helpers)} | {f"SHARED{d}" for d in range(args.dispatchers)}
    clients = [RawClient(peers, i, endpoints["broker"], args.dispatchers, kill) for i in range(args.clients)]
    watch = BroadcastWatch(peers, endpoints["subscribe"])
    poller = zmq.Poller()
    for sock in [c.sock for c in clients] + watch.subs:
        poller.register(sock, zmq.POLLIN)
    stop, lock = threading.Event(), threading.Lock()
    helper_config = {"broker": endpoints["broker"], "subscribe": endpoints["subscribe"], "timeout": repr(args.timeout)}
    helpers = [threading.Thread(target=helper_loop, args=(h, helper_config, stop, report, written, lock, kill))
               for h in range(args.helpers)]
    time.sleep(0.3)  # the SUB sockets' subscriptions reach the dispatchers (slow joiner)
    if broker_pid:
        report.broker_rss_kb["start"] = rss_kb(broker_pid)
    started = time.monotonic()
    for helper in helpers:
        helper.start()
    try:
        end = started + args.duration
        while time.monotonic() < end:
            if kill.at is not None and not kill.done and time.monotonic() >= started + kill.at:
                kill.done, report.killed_dispatcher = True, kill.name
                kill_dispatcher()
            for c in clients:
                while len(c.pending) < args.window:
                    c.send_one(rng, report, written)
            _serve(poller, clients, watch, report, written, latencies, all_keywords)
        stop.set()
        drain_end = time.monotonic() + args.drain
        while any(c.pending for c in clients) and time.monotonic() < drain_end:
            _serve(poller, clients, watch, report, written, latencies, all_keywords)
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:  # late duplicates and broadcasts
            _serve(poller, clients, watch, report, written, latencies, all_keywords)
    finally:
        stop.set()
        for helper in helpers:
            helper.join(30)
        report.seconds = round(time.monotonic() - started, 2)
        peers.close()
        context.term()
    if broker_pid:
        report.broker_rss_kb["end"] = rss_kb(broker_pid)
    report.lost = sum(len(c.pending) for c in clients)
    report.broadcasts_sent = sum(len(v) for v in written.values())
    report.broadcasts_missed = len(watch.subs) * report.broadcasts_sent - report.broadcasts_received
    latencies.sort()
    if latencies:
        report.latency_ms = {q: round(latencies[int(p * (len(latencies) - 1))] * 1000, 2)
                             for q, p in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))}
    return report


def _serve(poller, clients, watch, report, written, latencies, all_keywords) -> None:
    ready = dict(poller.poll(20))
    for c in clients:
        if c.sock in ready:
            c.receive(report, latencies, all_keywords)
    watch.receive(report, written)


def run(args) -> Report:
    """Broker and dispatcher processes, the load, then every process stopped."""
    with broker_process(timeout=args.timeout) as broker:
        dispatchers: list[subprocess.Popen] = []
        try:
            dispatchers = start_dispatchers(broker.endpoints, args)
            return drive(broker.endpoints, args, broker.pid, lambda: dispatchers[0].kill() or dispatchers[0].wait())
        finally:
            for proc in dispatchers:
                proc.stdin.close()  # it stops by itself (a killed one is gone already)
            for proc in dispatchers:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    terminate(proc)
                proc.stdout.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--dispatchers", type=int, default=4)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    p.add_argument("--window", type=int, default=8, help="requests in flight per client")
    p.add_argument("--helpers", type=int, default=4, help="client.Service threads (write, read back)")
    p.add_argument("--timeout", type=float, default=1.0, help="the broker's heartbeat period T")
    p.add_argument("--drain", type=float, default=15.0, help="seconds to wait for the last answers")
    p.add_argument("--seed", type=int, default=20261128)
    p.add_argument("--kill-dispatcher-at", type=float, metavar="SECONDS",
                   help="kill dispatcher 0's process (SIGKILL) this many seconds into the load")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--serve-dispatcher", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--router", help=argparse.SUPPRESS)
    p.add_argument("--publish", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.serve_dispatcher is not None:
        return serve_dispatcher(args)
    report = run(args)
    figures = asdict(report)
    figures["rate_per_s"] = round(report.answers / report.seconds) if report.seconds else 0
    figures["ok"] = report.ok
    for key, value in figures.items():
        print(f"{key:24} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
