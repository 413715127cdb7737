"""Exchange clock synchronisation: the offset between our clock and the exchange's.

Why: signed requests carry a ``timestamp`` the exchange checks against its own clock
(Binance rejects one more than 1000 ms ahead or older than ``recvWindow``: -1021; Bybit:
10002). A drifting local clock would make every signed call fail, so we measure
``offset = server_time - midpoint(local send, local receive)`` (the NTP idea: the server
read its clock somewhere in the round trip, most likely near the middle; the error is at
most RTT/2), keep the sample with the smallest RTT, and stamp requests with
``local clock + offset``.

Timeline of one measurement with ``samples=3`` (local clock, ms)::

    before₁ ─ fetch ─ after₁   before₂ ─ fetch ─ after₂   before₃ ─ fetch ─ after₃
    offset = server_time_k - (before_k + after_k) / 2 of the k with the lowest RTT

Every local time is the *scheduler's* clock, so a ``TestScheduler`` drives measurements
and ``now()`` in virtual time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.subject import BehaviorSubject

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.config import ClockSyncConfig
from rxconnector.errors import ClockSyncError
from rxconnector.log import get_logger
from rxconnector.models import ClockOffset
from rxconnector.operators._share import isolate_, share_

__all__ = ["ClockSync"]

_log = get_logger(component="clock")


@attrs.frozen
class _Sample:
    """One round trip: local send/receive times (epoch ms) and the server's time."""

    before: float
    after: float
    server_time: int

    @property
    def rtt(self) -> float:
        return self.after - self.before

    @property
    def offset(self) -> float:
        return self.server_time - (self.before + self.after) / 2.0


def _log_report(error: Exception) -> None:
    _log.warning("clock sync problem", error=str(error), kind=type(error).__name__)


