#!/usr/bin/env python
"""Attack a broker on loopback, one peer at a time, beside an honest dispatcher and client.

    python scripts/attack.py [--attack NAME ...] [--list] [--attack-seconds 20] [--rss-cap 3072]
                             [--broker-command CMD] [--timeout 1.0] [--json FILE] [--markdown FILE]

Per attack (``scripts/attackers.py`` holds them; ``--list`` names them): a fresh broker
(``cauldron-broker`` on ephemeral loopback ports, or ``--broker-command``, e.g. ``"python3
/work/shared/reference/run_broker.py {router} {publish} {subscribe}"``: the placeholders are
filled with ``tcp://127.0.0.1:PORT`` on free ports, ``{router_port}`` and so on with the port
alone, and ``BROKER_TIMEOUT`` is set to ``--timeout``), an honest ``dispatcher.Service`` process serving ``KHONEST.VALUE`` (a new
value, so a broadcast, every 0.1 s) and an honest raw-DEALER client process reading it 20
times a second on a fixed schedule, plus a SUB counting its broadcasts. Phases: the honest
peers alone (``--baseline-seconds``); the attacker's process (at most ``--attack-seconds``,
60 at most; ended early when the broker's RSS passes ``--rss-cap`` MB or the broker dies);
``--settle-seconds`` (3) after the attacker left, then ``--after-seconds`` more of reads. The
broker's VmRSS is sampled every 0.1 s (above twice the cap the suite kills it, and says so).
Every child is stopped and reaped on the way out, Ctrl-C too.

Per attack: broker alive (or the signal that ended it), RSS before, peak and 3 s after the
attacker left; the honest reads sent alone, during and after (answered, lost = no answer within
``--read-timeout``, duplicated, error replies, wrong = not the honest dispatcher's value; p50,
p99); p99 during / p99 alone. Targets (issue 19): broker alive; RSS peak < 256 MB; RSS 3 s after
within 50 MB of the start; no read lost or answered twice; every answer the honest value; p99
during within 20x p99 alone. Exit status 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import zmq

from attackers import ATTACKS, HONEST_DISPATCHER, HONEST_KEYWORD, HONEST_SERVICE, read_query
from soak import rss_kb

from cauldron_proto import decode, dispatcher, encode
from cauldron_proto.testing import ChildProcess, NothingReceivedError, PeerSockets, broker_process

HERE = Path(__file__).resolve().parent
TARGETS = {"rss_peak_mb": 256, "rss_after_growth_mb": 50, "p99_ratio": 20}


# -- the honest peers, each in its own process -----------------------------------------------

def serve_dispatcher(args) -> int:
    """The honest dispatcher: KHONEST.VALUE set to honest.N every 0.1 s until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    config = {"broker": args.router, "publish": args.publish, "timeout": repr(args.timeout)}
    with dispatcher.Service(HONEST_SERVICE, config, HONEST_DISPATCHER, start=False) as svc:
        svc.add_keyword(HONEST_KEYWORD, "string", "honest.0")
        svc.begin()
        if not svc.wait_registered(30):
            print("not registered", flush=True)
            return 1
        print("registered", flush=True)
        published = 0
        while not stop.wait(0.1):
            published += 1
            svc[HONEST_KEYWORD].set(f"honest.{published}")
        print(json.dumps({"published": published, "registrations": svc.registrations}), flush=True)
    return 0


class HonestReads:
    """The honest client's reads by identifier: [sent at, latency, answers, outcome]."""

    def __init__(self):
        self.reads: dict[bytes, list] = {}
        self.ready = False

    def sent(self, identifier: bytes, at: float, outcome: str | None = None) -> None:
        self.reads[identifier] = [at, None, 0, outcome]

    def answered(self, frames: list[bytes], now: float) -> None:
        answer = decode(frames)
        read = self.reads.get(answer.identifier)
        if read is None:
            return
        read[2] += 1
        if read[2] == 1:
            read[1] = now - read[0]
            payload = answer.payload if isinstance(answer.payload, str) else repr(answer.payload)
            read[3] = (f"error: {payload}" if answer.is_error else
                       "ok" if payload.startswith("honest.") else f"wrong: {payload[:60]}")
            self.ready = self.ready or read[3] == "ok"

    def pending(self) -> bool:
        return any(read[2] == 0 and read[3] is None for read in self.reads.values())


