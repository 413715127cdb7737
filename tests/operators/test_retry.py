"""retry_with_backoff(): tenacity strategies timed on the Rx scheduler, in virtual time."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import attrs
import pytest
import reactivex
import tenacity
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector.config import ConnectionConfig
from rxconnector.errors import (
    CircuitOpenError,
    ConfigError,
    ConnectError,
    ExchangeError,
    NotSupportedError,
    OrderRejectedError,
    OrderStatusUnknownError,
    ParseError,
    RateLimitError,
    RequestTimeoutError,
    SubscriptionError,
)
from rxconnector.operators import (
    RetryEvent,
    backoff_policy_from_config,
    default_retry_if,
    default_wait,
    retry_with_backoff,
)

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


def _is(kind: type[Exception]) -> Any:
    return lambda e: isinstance(e, kind)


def _starts(subscriptions: list[Subscription]) -> list[float]:
    return [s.subscribe for s in subscriptions]


def _state(attempt: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = attempt
    return state


class TestSchedule:
    """Resubscriptions happen exactly when the wait strategy says."""

    def test_exponential_schedule_and_stop_after_attempt(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(3, ConnectError("ws closed")))
        result = scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(
                    tenacity.wait_exponential(multiplier=3), tenacity.stop_after_attempt(4)
                )
            )
        )
        # 200 sub, 203 err -> wait 3 -> 206 sub, 209 err -> wait 6 -> 215 ... wait 12 -> 230
        assert failing.subscriptions == [
            Subscription(200, 203),
            Subscription(206, 209),
            Subscription(215, 218),
            Subscription(230, 233),
        ]
        assert [on_error(233, _is(ConnectError))] == result.messages

    def test_the_cap_bounds_every_delay(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))
        scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(tenacity.wait_exponential(multiplier=1, max=4))
            ),
            disposed=240,
        )
        # fail +1, then waits 1, 2, 4, 4, 4, 4 ...
        assert _starts(failing.subscriptions) == [200, 202, 205, 210, 215, 220, 225, 230, 235]
        assert failing.subscriptions[-1] == Subscription(235, 236)

    def test_values_and_completion_pass_through(self) -> None:
        scheduler = TestScheduler()
        attempts = 0

        def source() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                return scheduler.create_cold_observable(
                    on_next(1, attempts), on_error(2, ConnectError())
                )
            return scheduler.create_cold_observable(on_next(1, "ok"), on_completed(2))

        result = scheduler.start(
            lambda: reactivex.defer(lambda _: source()).pipe(
                retry_with_backoff(tenacity.wait_fixed(5))
            )
        )
        assert result.messages == [
            on_next(201, 1),
            on_next(208, 2),
            on_next(215, "ok"),
            on_completed(216),
        ]

    def test_retry_after_of_the_error_is_respected(self) -> None:
        scheduler = TestScheduler()
        limited = scheduler.create_cold_observable(
            on_error(1, RateLimitError("429", retry_after=30))
        )
        scheduler.start(
            lambda: limited.pipe(retry_with_backoff(tenacity.wait_fixed(1))), disposed=240
        )
        assert _starts(limited.subscriptions) == [200, 231]

    def test_retry_after_can_be_ignored(self) -> None:
        scheduler = TestScheduler()
        limited = scheduler.create_cold_observable(on_error(1, CircuitOpenError("rest", 30)))
        scheduler.start(
            lambda: limited.pipe(
                retry_with_backoff(tenacity.wait_fixed(1), respect_retry_after=False)
            ),
            disposed=206,
        )
        assert _starts(limited.subscriptions) == [200, 202, 204]

    def test_default_wait_is_exponential_with_bounded_jitter(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))
        scheduler.start(lambda: failing.pipe(retry_with_backoff()), disposed=400)
        starts = _starts(failing.subscriptions)
        # each attempt fails 1 tick after it starts (ColdObservable truncates unsubscribe
        # times to int, so derive the waits from the start times)
        gaps = [later - earlier - 1 for earlier, later in itertools.pairwise(starts)]
        assert len(gaps) >= 6  # 1+2+4+8+16+32 s (+ jitter) of waits fit before 400
        for n, gap in enumerate(gaps[:6], start=1):
            base = 2 ** (n - 1)
            assert base <= gap <= base + 1, (n, gap)

    def test_default_wait_is_capped_at_sixty_seconds_plus_jitter(self) -> None:
        wait = default_wait()
        for attempt in (7, 8, 20, 100):
            assert 60 <= wait(_state(attempt)) <= 61

    def test_seeded_wait_gives_exact_times(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))
        delays = iter([0.5, 1.25, 2.75])
        scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(lambda _: next(delays), tenacity.stop_after_attempt(4))
            )
        )
        assert _starts(failing.subscriptions) == [200, 201.5, 203.75, 207.5]


class TestStop:
    """Stop strategies run on scheduler time; the last error is forwarded as is."""

    def test_stop_after_delay_in_virtual_time(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError("down")))
        result = scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(tenacity.wait_fixed(5), tenacity.stop_after_delay(20))
            )
        )
        # failures at 201, 207, 213, 219 (19 s < 20), 225 (25 s >= 20: give up)
        assert _starts(failing.subscriptions) == [200, 206, 212, 218, 224]
        assert [on_error(225, lambda e: str(e) == "down")] == result.messages

    def test_stop_before_delay_sees_the_upcoming_sleep(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))
        result = scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(tenacity.wait_fixed(5), tenacity.stop_before_delay(20))
            )
        )
        # at 219: 19 s elapsed + 5 s upcoming >= 20 -> stop without waiting
        assert [on_error(219, _is(ConnectError))] == result.messages

    def test_never_stops_by_default_and_does_not_nest(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))
        result = scheduler.start(
            lambda: failing.pipe(retry_with_backoff(tenacity.wait_none())), disposed=5200
        )
        assert len(failing.subscriptions) == 5000  # no RecursionError, no growth
        open_ones = [s for s in failing.subscriptions if s.unsubscribe > 5200]
        assert open_ones == []  # each failed attempt was disposed before the next
        assert result.messages == []

    def test_disposal_cancels_the_pending_retry(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(3, ConnectError()))
        scheduler.start(
            lambda: failing.pipe(retry_with_backoff(tenacity.wait_fixed(10))), disposed=205
        )
        assert failing.subscriptions == [Subscription(200, 203)]

    def test_a_raising_strategy_errors_the_stream(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))

        def broken(_: tenacity.RetryCallState) -> float:
            raise ArithmeticError("wait bug")

        result = scheduler.start(lambda: failing.pipe(retry_with_backoff(broken)))
        assert [on_error(201, _is(ArithmeticError))] == result.messages


class TestRetryIf:
    """Only retryable errors are retried; the others pass through at once."""

    def test_non_retryable_error_passes_through_at_once(self) -> None:
        scheduler = TestScheduler()
        rejected = scheduler.create_cold_observable(
            on_error(2, ExchangeError("unknown symbol", status=400, code=-1121))
        )
        result = scheduler.start(lambda: rejected.pipe(retry_with_backoff(tenacity.wait_fixed(1))))
        assert rejected.subscriptions == [Subscription(200, 202)]
        assert [on_error(202, _is(ExchangeError))] == result.messages

    def test_custom_predicate(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, KeyError("k")))
        result = scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(
                    tenacity.wait_fixed(1), retry_if=lambda e: not isinstance(e, KeyError)
                )
            )
        )
        assert len(failing.subscriptions) == 1
        assert [on_error(201, _is(KeyError))] == result.messages

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (ConnectError("refused"), True),
            (RequestTimeoutError("slow"), True),
            (CircuitOpenError("rest", 5), True),
            (RateLimitError("429", retry_after=1), True),
            (ExchangeError("overloaded", status=503, retryable=True), True),
            (ConnectionResetError(), True),
            (ValueError("user stream"), True),
            (ExchangeError("bad request", status=400), False),
            (OrderRejectedError("lot size", filter="LOT_SIZE"), False),
            (OrderStatusUnknownError("timeout", client_order_id="c1"), False),
            (SubscriptionError("x@y", "unknown"), False),
            (ParseError("junk"), False),
            (ConfigError("f", "bad"), False),
            (NotSupportedError("bybit", "liquidations"), False),
        ],
    )
    def test_default_retry_if(self, error: Exception, expected: bool) -> None:
        assert default_retry_if(error) is expected


class TestResetAfter:
    """A connection that was healthy long enough starts the backoff from attempt 1."""

    def _long_lived(self, scheduler: TestScheduler) -> Any:
        return scheduler.create_cold_observable(on_next(1, "a"), on_error(30, ConnectError()))

    def test_healthy_attempts_reset_the_backoff(self) -> None:
        scheduler = TestScheduler()
        conn = self._long_lived(scheduler)
        scheduler.start(
            lambda: conn.pipe(
                retry_with_backoff(tenacity.wait_exponential(multiplier=2), reset_after=20)
            ),
            disposed=300,
        )
        assert _starts(conn.subscriptions) == [200, 232, 264, 296]  # always 2 s

    def test_without_reset_after_the_backoff_grows(self) -> None:
        scheduler = TestScheduler()
        conn = self._long_lived(scheduler)
        scheduler.start(
            lambda: conn.pipe(retry_with_backoff(tenacity.wait_exponential(multiplier=2))),
            disposed=300,
        )
        assert _starts(conn.subscriptions) == [200, 232, 266]  # 2, 4, then 8 s

    def test_short_lived_attempts_keep_counting(self) -> None:
        scheduler = TestScheduler()
        attempts = 0

        def source() -> Any:
            nonlocal attempts
            attempts += 1
            life = 30 if attempts == 1 else 1  # healthy once, then flapping
            return scheduler.create_cold_observable(on_error(life, ConnectError()))

        events: list[RetryEvent] = []
        scheduler.start(
            lambda: reactivex.defer(lambda _: source()).pipe(
                retry_with_backoff(
                    tenacity.wait_exponential(multiplier=1),
                    reset_after=20,
                    on_retry=events.append,
                )
            ),
            disposed=260,
        )
        assert [(e.attempt, e.delay) for e in events][:4] == [(1, 1), (2, 2), (3, 4), (4, 8)]

    def test_reset_restarts_the_stop_budget(self) -> None:
        scheduler = TestScheduler()
        conn = self._long_lived(scheduler)
        result = scheduler.start(
            lambda: conn.pipe(
                retry_with_backoff(
                    tenacity.wait_fixed(1), tenacity.stop_after_attempt(2), reset_after=20
                )
            ),
            disposed=400,
        )
        # never gives up: every outage is a new sequence (200, 231, 262, ... 386)
        assert _starts(conn.subscriptions) == [200, 231, 262, 293, 324, 355, 386]
        assert all(m.value.kind == "N" for m in result.messages)


class TestOnRetry:
    """on_retry reports (attempt, delay, error) before each wait."""

    def test_events(self) -> None:
        scheduler = TestScheduler()
        error = ConnectError("reset")
        failing = scheduler.create_cold_observable(on_error(1, error))
        events: list[RetryEvent] = []
        scheduler.start(
            lambda: failing.pipe(
                retry_with_backoff(
                    tenacity.wait_exponential(multiplier=1),
                    tenacity.stop_after_attempt(3),
                    on_retry=events.append,
                )
            )
        )
        assert events == [RetryEvent(1, 1.0, error), RetryEvent(2, 2.0, error)]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            events[0].attempt = 5  # type: ignore[misc]

    def test_a_raising_callback_is_logged_and_retries_go_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))

        def broken(_: RetryEvent) -> None:
            raise RuntimeError("callback bug")

        with caplog.at_level(logging.ERROR, logger="rxconnector"):
            scheduler.start(
                lambda: failing.pipe(retry_with_backoff(tenacity.wait_fixed(1), on_retry=broken)),
                disposed=210,
            )
        assert len(failing.subscriptions) == 5
        assert any("on_retry raised" in r.getMessage() for r in caplog.records)


class TestSynchronousSources:
    """Sources that fail during subscribe are retried on the scheduler too."""

    def test_throw_is_retried_on_schedule(self) -> None:
        scheduler = TestScheduler()
        times: list[float] = []

        def source() -> Any:
            times.append(scheduler.clock)
            return reactivex.throw(ConnectError())

        scheduler.start(
            lambda: reactivex.defer(lambda _: source()).pipe(
                retry_with_backoff(tenacity.wait_fixed(4), tenacity.stop_after_attempt(3)),
                ops.catch(reactivex.empty()),
            )
        )
        assert times == [200, 204, 208]


class TestPolicyFromConfig:
    """ConnectionConfig's reconnect settings become tenacity strategies."""

    def test_delays_double_up_to_the_cap(self) -> None:
        cfg = ConnectionConfig(reconnect_delay=1, reconnect_max_delay=8, reconnect_jitter=0)
        wait, stop = backoff_policy_from_config(cfg)
        assert [wait(_state(n)) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
        assert not stop(_state(10_000))

    def test_jitter_is_added_within_bounds(self) -> None:
        cfg = ConnectionConfig(reconnect_delay=2, reconnect_max_delay=10, reconnect_jitter=0.5)
        wait, _ = backoff_policy_from_config(cfg)
        samples = [wait(_state(3)) for _ in range(200)]
        assert all(8 <= s <= 8.5 for s in samples)
        assert len(set(samples)) > 1

    def test_max_reconnect_attempts_counts_retries(self) -> None:
        cfg = ConnectionConfig(reconnect_jitter=0, max_reconnect_attempts=3)
        wait, stop = backoff_policy_from_config(cfg)
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(1, ConnectError()))
        result = scheduler.start(lambda: failing.pipe(retry_with_backoff(wait, stop)))
        assert _starts(failing.subscriptions) == [200, 202, 205, 210]  # first + 3 retries
        assert [on_error(211, _is(ConnectError))] == result.messages
