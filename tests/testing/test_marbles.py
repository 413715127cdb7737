"""Typed marble helpers: diagrams, runs, and model streams stamped with virtual time."""

from __future__ import annotations

from decimal import Decimal

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxconnector.models import BookTicker, Trade
from rxconnector.testing.factories import make_trade
from rxconnector.testing.marbles import (
    MarbleRun,
    at_time,
    cold,
    emitted,
    exp,
    expected,
    hot,
)
from rxconnector.testing.model_marbles import book_tickers, books, stamped, ticks, trades_from

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


class TestCold:
    """cold() plays a diagram from each subscription on, on the subscriber's scheduler."""

    def test_plays_values_relative_to_the_subscription(self) -> None:
        result = MarbleRun().start(cold("-a--b-|", {"a": 1, "b": 2}))
        assert result == [on_next(201, 1), on_next(204, 2), on_completed(206)]

    def test_numbers_stand_for_themselves_and_groups_share_a_time(self) -> None:
        result = MarbleRun().start(cold("-1-(2,3)-|"))
        assert result == [on_next(201, 1), on_next(203, 2), on_next(203, 3), on_completed(209)]

    def test_numeric_keys_in_values_are_looked_up(self) -> None:
        result = MarbleRun().start(cold("-1-|", {"1": "one"}))
        assert result == [on_next(201, "one"), on_completed(203)]

    def test_a_token_missing_from_values_is_an_error_not_a_string(self) -> None:
        with pytest.raises(ValueError, match=r"uses 'b', which values does not define"):
            cold("-a-b-|", {"a": 1})

    def test_hash_fails_with_the_given_error(self) -> None:
        boom = ConnectionError("gone")
        result = MarbleRun().start(cold("-a-#", {"a": 1}, boom))
        assert result == [on_next(201, 1), on_error(203, boom)]

    def test_each_subscriber_gets_its_own_run(self) -> None:
        scheduler = TestScheduler()
        source = cold("-a-|", {"a": "x"})
        first, second = scheduler.create_observer(), scheduler.create_observer()
        source.subscribe(first, scheduler=scheduler)
        scheduler.advance_to(5)
        source.subscribe(second, scheduler=scheduler)
        scheduler.start()
        assert first.messages == [on_next(1, "x"), on_completed(3)]
        assert second.messages == [on_next(6, "x"), on_completed(8)]

    def test_timespan_scales_the_diagram(self) -> None:
        run = MarbleRun(timespan=10)
        result = run.start(run.cold("-a-|", {"a": 1}))
        assert result == [on_next(210, 1), on_completed(230)]

    def test_disposing_cancels_what_is_still_scheduled(self) -> None:
        scheduler = TestScheduler()
        seen = scheduler.create_observer()
        subscription = cold("-a---b-|", {"a": 1, "b": 2}).subscribe(seen, scheduler=scheduler)
        scheduler.advance_to(3)
        subscription.dispose()
        scheduler.start()
        assert seen.messages == [on_next(1, 1)]

    def test_without_any_scheduler_it_says_what_to_do(self) -> None:
        errors: list[Exception] = []
        cold("-a-|", {"a": 1}).subscribe(on_error=errors.append)
        assert len(errors) == 1
        assert "subscribe with scheduler=TestScheduler()" in str(errors[0])


class TestHot:
    """hot() emits at absolute times whoever listens, and does not lose its first column."""

    def test_first_column_reaches_a_subscriber_at_origin(self) -> None:
        run = MarbleRun()
        source = run.hot("a-b-|", {"a": 1, "b": 2})
        assert run.start(source) == [on_next(200, 1), on_next(202, 2), on_completed(204)]
        assert source.subscriptions == [subscribe(200, 204)]

    def test_late_subscribers_miss_earlier_events(self) -> None:
        scheduler = TestScheduler()
        source = hot("-a-b-c-|", {"a": 1, "b": 2, "c": 3}, scheduler=scheduler)
        late = scheduler.create_observer()
        scheduler.schedule_absolute(204, lambda *_: source.subscribe(late))
        scheduler.start()
        assert late.messages == [on_next(205, 3), on_completed(207)]

    def test_after_the_end_a_subscriber_gets_the_end_at_once(self) -> None:
        scheduler = TestScheduler()
        source = hot("-a-|", {"a": 1}, scheduler=scheduler, origin=10)
        scheduler.advance_to(50)
        after = scheduler.create_observer()
        source.subscribe(after)
        assert after.messages == [on_completed(50)]

    def test_records_when_each_subscriber_left(self) -> None:
        scheduler = TestScheduler()
        source = hot("-a-a-a-a-|", {"a": 1}, scheduler=scheduler)
        subscriptions: list[reactivex.abc.DisposableBase] = []
        scheduler.schedule_absolute(201, lambda *_: subscriptions.append(source.subscribe()))
        scheduler.schedule_absolute(204, lambda *_: subscriptions[0].dispose())
        scheduler.start()
        assert source.subscriptions == [subscribe(201, 204)]