def serve_client(args) -> int:
    """The honest client: a read every 1/rate s until SIGTERM (then wait for answers up to
    --read-timeout) or SIGUSR1 (the broker is gone: no wait); prints what became of each."""
    drain: list[float] = []
    signal.signal(signal.SIGTERM, lambda *_: drain.append(args.read_timeout))
    signal.signal(signal.SIGUSR1, lambda *_: drain.append(0.0))
    context, book, broadcasts = zmq.Context(), HonestReads(), []
    peers = PeerSockets(context)
    try:
        dealer = peers.socket(zmq.DEALER, args.router)
        sub = peers.socket(zmq.SUB, args.subscribe, subscribe=HONEST_SERVICE.lower().encode())
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(sub, zmq.POLLIN)
        next_read, announced = time.monotonic(), False
        while not drain:
            now = time.monotonic()
            if now >= next_read:
                _read(dealer, book, now)
                next_read = max(next_read + 1 / args.rate, now - 1.0)
            _take(poller, dealer, sub, book, broadcasts, max(0.0, next_read - time.monotonic()))
            if book.ready and not announced:
                print("ready", flush=True)
                announced = True
        end = time.monotonic() + drain[0]
        while book.pending() and time.monotonic() < end:
            _take(poller, dealer, sub, book, broadcasts, 0.05)
        settle = time.monotonic() + 0.2  # a late second answer
        while time.monotonic() < settle:
            _take(poller, dealer, sub, book, broadcasts, 0.05)
    finally:
        peers.close()
        context.term()
    print(json.dumps({"reads": list(book.reads.values()), "broadcasts": broadcasts}), flush=True)
    return 0


def _read(dealer: zmq.Socket, book: HonestReads, now: float) -> None:
    request = read_query(HONEST_SERVICE, HONEST_DISPATCHER, HONEST_KEYWORD).with_prefix(b"")
    try:
        dealer.send_multipart(encode(request), zmq.NOBLOCK)
        book.sent(request.identifier, now)
    except zmq.Again:  # no broker to queue it for: lost
        book.sent(request.identifier, now, outcome="unsent")


def _take(poller, dealer, sub, book: HonestReads, broadcasts: list, seconds: float) -> None:
    ready = dict(poller.poll(min(seconds, 0.05) * 1000))
    now = time.monotonic()
    while dealer in ready:
        try:
            book.answered(dealer.recv_multipart(zmq.NOBLOCK), now)
        except zmq.Again:
            break
    while sub in ready:
        try:
            sub.recv_multipart(zmq.NOBLOCK)
            broadcasts.append(now)
        except zmq.Again:
            break


# -- the broker and its memory ------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(args) -> ChildProcess:
    """``cauldron-broker`` on ephemeral loopback ports, or ``--broker-command`` on free ports."""
    if args.broker_command is None:
        return broker_process(timeout=args.timeout)
    ports = {"router": free_port(), "publish": free_port(), "subscribe": free_port()}
    places = {**{name: f"tcp://127.0.0.1:{port}" for name, port in ports.items()},
              **{f"{name}_port": port for name, port in ports.items()}}
    endpoints = {"broker": places["router"], "publish": places["publish"], "subscribe": places["subscribe"]}
    broker = ChildProcess([word.format(**places) for word in shlex.split(args.broker_command)],
                          env={"BROKER_TIMEOUT": repr(args.timeout)})
    broker.endpoints = endpoints
    return broker


class RssWatch(threading.Thread):
    """The broker's VmRSS every 0.1 s, as (time, MB); above ``kill_mb`` it kills the broker."""

    def __init__(self, pid: int, kill_mb: float):
        super().__init__(daemon=True, name="rss watch")
        self.pid, self.kill_mb = pid, kill_mb
        self.samples: list[tuple[float, float]] = []
        self.killed = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            kb = rss_kb(self.pid)
            if kb is None:  # gone (a zombie has no VmRSS)
                continue
            self.samples.append((time.monotonic(), kb / 1024))
            if kb / 1024 > self.kill_mb and not self.killed:
                os.kill(self.pid, signal.SIGKILL)
                self.killed = True

    def latest(self) -> float | None:
        return round(self.samples[-1][1], 1) if self.samples else None

    def peak(self, since: float) -> float | None:
        values = [mb for t, mb in self.samples if t >= since]
        return round(max(values), 1) if values else None

    def stop(self) -> None:
        self._done.set()
        self.join(5)


