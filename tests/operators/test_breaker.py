"""CircuitBreaker state machine and the breaker() operator, in virtual time."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.mockobserver import MockObserver
from reactivex.testing.subscription import Subscription

from rxconnector.config import BreakerConfig
from rxconnector.errors import (
    CircuitOpenError,
    ClockSyncError,
    ConfigError,
    ConnectError,
    ExchangeError,
    OrderRejectedError,
    OrderStatusUnknownError,
    ParseError,
    RateLimitError,
    RequestTimeoutError,
    SubscriptionError,
    WebSocketClosedError,
)
from rxconnector.models import BreakerState, BreakerStats
from rxconnector.operators import CircuitBreaker, breaker, default_is_failure

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

CONFIG = BreakerConfig(max_failures=3, success_threshold=2, open_timeout=10, half_open_max_calls=2)


def _is_open_error(name: str, retry_after: float) -> Any:
    def check(error: Exception) -> bool:
        return (
            isinstance(error, CircuitOpenError)
            and error.breaker == name
            and error.retry_after == pytest.approx(retry_after)
        )

    return check


class Harness:
    """A breaker on a TestScheduler plus helpers to fire calls at given times."""

    def __init__(self, config: BreakerConfig = CONFIG, **kwargs: Any) -> None:
        self.scheduler = TestScheduler()
        self.changes: list[tuple[BreakerState, BreakerState]] = []
        self.cb = CircuitBreaker(
            "rest",
            config,
            scheduler=self.scheduler,
            on_state_change=lambda old, new: self.changes.append((old, new)),
            **kwargs,
        )
        self.states = self.scheduler.create_observer()
        self.cb.state.subscribe(self.states)

    def failing(self, error: Exception | None = None) -> Any:
        return self.scheduler.create_cold_observable(on_error(1, error or ConnectError("down")))

    def ok(self, duration: float = 1) -> Any:
        return self.scheduler.create_cold_observable(on_next(duration, "r"), on_completed(duration))

    def call(self, source: Observable[Any], at: float) -> MockObserver[Any]:
        observer: MockObserver[Any] = self.scheduler.create_observer()
        self.scheduler.schedule_absolute(
            at,
            lambda *_: source.pipe(breaker(self.cb)).subscribe(observer, scheduler=self.scheduler),
        )
        return observer

    def run_until(self, time: float) -> None:
        self.scheduler.advance_to(time)


def _dummy_ticket(_cb: CircuitBreaker) -> Any:
    """A ticket of an earlier period (what a call admitted before the breaker opened
    holds), so recording its outcome counts as no trial."""
    from rxconnector.operators._breaker import _Ticket

    return _Ticket(generation=-1, trial=False)


class TestDefaultIsFailure:
    """Server-side trouble counts as failure; the caller's own mistakes do not."""

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (ConnectError("refused"), True),
            (RequestTimeoutError("slow"), True),
            (WebSocketClosedError("closed", 1006), True),
            (TimeoutError(), True),
            (ConnectionResetError(), True),
            (ExchangeError("bad gateway", status=502), True),
            (ExchangeError("server error", status=200, code=10016, retryable=True), True),
            # a 418 is a hold with an exact end, not a failure (issue 16)
            (RateLimitError("banned", retry_after=120, status=418, banned=True), False),
            (RateLimitError("slow down", retry_after=1, status=429), False),
            (ExchangeError("unknown symbol", status=400, code=-1121), False),
            (OrderRejectedError("tick size", filter="PRICE_FILTER"), False),
            (CircuitOpenError("other", 3), False),
            (SubscriptionError("btcusdt@x", "bad"), False),
            (ParseError("garbage"), False),
            (ConfigError("x", "bad"), False),
            (ClockSyncError(900, 500), False),
            (ValueError("pipeline bug"), False),
        ],
    )
    def test_classification(self, error: Exception, expected: bool) -> None:
        assert default_is_failure(error) is expected

    def test_exchange_error_caused_by_a_timeout_is_a_failure(self) -> None:
        try:
            try:
                raise RequestTimeoutError("no answer")
            except RequestTimeoutError as cause:
                raise OrderStatusUnknownError("timed out", client_order_id="rxc1") from cause
        except OrderStatusUnknownError as error:
            assert default_is_failure(error)


