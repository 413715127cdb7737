"""ClockSync: RTT-midpoint offsets, measured on a schedule, in virtual time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxconnector.clock import ClockSync
from rxconnector.config import ClockSyncConfig
from rxconnector.errors import ClockSyncError, ConnectError
from rxconnector.models import ClockOffset

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed


class FakeServer:
    """A server whose clock runs ``offset_ms`` ahead of ours; each request takes ``up``
    seconds to reach it and ``down`` seconds to come back (virtual time)."""

    def __init__(
        self,
        scheduler: TestScheduler,
        offset_ms: float,
        legs: Iterable[tuple[float, float]] | None = None,
        fail_at: Iterable[float] = (),
    ) -> None:
        self.scheduler = scheduler
        self.offset_ms = offset_ms
        self._legs = iter(legs) if legs is not None else None
        self.fail_at = set(fail_at)
        self.calls: list[float] = []

    def fetch(self) -> Observable[int]:
        self.calls.append(self.scheduler.clock)
        if self.scheduler.clock in self.fail_at:
            return reactivex.throw(ConnectError("server unreachable"))
        up, down = next(self._legs) if self._legs is not None else (1.0, 1.0)
        return reactivex.timer(up).pipe(
            ops.map(lambda _: round(self.scheduler.clock * 1000 + self.offset_ms)),
            ops.delay(down),
        )


def _config(**kwargs: float) -> ClockSyncConfig:
    values: dict[str, float] = {"samples": 1, "sync_interval": 60, "max_offset": 500}
    values.update(kwargs)
    return ClockSyncConfig(**values)  # type: ignore[arg-type]


def _clock(
    server: FakeServer, config: ClockSyncConfig, report: Callable[[Exception], None] | None = None
) -> ClockSync:
    return ClockSync(server.fetch, config, scheduler=server.scheduler, report=report)


def _start_at(scheduler: TestScheduler, clock: ClockSync, time_: float) -> None:
    scheduler.schedule_absolute(time_, lambda *_: clock.start())


class TestSchedule:
    """A measurement at start and then every sync_interval seconds."""

    def test_measurement_and_publication_times(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, offset_ms=5000)
        clock = _clock(server, _config())
        seen = scheduler.create_observer()
        clock.offsets.subscribe(seen)
        _start_at(scheduler, clock, 200)
        scheduler.advance_to(330)
        assert server.calls == [200, 260, 320]
        assert seen.messages == [
            on_next(202, ClockOffset(5000.0, 2000.0, 206_000, 202_000.0)),
            on_next(262, ClockOffset(5000.0, 2000.0, 266_000, 262_000.0)),
            on_next(322, ClockOffset(5000.0, 2000.0, 326_000, 322_000.0)),
        ]

    def test_a_slow_measurement_is_not_doubled(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 0, legs=[(50, 50), (1, 1), (1, 1)])
        clock = _clock(server, _config())
        _start_at(scheduler, clock, 200)
        scheduler.advance_to(400)
        # 200..300 in flight: the 260 tick is skipped; the next starts at 320
        assert server.calls == [200, 320, 380]

    def test_dispose_stops_and_close_completes(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 0)
        clock = _clock(server, _config())
        seen = scheduler.create_observer()
        clock.offsets.subscribe(seen)
        running = clock.start()
        scheduler.advance_to(100)
        running.dispose()
        scheduler.advance_to(1000)
        assert server.calls == [0, 60]
        clock.close()
        assert seen.messages[-1] == on_completed(1000)

    def test_start_again_replaces_the_schedule(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 0)
        clock = _clock(server, _config())
        clock.start()
        scheduler.advance_to(30)
        clock.start()
        scheduler.advance_to(100)
        assert server.calls == [0, 30, 90]

    def test_disabled_does_not_measure(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 0)
        clock = _clock(server, ClockSyncConfig(enabled=False))
        clock.start()
        scheduler.advance_to(10_000)
        assert server.calls == []
        assert clock.now() == 10_000_000  # just the local clock


class TestOffset:
    """Offset = server time - RTT midpoint of the sample with the lowest RTT."""

    def test_lowest_rtt_sample_wins_with_asymmetric_legs(self) -> None:
        scheduler = TestScheduler()
        # true offset 5000 ms; per sample (up, down) in seconds:
        #   1: sent 200, server 201, back 204 -> mid 202.0 -> 4000 ms, rtt 4000
        #   2: sent 204, server 204.5, back 205 -> mid 204.5 -> 5000 ms, rtt 1000  <- best
        #   3: sent 205, server 207, back 208 -> mid 206.5 -> 5500 ms, rtt 3000
        server = FakeServer(scheduler, 5000, legs=[(1, 3), (0.5, 0.5), (2, 1)])
        clock = _clock(server, _config(samples=3))
        seen = scheduler.create_observer()
        clock.offsets.subscribe(seen)
        _start_at(scheduler, clock, 200)
        scheduler.advance_to(250)
        assert server.calls == [200, 204, 205]
        assert seen.messages == [on_next(208, ClockOffset(5000.0, 1000.0, 209_500, 205_000.0))]

    def test_asymmetry_error_is_bounded_by_half_the_rtt(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, -3000, legs=[(0.2, 1.8)])
        clock = _clock(server, _config())
        clock.start()
        scheduler.advance_to(10)
        latest = clock.latest
        assert latest is not None
        assert latest.offset_ms == pytest.approx(-3800.0)
        assert abs(latest.offset_ms - -3000) <= latest.rtt_ms / 2

    def test_now_is_local_clock_plus_offset(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 250)
        clock = _clock(server, _config())
        assert clock.now() == 0  # before any measurement: the local clock
        clock.start()
        scheduler.advance_to(1000)
        assert clock.now() == 1_000_250

    def test_late_subscriber_gets_the_latest_offset(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 42)
        clock = _clock(server, _config())
        nothing: list[ClockOffset] = []
        clock.offsets.subscribe(nothing.append).dispose()
        assert nothing == []  # no placeholder before the first measurement
        clock.start()
        scheduler.advance_to(5)
        late: list[ClockOffset] = []
        clock.offsets.subscribe(late.append)
        assert [o.offset_ms for o in late] == [42.0]


class TestDrift:
    """An offset above max_offset is reported, and signing keeps the corrected time."""

    def test_large_offset_is_reported_and_still_used(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 800)
        reported: list[Exception] = []
        clock = _clock(server, _config(max_offset=500), report=reported.append)
        clock.start()
        scheduler.advance_to(10)
        assert len(reported) == 1
        error = reported[0]
        assert isinstance(error, ClockSyncError)
        assert (error.offset_ms, error.limit_ms) == (800.0, 500.0)
        assert clock.now() == 10_800
        with pytest.raises(ClockSyncError):
            clock.validate_offset()

    def test_small_offset_is_fine(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, -499)
        reported: list[Exception] = []
        clock = _clock(server, _config(max_offset=500), report=reported.append)
        clock.validate_offset()  # nothing measured yet: nothing to complain about
        clock.start()
        scheduler.advance_to(10)
        clock.validate_offset()
        assert reported == []

    def test_default_report_logs_a_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        scheduler = TestScheduler()
        clock = ClockSync(FakeServer(scheduler, 9000).fetch, _config(), scheduler=scheduler)
        with caplog.at_level(logging.WARNING, logger="rxconnector"):
            clock.start()
            scheduler.advance_to(10)
        assert any("clock sync problem" in r.getMessage() for r in caplog.records)


class TestFailures:
    """A failed measurement is reported and retried at the next interval."""

    def test_failure_is_reported_and_the_interval_survives(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 100, fail_at=[200, 260])
        reported: list[Exception] = []
        clock = _clock(server, _config(), report=reported.append)
        seen = scheduler.create_observer()
        clock.offsets.subscribe(seen)
        _start_at(scheduler, clock, 200)
        scheduler.advance_to(330)
        assert [type(e) for e in reported] == [ConnectError, ConnectError]
        assert server.calls == [200, 260, 320]
        assert seen.messages == [on_next(322, ClockOffset(100.0, 2000.0, 321_100, 322_000.0))]

    def test_a_raising_report_callback_does_not_stop_the_sync(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 0, fail_at=[0])

        def broken(_: Exception) -> None:
            raise RuntimeError("reporter bug")

        clock = _clock(server, _config(), report=broken)
        clock.start()
        scheduler.advance_to(70)
        assert server.calls == [0, 60]
        assert clock.latest is not None

    def test_a_server_that_answers_nothing_fails_the_measurement(self) -> None:
        scheduler = TestScheduler()
        reported: list[Exception] = []
        clock = ClockSync(reactivex.empty, _config(), scheduler=scheduler, report=reported.append)
        clock.start()
        scheduler.advance_to(1)
        assert len(reported) == 1
        assert clock.latest is None


class TestSyncNow:
    """sync_now() measures immediately, publishes, and shares an in-flight measurement."""

    def test_emits_and_publishes(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 1234)
        clock = _clock(server, _config(samples=2, max_offset=5000))
        result = scheduler.start(clock.sync_now)
        # two equal samples (200-202 and 202-204): the first is kept
        assert result.messages == [
            on_next(204, ClockOffset(1234.0, 2000.0, 202_234, 202_000.0)),
            on_completed(204),
        ]
        assert clock.latest == result.messages[0].value.value

    def test_concurrent_callers_share_one_measurement(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 7)
        clock = _clock(server, _config(samples=3))
        got: list[ClockOffset] = []
        for t in (100, 101, 103):
            scheduler.schedule_absolute(t, lambda *_: clock.sync_now().subscribe(got.append))
        scheduler.advance_to(200)
        assert server.calls == [100, 102, 104]  # one measurement of three samples
        assert len(got) == 3 and len(set(got)) == 1

    def test_errors_go_to_the_caller(self) -> None:
        scheduler = TestScheduler()
        server = FakeServer(scheduler, 0, fail_at=[200])
        reported: list[Exception] = []
        clock = _clock(server, _config(), report=reported.append)
        result = scheduler.start(clock.sync_now)
        assert [ReactiveTest.on_error(200, lambda e: isinstance(e, ConnectError))] == (
            result.messages
        )
        assert reported == []


class TestOnTheLoop:
    """Without a scheduler the clock is the wall clock of the running loop."""

    async def test_sync_now_measures_a_real_offset(self) -> None:
        def fetch() -> Observable[int]:
            return reactivex.defer(lambda _: reactivex.of(int(time.time() * 1000) + 10_000))

        clock = ClockSync(fetch, ClockSyncConfig(samples=2))
        offset = await clock.sync_now()
        assert offset.offset_ms == pytest.approx(10_000, abs=50)
        assert clock.now() == pytest.approx(time.time() * 1000 + 10_000, abs=100)
        assert "ClockSync(+" in repr(clock)

    async def test_start_uses_the_loop_scheduler(self) -> None:
        calls: list[float] = []

        def fetch() -> Observable[int]:
            calls.append(time.time())
            return reactivex.of(int(time.time() * 1000))

        clock = ClockSync(fetch, ClockSyncConfig(samples=1, sync_interval=3600))
        running = clock.start()
        try:
            got = await clock.offsets.pipe(ops.first())
        finally:
            running.dispose()
            clock.close()
        assert len(calls) == 1
        assert abs(got.offset_ms) < 50