class TestExpected:
    """expected() builds records that compare errors by type as well as message."""

    def test_matches_the_records_of_a_run(self) -> None:
        def times_ten(x: int) -> int:
            return x * 10

        run = MarbleRun()
        result = run.start(run.cold("-a-b-|", {"a": 1, "b": 2}).pipe(ops.map(times_ten)))
        assert result == run.expected("-x-y-|", {"x": 10, "y": 20})
        assert run.exp("-x-y-|", {"x": 10, "y": 20}) == result
        assert result != run.expected("-x-y|", {"x": 10, "y": 20})

    def test_error_of_another_type_does_not_match_on_either_side(self) -> None:
        result = MarbleRun().start(cold("-#", error=ValueError("bad")))
        assert result == expected("-#", error=ValueError("bad"))
        assert result != expected("-#", error=KeyError("bad"))
        assert expected("-#", error=KeyError("bad")) != result
        assert result != expected("-#", error=ValueError("other"))

    def test_a_subclass_error_matches_its_base(self) -> None:
        result = MarbleRun().start(cold("-#", error=ConnectionResetError("reset")))
        assert result == exp("-#", error=ConnectionError("reset"))

    def test_origin_and_timespan(self) -> None:
        records = expected("-a|", {"a": 1}, timespan=2, origin=0)
        assert records == [on_next(2, 1), on_completed(4)]

    def test_emitted_keeps_only_the_values(self) -> None:
        records = expected("-a-b-#", {"a": 1, "b": 2})
        assert emitted(records) == [1, 2]


class TestAtTime:
    """at_time() puts an action behind everything already due at the same instant."""

    def test_runs_after_a_subscription_scheduled_later_for_the_same_time(self) -> None:
        scheduler = TestScheduler()
        order: list[str] = []
        at_time(scheduler, 10, lambda: order.append("event"))
        scheduler.schedule_absolute(10, lambda *_: order.append("subscribe"))
        scheduler.start()
        assert order == ["subscribe", "event"]


class TestMarbleRun:
    """MarbleRun: one scheduler, one time frame, one start."""

    def test_context_manager_and_factory(self) -> None:
        with MarbleRun() as run:
            built: list[float] = []

            def create() -> Observable[int]:
                built.append(run.scheduler.clock)
                return run.cold("-1|")

            assert run.start(create) == [on_next(201, 1), on_completed(202)]
        assert built == [100.0]

    def test_starts_only_once(self) -> None:
        run = MarbleRun()
        run.start(reactivex.empty())
        with pytest.raises(RuntimeError, match="only once"):
            run.start(reactivex.empty())

    def test_disposes_at_the_end_time(self) -> None:
        run = MarbleRun(disposed=205)
        source = run.hot("-a-a-a-a-|", {"a": 1})
        assert run.start(source) == [on_next(201, 1), on_next(203, 1)]
        assert source.subscriptions == [subscribe(200, 205)]

    def test_rejects_times_out_of_order(self) -> None:
        with pytest.raises(ValueError, match="created < subscribed < disposed"):
            MarbleRun(created=300, subscribed=200)

    def test_time_operators_run_in_virtual_time(self) -> None:
        run = MarbleRun()
        source = run.hot("-a-b------c--|", {"a": 1, "b": 2, "c": 3})
        result = run.start(source.pipe(ops.debounce(3)))
        assert result == run.expected("------b------(c,|)", {"b": 2, "c": 3})


