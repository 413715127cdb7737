"""Bybit ``orderbook.{depth}`` after a lost delta: the learned ``u`` + 1 check and the resync.

Scripted cases for :class:`BybitDepthSync` (learning, gaps, the snapshot boundary),
property tests against a reference book (a sequenced stream that loses deltas never
shows a wrong book; a stream that does not sequence ``u`` never resyncs on continuity),
and :func:`maintain_order_book` in virtual time (the resubscribe request and its
watchdog).
"""

from __future__ import annotations

import itertools
import logging
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

from rxconnector.errors import FeedGapError
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.exchanges.book_sync import APPLIED, IGNORED, Resync
from rxconnector.exchanges.bybit.book_sync import SEQUENCED_AFTER, BybitDepthSync
from rxconnector.models import DepthUpdate, Level
from rxconnector.streams.book_resubscribe import resubscribe_retry_delay
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.orderbook import maintain_order_book

on_next = ReactiveTest.on_next
D = Decimal


def lv(price: int, qty: int) -> Level:
    return (D(price), D(qty))


def msg(
    u: int,
    bids: tuple[Level, ...] = (),
    asks: tuple[Level, ...] = (),
    *,
    snapshot: bool = False,
    seq: int | None = None,
) -> DepthUpdate:
    return DepthUpdate(
        "BTCUSDT",
        u,
        u,
        bids,
        asks,
        event_time=1000 + u,
        received_at=2000.0 + u,
        sequence=u * 10 if seq is None else seq,
        is_snapshot=snapshot,
    )


BIDS = (lv(10, 1), lv(9, 1))
ASKS = (lv(11, 1), lv(12, 1))


def learned(k: int = 3, start: int = 10) -> BybitDepthSync:
    """A machine that has seen a snapshot at ``start`` and ``k`` deltas stepping u by 1."""
    sync = BybitDepthSync(2, sequenced_after=k)
    assert sync.on_update(msg(start, BIDS, ASKS, snapshot=True)) is APPLIED
    for u in range(start + 1, start + k + 1):
        assert sync.on_update(msg(u, (lv(9, u),))) is APPLIED
    assert sync.sequenced
    return sync


class TestLearning:
    """The u + 1 rule is trusted only after it has been seen ``sequenced_after`` times."""

    def test_k_consecutive_steps_of_one_make_the_topic_sequenced(self) -> None:
        sync = BybitDepthSync(2, sequenced_after=3)
        sync.on_update(msg(10, BIDS, ASKS, snapshot=True))
        sync.on_update(msg(11))  # counted against the snapshot's u
        sync.on_update(msg(12))
        assert not sync.sequenced
        sync.on_update(msg(13))
        assert sync.sequenced

    def test_a_jump_while_learning_restarts_the_count(self) -> None:
        sync = BybitDepthSync(2, sequenced_after=3)
        sync.on_update(msg(10, BIDS, ASKS, snapshot=True))
        sync.on_update(msg(11))
        sync.on_update(msg(12))
        assert sync.on_update(msg(15, (lv(10, 7),))) is APPLIED  # no resync while learning
        assert sync.view().bids == (lv(10, 7), lv(9, 1))
        sync.on_update(msg(16))
        sync.on_update(msg(17))
        assert not sync.sequenced
        sync.on_update(msg(18))
        assert sync.sequenced
        assert isinstance(sync.on_update(msg(20)), Resync)

    def test_a_jump_right_after_the_snapshot_counts_too(self) -> None:
        sync = BybitDepthSync(2, sequenced_after=2)
        sync.on_update(msg(10, BIDS, ASKS, snapshot=True))
        sync.on_update(msg(12))
        sync.on_update(msg(13))
        assert not sync.sequenced  # 10 → 12 broke the run; only one step of 1 since

    def test_stale_duplicate_and_backward_messages_neither_count_nor_break(self) -> None:
        sync = BybitDepthSync(2, sequenced_after=3)
        sync.on_update(msg(10, BIDS, ASKS, snapshot=True))
        sync.on_update(msg(11))
        assert sync.on_update(msg(11)) is IGNORED  # duplicate
        assert sync.on_update(msg(9)) is IGNORED  # stale
        assert sync.on_update(msg(14, seq=5)) is IGNORED  # seq went backwards
        sync.on_update(msg(12))
        sync.on_update(msg(13))
        assert sync.sequenced

    def test_the_default_is_twenty_and_must_be_positive(self) -> None:
        assert SEQUENCED_AFTER == 20
        assert BybitDepthSync(2).sequenced_after == 20
        with pytest.raises(ValueError, match="sequenced_after"):
            BybitDepthSync(2, sequenced_after=0)


