"""REST snapshots for one maintained order book: one request at a time, retried with
backoff on the scheduler for as long as the book's sync rule wants one.

Part of :func:`~rxconnector.streams.orderbook.maintain_order_book`: the operator hands
every outcome back to its run, which asks :meth:`SnapshotFetcher.maybe_fetch` after
each one. A failed request or an unusable snapshot is never the end of the feed: it is
reported (failures only) and fetched again after ``retry_delay(attempt)`` seconds (at
least an error's ``retry_after``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import FeedGapError
from rxconnector.exchanges.book_sync import APPLIED, BookSync, Outcome
from rxconnector.log import get_logger
from rxconnector.models import OrderBook

__all__ = ["SnapshotFetcher", "snapshot_retry_delay"]

_log = get_logger(component="orderbook")


def snapshot_retry_delay(attempt: int) -> float:
    """Seconds before snapshot attempt ``attempt + 1``: 0.5, 1, 2, 4 ... capped at 30."""
    return float(min(0.5 * 2.0 ** (attempt - 1), 30.0))


class SnapshotFetcher:
    """Fetches REST snapshots into one book's :class:`BookSync` while it wants one.

    State: ``fetching`` (a request runs), ``cooling`` (a retry delay runs),
    ``attempts`` (failed or unusable snapshots since the last one that was applied),
    ``stopped`` (the feed ended: nothing starts any more). Each loaded snapshot's
    outcome goes to ``deliver``; each failure to ``tell``. ``gate`` wraps each request
    (a shared ``SnapshotGate.wrap`` spreads the requests of many books).
    """

    __slots__ = (
        "_deliver",
        "_fetch",
        "_gate",
        "_name",
        "_request",
        "_retry_delay",
        "_scheduler",
        "_subscribe_scheduler",
        "_sync",
        "_tell",
        "_timer",
        "attempts",
        "cooling",
        "fetching",
        "stopped",
    )

    def __init__(
        self,
        sync: BookSync,
        fetch: Callable[[], Observable[OrderBook]],
        *,
        deliver: Callable[[Outcome], None],
        tell: Callable[[Exception], None],
        name: Callable[[], str],
        gate: Callable[[Observable[OrderBook]], Observable[OrderBook]] | None,
        retry_delay: Callable[[int], float],
        scheduler: abc.SchedulerBase | None,
        subscribe_scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._sync = sync
        self._fetch = fetch
        self._deliver = deliver
        self._tell = tell
        self._name = name
        self._gate = gate
        self._retry_delay = retry_delay
        self._scheduler = scheduler
        self._subscribe_scheduler = subscribe_scheduler
        self._request = SerialDisposable()
        self._timer = SerialDisposable()
        self.fetching = False
        self.cooling = False
        self.stopped = False
        self.attempts = 0

    def maybe_fetch(self) -> None:
        """Start a request if the book wants a snapshot and none runs or waits."""
        if (
            not self.fetching
            and not self.cooling
            and not self.stopped
            and self._sync.wants_snapshot
        ):
            self._start()

    def unusable(self, reason: str) -> None:
        """The snapshot did not fit the stream (a ``Refetch``): try another later."""
        self.attempts += 1
        _log.info("order book snapshot unusable", topic=self._name(), reason=reason)
        self._cool_down(self._retry_delay(self.attempts))

    def stop(self) -> None:
        """Cancel the running request and retry timer; start nothing any more."""
        self.stopped = True
        self._request.dispose()
        self._timer.dispose()

    # ---------------------------------------------------------------- one request
    def on_snapshot(self, reply: _SnapshotReply, snapshot: OrderBook) -> None:
        """The request's first snapshot: load it (a malformed one drops the book)."""
        self.fetching = False
        reply.subscription.dispose()
        sync = self._sync
        try:
            outcome = sync.on_snapshot(snapshot)
        except Exception as exc:  # a malformed snapshot must not end the feed
            outcome = sync.fail(f"could not load the snapshot: {exc!r}")
        if outcome is APPLIED:
            self.attempts = 0
        self._deliver(outcome)

    def on_empty(self) -> None:
        """The request completed without a snapshot."""
        self.on_failure(FeedGapError(self._name(), "order book snapshot request returned nothing"))

    def on_failure(self, error: Exception) -> None:
        """The request failed: report it, retry after the backoff (or ``retry_after``)."""
        self.fetching = False
        self.attempts += 1
        self._tell(error)
        delay = self._retry_delay(self.attempts)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > delay:
            delay = float(retry_after)
        self._cool_down(delay)

    def _start(self) -> None:
        self.fetching = True
        reply = _SnapshotReply(self)
        self._request.disposable = reply.subscription
        try:
            source = self._fetch()
            if self._gate is not None:
                source = self._gate(source)
        except Exception as exc:
            self.on_failure(exc)
            return
        reply.subscription.disposable = source.subscribe(
            reply.on_next, reply.on_error, reply.on_completed, scheduler=self._subscribe_scheduler
        )

    # ---------------------------------------------------------------- retry timer
    def _cool_down(self, delay: float) -> None:
        self.cooling = True
        clock = resolve_scheduler(self._scheduler, self._subscribe_scheduler)
        self._timer.disposable = clock.schedule_relative(max(delay, 0.0), self._cooled)

    def _cooled(self, _: abc.SchedulerBase, __: Any = None) -> None:
        self.cooling = False
        self.maybe_fetch()


class _SnapshotReply:
    """The answer to one snapshot request: only its first snapshot or failure counts,
    and nothing counts once the fetcher stopped."""

    __slots__ = ("done", "fetcher", "subscription")

    def __init__(self, fetcher: SnapshotFetcher) -> None:
        self.fetcher = fetcher
        self.done = False
        self.subscription = SingleAssignmentDisposable()

    def on_next(self, snapshot: OrderBook) -> None:
        if self.done or self.fetcher.stopped:
            return
        self.done = True
        self.fetcher.on_snapshot(self, snapshot)

    def on_error(self, error: Exception) -> None:
        if self.done or self.fetcher.stopped:
            return
        self.fetcher.on_failure(error)

    def on_completed(self) -> None:
        if self.done or self.fetcher.stopped:
            return
        self.fetcher.on_empty()
