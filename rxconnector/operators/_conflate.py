"""Latest-value conflation for slow consumers (the implementation behind ``operators.conflate``).

A book or ticker consumer only cares about the newest state. Queueing every update for a
consumer that cannot keep up makes its latency grow for hours (PEERS.md §3 pain point 7);
dropping the socket because of it is worse. ``conflate`` keeps exactly one slot: a value
that arrives while a delivery is pending overwrites the slot, so memory stays constant
and the consumer always sees the freshest state next.

On the running loop's ``AsyncIOScheduler`` (the default) a delivery is one
``loop.call_soon`` with its handle kept for cancelling: exactly what that scheduler's
``schedule`` does, without the four disposables it builds around it per call (measured:
``benchmarks/bench_conflate.py``). Any other scheduler (``TestScheduler``, a thread's)
is used through ``schedule``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxconnector._scheduling import resolve_scheduler

__all__ = ["conflate_"]

_T = TypeVar("_T")

_NOTHING: Any = object()


def _loop_of(sched: abc.SchedulerBase) -> asyncio.AbstractEventLoop | None:
    """The loop an exact ``AsyncIOScheduler`` schedules on (its ``_loop``, pinned by
    ``tests/operators/test_conflate.py``), else ``None``: a subclass may schedule
    otherwise, so only the exact class takes the direct path."""
    if type(sched) is AsyncIOScheduler:
        loop: asyncio.AbstractEventLoop = sched._loop  # reactivex 6.1; pinned by a test
        return loop
    return None


class _ConflateRun(Generic[_T]):
    """One subscription of the conflated Observable: the one slot and its delivery.

    ``pending`` is True from the moment a delivery is scheduled until it has finished, so
    deliveries never overlap (Rx grammar) even when the scheduler runs them on another
    thread; a terminal notification that arrives meanwhile waits in ``terminal`` and runs
    right after the pending value.
    """

    def __init__(self, observer: abc.ObserverBase[_T], sched: abc.SchedulerBase) -> None:
        self._observer = observer
        self._sched = sched
        loop = _loop_of(sched)
        self._call_soon = None if loop is None else loop.call_soon
        self._lock = threading.Lock()
        self.upstream = SingleAssignmentDisposable()
        #: Cancels the scheduled delivery (a no-op once it ran).
        self._cancel: Callable[[], None] | None = None
        self._disposed = False
        self.disposable = CompositeDisposable(self.upstream, Disposable(self._dispose_delivery))
        self._latest: Any = _NOTHING
        self._pending = False
        self._terminal: Callable[[], None] | None = None

    def _dispose_delivery(self) -> None:
        with self._lock:
            self._disposed = True
            cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()

    def _schedule(self) -> None:
        """Schedule :meth:`_deliver` (never after disposal)."""
        call_soon = self._call_soon
        if call_soon is not None:
            cancel = call_soon(self._deliver_soon).cancel
        else:
            cancel = self._sched.schedule(self._deliver).dispose
        with self._lock:
            if not self._disposed:
                self._cancel = cancel
                return
        cancel()

    def _deliver_soon(self) -> None:
        self._deliver(self._sched)

    def _deliver(self, _: abc.SchedulerBase, __: Any = None) -> None:
        with self._lock:
            if self._disposed:
                return
            value, self._latest = self._latest, _NOTHING
        if value is not _NOTHING:
            try:
                self._observer.on_next(value)
            except Exception:
                # The consumer is broken: end this subscription cleanly instead of leaving
                # it stuck with a pending flag, and let the scheduler report the exception.
                self.disposable.dispose()
                raise
        with self._lock:
            again = self._latest is not _NOTHING
            finish = None
            if not again:
                self._pending = False
                finish, self._terminal = self._terminal, None
        if again:
            self._schedule()
        elif finish is not None:
            finish()

    def on_next(self, value: _T) -> None:
        with self._lock:
            self._latest = value
            if self._pending:
                return
            self._pending = True
        self._schedule()

    def _on_terminal(self, finish: Callable[[], None]) -> None:
        with self._lock:
            if self._pending:
                self._terminal = finish  # runs right after the pending value
                return
        finish()

    def on_error(self, error: Exception) -> None:
        self._on_terminal(lambda: self._observer.on_error(error))

    def on_completed(self) -> None:
        self._on_terminal(self._observer.on_completed)


def conflate_(
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """The implementation of :func:`rxconnector.operators.conflate` (see there)."""

    def _conflate(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            run = _ConflateRun(observer, resolve_scheduler(scheduler, scheduler_))
            run.upstream.disposable = source.subscribe(
                run.on_next, run.on_error, run.on_completed, scheduler=scheduler_
            )
            return run.disposable

        return Observable(subscribe)

    return _conflate
