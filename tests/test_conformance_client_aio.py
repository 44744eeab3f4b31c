"""The client conformance suite against the asyncio client: commands that read, write and
monitor with aio.Service (each one ``asyncio.run`` of a few lines) pass it strict."""

from __future__ import annotations

import json
import shlex
import sys

from cauldron_proto.cli import conformance as cli
from cauldron_proto.conformance import load_cases

CASES = load_cases(suite="client")

PREAMBLE = ("import asyncio, sys; from cauldron_proto import aio; "
            "service, router, subscribe, keyword = sys.argv[1:5]; "
            "config = dict(broker=router, subscribe=subscribe, timeout=1)\n")
READ = PREAMBLE + """
async def main():
    async with aio.Service(service, config) as svc:
        print(await svc[keyword].read())
asyncio.run(main())
"""
WRITE = PREAMBLE + """
async def main():
    async with aio.Service(service, config) as svc:
        print(await svc[keyword].write(sys.argv[5]))
asyncio.run(main())
"""
MONITOR = PREAMBLE + """
async def main():
    async with aio.Service(service, config) as svc:
        async for value in svc[keyword].monitor(prime=False):
            print(value.ascii)
            break
asyncio.run(main())
"""


def command(code: str, *extra: str) -> str:
    return shlex.join([sys.executable, "-c", code, "{service}", "{router}", "{subscribe}", "{keyword}", *extra])


def test_the_aio_client_passes_the_client_suite_strict(tmp_path, capsys):
    report = tmp_path / "report.json"
    status = cli.main(["client", "--read", command(READ), "--write", command(WRITE, "{value}"),
                       "--monitor", command(MONITOR), "--json", str(report), "--strict"])
    out = capsys.readouterr().out
    assert status == 0, out
    results = {r["id"]: r["status"] for r in json.loads(report.read_text())["results"]}
    assert results == {c.id: "pass" for c in CASES}