# -- one attack ---------------------------------------------------------------------------------

def child_argv(script: Path, *words: str) -> list[str]:
    return [sys.executable, str(script), *words]


def honest_peer(args, role: str, endpoints: dict, waits_for: str) -> ChildProcess:
    peer = ChildProcess(child_argv(Path(__file__), "--serve", role, "--router", endpoints["broker"],
                                   "--publish", endpoints["publish"], "--subscribe", endpoints["subscribe"],
                                   "--timeout", repr(args.timeout), "--rate", repr(args.rate),
                                   "--read-timeout", repr(args.read_timeout)))
    try:
        line = peer.read_line(30).strip()
        if line != waits_for:
            raise RuntimeError(f"the honest {role} said {line!r}; stderr: {peer.stderr_text()[-500:]!r}")
    except BaseException:
        peer.stop()
        raise
    return peer


def finish(child: ChildProcess, sig: int, timeout: float) -> dict:
    """Send ``sig``, give the child ``timeout`` s to exit, stop it anyway: its last JSON line."""
    if child.popen.poll() is None:
        child.popen.send_signal(sig)
    try:
        child.wait(timeout)
    except TimeoutError:
        pass
    child.stop(5)
    found = {}
    while True:
        try:
            line = child.read_line(0)
        except NothingReceivedError:
            return found
        if line.startswith("{"):
            found = json.loads(line)


def attack_phase(name: str, args, broker: ChildProcess, watch: RssWatch) -> tuple[str, dict]:
    """The attacker's process until it is done, the cap, the deadline or the broker's death."""
    attacker = ChildProcess(child_argv(HERE / "attackers.py", name, "--router", broker.endpoints["broker"],
                                       "--publish", broker.endpoints["publish"],
                                       "--subscribe", broker.endpoints["subscribe"], "--broker-pid", str(broker.pid),
                                       "--seconds", repr(args.attack_seconds), "--timeout", repr(args.timeout)))
    deadline, why = time.monotonic() + args.attack_seconds + 5.0, "done"
    try:
        while attacker.popen.poll() is None:
            if broker.popen.poll() is not None:
                why = "broker died"
            elif (watch.latest() or 0) > args.rss_cap:
                why = "RSS cap"
            elif time.monotonic() > deadline:
                why = "deadline"
            else:
                time.sleep(0.1)
                continue
            break
    finally:
        stats = finish(attacker, signal.SIGTERM, 5.0)
    if "stopped_by" in stats:
        stats["stderr"] = attacker.stderr_text()[-300:]
    return why, stats


def run_attack(name: str, args) -> dict:
    """A fresh broker and honest peers, the three phases, everything stopped: the figures."""
    with start_broker(args) as broker:
        watch = RssWatch(broker.pid, kill_mb=2 * args.rss_cap)
        watch.start()
        try:
            with honest_peer(args, "dispatcher", broker.endpoints, "registered") as disp, \
                    honest_peer(args, "client", broker.endpoints, "ready") as client:
                alone = time.monotonic()
                time.sleep(args.baseline_seconds)
                before, attacked = watch.latest(), time.monotonic()
                ended, attacker = attack_phase(name, args, broker, watch)
                left = time.monotonic()
                time.sleep(max(0.0, left + args.settle_seconds - time.monotonic()))
                after = watch.latest() if broker.popen.poll() is None else None
                time.sleep(args.after_seconds)
                end, alive = time.monotonic(), broker.popen.poll() is None
                honest = finish(client, signal.SIGTERM if alive else signal.SIGUSR1, args.read_timeout + 5)
                served = finish(disp, signal.SIGTERM, 10)
        finally:
            watch.stop()
        status = broker.popen.poll()
    times = {"alone": (alone, attacked), "during": (attacked, left), "after": (left, end)}
    reads = {key: phase(honest.get("reads", []), honest.get("broadcasts", []), *span, args.read_timeout)
             for key, span in times.items()}
    result = {"attack": name, "ended": ended, "attack_s": round(left - attacked, 1),
              "broker": {"alive": alive, "exit": exit_name(status) if not alive else None,
                         "killed_at_twice_the_cap": watch.killed, "said": last_words(broker) if not alive else None},
              "rss_mb": {"before": before, "peak": watch.peak(attacked), "after": after},
              "reads": reads, "p99_ratio": ratio(reads["during"]["p99_ms"], reads["alone"]["p99_ms"]),
              "attacker": attacker, "dispatcher": served}
    result["missed"] = missed(result)
    return result


