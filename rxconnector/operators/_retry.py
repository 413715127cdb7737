"""Resubscribe-with-backoff driven by tenacity strategies on a Rx scheduler.

Why tenacity: its wait/stop strategies are the vocabulary Python users already know
(``wait_exponential(...) + wait_random(...)``, ``stop_after_attempt``,
``stop_after_delay``) and compose with ``+``/``|``. Why not tenacity's ``Retrying``: it
sleeps. Here the strategies are only *asked* for a delay and a verdict, with a
:class:`tenacity.RetryCallState` whose times come from the Rx scheduler, and the
resubscription is scheduled with ``schedule_relative``: nothing blocks, and under a
``TestScheduler`` ``stop_after_delay`` works in virtual time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
import tenacity
from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.errors import CircuitOpenError, ExchangeError, RxConnectorError, TransportError
from rxconnector.log import get_logger

__all__ = [
    "RetryEvent",
    "backoff_policy_from_config",
    "default_retry_if",
    "default_wait",
    "retry_with_backoff_",
]

_T = TypeVar("_T")

_log = get_logger(component="retry")

#: tenacity wants a retry manager in every RetryCallState; strategies never use it.
_MANAGER = tenacity.Retrying()


@attrs.frozen
class RetryEvent:
    """One scheduled retry: the ``attempt``-th consecutive failure was ``error``; the
    source is resubscribed after ``delay`` seconds (scheduler time)."""

    attempt: int
    delay: float
    error: Exception


def default_wait() -> WaitBaseT:
    """Exponential 1, 2, 4 ... s capped at 60 s, plus 0-1 s of random jitter."""
    return tenacity.wait_exponential(multiplier=1, max=60) + tenacity.wait_random(0, 1)


def default_retry_if(error: Exception) -> bool:
    """Retry what time can fix; pass through what it cannot.

    Retried: transport errors, an open circuit (it half-opens later), exchange errors the
    exchange layer marked ``retryable`` (5xx, overload, rate limits), and foreign
    exceptions (a user's own stream: same as ``ops.retry``). Not retried: every other
    rxconnector error - bad config, unparseable data, rejected subscriptions or orders,
    unsupported features, order status unknown.
    """
    if isinstance(error, TransportError | CircuitOpenError):
        return True
    if isinstance(error, ExchangeError):
        return error.retryable
    return not isinstance(error, RxConnectorError)


def backoff_policy_from_config(config: ConnectionConfig) -> tuple[WaitBaseT, StopBaseT]:
    """The reconnect policy of ``config`` as tenacity ``(wait, stop)`` strategies.

    Delay before retry n (1-based): ``min(reconnect_delay * 2**(n-1), reconnect_max_delay)``
    plus a uniform random jitter in ``[0, reconnect_jitter]`` (so the total can exceed the
    cap by at most the jitter, which keeps many clients from reconnecting in lockstep at
    the cap). ``max_reconnect_attempts=None`` retries forever; otherwise at most that many
    retries follow the first failure.
    """
    wait: WaitBaseT = tenacity.wait_exponential(
        multiplier=config.reconnect_delay, max=config.reconnect_max_delay
    )
    if config.reconnect_jitter > 0:
        wait = wait + tenacity.wait_random(0, config.reconnect_jitter)
    stop: StopBaseT = (
        tenacity.stop_never
        if config.max_reconnect_attempts is None
        else tenacity.stop_after_attempt(config.max_reconnect_attempts + 1)
    )
    return wait, stop


def _retry_after(error: Exception) -> float:
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return 0.0


@attrs.frozen
class _RetryPolicy:
    """What :func:`retry_with_backoff_` was configured with, resolved to non-None."""

    wait: WaitBaseT
    stop: StopBaseT
    retry_if: Callable[[Exception], bool]
    scheduler: abc.SchedulerBase | None
    on_retry: Callable[[RetryEvent], None] | None
    reset_after: float | None
    respect_retry_after: bool


class _RetryRun(Generic[_T]):
    """One subscription of the retrying Observable: the attempt in flight and the retry
    sequence it belongs to.

    State is per subscription (two subscribers retry independently); each failure of the
    source goes through :meth:`on_error`, each resubscription through :meth:`attempt`.
    """

    def __init__(
        self,
        policy: _RetryPolicy,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self._policy = policy
        self._source = source
        self._observer = observer
        self._subscribe_scheduler = scheduler_
        self._sched = resolve_scheduler(policy.scheduler, scheduler_)
        self.serial = SerialDisposable()
        self._call_state: tenacity.RetryCallState | None = None
        self._attempt_started = 0.0

    def _clock(self) -> float:
        return now_ms(self._sched) / 1000.0

    def _next_state(self, now: float) -> tenacity.RetryCallState:
        """The state for this failure: a new sequence or the next attempt."""
        reset_after = self._policy.reset_after
        healthy = reset_after is not None and now - self._attempt_started >= reset_after
        state = self._call_state
        if state is None or healthy:
            state = tenacity.RetryCallState(_MANAGER, None, (), {})
            # A fresh sequence counts its time from its first attempt; after a reset that
            # is the failure itself (the healthy period is not spent retry budget).
            state.start_time = self._attempt_started if not healthy else now
            self._call_state = state
        else:
            state.prepare_for_next_attempt()
        return state

    def _decide(self, error: Exception) -> tenacity.RetryCallState | None:
        """The state of the retry to schedule, or None to pass ``error`` on."""
        policy = self._policy
        if not policy.retry_if(error):
            return None
        now = self._clock()
        state = self._next_state(now)
        state.outcome = tenacity.Future.construct(state.attempt_number, error, True)
        state.outcome_timestamp = now
        # Same order as tenacity: wait first (stop_before_delay reads it).
        delay = max(0.0, float(policy.wait(state)))
        if policy.respect_retry_after:
            delay = max(delay, _retry_after(error))
        state.upcoming_sleep = delay
        if policy.stop(state):
            return None
        state.idle_for += delay
        return state

    def on_error(self, error: Exception) -> None:
        """A failure of the current attempt: schedule the next one or pass it on."""
        try:
            state = self._decide(error)
        except Exception as exc:  # a strategy or predicate raised
            self._observer.on_error(exc)
            return
        if state is None:
            self._observer.on_error(error)
            return
        delay = state.upcoming_sleep
        on_retry = self._policy.on_retry
        if on_retry is not None:
            try:
                on_retry(RetryEvent(state.attempt_number, delay, error))
            except Exception:
                _log.exception("on_retry raised", error=repr(error))
        # Replacing the serial's content disposes the failed attempt.
        self.serial.disposable = self._sched.schedule_relative(delay, self.attempt)

    def attempt(self, _: abc.SchedulerBase | None = None, __: Any = None) -> None:
        """Subscribe to the source once more."""
        current = SingleAssignmentDisposable()
        # Assigned before subscribing: a source that errors synchronously replaces (and so
        # disposes) ``current`` before its subscription exists.
        self.serial.disposable = current
        self._attempt_started = self._clock()
        observer = self._observer
        current.disposable = self._source.subscribe(
            observer.on_next,
            self.on_error,
            observer.on_completed,
            scheduler=self._subscribe_scheduler,
        )


def retry_with_backoff_(
    wait: WaitBaseT | None = None,
    stop: StopBaseT | None = None,
    *,
    retry_if: Callable[[Exception], bool] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    reset_after: float | None = None,
    respect_retry_after: bool = True,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """The implementation of :func:`rxconnector.operators.retry_with_backoff` (see there)."""
    policy = _RetryPolicy(
        wait=default_wait() if wait is None else wait,
        stop=tenacity.stop_never if stop is None else stop,
        retry_if=default_retry_if if retry_if is None else retry_if,
        scheduler=scheduler,
        on_retry=on_retry,
        reset_after=reset_after,
        respect_retry_after=respect_retry_after,
    )

    def _retry(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            run = _RetryRun(policy, source, observer, scheduler_)
            run.attempt()
            return run.serial

        return Observable(subscribe)

    return _retry