class TestTicks:
    """ticks(): a Ticker per marble, stamped with the virtual time it is emitted at."""

    def test_last_bid_ask_and_virtual_event_time(self) -> None:
        result = MarbleRun().start(ticks("-a--b|", {"a": 100, "b": "101.5"}))
        first, second = emitted(result)
        assert (first.last, first.bid, first.ask) == (
            Decimal(100),
            Decimal("99.99"),
            Decimal("100.01"),
        )
        assert (first.event_time, first.received_at) == (201_000, 201_000.0)
        assert second.event_time == 204_000
        assert result[-1] == on_completed(205)

    def test_open_high_low_track_the_run(self) -> None:
        result = MarbleRun().start(ticks("-a-b-c-|", {"a": 100, "b": 110, "c": 90}))
        last = emitted(result)[-1]
        assert (last.open, last.high, last.low, last.last) == tuple(
            map(Decimal, (100, 110, 90, 90))
        )

    def test_numeric_tokens_and_extra_fields(self) -> None:
        result = MarbleRun().start(ticks("-100-101|", symbol="ETHUSDT", spread=1, volume=5))
        prices = [(t.symbol, t.last, t.bid, t.volume) for t in emitted(result)]
        assert prices == [
            ("ETHUSDT", Decimal(100), Decimal("99.5"), Decimal(5)),
            ("ETHUSDT", Decimal(101), Decimal("100.5"), Decimal(5)),
        ]

    def test_each_subscription_starts_its_own_open(self) -> None:
        scheduler = TestScheduler()
        source = ticks("-a-b|", {"a": 5, "b": 1})
        early, late = scheduler.create_observer(), scheduler.create_observer()
        source.subscribe(early, scheduler=scheduler)
        scheduler.schedule_absolute(10, lambda *_: source.subscribe(late, scheduler=scheduler))
        scheduler.start()
        assert emitted(early.messages)[-1].low == Decimal(1)
        first_late = emitted(late.messages)[0]
        assert (first_late.open, first_late.low, first_late.event_time) == (5, 5, 11_000)

    def test_bad_prices_fail_at_the_line_that_wrote_them(self) -> None:
        with pytest.raises(ValueError, match="entry 'a' of the table is not usable"):
            ticks("-a|", {"a": "cheap"})
        with pytest.raises(ValueError, match="uses 'x'"):
            ticks("-x|")

    def test_a_builder_failure_arrives_as_on_error(self) -> None:
        result = MarbleRun().start(ticks("-a|", {"a": 1}, spread="wide"))

        assert result == expected("-#", error=ValueError("not a decimal number: 'wide'"))

    def test_hot_on_a_scheduler_is_shared_and_absolute(self) -> None:
        run = MarbleRun()
        source = ticks("a-b|", {"a": 1, "b": 2}, hot_on=run.scheduler)
        result = run.start(source)
        assert [(r.time, r.value.value.last) for r in result[:2]] == [  # type: ignore[union-attr]
            (200, Decimal(1)),
            (202, Decimal(2)),
        ]


class TestTradesFrom:
    """trades_from(): ids by first appearance; a repeated token is a re-delivered trade."""

    def test_ids_and_repeats(self) -> None:
        table = {"a": (100, "1", "buy"), "b": (100, "1", "buy"), "c": (99, "0.5", "sell")}
        trades = emitted(MarbleRun().start(trades_from("-a-b-a-c|", table, first_id=10)))
        assert [t.trade_id for t in trades] == [10, 11, 10, 12]
        assert trades[2].time == trades[0].time == 201_000
        assert trades[2].event_time == 205_000
        assert (trades[3].price, trades[3].quantity, trades[3].side) == (
            Decimal(99),
            Decimal("0.5"),
            "sell",
        )

    def test_a_trade_in_the_table_is_emitted_unchanged(self) -> None:
        backfilled = make_trade(trade_id=42, backfilled=True)
        trades = emitted(MarbleRun().start(trades_from("-x|", {"x": backfilled})))
        assert trades == [backfilled]

    def test_numbers_cannot_stand_for_trades(self) -> None:
        with pytest.raises(ValueError, match="uses '1'"):
            trades_from("-1|", {"a": (1, 1, "buy")})

    def test_bad_side_fails_early(self) -> None:
        with pytest.raises(ValueError, match="entry 'a'"):
            trades_from("-a|", {"a": (1, 1, "up")})


class TestBookTickersAndBooks:
    """book_tickers()/books(): quotes and books with counting update ids."""

    def test_book_tickers(self) -> None:
        quotes: dict[str, tuple[int, int] | tuple[int, int, int, int] | BookTicker] = {
            "a": (100, 101),
            "b": (100, 107, 3, 4),
        }
        result = emitted(MarbleRun().start(book_tickers("-a-b|", quotes)))
        assert [(q.spread, q.update_id, q.event_time) for q in result] == [
            (Decimal(1), 1, 201_000),
            (Decimal(7), 2, 203_000),
        ]
        assert (result[1].bid_qty, result[1].ask_qty) == (Decimal(3), Decimal(4))

    def test_books_are_sorted_best_first(self) -> None:
        table = {"a": ([(99, 1), (100, 2)], [(102, 1), (101, 1)])}
        (book,) = emitted(MarbleRun().start(books("-a|", table)))
        assert (book.best_bid, book.best_ask, book.update_id, book.event_time) == (
            Decimal(100),
            Decimal(101),
            1,
            201_000,
        )

    def test_stamped_builds_any_model(self) -> None:
        def make(price: int, event_time: int) -> Trade:
            return make_trade(price=price, event_time=event_time)

        trades = emitted(MarbleRun().start(stamped("--a|", {"a": 7}, make)))
        assert [(t.price, t.event_time) for t in trades] == [(Decimal(7), 202_000)]