class ClockSync:
    """Measures the exchange clock offset now and every ``sync_interval`` seconds.

    Args:
        fetch_server_time: Cold Observable factory; each subscription asks the exchange
            for its time (epoch ms) once, e.g. ``lambda: rest.server_time()`` through the
            breaker. Only the first value is used.
        config: ``samples`` per measurement, ``sync_interval`` (s), ``max_offset`` (ms);
            with ``enabled`` False :meth:`start` does nothing and :meth:`now` is the
            local clock (an explicit :meth:`sync_now` still measures).
        scheduler: The local clock and the timer. Defaults to the scheduler given to
            :meth:`start`, then the running loop's.
        report: Receives non-fatal problems: a :class:`ClockSyncError` when the offset
            exceeds ``max_offset`` (requests keep using the corrected time) and errors
            of failed periodic measurements (retried at the next interval). Default: log.

    A published :class:`ClockOffset` has ``offset_ms`` and ``rtt_ms`` of the best sample,
    its ``server_time`` and ``measured_at`` = the local time (epoch ms, scheduler clock)
    at which that sample's answer arrived.
    """

    def __init__(
        self,
        fetch_server_time: Callable[[], Observable[int]],
        config: ClockSyncConfig,
        *,
        scheduler: abc.SchedulerBase | None = None,
        report: Callable[[Exception], None] | None = None,
    ) -> None:
        self._fetch = fetch_server_time
        self.config = config
        self._scheduler = scheduler
        self._report = report or _log_report
        self._lock = threading.Lock()
        self._latest: ClockOffset | None = None
        self._subject: BehaviorSubject[ClockOffset | None] = BehaviorSubject(None)
        self._periodic = SerialDisposable()
        # Concurrent sync_now() callers (and the interval) share one in-flight measurement;
        # the next caller after it finished starts a new one.
        self._measurement: Observable[ClockOffset] = self._measure().pipe(share_(self._report))

    def __repr__(self) -> str:
        latest = self._latest
        shown = f"{latest.offset_ms:+.1f} ms" if latest is not None else "not measured"
        return f"ClockSync({shown})"

    # -- read side --------------------------------------------------------------------------
    @property
    def offsets(self) -> Observable[ClockOffset]:
        """Every published offset; a new subscriber first gets the latest one (if any).

        Completes when :meth:`close` is called. Subscribers are isolated from each other.
        """
        measured = self._subject.pipe(ops.filter(lambda offset: offset is not None))
        return cast(Observable[ClockOffset], measured).pipe(isolate_())

    @property
    def latest(self) -> ClockOffset | None:
        """The most recent measurement, or None before the first one."""
        return self._latest

    def now(self) -> int:
        """Exchange time in epoch ms: the local (scheduler) clock plus the latest offset."""
        latest = self._latest
        offset = latest.offset_ms if latest is not None else 0.0
        return round(self._local_ms() + offset)

    def validate_offset(self) -> None:
        """Raise :class:`ClockSyncError` if the latest offset exceeds ``max_offset``."""
        latest = self._latest
        if latest is not None and abs(latest.offset_ms) > self.config.max_offset:
            raise ClockSyncError(latest.offset_ms, self.config.max_offset)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        """Measure at once and then every ``sync_interval`` seconds until disposed.

        A measurement still running when the next one is due is not doubled (the tick is
        skipped). A failed measurement is reported and the next tick tries again; the
        periodic sync itself never stops on an error. Calling ``start`` again replaces
        the previous schedule.
        """
        if scheduler is not None and self._scheduler is None:
            self._scheduler = scheduler
        if not self.config.enabled:
            return Disposable()
        sched = resolve_scheduler(self._scheduler)
        self._scheduler = sched
        ticks = reactivex.timer(0.0, self.config.sync_interval, scheduler=sched)
        periodic = ticks.pipe(
            ops.map(lambda _: self._measurement.pipe(ops.catch(self._swallow))),
            ops.exclusive(),
        )
        subscription = SingleAssignmentDisposable()
        self._periodic.disposable = subscription
        subscription.disposable = periodic.subscribe(on_error=self._report_safely, scheduler=sched)
        return subscription

    def sync_now(self) -> Observable[ClockOffset]:
        """A cold Observable: measure now, publish, emit the new offset and complete.

        Use it after a -1021 (Binance) or 10002 (Bybit) rejection. Errors go to the
        subscriber (not to ``report``). Joins a measurement already in flight.
        """
        return self._measurement.pipe(ops.take(1))

    def close(self) -> None:
        """Stop the periodic sync and complete :attr:`offsets`."""
        self._periodic.dispose()
        self._subject.on_completed()

    # -- internals --------------------------------------------------------------------------
    def _local_ms(self, scheduler: abc.SchedulerBase | None = None) -> float:
        sched = self._scheduler or scheduler
        if sched is None:
            # Same clock AsyncIOScheduler.now uses (wall-clock UTC), without needing a loop.
            return time.time() * 1000.0
        return now_ms(sched)

    def _swallow(self, error: Exception, _: Observable[ClockOffset]) -> Observable[ClockOffset]:
        self._report_safely(error)
        return reactivex.empty()

    def _report_safely(self, error: Exception) -> None:
        try:
            self._report(error)
        except Exception:
            _log.exception("clock sync report callback raised", original=repr(error))

    def _sample(self) -> Observable[_Sample]:
        def subscribe(
            observer: abc.ObserverBase[_Sample], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = self._scheduler or scheduler_
            before = self._local_ms(sched)
            answer = self._fetch().pipe(ops.first())

            def on_next(server_time: int) -> None:
                observer.on_next(_Sample(before, self._local_ms(sched), int(server_time)))

            return answer.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=sched
            )

        return Observable(subscribe)

    def _measure(self) -> Observable[ClockOffset]:
        def best(samples: list[_Sample]) -> ClockOffset:
            chosen = min(samples, key=lambda s: s.rtt)  # first of equals: stable
            return ClockOffset(
                offset_ms=chosen.offset,
                rtt_ms=chosen.rtt,
                server_time=chosen.server_time,
                measured_at=chosen.after,
            )

        def one_run(_: Any) -> Observable[ClockOffset]:
            samples = [self._sample() for _ in range(self.config.samples)]
            return reactivex.concat(*samples).pipe(
                ops.to_list(), ops.map(best), ops.do_action(on_next=self._publish)
            )

        return reactivex.defer(one_run)

    def _publish(self, offset: ClockOffset) -> None:
        with self._lock:
            self._latest = offset
        _log.debug("clock offset", offset_ms=offset.offset_ms, rtt_ms=offset.rtt_ms)
        self._subject.on_next(offset)
        if abs(offset.offset_ms) > self.config.max_offset:
            self._report_safely(ClockSyncError(offset.offset_ms, self.config.max_offset))
