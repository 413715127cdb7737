"""Rolling-window pacing and the connection-attempt limiter, in virtual time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from rxconnector.rate.attempts import AttemptLimiter, shared_attempt_limiter
from rxconnector.rate.pacing import Pacer, RollingWindow


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside one half-open interval of ``window``."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


class TestRollingWindow:
    """At most ``limit`` events in any window, whatever the arrival pattern."""

    def test_a_burst_is_spread_over_whole_windows(self) -> None:
        window = RollingWindow(5, 1.0)
        slots = [window.reserve(0.0) for _ in range(12)]
        assert slots == [0.0] * 5 + [1.0] * 5 + [2.0] * 2

    def test_delay_does_not_book(self) -> None:
        window = RollingWindow(2, 1.0)
        window.record(0.0)
        window.record(0.5)
        assert window.delay(0.6) == pytest.approx(0.4)
        assert window.delay(0.6) == pytest.approx(0.4)
        assert window.delay(1.0) == 0.0

    def test_events_stay_in_order(self) -> None:
        window = RollingWindow(3, 10.0)
        window.record(5.0)
        # an event asked for "earlier" than the last booked one goes after it
        assert window.reserve(4.0) == pytest.approx(1.0)

    def test_a_clock_stepped_back_can_forget_old_events(self) -> None:
        window = RollingWindow(1, 1.0)
        window.record(1_000.0)
        assert window.delay(10.0) == pytest.approx(991.0)
        window.forget_if_ahead_of(10.0)
        assert window.delay(10.0) == 0.0

    def test_rejects_nonsense(self) -> None:
        with pytest.raises(ValueError):
            RollingWindow(0, 1.0)
        with pytest.raises(ValueError):
            RollingWindow(1, 0.0)

    @given(
        limit=st.integers(1, 6),
        arrivals=st.lists(st.floats(0.0, 20.0, allow_nan=False), min_size=1, max_size=60),
    )
    def test_no_window_ever_holds_more_than_limit(self, limit: int, arrivals: list[float]) -> None:
        window = RollingWindow(limit, 1.0)
        booked = [now + window.reserve(now) for now in sorted(arrivals)]
        assert most_in_any_window(booked, 1.0) <= limit
        assert booked == sorted(booked)


class Recorder:
    """Collects what a Pacer emits with the virtual time."""

    def __init__(self, scheduler: TestScheduler) -> None:
        self.scheduler = scheduler
        self.emitted: list[tuple[float, Any]] = []

    def __call__(self, item: Any) -> None:
        self.emitted.append((self.scheduler.clock, item))


class TestPacer:
    """A queue drained through the window on the scheduler, urgent items first."""

    def make(
        self, limit: int = 5, window: float = 1.0
    ) -> tuple[TestScheduler, Recorder, Pacer[Any]]:
        scheduler = TestScheduler()
        recorder = Recorder(scheduler)
        return scheduler, recorder, Pacer(RollingWindow(limit, window), recorder, scheduler)

    def test_releases_at_the_allowed_times(self) -> None:
        scheduler, out, pacer = self.make()
        for n in range(12):
            pacer.submit(lambda n=n: n)
        assert pacer.pending == 7
        scheduler.advance_to(10.0)
        assert out.emitted == [(0.0, n) for n in range(5)] + [(1.0, n) for n in range(5, 10)] + [
            (2.0, 10),
            (2.0, 11),
        ]
        assert pacer.pending == 0

    def test_urgent_items_jump_the_queue(self) -> None:
        scheduler, out, pacer = self.make(limit=1, window=1.0)
        for name in ("a", "b", "c"):
            pacer.submit(lambda name=name: name)
        scheduler.advance_to(0.5)
        pacer.submit(lambda: "PONG", urgent=True)
        scheduler.advance_to(10.0)
        assert out.emitted == [(0.0, "a"), (1.0, "PONG"), (2.0, "b"), (3.0, "c")]

    def test_an_empty_build_gives_its_slot_back(self) -> None:
        scheduler, out, pacer = self.make(limit=1, window=1.0)
        pacer.submit(lambda: None)
        pacer.submit(lambda: "x")
        scheduler.advance_to(5.0)
        assert out.emitted == [(0.0, "x")]

    def test_items_are_built_at_release_time(self) -> None:
        scheduler, out, pacer = self.make(limit=1, window=1.0)
        pending = ["first"]
        pacer.submit(lambda: "head")
        pacer.submit(lambda: ",".join(pending))
        scheduler.advance_to(0.5)
        pending.append("second")  # joins the request that is still waiting
        scheduler.advance_to(5.0)
        assert out.emitted == [(0.0, "head"), (1.0, "first,second")]

    def test_a_build_may_submit_again(self) -> None:
        scheduler, out, pacer = self.make(limit=2, window=1.0)
        left = [1, 2, 3, 4, 5]

        def build() -> int:
            value = left.pop(0)
            if left:
                pacer.submit(build)
            return value

        pacer.submit(build)
        scheduler.advance_to(10.0)
        assert out.emitted == [(0.0, 1), (0.0, 2), (1.0, 3), (1.0, 4), (2.0, 5)]

    def test_a_failing_build_is_reported_and_the_queue_goes_on(self) -> None:
        scheduler = TestScheduler()
        out = Recorder(scheduler)
        errors: list[Exception] = []
        pacer: Pacer[str] = Pacer(RollingWindow(5, 1.0), out, scheduler, on_error=errors.append)

        def broken() -> str:
            raise RuntimeError("bug")

        pacer.submit(broken)
        pacer.submit(lambda: "after")
        scheduler.advance_to(1.0)
        assert [type(e) for e in errors] == [RuntimeError]
        assert out.emitted == [(0.0, "after")]

    def test_a_clock_stepped_back_does_not_stall_it(self) -> None:
        scheduler, out, pacer = self.make(limit=1, window=1.0)
        scheduler.advance_to(100.0)
        pacer.submit(lambda: "before")
        scheduler._clock = 50.0  # the wall clock was stepped back by 50 s
        pacer.submit(lambda: "after")
        assert out.emitted == [(100.0, "before"), (50.0, "after")]

    def test_dispose_drops_everything(self) -> None:
        scheduler, out, pacer = self.make(limit=1, window=1.0)
        for name in ("a", "b", "c"):
            pacer.submit(lambda name=name: name)
        pacer.dispose()
        pacer.submit(lambda: "late")
        scheduler.advance_to(10.0)
        assert out.emitted == [(0.0, "a")]
        assert pacer.pending == 0


class LaggingWriter:
    """A writer task in virtual time: takes what the pacer hands over and confirms each
    frame ``lag`` seconds later (one frame at a time, in order), like a writer on a
    busy loop."""

    def __init__(self, scheduler: TestScheduler, lags: list[float]) -> None:
        self.scheduler = scheduler
        self.lags = list(lags)
        self.queue: list[Any] = []
        self.wire: list[tuple[float, Any]] = []
        self.pacer: Pacer[Any] | None = None
        self.busy = False

    def __call__(self, item: Any) -> None:
        self.queue.append(item)
        if not self.busy:
            self._next()

    def _next(self) -> None:
        if not self.queue:
            self.busy = False
            return
        self.busy = True
        lag = self.lags.pop(0) if self.lags else 0.0
        self.scheduler.schedule_relative(lag, self._write)

    def _write(self, _s: Any = None, _state: Any = None) -> None:
        assert self.pacer is not None
        item = self.queue.pop(0)
        now = self.scheduler.clock
        self.wire.append((now, item))
        self.pacer.written(now)
        self._next()


class TestConfirmedWrites:
    """``confirm_writes``: the window counts frames when they left, not when released."""

    def make(
        self, lags: list[float], limit: int = 5, window: float = 1.0
    ) -> tuple[TestScheduler, LaggingWriter, Pacer[Any]]:
        scheduler = TestScheduler()
        writer = LaggingWriter(scheduler, lags)
        pacer: Pacer[Any] = Pacer(
            RollingWindow(limit, window), writer, scheduler, confirm_writes=True
        )
        writer.pacer = pacer
        return scheduler, writer, pacer

    def test_a_late_write_pushes_the_next_window_back(self) -> None:
        # the 5th frame of the first burst leaves 0.3 s late; the 6th must wait a full
        # window after *that*, not after the moment the pacer let the 5th go
        scheduler, writer, pacer = self.make([0.0, 0.0, 0.0, 0.0, 0.3])
        for n in range(10):
            pacer.submit(lambda n=n: n)
        scheduler.advance_to(10.0)
        times = [at for at, _ in writer.wire]
        assert [item for _, item in writer.wire] == list(range(10))
        assert times[:5] == [0.0, 0.0, 0.0, 0.0, 0.3]
        assert times[5:] == [1.0, 1.0, 1.0, 1.0, 1.3]
        assert most_in_any_window(times, 1.0) <= 5

    def test_nothing_is_released_while_the_whole_limit_is_unconfirmed(self) -> None:
        scheduler, writer, pacer = self.make([5.0], limit=2)
        for n in range(3):
            pacer.submit(lambda n=n: n)
        scheduler.advance_to(4.0)
        assert writer.queue == [0, 1] and pacer.in_flight == 2 and pacer.pending == 1
        scheduler.advance_to(20.0)
        assert writer.wire == [(5.0, 0), (5.0, 1), (6.0, 2)]
        assert pacer.in_flight == 0

    def test_confirming_without_the_mode_is_a_bug(self) -> None:
        scheduler = TestScheduler()
        pacer: Pacer[Any] = Pacer(RollingWindow(1, 1.0), Recorder(scheduler), scheduler)
        with pytest.raises(RuntimeError, match="confirm_writes"):
            pacer.written(0.0)

    def test_a_failing_hand_over_does_not_hold_a_slot(self) -> None:
        scheduler = TestScheduler()
        errors: list[Exception] = []
        handed: list[Any] = []

        def emit(item: Any) -> None:
            if item == "bad":
                raise RuntimeError("queue closed")
            handed.append(item)

        pacer: Pacer[Any] = Pacer(
            RollingWindow(1, 1.0), emit, scheduler, on_error=errors.append, confirm_writes=True
        )
        pacer.submit(lambda: "bad")
        pacer.submit(lambda: "good")
        assert handed == ["good"] and pacer.in_flight == 1
        assert [str(e) for e in errors] == ["queue closed"]

    @given(
        limit=st.integers(1, 6),
        count=st.integers(1, 40),
        lags=st.lists(st.floats(0.0, 3.0, allow_nan=False), max_size=40),
    )
    def test_frames_on_the_wire_never_exceed_the_limit(
        self, limit: int, count: int, lags: list[float]
    ) -> None:
        scheduler, writer, pacer = self.make(lags, limit=limit)
        for n in range(count):
            pacer.submit(lambda n=n: n)
        scheduler.advance_to(1_000.0)
        assert [item for _, item in writer.wire] == list(range(count))
        assert most_in_any_window([at for at, _ in writer.wire], 1.0) <= limit


class TestRollingWindowUnrecorded:
    def test_unrecorded_events_move_the_constraint_back(self) -> None:
        window = RollingWindow(3, 1.0)
        for at in (0.0, 0.2, 0.4):
            window.record(at)
        assert window.delay(0.5) == pytest.approx(0.5)  # the 0.0 one is 3 back
        # one more already under way: the event 2 back (0.2) constrains the next
        assert window.delay(0.5, unrecorded=1) == pytest.approx(0.7)
        with pytest.raises(ValueError):
            window.delay(0.5, unrecorded=3)

    def test_record_keeps_events_in_order(self) -> None:
        window = RollingWindow(2, 1.0)
        window.record(5.0)
        window.record(4.0)  # a late report of an earlier time counts at the later one
        assert window.delay(5.5) == pytest.approx(0.5)


class TestAttemptLimiter:
    """Connection attempts share one venue-wide rolling budget."""

    def test_the_301st_attempt_waits_for_the_window(self) -> None:
        limiter = AttemptLimiter(300, 300.0)
        waits = [limiter.reserve(float(n) * 0.01) for n in range(301)]
        assert waits[:300] == [0.0] * 300
        assert waits[300] == pytest.approx(300.0 - 3.0)

    def test_shared_per_venue_and_clock(self) -> None:
        first, second = TestScheduler(), TestScheduler()
        a = shared_attempt_limiter("venue-x", 300, 300.0, first)
        assert shared_attempt_limiter("venue-x", 1, 1.0, first) is a
        assert shared_attempt_limiter("venue-y", 300, 300.0, first) is not a
        assert shared_attempt_limiter("venue-x", 300, 300.0, second) is not a
        assert (a.limit, a.window) == (300, 300.0)
        assert repr(a) == "AttemptLimiter(300 per 300 s)"