class TestGap:
    """Once learned, a jump in u drops the book until the next snapshot."""

    def test_a_jump_is_a_gap(self) -> None:
        sync = learned(k=3, start=10)  # at u 13
        outcome = sync.on_update(msg(16, (lv(10, 5),)))
        assert isinstance(outcome, Resync)
        assert outcome.reason.startswith("gap: u=16 after u=13 (2 message(s) lost")
        assert "waiting for the next snapshot" in outcome.reason
        assert not sync.live
        assert sync.on_update(msg(17, (lv(9, 3),))) is IGNORED
        assert sync.on_update(msg(17, BIDS, ASKS, snapshot=True)) is APPLIED
        assert sync.view().bids == BIDS and sync.view().update_id == 17

    def test_what_was_learned_survives_snapshots_and_restarts(self) -> None:
        sync = learned(k=3, start=10)
        assert isinstance(sync.on_update(msg(16)), Resync)
        sync.on_update(msg(20, BIDS, ASKS, snapshot=True))
        sync.on_update(msg(21))
        assert isinstance(sync.on_update(msg(23)), Resync)  # no new learning needed
        assert sync.restart("reconnected") is IGNORED  # no book to drop
        sync.on_update(msg(30, BIDS, ASKS, snapshot=True))
        assert isinstance(sync.restart("reconnected"), Resync)
        sync.on_update(msg(40, BIDS, ASKS, snapshot=True))
        sync.on_update(msg(41))
        assert sync.sequenced and isinstance(sync.on_update(msg(43)), Resync)

    def test_a_jump_at_the_first_delta_after_a_snapshot_resyncs_once_then_relearns(self) -> None:
        sync = learned(k=3, start=10)
        sync.on_update(msg(20, BIDS, ASKS, snapshot=True))
        outcome = sync.on_update(msg(22))
        assert isinstance(outcome, Resync) and "no longer assumed" in outcome.reason
        assert not sync.sequenced
        # A venue that numbers snapshots differently now costs no resync loop:
        sync.on_update(msg(30, BIDS, ASKS, snapshot=True))
        assert sync.on_update(msg(32)) is APPLIED
        for u in (33, 34, 35):
            sync.on_update(msg(u))
        assert sync.sequenced  # relearned from the deltas

    def test_u_equal_one_restarts_the_count_of_a_learned_topic_without_resync(self) -> None:
        sync = learned(k=3, start=10)
        assert sync.on_update(msg(1, BIDS, ASKS, snapshot=True, seq=1)) is APPLIED
        assert sync.on_update(msg(2, seq=2)) is APPLIED

    def test_the_crossed_book_message_names_prices(self) -> None:
        sync = BybitDepthSync(2)
        sync.on_update(msg(1, BIDS, ASKS, snapshot=True))
        outcome = sync.on_update(msg(2, (lv(12, 3),)))
        assert isinstance(outcome, Resync)
        assert "best bid 12 >= best ask 11" in outcome.reason


# -- properties against a reference book ----------------------------------------------------

#: (is_bid, price, qty): bids below 50, asks above, so the true book never crosses
change = st.one_of(
    st.tuples(st.just(True), st.integers(1, 49), st.integers(0, 4)),
    st.tuples(st.just(False), st.integers(51, 99), st.integers(0, 4)),
)
changes = st.lists(change, min_size=1, max_size=4)


class Truth:
    """The venue's book and the messages it would send."""

    def __init__(self, u: int) -> None:
        self.u = u
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.at: dict[int, tuple[tuple[Level, ...], tuple[Level, ...]]] = {}

    def step(self, u: int, levels: list[tuple[bool, int, int]]) -> DepthUpdate:
        """Apply ``levels`` as the message numbered ``u``; return that delta."""
        merged = {(b, p): q for b, p, q in levels}
        for (is_bid, price), qty in merged.items():
            side = self.bids if is_bid else self.asks
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
        self.u = u
        self.at[u] = self.top(2)
        bids = tuple(lv(p, q) for (b, p), q in merged.items() if b)
        asks = tuple(lv(p, q) for (b, p), q in merged.items() if not b)
        return msg(u, bids, asks)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        bids = tuple(lv(p, self.bids[p]) for p in sorted(self.bids, reverse=True)[:n])
        asks = tuple(lv(p, self.asks[p]) for p in sorted(self.asks)[:n])
        return bids, asks

    def snapshot(self) -> DepthUpdate:
        bids, asks = self.top(10**6)
        self.at[self.u] = self.top(2)
        return msg(self.u, bids, asks, snapshot=True)


