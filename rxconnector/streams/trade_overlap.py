"""Trades once each across reconnects for venues without id-range queries (Bybit).

The venue's trade ids cannot be walked (UUIDs, or numbers with no ``fromId`` query), so
after a :class:`~rxconnector.streams.messages.StreamRestart` the recent trades are
fetched and the ones not delivered yet are emitted; a *possible* gap is reported when
they do not overlap what was delivered before (see
:func:`~rxconnector.streams.continuity.gapless_trades` for venues with consecutive ids).

Buffers (per subscription): ``memory`` delivered keys (default 10,000); the live trades
that arrive during one ``recent()`` call (a few round trips, retried at most
``retries`` times); one ``recent()`` answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import FeedGapError
from rxconnector.models import Trade
from rxconnector.streams.continuity import backfill_retry_delay, report_or_log
from rxconnector.streams.messages import StreamRestart

__all__ = ["gapless_trades_by_overlap"]


def _default_key(trade: Trade) -> Hashable:
    return trade.trade_id


def _trade_time(trade: Trade) -> int:
    return trade.time


@attrs.frozen
class _OverlapSettings:
    """The arguments of one :func:`gapless_trades_by_overlap` call."""

    recent: Callable[[], Observable[list[Trade]]]
    topic: str
    key: Callable[[Trade], Hashable]
    memory: int
    retries: int
    retry_delay: Callable[[int], float]
    tell: Callable[[Exception], None]
    scheduler: abc.SchedulerBase | None


class _OverlapRun:
    """One subscription of :func:`gapless_trades_by_overlap`."""

    def __init__(
        self,
        settings: _OverlapSettings,
        observer: abc.ObserverBase[Trade],
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self.settings = settings
        self.observer = observer
        self.scheduler_ = scheduler_
        self.seen: set[Hashable] = set()
        self.remembered: deque[Hashable] = deque()  # at most ``memory`` keys
        self.last_time: int | None = None
        self.recovering = False
        self.held: list[Trade] = []  # live trades during one ``recent()`` call
        self.failures = 0
        self.stopped = False
        self.request = SerialDisposable()
        self.timer = SerialDisposable()

    # -- events of the live stream ---------------------------------------------------

    def on_next(self, item: Trade | StreamRestart) -> None:
        if isinstance(item, StreamRestart):
            if self.last_time is None:
                return  # nothing delivered yet: nothing to continue from
            self.recovering = True
            self.failures = 0
            self.timer.disposable = SingleAssignmentDisposable()
            self.fetch()  # (again, if already recovering: the older answer may miss data)
            return
        if self.recovering:
            self.held.append(item)
            return
        k = self.settings.key(item)
        if k not in self.seen:
            self.deliver(item, k)

    def on_error(self, error: Exception) -> None:
        self.stop()
        self.observer.on_error(error)

    def on_completed(self) -> None:
        self.stop()
        if self.recovering:
            self.settings.tell(
                FeedGapError(
                    self.settings.topic, "possible trade gap: the live stream ended during recovery"
                )
            )
            self.finish([])
        self.observer.on_completed()

    def stop(self) -> None:
        self.stopped = True
        self.request.dispose()
        self.timer.dispose()

    # -- delivery --------------------------------------------------------------------

    def deliver(self, trade: Trade, k: Hashable) -> None:
        self.seen.add(k)
        self.remembered.append(k)
        if len(self.remembered) > self.settings.memory:
            self.seen.discard(self.remembered.popleft())
        if self.last_time is None or trade.time > self.last_time:
            self.last_time = trade.time
        self.observer.on_next(trade)

    def finish(self, backfilled: list[Trade]) -> None:
        """Emit the recovered trades merged in time order with the held live ones."""
        key = self.settings.key
        self.recovering = False
        pending, self.held = self.held, []
        live_keys = {key(t) for t in pending}  # prefer the live copy of a trade
        backfilled = [t for t in backfilled if key(t) not in live_keys]
        merged = sorted(
            [(t.time, 0, n, t) for n, t in enumerate(backfilled)]
            + [(t.time, 1, n, t) for n, t in enumerate(pending)],
            key=lambda row: row[:3],
        )
        for _, _, _, trade in merged:
            k = key(trade)
            if k not in self.seen:
                self.deliver(trade, k)

    # -- REST ------------------------------------------------------------------------

    def fetch(self) -> None:
        _RecentFetch(self).start()

    def answered(self, trades: list[Trade]) -> None:
        """The recent trades arrived: emit the ones not yet delivered."""
        key = self.settings.key
        self.failures = 0
        if len(trades) > 1 and trades[0].time > trades[-1].time:
            trades = trades[::-1]  # newest-first answer: put it oldest-first
        trades = sorted(trades, key=_trade_time)
        overlap = any(key(t) in self.seen for t in trades)
        if trades and not overlap:
            self.settings.tell(
                FeedGapError(
                    self.settings.topic,
                    "possible trade gap after a stream restart: the recent trades "
                    f"do not reach back to the last delivered one (time {self.last_time})",
                )
            )
        floor = self.last_time if self.last_time is not None else 0
        missing = [
            attrs.evolve(t, backfilled=True)
            for t in trades
            if t.time >= floor and key(t) not in self.seen
        ]
        self.finish(missing)

    def failed(self, error: Exception) -> None:
        settings = self.settings
        self.failures += 1
        if self.failures > settings.retries:
            settings.tell(
                FeedGapError(
                    settings.topic,
                    "possible trade gap after a stream restart: recent trades "
                    f"unavailable ({error!r}, after {settings.retries} retries)",
                )
            )
            self.failures = 0
            self.finish([])
            return
        clock = resolve_scheduler(settings.scheduler, self.scheduler_)
        self.timer.disposable = clock.schedule_relative(
            settings.retry_delay(self.failures), self._retry
        )

    def _retry(self, _: abc.SchedulerBase, __: Any = None) -> None:
        if not self.stopped:
            self.fetch()


class _RecentFetch:
    """One ``recent()`` request of an :class:`_OverlapRun` (its own answer and flag:
    a newer request replaces it without reopening it)."""

    def __init__(self, run: _OverlapRun) -> None:
        self.run = run
        self.trades: list[Trade] = []
        self.finished = False

    def start(self) -> None:
        run = self.run
        current = SingleAssignmentDisposable()
        run.request.disposable = current
        try:
            page_request = run.settings.recent()
        except Exception as exc:
            self.finished = True
            run.failed(exc)
            return
        current.disposable = page_request.subscribe(
            self.on_page, self.on_error, self.on_completed, scheduler=run.scheduler_
        )

    def on_page(self, page: Iterable[Trade]) -> None:
        if not self.finished:
            self.trades.extend(page)

    def on_error(self, error: Exception) -> None:
        if self.finished or self.run.stopped:
            return
        self.finished = True
        self.run.failed(error)

    def on_completed(self) -> None:
        if self.finished or self.run.stopped:
            return
        self.finished = True
        self.run.answered(self.trades)


def gapless_trades_by_overlap(
    live: Observable[Trade | StreamRestart],
    recent: Callable[[], Observable[list[Trade]]],
    *,
    topic: str,
    key: Callable[[Trade], Hashable] = _default_key,
    memory: int = 10_000,
    retries: int = 3,
    retry_delay: Callable[[int], float] = backfill_retry_delay,
    report: Callable[[Exception], None] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Trade]:
    """Trades once each across reconnects, for venues without id-range queries (Bybit).

    .. marble::
        :alt: gapless_trades_by_overlap

        live:    -a-b-R----e-f--|        R = StreamRestart; c, d traded meanwhile
        recent:       (b,c,d,e)          the venue's recent trades, fetched after R
        [ gapless_trades_by_overlap(live, recent, topic="publicTrade.BTCUSDT") ]
                 -a-b------(c',d',e)-f-|   c', d' have backfilled=True; b, e not repeated

    * Live trades pass through; a trade whose ``key`` (default ``trade_id``) was already
      delivered is dropped. The last ``memory`` keys are remembered.
    * After a ``StreamRestart`` (once something was delivered) live trades are held and
      ``recent()`` is fetched. Its trades not yet delivered, and not older than the last
      delivered trade, are emitted marked ``backfilled=True``, merged in time order with
      the held live trades.
    * If none of the recent trades was delivered before, the recent window may not reach
      back far enough: a *possible* gap is reported as ``FeedGapError(topic, ...)``
      (without an id range; these venues have none). So is a ``recent()`` that still
      fails after ``retries`` retries; the held trades are then released.

    Args:
        live: Parsed trades with ``StreamRestart`` markers.
        recent: Makes a cold request for the venue's most recent trades (any order).
        topic: Names the feed in reports.
        key: Identity of a trade, equal for the WebSocket and the REST version.
        memory: How many delivered keys are remembered for de-duplication.
        retries: Extra attempts of ``recent()`` after a failure.
        retry_delay: Delay before retry ``n`` (1-based).
        report: Receives each :class:`FeedGapError` (default: logged).
        scheduler: Times the retries; default: subscribe-time scheduler, then the loop's.

    Returns:
        An Observable of trades.
    """
    if memory < 1:
        raise ValueError(f"memory must be >= 1, got {memory}")
    settings = _OverlapSettings(
        recent, topic, key, memory, retries, retry_delay, report_or_log(report), scheduler
    )

    def subscribe(
        observer: abc.ObserverBase[Trade], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _OverlapRun(settings, observer, scheduler_)
        source = live.subscribe(run.on_next, run.on_error, run.on_completed, scheduler=scheduler_)
        return CompositeDisposable(source, run.request, run.timer)

    return Observable(subscribe)
