"""Circuit breaker state machine and the ``breaker(cb)`` operator.

Why: when an exchange is down or overloaded, hammering it makes things worse (and gets
the IP banned). The breaker counts consecutive *server-side* failures, fails calls fast
while open, and lets a few trial calls through after a cool-down to find out whether the
service is back.

::

    CLOSED --max_failures consecutive failures--> OPEN
    OPEN   --open_timeout elapsed (timer on the scheduler)--> HALF_OPEN
    HALF_OPEN --success_threshold trial successes--> CLOSED
    HALF_OPEN --any trial failure--> OPEN
    any    --trip(duration)--> OPEN for that long
    any    --banned RateLimitError (418)--> OPEN for exactly its retry_after (a *hold*),
           then back to CLOSED (or HALF_OPEN if it was open for failures before)

A 429 or 418 is not a failure: the service is answering and told us exactly how long
to wait. A 429 is the rate limiter's business (it holds every call); a 418 ban shows as
OPEN on the breaker for exactly its ``Retry-After``, during which calls fail at once
with a :class:`RateLimitError` carrying the remaining time, never ``max(ban,
open_timeout)``. :func:`breaker_waiting_` is the guard for recovery traffic: instead of
failing while the breaker refuses, it waits for the hold's end or a trial slot.

All times come from a Rx scheduler, so a ``TestScheduler`` drives the open timeout in
virtual time. The breaker is meant for the event-loop thread; a lock keeps its counters
consistent if it is touched from elsewhere, but state notifications are delivered after
the lock is released and are only ordered when everything runs on one thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.subject import BehaviorSubject

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.config import BreakerConfig
from rxconnector.errors import (
    CircuitOpenError,
    ConnectorStoppedError,
    ExchangeError,
    OrderRejectedError,
    RateLimitError,
    TransportError,
)
from rxconnector.log import get_logger
from rxconnector.models import BreakerState, BreakerStats
from rxconnector.operators._share import isolate_

__all__ = ["CircuitBreaker", "breaker_", "breaker_waiting_", "default_is_failure"]

_T = TypeVar("_T")

_log = get_logger(component="breaker")

#: Tolerance when comparing scheduler times (datetime arithmetic rounds to microseconds).
_EPSILON_S = 1e-6


def default_is_failure(error: Exception) -> bool:
    """Whether ``error`` says the *service* is unhealthy (and should count towards opening).

    Failures: transport errors (connect errors, timeouts, closed sockets; also the builtin
    ``ConnectionError``/``TimeoutError`` from foreign streams), exchange errors with HTTP
    status >= 500 or marked retryable by the exchange layer (overload, Bybit 10016). An
    exchange error caused by a transport error (for instance an order whose status is
    unknown after a timeout) is a failure.

    Not failures: the caller's own mistakes (unknown symbol, other 4xx,
    :class:`OrderRejectedError`), any :class:`RateLimitError` (429 or 418: the service is
    answering and said exactly how long to wait; a 418 opens the breaker as a hold of
    that length instead), :class:`CircuitOpenError` (no call was made) and any other
    exception (a bug in a pipeline says nothing about the exchange).
    """
    if isinstance(error, CircuitOpenError | OrderRejectedError):
        return False
    if isinstance(error, TransportError):
        return True
    if isinstance(error, RateLimitError):
        return False
    if isinstance(error, ExchangeError):
        return (
            error.status >= 500
            or error.retryable
            or isinstance(error.__cause__, TransportError | ConnectionError | TimeoutError)
        )
    return isinstance(error, ConnectionError | TimeoutError)


@attrs.frozen
class _Ticket:
    """An admitted call: which breaker period it belongs to and whether it is a trial."""

    generation: int
    trial: bool


class CircuitBreaker:
    """Closed / open / half-open circuit breaker whose timing runs on a Rx scheduler.

    Args:
        name: Shown in :class:`CircuitOpenError` and logs (e.g. ``"binance-rest"``).
        config: Thresholds; with ``config.enabled`` False every call passes and the state
            never leaves CLOSED (stats are still counted).
        scheduler: Clock and timer for the open timeout. Defaults to the scheduler the
            guarded Observable is subscribed with, else the running loop's.
        on_state_change: Called with ``(old, new)`` on every transition.
        is_failure: Which errors count as failures; see :func:`default_is_failure`.

    Outcome of one guarded call (see :func:`rxconnector.operators.breaker`): completion
    counts as a success; an error counts as a failure when ``is_failure(error)`` and
    otherwise as a success (the exchange answered, the request was just wrong), except
    :class:`CircuitOpenError`, which counts as nothing. A subscription disposed after it
    delivered at least one value counts as a success (``first()``/``take(1)`` dispose
    before the source completes); one disposed before any value or terminal event
    counts as nothing.

    ``stats.last_failure_time`` is the scheduler's clock in **epoch seconds** (float);
    under a ``TestScheduler`` that is the virtual tick.
    """

    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        *,
        scheduler: abc.SchedulerBase | None = None,
        on_state_change: Callable[[BreakerState, BreakerState], None] | None = None,
        is_failure: Callable[[Exception], bool] = default_is_failure,
    ) -> None:
        self.name = name
        self.config = config
        self._scheduler = scheduler
        self._on_state_change = on_state_change
        self._is_failure = is_failure
        self._lock = threading.RLock()
        self._subject: BehaviorSubject[BreakerState] = BehaviorSubject(BreakerState.CLOSED)
        self._state = BreakerState.CLOSED
        self._timer = SerialDisposable()
        # Scheduler that times the current open period, and its end (epoch seconds).
        self._clock: abc.SchedulerBase | None = scheduler
        self._open_until = 0.0
        # The current OPEN period is a ban hold (a 418): refusals are RateLimitErrors and
        # its end leads to ``_after_hold`` instead of HALF_OPEN.
        self._hold = False
        self._after_hold = BreakerState.CLOSED
        # Bumped on every transition; outcomes of trials from an older period are ignored.
        self._generation = 0
        self._trials_in_flight = 0
        self._half_open_successes = 0
        self._stats = BreakerStats()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state.value})"

    # -- public read side ----------------------------------------------------------------
    @property
    def state(self) -> Observable[BreakerState]:
        """Every state the breaker enters; a new subscriber first gets the current one.

        Subscribers are isolated: one whose ``on_next`` raises is detached and logged.
        """
        return self._subject.pipe(isolate_())

    @property
    def current(self) -> BreakerState:
        """The state right now (an OPEN breaker whose timeout has passed reads HALF_OPEN)."""
        self._check_timeout()
        return self._state

    @property
    def stats(self) -> BreakerStats:
        """A snapshot of the counters since construction or the last :meth:`reset`."""
        self._check_timeout()
        with self._lock:
            return attrs.evolve(self._stats, state=self._state)

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        """The scheduler given at construction (``None``: the subscriber's, or the loop's)."""
        return self._scheduler

    @property
    def trials_full(self) -> bool:
        """HALF_OPEN with every trial slot taken (a new call would be refused)."""
        with self._lock:
            return (
                self._state is BreakerState.HALF_OPEN
                and self._trials_in_flight >= self.config.half_open_max_calls
            )

    @property
    def retry_after(self) -> float:
        """Seconds until an OPEN breaker lets trial calls through (0.0 when not OPEN)."""
        with self._lock:
            if self._state is not BreakerState.OPEN or self._clock is None:
                return 0.0
            return max(0.0, self._open_until - self._now(self._clock))

    # -- public write side ----------------------------------------------------------------
    def trip(
        self, duration: float | None = None, *, scheduler: abc.SchedulerBase | None = None
    ) -> None:
        """Open now for ``duration`` seconds (default ``open_timeout``), e.g. on an IP ban.

        An already open breaker stays open until the later of its current and the new
        deadline. Does nothing when the breaker is disabled.
        """
        if not self.config.enabled:
            return
        seconds = self.config.open_timeout if duration is None else max(0.0, duration)
        with self._lock:
            events = self._open(seconds, scheduler)
        self._emit(events)

    def reset(self) -> None:
        """Back to CLOSED with zeroed counters; a pending open timeout is cancelled."""
        with self._lock:
            self._timer.disposable = Disposable()
            self._hold = False
            self._stats = BreakerStats()
            self._trials_in_flight = 0
            self._half_open_successes = 0
            events = self._set_state(BreakerState.CLOSED)
            self._generation += 1
        self._emit(events)

    # -- used by the operator ---------------------------------------------------------------
    def admit(
        self, scheduler: abc.SchedulerBase | None = None
    ) -> _Ticket | CircuitOpenError | RateLimitError:
        """Let a call through (a ticket for :meth:`record`) or refuse it (the error:
        :class:`RateLimitError` with the remaining time during a ban hold, else
        :class:`CircuitOpenError`)."""
        if scheduler is not None and self._clock is None:
            self._clock = scheduler
        self._check_timeout()
        with self._lock:
            state = self._state
            if not self.config.enabled or state is BreakerState.CLOSED:
                self._count(requests=1)
                return _Ticket(self._generation, trial=False)
            if state is BreakerState.HALF_OPEN and (
                self._trials_in_flight < self.config.half_open_max_calls
            ):
                self._trials_in_flight += 1
                self._count(requests=1)
                return _Ticket(self._generation, trial=True)
            self._count(rejections=1)
            # HALF_OPEN with every trial slot taken: a slot frees as soon as a trial ends.
            retry_after = self.retry_after if state is BreakerState.OPEN else 0.0
            if state is BreakerState.OPEN and self._hold:
                return RateLimitError(
                    f"{self.name}: IP banned (HTTP 418): nothing may be sent for another "
                    f"{retry_after:.3f}s",
                    retry_after=retry_after,
                    banned=True,
                    status=418,
                )
            return CircuitOpenError(self.name, retry_after)

    def record(self, ticket: _Ticket, error: Exception | None) -> None:
        """Record the outcome of an admitted call (``error`` None = success)."""
        if isinstance(error, CircuitOpenError | ConnectorStoppedError) or (
            isinstance(error, RateLimitError) and not error.banned
        ):
            # No evidence either way: nothing was sent (a refusal), the limiter's 429, or
            # our own shutdown cut the call short.
            self.release(ticket)
            return
        failure = False
        if error is not None:
            try:
                failure = bool(self._is_failure(error))
            except Exception:
                _log.exception(
                    "is_failure raised; counting the error as a failure", breaker=self.name
                )
                failure = True
        with self._lock:
            current_trial = self._release_locked(ticket)
            if failure:
                self._count(failures=1)
                self._stats = attrs.evolve(
                    self._stats,
                    consecutive_failures=self._stats.consecutive_failures + 1,
                    last_failure_time=self._now(self._clock_or_default()),
                )
            else:
                self._count(successes=1)
                self._stats = attrs.evolve(self._stats, consecutive_failures=0)
            events = self._transition_after(failure, error, current_trial)
        self._emit(events)

    def release(self, ticket: _Ticket) -> None:
        """Forget an admitted call that ended without an outcome (disposed early)."""
        with self._lock:
            self._release_locked(ticket)

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _now(clock: abc.SchedulerBase) -> float:
        return now_ms(clock) / 1000.0

    def _clock_or_default(self, scheduler: abc.SchedulerBase | None = None) -> abc.SchedulerBase:
        clock = resolve_scheduler(self._scheduler, scheduler or self._clock)
        self._clock = clock
        return clock

    def _count(self, **deltas: int) -> None:
        values: dict[str, Any] = {k: getattr(self._stats, k) + v for k, v in deltas.items()}
        self._stats = attrs.evolve(self._stats, **values)

    def _release_locked(self, ticket: _Ticket) -> bool:
        """Free the ticket's trial slot; True if it was a trial of the current period."""
        current = ticket.trial and ticket.generation == self._generation
        if current:
            self._trials_in_flight -= 1
        return current

    def _transition_after(
        self, failure: bool, error: Exception | None, current_trial: bool
    ) -> list[tuple[BreakerState, BreakerState]]:
        if not self.config.enabled:
            return []
        if isinstance(error, RateLimitError) and error.banned:
            return self._open(error.retry_after, None, hold=True)
        if self._state is BreakerState.CLOSED:
            if failure and self._stats.consecutive_failures >= self.config.max_failures:
                return self._open(self.config.open_timeout, None)
        elif self._state is BreakerState.HALF_OPEN and current_trial:
            if failure:
                return self._open(self.config.open_timeout, None)
            self._half_open_successes += 1
            if self._half_open_successes >= self.config.success_threshold:
                self._generation += 1
                return self._set_state(BreakerState.CLOSED)
        # OPEN, or an outcome of a call admitted in an earlier period: stale evidence.
        return []

    def _open(
        self, seconds: float, scheduler: abc.SchedulerBase | None, *, hold: bool = False
    ) -> list[tuple[BreakerState, BreakerState]]:
        clock = self._clock_or_default(scheduler)
        until = self._now(clock) + seconds
        if self._state is BreakerState.OPEN and until <= self._open_until:
            return []
        if hold and not self._hold:
            # After the ban: closed again, unless the breaker was open for failures.
            self._after_hold = (
                BreakerState.CLOSED
                if self._state is BreakerState.CLOSED
                else BreakerState.HALF_OPEN
            )
        self._hold = hold
        self._open_until = until
        self._generation += 1
        generation = self._generation
        self._trials_in_flight = 0
        self._half_open_successes = 0

        def half_open(_: abc.SchedulerBase, __: Any = None) -> None:
            with self._lock:
                if self._generation != generation or self._state is not BreakerState.OPEN:
                    return
                events = self._end_open()
            self._emit(events)

        self._timer.disposable = clock.schedule_relative(seconds, half_open)
        return self._set_state(BreakerState.OPEN)

    def _end_open(self) -> list[tuple[BreakerState, BreakerState]]:
        """The OPEN period is over: HALF_OPEN, or, after a ban hold, what it was before."""
        if self._hold:
            self._hold = False
            if self._after_hold is BreakerState.CLOSED:
                self._generation += 1
                self._trials_in_flight = 0
                self._half_open_successes = 0
                return self._set_state(BreakerState.CLOSED)
        return self._to_half_open()

    def _to_half_open(self) -> list[tuple[BreakerState, BreakerState]]:
        self._generation += 1
        self._trials_in_flight = 0
        self._half_open_successes = 0
        return self._set_state(BreakerState.HALF_OPEN)

    def _check_timeout(self) -> None:
        """Move OPEN → HALF_OPEN if the deadline passed but the timer has not run yet."""
        with self._lock:
            if (
                self._state is not BreakerState.OPEN
                or self._clock is None
                or self._now(self._clock) + _EPSILON_S < self._open_until
            ):
                return
            self._timer.disposable = Disposable()
            events = self._end_open()
        self._emit(events)

    def _set_state(self, new: BreakerState) -> list[tuple[BreakerState, BreakerState]]:
        old, self._state = self._state, new
        return [] if old is new else [(old, new)]

    def _emit(self, events: list[tuple[BreakerState, BreakerState]]) -> None:
        for old, new in events:
            _log.info("circuit state change", breaker=self.name, old=old.value, new=new.value)
            if self._on_state_change is not None:
                try:
                    self._on_state_change(old, new)
                except Exception:
                    _log.exception("on_state_change raised", breaker=self.name)
            self._subject.on_next(new)