class TestClosedToOpen:
    """Closed opens after max_failures consecutive failures."""

    def test_opens_on_the_third_consecutive_failure(self) -> None:
        h = Harness()
        for t in (200, 210, 220):
            h.call(h.failing(), t)
        h.run_until(225)
        assert h.states.messages == [on_next(0, CLOSED), on_next(221, OPEN)]
        assert h.changes == [(CLOSED, OPEN)]
        assert h.cb.current is OPEN
        assert h.cb.retry_after == pytest.approx(6.0)  # opened at 221 for 10 s

    def test_a_success_resets_the_consecutive_count(self) -> None:
        h = Harness()
        for t, src in [(200, h.failing()), (210, h.failing()), (220, h.ok()), (230, h.failing())]:
            h.call(src, t)
        h.call(h.failing(), 240)
        h.run_until(300)
        assert h.cb.current is CLOSED
        assert h.cb.stats.consecutive_failures == 2

    def test_client_errors_do_not_open_and_reset_the_count(self) -> None:
        h = Harness()
        bad_request = ExchangeError("unknown symbol", status=400)
        for t in (200, 210):
            h.call(h.failing(), t)
        h.call(h.failing(bad_request), 220)
        for t in (230, 240):
            h.call(h.failing(), t)
        h.run_until(300)
        assert h.cb.current is CLOSED

    def test_state_is_recorded_before_the_error_is_forwarded(self) -> None:
        h = Harness()
        seen: list[BreakerState] = []
        for t in (200, 210):
            h.call(h.failing(), t)
        h.scheduler.schedule_absolute(
            220,
            lambda *_: (
                h.failing()
                .pipe(breaker(h.cb))
                .subscribe(on_error=lambda _: seen.append(h.cb.current), scheduler=h.scheduler)
            ),
        )
        h.run_until(300)
        assert seen == [OPEN]


class TestOpen:
    """An open breaker fails fast without subscribing, then half-opens on the scheduler."""

    def test_rejects_at_once_without_subscribing_upstream(self) -> None:
        h = Harness()
        for t in (200, 210, 220):
            h.call(h.failing(), t)
        guarded = h.ok()
        rejected = h.call(guarded, 225)
        h.run_until(230)
        assert [on_error(225, _is_open_error("rest", 6.0))] == rejected.messages
        assert guarded.subscriptions == []
        assert h.cb.stats.rejections == 1

    def test_half_opens_after_open_timeout(self) -> None:
        h = Harness()
        for t in (200, 210, 220):
            h.call(h.failing(), t)
        h.run_until(240)
        assert h.states.messages == [
            on_next(0, CLOSED),
            on_next(221, OPEN),
            on_next(231, HALF_OPEN),
        ]
        assert h.cb.retry_after == 0.0

    def test_a_late_timer_is_not_needed_to_half_open(self) -> None:
        h = Harness()
        h.cb.trip(5)
        h.scheduler.sleep(6)  # the clock moves but no scheduled action has run yet
        assert h.cb.current is HALF_OPEN
        assert h.changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]

    def test_outcomes_of_calls_admitted_before_opening_do_not_close_it(self) -> None:
        h = Harness()
        slow = h.ok(duration=8)
        h.call(slow, 200)  # admitted while closed, succeeds at 208 while open
        for t in (201, 202, 203):
            h.call(h.failing(), t)
        h.run_until(210)
        assert h.cb.current is OPEN


