"""Routing core benchmark: microseconds of core work per request, no sockets.

Figures, each the median of --repeat runs, against the codec floor measured in the same run
(decode + encode of the same frames: the least any router that reads its messages must do):

1. a routed request (CDQ in, forwarded; CDP in, relayed): one round trip;
2. a fan-out (CSQ) to 1, 4 and 16 dispatchers, every dispatcher answering;
3. memory: books after --clients distinct clients made one request each (should be empty).

    python benchmarks/routing_core.py [--repeat 5] [--number 20000] [--clients 100000]
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from cauldron_proto import BrokerCore, Message, decode, encode

DELIM = (b"",)


def registered(n: int) -> BrokerCore:
    core = BrokerCore("tcp://localhost:6511", timeout=5.0)
    for i in range(n):
        for command in ("welcome", "ready"):
            message = Message.new("DBQ", service="KTEST", dispatcher=f"disp{i}", command=command, prefix=DELIM)
            core.handle(f"D{i}".encode(), encode(message), 0.0)
    return core


def round_trip(core: BrokerCore, client: bytes = b"C1"):
    """One CDQ forwarded and its CDP relayed; returns a callable doing that once."""
    ident = bytes(range(16))
    request = encode(Message.new("CDQ", service="KTEST", dispatcher="disp0", keyword="VALUE",
                                 command="update", identifier=ident, prefix=DELIM))
    [forwarded] = core.handle(client, request, 1.0)
    reply = encode(decode(forwarded[1:]).reply("42", dispatcher="disp0"))
    core.handle(b"D0", reply, 1.0)

    def once():
        core.handle(client, request, 1.0)
        core.handle(b"D0", reply, 1.0)
    return once, [request, reply]


def fan_out(n: int):
    core = registered(n)
    request = encode(Message.new("CSQ", service="KTEST", command="enumerate", identifier=b"i" * 16, prefix=DELIM))
    copies = core.handle(b"C1", request, 1.0)
    replies = [(c[0], encode(decode(c[1:]).reply(f"K{i}", dispatcher=f"disp{i}"))) for i, c in enumerate(copies)]
    for peer, reply in replies:
        core.handle(peer, reply, 1.0)

    def once():
        core.handle(b"C1", request, 1.0)
        for peer, reply in replies:
            core.handle(peer, reply, 1.0)
    return once, [request] + [r for _, r in replies]


def floor(frame_lists):
    return lambda: [encode(decode(f)) for f in frame_lists]


def per_call_us(fn, number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=100000)
    opt = parser.parse_args()
    rows = [("routed request (CDQ + CDP)", *round_trip(registered(1)))]
    for n in (1, 4, 16):
        rows.append((f"fan-out to {n} dispatcher{'s' * (n > 1)}", *fan_out(n)))
    print(f"{'what':34} {'core us':>9} {'codec floor us':>15} {'ratio':>6}")
    for name, fn, frames in rows:
        number = max(opt.number // len(frames), 100)
        ours, base = per_call_us(fn, number, opt.repeat), per_call_us(floor(frames), number, opt.repeat)
        print(f"{name:34} {ours:9.2f} {base:15.2f} {ours / base:6.1f}")
    core = registered(1)
    for i in range(opt.clients):
        round_trip(core, client=i.to_bytes(5, "big"))
    kept = sum(len(table) for table in core.requests.at.values())
    print(f"after {opt.clients} distinct clients: {len(core.registry.services)} service(s), "
          f"{kept} request(s) in flight, {len(core.registry.by_peer)} dispatcher socket(s) remembered")


if __name__ == "__main__":
    main()
