"""RequestWeightLimiter in virtual time: one TestScheduler tick is one second."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.mockobserver import MockObserver

from rxconnector.errors import ConfigError, RateLimitError
from rxconnector.rate.limiter import RequestWeightLimiter

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed


class _Request:
    """One acquire() subscribed at a virtual time, with its recorded notifications."""

    def __init__(
        self, scheduler: TestScheduler, limiter: RequestWeightLimiter, weight: int, at: float
    ) -> None:
        self.observer: MockObserver[None] = scheduler.create_observer()
        self.subscription: Any = None

        def start(*_: Any) -> None:
            self.subscription = limiter.acquire(weight).subscribe(
                self.observer, scheduler=scheduler
            )

        scheduler.schedule_absolute(at, start)

    @property
    def messages(self) -> list[Any]:
        return list(self.observer.messages)

    @property
    def released_at(self) -> float | None:
        kinds = [m for m in self.observer.messages if m.value.kind == "N"]
        return kinds[0].time if kinds else None

    def error(self) -> BaseException:
        errors = [m for m in self.observer.messages if m.value.kind == "E"]
        assert errors, f"expected an error, got {self.observer.messages}"
        exc = errors[0].value.exception
        assert isinstance(exc, BaseException)
        return exc


def _limiter(limit: int, scheduler: TestScheduler) -> RequestWeightLimiter:
    return RequestWeightLimiter(limit, scheduler=scheduler, exchange="binance")


class TestBudget:
    """Weights add up within a minute and a request never goes over the budget."""

    def test_weights_accumulate_and_fit_immediately(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        requests = [_Request(scheduler, limiter, 3, at) for at in (200.0, 201.0, 202.0)]
        scheduler.advance_to(203.0)
        assert [r.messages for r in requests] == [
            [on_next(200.0, None), on_completed(200.0)],
            [on_next(201.0, None), on_completed(201.0)],
            [on_next(202.0, None), on_completed(202.0)],
        ]
        assert limiter.used == 9

    def test_request_over_budget_is_released_exactly_when_the_minute_rolls(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 9, 200.0)
        late = _Request(scheduler, limiter, 5, 210.0)
        scheduler.advance_to(239.999)
        assert late.messages == []
        assert limiter.state().pending == 1
        scheduler.advance_to(300.0)
        assert late.messages == [on_next(240.0, None), on_completed(240.0)]
        assert limiter.used == 0  # the 240-300 window was spent and 300 began a new one

    def test_budget_resets_on_the_boundary_not_sixty_seconds_after_first_use(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 10, 235.0)
        nxt = _Request(scheduler, limiter, 10, 236.0)
        scheduler.advance_to(250.0)
        assert nxt.released_at == 240.0

    def test_waiting_requests_leave_in_order_one_window_at_a_time(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 9, 200.0)
        first = _Request(scheduler, limiter, 8, 201.0)
        second = _Request(scheduler, limiter, 8, 202.0)
        scheduler.advance_to(400.0)
        assert (first.released_at, second.released_at) == (240.0, 300.0)

    def test_light_request_does_not_overtake_a_waiting_heavy_one(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 6, 200.0)
        heavy = _Request(scheduler, limiter, 8, 201.0)
        light = _Request(scheduler, limiter, 1, 202.0)  # would fit, but must queue (FIFO)
        scheduler.advance_to(239.0)
        assert light.messages == []
        scheduler.advance_to(241.0)
        assert (heavy.released_at, light.released_at) == (240.0, 240.0)
        assert limiter.used == 9

    def test_disposing_a_waiting_request_gives_its_place_up(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 6, 200.0)
        heavy = _Request(scheduler, limiter, 8, 201.0)
        light = _Request(scheduler, limiter, 4, 202.0)
        scheduler.schedule_absolute(210.0, lambda *_: heavy.subscription.dispose())
        scheduler.advance_to(239.0)
        assert heavy.messages == []
        assert light.messages == [on_next(210.0, None), on_completed(210.0)]
        assert limiter.used == 10

    def test_weight_above_the_whole_limit_errors(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        request = _Request(scheduler, limiter, 11, 200.0)
        scheduler.advance_to(200.0)
        error = request.error()
        assert isinstance(error, ConfigError)
        assert error.field == "rate_limit.max_weight_per_minute"

    def test_negative_weight_is_a_programming_error(self) -> None:
        limiter = _limiter(10, TestScheduler())
        with pytest.raises(ValueError, match="weight"):
            limiter.acquire(-1)

    def test_set_limit_releases_requests_that_now_fit(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 10, 200.0)
        waiting = _Request(scheduler, limiter, 5, 201.0)
        scheduler.schedule_absolute(205.0, lambda *_: limiter.set_limit(6000))
        scheduler.advance_to(206.0)
        assert waiting.released_at == 205.0
        assert limiter.limit == 6000

    def test_set_limit_rejects_nonsense(self) -> None:
        limiter = _limiter(10, TestScheduler())
        with pytest.raises(ConfigError):
            limiter.set_limit(0)


class TestServerHeaders:
    """The server's X-MBX-USED-WEIGHT-1M is the truth; order counts are recorded."""

    def test_header_raises_the_local_count(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        scheduler.schedule_absolute(
            200.0, lambda *_: limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "9"})
        )
        request = _Request(scheduler, limiter, 2, 201.0)
        scheduler.advance_to(250.0)
        assert request.released_at == 240.0

    def test_lower_header_never_lowers_the_count(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 8, 200.0)
        scheduler.schedule_absolute(
            201.0, lambda *_: limiter.observe_headers({"x-mbx-used-weight-1m": "1"})
        )
        scheduler.advance_to(202.0)
        assert limiter.used == 8

    def test_order_counts_and_other_windows_are_recorded(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        limiter.observe_headers(
            {
                "x-mbx-order-count-10s": "3",
                "X-MBX-ORDER-COUNT-1D": "42",
                "x-mbx-used-weight-1m": "4",
                "x-mbx-used-weight-5m": "17",
                "content-type": "application/json",
                "x-mbx-used-weight-1h": "garbage",
            }
        )
        state = limiter.state()
        assert state.order_counts == {"10S": 3, "1D": 42}
        assert state.used_weights == {"1M": 4, "5M": 17}
        assert state.used == 4


class TestHolds:
    """After a 429 or a 418 nothing is sent until Retry-After has passed."""

    def test_429_hold_refuses_every_request_until_retry_after(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(1200, scheduler)
        scheduler.schedule_absolute(200.0, lambda *_: limiter.hold_for(30.0))
        during = _Request(scheduler, limiter, 1, 210.0)
        just_before = _Request(scheduler, limiter, 1, 229.5)
        after = _Request(scheduler, limiter, 1, 230.0)
        scheduler.advance_to(231.0)
        error = during.error()
        assert isinstance(error, RateLimitError)
        assert error.retry_after == pytest.approx(20.0)
        assert (error.banned, error.status) == (False, 429)
        assert just_before.error().retry_after == pytest.approx(0.5)  # type: ignore[attr-defined]
        assert after.messages == [on_next(230.0, None), on_completed(230.0)]

    def test_418_ban_refuses_with_banned_flag_until_it_ends(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(1200, scheduler)
        scheduler.schedule_absolute(200.0, lambda *_: limiter.hold_for(120.0, banned=True))
        during = _Request(scheduler, limiter, 1, 300.0)
        after = _Request(scheduler, limiter, 1, 320.0)
        scheduler.advance_to(321.0)
        error = during.error()
        assert isinstance(error, RateLimitError)
        assert (error.banned, error.status) == (True, 418)
        assert error.retry_after == pytest.approx(20.0)
        assert after.released_at == 320.0
        assert limiter.state().banned is False

    def test_waiting_requests_fail_when_a_hold_starts(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 10, 200.0)
        waiting = _Request(scheduler, limiter, 5, 201.0)
        scheduler.schedule_absolute(205.0, lambda *_: limiter.hold_for(60.0))
        scheduler.advance_to(400.0)
        error = waiting.error()
        assert isinstance(error, RateLimitError)
        assert error.retry_after == pytest.approx(60.0)
        assert [m.time for m in waiting.messages] == [205.0]  # failed once, never released

    def test_shorter_hold_does_not_shorten_a_ban(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(1200, scheduler)
        scheduler.schedule_absolute(200.0, lambda *_: limiter.hold_for(120.0, banned=True))
        scheduler.schedule_absolute(210.0, lambda *_: limiter.hold_for(5.0))
        probe = _Request(scheduler, limiter, 1, 250.0)
        scheduler.advance_to(251.0)
        error = probe.error()
        assert isinstance(error, RateLimitError)
        assert error.banned is True
        assert error.retry_after == pytest.approx(70.0)

    def test_zero_hold_keeps_waiting_requests_waiting(self) -> None:
        scheduler = TestScheduler()
        limiter = _limiter(10, scheduler)
        _Request(scheduler, limiter, 10, 200.0)
        waiting = _Request(scheduler, limiter, 5, 201.0)
        scheduler.schedule_absolute(205.0, lambda *_: limiter.hold_for(0.0))
        scheduler.advance_to(250.0)
        assert waiting.released_at == 240.0


class TestPriorities:
    """Issue 16: user calls first; recovery fills the rest of the window, never the share
    kept for users, and waits out holds instead of failing (virtual time, 1 tick = 1 s)."""

    @staticmethod
    def _acquire(
        scheduler: TestScheduler,
        limiter: RequestWeightLimiter,
        weight: int,
        at: float,
        priority: Any,
    ) -> MockObserver[None]:
        observer: MockObserver[None] = scheduler.create_observer()
        scheduler.schedule_absolute(
            at,
            lambda *_: limiter.acquire(weight, priority).subscribe(observer, scheduler=scheduler),
        )
        return observer

    @staticmethod
    def _released(observer: MockObserver[None]) -> float | None:
        times = [m.time for m in observer.messages if m.value.kind == "N"]
        return times[0] if times else None

    def test_recovery_never_spends_the_user_reserve(self) -> None:
        from rxconnector.rate.limiter import Priority

        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(100, scheduler=scheduler, reserve=10)
        recovery = [self._acquire(scheduler, limiter, 30, 1, Priority.RECOVERY) for _ in range(4)]
        user = self._acquire(scheduler, limiter, 10, 2, Priority.USER)
        scheduler.advance_to(59)
        # 3 x 30 = 90 = limit - reserve; the 4th waits for the next window
        assert [self._released(r) for r in recovery] == [1, 1, 1, None]
        assert self._released(user) == 2  # the reserve was there for it
        scheduler.advance_to(61)
        assert self._released(recovery[3]) == 60

    def test_waiting_user_calls_go_before_waiting_recovery(self) -> None:
        from rxconnector.rate.limiter import Priority

        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(100, scheduler=scheduler, reserve=0)
        self._acquire(scheduler, limiter, 100, 1, Priority.USER)  # the window is spent
        recovery = self._acquire(scheduler, limiter, 60, 2, Priority.RECOVERY)
        user = self._acquire(scheduler, limiter, 60, 3, Priority.USER)
        scheduler.advance_to(200)
        assert self._released(user) == 60  # queued later, released first
        assert self._released(recovery) == 120

    def test_recovery_waits_out_a_hold_users_fail_at_once(self) -> None:
        from rxconnector.rate.limiter import Priority

        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(1000, scheduler=scheduler)
        scheduler.schedule_absolute(10, lambda *_: limiter.hold_for(1.0, banned=True))
        recovery = self._acquire(scheduler, limiter, 5, 10.25, Priority.RECOVERY)
        user = self._acquire(scheduler, limiter, 1, 10.5, Priority.USER)
        scheduler.advance_to(20)
        assert self._released(recovery) == pytest.approx(11.0)
        errors = [m.value.exception for m in user.messages if m.value.kind == "E"]
        assert len(errors) == 1 and isinstance(errors[0], RateLimitError)
        assert errors[0].retry_after == pytest.approx(0.5)
        assert errors[0].banned

    def test_cap_bounds_the_venue_limit(self) -> None:
        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(6000, scheduler=scheduler, cap=1000)
        assert limiter.limit == 1000
        limiter.set_limit(8000)
        assert limiter.limit == 1000
        limiter.set_limit(500)
        assert limiter.limit == 500

    def test_documented_limits(self) -> None:
        """The registry carries each venue's documented budget; the Config caps it."""
        from rxconnector.config import Config
        from rxconnector.rate.limiter import documented_limiter
        from rxconnector.venues import venue_for

        def budget(config: Config) -> int:
            return documented_limiter(venue_for(config).weight_per_minute, None).limit

        assert budget(Config.binance()) == 6000
        assert budget(Config.binance_futures()) == 2400
        assert budget(Config.bybit()) == 7200
        assert budget(Config.bybit("linear")) == 7200
        assert documented_limiter(6000, 1200).limit == 1200

    def test_backfills_stop_at_their_share_snapshots_and_users_go_on(self) -> None:
        from rxconnector.rate.limiter import BACKFILL_SHARE, Priority

        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(100, scheduler=scheduler, reserve=10)
        assert limiter.budget(Priority.BACKFILL) == int(100 * BACKFILL_SHARE) == 60
        backfills = [self._acquire(scheduler, limiter, 25, 1, Priority.BACKFILL) for _ in range(3)]
        snapshots = [self._acquire(scheduler, limiter, 5, 2, Priority.RECOVERY) for _ in range(9)]
        user = self._acquire(scheduler, limiter, 10, 3, Priority.USER)
        scheduler.advance_to(59)
        # 2 backfills (50 <= 60); the 3rd would pass 60; snapshots fill up to 90
        assert [self._released(b) for b in backfills] == [1, 1, None]
        assert [self._released(x) for x in snapshots] == [2] * 8 + [None]
        assert self._released(user) == 3
        scheduler.advance_to(61)
        # the new window: the waiting snapshot before the waiting backfill
        assert self._released(snapshots[8]) == 60
        assert self._released(backfills[2]) == 60