def exit_name(status: int | None) -> str | None:
    if status is None or status >= 0:
        return None if status is None else f"exit {status}"
    try:
        return signal.Signals(-status).name
    except ValueError:
        return f"signal {-status}"


def last_words(broker: ChildProcess) -> str:
    lines = [line for line in broker.stderr_text().splitlines() if line.strip()]
    failed = [line for line in lines if "Assertion" in line or "Error" in line]
    return (failed or lines or [""])[-1][-200:]


def ratio(during: float | None, alone: float | None) -> float | None:
    return round(during / alone, 1) if during is not None and alone else None


def phase(reads: list, broadcasts: list, start: float, end: float, read_timeout: float) -> dict:
    """The honest reads sent in [start, end): what became of them."""
    mine = [r for r in reads if start <= r[0] < end]
    answered = [r for r in mine if r[2] and r[1] <= read_timeout]
    latencies = sorted(r[1] for r in answered)
    outcomes: dict[str, int] = {}
    for r in mine:
        if r not in answered or r[3] != "ok":
            key = r[3] if r in answered else "lost" if r[3] != "unsent" else "unsent"
            outcomes[key] = outcomes.get(key, 0) + 1
    return {"sent": len(mine), "answered": len(answered), "lost": len(mine) - len(answered),
            "duplicated": sum(r[2] > 1 for r in mine),
            "errors": sum(r[3].startswith("error") for r in answered),
            "wrong": sum(r[3].startswith("wrong") for r in answered),
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "broadcasts": sum(start <= t < end for t in broadcasts), "outcomes": outcomes}


def percentile(ordered: list[float], p: float) -> float | None:
    return round(ordered[int(p * (len(ordered) - 1))] * 1000, 2) if ordered else None


def missed(result: dict) -> list[str]:
    """The issue's targets this attack missed."""
    rss, reads, out = result["rss_mb"], result["reads"].values(), []
    if not result["broker"]["alive"]:
        out.append("broker died")
    if rss["peak"] is None or rss["peak"] >= TARGETS["rss_peak_mb"]:
        out.append(f"RSS peak >= {TARGETS['rss_peak_mb']} MB")
    if rss["after"] is None or rss["before"] is None:
        out.append("no RSS after (no broker)")
    elif rss["after"] - rss["before"] > TARGETS["rss_after_growth_mb"]:
        out.append(f"RSS after > start + {TARGETS['rss_after_growth_mb']} MB")
    if any(p["lost"] or p["duplicated"] for p in reads):
        out.append("reads lost or duplicated")
    if any(p["errors"] or p["wrong"] for p in reads):
        out.append("wrong or error answers")
    if result["p99_ratio"] is None or result["p99_ratio"] > TARGETS["p99_ratio"]:
        out.append(f"p99 during > {TARGETS['p99_ratio']}x alone")
    return out


# -- the report ---------------------------------------------------------------------------------

def _reads(p: dict) -> str:
    text = f"{p['answered']}/{p['sent']}"
    extra = [f"{p[k]} {k}" for k in ("lost", "duplicated", "errors", "wrong") if p[k]]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _ms(p: dict) -> str:
    return f"{p['p50_ms']} / {p['p99_ms']}"


