"""Public Rx building blocks: they work on any Observable, not only rxconnector's feeds.

``breaker`` fails fast while a :class:`CircuitBreaker` is open, ``retry_with_backoff``
resubscribes with tenacity backoff timed on a Rx scheduler, ``share`` multicasts safely
(resets after a terminal event, isolates subscribers) and ``conflate`` keeps slow
consumers on the newest value. Every time-dependent operator takes ``scheduler=`` and
otherwise uses the scheduler given to ``subscribe`` (then the running loop's), so a
``TestScheduler`` drives them in virtual time.

The factories here are thin and documented; implementations live in private modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

from rxconnector.operators._breaker import CircuitBreaker, default_is_failure
from rxconnector.operators._retry import (
    RetryEvent,
    backoff_policy_from_config,
    default_retry_if,
    default_wait,
)

__all__ = [
    "CircuitBreaker",
    "RetryEvent",
    "backoff_policy_from_config",
    "breaker",
    "breaker_waiting",
    "conflate",
    "default_is_failure",
    "default_retry_if",
    "default_wait",
    "isolate",
    "retry_with_backoff",
    "share",
]

_T = TypeVar("_T")


def breaker(cb: CircuitBreaker) -> Callable[[Observable[_T]], Observable[_T]]:
    """Guard a call (any Observable) with the circuit breaker ``cb``.

    .. marble::
        :alt: breaker

        closed:   --a--|                 source subscribed, completion = success
        [    breaker(cb)    ]
                  --a--|

        open:     (source never subscribed)
        [    breaker(cb)    ]
                  #                      CircuitOpenError(name, retry_after) at once

    While ``cb`` is OPEN (or HALF_OPEN with every trial slot taken) a subscription errors
    at once with :class:`~rxconnector.errors.CircuitOpenError` *without subscribing the
    source*, so no request is sent. Otherwise the source is subscribed and its outcome is
    recorded before it is forwarded (so a ``retry`` placed after ``breaker`` sees the new
    state): completion is a success, an error is a failure when ``cb``'s ``is_failure``
    says so, disposal after a value is a success, disposal before any value or terminal
    event records nothing. Each subscription is one call: place ``breaker`` *inside*
    ``retry_with_backoff`` so every retry is judged again.

    Examples:
        >>> cb = CircuitBreaker("rest", BreakerConfig())
        >>> server_time().pipe(breaker(cb), retry_with_backoff())

    Args:
        cb: The breaker; share one instance between every call to the same service.

    Returns:
        An operator function for ``Observable.pipe``.
    """
    from rxconnector.operators._breaker import breaker_

    return breaker_(cb)


def breaker_waiting(cb: CircuitBreaker) -> Callable[[Observable[_T]], Observable[_T]]:
    """Like :func:`breaker`, but a call the breaker refuses *waits* instead of failing.

    .. marble::
        :alt: breaker_waiting

        breaker:  OPEN until t=3 (a 418 hold, or an open timeout)
        source:   ---------------(a|)        subscribed at t=3, not at 0
        [ breaker_waiting(cb) subscribed at t=0 ]
                  ---------------(a|)

    For recovery traffic (order-book snapshots, trade backfills): a feed healing itself
    has nobody to hand a ``CircuitOpenError`` to and would only retry. The call is
    subscribed when the open period or ban hold ends (its exact ``retry_after``), or,
    half-open with every trial slot taken, when a slot is free (checked every 0.25 s).
    Its outcome is recorded like any other call's.
    """
    from rxconnector.operators._breaker import breaker_waiting_

    return breaker_waiting_(cb)


def retry_with_backoff(
    wait: WaitBaseT | None = None,
    stop: StopBaseT | None = None,
    *,
    retry_if: Callable[[Exception], bool] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    reset_after: float | None = None,
    respect_retry_after: bool = True,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Resubscribe to the source after retryable errors, waiting per tenacity strategies.

    .. marble::
        :alt: retry_with_backoff

        --a--#                      first subscription fails
                  --a--#            resubscribed after wait(1)
                            --a--|  resubscribed after wait(2), completes
        [ retry_with_backoff(wait_exponential(multiplier=5)) ]
        --a-------a---------a--|

    Values and completion pass through. After an error ``e``:

    * ``retry_if(e)`` False: ``e`` is forwarded at once (default
      :func:`default_retry_if`: transport errors, open circuits, retryable exchange errors
      and foreign exceptions are retried; other rxconnector errors are not);
    * otherwise the tenacity ``wait`` strategy gives the delay and the ``stop`` strategy
      decides whether to give up, in which case ``e`` itself is forwarded (not a
      ``tenacity.RetryError``). They receive a :class:`tenacity.RetryCallState` whose
      ``attempt_number`` counts consecutive failures and whose ``start_time`` and
      ``outcome_timestamp`` are scheduler times, so ``stop_after_delay`` works in virtual
      time;
    * with ``respect_retry_after`` an error carrying ``retry_after`` seconds
      (:class:`~rxconnector.errors.RateLimitError`, ``CircuitOpenError``) waits at least
      that long;
    * ``on_retry`` gets a :class:`RetryEvent` ``(attempt, delay, error)`` before the wait.

    Args:
        wait: tenacity wait strategy; default :func:`default_wait` (1, 2, 4 ... 60 s plus
            0-1 s jitter).
        stop: tenacity stop strategy; default never stop.
        retry_if: Which errors are worth retrying.
        scheduler: Scheduler for the delays; default the ``subscribe`` scheduler, then the
            running loop's.
        on_retry: Told about every retry (e.g. to publish "reconnecting").
        reset_after: If an attempt stayed subscribed at least this many seconds before it
            failed, the failure starts a new sequence: attempt 1, and the ``stop``
            strategy's clock restarts at that failure ("backoff resets after a connection
            has been healthy for a while").
        respect_retry_after: Never wait less than an error's ``retry_after``.

    Returns:
        An operator function for ``Observable.pipe``. Unbounded retries do not nest
        subscriptions (one ``SerialDisposable`` holds the current attempt).
    """
    from rxconnector.operators._retry import retry_with_backoff_

    return retry_with_backoff_(
        wait,
        stop,
        retry_if=retry_if,
        scheduler=scheduler,
        on_retry=on_retry,
        reset_after=reset_after,
        respect_retry_after=respect_retry_after,
    )


