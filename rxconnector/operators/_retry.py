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
from typing import Any, TypeVar

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
    wait_ = default_wait() if wait is None else wait
    stop_: StopBaseT = tenacity.stop_never if stop is None else stop
    should_retry = default_retry_if if retry_if is None else retry_if

    def _retry(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(scheduler, scheduler_)
            serial = SerialDisposable()
            call_state: tenacity.RetryCallState | None = None
            attempt_started = 0.0

            def clock() -> float:
                return now_ms(sched) / 1000.0

            def next_state(now: float) -> tenacity.RetryCallState:
                """The state for this failure: a new sequence or the next attempt."""
                nonlocal call_state
                healthy = reset_after is not None and now - attempt_started >= reset_after
                if call_state is None or healthy:
                    call_state = tenacity.RetryCallState(_MANAGER, None, (), {})
                    # A fresh sequence counts its time from its first attempt; after a
                    # reset that is the failure itself (the healthy period is not spent
                    # retry budget).
                    call_state.start_time = attempt_started if not healthy else now
                else:
                    call_state.prepare_for_next_attempt()
                return call_state

            def decide(error: Exception) -> tenacity.RetryCallState | None:
                """The state of the retry to schedule, or None to pass ``error`` on."""
                if not should_retry(error):
                    return None
                now = clock()
                state = next_state(now)
                state.outcome = tenacity.Future.construct(state.attempt_number, error, True)
                state.outcome_timestamp = now
                # Same order as tenacity: wait first (stop_before_delay reads it).
                delay = max(0.0, float(wait_(state)))
                if respect_retry_after:
                    delay = max(delay, _retry_after(error))
                state.upcoming_sleep = delay
                if stop_(state):
                    return None
                state.idle_for += delay
                return state

            def on_error(error: Exception) -> None:
                try:
                    state = decide(error)
                except Exception as exc:  # a strategy or predicate raised
                    observer.on_error(exc)
                    return
                if state is None:
                    observer.on_error(error)
                    return
                delay = state.upcoming_sleep
                if on_retry is not None:
                    try:
                        on_retry(RetryEvent(state.attempt_number, delay, error))
                    except Exception:
                        _log.exception("on_retry raised", error=repr(error))
                # Replacing the serial's content disposes the failed attempt.
                serial.disposable = sched.schedule_relative(delay, attempt)

            def attempt(_: abc.SchedulerBase | None = None, __: Any = None) -> None:
                nonlocal attempt_started
                current = SingleAssignmentDisposable()
                # Assigned before subscribing: a source that errors synchronously replaces
                # (and so disposes) ``current`` before its subscription exists.
                serial.disposable = current
                attempt_started = clock()
                current.disposable = source.subscribe(
                    observer.on_next, on_error, observer.on_completed, scheduler=scheduler_
                )

            attempt()
            return serial

        return Observable(subscribe)

    return _retry
