#!/usr/bin/env python
"""Interoperation with the existing Cauldron implementation (alexrudy/Cauldron), mix by mix.

Runs the existing ``ktl`` client, ``DFW`` dispatcher and ``ZMQBroker`` as peers of ours, in
every mix, and compares what each client sees:

======  ================  ================  ================
mix     client            broker            dispatcher
======  ================  ================  ================
ref     existing          existing          existing   (the baseline)
A       existing          ours              existing
B       ours              existing          existing
C1      existing          existing          ours
C2      existing          ours              ours
D       ours              ours              existing
E       ours              ours              ours       (control)
======  ================  ================  ================

Each mix runs the same operations (reads of every KTL type, an empty value, a keyword with
no value; writes of a value, ``""``, non-ASCII text, a refused value, an unchanged value;
typed writes of booleans and enumerated values; units; identify of a missing keyword; the
keyword list; monitors with callbacks, an empty value among them). The existing client's
outcome in every mix must equal its outcome in mix ``ref`` (errors compared by exception
type, since texts differ by design); our client's outcomes must be the values the existing
dispatcher holds. Then, through our broker: an existing dispatcher stalled past EXPIRY_MULTIPLE T
(SIGSTOP, SIGCONT) must be served again with no message storm and every request answered
once, and an existing dispatcher restarted under the same name must serve an existing
client that used its keywords before, without a client restart.

This script does not install or set up the existing implementation: it needs a Python in
which ``import Cauldron`` works (``--reference-python``, with its environment) and the
drivers of ``../shared/reference`` (``--reference-dir``). Run from the repository::

    python scripts/interop.py --reference-python PY --reference-dir ../shared/reference

The existing dispatcher runs one responder thread (``--pool 1``). With more (its default is
8), it can answer an enumerated keyword's ``update`` before the ``units`` request the existing
client sent just before it. The existing client then never completes that read: it times out,
with the existing broker too, and in the runs seen that process's later enumerated operations
failed as well. The replies are all on the wire (see docs/interop.md), so the comparison would measure
that race, not the broker. ``--pool 4`` shows it.

It prints one line per operation and mix, a summary table (markdown) and exits 1 if any
comparison failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator

import zmq

from cauldron_proto import EXPIRY_MULTIPLE, ZMQBroker, client, dispatcher
from cauldron_proto.processes import terminate

SERVICE = "testsvc"
DISPATCHER = "disp1"

# The existing client, driven line by line: each stdin line is a JSON [op, *args]; each
# stdout line the JSON outcome ["ok", repr] or ["error", exception type, text].
REFERENCE_CLIENT = r'''
import json, sys, threading
from Cauldron.config import read_configuration
read_configuration(sys.argv[1])
from Cauldron.api import use
use("zmq")
from Cauldron import ktl
svc = ktl.Service(sys.argv[2])
seen = {}
lock = threading.Lock()
def callback(keyword):
    with lock:
        seen.setdefault(keyword.name, []).append(keyword["ascii"])
def run(op, *args):
    if op == "read":
        return svc[args[0]].read(binary=args[1])
    if op == "write":
        svc[args[0]].write(args[1], wait=True)
        return svc[args[0]].read()
    if op == "units":
        return svc[args[0]]["units"]
    if op == "has":
        svc[args[0]]
        return True
    if op == "keywords":
        return sorted(svc.keywords())
    if op == "monitor":
        svc[args[0]].callback(callback)
        svc[args[0]].monitor()
        return True
    if op == "monitored":
        with lock:
            return list(seen.get(args[0], []))
    raise ValueError(op)
print(json.dumps(["ready"]), flush=True)
for line in sys.stdin:
    op = json.loads(line)
    if op[0] == "quit":
        break
    try:
        out = ["ok", repr(run(*op))]
    except BaseException as exc:
        out = ["error", type(exc).__name__, str(exc)[:200]]
    print(json.dumps(out), flush=True)
import os
os._exit(0)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Addresses:
    def __init__(self) -> None:
        self.router, self.publish, self.subscribe = (f"tcp://127.0.0.1:{free_port()}" for _ in range(3))

    def config(self, folder: str, timeout: float, pool: int) -> str:
        """The existing peers' configuration file; ``pool``: the existing dispatcher's responders."""
        path = os.path.join(folder, f"cauldron-{self.router.rsplit(':', 1)[1]}.cfg")
        with open(path, "w") as f:
            f.write(f"[zmq]\nbroker = {self.router}\npublish = {self.publish}\nsubscribe = {self.subscribe}\n"
                    f"timeout = {timeout}\nheartbeat = yes\npool = {pool}\nautobroker = no\n[core]\ntimeout = 5\n")
        return path

    def ours(self) -> dict:
        return {"broker": self.router, "publish": self.publish, "subscribe": self.subscribe}


class Reference:
    """How to run the existing implementation's processes."""

    def __init__(self, python: str, folder: str):
        self.python, self.folder = python, folder

    def process(self, script: str, *args: str, env: dict | None = None, stdin: bool = False) -> subprocess.Popen:
        return subprocess.Popen([self.python, "-W", "ignore", os.path.join(self.folder, script), *args],
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env={**os.environ, **(env or {})})


