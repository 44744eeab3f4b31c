"""Sessions of the project's own helpers and tools: client.Service, dispatcher.Service,
cauldron-dispatcher, cauldron-show and cauldron-modify, through our broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager

from cauldron_proto import Direction

from .net import Net, session

# -- sessions: the project's helpers (client.Service, dispatcher.Service) ----------------

@contextmanager
def helper_dispatcher(net: Net, **keywords):
    from cauldron_proto import dispatcher

    config = {"broker": net.addresses["router"], "publish": net.addresses["publish"], "timeout": "5"}
    svc = dispatcher.Service("KTEST", config, "KTEST1", start=False, context=net.context)
    try:
        for name, (ktl_type, value) in keywords.items():
            svc.add_keyword(name, ktl_type, value=value, units="counts" if ktl_type == "integer" else None)
        svc.begin()
        assert svc.wait_registered(5), "the helper dispatcher did not register"
        yield svc
    finally:
        svc.shutdown()


@contextmanager
def helper_client(net: Net):
    from cauldron_proto import client

    config = {"broker": net.addresses["router"], "subscribe": net.addresses["subscribe"], "timeout": "5"}
    with client.Service("KTEST", config, context=net.context) as svc:
        yield svc


@session()
def helpers_read_write(net: Net):
    with helper_dispatcher(net, VALUE=("integer", 1)), helper_client(net) as svc:
        assert svc["VALUE"].read() == "1"
        assert svc["VALUE"].write(43) == "43"
        assert svc["VALUE"].read() == "43"


@session()
def helpers_enumerate_units_locate(net: Net):
    with helper_dispatcher(net, VALUE=("integer", 1), NAME=("string", "hello")), helper_client(net) as svc:
        assert sorted(svc.keywords()) == ["NAME", "VALUE"]
        svc["VALUE"].units()
        assert svc.locate()


@session()
def helpers_monitor_broadcast(net: Net):
    import queue

    seen = queue.Queue()
    with helper_dispatcher(net, TICK=("integer", 0)) as disp, helper_client(net) as svc:
        svc["TICK"].monitor(lambda value: seen.put(value), prime=False)
        time.sleep(0.5)  # let the subscription reach the dispatcher's PUB through the relay
        disp["TICK"].set(17)
        seen.get(timeout=5)


@session()
def tools_dispatcher_show_modify(net: Net):
    """The command-line tools as processes: cauldron-dispatcher, cauldron-show, cauldron-modify."""
    def tool(name, *args):
        return [sys.executable, "-c", f"import sys; from cauldron_proto.cli.keywords import {name}; sys.exit({name}())",
                "--router", net.addresses["router"], "--publish", net.addresses["publish"],
                "--subscribe", net.addresses["subscribe"], *args]

    disp = subprocess.Popen(tool("dispatcher_main", "-s", "KTEST", "-n", "KTEST1", "-k", "VALUE:integer=5"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        disp.stdout.readline()  # it says when it serves
        show = subprocess.run(tool("show_main", "-s", "KTEST", "VALUE"), capture_output=True, text=True, timeout=20)
        assert show.returncode == 0, show.stderr
        modify = subprocess.run(tool("modify_main", "-s", "KTEST", "VALUE=7"), capture_output=True, text=True,
                                timeout=20)
        assert modify.returncode == 0, modify.stderr
    finally:
        disp.send_signal(signal.SIGINT)
        disp.wait(10)


@session()
def helper_dispatcher_bad_command(net: Net):
    with helper_dispatcher(net, VALUE=("integer", 1)):
        client = net.dealer()
        client.send(Direction.CDQ, service="KTEST", dispatcher="KTEST1", keyword="VALUE", command="frob")
        client.recv()


@session()
def helper_dispatcher_refusals(net: Net):
    """A write the keyword's validation refuses, and a keyword the dispatcher does not have."""
    with helper_dispatcher(net, VALUE=("integer", 1)) as disp:
        def at_most_100(keyword, value):
            if value > 100:
                raise ValueError("more than 100")
        disp["VALUE"].validate = at_most_100
        client = net.dealer()
        client.send(Direction.CDQ, service="KTEST", dispatcher="KTEST1", keyword="VALUE", command="modify",
                    payload="500")
        assert client.recv().payload == "Write to VALUE refused: more than 100"
        client.send(Direction.CDQ, service="KTEST", dispatcher="KTEST1", keyword="NOSUCH", command="update")
        assert client.recv().payload == "Unknown keyword 'NOSUCH' for 'KTEST'"
