"""Shared pacing of order-book snapshot requests: one :class:`SnapshotGate` per connector.

A reconnect resyncs every book of the connection at once; the gate keeps their REST
snapshot requests from all starting in the same millisecond. Used by
:func:`~rxconnector.streams.orderbook.maintain_order_book` (``gate=``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler

__all__ = ["SnapshotGate"]

_T = TypeVar("_T")


class _Ticket(Generic[_T]):
    """One gated subscription: waiting, running, or done."""

    __slots__ = ("inner", "observer", "scheduler", "source", "state")

    def __init__(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self.source = source
        self.observer = observer
        self.scheduler = scheduler
        self.state = "waiting"
        self.inner = SingleAssignmentDisposable()


class SnapshotGate:
    """Lets at most ``max_in_flight`` snapshot requests run at once, in arrival order.

    One gate is shared by every book of a connector, so a reconnect that resyncs fifty
    symbols does not fire fifty REST snapshots in the same millisecond. The REST rate
    limiter still owns the weight budget; the gate only spreads the requests out.
    ``min_interval`` (seconds, on the scheduler) additionally spaces request starts.

    A request holds its slot until its observable terminates or is disposed; a waiting
    request that is disposed leaves the queue without ever being subscribed.
    """

    def __init__(
        self,
        max_in_flight: int = 2,
        *,
        min_interval: float = 0.0,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval}")
        self.max_in_flight = max_in_flight
        self.min_interval = min_interval
        self._scheduler = scheduler
        self._queue: list[_Ticket[Any]] = []
        self._running = 0
        self._draining = False
        self._next_start: datetime | None = None
        self._pacer = SerialDisposable()
        self._pacing = False

    @property
    def in_flight(self) -> int:
        """Requests subscribed and not finished."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._queue)

    def wrap(self, source: Observable[_T]) -> Observable[_T]:
        """``source`` subscribed only when the gate has a free slot."""

        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            ticket: _Ticket[_T] = _Ticket(source, observer, scheduler_)
            self._queue.append(ticket)
            self._drain()

            def dispose() -> None:
                if ticket.state == "waiting":
                    ticket.state = "done"
                    self._queue.remove(ticket)
                elif ticket.state == "running":
                    ticket.inner.dispose()
                    self._release(ticket)

            return Disposable(dispose)

        return Observable(subscribe)

    def _release(self, ticket: _Ticket[Any]) -> None:
        if ticket.state == "running":
            ticket.state = "done"
            self._running -= 1
            self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and self._running < self.max_in_flight and not self._pacing:
                ticket = self._queue[0]
                if self.min_interval > 0:
                    scheduler = resolve_scheduler(self._scheduler, ticket.scheduler)
                    now = scheduler.now
                    if self._next_start is not None and now < self._next_start:
                        self._pace(scheduler, (self._next_start - now).total_seconds())
                        return
                    self._next_start = now + (scheduler.to_timedelta(self.min_interval))
                self._queue.pop(0)
                self._start(ticket)
        finally:
            self._draining = False

    def _pace(self, scheduler: abc.SchedulerBase, delay: float) -> None:
        self._pacing = True

        def resume(_: abc.SchedulerBase, __: Any = None) -> None:
            self._pacing = False
            self._drain()

        self._pacer.disposable = scheduler.schedule_relative(delay, resume)

    def _start(self, ticket: _Ticket[Any]) -> None:
        ticket.state = "running"
        self._running += 1
        observer = ticket.observer

        def on_error(error: Exception) -> None:
            self._release(ticket)
            observer.on_error(error)

        def on_completed() -> None:
            self._release(ticket)
            observer.on_completed()

        ticket.inner.disposable = ticket.source.subscribe(
            observer.on_next, on_error, on_completed, scheduler=ticket.scheduler
        )
