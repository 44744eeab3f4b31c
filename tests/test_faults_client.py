"""A client process that disappears (SIGKILL) with requests in flight leaves nothing behind in
the broker: the answers that come later go nowhere, and its books hold nothing of it."""

from __future__ import annotations

import zmq

from cauldron_proto import EXPIRY_MULTIPLE, Direction
from cauldron_proto.testing import open_peers, receive, register_dispatcher, send

from .fault_processes import python_process
from .keyword_helpers import WAIT, keyword_broker, wait_for

T = 0.2
READS = 20

# A client helper in its own process: identifies VALUE, then leaves READS reads and one
# fan-out (keywords()) in flight, says so, and waits to be killed.
CLIENT = """
import sys, threading, time
from cauldron_proto import client
svc = client.Service("KVANISH", {"broker": sys.argv[1]}, timeout=60)
keyword = svc["VALUE"]
for _ in range(int(sys.argv[2])):
    threading.Thread(target=keyword.read, daemon=True).start()
threading.Thread(target=svc.keywords, daemon=True).start()
print("sent", flush=True)
time.sleep(60)
"""


def test_vanished_client_leaves_nothing_behind():
    with keyword_broker(timeout=T) as broker, open_peers(zmq.Context()) as peers:
        disp = peers.socket(zmq.DEALER, broker.endpoints["broker"])
        register_dispatcher(disp, "KVANISH", "slow1")
        held = []

        def take_requests() -> None:
            """Play the dispatcher: answer identify at once, hold everything else."""
            while disp.poll(0):
                message = receive(disp)
                if message.command == "heartbeat":
                    send(disp, message.reply("0").with_prefix(b""))
                elif message.command == "identify":
                    send(disp, message.reply("integer", dispatcher="slow1"))
                elif message.direction in (Direction.CDQ, Direction.SDQ):
                    held.append(message)

        def record():
            view = broker.get_service("KVANISH")
            return view.dispatchers["slow1"].in_flight, view.fanouts

        with python_process(CLIENT, broker.endpoints["broker"], str(READS)) as vanishing:
            wait_for(lambda: take_requests() or len(held) == READS + 1, message="every request held")
            assert vanishing.read_line() == "sent\n"
            assert record() == (READS + 1, 1)  # 20 reads and a fan-out copy; one fan-out
            vanishing.kill()
        for message in held:  # answered after the client is gone: relayed to nobody
            send(disp, message.reply("7", dispatcher="slow1"))
        wait_for(lambda: take_requests() or record() == (0, 0), message="nothing left in flight")
        assert set(broker.services) == {"KVANISH"}  # no record of the client anywhere
        disp.close(linger=0)  # the dispatcher leaves too: after EXPIRY_MULTIPLE T nothing at all is left
        wait_for(lambda: not broker.services, timeout=EXPIRY_MULTIPLE * T + WAIT, message="no service left")
        assert broker.core.next_deadline() is None
        peers.close()
        peers.context.term()
