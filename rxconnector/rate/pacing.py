"""Strict rolling-window pacing of outgoing frames, timed on a scheduler.

Why a rolling window and not a token bucket: Binance disconnects a connection that sends
more than 5 messages in a second (PROTOCOL.md §A1.1), and a token bucket that starts
full lets a burst of 5 follow a burst of 5 only a hair more than a second apart while a
refill happens in between, so the server can count more than 5 in one of *its* windows.
:class:`RollingWindow` guarantees at most ``limit`` events in *every* half-open interval
``[t, t + window)``, whatever the server's window alignment.

Why the hub reserves no budget for pongs: pongs go through the same :class:`Pacer` as
control messages, ahead of them (``urgent=True``), so the limiter counts every frame we
send; a pong waits at most one window, far inside the 1 minute Binance allows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import abc

from rxconnector._scheduling import now_ms
from rxconnector.log import get_logger

__all__ = ["Pacer", "RollingWindow", "scheduler_seconds"]

_T = TypeVar("_T")

_log = get_logger(component="pacing")


def scheduler_seconds(scheduler: abc.SchedulerBase) -> float:
    """The scheduler's clock in epoch seconds (virtual seconds under a TestScheduler)."""
    return now_ms(scheduler) / 1000.0


class RollingWindow:
    """At most ``limit`` events in any interval ``[t, t + window)``; events stay in order.

    Pure bookkeeping on times the caller passes in, so it works on any clock (virtual
    time in tests). Keeps only the last ``limit`` event times: the invariant
    ``t[i + limit] >= t[i] + window`` is all it needs.
    """

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if window <= 0:
            raise ValueError(f"window must be > 0 s, got {window}")
        self.limit = limit
        self.window = float(window)
        self._times: deque[float] = deque(maxlen=limit)

    def delay(self, now: float, *, unrecorded: int = 0) -> float:
        """Seconds from ``now`` until the next event is allowed (0.0 when allowed now).

        ``unrecorded`` events already happened (or are under way) but are not recorded
        yet; they come before the next one, so it is the event ``limit - unrecorded``
        places back in the record that must lie a full window earlier. The caller must
        not ask with ``unrecorded >= limit``: then the constraining event's time is not
        known yet.
        """
        if unrecorded >= self.limit:
            raise ValueError(f"{unrecorded} unrecorded events fill the whole limit")
        times = self._times
        if not times:
            return 0.0
        earliest = times[-1] if times[-1] > now else now
        back = self.limit - unrecorded
        if len(times) >= back:
            earliest = max(earliest, times[-back] + self.window)
        return earliest - now

    def forget_if_ahead_of(self, now: float) -> None:
        """Drop the history if its newest event lies more than a window after ``now``.

        Only for callers that record events at "now" (the :class:`Pacer`): for them that
        can only mean the clock was stepped back (an NTP step of the wall clock), and the
        old times would otherwise stall sending for the size of the step.
        """
        if self._times and self._times[-1] - now > self.window:
            self._times.clear()

    def record(self, at: float) -> None:
        """Count one event at time ``at`` (never before the last one: events stay in order)."""
        times = self._times
        self._times.append(at if not times or at >= times[-1] else times[-1])

    def reserve(self, now: float) -> float:
        """Book the next allowed slot; returns how long to wait for it (seconds)."""
        wait = self.delay(now)
        self._times.append(now + wait)
        return wait