@contextmanager
def stopping(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    try:
        yield process
    finally:
        terminate(process, 5)


def wait_line(process: subprocess.Popen, prefix: str, timeout: float = 15.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"{process.args[:3]} did not print {prefix!r}")


@contextmanager
def our_broker(addresses: Addresses, timeout: float) -> Iterator[ZMQBroker]:
    broker = ZMQBroker("interop", addresses.router, addresses.subscribe, addresses.publish,
                       addresses.subscribe, context=zmq.Context(), timeout=timeout)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(5)
        broker.context.term()


@contextmanager
def reference_broker(ref: Reference, addresses: Addresses, timeout: float) -> Iterator[subprocess.Popen]:
    process = ref.process("run_broker.py", addresses.router, addresses.publish, addresses.subscribe,
                          env={"BROKER_TIMEOUT": repr(timeout), "BROKER_LOGLEVEL": "WARNING"})
    with stopping(process):
        ZMQBroker.check(address=addresses.router, timeout=10) or sys.exit("the existing broker did not start")
        yield process


@contextmanager
def reference_dispatcher(ref: Reference, config: str) -> Iterator[subprocess.Popen]:
    process = ref.process("ref_dispatcher.py", config, "--service", SERVICE, "--dispatcher", DISPATCHER,
                          "--tick", "0.5", "--duration", "600")
    with stopping(process):
        wait_line(process, "[dispatcher] READY")
        yield process


def serve_keywords(svc: dispatcher.Service) -> None:
    """Our dispatcher serving the keywords of the existing driver's ``--set full``."""
    def refuse(keyword, value):
        if value != "ok":
            raise ValueError(f"REFUSE accepts only 'ok', not {value!r}")

    svc.add_keyword("STRING", "string", "hello")
    svc.add_keyword("INTEGER", "integer", 42)
    svc.add_keyword("EMPTY", "string", "")
    svc.add_keyword("NOVALUE", "string")
    svc.add_keyword("REFUSE", "string", "ok", validate=refuse)
    svc.add_keyword("DOUBLE", "double", 3.25)
    svc.add_keyword("BOOL", "boolean", True)
    svc.add_keyword("MODE", "enumerated", 1, enumerators=["Off", "On", "Standby"])
    svc.add_keyword("TEMP", "double", 21.5, units="\u00b0C")
    svc.add_keyword("SLOW", "string", "slow", on_read=lambda keyword: time.sleep(1.5) or keyword.ascii)
    svc.add_keyword("COUNTER", "string", "0")


@contextmanager
def our_dispatcher(addresses: Addresses, timeout: float) -> Iterator[dispatcher.Service]:
    stop = threading.Event()
    with dispatcher.Service(SERVICE, addresses.ours(), DISPATCHER, setup=serve_keywords, timeout=timeout) as svc:
        svc.wait_registered(10)

        def tick() -> None:
            n = 0
            while not stop.wait(0.5):
                n += 1
                svc["COUNTER"].set(str(n))

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield svc
        finally:
            stop.set()
            ticker.join()


class ReferenceClient:
    """The existing client in its own process, one operation per line."""

    def __init__(self, ref: Reference, config: str):
        self.process = subprocess.Popen([ref.python, "-W", "ignore", "-c", REFERENCE_CLIENT, config, SERVICE],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        wait_line(self.process, '["ready"]')

    def __call__(self, *op: Any) -> tuple:
        self.process.stdin.write(json.dumps(op) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        return tuple(json.loads(line)) if line else ("error", "died", "")

    def close(self) -> None:
        with stopping(self.process):
            try:
                self("quit")
            except (BrokenPipeError, OSError):
                pass


class OurClient:
    """Our client, with the same operations (outcomes in the same form)."""

    def __init__(self, addresses: Addresses):
        self.svc = client.Service(SERVICE, addresses.ours(), timeout=5.0)
        self.seen: dict[str, list] = {}

    def __call__(self, *op: Any) -> tuple:
        try:
            return ("ok", repr(self._run(*op)))
        except BaseException as exc:  # noqa: BLE001 - reported, compared by type
            return ("error", type(exc).__name__, str(exc)[:200])

    def _run(self, op: str, *args: Any) -> Any:
        if op == "read":
            return self.svc[args[0]].read(binary=args[1])
        if op == "write":
            self.svc[args[0]].write(args[1])
            return self.svc[args[0]].read()
        if op == "units":
            return self.svc[args[0]].units()
        if op == "has":
            self.svc[args[0]]
            return True
        if op == "keywords":
            return sorted(self.svc.keywords())
        if op == "monitor":
            self.svc[args[0]].monitor(lambda v: self.seen.setdefault(v.keyword, []).append(v.ascii), prime=False)
            time.sleep(0.3)  # the subscription travels to the dispatcher (ZMQ's slow joiner)
            return True
        if op == "monitored":
            return list(self.seen.get(args[0], []))
        raise ValueError(op)

    def close(self) -> None:
        self.svc.shutdown()


#: (label, operation). Monitors are set before the writes they must see.
OPERATIONS: list[tuple[str, tuple]] = [
    *((f"read {k}", ("read", k, False)) for k in ("STRING", "INTEGER", "EMPTY", "NOVALUE", "DOUBLE", "BOOL",
                                                 "MODE", "TEMP")),
    *((f"read {k} binary", ("read", k, True)) for k in ("INTEGER", "DOUBLE", "BOOL", "MODE")),
    ("identify missing keyword", ("has", "NOSUCHKW")),
    ("keyword list", ("keywords",)),
    ("units string", ("units", "TEMP")),
    ("units null", ("units", "STRING")),
    ("units enumerated", ("units", "MODE")),
    ("monitor STRING", ("monitor", "STRING")),
    ("write value", ("write", "STRING", "new value")),
    ("write empty", ("write", "STRING", "")),
    ("write non-ASCII", ("write", "STRING", "\u00b0C \u00fcn\u00efcode")),
    ("write unchanged", ("write", "STRING", "\u00b0C \u00fcn\u00efcode")),
    ("write refused", ("write", "REFUSE", "bad")),
    ("write enumerated name", ("write", "MODE", "Standby")),
    ("read enumerated binary", ("read", "MODE", True)),
    ("write enumerated integer", ("write", "MODE", 1)),
    ("write boolean off", ("write", "BOOL", "off")),
    ("write boolean 1", ("write", "BOOL", "1")),
    ("monitor callbacks", ("monitored", "STRING")),
]

#: Our client's outcomes, by operation label, against the keywords both dispatchers serve.
OUR_EXPECTED = {
    "read STRING": ("ok", "'hello'"), "read INTEGER": ("ok", "'42'"), "read EMPTY": ("ok", "''"),
    "read NOVALUE": ("ok", "None"), "read DOUBLE": ("ok", "'3.25'"), "read BOOL": ("ok", "'1'"),
    "read MODE": ("ok", "'On'"), "read TEMP": ("ok", "'21.5'"),
    "read INTEGER binary": ("ok", "42"), "read DOUBLE binary": ("ok", "3.25"),
    "read BOOL binary": ("ok", "True"), "read MODE binary": ("ok", "1"),
    "identify missing keyword": ("error", "UnknownKeywordError"),
    "keyword list": ("ok", repr(sorted(["BOOL", "COUNTER", "DOUBLE", "EMPTY", "INTEGER", "MODE", "NOVALUE",
                                        "REFUSE", "SLOW", "STRING", "TEMP"]))),
    "units string": ("ok", "'\u00b0C'"), "units null": ("ok", "None"),
    "units enumerated": ("ok", "{'0': 'Off', '1': 'On', '2': 'Standby'}"),
    "monitor STRING": ("ok", "True"),
    "write value": ("ok", "'new value'"), "write empty": ("ok", "''"),
    "write non-ASCII": ("ok", "'\u00b0C \u00fcn\u00efcode'"), "write unchanged": ("ok", "'\u00b0C \u00fcn\u00efcode'"),
    "write refused": ("error", "DispatcherError"),
    "write enumerated name": ("ok", "'Standby'"), "read enumerated binary": ("ok", "2"),
    "write enumerated integer": ("ok", "'On'"), "write boolean off": ("ok", "'0'"), "write boolean 1": ("ok", "'1'"),
    "monitor callbacks": ("ok", "['new value', '', '\u00b0C \u00fcn\u00efcode']"),
}


def outcome_key(outcome: tuple, label: str) -> tuple:
    """What must agree: values exactly; errors by type; keyword lists and monitors as noted."""
    if outcome[0] == "error":
        return ("error", outcome[1])
    if label == "monitor callbacks":  # the existing client also calls back on reads: order varies
        return ("ok", sorted(set(ast.literal_eval(outcome[1]))))
    return tuple(outcome)


def run_operations(peer: Callable[..., tuple]) -> dict[str, tuple]:
    results = {}
    for label, op in OPERATIONS:
        if op[0] == "monitored":
            time.sleep(0.5)  # the last broadcasts arrive
        results[label] = peer(*op)
    return results


@contextmanager
def mix(ref: Reference, folder: str, name: str, client_kind: str, broker_kind: str, dispatcher_kind: str,
        timeout: float, pool: int) -> Iterator[tuple[Callable, Any]]:
    addresses = Addresses()
    config = addresses.config(folder, timeout, pool)
    with ExitStack() as stack:
        broker = stack.enter_context(our_broker(addresses, timeout) if broker_kind == "ours"
                                     else reference_broker(ref, addresses, timeout))
        stack.enter_context(our_dispatcher(addresses, timeout) if dispatcher_kind == "ours"
                            else reference_dispatcher(ref, config))
        peer = ReferenceClient(ref, config) if client_kind == "existing" else OurClient(addresses)
        stack.callback(peer.close)
        yield peer, broker


MIXES = [("ref", "existing", "existing", "existing"), ("A", "existing", "ours", "existing"),
         ("B", "ours", "existing", "existing"), ("C1", "existing", "existing", "ours"),
         ("C2", "existing", "ours", "ours"), ("D", "ours", "ours", "existing"), ("E", "ours", "ours", "ours")]


def compare(results: dict[str, dict[str, tuple]]) -> list[tuple[str, str, str, str]]:
    """(operation, mix, verdict, detail) rows."""
    rows = []
    baseline = results.get("ref", {})
    for name, client_kind, _, _ in MIXES:
        if name not in results:
            continue
        if name == "ref":
            rows += [(label, name, "baseline", repr(outcome)) for label, outcome in results[name].items()]
            continue
        for label, outcome in results[name].items():
            if client_kind == "existing":
                want = baseline.get(label)
                good = want is not None and outcome_key(outcome, label) == outcome_key(want, label)
                detail = f"{outcome!r}" + ("" if good else f" (existing everywhere: {want!r})")
            else:
                want = OUR_EXPECTED[label]
                good = tuple(outcome[:2]) == want
                detail = f"{outcome!r}" + ("" if good else f" (expected {want!r})")
            rows.append((label, name, "pass" if good else "FAIL", detail))
    return rows


def stall_and_restart(ref: Reference, folder: str, timeout: float, pool: int) -> list[tuple[str, str, str, str]]:
    """Through our broker: an existing dispatcher stalled past EXPIRY_MULTIPLE T, then restarted."""
    rows = []
    addresses = Addresses()
    config = addresses.config(folder, timeout, pool)
    with our_broker(addresses, timeout) as broker, reference_dispatcher(ref, config) as disp:
        existing, ours = ReferenceClient(ref, config), OurClient(addresses)
        try:
            for peer in (existing, ours):
                peer("read", "STRING", False)  # identified: from now on routed by learned owner
            stats = broker.core.stats
            disp.send_signal(signal.SIGSTOP)
            theirs: list = []
            reader = threading.Thread(target=lambda: theirs.append(existing("read", "STRING", False)))
            reader.start()
            stalled = ours("read", "STRING", False)
            reader.join()
            time.sleep((EXPIRY_MULTIPLE + 1) * timeout)
            rows.append((f"stalled past {EXPIRY_MULTIPLE} T: in-flight read answered Dispatcher Timed Out", "D",
                         "pass" if stalled[:2] == ("error", "DispatcherTimeoutError") else "FAIL", repr(stalled)))
            rows.append((f"stalled past {EXPIRY_MULTIPLE} T: in-flight read answered Dispatcher Timed Out", "A",
                         "pass" if theirs[0][:2] == ("error", "DispatcherError") and "Timed Out" in theirs[0][2]
                         else "FAIL", repr(theirs[0])))
            before = stats.received + stats.sent
            disp.send_signal(signal.SIGCONT)
            time.sleep(4 * timeout)
            after = stats.received + stats.sent
            rate = (after - before) / (4 * timeout)
            rows.append(("after SIGCONT: broker messages per second (no storm)", "A/D",
                         "pass" if rate < 50 else "FAIL", f"{rate:.1f}/s, readmitted {getattr(stats, 'readmitted', None)}"))
            for name, peer in (("A", existing), ("D", ours)):
                got = peer("read", "STRING", False)
                rows.append(("stalled dispatcher served again, no restart", name,
                             "pass" if got == ("ok", "'hello'") else "FAIL", repr(got)))
            disp.send_signal(signal.SIGUSR1)  # its DFW.Service shuts down
            wait_line(disp, "[dispatcher] SHUTDOWN")
            time.sleep(6 * timeout)  # expired, its service forgotten
            gone = broker.get_service(SERVICE) is None
            disp.send_signal(signal.SIGUSR2)  # a new DFW.Service, same names, new socket
            wait_line(disp, "[dispatcher] READY")
            time.sleep(2 * timeout)
            for name, peer in (("A", existing), ("D", ours)):
                got = peer("read", "STRING", False)
                rows.append(("restarted under the same name, client not restarted", name,
                             "pass" if gone and got == ("ok", "'gen2'") else "FAIL", f"{got!r} (expired first: {gone})"))
            # restarted again at once, its old connection closed before it could expire: the broker
            # checks the name's holder first (its heartbeat cannot go), so it is served within about T
            disp.send_signal(signal.SIGUSR1)
            wait_line(disp, "[dispatcher] SHUTDOWN")
            disp.send_signal(signal.SIGUSR2)
            wait_line(disp, "[dispatcher] READY")
            started, got = time.monotonic(), None
            while time.monotonic() - started < 4 * timeout and got != ("ok", "'gen3'"):
                got = ours("read", "STRING", False)
            waited = time.monotonic() - started
            expired = stats.expired
            for name, peer in (("A", existing), ("D", ours)):
                got = peer("read", "STRING", False)
                rows.append(("restarted at once under the same name, served again within about T", name,
                             "pass" if got == ("ok", "'gen3'") and waited < 4 * timeout else "FAIL",
                             f"{got!r} after {waited:.2f} s (T = {timeout:g} s; expiries so far: {expired})"))
            late = sum(stats.dropped_by_reason.get(reason, 0)  # before, or after, it was registered again
                       for reason in ("reply_from_unregistered_peer", "reply_to_nothing_in_flight"))
            rows.append(("late replies of the stalled dispatcher dropped, not relayed twice", "A/D",
                         "pass" if late >= 2 else "FAIL", f"dropped by reason: {dict(stats.dropped_by_reason)}"))
        finally:
            existing.close()
            ours.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", required=True, help="a Python in which `import Cauldron` works")
    parser.add_argument("--reference-dir", required=True, help="the folder of run_broker.py and ref_dispatcher.py")
    parser.add_argument("--timeout", type=float, default=0.5, help="the brokers' heartbeat period T (seconds)")
    parser.add_argument("--mix", action="append", help="run only these mixes (ref is always run)")
    parser.add_argument("--no-liveness", action="store_true", help="skip the stall and restart scenario")
    parser.add_argument("--pool", type=int, default=1,
                        help="the existing dispatcher's responder threads (its config key pool; default 1: with "
                             "more, it may answer a client's update before its units, and the existing client then "
                             "never completes that enumerated read, whatever the broker)")
    args = parser.parse_args(argv)
    ref = Reference(args.reference_python, args.reference_dir)
    chosen = set(args.mix or [m[0] for m in MIXES]) | {"ref"}
    results: dict[str, dict[str, tuple]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, c, b, d in MIXES:
            if name in chosen:
                with mix(ref, folder, name, c, b, d, args.timeout, args.pool) as (peer, _):
                    results[name] = run_operations(peer)
        rows = compare(results)
        if not args.no_liveness:
            rows += stall_and_restart(ref, folder, args.timeout, args.pool)
    for row in rows:
        print(" | ".join(row))
    failed = [r for r in rows if r[2] == "FAIL"]
    compared = [r for r in rows if r[2] != "baseline"]
    print(f"\n{len(compared) - len(failed)} of {len(compared)} comparisons pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
