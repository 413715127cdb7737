"""One depth event far ahead must not wedge a book (issue #16), for every venue rule.

Before: an event far ahead while buffering (or a gap event far ahead while live) became
the head of the pre-snapshot buffer; every real event after it was ignored as "going
backwards" and every snapshot was refused as too old: a refetch loop, forever. An event
with ``U = local + 1`` and a huge ``u`` was applied and moved the book's update id far
ahead: every real event after it was ignored as stale, with no error, and the book froze.

Each test drives :func:`maintain_order_book` with a true market (the test applies every
real event to its own book and serves REST snapshots of it) and injects one hostile
event. The operator must report a resync and end up showing exactly the true book, and
keep showing it as the market moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from rxconnector.errors import FeedGapError
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.models import DepthUpdate, OrderBook
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.orderbook import maintain_order_book

FAR = 10**15
DEPTH = 5


class Market:
    """The true book of one venue rule, and the events that move it."""

    def __init__(self, rule: BookRule) -> None:
        self.rule = rule
        self.bids = {Decimal(100 - i): Decimal(1) for i in range(30)}
        self.asks = {Decimal(101 + i): Decimal(1) for i in range(30)}
        self.update_id = 1000
        self.step = 0

    def next_event(self) -> DepthUpdate:
        """A real event: changes one quantity near the top on each side."""
        self.step += 1
        bid, ask = Decimal(100 - self.step % 3), Decimal(101 + self.step % 3)
        qty = Decimal(self.step % 7 + 1)
        self.bids[bid] = qty
        self.asks[ask] = qty
        first = self.update_id + 1
        self.update_id += 3  # three updates per event, like a busy stream
        return self._event(first, self.update_id, ((bid, qty),), ((ask, qty),))

    def _event(
        self, first: int, final: int, bids: Any, asks: Any, prev: int | None = None
    ) -> DepthUpdate:
        if self.rule is BookRule.BINANCE_USDM:
            prev = first - 1 if prev is None else prev
        if self.rule in (BookRule.BYBIT_FULL, BookRule.BYBIT_DEPTH):
            first = final = final // 3  # Bybit: one u per message, + 1 each
        return DepthUpdate(
            "BTCUSDT",
            first,
            final,
            tuple(bids),
            tuple(asks),
            event_time=self.step,
            prev_final_update_id=prev,
        )

    def hostile(self, first: int, final: int, prev: int | None = None) -> DepthUpdate:
        """A frame that lies: far-ahead ids and levels that would cross nothing but are wrong."""
        bids = ((Decimal("99.5"), Decimal(77)),)
        asks = ((Decimal("101.5"), Decimal(77)),)
        return DepthUpdate(
            "BTCUSDT", first, final, bids, asks, event_time=0, prev_final_update_id=prev
        )

    def snapshot(self) -> OrderBook:
        u = self.update_id if self.rule is not BookRule.BYBIT_FULL else self.update_id // 3
        return OrderBook(
            "BTCUSDT",
            tuple(sorted(self.bids.items(), reverse=True)),
            tuple(sorted(self.asks.items())),
            u,
            event_time=0,
        )

    def ws_snapshot(self) -> DepthUpdate:
        snap = self.snapshot()
        return DepthUpdate(
            "BTCUSDT",
            self.update_id // 3,
            self.update_id // 3,
            snap.bids,
            snap.asks,
            event_time=0,
            is_snapshot=True,
        )

    def top(self) -> tuple[Any, Any]:
        snap = self.snapshot()
        return snap.bids[:DEPTH], snap.asks[:DEPTH]


class Rig:
    def __init__(self, rule: BookRule) -> None:
        self.market = Market(rule)
        self.scheduler = TestScheduler()
        self.diffs: Subject[DepthUpdate | StreamRestart] = Subject()
        self.books: list[OrderBook] = []
        self.reports: list[Exception] = []
        self.snapshots = 0
        fetch: Callable[[], Observable[OrderBook]] | None = None
        if rule.uses_rest:

            def fetch() -> Observable[OrderBook]:
                self.snapshots += 1
                return reactivex.defer(lambda _: reactivex.just(self.market.snapshot()))

        self.resubscribes = 0
        maintain_order_book(
            self.diffs,
            fetch,
            rule,
            DEPTH,
            topic="btcusdt@depth",
            scheduler=self.scheduler,
            report=self.reports.append,
            request_resubscribe=self._resubscribe,
            window=50 if rule is BookRule.BYBIT_DEPTH else None,
        ).subscribe(self.books.append, scheduler=self.scheduler)
        if rule is BookRule.BYBIT_DEPTH:
            self.diffs.on_next(self.market.ws_snapshot())
        for _ in range(3):
            self.real()

    def _resubscribe(self) -> None:
        self.resubscribes += 1
        # The venue answers a resubscription with a snapshot of the true book.
        self.scheduler.schedule(lambda *_: self.diffs.on_next(self.market.ws_snapshot()))

    def real(self, n: int = 1) -> None:
        for _ in range(n):
            self.diffs.on_next(self.market.next_event())
            self.scheduler.advance_by(0.1)

    def send(self, event: DepthUpdate) -> None:
        self.diffs.on_next(event)
        self.scheduler.advance_by(0.1)

    def assert_true_book(self) -> None:
        assert self.books, "no book shown at all"
        last = self.books[-1]
        assert (last.bids, last.asks) == self.market.top()

    def resyncs(self) -> list[Exception]:
        return [e for e in self.reports if isinstance(e, FeedGapError)]


REST_RULES = [BookRule.BINANCE_SPOT, BookRule.BINANCE_USDM]


@pytest.mark.parametrize("rule", REST_RULES, ids=lambda r: r.value)
def test_an_event_u_far_ahead_right_after_the_book_is_caught_and_resynced(
    rule: BookRule,
) -> None:
    """``U = local + 1`` (USD-M: ``pu = local``) with a huge ``u``: applied by the rule,
    then every real event was ignored as stale, silently, forever."""
    rig = Rig(rule)
    rig.assert_true_book()
    local = rig.books[-1].update_id
    rig.send(rig.market.hostile(local + 1, FAR, prev=local))
    rig.real(10)
    assert rig.resyncs(), "the wedge was not detected"
    # So far ahead it is refused outright: its levels were never shown.
    assert all(Decimal(77) not in dict(book.bids).values() for book in rig.books)
    rig.assert_true_book()
    shown = len(rig.books)
    rig.real(5)
    assert len(rig.books) == shown + 5  # the book keeps moving with the market
    rig.assert_true_book()


@pytest.mark.parametrize("rule", [*REST_RULES, BookRule.BYBIT_FULL], ids=lambda r: r.value)
def test_a_gap_event_far_ahead_does_not_wedge_the_resync(rule: BookRule) -> None:
    """A far-ahead event that reveals a "gap": the book resyncs from it, and before the
    fix the real events after it were ignored and every snapshot refused (refetch loop)."""
    rig = Rig(rule)
    rig.send(rig.market.hostile(FAR, FAR + 5, prev=FAR - 1))
    rig.real(10)
    rig.scheduler.advance_by(60)
    rig.real(3)
    assert rig.resyncs()
    assert rig.snapshots < 10  # no refetch loop
    rig.assert_true_book()


@pytest.mark.parametrize("rule", REST_RULES, ids=lambda r: r.value)
def test_a_far_ahead_first_event_does_not_wedge_the_first_sync(rule: BookRule) -> None:
    """The very first event after a (re)subscription is the hostile one."""
    rig = Rig(rule)
    rig.send(StreamRestart("btcusdt@depth", "reconnected"))
    rig.send(rig.market.hostile(FAR, FAR + 5, prev=FAR - 1))
    rig.real(10)
    rig.scheduler.advance_by(60)
    rig.real(3)
    assert rig.snapshots < 10
    rig.assert_true_book()


@pytest.mark.parametrize("rule", REST_RULES, ids=lambda r: r.value)
def test_an_event_a_little_ahead_is_caught_by_the_next_real_event(rule: BookRule) -> None:
    """Below MAX_EVENT_ADVANCE the lie cannot be told from a busy moment until the next
    real event arrives behind the book: then the book resyncs."""
    rig = Rig(rule)
    local = rig.books[-1].update_id
    rig.send(rig.market.hostile(local + 1, local + 1000, prev=local))
    rig.real(10)
    assert rig.resyncs()
    rig.assert_true_book()
    rig.real(3)
    rig.assert_true_book()


def test_bybit_depth_delta_far_ahead_is_caught_and_resynced() -> None:
    """Bybit orderbook.{depth} before the u + 1 rule is learned: a delta with a huge u
    was applied and every real delta after it ignored until a snapshot happened to come."""
    rig = Rig(BookRule.BYBIT_DEPTH)
    rig.assert_true_book()
    rig.send(rig.market.hostile(FAR, FAR))
    rig.real(10)
    assert rig.resyncs() and rig.resubscribes >= 1
    rig.scheduler.advance_by(1)
    rig.real(3)
    rig.assert_true_book()


def test_a_duplicate_of_the_last_event_is_still_just_ignored() -> None:
    """The stricter rule must not turn a repeated frame into a resync."""
    rig = Rig(BookRule.BINANCE_SPOT)
    event = rig.market.next_event()
    rig.send(event)
    rig.send(event)
    rig.real(3)
    assert rig.resyncs() == []
    rig.assert_true_book()