class _GuardedCall(Generic[_T]):
    """One admitted call through the breaker: its outcome is recorded exactly once, by
    whichever of error, completion or dispose comes first (``settle``)."""

    def __init__(self, cb: CircuitBreaker, admitted: Any, observer: abc.ObserverBase[_T]) -> None:
        self._cb = cb
        self._admitted = admitted
        self._observer = observer
        self._lock = threading.Lock()
        self._settled = False
        self._seen_value = False
        self.subscription: abc.DisposableBase = Disposable()

    def _settle(self) -> bool:
        with self._lock:
            first, self._settled = not self._settled, True
        return first

    def on_next(self, value: _T) -> None:
        self._seen_value = True
        self._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        if self._settle():
            self._cb.record(self._admitted, error)  # update state before anyone reacts
        self._observer.on_error(error)

    def on_completed(self) -> None:
        if self._settle():
            self._cb.record(self._admitted, None)
        self._observer.on_completed()

    def dispose(self) -> None:
        """Unsubscribed before an outcome: a call that delivered something counts as a
        success, one that delivered nothing gives its slot back without a verdict."""
        self.subscription.dispose()
        if self._settle():
            if self._seen_value:
                self._cb.record(self._admitted, None)
            else:
                self._cb.release(self._admitted)


def breaker_(cb: CircuitBreaker) -> Callable[[Observable[_T]], Observable[_T]]:
    """The implementation of :func:`rxconnector.operators.breaker` (see there)."""

    def _breaker(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            ticket = cb.admit(scheduler_)
            if isinstance(ticket, Exception):
                observer.on_error(ticket)  # fail fast: the source is never subscribed
                return Disposable()
            call = _GuardedCall(cb, ticket, observer)
            call.subscription = source.subscribe(
                call.on_next, call.on_error, call.on_completed, scheduler=scheduler_
            )
            return Disposable(call.dispose)

        return Observable(subscribe)

    return _breaker


#: Longest pause between two admission attempts of a waiting (recovery) call while the
#: breaker is half-open with every trial slot taken (no end time is known then).
WAIT_POLL_S = 0.25


class _WaitingCall(Generic[_T]):
    """One recovery call that waits for the breaker instead of failing (see
    :func:`breaker_waiting_`): each :meth:`attempt` either subscribes through the breaker
    or schedules the next attempt for when the hold ends."""

    def __init__(
        self,
        cb: CircuitBreaker,
        guarded: Observable[_T],
        observer: abc.ObserverBase[_T],
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self._cb = cb
        self._guarded = guarded
        self._observer = observer
        self._scheduler = scheduler_
        self._inner = SerialDisposable()
        self._timer = SerialDisposable()
        self._done = False

    def attempt(self, *_: Any) -> None:
        if self._done:
            return
        cb = self._cb
        state = cb.current
        if cb.config.enabled and state is not BreakerState.CLOSED:
            wait = cb.retry_after if state is BreakerState.OPEN else 0.0
            if state is BreakerState.OPEN or cb.trials_full:
                clock = resolve_scheduler(cb.scheduler, self._scheduler)
                delay = wait if wait > 0 else WAIT_POLL_S
                self._timer.disposable = clock.schedule_relative(delay, self.attempt)
                return
        self._inner.disposable = self._guarded.subscribe(
            self._observer.on_next,
            self._on_error,
            self._observer.on_completed,
            scheduler=self._scheduler,
        )

    def _on_error(self, error: Exception) -> None:
        if isinstance(error, CircuitOpenError):
            self.attempt()  # refused by the breaker after all (a race): wait again
            return
        self._observer.on_error(error)

    def dispose(self) -> None:
        self._done = True
        self._timer.dispose()
        self._inner.dispose()


def breaker_waiting_(cb: CircuitBreaker) -> Callable[[Observable[_T]], Observable[_T]]:
    """Like :func:`breaker_`, but a refused call *waits* and asks again instead of failing:
    until the open period or ban hold ends (its exact ``retry_after``), or, half-open
    with every trial slot taken, every :data:`WAIT_POLL_S` seconds. For recovery traffic
    (order-book snapshots, trade backfills), which has nobody to hand the error to.

    .. marble::
        :alt: breaker_waiting

        breaker:  OPEN until t=3 (ban hold)
        source:   ---------------(a|)        subscribed at t=3, not at 0
        [ breaker_waiting(cb) subscribed at t=0 ]
                  ---------------(a|)
    """
    guard = breaker_(cb)

    def _waiting(source: Observable[_T]) -> Observable[_T]:
        guarded = guard(source)

        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            call = _WaitingCall(cb, guarded, observer, scheduler_)
            call.attempt()
            return Disposable(call.dispose)

        return Observable(subscribe)

    return _waiting
