"""Sessions of our broker driven by raw peers: inquiries, registration, client commands,
routing, fan-out, heartbeat and expiry, the existing broker's defects, the pub/sub relay."""

from __future__ import annotations

import time


from cauldron_proto import Direction, Message, encode

from .net import T, Net, Peer, session

# -- sessions: the broker ---------------------------------------------------------------

@session()
def inquiry_req(net: Net):
    check = net.req()
    check.send(Direction.UBQ, command="check")
    check.recv()


@session()
def inquiry_any_command(net: Net):
    peer = net.dealer()
    peer.send(Direction.UBQ, service="KTEST", command="ping")
    peer.recv()


@session()
def welcome_confirmed(net: Net):
    disp = net.dealer()
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="welcome")
    disp.recv()


@session()
def ready_and_heartbeat_get_no_reply(net: Net):
    disp = net.dispatcher()
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="heartbeat", payload="1764326400.25")
    disp.quiet(0.3)


@session()
def dispatcher_unknown_command(net: Net):
    disp = net.dispatcher(ready=False)
    disp.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="hello")
    disp.recv()


@session()
def dispatcher_error_discarded(net: Net):
    disp = net.dispatcher()
    disp.send(Direction.DBE, service="KTEST", dispatcher="disp1", command="hello", payload="oops")
    disp.send(Direction.UBQ, command="check")
    disp.recv()


@session()
def lookup(net: Net):
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="lookup")
    client.recv()


@session()
def locate_no(net: Net):
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="locate")
    client.recv()


@session()
def locate_yes(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="locate")
    client.recv()


@session()
def status(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="status")
    client.recv()


@session()
def client_unknown_command(net: Net):
    client = net.dealer()
    client.send(Direction.CBQ, service="KTEST", command="frobnicate")
    client.recv()


# -- sessions: routing to one dispatcher ------------------------------------------------

def _round_trip(disp: Peer, client: Peer, name="disp1", **fields) -> Message:
    client.send(Direction.CDQ, service=fields.pop("service", "KTEST"), **fields)
    query = disp.recv()
    disp.answer(query, "42", dispatcher=name)
    return client.recv()


@session()
def query_by_dispatcher_name(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    _round_trip(disp, client, dispatcher="disp1", keyword="VALUE", command="update")


@session()
def query_from_req_client(net: Net):
    disp, client = net.dispatcher(), net.req()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="modify", payload="43")
    query = disp.recv()
    disp.answer(query, "43", dispatcher="disp1")
    client.recv()


@session()
def query_dispatcher_not_available(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="ghost", keyword="VALUE", command="update")
    client.recv()