class TestHalfOpen:
    """Half-open admits a limited number of trials and decides on their outcome."""

    def _half_open(self) -> Harness:
        h = Harness()
        h.cb.trip(10)  # open at 0 .. half-open at 10
        h.run_until(100)
        assert h.cb.current is HALF_OPEN
        return h

    def test_closes_after_success_threshold_successes(self) -> None:
        h = self._half_open()
        h.call(h.ok(), 200)
        h.call(h.ok(), 210)
        h.run_until(300)
        assert h.states.messages[-2:] == [on_next(10, HALF_OPEN), on_next(211, CLOSED)]
        assert h.cb.stats.consecutive_failures == 0

    def test_one_success_is_not_enough(self) -> None:
        h = self._half_open()
        h.call(h.ok(), 200)
        h.run_until(300)
        assert h.cb.current is HALF_OPEN

    def test_any_trial_failure_reopens_with_a_fresh_timeout(self) -> None:
        h = self._half_open()
        h.call(h.ok(), 200)
        h.call(h.failing(), 210)
        h.run_until(300)
        assert h.states.messages[-3:] == [
            on_next(10, HALF_OPEN),
            on_next(211, OPEN),
            on_next(221, HALF_OPEN),
        ]

    def test_admits_at_most_half_open_max_calls_concurrent_trials(self) -> None:
        h = self._half_open()
        first, second, third = h.ok(20), h.ok(20), h.ok(20)
        h.call(first, 200)
        h.call(second, 201)
        rejected = h.call(third, 202)
        later = h.ok(5)
        admitted_later = h.call(later, 225)  # a slot freed at 220
        h.run_until(300)
        assert [on_error(202, _is_open_error("rest", 0.0))] == rejected.messages
        assert third.subscriptions == []
        assert later.subscriptions == [Subscription(225, 230)]
        assert admitted_later.messages == [on_next(230, "r"), on_completed(230)]

    def test_disposing_a_trial_frees_its_slot_and_records_nothing(self) -> None:
        h = self._half_open()
        hanging = h.scheduler.create_cold_observable()  # never answers
        subs: list[Any] = []
        for t in (200, 201):
            h.scheduler.schedule_absolute(
                t,
                lambda *_: subs.append(
                    hanging.pipe(breaker(h.cb)).subscribe(scheduler=h.scheduler)
                ),
            )
        h.scheduler.schedule_absolute(205, lambda *_: subs[0].dispose())
        newcomer = h.ok()
        h.call(newcomer, 206)
        h.run_until(300)
        assert newcomer.subscriptions == [Subscription(206, 207)]
        stats = h.cb.stats
        assert (stats.successes, stats.failures) == (1, 0)  # only the newcomer's success
        assert h.cb.current is HALF_OPEN

    def test_a_stale_failure_from_before_the_opening_does_not_reopen(self) -> None:
        h = Harness()
        slow_fail = h.scheduler.create_cold_observable(on_error(50, ConnectError("late")))
        h.call(slow_fail, 200)  # admitted while closed, fails at 250 (half-open by then)
        h.scheduler.schedule_absolute(201, lambda *_: h.cb.trip(10))
        h.run_until(300)
        assert h.cb.current is HALF_OPEN
        assert h.cb.stats.failures == 1


class TestBanAndTrip:
    """A ban opens the breaker at once for exactly its retry_after (not max(ban,
    open_timeout)), then it is closed again; calls meanwhile fail with the remaining time."""

    @pytest.mark.parametrize(("retry_after", "closed_at"), [(120, 321), (2, 203), (1, 202)])
    def test_banned_rate_limit_opens_for_exactly_retry_after(
        self, retry_after: float, closed_at: float
    ) -> None:
        h = Harness()
        ban = RateLimitError("IP banned", retry_after=retry_after, status=418, banned=True)
        h.call(h.failing(ban), 200)
        h.run_until(1000)
        assert h.states.messages == [
            on_next(0, CLOSED),
            on_next(201, OPEN),
            on_next(closed_at, CLOSED),
        ]
        assert h.cb.stats.failures == 0

    def test_calls_during_a_ban_fail_at_once_with_the_remaining_time(self) -> None:
        h = Harness()
        h.call(h.failing(RateLimitError("ban", retry_after=5, status=418, banned=True)), 200)
        during = h.call(h.ok(), 203.5)
        after = h.call(h.ok(), 206)
        h.run_until(300)
        assert len(during.messages) == 1
        error = during.messages[0].value.exception
        assert during.messages[0].time == 203.5
        assert isinstance(error, RateLimitError) and error.banned and error.status == 418
        assert error.retry_after == pytest.approx(2.5)
        assert after.messages == [on_next(207, "r"), on_completed(207)]

    def test_ban_while_open_for_failures_returns_to_half_open(self) -> None:
        h = Harness()
        for t in (100, 101, 102):
            h.call(h.failing(), t)  # open at 103 until 113
        h.call(h.ok(), 110)  # refused
        h.scheduler.schedule_absolute(
            111,
            lambda *_: h.cb.record(
                _dummy_ticket(h.cb),
                RateLimitError("ban", retry_after=20, status=418, banned=True),
            ),
        )
        h.run_until(200)
        assert [m.value.value for m in h.states.messages] == [CLOSED, OPEN, HALF_OPEN]
        assert [m.time for m in h.states.messages] == [0, 103, 131]

    def test_plain_429_does_not_open(self) -> None:
        h = Harness()
        for t in (200, 210, 220, 230):
            h.call(h.failing(RateLimitError("slow down", retry_after=1)), t)
        h.run_until(300)
        assert h.cb.current is CLOSED

    def test_trip_extends_but_never_shortens_an_open_period(self) -> None:
        h = Harness()
        h.scheduler.schedule_absolute(100, lambda *_: h.cb.trip(50))
        h.scheduler.schedule_absolute(110, lambda *_: h.cb.trip(5))  # shorter: ignored
        h.scheduler.schedule_absolute(120, lambda *_: h.cb.trip(60))  # longer: extends
        h.run_until(500)
        assert h.states.messages == [
            on_next(0, CLOSED),
            on_next(100, OPEN),
            on_next(180, HALF_OPEN),
        ]

    def test_trip_defaults_to_open_timeout(self) -> None:
        h = Harness()
        h.cb.trip()
        assert h.cb.retry_after == pytest.approx(10.0)