def share(
    on_subscriber_error: Callable[[Exception], None] | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Multicast the source to every subscriber: ref-counted, resettable and isolating.

    .. marble::
        :alt: share

        source:   --a--b--c--|     --d--|
        sub 1:    ^------------                  gets a b c |
        sub 2:       ^--!                        gets b, then its on_next raises
        sub 3:                      ^------      reconnects after the completion: d |
        [        share()        ]
        sub 1:    --a--b--c--|
        sub 2:       --b                         detached; sub 1 still gets b and c
        sub 3:                      --d--|

    * The first subscriber connects the source (with its scheduler); the last dispose
      disconnects it.
    * After the source completes or errors, the next subscriber connects again (unlike
      ``reactivex.operators.share``, which replays the old terminal event forever).
    * An exception raised by one subscriber's ``on_next`` (or by its downstream pipeline
      when it has no ``on_error``) is caught, passed to ``on_subscriber_error`` (default:
      logged on the ``rxconnector`` logger) and detaches *only* that subscriber; the
      others receive that same value and the following ones. The detached subscriber is
      not sent ``on_error``: its pipeline is considered broken.

    Args:
        on_subscriber_error: Where a subscriber's exception is reported.

    Returns:
        An operator function for ``Observable.pipe``.
    """
    from rxconnector.operators._share import share_

    return share_(on_subscriber_error)


def isolate(
    on_subscriber_error: Callable[[Exception], None] | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Guard each subscriber of an already-multicast source (a Subject) on its own.

    .. marble::
        :alt: isolate

        subject:  --a--b--c--
        sub 1:    --a--b--c--
        sub 2:    --a--!            on_next raises at b: reported, only sub 2 ends
        [    isolate()    ]
        sub 1:    --a--b--c--
        sub 2:    --a--

    Use it when exposing a ``Subject``/``BehaviorSubject`` (states, clock offsets): an
    exception from one subscriber's ``on_next`` is passed to ``on_subscriber_error``
    (default: logged) and disposes only that subscription, instead of escaping into the
    subject's delivery loop, where later subscribers would miss the value and the code
    that called ``subject.on_next`` would receive the exception. Unlike :func:`share`,
    this does not connect or multicast anything itself.

    Args:
        on_subscriber_error: Where a subscriber's exception is reported.

    Returns:
        An operator function for ``Observable.pipe``.
    """
    from rxconnector.operators._share import isolate_

    return isolate_(on_subscriber_error)


def conflate(
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Deliver only the newest value to a consumer that cannot keep up.

    .. marble::
        :alt: conflate

        --(a,b,c)--d--e--|      a, b, c arrive at the same tick
        [     conflate()    ]
        --c--------d--e--|      one delivery, of the newest

    A value is not delivered synchronously: it is put in a one-value slot and a delivery
    is scheduled on ``scheduler``. Values arriving before that delivery runs - a burst
    within one loop tick, or while the consumer is still busy with the previous value
    on another thread - overwrite the slot, so only the latest is delivered and nothing
    queues up. Completion or error is delivered right after a pending value (at once if
    nothing is pending).

    Args:
        scheduler: Where deliveries run; default the ``subscribe`` scheduler, then the
            running loop's (so a burst within one loop iteration collapses).

    Returns:
        An operator function for ``Observable.pipe``.
    """
    from rxconnector.operators._conflate import conflate_

    return conflate_(scheduler)
