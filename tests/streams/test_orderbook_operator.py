"""maintain_order_book and SnapshotGate in virtual time: buffering, resyncs, retries, pacing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector.errors import ExchangeError, FeedGapError, RateLimitError
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.models import DepthUpdate, Level, OrderBook
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.orderbook import maintain_order_book
from rxconnector.streams.snapshot_gate import SnapshotGate

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

D = Decimal


def lv(price: int | str, qty: int | str) -> Level:
    return (D(price), D(qty))


def upd(
    first: int,
    final: int,
    bids: tuple[Level, ...] = (),
    asks: tuple[Level, ...] = (),
    *,
    snapshot: bool = False,
) -> DepthUpdate:
    return DepthUpdate(
        "BTCUSDT",
        first,
        final,
        bids,
        asks,
        event_time=1000 + final,
        received_at=2000.0 + final,
        is_snapshot=snapshot,
    )


def snap(update_id: int, bids: tuple[Level, ...] = (), asks: tuple[Level, ...] = ()) -> OrderBook:
    return OrderBook("BTCUSDT", bids or BIDS, asks or ASKS, update_id, 0, 3000.0)


BIDS = (lv(10, 1), lv(9, 1))
ASKS = (lv(11, 1), lv(12, 1))


def emitted(messages: list[Any]) -> list[tuple[float, int, tuple[Level, ...]]]:
    """(time, update_id, bids) of every OrderBook emitted."""
    return [
        (m.time, m.value.value.update_id, m.value.value.bids)
        for m in messages
        if m.value.kind == "N"
    ]


def replies(*observables: Observable[OrderBook]) -> Callable[[], Observable[OrderBook]]:
    """A fetch_snapshot that answers each call with the next observable."""
    queue: Iterator[Observable[OrderBook]] = iter(observables)
    return lambda: next(queue)


class TestBuffering:
    """Events are buffered and nothing is emitted until a snapshot makes the book whole."""

    def test_fetch_starts_at_the_first_event_and_buffer_is_applied(self) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(
            on_next(210, upd(1, 2)),
            on_next(220, upd(3, 4, (lv(10, 5),))),
            on_next(240, upd(5, 5, (lv(9, 7),))),
        )
        snapshot = s.create_cold_observable(on_next(15, snap(3)), on_completed(15))
        result = s.start(
            lambda: maintain_order_book(diffs, lambda: snapshot, BookRule.BINANCE_SPOT, 2)
        )
        assert snapshot.subscriptions == [Subscription(210, 225)]
        assert emitted(result.messages) == [
            (225, 4, (lv(10, 5), lv(9, 1))),
            (240, 5, (lv(10, 5), lv(9, 7))),
        ]
        book = result.messages[0].value.value
        assert book.asks == ASKS and book.event_time == 1004 and book.received_at == 2004.0

    def test_snapshot_that_is_too_old_is_fetched_again_after_the_delay(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        diffs = s.create_hot_observable(on_next(210, upd(10, 12)), on_next(260, upd(13, 13)))
        old = s.create_cold_observable(on_next(5, snap(9)), on_completed(5))
        good = s.create_cold_observable(on_next(5, snap(11)), on_completed(5))
        result = s.start(
            lambda: maintain_order_book(
                diffs,
                replies(old, good),
                BookRule.BINANCE_SPOT,
                2,
                retry_delay=lambda attempt: 10.0 * attempt,
                report=reports.append,
            )
        )
        assert old.subscriptions == [Subscription(210, 215)]
        assert good.subscriptions == [Subscription(225, 230)]
        assert emitted(result.messages) == [(230, 12, BIDS), (260, 13, BIDS)]
        assert reports == []  # a refetch is not a resync


class TestResync:
    """A gap drops the book, is reported, and the book comes back after a new snapshot."""

    def test_gap_is_reported_and_nothing_is_emitted_until_resynced(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        diffs = s.create_hot_observable(
            on_next(210, upd(1, 1)),
            on_next(230, upd(2, 2)),
            on_next(240, upd(5, 6)),  # 3..4 missing
            on_next(250, upd(7, 7)),
            on_next(270, upd(8, 8)),
        )
        first = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        second = s.create_cold_observable(on_next(20, snap(6)), on_completed(20))
        result = s.start(
            lambda: maintain_order_book(
                diffs,
                replies(first, second),
                BookRule.BINANCE_SPOT,
                2,
                topic="btcusdt@depth",
                report=reports.append,
            )
        )
        assert [t for t, _, _ in emitted(result.messages)] == [215, 230, 260, 270]
        assert [u for _, u, _ in emitted(result.messages)] == [1, 2, 7, 8]
        assert second.subscriptions == [Subscription(240, 260)]
        assert len(reports) == 1
        error = reports[0]
        assert isinstance(error, FeedGapError) and error.topic == "btcusdt@depth"
        assert "order book resync: gap" in str(error)

    def test_stream_restart_resyncs(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        diffs = s.create_hot_observable(
            on_next(210, upd(1, 1)),
            on_next(230, StreamRestart("btcusdt@depth", "reconnected")),
            on_next(240, upd(50, 51)),
        )
        first = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        second = s.create_cold_observable(on_next(5, snap(50)), on_completed(5))
        result = s.start(
            lambda: maintain_order_book(
                diffs, replies(first, second), BookRule.BINANCE_SPOT, 2, report=reports.append
            )
        )
        assert emitted(result.messages) == [(215, 1, BIDS), (245, 51, BIDS)]
        assert len(reports) == 1 and "stream restarted (reconnected)" in str(reports[0])
        assert "BTCUSDT order book" in str(reports[0])  # default topic names the symbol

    def test_malformed_event_resyncs_instead_of_failing(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        bad = DepthUpdate("BTCUSDT", 2, 2, ((None, None),), (), 0)  # type: ignore[arg-type]
        diffs = s.create_hot_observable(
            on_next(210, upd(1, 1)), on_next(230, bad), on_next(240, upd(3, 3))
        )
        first = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        second = s.create_cold_observable(on_next(5, snap(3)), on_completed(5))
        result = s.start(
            lambda: maintain_order_book(
                diffs, replies(first, second), BookRule.BINANCE_SPOT, 2, report=reports.append
            )
        )
        assert emitted(result.messages) == [(215, 1, BIDS), (245, 3, BIDS)]
        assert "could not apply an event" in str(reports[0])


class TestSnapshotFailures:
    """REST failures are reported and retried with backoff; the feed never ends on them."""

    def test_error_then_success(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)), on_next(300, upd(2, 2)))
        boom = ExchangeError("server busy", status=503, retryable=True)
        failing = s.create_cold_observable(on_error(5, boom))
        good = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        result = s.start(
            lambda: maintain_order_book(
                diffs,
                replies(failing, failing, good),
                BookRule.BINANCE_SPOT,
                2,
                retry_delay=lambda attempt: 10.0 * attempt,
                report=reports.append,
            )
        )
        # 210 fetch, 215 fails, +10 -> 225 fetch, 230 fails, +20 -> 250 fetch, 255 ok
        assert failing.subscriptions == [Subscription(210, 215), Subscription(225, 230)]
        assert good.subscriptions == [Subscription(250, 255)]
        assert reports == [boom, boom]
        assert emitted(result.messages) == [(255, 1, BIDS), (300, 2, BIDS)]

    def test_retry_after_of_a_rate_limit_is_respected(self) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)))
        limited = s.create_cold_observable(on_error(5, RateLimitError("slow", retry_after=60)))
        good = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        s.start(
            lambda: maintain_order_book(
                diffs, replies(limited, good), BookRule.BINANCE_SPOT, 2, report=lambda e: None
            )
        )
        assert good.subscriptions == [Subscription(275, 280)]

    def test_factory_raising_and_empty_reply_are_failures(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)))
        empty = s.create_cold_observable(on_completed(5))
        good = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        calls = iter([None, empty, good])

        def fetch() -> Observable[OrderBook]:
            reply = next(calls)
            if reply is None:
                raise RuntimeError("no session")
            return reply

        result = s.start(
            lambda: maintain_order_book(
                diffs,
                fetch,
                BookRule.BINANCE_SPOT,
                2,
                retry_delay=lambda attempt: 1.0,
                report=reports.append,
            )
        )
        assert [type(e) for e in reports] == [RuntimeError, FeedGapError]
        assert "returned nothing" in str(reports[1])
        assert emitted(result.messages) == [(222, 1, BIDS)]  # 210 raise, 211-216 empty, 217

    def test_unusable_snapshot_content_resyncs(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)))
        broken = OrderBook("BTCUSDT", ((None, D(1)), lv(5, 1)), (), 1, 0)  # type: ignore[arg-type]
        bad = s.create_cold_observable(on_next(5, broken), on_completed(5))
        good = s.create_cold_observable(on_next(5, snap(2)), on_completed(5))
        diffs2 = s.create_hot_observable(on_next(230, upd(2, 2)))
        result = s.start(
            lambda: maintain_order_book(
                reactivex.merge(diffs, diffs2),
                replies(bad, good),
                BookRule.BINANCE_SPOT,
                2,
                report=reports.append,
            )
        )
        assert "could not load the snapshot" in str(reports[0])
        assert emitted(result.messages) == [(235, 2, BIDS)]


class TestTermination:
    """The diff stream's end or error is forwarded and cancels pending work."""

    def test_error_propagates_and_cancels_the_request(self) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)), on_error(220, ValueError("x")))
        slow = s.create_cold_observable(on_next(50, snap(1)))
        result = s.start(lambda: maintain_order_book(diffs, lambda: slow, BookRule.BINANCE_SPOT, 2))
        assert slow.subscriptions == [Subscription(210, 220)]
        assert [on_error(220, lambda e: isinstance(e, ValueError))] == result.messages

    def test_completion_propagates_and_cancels_the_retry_timer(self) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)), on_completed(230))
        failing = s.create_cold_observable(on_error(5, ExchangeError("down")))
        result = s.start(
            lambda: maintain_order_book(
                diffs,
                lambda: failing,
                BookRule.BINANCE_SPOT,
                2,
                retry_delay=lambda a: 100.0,
                report=lambda e: None,
            )
        )
        assert result.messages == [on_completed(230)]
        assert failing.subscriptions == [Subscription(210, 215)]  # no retry at 315

    def test_dispose_cancels_everything(self) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(on_next(210, upd(1, 1)))
        slow = s.create_cold_observable(on_next(500, snap(1)))
        s.start(
            lambda: maintain_order_book(diffs, lambda: slow, BookRule.BINANCE_SPOT, 2),
            disposed=300,
        )
        assert slow.subscriptions == [Subscription(210, 300)]
        assert diffs.subscriptions == [Subscription(200, 300)]

    def test_rest_rule_needs_a_fetch(self) -> None:
        with pytest.raises(ValueError, match="needs fetch_snapshot"):
            maintain_order_book(reactivex.empty(), None, BookRule.BINANCE_USDM, 5)
        with pytest.raises(ValueError, match="deeper than the snapshot limit"):
            maintain_order_book(
                reactivex.empty(), lambda: reactivex.empty(), BookRule.BINANCE_USDM, 5000
            )