class TestOutcomes:
    """What counts as success, failure or nothing."""

    def test_disposal_after_a_value_counts_as_success(self) -> None:
        h = Harness()
        endless = h.scheduler.create_cold_observable(on_next(1, "r"), on_next(2, "again"))
        result = h.scheduler.start(lambda: endless.pipe(breaker(h.cb), ops.first()))
        assert result.messages == [on_next(201, "r"), on_completed(201)]
        assert h.cb.stats.successes == 1

    def test_disposal_before_any_outcome_records_nothing(self) -> None:
        h = Harness()
        silent = h.scheduler.create_cold_observable(on_next(50, "late"))
        h.scheduler.start(lambda: silent.pipe(breaker(h.cb)), disposed=210)
        stats = h.cb.stats
        assert (stats.requests, stats.successes, stats.failures) == (1, 0, 0)

    def test_inner_circuit_open_error_is_neutral(self) -> None:
        h = Harness()
        for t in (200, 210, 220, 230):
            h.call(h.failing(CircuitOpenError("inner", 1)), t)
        h.run_until(300)
        stats = h.cb.stats
        assert (stats.successes, stats.failures, stats.consecutive_failures) == (0, 0, 0)
        assert h.cb.current is CLOSED

    def test_custom_is_failure(self) -> None:
        h = Harness(is_failure=lambda e: isinstance(e, KeyError))
        for t in (200, 210, 220):
            h.call(h.failing(KeyError("x")), t)
        h.run_until(225)
        assert h.cb.current is OPEN

    def test_raising_is_failure_counts_as_failure(self, caplog: pytest.LogCaptureFixture) -> None:
        def broken(_: Exception) -> bool:
            raise RuntimeError("predicate bug")

        h = Harness(is_failure=broken)
        with caplog.at_level(logging.ERROR, logger="rxconnector"):
            h.call(h.failing(), 200)
            h.run_until(300)
        assert h.cb.stats.failures == 1
        assert any("is_failure raised" in r.getMessage() for r in caplog.records)

    def test_values_pass_through_unchanged(self) -> None:
        h = Harness()
        src = h.scheduler.create_cold_observable(on_next(1, 1), on_next(2, 2), on_completed(3))
        result = h.scheduler.start(lambda: src.pipe(breaker(h.cb)))
        assert result.messages == [on_next(201, 1), on_next(202, 2), on_completed(203)]


class TestStatsAndReset:
    """Counters, reset() and the disabled breaker."""

    def test_stats_count_everything(self) -> None:
        h = Harness()
        h.call(h.ok(), 200)
        for t in (210, 220, 230):
            h.call(h.failing(), t)
        h.call(h.ok(), 235)  # rejected
        h.run_until(236)
        assert h.cb.stats == BreakerStats(
            requests=4,
            successes=1,
            failures=3,
            rejections=1,
            consecutive_failures=3,
            last_failure_time=231.0,  # scheduler clock in epoch seconds (virtual ticks)
            state=OPEN,
        )

    def test_reset_closes_zeroes_and_cancels_the_timer(self) -> None:
        h = Harness()
        h.cb.trip(10)
        h.scheduler.schedule_absolute(5, lambda *_: h.cb.reset())
        h.run_until(100)
        assert h.states.messages == [on_next(0, CLOSED), on_next(0, OPEN), on_next(5, CLOSED)]
        assert h.cb.stats == BreakerStats()

    def test_disabled_breaker_never_opens(self) -> None:
        h = Harness(BreakerConfig(enabled=False, max_failures=1))
        for t in (200, 210, 220):
            h.call(h.failing(ExchangeError("down", status=503)), t)
        h.cb.trip(100)
        h.run_until(300)
        assert h.cb.current is CLOSED
        assert h.cb.stats.failures == 3

    def test_retry_after_is_zero_when_closed(self) -> None:
        assert Harness().cb.retry_after == 0.0


