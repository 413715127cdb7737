"""Request-weight budget for one IP, enforced before anything is sent.

Binance counts request *weight* per IP in fixed one-minute windows that reset on the
minute boundary, reports the running total in ``X-MBX-USED-WEIGHT-1M`` on every
response, answers 429 (with ``Retry-After``) when the budget is broken and bans the IP
(418, two minutes to three days) when a client keeps going (PROTOCOL.md §A2.3).
This limiter makes both unreachable in normal operation:

* every request first :meth:`~RequestWeightLimiter.acquire`\\ s its weight; if the
  minute's budget cannot cover it, the request waits, on the scheduler, until the
  window rolls. Waiting requests are released first-in, first-out within their
  priority, so a heavy request is never starved by a stream of light ones;
* three priorities: :attr:`Priority.USER` (trading and the user's own calls),
  :attr:`Priority.RECOVERY` (order-book snapshots a book needs to be shown again) and
  :attr:`Priority.BACKFILL` (trade backfills). Waiting requests of a higher priority
  always go first; recovery may spend the window only up to ``limit - reserve``
  (:data:`USER_RESERVE_SHARE` of the limit by default), backfills only up to
  :data:`BACKFILL_SHARE` of it: however many feeds heal at once, a user call always
  finds budget, and books come back before tapes (a waiting backfill loses nothing: it
  fetches more per page when it finally goes);
* the server's header is the truth: :meth:`~RequestWeightLimiter.observe_headers` raises
  the local count to it (other processes on the same IP spend the same budget);
* after a 429 or 418, :meth:`~RequestWeightLimiter.hold_for` forbids sending anything
  until ``Retry-After`` has passed.

Decision on holds: while a hold is in force, a user :meth:`acquire` fails *at once*
with ``RateLimitError(retry_after=<remaining s>, banned=...)`` and every queued user
request fails the same way, instead of queueing silently for what may be three days.
The error reaches the circuit breaker (which shows a ban as open for exactly
``retry_after``) and the caller, who knows exactly how long to wait. Recovery requests
instead wait for the hold to end (a feed has nobody to hand the error to; it would
only retry). Nothing is ever sent during a hold.

The limit: the venue's documented one by default, replaced by what ``exchangeInfo``
says (:meth:`set_limit`) and never above ``cap`` (the user's ``Config`` value).

All time is read from and scheduled on the Rx scheduler, so a ``TestScheduler`` drives
the limiter in virtual time.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Mapping

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector._scheduling import loop_scheduler, now_ms
from rxconnector.errors import ConfigError, RateLimitError
from rxconnector.log import get_logger

__all__ = [
    "LimiterState",
    "Priority",
    "RequestWeightLimiter",
    "USER_RESERVE_SHARE",
    "BACKFILL_SHARE",
    "WINDOW_MS",
    "documented_limiter",
]

#: Length of the weight window; Binance resets ``REQUEST_WEIGHT`` every minute on the
#: minute boundary (PROTOCOL.md §A2.3, "1 MINUTE resets each minute").
WINDOW_MS = 60_000


def documented_limiter(
    documented: int,
    cap: int | None,
    *,
    exchange: str = "",
    scheduler: abc.SchedulerBase | None = None,
) -> RequestWeightLimiter:
    """A limiter at the venue's ``documented`` weight per minute (the venue registry's
    figure, the default until ``exchangeInfo`` says otherwise), never above ``cap``
    (the Config's ``max_weight_per_minute``)."""
    return RequestWeightLimiter(documented, cap=cap, scheduler=scheduler, exchange=exchange)


#: Share of each window that recovery traffic may never spend: kept for user calls.
USER_RESERVE_SHARE = 0.1
#: Share of each window trade backfills may spend (snapshots and user calls may go on:
#: with 6,000 per minute, 3,600 = 144 pages of 1,000 trades at weight 25).
BACKFILL_SHARE = 0.6

_USED_WEIGHT = "x-mbx-used-weight-"
_ORDER_COUNT = "x-mbx-order-count-"


class Priority(enum.IntEnum):
    """Who a request is for; lower goes first."""

    #: Trading and the user's own calls: served first, fail fast during a hold.
    USER = 0
    #: A book healing itself (snapshots): fills the rest, waits out holds.
    RECOVERY = 1
    #: A trade feed healing itself (backfills): after snapshots, a smaller share.
    BACKFILL = 2


@attrs.frozen
class LimiterState:
    """A snapshot of the limiter, for health displays and tests.

    ``used_weights``/``order_counts`` are the server's latest headers keyed by interval
    (``"1M"``, ``"10S"``, ``"1D"``); ``held_for`` is seconds of hold left (0 if none).
    """

    limit: int
    used: int
    pending: int
    held_for: float
    banned: bool
    used_weights: Mapping[str, int]
    order_counts: Mapping[str, int]


@attrs.define(eq=False)
class _Ticket:
    weight: int
    observer: abc.ObserverBase[None]
    priority: Priority = Priority.USER


class RequestWeightLimiter:
    """Fixed one-minute request-weight window with prioritized FIFO waiting and 429/418
    holds.

    ``scheduler`` (or the one passed at subscribe time, or the running loop's) provides
    the clock and the timer that releases waiting requests at the minute boundary.
    ``exchange`` only labels errors and log lines. ``cap`` bounds every limit set later
    (:meth:`set_limit`); ``reserve`` is the weight per window recovery may not touch
    (default :data:`USER_RESERVE_SHARE` of the limit).
    """

    def __init__(
        self,
        max_weight_per_minute: int,
        *,
        scheduler: abc.SchedulerBase | None = None,
        exchange: str = "",
        cap: int | None = None,
        reserve: int | None = None,
    ) -> None:
        self._check_limit(max_weight_per_minute)
        if cap is not None:
            self._check_limit(cap)
        if reserve is not None and (
            isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 0
        ):
            raise ValueError(f"reserve must be an integer >= 0, got {reserve!r}")
        self._cap = cap
        self._reserve_fixed = reserve
        self._limit = min(max_weight_per_minute, cap) if cap is not None else max_weight_per_minute
        self._scheduler = scheduler
        self._seen_scheduler: abc.SchedulerBase | None = None
        self._exchange = exchange
        self._window = -1
        self._used = 0
        self._queue: collections.deque[_Ticket] = collections.deque()  # user requests
        self._recovery: collections.deque[_Ticket] = collections.deque()
        self._backfill: collections.deque[_Ticket] = collections.deque()
        self._timer: abc.DisposableBase | None = None
        self._hold_timer: abc.DisposableBase | None = None
        self._timer_window = -1
        self._hold_until_ms = -math.inf
        self._banned = False
        self._used_weights: dict[str, int] = {}
        self._order_counts: dict[str, int] = {}
        self._log = get_logger(component="rate_limiter", exchange=exchange)

    # -- public API -----------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The weight allowed per minute."""
        return self._limit

    @property
    def cap(self) -> int | None:
        """The highest limit :meth:`set_limit` may set (the user's ``Config`` value)."""
        return self._cap

    @property
    def reserve(self) -> int:
        """Weight per window kept for user calls: recovery never spends it."""
        if self._reserve_fixed is not None:
            return min(self._reserve_fixed, self._limit - 1)
        return int(self._limit * USER_RESERVE_SHARE)

    @property
    def used(self) -> int:
        """Weight spent in the current window (local count raised to the server's)."""
        self._roll(now_ms(self._clock()))
        return self._used

    @property
    def order_counts(self) -> Mapping[str, int]:
        """The account's order counts from ``X-MBX-ORDER-COUNT-*`` (``{"10S": 3, "1D": 9}``)."""
        return dict(self._order_counts)

    def state(self) -> LimiterState:
        """A consistent snapshot of the budget, the queue and any hold."""
        now = now_ms(self._clock())
        self._roll(now)
        held = max(0.0, (self._hold_until_ms - now) / 1000.0)
        return LimiterState(
            limit=self._limit,
            used=self._used,
            pending=len(self._queue) + len(self._recovery) + len(self._backfill),
            held_for=held,
            banned=self._banned and held > 0,
            used_weights=dict(self._used_weights),
            order_counts=dict(self._order_counts),
        )

    def acquire(self, weight: int, priority: Priority = Priority.USER) -> Observable[None]:
        """Emit ``None`` and complete once ``weight`` may be spent; cold and lazy.

        Nothing is reserved until subscription; disposing a waiting subscription gives
        its place up. With a limit of 10 per minute and 6 already used at ``t``, a
        weight-5 request waits for the boundary ``B``::

            acquire(5):            t ---------- B(None,|)
            hold active (user):    t(#RateLimitError)
            hold until H (recovery): t ------ H(None,|)

        ``priority=Priority.RECOVERY`` waits behind every user request, spends at most
        ``limit - reserve`` per window and waits out holds instead of failing;
        ``Priority.BACKFILL`` likewise, behind recovery too, up to the budget of
        :meth:`budget`.
        A weight above the whole limit can never be sent and errors with
        :class:`~rxconnector.errors.ConfigError`.
        """
        priority = Priority(priority)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(f"weight must be an integer >= 0, got {weight!r}")

        def subscribe(
            observer: abc.ObserverBase[None], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            scheduler = self._clock(scheduler_)
            now = now_ms(scheduler)
            refusal = self._refusal(now)
            if refusal is not None and priority is Priority.USER:
                observer.on_error(refusal)
                return Disposable()
            if weight > self._limit:
                observer.on_error(
                    ConfigError(
                        "rate_limit.max_weight_per_minute",
                        f"is below the weight of this request ({weight})",
                        self._limit,
                    )
                )
                return Disposable()
            self._roll(now)
            if refusal is None and self._fits(weight, priority):
                self._used += weight
                observer.on_next(None)
                observer.on_completed()
                return Disposable()
            ticket = _Ticket(weight, observer, priority)
            queue = self._queue_of(priority)
            queue.append(ticket)
            if refusal is not None:
                self._arm_hold(scheduler, now)
            elif len(queue) == 1:
                self._log.info(
                    "rate_limit.waiting",
                    used=self._used,
                    limit=self._limit,
                    weight=weight,
                    priority=priority.name.lower(),
                    wait_ms=round(self._next_boundary(now) - now),
                )
            if refusal is None:
                self._arm(scheduler, now)

            def cancel() -> None:
                try:
                    queue.remove(ticket)
                except ValueError:
                    return  # already released or failed
                if not self._waiting():
                    self._disarm()
                else:
                    self._drain(now_ms(scheduler))

            return Disposable(cancel)

        return reactivex.create(subscribe)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's headers: ``X-MBX-USED-WEIGHT-*`` and
        ``X-MBX-ORDER-COUNT-*`` (any case). The ``1M`` weight raises the local count
        when the server has seen more than we sent (shared IP); it never lowers it, so
        requests still in flight stay counted."""
        for name, value in headers.items():
            key = name.lower()
            if key.startswith(_USED_WEIGHT):
                target = self._used_weights
                interval = key[len(_USED_WEIGHT) :].upper()
            elif key.startswith(_ORDER_COUNT):
                target = self._order_counts
                interval = key[len(_ORDER_COUNT) :].upper()
            else:
                continue
            try:
                count = int(value)
            except ValueError:
                continue
            target[interval] = count
            if target is self._used_weights and interval == "1M":
                self._roll(now_ms(self._clock()))
                self._used = max(self._used, count)

    def hold_for(self, seconds: float, *, banned: bool = False) -> None:
        """Forbid every request for ``seconds`` (a 429's or 418's ``Retry-After``).

        A shorter hold never shortens a longer one already in force. User requests
        waiting in the queue fail now with :class:`~rxconnector.errors.RateLimitError`;
        recovery requests wait until the hold is over.
        """
        now = now_ms(self._clock())
        until = now + max(0.0, seconds) * 1000.0
        if until > self._hold_until_ms:
            if self._hold_until_ms <= now:
                self._banned = banned
            else:
                self._banned = self._banned or banned
            self._hold_until_ms = until
        elif banned:
            self._banned = True
        self._log.warning(
            "rate_limit.hold",
            seconds=round((self._hold_until_ms - now) / 1000.0, 3),
            banned=self._banned,
            failed_waiting=len(self._queue),
        )
        refusal = self._refusal(now)
        if refusal is not None:
            self._disarm()
            while self._queue:
                self._queue.popleft().observer.on_error(refusal)
            if self._recovery or self._backfill:
                self._arm_hold(self._clock(), now)

    def set_limit(self, max_weight_per_minute: int) -> None:
        """Change the budget (from ``exchangeInfo.rateLimits``), never above ``cap``;
        waiting requests that now fit are released at once."""
        self._check_limit(max_weight_per_minute)
        limit = max_weight_per_minute
        if self._cap is not None:
            limit = min(limit, self._cap)
        if limit != self._limit:
            self._log.info("rate_limit.limit_changed", old=self._limit, new=limit)
        self._limit = limit
        if self._waiting():
            self._drain(now_ms(self._clock()))

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _check_limit(value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("rate_limit.max_weight_per_minute", "must be an integer >= 1", value)

    def _clock(self, scheduler_: abc.SchedulerBase | None = None) -> abc.SchedulerBase:
        if self._scheduler is not None:
            return self._scheduler
        if scheduler_ is not None:
            self._seen_scheduler = scheduler_
            return scheduler_
        return self._seen_scheduler or loop_scheduler()

    def budget(self, priority: Priority) -> int:
        """Weight of the window that requests of ``priority`` may take it up to."""
        if priority is Priority.USER:
            return self._limit
        recovery = self._limit - self.reserve
        if priority is Priority.RECOVERY:
            return recovery
        return min(recovery, int(self._limit * BACKFILL_SHARE))

    def _queue_of(self, priority: Priority) -> collections.deque[_Ticket]:
        if priority is Priority.USER:
            return self._queue
        return self._recovery if priority is Priority.RECOVERY else self._backfill

    def _waiting(self) -> bool:
        return bool(self._queue or self._recovery or self._backfill)

    def _fits(self, weight: int, priority: Priority) -> bool:
        """Whether ``weight`` may be spent now without jumping a waiting request."""
        for p in Priority:
            if p <= priority and self._queue_of(p):
                return False
        # A request heavier than its whole budget goes alone into an unused window.
        return self._used + weight <= max(self.budget(priority), weight)

    def _arm_hold(self, scheduler: abc.SchedulerBase, now: float) -> None:
        """Wake waiting recovery requests when the hold ends."""
        if self._hold_timer is not None:
            self._hold_timer.dispose()

        def wake(sch: abc.SchedulerBase, _state: object) -> None:
            self._hold_timer = None
            now_ = now_ms(sch)
            if now_ < self._hold_until_ms:  # extended meanwhile
                self._arm_hold(sch, now_)
                return
            self._drain(now_)
            if self._waiting():
                self._arm(sch, now_)

        self._hold_timer = scheduler.schedule_relative(
            max(0.0, (self._hold_until_ms - now) / 1000.0), wake
        )

    def _refusal(self, now: float) -> RateLimitError | None:
        if now >= self._hold_until_ms:
            return None
        remaining = (self._hold_until_ms - now) / 1000.0
        reason = "IP banned (HTTP 418)" if self._banned else "rate limit hit (HTTP 429)"
        return RateLimitError(
            f"{reason}: nothing may be sent for another {remaining:.3f}s",
            retry_after=remaining,
            banned=self._banned,
            status=418 if self._banned else 429,
            exchange=self._exchange,
        )

    @staticmethod
    def _next_boundary(now: float) -> float:
        return (math.floor(now / WINDOW_MS) + 1) * WINDOW_MS

    def _roll(self, now: float, at_least: int = -1) -> None:
        window = max(math.floor(now / WINDOW_MS), at_least)
        if window > self._window:
            self._window = window
            self._used = 0

    def _arm(self, scheduler: abc.SchedulerBase, now: float) -> None:
        if self._timer is not None:
            return
        boundary = self._next_boundary(now)
        self._timer_window = math.floor(boundary / WINDOW_MS)
        self._timer = scheduler.schedule_relative(
            (boundary - now) / 1000.0, lambda sch, _state: self._on_boundary(sch)
        )

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.dispose()
            self._timer = None

    def _on_boundary(self, scheduler: abc.SchedulerBase) -> None:
        self._timer = None
        now = now_ms(scheduler)
        # A loop timer may fire a hair before the wall clock shows the new minute.
        self._roll(now, at_least=self._timer_window)
        self._drain(now)
        if self._waiting():
            self._arm(scheduler, max(now, self._timer_window * WINDOW_MS))

    def _drain(self, now: float) -> None:
        refusal = self._refusal(now)
        while self._queue:
            if refusal is not None:
                self._queue.popleft().observer.on_error(refusal)
                continue
            head = self._queue[0]
            if self._used + head.weight > self._limit:
                return
            self._queue.popleft()
            self._used += head.weight
            head.observer.on_next(None)
            head.observer.on_completed()
        if refusal is not None:
            return  # recovery waits for the hold's end (its own timer)
        for priority in (Priority.RECOVERY, Priority.BACKFILL):
            queue = self._queue_of(priority)
            budget = self.budget(priority)
            while queue:
                head = queue[0]
                if self._used + head.weight > max(budget, head.weight):
                    return
                queue.popleft()
                self._used += head.weight
                head.observer.on_next(None)
                head.observer.on_completed()
        self._disarm()
