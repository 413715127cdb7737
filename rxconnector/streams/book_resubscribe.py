"""The wait of a WebSocket-snapshot book for its snapshot, and asking again.

A book whose venue sends snapshots on the WebSocket only (no REST) can be restored
after a resync only by a new snapshot, which a resubscribe brings. Part of
:func:`~rxconnector.streams.orderbook.maintain_order_book`: a book that waits (since
subscribing, or since a resync) and gets none within ``retry(n)`` seconds asks again,
``n`` counting the requests since the book was last consistent - so a lost snapshot or
an unanswered request cannot leave the feed silent for good.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable, SerialDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.exchanges.book_sync import BookSync
from rxconnector.log import get_logger

__all__ = ["RESUBSCRIBE_RETRY_MAX", "ResubscribeWatchdog", "resubscribe_retry_delay"]

_log = get_logger(component="orderbook")

#: Longest wait (s) between two resubscribe requests of a book that gets no snapshot.
RESUBSCRIBE_RETRY_MAX = 120.0


def resubscribe_retry_delay(attempt: int) -> float:
    """Seconds a WebSocket-snapshot book waits for its snapshot before asking again,
    after ``attempt`` requests: 30, 60, 120, 120 ...

    A resubscribe normally brings the snapshot within a round trip; this is the last
    resort for one that never came (an unanswered request, a lost snapshot), long
    enough not to pile requests onto a slow connection (the hub's answer timeout is
    10 s) and harmless when repeated (the hub coalesces, and does nothing while the
    socket is reconnecting).
    """
    return float(min(30.0 * 2.0 ** (attempt - 1), RESUBSCRIBE_RETRY_MAX))


class ResubscribeWatchdog:
    """Asks for a resubscribe and re-asks while one book waits for its snapshot.

    State: ``waiting`` (no consistent book since the wait began), ``renewals``
    (requests made since the book was last consistent), ``stopped``.
    """

    __slots__ = (
        "_name",
        "_request",
        "_retry",
        "_scheduler",
        "_subscribe_scheduler",
        "_sync",
        "_timer",
        "renewals",
        "stopped",
        "waiting",
    )

    def __init__(
        self,
        sync: BookSync,
        request_resubscribe: Callable[[], None],
        *,
        retry: Callable[[int], float],
        name: Callable[[], str],
        scheduler: abc.SchedulerBase | None,
        subscribe_scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._sync = sync
        self._request = request_resubscribe
        self._retry = retry
        self._name = name
        self._scheduler = scheduler
        self._subscribe_scheduler = subscribe_scheduler
        self._timer = SerialDisposable()
        self.waiting = False
        self.renewals = 0
        self.stopped = False

    def resubscribe(self) -> None:
        """Ask for a new subscription (and so a new snapshot); a raising callback is logged."""
        self.renewals += 1
        try:
            self._request()
        except Exception:
            _log.exception("request_resubscribe raised", topic=self._name())

    def wait(self) -> None:
        """(Re)start the wait for a snapshot; ask again when it runs out."""
        self.waiting = True
        clock = resolve_scheduler(self._scheduler, self._subscribe_scheduler)
        delay = max(self._retry(max(self.renewals, 1)), 0.0)
        self._timer.disposable = clock.schedule_relative(delay, self._expired)

    def settled(self) -> None:
        """The book is consistent again: stop waiting."""
        self.waiting = False
        self.renewals = 0
        self._timer.disposable = Disposable()

    def stop(self) -> None:
        """Cancel the wait for good."""
        self.stopped = True
        self._timer.dispose()

    def _expired(self, _: abc.SchedulerBase, __: Any = None) -> None:
        if self.stopped or self._sync.live:
            return
        _log.info(
            "order book got no snapshot; resubscribing again",
            topic=self._name(),
            requests=self.renewals,
        )
        self.resubscribe()
        self.wait()