class TestStateObservable:
    """The state observable replays the current state and isolates its subscribers."""

    def test_new_subscriber_gets_current_state(self) -> None:
        h = Harness()
        h.cb.trip(10)
        late: list[BreakerState] = []
        h.cb.state.subscribe(late.append)
        assert late == [OPEN]

    def test_raising_subscribers_and_callbacks_do_not_break_the_breaker(self) -> None:
        scheduler = TestScheduler()

        def bad_callback(_: BreakerState, __: BreakerState) -> None:
            raise RuntimeError("callback bug")

        cb = CircuitBreaker("x", CONFIG, scheduler=scheduler, on_state_change=bad_callback)

        def bad_subscriber(state: BreakerState) -> None:
            if state is OPEN:
                raise RuntimeError("subscriber bug")

        cb.state.subscribe(bad_subscriber)
        good: list[BreakerState] = []
        cb.state.subscribe(good.append)
        cb.trip(1)  # must not raise
        scheduler.advance_to(5)
        assert good == [CLOSED, OPEN, HALF_OPEN]

    def test_the_scheduler_can_come_from_subscribe(self) -> None:
        scheduler = TestScheduler()
        cb = CircuitBreaker("x", CONFIG)  # no scheduler given
        failing = scheduler.create_cold_observable(on_error(1, ConnectError("down")))
        for t in (200, 210, 220):
            scheduler.schedule_absolute(
                t,
                lambda *_: failing.pipe(breaker(cb)).subscribe(
                    on_error=lambda _: None, scheduler=scheduler
                ),
            )
        scheduler.advance_to(230)
        assert cb.current is OPEN
        scheduler.advance_to(231)  # 221 + open_timeout 10
        assert cb.current is HALF_OPEN

    def test_repr_names_the_breaker(self) -> None:
        assert repr(Harness().cb) == "CircuitBreaker('rest', state=closed)"


class TestBreakerWaiting:
    """Recovery traffic waits for a ban hold or an open period instead of failing."""

    def _call_waiting(self, h: Harness, source: Observable[Any], at: float) -> MockObserver[Any]:
        from rxconnector.operators import breaker_waiting

        observer: MockObserver[Any] = h.scheduler.create_observer()
        h.scheduler.schedule_absolute(
            at,
            lambda *_: source.pipe(breaker_waiting(h.cb)).subscribe(
                observer, scheduler=h.scheduler
            ),
        )
        return observer

    def test_waits_exactly_for_the_end_of_a_ban(self) -> None:
        h = Harness()
        h.call(h.failing(RateLimitError("ban", retry_after=5, status=418, banned=True)), 200)
        source = h.scheduler.create_cold_observable(on_next(1, "snap"), on_completed(1))
        waiting = self._call_waiting(h, source, 202)
        h.run_until(300)
        # the ban began at 201 and ends at 206: subscribed then, answered a tick later
        assert waiting.messages == [on_next(207, "snap"), on_completed(207)]
        assert source.subscriptions == [Subscription(206, 207)]

    def test_waits_through_open_and_half_open_then_succeeds(self) -> None:
        h = Harness()
        for t in (100, 101, 102):
            h.call(h.failing(), t)  # opens at 103 for 10 s: half-open at 113
        waiting = self._call_waiting(h, h.ok(), 104)
        h.run_until(300)
        assert waiting.messages == [on_next(114, "r"), on_completed(114)]

    def test_an_answer_error_is_forwarded(self) -> None:
        h = Harness()
        waiting = self._call_waiting(h, h.failing(ExchangeError("bad", status=400)), 100)
        h.run_until(200)
        assert [m.value.kind for m in waiting.messages] == ["E"]