@session()
def query_no_dispatcher_for_keyword(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", keyword="NOPE", command="update")
    client.recv()


@session()
def query_ambiguous(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", command="update")
    client.recv()


@session()
def query_routed_by_learned_keyword(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    _round_trip(disp, client, dispatcher="disp1", keyword="VALUE", command="update")
    _round_trip(disp, client, keyword="VALUE", command="update")
    _round_trip(disp, client, keyword="value", command="update")


@session()
def query_error_relayed(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="frob")
    query = disp.recv()
    disp.error(query, "Bad command 'frob'!", dispatcher="disp1")
    client.recv()


@session()
def service_name_case_insensitive(net: Net):
    disp, client = net.dispatcher(service="ktest"), net.dealer()
    _round_trip(disp, client, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    client.send(Direction.CBQ, service="Ktest", command="locate")
    client.recv()


@session()
def dispatcher_name_case_sensitive(net: Net):
    net.dispatcher()
    client = net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="DISP1", keyword="VALUE", command="update")
    client.recv()


# -- sessions: fan-out ------------------------------------------------------------------

@session()
def fanout_no_dispatchers(net: Net):
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", command="enumerate")
    client.recv()


def _fanout(net: Net, answers: list[tuple[str, str, object]], command="enumerate", keyword=None):
    disps = [(net.dispatcher(name=name), name, kind, payload) for name, kind, payload in answers]
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", keyword=keyword, command=command, payload=keyword)
    for disp, name, kind, payload in disps:
        copy = disp.recv()
        (disp.answer if kind == "P" else disp.error)(copy, payload, dispatcher=name)
    return client.recv()


@session()
def fanout_one_dispatcher(net: Net):
    _fanout(net, [("disp1", "P", "VALUE:TICK")])


@session()
def fanout_two_joined(net: Net):
    _fanout(net, [("disp1", "P", "ALPHA"), ("disp2", "P", "BETA")])


@session()
def fanout_none_usable(net: Net):
    _fanout(net, [("disp1", "E", "Bad command 'enumerate'!"), ("disp2", "P", None)])


@session()
def fanout_one_usable_of_two(net: Net):
    _fanout(net, [("disp1", "E", "Bad command 'enumerate'!"), ("disp2", "P", "GAMMA")])


@session()
def identify_cache(net: Net):
    disp = net.dispatcher()
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", keyword="VALUE", command="identify", payload="VALUE")
    copy = disp.recv()
    disp.answer(copy, "integer", dispatcher="disp1")
    client.recv()
    client.send(Direction.CSQ, service="KTEST", keyword="value", command="identify", payload="value")
    client.recv()
    disp.quiet(0.3)


# -- sessions: heartbeat and expiry (broker heartbeat period T) -------------------------

@session(timeout=T)
def heartbeat_sent_and_answered(net: Net):
    disp = net.dispatcher(answer_heartbeats=False)
    beat = disp.recv(4 * T)
    disp.beat_answer(beat)
    beat = disp.recv(4 * T)
    disp.beat_answer(beat)


@session(timeout=T)
def no_heartbeat_before_ready(net: Net):
    disp = net.dispatcher(ready=False, answer_heartbeats=False)
    disp.quiet(2 * T)


@session(timeout=T)
def expiry_answers_pending_request(net: Net):
    disp, client = net.dispatcher(answer_heartbeats=False), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    client.recv(8 * T)
    client.send(Direction.CBQ, service="KTEST", command="locate")
    client.recv()
    disp.sock.recv_multipart()  # the forwarded query, left unanswered


@session(timeout=T)
def heartbeat_keeps_dispatcher_alive(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    disp.quiet(7 * T)
    _round_trip(disp, client, dispatcher="disp1", keyword="VALUE", command="update")


@session(timeout=T)
def fanout_completes_on_expiry(net: Net):
    live, silent = net.dispatcher(name="disp1"), net.dispatcher(name="disp2", answer_heartbeats=False)
    client = net.dealer()
    client.send(Direction.CSQ, service="KTEST", command="enumerate")
    copy = live.recv()
    live.answer(copy, "ALPHA", dispatcher="disp1")
    silent.sock.recv_multipart()
    live_until = time.monotonic() + 8 * T
    while time.monotonic() < live_until:
        try:
            client.recv(0.05)
            break
        except TimeoutError:
            live.quiet(0.01)


@session(timeout=T)
def expired_dispatcher_served_again(net: Net):
    """A dispatcher silent past 5 T answers a heartbeat again, as a stalled existing one does."""
    disp, client = net.dispatcher(service="testsvc", answer_heartbeats=False), net.dealer()
    client.send(Direction.CDQ, service="testsvc", dispatcher="disp1", keyword="STRING", command="update", payload="")
    disp.recv()
    while client.recv(7 * T).direction != Direction.CDE:  # Dispatcher Timed Out
        pass
    disp.send(Direction.DBQ, service="testsvc", dispatcher="disp1", command="heartbeat", payload="1795870850.2")
    check = disp.send(Direction.UBQ, command="check")
    while disp.recv().identifier != check.identifier:
        pass
    client.send(Direction.CDQ, service="testsvc", dispatcher="disp1", keyword="STRING", command="update", payload="")
    while disp.recv().direction != Direction.CDQ:
        pass


# -- sessions: defects of the existing broker that ours avoids --------------------------

@session()
def reregister_answers_pending(net: Net):
    old, client = net.dispatcher(), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    old.recv()
    new = net.dispatcher()
    client.recv()
    _round_trip(new, client, dispatcher="disp1", keyword="VALUE", command="update")


@session()
def duplicate_reply_relayed_once(net: Net):
    disp, client = net.dispatcher(), net.dealer()
    client.send(Direction.CDQ, service="KTEST", dispatcher="disp1", keyword="VALUE", command="update")
    query = disp.recv()
    disp.answer(query, "42", dispatcher="disp1")
    disp.answer(query, "42", dispatcher="disp1")
    client.recv()
    client.quiet(0.3)


@session()
def held_name_told_to_welcome(net: Net):
    """A heartbeat answer for a name another socket holds: told to welcome, once per T."""
    net.dispatcher()
    other = net.dealer()
    beat = other.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="heartbeat", payload="1795870850.2")
    assert other.recv().direction == Direction.DBE
    other.send(Direction.DBQ, service="KTEST", dispatcher="disp1", command="heartbeat", payload="1795870850.3",
               identifier=beat.identifier)
    check = other.send(Direction.UBQ, command="check")
    assert other.recv().identifier == check.identifier  # no second DBE before it


# -- sessions: publish/subscribe relay --------------------------------------------------

@session()
def broadcast_relayed(net: Net):
    sub = net.sub("KTEST")
    pub = net.pub("KTEST")
    pub.send_multipart(encode(Message.new(Direction.CDB, service="KTEST", dispatcher="disp1", keyword="TICK",
                                          command="broadcast", payload="17")))
    assert sub.poll(2000)
    sub.recv_multipart()


@session()
def broadcast_topic_filtering(net: Net):
    ours, other = net.sub("KTEST"), net.sub("KOTHER")
    pub = net.pub("KTEST", "KOTHER")
    pub.send_multipart(encode(Message.new(Direction.CDB, service="KTEST", dispatcher="disp1", keyword="TICK",
                                          command="broadcast", payload="18")))
    assert ours.poll(2000)
    ours.recv_multipart()
    assert not other.poll(300)
