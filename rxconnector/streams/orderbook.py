"""Locally maintained order books that are never wrong: the venue-neutral Rx operator.

:func:`maintain_order_book` feeds a diff stream through one venue sync rule (a pure
state machine from ``exchanges/``, chosen by ``venues.py``: see
:mod:`rxconnector.exchanges.book_sync`), fetches REST snapshots when the rule asks
(:mod:`~rxconnector.streams.book_snapshots`, through an optional shared
:class:`~rxconnector.streams.snapshot_gate.SnapshotGate`), re-asks for WebSocket
snapshots that do not come (:mod:`~rxconnector.streams.book_resubscribe`), reports every
resync as :class:`~rxconnector.errors.FeedGapError`, and emits an immutable
:class:`~rxconnector.models.OrderBook` only while the book is consistent.

Behaviour:

* Emits an ``OrderBook`` (top ``depth`` bids high→low and asks low→high, the update
  id, the exchange event time and local receive time of the last applied event) after
  every event that changed the book, **only while the book is consistent**: never
  while buffering for a snapshot, never during a resync, never crossed, never reaching
  past what the snapshot covered.
* Each resync (gap, crossed book, coverage exhausted, :class:`StreamRestart`,
  malformed event) is reported as ``FeedGapError(topic, "order book resync: ...")``
  through ``report``; the book then resyncs by itself (REST rules fetch a new snapshot;
  WebSocket-snapshot rules wait for the next snapshot and call ``request_resubscribe``
  if given, to make one come - except after a ``StreamRestart``: the stream was just
  subscribed again and its snapshot follows).
* WebSocket-snapshot rules with ``request_resubscribe``: a book that waits for a
  snapshot (since subscribing, or since a resync) and gets none within
  ``resubscribe_retry(n)`` seconds asks again, ``n`` counting the requests since the
  book was last consistent - so a lost snapshot or an unanswered request cannot leave
  the feed silent for good.
* REST rules fetch the snapshot once the first event is buffered (PROTOCOL.md §A1.5
  step 3 comes after step 2). A failed or unusable snapshot is reported (failures only)
  and fetched again after ``retry_delay(attempt)`` seconds on the scheduler (at least
  an error's ``retry_after``), forever: the feed never ends because of it. With
  ``gate``, requests go through that shared gate.
* The operator never errors because of a gap, a bad snapshot or a REST failure; the
  diff stream's error or completion is forwarded (after cancelling any pending
  snapshot request and timer); disposal cancels everything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable

from rxconnector.errors import FeedGapError
from rxconnector.exchanges.book_sync import (
    APPLIED,
    IGNORED,
    BookSync,
    BookSyncRule,
    Outcome,
    Refetch,
    Resync,
)
from rxconnector.exchanges.depth_events import DiffEvent
from rxconnector.log import get_logger
from rxconnector.models import OrderBook
from rxconnector.streams.book_resubscribe import ResubscribeWatchdog, resubscribe_retry_delay
from rxconnector.streams.book_snapshots import SnapshotFetcher, snapshot_retry_delay
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.snapshot_gate import SnapshotGate

__all__ = ["maintain_order_book"]

_log = get_logger(component="orderbook")


def maintain_order_book(
    diffs: Observable[DiffEvent | StreamRestart],
    fetch_snapshot: Callable[[], Observable[OrderBook]] | None,
    rule: BookSyncRule,
    depth: int,
    *,
    topic: str | None = None,
    snapshot_limit: int | None = None,
    window: int | None = None,
    gate: SnapshotGate | None = None,
    retry_delay: Callable[[int], float] = snapshot_retry_delay,
    request_resubscribe: Callable[[], None] | None = None,
    resubscribe_retry: Callable[[int], float] = resubscribe_retry_delay,
    max_buffer: int = 10_000,
    scheduler: abc.SchedulerBase | None = None,
    report: Callable[[Exception], None] | None = None,
) -> Observable[OrderBook]:
    """A locally maintained book: consistent :class:`OrderBook` views of the top ``depth``
    (behaviour: see the module docstring).

    .. marble::
        :alt: maintain_order_book (a U;u rule with a REST snapshot)

        diffs:     -a--b--c--d-----e---|      events (U;u): a=1;2 b=3;4 c=5;6 d=9;9 e=10;10
        snapshot:     (S)                     fetched when a arrives, lastUpdateId 3
        [ maintain_order_book(diffs, fetch, rule, depth=20) ]
                   ----B--C--.---(refetch)-E-|
                   B = snapshot + b, C = + c; d has U 9 > 6 + 1: gap, resync (reported),
                   d is buffered, a new snapshot is fetched and the book resumes at E

    Args:
        diffs: Parsed diff events of one symbol (:class:`~rxconnector.models.DepthUpdate`,
            or on Binance's wire path a packed one), with ``StreamRestart`` markers.
        fetch_snapshot: A cold REST snapshot request of ``snapshot_limit`` levels.
        rule: The venue procedure (the venue registry's ``Venue.book_rule``).
        depth: Levels per side in each emitted book.
        topic: Names the feed in reports (default: ``"<symbol> order book"``).
        snapshot_limit: Levels per snapshot side (default: ``rule.snapshot_limit(depth)``).
        window: Depth of a windowed stream: levels beyond it are trimmed.
        gate: Shared pacing of snapshot requests.
        retry_delay: Seconds to the next snapshot after ``n`` failed or unusable ones.
        request_resubscribe: Makes a WebSocket-snapshot stream send a new snapshot.
        resubscribe_retry: Seconds to wait for it before asking again, after ``n`` asks.
        max_buffer: Events kept while waiting for a snapshot before buffering restarts.
        scheduler: Times the retries (default: the subscribe-time one, then the loop's).
        report: Receives each resync and snapshot failure (default: logged).
    """
    if rule.uses_rest and fetch_snapshot is None:
        raise ValueError(f"{rule!r} needs fetch_snapshot (a REST snapshot request)")
    new_sync = functools.partial(
        rule.new_sync, depth, snapshot_limit=snapshot_limit, window=window, max_buffer=max_buffer
    )
    new_sync()  # validates now: a wrong depth is a programming error, better at call time
    rest = rule.uses_rest
    options = _Options(topic, gate, retry_delay, resubscribe_retry, scheduler, report)
    fetch, renew = (fetch_snapshot, None) if rest else (None, request_resubscribe)
    return Observable(functools.partial(_subscribe, diffs, new_sync, fetch, renew, options))


def _subscribe(
    diffs: Observable[DiffEvent | StreamRestart],
    new_sync: Callable[[], BookSync],
    fetch_snapshot: Callable[[], Observable[OrderBook]] | None,
    request_resubscribe: Callable[[], None] | None,
    options: _Options,
    observer: abc.ObserverBase[OrderBook],
    scheduler_: abc.SchedulerBase | None = None,
) -> abc.DisposableBase:
    """One subscription of :func:`maintain_order_book`: a fresh machine and its run."""
    run = _BookRun(observer, new_sync(), options, scheduler_)
    run.attach(fetch_snapshot, request_resubscribe)
    return run.start(diffs)


@attrs.frozen
class _Options:
    """What every subscription of one :func:`maintain_order_book` call shares."""

    topic: str | None
    gate: SnapshotGate | None
    retry_delay: Callable[[int], float]
    resubscribe_retry: Callable[[int], float]
    scheduler: abc.SchedulerBase | None
    report: Callable[[Exception], None] | None


class _BookRun:
    """One subscription: the diff stream through one sync machine, one method per event.

    Collaborators: a :class:`SnapshotFetcher` for REST rules, a
    :class:`ResubscribeWatchdog` for WebSocket-snapshot rules given
    ``request_resubscribe``; each gets the outcomes back through :meth:`handle`.
    """

    __slots__ = (
        "_fetcher",
        "_observer",
        "_options",
        "_scheduler_",
        "_sync",
        "_watchdog",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[OrderBook],
        sync: BookSync,
        options: _Options,
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self._observer = observer
        self._sync = sync
        self._scheduler_ = scheduler_
        self._options = options
        self._fetcher: SnapshotFetcher | None = None
        self._watchdog: ResubscribeWatchdog | None = None

    def attach(
        self,
        fetch_snapshot: Callable[[], Observable[OrderBook]] | None,
        request_resubscribe: Callable[[], None] | None,
    ) -> None:
        """Add the snapshot fetcher (REST rules) or the resubscribe watchdog."""
        options = self._options
        if fetch_snapshot is not None:
            gate = options.gate
            self._fetcher = SnapshotFetcher(
                self._sync,
                fetch_snapshot,
                deliver=self.handle,
                tell=self.tell,
                name=self.feed_name,
                gate=None if gate is None else gate.wrap,
                retry_delay=options.retry_delay,
                scheduler=options.scheduler,
                subscribe_scheduler=self._scheduler_,
            )
        if request_resubscribe is not None:
            self._watchdog = ResubscribeWatchdog(
                self._sync,
                request_resubscribe,
                retry=options.resubscribe_retry,
                name=self.feed_name,
                scheduler=options.scheduler,
                subscribe_scheduler=self._scheduler_,
            )

    def start(self, diffs: Observable[DiffEvent | StreamRestart]) -> abc.DisposableBase:
        """Subscribe to the diffs (a WebSocket-snapshot book starts waiting for one)."""
        if self._watchdog is not None:
            self._watchdog.wait()  # for the snapshot the subscription brings
        source = SingleAssignmentDisposable()
        source.disposable = diffs.subscribe(
            self.on_next, self.on_error, self.on_completed, scheduler=self._scheduler_
        )
        return CompositeDisposable(source, Disposable(self.stop))

    # ---------------------------------------------------------------- diff stream
    def on_next(self, item: DiffEvent | StreamRestart) -> None:
        """A diff event (the hot path: applied and emitted) or a restart marker."""
        sync = self._sync
        restarted = False
        try:
            if isinstance(item, StreamRestart):
                restarted = True
                outcome = sync.restart(item.reason)
            else:
                outcome = sync.on_update(item)
        except Exception as exc:  # a malformed event: drop the book, do not die
            restarted = False
            outcome = sync.fail(f"could not apply an event: {exc!r}")
        watchdog = self._watchdog
        if outcome is APPLIED and (watchdog is None or not watchdog.waiting):
            self._observer.on_next(sync.view())
        elif outcome is not IGNORED or sync.wants_snapshot:
            self.handle(outcome, restarted)

    def on_error(self, error: Exception) -> None:
        self.stop()
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self.stop()
        self._observer.on_completed()

    # ---------------------------------------------------------------- outcomes
    def handle(self, outcome: Outcome, restarted: bool = False) -> None:
        """Act on an outcome: emit, report a resync, or wait out an unusable snapshot;
        then fetch a snapshot if the rule wants one."""
        watchdog = self._watchdog
        fetcher = self._fetcher
        if outcome is APPLIED:
            if watchdog is not None and watchdog.waiting:
                watchdog.settled()
            self._observer.on_next(self._sync.view())
        elif isinstance(outcome, Resync):
            self.tell(FeedGapError(self.feed_name(), f"order book resync: {outcome.reason}"))
            if watchdog is not None:
                if not restarted:
                    watchdog.resubscribe()
                watchdog.wait()
        elif isinstance(outcome, Refetch) and fetcher is not None:
            fetcher.unusable(outcome.reason)
        if fetcher is not None:
            fetcher.maybe_fetch()

    def feed_name(self) -> str:
        """The feed's name in reports."""
        topic = self._options.topic
        if topic is not None:
            return topic
        symbol = self._sync.symbol
        return f"{symbol} order book" if symbol else "order book"

    def tell(self, error: Exception) -> None:
        """Report a problem (``report``, else the log); a raising callback is logged."""
        report = self._options.report
        if report is None:
            _log.warning("order book problem", error=str(error), kind=type(error).__name__)
            return
        try:
            report(error)
        except Exception:
            _log.exception("order book report callback raised")

    def stop(self) -> None:
        """Cancel any snapshot request, retry timer and wait (end of stream, disposal)."""
        if self._fetcher is not None:
            self._fetcher.stop()
        if self._watchdog is not None:
            self._watchdog.stop()
