"""gapless_trades and gapless_trades_by_overlap with scripted live and backfill streams."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector.errors import ExchangeError, FeedGapError
from rxconnector.models import Trade
from rxconnector.streams.continuity import backfill_retry_delay, gapless_trades
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.trade_overlap import gapless_trades_by_overlap

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

RESTART = StreamRestart("btcusdt@aggTrade", "reconnected")


def tr(trade_id: int, time: int | None = None) -> Trade:
    return Trade(
        "BTCUSDT",
        trade_id,
        Decimal("100.5"),
        Decimal(1),
        "buy",
        time=time if time is not None else 1000 + trade_id,
        event_time=0,
    )


def values(messages: list[Any]) -> list[tuple[int, bool]]:
    """(trade_id, backfilled) of every trade emitted."""
    return [
        (m.value.value.trade_id, m.value.value.backfilled) for m in messages if m.value.kind == "N"
    ]


def ids(messages: list[Any]) -> list[int]:
    return [trade_id for trade_id, _ in values(messages)]


def pages(
    scheduler: TestScheduler, store: list[Trade], page_size: int = 1000, delay: float = 5
) -> tuple[Callable[[int], Observable[list[Trade]]], list[int]]:
    """A REST backfill over ``store``: each call returns one page after ``delay`` ticks."""
    calls: list[int] = []

    def backfill(from_id: int) -> Observable[list[Trade]]:
        calls.append(from_id)
        page = [t for t in store if t.trade_id >= from_id][:page_size]
        return scheduler.create_cold_observable(on_next(delay, page), on_completed(delay))

    return backfill, calls


def venue_with(*trade_ids: int) -> Callable[[int], Observable[list[Trade]]]:
    """A REST backfill over a venue that has only ``trade_ids`` (answers at once)."""
    return lambda from_id: reactivex.of([tr(i) for i in trade_ids if i >= from_id])


class TestBackfill:
    """A gap after a restart is filled from REST before the held live trades."""

    def test_backfill_since_is_told_the_last_delivered_time(self) -> None:
        """Issue 16: a venue that finds trades by time (Binance aggTrades) gets the time
        of the last delivered trade with each gap page; id look-ups keep ``backfill``."""
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(2, time=5000)), on_next(230, tr(6))
        )
        store = [tr(i) for i in range(1, 7)]
        by_id, id_calls = pages(s, store)
        since_calls: list[tuple[int, int, float | None]] = []

        def by_time(from_id: int, since: int, share: float | None) -> Observable[list[Trade]]:
            since_calls.append((from_id, since, share))
            return by_id(from_id)

        result = s.start(lambda: gapless_trades(live, by_id, topic="t", backfill_since=by_time))
        assert ids(result.messages) == [1, 2, 3, 4, 5, 6]
        assert since_calls == [(3, 5000, None)]  # too few live pairs for a share
        assert id_calls == [3]  # (the page itself, through by_time)

    def test_gap_is_backfilled_in_order(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(220, tr(2)),
            on_next(230, RESTART),
            on_next(240, tr(6)),
            on_next(242, tr(7)),
            on_next(250, tr(8)),
        )
        # what the exchange had when the restart was fetched at once (t=230)
        backfill, calls = pages(s, [tr(i) for i in range(1, 6)])
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert values(result.messages) == [
            (1, False),
            (2, False),
            (3, True),
            (4, True),
            (5, True),
            (6, False),
            (7, False),
            (8, False),
        ]
        assert calls == [3]
        assert [m.time for m in result.messages] == [210, 220, 235, 235, 235, 240, 242, 250]

    def test_gap_found_by_a_live_trade_is_backfilled_in_order(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(220, tr(2)),
            on_next(240, tr(6)),
            on_next(242, tr(7)),
            on_next(250, tr(8)),
        )
        backfill, calls = pages(s, [tr(i) for i in range(1, 20)])
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert values(result.messages) == [
            (1, False),
            (2, False),
            (3, True),
            (4, True),
            (5, True),
            (6, False),
            (7, False),
            (8, False),
        ]
        assert calls == [3]
        assert [m.time for m in result.messages] == [210, 220, 245, 245, 245, 245, 245, 250]

    def test_one_page_closes_several_holes(self) -> None:
        """Outages close together cost one page, not one per hole (issue 16: the
        backfill budget is per request, a page holds 1000 trades)."""
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(5)), on_next(230, tr(6)), on_next(240, tr(9))
        )
        backfill, calls = pages(s, [tr(i) for i in range(1, 21)], delay=50)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert calls == [2]
        assert values(result.messages) == [
            (1, False),
            (2, True),
            (3, True),
            (4, True),
            (5, False),
            (6, False),
            (7, True),
            (8, True),
            (9, False),
        ]

    def test_restart_fetches_at_once_when_trading_stops(self) -> None:
        """Issue 15: no live trade follows the reconnect; the missed ones still come."""
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(2)), on_next(230, RESTART)
        )
        backfill, calls = pages(s, [tr(i) for i in range(1, 11)], page_size=4)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t", page_size=4))
        assert values(result.messages) == [(1, False), (2, False)] + [
            (i, True) for i in range(3, 11)
        ]
        assert calls == [3, 7, 11]  # full pages continue; the short (empty) one ends it
        assert [m.time for m in result.messages][2:] == [235] * 4 + [240] * 4

    def test_a_full_page_that_joins_the_held_trades_is_the_last(self) -> None:
        """Issue 16 (RESULTS, "wasted pages"): the page waited for budget while the
        trades it brings also came live and were held. It is full, but it reached a held
        live trade: the present was reached, so no second page is fetched."""
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(220, tr(2)),
            on_next(230, RESTART),
            *(on_next(240 + i, tr(i)) for i in range(5, 10)),
            on_next(400, tr(10)),
        )
        # what the exchange has when the page is answered (t=230+100): ids 1..9
        backfill, calls = pages(s, [tr(i) for i in range(1, 10)], page_size=4, delay=100)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t", page_size=4))
        assert values(result.messages) == [(1, False), (2, False), (3, True), (4, True)] + [
            (i, False) for i in range(5, 11)
        ]
        assert calls == [3]  # the full page 3..6 joined the held 5..9: nothing after it
        assert [m.time for m in result.messages][2:] == [330] * 7 + [400]

    def test_a_full_page_short_of_the_held_trades_fetches_on(self) -> None:
        """The same wait, but the page ends before the first held trade: the next page
        follows from where it ended (the hole before the held trades is still open)."""
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(220, tr(2)),
            on_next(230, RESTART),
            *(on_next(240 + i, tr(i)) for i in range(9, 12)),
        )
        backfill, calls = pages(s, [tr(i) for i in range(1, 12)], page_size=4, delay=100)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t", page_size=4))
        assert ids(result.messages) == list(range(1, 12))
        assert calls == [3, 7]

    def test_backfill_never_gives_up_while_the_exchange_has_the_data(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, RESTART), on_next(221, tr(5))
        )
        attempts: list[float] = []
        reports: list[Exception] = []

        def backfill(from_id: int) -> Observable[list[Trade]]:
            attempts.append(s.clock)
            if len(attempts) <= 8:
                return reactivex.throw(ExchangeError("down", status=503))
            return reactivex.of([tr(i) for i in range(from_id, 5)])

        result = s.start(
            lambda: gapless_trades(live, backfill, topic="t", report=reports.append),
            disposed=10_000,
        )
        assert ids(result.messages) == [1, 2, 3, 4, 5]
        assert reports == []
        assert len(attempts) == 9
        # backoff 0.5, 1, 2, 4, 8, 10, 10, 10 s (virtual ticks are seconds here)
        assert attempts[-1] - attempts[0] == pytest.approx(45.5)

    def test_retry_waits_at_least_retry_after(self) -> None:
        from rxconnector.errors import RateLimitError

        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(4)))
        attempts: list[float] = []

        def backfill(from_id: int) -> Observable[list[Trade]]:
            attempts.append(s.clock)
            if len(attempts) == 1:
                return reactivex.throw(RateLimitError("slow", retry_after=7))
            return reactivex.of([tr(2), tr(3)])

        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert ids(result.messages) == [1, 2, 3, 4]
        assert attempts == [220, 227]

    def test_held_trades_past_the_bound_declare_the_exact_gap(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(220, tr(5)),
            on_next(221, tr(6)),
            on_next(222, tr(7)),
            on_next(223, tr(8)),
        )
        reports: list[Exception] = []

        def backfill(_from_id: int) -> Observable[list[Trade]]:
            return reactivex.throw(ExchangeError("down", status=503))

        result = s.start(
            lambda: gapless_trades(live, backfill, topic="t", max_held=3, report=reports.append)
        )
        assert ids(result.messages) == [1, 5, 6, 7, 8]
        assert [m.time for m in result.messages if m.value.kind == "N"] == [210, 223, 223, 223, 223]
        assert len(reports) == 1
        gap = reports[0]
        assert isinstance(gap, FeedGapError)
        assert (gap.first_missing, gap.last_missing) == (2, 4)

    def test_pages_until_caught_up(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(12)))
        backfill, calls = pages(s, [tr(i) for i in range(1, 30)], page_size=4)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert ids(result.messages) == list(range(1, 13))
        assert calls == [2, 6, 10]

    def test_duplicates_are_dropped(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(211, tr(2)),
            on_next(212, RESTART),
            on_next(213, tr(1)),
            on_next(214, tr(2)),
            on_next(215, tr(3)),
            on_next(216, tr(3)),
        )
        backfill, calls = pages(s, [])
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert ids(result.messages) == [1, 2, 3]
        assert calls == [3]  # the restart's own look-up: nothing was missed

    def test_live_duplicates_and_disorder_while_backfilling(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)),
            on_next(220, tr(5)),
            on_next(221, tr(7)),
            on_next(222, tr(6)),
            on_next(223, tr(5)),
        )
        backfill, _ = pages(s, [tr(i) for i in range(1, 10)], delay=10)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert ids(result.messages) == [1, 2, 3, 4, 5, 6, 7]

    def test_a_second_hole_among_held_trades_is_backfilled_too(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(4)), on_next(221, tr(8))
        )
        backfill, calls = pages(s, [tr(i) for i in range(1, 10)], page_size=2)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert ids(result.messages) == list(range(1, 9))
        assert calls == [2, 5, 7]

    def test_first_trade_is_never_backfilled(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(500)), on_next(220, tr(501)))
        backfill, calls = pages(s, [])
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"))
        assert ids(result.messages) == [500, 501] and calls == []


class TestReportedGaps:
    """What cannot be fetched is reported with the exact id range, never skipped silently."""

    def test_oversize_gap_is_reported_with_its_range(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(1003)), on_next(230, tr(1004))
        )
        backfill, calls = pages(s, [tr(1003), tr(1004)])  # the venue has the far side
        result = s.start(
            lambda: gapless_trades(
                live, backfill, topic="btcusdt@trade", max_backfill=1000, report=reports.append
            )
        )
        assert ids(result.messages) == [1, 1003, 1004]
        assert calls == [1003]  # one lookup confirms the far id; the gap is not fetched
        (error,) = reports
        assert isinstance(error, FeedGapError)
        assert (error.topic, error.first_missing, error.last_missing) == ("btcusdt@trade", 2, 1002)
        assert "1001 ids" in str(error)

    def test_gap_of_exactly_max_backfill_is_fetched(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(5)))
        backfill, calls = pages(s, [tr(i) for i in range(1, 9)])
        result = s.start(lambda: gapless_trades(live, backfill, topic="t", max_backfill=3))
        assert ids(result.messages) == [1, 2, 3, 4, 5] and calls == [2]

    def test_backfill_failure_after_retries_is_reported(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(5)), on_next(300, tr(6))
        )
        failing = s.create_cold_observable(on_error(2, ExchangeError("down", status=503)))
        calls: list[int] = []

        def backfill(from_id: int) -> Observable[list[Trade]]:
            calls.append(from_id)
            return failing

        result = s.start(
            lambda: gapless_trades(
                live,
                backfill,
                topic="t",
                retries=2,
                retry_delay=lambda n: 10.0 * n,
                report=reports.append,
            )
        )
        # 220 ask, 222 fail, +10 -> 232 ask, 234 fail, +20 -> 254 ask, 256 fail: give up
        assert failing.subscriptions == [
            Subscription(220, 222),
            Subscription(232, 234),
            Subscription(254, 256),
        ]
        assert ids(result.messages) == [1, 5, 6]
        assert [m.time for m in result.messages] == [210, 256, 300]
        (error,) = reports
        assert isinstance(error, FeedGapError) and (error.first_missing, error.last_missing) == (
            2,
            4,
        )
        assert "down" in str(error)

    def test_partial_backfill_then_failure_reports_only_the_rest(self) -> None:
        """The first page (2, 3) arrives; every later page request fails: after the
        retries only the unfetched 4..9 is reported, and the live 10 follows."""
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(10)))
        calls: list[int] = []

        def backfill(from_id: int) -> Observable[list[Trade]]:
            calls.append(from_id)
            if from_id == 2:
                return s.create_cold_observable(on_next(5, [tr(2), tr(3)]), on_completed(5))
            return s.create_cold_observable(on_error(5, ExchangeError("down", status=503)))

        result = s.start(
            lambda: gapless_trades(
                live,
                backfill,
                topic="t",
                retries=1,
                retry_delay=lambda n: 1.0,
                report=reports.append,
            )
        )
        assert values(result.messages) == [(1, False), (2, True), (3, True), (10, False)]
        assert calls == [2, 4, 4]
        (error,) = reports
        assert isinstance(error, FeedGapError) and (error.first_missing, error.last_missing) == (
            4,
            9,
        )
        assert "backfill failed" in str(error)

    def test_hole_in_the_venue_history_is_reported_exactly(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(8)))
        backfill, calls = pages(s, [tr(i) for i in (2, 3, 6, 7, 8)])
        result = s.start(lambda: gapless_trades(live, backfill, topic="t", report=reports.append))
        assert values(result.messages) == [
            (1, False),
            (2, True),
            (3, True),
            (6, True),
            (7, True),
            (8, False),
        ]
        assert calls == [2]
        (error,) = reports
        assert isinstance(error, FeedGapError) and (error.first_missing, error.last_missing) == (
            4,
            5,
        )
        assert "absent from the venue" in str(error)

    def test_backfill_factory_raising_is_a_failure(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(3)))

        def backfill(from_id: int) -> Observable[list[Trade]]:
            raise RuntimeError("no session")

        result = s.start(
            lambda: gapless_trades(live, backfill, topic="t", retries=0, report=reports.append)
        )
        assert ids(result.messages) == [1, 3]
        assert "no session" in str(reports[0])

    def test_completion_during_backfill_reports_and_flushes(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(4)), on_next(221, tr(5)), on_completed(225)
        )
        slow = s.create_cold_observable(on_next(100, [tr(2), tr(3)]), on_completed(100))
        result = s.start(
            lambda: gapless_trades(live, lambda _: slow, topic="t", report=reports.append)
        )
        assert ids(result.messages) == [1, 4, 5]
        assert result.messages[-1] == on_completed(225)
        assert slow.subscriptions == [Subscription(220, 225)]
        (error,) = reports
        assert isinstance(error, FeedGapError) and (error.first_missing, error.last_missing) == (
            2,
            3,
        )

    def test_error_is_forwarded(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(1)), on_error(220, ValueError("x")))
        result = s.start(lambda: gapless_trades(live, lambda _: reactivex.empty(), topic="t"))
        assert [on_error(220, lambda e: isinstance(e, ValueError))] == result.messages[1:]

    def test_default_report_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(1)), on_next(220, tr(50)))
        s.start(lambda: gapless_trades(live, venue_with(50, 51), topic="t", max_backfill=5))
        assert "trades 2..49" in caplog.text

    def test_raising_report_is_contained(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1)), on_next(220, tr(50)), on_next(230, tr(51))
        )

        def report(error: Exception) -> None:
            raise RuntimeError("bad callback")

        result = s.start(
            lambda: gapless_trades(
                live, venue_with(50, 51), topic="t", max_backfill=5, report=report
            )
        )
        assert ids(result.messages) == [1, 50, 51]

    def test_validation_and_delays(self) -> None:
        with pytest.raises(ValueError):
            gapless_trades(
                reactivex.empty(), lambda _: reactivex.empty(), topic="t", max_backfill=-1
            )
        with pytest.raises(ValueError):
            gapless_trades_by_overlap(reactivex.empty(), reactivex.empty, topic="t", memory=0)
        assert [backfill_retry_delay(n) for n in (1, 2, 3, 99)] == [0.5, 1.0, 2.0, 10.0]


class TestExactlyOnceProperty:
    """Whatever the live stream loses, duplicates or reorders, the output is 1..N once each."""

    @settings(max_examples=200, deadline=None)
    @given(
        st.integers(5, 60),
        st.lists(st.sampled_from(["send", "send", "drop", "dup", "late"]), min_size=1, max_size=60),
        st.integers(1, 7),
    )
    def test_exactly_once_in_order(self, n: int, actions: list[str], page_size: int) -> None:
        s = TestScheduler()
        history = [tr(i) for i in range(1, n + 1)]
        records = [on_next(201, history[0])]
        late: list[Trade] = []
        t = 202
        for i, trade in enumerate(history[1:], start=1):
            action = actions[i % len(actions)]
            if action == "drop":
                continue
            records.append(on_next(t, trade))
            t += 1
            if action == "dup":
                records.append(on_next(t, trade))
                t += 1
            if action == "late":
                late.append(trade)
        for trade in late:
            records.append(on_next(t, trade))
            t += 1
        records.append(on_next(t, history[-1]))  # the venue's newest trade always arrives
        live = s.create_hot_observable(*records)
        backfill, _ = pages(s, history, page_size=page_size, delay=3)
        result = s.start(lambda: gapless_trades(live, backfill, topic="t"), disposed=100_000)
        assert ids(result.messages) == list(range(1, n + 1))


def recent_of(
    scheduler: TestScheduler, *answers: list[Trade] | Exception
) -> tuple[Callable[[], Observable[list[Trade]]], list[int]]:
    queue: Iterator[list[Trade] | Exception] = iter(answers)
    calls: list[int] = []

    def recent() -> Observable[list[Trade]]:
        calls.append(int(scheduler.clock))
        answer = next(queue)
        if isinstance(answer, Exception):
            return scheduler.create_cold_observable(on_error(2, answer))
        return scheduler.create_cold_observable(on_next(2, answer), on_completed(2))

    return recent, calls


class TestOverlap:
    """Bybit: after a restart the recent trades fill what was missed, overlap proves it."""

    def test_missing_trades_are_filled_from_recent(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(101, 1)),
            on_next(211, tr(102, 2)),
            on_next(220, RESTART),
            on_next(221, tr(105, 5)),
            on_next(230, tr(106, 6)),
        )
        # Newest first, as venues answer; 102 overlaps, 105 arrives live too.
        recent, calls = recent_of(s, [tr(105, 5), tr(104, 4), tr(103, 3), tr(102, 2)])
        result = s.start(
            lambda: gapless_trades_by_overlap(
                live, recent, topic="publicTrade.BTCUSDT", report=reports.append
            )
        )
        assert values(result.messages) == [
            (101, False),
            (102, False),
            (103, True),
            (104, True),
            (105, False),
            (106, False),
        ]
        assert calls == [220] and reports == []

    def test_live_repeats_after_restart_and_old_rest_trades_are_dropped(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1, 10)),
            on_next(211, tr(2, 11)),
            on_next(220, RESTART),
            on_next(221, tr(2, 11)),
            on_next(222, tr(4, 13)),
        )
        # 0 is older than anything delivered (it predates our subscription): not ours.
        recent, _ = recent_of(s, [tr(0, 9), tr(2, 11), tr(3, 12)])
        result = s.start(
            lambda: gapless_trades_by_overlap(live, recent, topic="t", report=reports.append)
        )
        assert values(result.messages) == [(1, False), (2, False), (3, True), (4, False)]
        assert reports == []

    def test_no_overlap_reports_a_possible_gap(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1, 1)), on_next(220, RESTART), on_next(230, tr(9, 9))
        )
        recent, _ = recent_of(s, [tr(7, 7), tr(8, 8)])
        result = s.start(
            lambda: gapless_trades_by_overlap(live, recent, topic="t", report=reports.append)
        )
        assert values(result.messages) == [(1, False), (7, True), (8, True), (9, False)]
        assert len(reports) == 1 and "possible trade gap" in str(reports[0])
        assert isinstance(reports[0], FeedGapError) and reports[0].first_missing is None

    def test_live_duplicates_are_dropped(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1, 1)), on_next(211, tr(1, 1)), on_next(212, tr(2, 2))
        )
        recent, calls = recent_of(s)
        result = s.start(lambda: gapless_trades_by_overlap(live, recent, topic="t"))
        assert ids(result.messages) == [1, 2] and calls == []

    def test_restart_before_any_trade_needs_no_recovery(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, RESTART), on_next(220, tr(1, 1)))
        recent, calls = recent_of(s)
        result = s.start(lambda: gapless_trades_by_overlap(live, recent, topic="t"))
        assert ids(result.messages) == [1] and calls == []

    def test_recent_failing_after_retries_releases_held_trades(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1, 1)), on_next(220, RESTART), on_next(221, tr(5, 5))
        )
        boom = ExchangeError("down")
        recent, calls = recent_of(s, boom, boom)
        result = s.start(
            lambda: gapless_trades_by_overlap(
                live,
                recent,
                topic="t",
                retries=1,
                retry_delay=lambda n: 10.0,
                report=reports.append,
            )
        )
        assert calls == [220, 232]
        assert ids(result.messages) == [1, 5]
        assert [m.time for m in result.messages] == [210, 234]
        assert "recent trades unavailable" in str(reports[0])

    def test_retry_then_success(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_next(210, tr(1, 1)), on_next(220, RESTART))
        recent, calls = recent_of(s, ExchangeError("down"), [tr(1, 1), tr(2, 2)])
        result = s.start(
            lambda: gapless_trades_by_overlap(live, recent, topic="t", retry_delay=lambda n: 5.0)
        )
        assert calls == [220, 227]
        assert values(result.messages) == [(1, False), (2, True)]

    def test_second_restart_refetches(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1, 1)), on_next(220, RESTART), on_next(221, RESTART)
        )
        recent, calls = recent_of(s, [tr(1, 1)], [tr(1, 1), tr(2, 2)])
        result = s.start(lambda: gapless_trades_by_overlap(live, recent, topic="t"))
        assert calls == [220, 221]
        assert values(result.messages) == [(1, False), (2, True)]

    def test_memory_is_bounded(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(
            on_next(210, tr(1, 1)),
            on_next(211, tr(2, 2)),
            on_next(212, tr(3, 3)),
            on_next(213, tr(1, 1)),  # forgotten: memory=2, so it passes again
        )
        recent, _ = recent_of(s)
        result = s.start(lambda: gapless_trades_by_overlap(live, recent, topic="t", memory=2))
        assert ids(result.messages) == [1, 2, 3, 1]

    def test_completion_during_recovery(self) -> None:
        s = TestScheduler()
        reports: list[Exception] = []
        live = s.create_hot_observable(
            on_next(210, tr(1, 1)), on_next(220, RESTART), on_next(221, tr(3, 3)), on_completed(222)
        )
        recent, _ = recent_of(s, [tr(2, 2)])
        result = s.start(
            lambda: gapless_trades_by_overlap(live, recent, topic="t", report=reports.append)
        )
        assert ids(result.messages) == [1, 3]
        assert result.messages[-1] == on_completed(222)
        assert "ended during recovery" in str(reports[0])

    def test_error_is_forwarded(self) -> None:
        s = TestScheduler()
        live = s.create_hot_observable(on_error(220, ValueError("x")))
        result = s.start(lambda: gapless_trades_by_overlap(live, reactivex.empty, topic="t"))
        assert [on_error(220, lambda e: isinstance(e, ValueError))] == result.messages