class TestBybitDepthOperator:
    """No REST: WebSocket snapshots make the book, a crossed book asks for a resubscribe."""

    def test_snapshot_deltas_and_crossed(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        resubscribes: list[int] = []
        diffs = s.create_hot_observable(
            on_next(205, upd(7, 7, (lv(10, 9),))),  # before any snapshot: ignored
            on_next(210, upd(8, 8, BIDS, ASKS, snapshot=True)),
            on_next(220, upd(9, 9, (lv(10, 2),))),
            on_next(230, upd(10, 10, (lv(13, 1),))),  # crosses the book
            on_next(240, upd(11, 11, (lv(9, 5),))),  # ignored: waiting for a snapshot
            on_next(250, upd(12, 12, BIDS, ASKS, snapshot=True)),
        )
        result = s.start(
            lambda: maintain_order_book(
                diffs,
                None,
                BookRule.BYBIT_DEPTH,
                2,
                window=50,
                report=reports.append,
                request_resubscribe=lambda: resubscribes.append(1),
            )
        )
        assert [(t, u) for t, u, _ in emitted(result.messages)] == [(210, 8), (220, 9), (250, 12)]
        assert len(reports) == 1 and "crossed" in str(reports[0])
        assert resubscribes == [1]


class TestReporting:
    """Without a report callback problems are logged; a raising callback is contained."""

    def test_default_report_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(
            on_next(210, upd(1, 1)), on_next(220, StreamRestart("t", "stall"))
        )
        first = s.create_cold_observable(on_next(5, snap(1)), on_completed(5))
        with caplog.at_level(logging.WARNING, logger="rxconnector"):
            s.start(lambda: maintain_order_book(diffs, lambda: first, BookRule.BINANCE_SPOT, 2))
        assert "order book resync: stream restarted (stall)" in caplog.text

    def test_raising_report_does_not_break_the_feed(self) -> None:
        s = TestScheduler()
        diffs = s.create_hot_observable(
            on_next(210, upd(1, 1)), on_next(220, upd(5, 5)), on_next(240, upd(6, 6))
        )
        replies_ = replies(
            s.create_cold_observable(on_next(5, snap(1)), on_completed(5)),
            s.create_cold_observable(on_next(5, snap(5)), on_completed(5)),
        )

        def report(error: Exception) -> None:
            raise RuntimeError("bad callback")

        result = s.start(
            lambda: maintain_order_book(diffs, replies_, BookRule.BINANCE_SPOT, 2, report=report)
        )
        assert [u for _, u, _ in emitted(result.messages)] == [1, 5, 6]


class TestSnapshotGate:
    """At most K snapshot requests in flight, in order, optionally spaced in time."""

    def test_two_books_share_one_slot(self) -> None:
        s = TestScheduler()
        gate = SnapshotGate(max_in_flight=1)
        diffs_a = s.create_hot_observable(on_next(210, upd(1, 1)))
        diffs_b = s.create_hot_observable(on_next(212, upd(1, 1)))
        snap_a = s.create_cold_observable(on_next(20, snap(1)), on_completed(20))
        snap_b = s.create_cold_observable(on_next(20, snap(1)), on_completed(20))
        a = s.create_observer()
        b = s.create_observer()
        s.schedule_absolute(
            200,
            lambda *_: maintain_order_book(
                diffs_a, lambda: snap_a, BookRule.BINANCE_SPOT, 2, gate=gate
            ).subscribe(a, scheduler=s),
        )
        s.schedule_absolute(
            200,
            lambda *_: maintain_order_book(
                diffs_b, lambda: snap_b, BookRule.BINANCE_SPOT, 2, gate=gate
            ).subscribe(b, scheduler=s),
        )
        s.advance_to(211)
        assert (gate.in_flight, gate.waiting) == (1, 0)
        s.advance_to(213)
        assert (gate.in_flight, gate.waiting) == (1, 1)
        s.start()
        assert snap_a.subscriptions == [Subscription(210, 230)]
        assert snap_b.subscriptions == [Subscription(230, 250)]
        assert [m.time for m in a.messages] == [230]
        assert [m.time for m in b.messages] == [250]
        assert (gate.in_flight, gate.waiting) == (0, 0)

    def test_min_interval_spaces_request_starts(self) -> None:
        s = TestScheduler()
        gate = SnapshotGate(max_in_flight=5, min_interval=10)
        sources = [s.create_cold_observable(on_next(1, i), on_completed(1)) for i in range(3)]
        for source in sources:
            s.schedule_absolute(200, lambda *_, src=source: gate.wrap(src).subscribe(scheduler=s))
        s.start()
        assert [src.subscriptions[0].subscribe for src in sources] == [200, 210, 220]

    def test_waiting_request_disposed_never_runs(self) -> None:
        s = TestScheduler()
        gate = SnapshotGate(max_in_flight=1)
        first = s.create_cold_observable(on_next(50, 1), on_completed(50))
        second = s.create_cold_observable(on_next(1, 2), on_completed(1))
        third = s.create_cold_observable(on_next(1, 3), on_completed(1))
        subs: list[Any] = []
        s.schedule_absolute(200, lambda *_: subs.append(gate.wrap(first).subscribe(scheduler=s)))
        s.schedule_absolute(201, lambda *_: subs.append(gate.wrap(second).subscribe(scheduler=s)))
        s.schedule_absolute(202, lambda *_: subs.append(gate.wrap(third).subscribe(scheduler=s)))
        s.schedule_absolute(210, lambda *_: subs[1].dispose())
        s.start()
        assert second.subscriptions == []
        assert third.subscriptions == [Subscription(250, 251)]

    def test_running_request_disposed_frees_its_slot(self) -> None:
        s = TestScheduler()
        gate = SnapshotGate(max_in_flight=1)
        hang = s.create_cold_observable(on_next(500, 1))
        after = s.create_cold_observable(on_next(1, 2), on_completed(1))
        subs: list[Any] = []
        s.schedule_absolute(200, lambda *_: subs.append(gate.wrap(hang).subscribe(scheduler=s)))
        s.schedule_absolute(201, lambda *_: gate.wrap(after).subscribe(scheduler=s))
        s.schedule_absolute(220, lambda *_: subs[0].dispose())
        s.start()
        assert hang.subscriptions == [Subscription(200, 220)]
        assert after.subscriptions == [Subscription(220, 221)]

    def test_errors_release_and_pass_through(self) -> None:
        s = TestScheduler()
        gate = SnapshotGate(max_in_flight=1)
        failing = s.create_cold_observable(on_error(5, ValueError("boom")))
        nxt = s.create_cold_observable(on_next(1, 2), on_completed(1))
        seen = s.create_observer()
        s.schedule_absolute(200, lambda *_: gate.wrap(failing).subscribe(seen, scheduler=s))
        s.schedule_absolute(201, lambda *_: gate.wrap(nxt).subscribe(scheduler=s))
        s.start()
        assert [on_error(205, lambda e: isinstance(e, ValueError))] == seen.messages
        assert nxt.subscriptions == [Subscription(205, 206)]

    def test_validation(self) -> None:
        with pytest.raises(ValueError):
            SnapshotGate(0)
        with pytest.raises(ValueError):
            SnapshotGate(1, min_interval=-1)


class TestOnTheLoop:
    """Without a scheduler the operator times its retries on the running asyncio loop."""

    async def test_retry_on_the_loop(self) -> None:
        diffs: Subject[DepthUpdate | StreamRestart] = Subject()
        attempts = 0

        def fetch() -> Observable[OrderBook]:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                return reactivex.throw(ExchangeError("down"))
            return reactivex.of(snap(1))

        book = maintain_order_book(
            diffs,
            fetch,
            BookRule.BINANCE_SPOT,
            2,
            retry_delay=lambda a: 0.01,
            report=lambda e: None,
        )
        first = asyncio.ensure_future(book.pipe(ops.first()))
        await asyncio.sleep(0)
        diffs.on_next(upd(1, 1))
        result = await asyncio.wait_for(first, 2)
        assert result.update_id == 1 and attempts == 2