def markdown(results: list[dict]) -> str:
    head = ("| attack | broker | RSS MB start / peak / +3 s | reads alone | reads during | reads after "
            "| p50 / p99 ms alone | p50 / p99 ms during | p99 ratio | attacker | missed |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['attack']} | suite failed: {r['error']} |" + " |" * 8 + " suite failed |")
            continue
        b, rss, reads = r["broker"], r["rss_mb"], r["reads"]
        broker = "alive" if b["alive"] else f"**died** ({b['exit']}{', killed at 2x cap' if b['killed_at_twice_the_cap'] else ''})"
        stats = ", ".join(f"{k} {v}" for k, v in r["attacker"].items() if k not in ("stderr",))
        rows.append(f"| {r['attack']} | {broker} | {rss['before']} / {rss['peak']} / {rss['after']} "
                    f"| {_reads(reads['alone'])} | {_reads(reads['during'])} | {_reads(reads['after'])} "
                    f"| {_ms(reads['alone'])} | {_ms(reads['during'])} | {r['p99_ratio']} "
                    f"| {r['ended']} after {r['attack_s']} s; {stats} | {'; '.join(r['missed']) or 'none'} |")
    return "\n".join(rows) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attack", action="append", choices=list(ATTACKS), metavar="NAME",
                   help="run this attack (repeatable; default: all, in --list order)")
    p.add_argument("--list", action="store_true", help="list the attacks and exit")
    p.add_argument("--broker-command", metavar="CMD",
                   help="run this broker instead of cauldron-broker; {router} {publish} {subscribe} are "
                        "filled with tcp://127.0.0.1:PORT, {router_port} {publish_port} {subscribe_port} with PORT")
    p.add_argument("--timeout", type=float, default=1.0, help="the broker's heartbeat period T (s)")
    p.add_argument("--baseline-seconds", type=float, default=5.0, help="the honest peers alone")
    p.add_argument("--attack-seconds", type=float, default=20.0, help="at most (capped at 60)")
    p.add_argument("--settle-seconds", type=float, default=3.0,
                   help="after the attacker left, RSS is read \"after\" this much later")
    p.add_argument("--after-seconds", type=float, default=3.0, help="more reads after that")
    p.add_argument("--rss-cap", type=float, default=3072.0, help="MB of broker RSS that end an attack")
    p.add_argument("--rate", type=float, default=20.0, help="honest reads per second")
    p.add_argument("--read-timeout", type=float, default=15.0, help="a read unanswered this long is lost (s)")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the table there too")
    p.add_argument("--serve", choices=["dispatcher", "client"], help=argparse.SUPPRESS)
    p.add_argument("--router", help=argparse.SUPPRESS)
    p.add_argument("--publish", help=argparse.SUPPRESS)
    p.add_argument("--subscribe", help=argparse.SUPPRESS)
    return p


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_suite(args) -> list[dict]:
    """Every attack asked for, in turn; stops early (with what it has) on Ctrl-C or SIGTERM."""
    results: list[dict] = []
    try:
        for name in args.attack or list(ATTACKS):
            print(f"attack.py: {name} ...", file=sys.stderr, flush=True)
            try:
                results.append(run_attack(name, args))
            except Exception as exc:  # noqa: BLE001 - the suite goes on; the failure is reported
                results.append({"attack": name, "error": f"{type(exc).__name__}: {exc}"[:300],
                                "missed": ["suite failed"]})
            print(f"attack.py: {name}: missed {results[-1]['missed'] or 'nothing'}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("attack.py: interrupted; every process it started is stopped", file=sys.stderr)
        results.append({"attack": "(interrupted)", "error": "interrupted", "missed": ["interrupted"]})
    return results


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.serve:
        return (serve_dispatcher if args.serve == "dispatcher" else serve_client)(args)
    if args.list:
        for name, (_, what) in ATTACKS.items():
            print(f"{name:30} {what}")
        return 0
    args.attack_seconds = min(args.attack_seconds, 60.0)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupted)  # every child stopped on the way out
    results = run_suite(args)
    table = markdown(results)
    print(table, end="")
    if args.markdown:
        Path(args.markdown).write_text(table, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps({"targets": TARGETS, "settings": vars(args), "attacks": results},
                                              indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["missed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