class Pacer(Generic[_T]):
    """A queue released through a :class:`RollingWindow` on a scheduler.

    ``submit(build)`` queues a callable that is invoked only when a slot is free and
    returns the item to emit (or ``None``: nothing to send after all, the slot is not
    used). Building at release time rather than at submit time lets the caller batch
    everything that accumulated while it waited (the hub builds a SUBSCRIBE from the
    topics pending at that moment). ``urgent`` items (pongs, pings) go before queued
    normal ones.

    .. marble::
        :alt: Pacer(limit=2, window=10)

        submit: abcd------
        emit:   ab--------cd--

    With ``confirm_writes=True`` an emitted item counts in the window at the time the
    caller reports it really went out (:meth:`written`), not at the time it was handed
    over. Why: the hand-over goes to a writer task, and on a busy event loop that task
    can write one frame late and the next on time, so frames we released a window apart
    left the socket closer together and the server counted too many in one of its
    seconds. Until the frame ``limit`` places back is confirmed, nothing more is
    released.

    Not thread-safe: use it on the loop thread (or a TestScheduler).
    """

    def __init__(
        self,
        window: RollingWindow,
        emit: Callable[[_T], None],
        scheduler: abc.SchedulerBase,
        *,
        on_error: Callable[[Exception], None] | None = None,
        confirm_writes: bool = False,
    ) -> None:
        self._window = window
        self._emit = emit
        self._scheduler = scheduler
        self._on_error = on_error
        self._confirm_writes = confirm_writes
        self._in_flight = 0
        self._urgent: deque[Callable[[], _T | None]] = deque()
        self._normal: deque[Callable[[], _T | None]] = deque()
        self._timer: abc.DisposableBase | None = None
        self._draining = False
        self._disposed = False

    @property
    def pending(self) -> int:
        """Number of queued submissions."""
        return len(self._urgent) + len(self._normal)

    @property
    def in_flight(self) -> int:
        """Emitted items not yet confirmed by :meth:`written` (``confirm_writes`` only)."""
        return self._in_flight

    def written(self, at: float) -> None:
        """Confirm that the oldest unconfirmed emitted item went out at ``at`` (scheduler
        seconds); it now counts in the window from then. Only with ``confirm_writes``."""
        if not self._confirm_writes:
            raise RuntimeError("written() needs a Pacer made with confirm_writes=True")
        if self._in_flight == 0 or self._disposed:
            return
        self._in_flight -= 1
        self._window.record(at)
        self._drain()

    def submit(self, build: Callable[[], _T | None], *, urgent: bool = False) -> None:
        """Queue ``build``; it runs (and its item is emitted) as soon as the window allows."""
        if self._disposed:
            return
        (self._urgent if urgent else self._normal).append(build)
        self._drain()

    def dispose(self) -> None:
        """Drop everything queued and cancel the pending timer."""
        self._disposed = True
        self._urgent.clear()
        self._normal.clear()
        if self._timer is not None:
            self._timer.dispose()
            self._timer = None

    def _drain(self) -> None:
        # Re-entrant calls (a build that submits again) just queue: the loop below
        # picks their work up, in order, subject to the same window.
        if self._draining or self._timer is not None or self._disposed:
            return
        self._draining = True
        try:
            while (self._urgent or self._normal) and not self._disposed:
                if self._in_flight >= self._window.limit:
                    return  # written() drains again once the oldest one went out
                now = scheduler_seconds(self._scheduler)
                self._window.forget_if_ahead_of(now)
                wait = self._window.delay(now, unrecorded=self._in_flight)
                if wait > 0.0:
                    # Scheduler clocks tick in microseconds: a float remainder below one
                    # (t + window - now == 4e-15) would be scheduled "now" and come back
                    # here at the same instant forever. Wait at least one tick.
                    wait = max(round(wait, 6), 1e-6)
                    self._timer = self._scheduler.schedule_relative(wait, self._on_timer)
                    return
                build = self._urgent.popleft() if self._urgent else self._normal.popleft()
                try:
                    item = build()
                    if item is None:
                        continue
                    if self._confirm_writes:
                        self._in_flight += 1  # before emit: a writer may confirm inside it
                        try:
                            self._emit(item)
                        except Exception:
                            self._in_flight -= 1  # never handed over, never confirmed
                            raise
                    else:
                        self._window.record(now)
                        self._emit(item)
                except Exception as exc:  # never let a caller's bug stall the queue
                    self._report(exc)
        finally:
            self._draining = False

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._timer = None
        self._drain()

    def _report(self, exc: Exception) -> None:
        if self._on_error is not None:
            try:
                self._on_error(exc)
                return
            except Exception:
                pass
        _log.error("pacer_callback_failed", error=repr(exc))