def check(sync: BybitDepthSync, truth: Truth, outcome: Any) -> None:
    """An emitted book must be the true book at its u."""
    if outcome is APPLIED:
        view = sync.view()
        assert (view.bids, view.asks) == truth.at[view.update_id], view.update_id


class TestNeverWrongAfterALoss:
    """Property: a sequenced stream that loses deltas resyncs and never shows a wrong book."""

    @settings(max_examples=200, deadline=None)
    @given(
        st.integers(1, 25),
        st.integers(0, 10),
        st.lists(st.tuples(st.integers(1, 3), changes), min_size=1, max_size=4),
        st.lists(changes, min_size=40, max_size=80),
        st.lists(st.integers(0, 200), max_size=6),
        st.integers(2, 10**6),
    )
    def test_sequenced_stream_with_lost_deltas(  # type: ignore[no-untyped-def]
        self, k, extra, losses, pool, replays, start
    ) -> None:
        truth = Truth(start)
        sync = BybitDepthSync(2, sequenced_after=k)
        draws = iter(pool)
        deltas: list[DepthUpdate] = []

        def deliver(message: DepthUpdate) -> Any:
            outcome = sync.on_update(message)
            check(sync, truth, outcome)
            if not message.is_snapshot:
                deltas.append(message)
            return outcome

        def replay_old() -> None:  # late copies of delivered deltas change nothing
            for pick in replays:
                assert deliver(deltas[pick % len(deltas)]) is IGNORED

        assert deliver(truth.snapshot()) is APPLIED
        for _ in range(k + extra):  # learning: every delta arrives
            assert deliver(truth.step(truth.u + 1, next(draws, [(True, 1, 1)]))) is APPLIED
        assert sync.sequenced
        for lost, levels in losses:
            for _ in range(lost):  # the venue moves on; the client never hears of it
                truth.step(truth.u + 1, next(draws, [(False, 99, 1)]))
            first_after = deliver(truth.step(truth.u + 1, levels))
            assert isinstance(first_after, Resync) and "gap" in first_after.reason
            replay_old()  # no book: nothing revives it but a snapshot
            assert deliver(truth.step(truth.u + 1, next(draws, [(True, 2, 1)]))) is IGNORED
            assert deliver(truth.snapshot()) is APPLIED  # what the resubscribe brings
            assert deliver(truth.step(truth.u + 1, next(draws, [(True, 3, 1)]))) is APPLIED
            replay_old()  # a live book ignores them and still knows u is sequenced
        assert sync.live and sync.sequenced


class TestNoFalseResync:
    """Property: a stream whose u does not step by 1 every time never resyncs on it."""

    @settings(max_examples=200, deadline=None)
    @given(
        st.integers(2, 25).flatmap(
            lambda k: st.tuples(
                st.just(k),
                st.lists(
                    st.tuples(st.integers(0, k - 1), st.integers(2, 1000)),
                    min_size=1,
                    max_size=12,
                ),
            )
        ),
        st.lists(changes, min_size=1, max_size=200),
        st.integers(2, 10**6),
    )
    def test_unsequenced_u_never_resyncs(self, plan, pool, start) -> None:  # type: ignore[no-untyped-def]
        k, runs = plan  # runs of fewer than k steps of 1, each followed by a jump
        truth = Truth(start)
        sync = BybitDepthSync(2, sequenced_after=k)
        draws = itertools.cycle(pool)
        assert sync.on_update(truth.snapshot()) is APPLIED
        for ones, jump in runs:
            for step in [1] * ones + [jump]:
                outcome = sync.on_update(truth.step(truth.u + step, next(draws)))
                assert outcome is APPLIED  # every delta arrived: the book stays right
                check(sync, truth, outcome)
        assert not sync.sequenced


# -- the operator: resubscribe requests and their watchdog ----------------------------------


class Venue:
    """Feeds a hot observable with Bybit messages at chosen virtual times."""

    def __init__(self) -> None:
        self.s = TestScheduler()
        self.reports: list[Exception] = []
        self.requests: list[float] = []

    def request(self) -> None:
        self.requests.append(self.s.clock)

    def run(self, *events: Any, request: Any = None, **kw: Any) -> list[tuple[float, int]]:
        diffs = self.s.create_hot_observable(*events)
        result = self.s.start(
            lambda: maintain_order_book(
                diffs,
                None,
                BookRule.BYBIT_DEPTH,
                2,
                window=50,
                report=self.reports.append,
                request_resubscribe=request or self.request,
                **kw,
            )
        )
        return [(m.time, m.value.value.update_id) for m in result.messages if m.value.kind == "N"]


