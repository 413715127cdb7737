"""Latest-value conflation for slow consumers (the implementation behind ``operators.conflate``).

A book or ticker consumer only cares about the newest state. Queueing every update for a
consumer that cannot keep up makes its latency grow for hours (PEERS.md §3 pain point 7);
dropping the socket because of it is worse. ``conflate`` keeps exactly one slot: a value
that arrives while a delivery is pending overwrites the slot, so memory stays constant
and the consumer always sees the freshest state next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler

__all__ = ["conflate_"]

_T = TypeVar("_T")

_NOTHING: Any = object()


def conflate_(
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    def _conflate(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(scheduler, scheduler_)
            lock = threading.Lock()
            upstream = SingleAssignmentDisposable()
            delivery = SerialDisposable()
            disposable = CompositeDisposable(upstream, delivery)
            # The one slot. ``pending`` is True from the moment a delivery is scheduled
            # until it has finished, so deliveries never overlap (Rx grammar) even when
            # the scheduler runs them on another thread.
            latest: Any = _NOTHING
            pending = False
            terminal: Callable[[], None] | None = None

            def deliver(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal latest, pending, terminal
                with lock:
                    value, latest = latest, _NOTHING
                if value is not _NOTHING:
                    try:
                        observer.on_next(value)
                    except Exception:
                        # The consumer is broken: end this subscription cleanly instead
                        # of leaving it stuck with a pending flag, and let the scheduler
                        # report the exception.
                        disposable.dispose()
                        raise
                with lock:
                    again = latest is not _NOTHING
                    finish = None
                    if not again:
                        pending = False
                        finish, terminal = terminal, None
                if again:
                    delivery.disposable = sched.schedule(deliver)
                elif finish is not None:
                    finish()

            def on_next(value: _T) -> None:
                nonlocal latest, pending
                with lock:
                    latest = value
                    if pending:
                        return
                    pending = True
                delivery.disposable = sched.schedule(deliver)

            def on_terminal(finish: Callable[[], None]) -> None:
                nonlocal terminal
                with lock:
                    if pending:
                        terminal = finish  # runs right after the pending value
                        return
                finish()

            def on_error(error: Exception) -> None:
                on_terminal(lambda: observer.on_error(error))

            def on_completed() -> None:
                on_terminal(observer.on_completed)

            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler_
            )
            return disposable

        return Observable(subscribe)

    return _conflate
