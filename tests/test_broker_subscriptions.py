"""The relay's book of subscriptions (no I/O): what is applied, passed upstream, cut off."""

from __future__ import annotations

from cauldron_proto.broker.core.limits import Limits
from cauldron_proto.broker.subscriptions import Decision, Subscriptions, subscription_size


def test_subscriptions_past_the_limit_are_refused_and_come_back_when_a_holder_goes():
    book = Subscriptions(limit=3)
    assert book.subscribe(1, b"A") == Decision(True, True)
    assert book.subscribe(2, b"A") == Decision(True, False)  # A is already upstream
    assert book.subscribe(1, b"A") == Decision(True, False) and book.held == 2  # again: held once
    assert book.subscribe(2, b"B") == Decision(True, True)
    assert book.subscribe(3, b"C") == Decision(False, False) and book.refused_held == 1
    assert book.unsubscribe(3, b"C") == Decision(False, False) and book.refused_held == 0
    assert book.unsubscribe(1, b"A") == Decision(True, False)  # 2 still holds A
    assert sorted(book.gone(2)) == [b"A", b"B"] and book.held == 0
    assert book.subscribe(3, b"C") == Decision(True, True)


def test_a_subscriber_sending_refused_ones_past_the_limit_is_to_be_cut_off():
    book = Subscriptions(limit=2)
    book.subscribe(1, b"A"), book.subscribe(1, b"B")
    decisions = [book.subscribe(7, b"X%d" % n) for n in range(3)]
    assert [d.cut_off for d in decisions] == [False, False, True]
    assert book.gone(7) == [] and book.refused_held == 0 and book.held == 2


def test_inproc_subscribers_are_one_multiset_and_never_cut_off():
    book = Subscriptions(limit=2)
    assert book.subscribe(None, b"A") == Decision(True, True)
    assert book.subscribe(None, b"A") == Decision(True, False)
    assert book.subscribe(None, b"B") == Decision(False, False)  # nothing to cut off
    assert book.unsubscribe(None, b"A") == Decision(True, False)
    assert book.unsubscribe(None, b"A") == Decision(True, True) and book.held == 0


def test_the_xpub_takes_a_subscription_to_the_longest_name_and_a_handshake():
    assert subscription_size(Limits()) == 4 * 128 + 2 + 10 + 8
    assert subscription_size(Limits(max_name_length=8)) == 512


def test_connections_with_refused_subscriptions_wait_for_room():
    book = Subscriptions(limit=1)
    book.subscribe(1, b"A"), book.subscribe(2, b"B"), book.subscribe(3, b"C")
    assert book.waiting() == []  # no room
    book.unsubscribe(1, b"A")
    assert book.waiting() == [2, 3]