def stream(times: range, first_u: int) -> list[Any]:
    return [on_next(t, msg(first_u + i, (lv(9, i + 1),))) for i, t in enumerate(times)]


class TestOperator:
    """A gap asks for a resubscribe once; a snapshot that does not come is asked for again."""

    def test_a_gap_is_reported_and_a_resubscribe_requested(self) -> None:
        v = Venue()
        events = [
            on_next(210, msg(100, BIDS, ASKS, snapshot=True)),
            *stream(range(211, 231), 101),  # u 101..120: learned
            on_next(240, msg(125, (lv(10, 9),))),  # 121..124 were lost
            on_next(241, msg(126, (lv(10, 8),))),  # ignored: no book
            on_next(250, StreamRestart("orderbook.50.BTCUSDT", "resubscribed on bybit#1")),
            on_next(251, msg(126, BIDS, ASKS, snapshot=True)),
            on_next(252, msg(127, (lv(9, 4),))),
        ]
        books = v.run(*events)
        assert books[-3:] == [(230, 120), (251, 126), (252, 127)]
        assert len(books) == 23
        assert v.requests == [240]
        (report,) = v.reports
        assert isinstance(report, FeedGapError) and report.topic == "BTCUSDT order book"
        assert "order book resync: gap: u=125 after u=120 (4 message(s) lost" in str(report)

    def test_a_restart_marker_resyncs_without_asking_for_a_resubscribe(self) -> None:
        v = Venue()
        events = [
            on_next(210, msg(100, BIDS, ASKS, snapshot=True)),
            on_next(220, StreamRestart("orderbook.50.BTCUSDT", "reconnected after ...")),
            on_next(225, msg(130, BIDS, ASKS, snapshot=True)),  # the subscription's snapshot
        ]
        assert v.run(*events) == [(210, 100), (225, 130)]
        assert v.requests == []
        assert "stream restarted" in str(v.reports[0])

    def test_no_snapshot_after_a_resync_asks_again_with_backoff(self) -> None:
        v = Venue()
        events = [
            on_next(210, msg(100, BIDS, ASKS, snapshot=True)),
            on_next(220, msg(101, (lv(13, 1),))),  # crosses: resync
            on_next(700, msg(500, BIDS, ASKS, snapshot=True)),
            on_next(710, msg(501, (lv(13, 1),))),  # crosses again
            on_next(720, msg(510, BIDS, ASKS, snapshot=True)),
        ]
        books = v.run(*events)
        assert books == [(210, 100), (700, 500), (720, 510)]
        # 220, then +30, +60, +120, +120 ...; the count starts over once the book is back
        assert v.requests == [220, 250, 310, 430, 550, 670, 710]
        assert [resubscribe_retry_delay(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 120]

    def test_a_subscription_without_a_snapshot_asks_for_one(self) -> None:
        v = Venue()
        events = [
            *stream(range(210, 280, 10), 101),
            on_next(300, msg(120, BIDS, ASKS, snapshot=True)),
        ]
        assert v.run(*events) == [(300, 120)]
        assert v.requests == [230, 260]  # subscribed at 200: waited 30 s, then 30 s again

    def test_a_custom_retry_and_a_raising_request_are_contained(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        v = Venue()
        calls: list[float] = []

        def broken() -> None:
            calls.append(v.s.clock)
            raise RuntimeError("hub gone")

        events = [
            on_next(203, msg(100, BIDS, ASKS, snapshot=True)),
            on_next(220, msg(101, (lv(13, 1),))),
            on_next(236, msg(102, BIDS, ASKS, snapshot=True)),
            on_next(237, msg(103, (lv(9, 4),))),
        ]
        with caplog.at_level(logging.ERROR, logger="rxconnector"):
            books = v.run(*events, request=broken, resubscribe_retry=lambda n: 5.0 * n)
        assert books == [(203, 100), (236, 102), (237, 103)]
        assert calls == [220, 225, 235]
        assert "request_resubscribe raised" in caplog.text

    def test_rules_with_rest_never_ask_for_a_resubscribe(self) -> None:
        s = TestScheduler()
        asked: list[int] = []
        reports: list[Exception] = []
        diffs = s.create_hot_observable(
            on_next(205, msg(7)),  # buffered, a snapshot is requested (never answered)
            on_next(210, StreamRestart("t", "x")),  # drops the buffer: a resync
        )
        s.start(
            lambda: maintain_order_book(
                diffs,
                lambda: s.create_cold_observable(),
                BookRule.BINANCE_SPOT,
                2,
                request_resubscribe=lambda: asked.append(1),
                report=reports.append,
            )
        )
        assert [type(r) for r in reports] == [FeedGapError] and asked == []
