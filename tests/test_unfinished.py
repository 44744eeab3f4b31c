"""The bookkeeping of unfinished messages (broker.unfinished.UnfinishedMessages), without I/O:
what the broker read from each connection against what libzmq took from the kernel."""

from __future__ import annotations

import pytest

from cauldron_proto.broker.unfinished import FRAME_OVERHEAD, UnfinishedMessages, allowance_for

ALLOWANCE = 10_000


def test_a_connection_whose_bytes_grow_past_the_allowance_without_a_message_is_cut():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    assert books.check({7: 100}) == []  # the handshake (counted from nothing: within the allowance)
    assert books.check({7: ALLOWANCE}) == []  # not over yet
    assert books.check({7: ALLOWANCE + 1}) == [7]


def test_messages_read_are_not_counted_as_unfinished():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    took = 100
    for _ in range(50):  # 50 messages of 5,000 bytes in 3 frames, each read before the check
        took += 5_000 + 3 * 9
        books.read(7, 5_000, 3)
        assert books.check({7: took}) == []


def test_a_message_arriving_over_many_checks_within_the_allowance_is_not_cut():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    books.read(7, 40, 2)
    assert books.check({7: 100 + 40}) == []
    for part in range(1, 10):  # half the allowance, a tenth at a time
        assert books.check({7: 140 + part * ALLOWANCE // 20}) == []


def test_a_connection_that_finishes_messages_may_add_heartbeats_for_ever():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    took = 100
    for _ in range(1_000):  # ZMTP PINGs: bytes no message accounts for, between messages
        took += 30
        books.read(7, 10, 1)
        took += 10 + 1
        assert books.check({7: took}) == []
    assert took > ALLOWANCE  # 41,000 bytes no message accounts for, over the whole life


def test_while_messages_may_wait_a_connection_is_cut_only_when_two_checks_find_it_over():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    assert books.check({7: 100}, confirm=True) == []
    assert books.check({7: 200 + ALLOWANCE}, confirm=True) == []  # suspect
    books.read(7, 5_000, 1)  # a waiting message was read after all: no longer suspect
    assert books.check({7: 300 + ALLOWANCE}, confirm=True) == []
    assert books.check({7: 400 + 2 * ALLOWANCE}, confirm=True) == []  # suspect again
    assert books.check({7: 500 + 2 * ALLOWANCE}, confirm=True) == [7]


def test_a_descriptor_accepted_again_starts_afresh():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    books.read(7, 1_000_000, 10)
    books.accepted(7)  # a new connection on the same descriptor: what the old one read is not its credit
    assert books.check({7: 100}) == []
    assert books.check({7: ALLOWANCE + 1}) == [7]


def test_the_allowance_holds_two_of_the_largest_messages():
    assert allowance_for(1 << 20, 16) > 2 * ((1 << 20) + 16 * 9)
    assert FRAME_OVERHEAD >= 9 + 42  # ZMTP's longest frame header and CURVE's box: never counted short


def test_a_check_says_whether_a_connection_holds_part_of_a_message():
    books = UnfinishedMessages(ALLOWANCE)
    books.accepted(7)
    books.check({7: 100})
    assert not books.growing
    books.check({7: 100 + ALLOWANCE // 8})
    assert books.growing
