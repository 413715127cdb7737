"""Trades with no gaps: every trade once, in order, across reconnects (or a precise report).

A reconnect loses what traded while the socket was down (the hub marks the spot with a
:class:`~rxconnector.streams.messages.StreamRestart`). For venues with consecutive ids
:func:`gapless_trades` fills every id gap over REST for as long as the exchange may have
the data and reports only what it cannot get, with the exact ids. Venues without usable
ids: :mod:`rxconnector.streams.trade_overlap`.

Bounds (per subscription): held live trades ≤ ``max_held`` (default
:data:`DEFAULT_MAX_HELD`) plus one backfill page, packed
(:class:`~rxconnector.streams.held_trades.HeldTrades`, ≈ 150 bytes each); ids being
confirmed: only held ones. State lives in small classes, one method per event:
:class:`_GaplessRun`, with :class:`~rxconnector.streams.gapless_requests.PageFetch` and
:class:`~rxconnector.streams.gapless_requests.IdLookup` for its requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import FeedGapError, ParseError
from rxconnector.log import get_logger
from rxconnector.models import Trade
from rxconnector.streams.first_trade import FillSampler, FirstTradeCheck
from rxconnector.streams.gapless_requests import CONFIRM_ATTEMPTS, IdLookup, PageFetch
from rxconnector.streams.held_trades import HeldTrades
from rxconnector.streams.messages import StreamRestart

__all__ = [
    "DEFAULT_MAX_BACKFILL",
    "DEFAULT_MAX_HELD",
    "BackfillSince",
    "backfill_retry_delay",
    "gapless_stage",
    "gapless_trades",
    "report_or_log",
]

_log = get_logger(component="continuity")

#: ``(from_id, since_ms, share)`` -> one page from ``from_id`` (see ``gapless_trades``).
BackfillSince = Callable[[int, int, "float | None"], Observable[list[Trade]]]

#: Largest id gap fetched over REST by default (100 pages of 1000); any outage a reconnect
#: can heal is far below it: a bigger jump is reported, not fetched.
DEFAULT_MAX_BACKFILL = 100_000

#: Live trades held (per feed) while a backfill runs: ≈ 3 MB at ≈ 150 bytes each. Past
#: it the missing range is given up (reported with its exact ids), the held released.
DEFAULT_MAX_HELD = 20_000


def backfill_retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt`` of a failed backfill page: 0.5, 1, 2 ... max 10."""
    return float(min(0.5 * 2.0 ** (attempt - 1), 10.0))


def report_or_log(report: Callable[[Exception], None] | None) -> Callable[[Exception], None]:
    """``report`` guarded (a raising callback is logged), or a logger when None."""

    def tell(error: Exception) -> None:
        if report is None:
            _log.warning("trade feed problem", error=str(error), kind=type(error).__name__)
            return
        try:
            report(error)
        except Exception:
            _log.exception("trade report callback raised")

    return tell


@attrs.frozen
class _GaplessSettings:
    """The arguments of one :func:`gapless_trades` call (shared by its subscriptions)."""

    backfill: Callable[[int], Observable[list[Trade]]]
    topic: str
    max_backfill: int
    retries: int | None
    retry_delay: Callable[[int], float]
    tell: Callable[[Exception], None]
    scheduler: abc.SchedulerBase | None
    max_held: int
    page_size: int
    backfill_since: BackfillSince | None = None


class _GaplessRun(abc.DisposableBase):
    """One subscription of :func:`gapless_trades` (held trades, request, retry timer)."""

    def __init__(
        self,
        settings: _GaplessSettings,
        observer: abc.ObserverBase[Trade],
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self.settings = settings
        self.observer = observer
        self.scheduler_ = scheduler_
        self.last: int | None = None  # the last delivered id
        self.last_time = 0  # the time of the last delivered trade (ms)
        self.held = HeldTrades()
        self.backfilling = False
        self.failures = 0
        self.stopped = False
        self.confirmed: set[int] = set()  # far ids the venue (or the stream) vouched for
        self.misses: dict[int, int] = {}  # far ids looked up and not found, how often
        self.request = SerialDisposable()
        self.timer = SerialDisposable()
        self.first_id: int | None = None  # the first delivered id, until it is vouched for
        self.first_check: FirstTradeCheck | None = None
        self.fills = FillSampler()

    # -- events of the live stream ---------------------------------------------------

    def on_next(self, item: Trade | StreamRestart) -> None:
        last = self.last
        if type(item) is Trade and last is not None and not self.backfilling:
            tid = item.trade_id
            if tid == last + 1:  # the hot path, first: the next trade in order
                self.last = tid
                self.last_time = item.time
                if tid & 7 < 2:
                    self.fills.sample(item)
                self.observer.on_next(item)
                return
        self._on_other(item)

    def frame_feeder(
        self, parse_frame: Callable[[bytes, float], Trade], fallback: Callable[[Any], None]
    ) -> Callable[[Any], None]:
        """The ``on_next`` for hub messages (``(received_at, frame)`` or a marker): a
        message goes to :meth:`message_feeder`'s entry, anything else (a marker) to
        ``fallback``."""
        on_message = self.message_feeder(parse_frame, fallback)

        def on_next(message: Any) -> None:
            if type(message) is tuple:
                on_message(message[0], message[1])
            else:
                fallback(message)

        return on_next

    def message_feeder(
        self, parse_frame: Callable[[bytes, float], Trade], fallback: Callable[[Any], None]
    ) -> Callable[[float, Any], None]:
        """``on_message(received_at, payload)`` for a hub message taken as two
        arguments (the hub's fast hand-off, ``StageObserver.on_message``): it parses a
        raw frame with ``parse_frame`` and handles the next trade in order right there,
        as :meth:`on_next` does (one Python call less per trade, on the connector's
        trade feeds). Anything else - a decoded payload, a frame ``parse_frame``
        refuses - goes to ``fallback`` as the ``(received_at, payload)`` message, the
        parse step that feeds :meth:`on_next` (which parses a refused frame again and
        reports it its way)."""
        emit = self.observer.on_next
        sample = self.fills.sample

        def on_message(received_at: float, payload: Any) -> None:
            if type(payload) is not bytes:
                fallback((received_at, payload))
                return
            try:
                trade = parse_frame(payload, received_at)
            except Exception:
                fallback((received_at, payload))
                return
            last = self.last
            if type(trade) is Trade and last is not None and not self.backfilling:
                tid = trade.trade_id
                if tid == last + 1:  # as on_next's hot path
                    self.last = tid
                    self.last_time = trade.time
                    if tid & 7 < 2:
                        sample(trade)
                    emit(trade)
                    return
            self._on_other(trade)

        return on_message

    def _on_other(self, item: Trade | StreamRestart) -> None:
        """Everything but the next trade in order (same rules, the full check)."""
        if isinstance(item, StreamRestart):
            if self.last is not None and not self.backfilling:
                self.backfilling = True  # fetch what the outage missed, now
                self.failures = 0
                self.fetch()
            return
        tid = item.trade_id
        last = self.last
        if self.backfilling:
            if last is None or tid > last:
                self.hold(item)
            return
        if last is None or tid == last + 1:
            if last is None:
                self.first_id = tid
            self.last = tid
            self.last_time = item.time
            if tid & 7 < 2:
                self.fills.sample(item)
            self.observer.on_next(item)
        elif tid > last:
            self.hold(item)
            self.release()
        elif tid < last == self.first_id:
            self.check_first(item)  # below a baseline nothing followed on from yet

    def on_error(self, error: Exception) -> None:
        self.stop()
        self.observer.on_error(error)

    def on_completed(self) -> None:
        self.stop()
        held = self.held
        while held and self.last is not None:
            tid = held.first()
            trade = held.pop_first()
            if tid <= self.last:
                continue
            if tid > self.last + 1:
                self.give_up(self.last + 1, tid - 1, "the live stream ended before the backfill")
            self.last = tid
            self.last_time = trade.time
            self.observer.on_next(trade)
        self.observer.on_completed()

    def dispose(self) -> None:
        """The subscription ended: stop (requests, timers, the first-trade check)."""
        self.stop()

    def stop(self) -> None:
        self.stopped = True
        self.request.dispose()
        self.timer.dispose()
        if self.first_check is not None:
            self.first_check.dispose()

    # -- a hostile first trade -------------------------------------------------------

    def check_first(self, trade: Trade) -> None:
        """Hold ``trade``; ask the venue about the baseline (:mod:`.first_trade`)."""
        if self.first_check is None:
            assert self.first_id is not None
            self.first_check = FirstTradeCheck(
                self.first_id,
                self.settings.backfill,
                attempts=CONFIRM_ATTEMPTS,
                max_below=self.settings.max_held,
                retry_delay=self.settings.retry_delay,
                clock=self.clock(),
                scheduler_=self.scheduler_,
                verdict=self.first_verdict,
            )
        self.first_check.add(trade)

    def first_verdict(self, genuine: bool, below: list[Trade]) -> None:
        head, self.first_id, self.first_check = self.first_id, None, None  # checked
        if genuine or self.stopped:
            return  # the trades below it were duplicates after all
        self.settings.tell(
            ParseError(
                f"{self.settings.topic}: the first trade, id {head}, is beyond what the venue "
                f"has (a lookup from that id found nothing, {CONFIRM_ATTEMPTS} times, while "
                f"{len(below)} live trades came below it): no longer the baseline",
                head,
            )
        )
        if self.last == head:
            self.last = None
            for trade in sorted(below, key=_trade_id):
                self.on_next(trade)

    # -- the held trades -------------------------------------------------------------

    def hold(self, trade: Trade) -> None:
        self.held.add(trade)
        if self.backfilling and len(self.held) > self.settings.max_held and self.last is not None:
            self.overflow()

    def overflow(self) -> None:
        """Too many live trades held: give the unfetched range up, release them."""
        assert self.last is not None
        self.request.disposable = SingleAssignmentDisposable()
        self.timer.disposable = SingleAssignmentDisposable()
        first = self.held.first()
        if first > self.last + 1:
            self.give_up(
                self.last + 1, first - 1, f"more than {self.settings.max_held} live trades held"
            )
        self.release()

    def give_up(self, first_missing: int, last_missing: int, why: str) -> None:
        self.settings.tell(
            FeedGapError(
                self.settings.topic,
                f"trades {first_missing}..{last_missing} "
                f"({last_missing - first_missing + 1} ids) lost: {why}",
                first_missing=first_missing,
                last_missing=last_missing,
            )
        )
        self.last = last_missing

    def emit_following(self, upto: int | None = None) -> None:
        """Emit held trades while they follow on from the last delivered id.

        With ``upto`` (the newest id of a backfill page): a hole at or below it is
        absent from the venue's history (a ``fromId`` page lists consecutive trades):
        said, skipped."""
        held = self.held
        while held:
            assert self.last is not None
            tid = held.first()
            if tid <= self.last:
                held.pop_first()
            elif tid == self.last + 1:
                self.last = tid
                self.confirmed.discard(tid)
                trade = held.pop_first()
                self.last_time = trade.time
                self.observer.on_next(trade)
            elif upto is not None and tid <= upto:
                self.give_up(self.last + 1, tid - 1, "absent from the venue's trade history")
            else:
                break

    def release(self) -> None:
        """Emit held trades while they follow on; start a backfill at the next hole."""
        settings = self.settings
        while True:
            self.emit_following()
            if not self.held:
                break
            assert self.last is not None
            tid = self.held.first()
            first_missing, last_missing = self.last + 1, tid - 1
            if last_missing - first_missing + 1 > settings.max_backfill:
                if tid not in self.confirmed:  # never let an unconfirmed id jump the baseline
                    self.backfilling = True
                    self.confirm(tid, self.release)
                    return
                self.give_up(
                    first_missing, last_missing, f"gap larger than {settings.max_backfill}"
                )
                continue
            self.backfilling = True
            self.failures = 0
            self.fetch()
            return
        self.backfilling = False

    # -- REST ------------------------------------------------------------------------

    def clock(self) -> abc.SchedulerBase:
        return resolve_scheduler(self.settings.scheduler, self.scheduler_)

    def fetch(self) -> None:
        """Request the page from the id after the last delivered one."""
        assert self.last is not None
        PageFetch(self, self.last + 1).start()

    def confirm(self, head: int, proceed: Callable[[], None]) -> None:
        """Ask the venue whether ``head`` (the held trade beyond a gap) exists."""
        IdLookup(self, head, proceed).start()

    def reject(self, head: int) -> None:
        """``head`` is not a trade the venue has: this frame's ParseError; the
        baseline stays where the real trades are."""
        assert self.held and self.held.first() == head
        trade = self.held.pop_first()
        self.settings.tell(
            ParseError(
                f"{self.settings.topic}: trade id {head} is beyond what the venue has (a "
                f"lookup from that id found nothing, {CONFIRM_ATTEMPTS} times, and no live "
                f"trade followed on from it; last delivered id {self.last}): dropped, "
                "not taken as the new baseline",
                trade,
            )
        )
        self.release()

    def failed(self, start: int, error: Exception | None) -> None:
        """A page failed or brought nothing new: retry later (or give up past ``retries``)."""
        settings = self.settings
        self.failures += 1
        why = f"backfill failed: {error!r}" if error else "backfill returned no new trade"
        if settings.retries is not None and self.failures > settings.retries:
            assert self.last is not None
            if self.held:
                self.give_up(
                    self.last + 1,
                    self.held.first() - 1,
                    f"{why} (after {settings.retries} retries)",
                )
            self.release()
            return
        _log.info("trade backfill retry", topic=settings.topic, from_id=start, reason=why)
        delay = settings.retry_delay(self.failures)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > delay:
            delay = float(retry_after)
        self.timer.disposable = self.clock().schedule_relative(delay, self._retry)

    def _retry(self, _: abc.SchedulerBase, __: Any = None) -> None:
        if not self.stopped:
            self.fetch()


def gapless_trades(
    live: Observable[Trade | StreamRestart],
    backfill: Callable[[int], Observable[list[Trade]]],
    *,
    topic: str,
    max_backfill: int = DEFAULT_MAX_BACKFILL,
    retries: int | None = None,
    retry_delay: Callable[[int], float] = backfill_retry_delay,
    report: Callable[[Exception], None] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    max_held: int = DEFAULT_MAX_HELD,
    page_size: int = 1000,
    backfill_since: BackfillSince | None = None,
) -> Observable[Trade]:
    """Every trade exactly once, in id order, with id gaps filled over REST.

    .. marble::
        :alt: gapless_trades

        live:      -1-2-R--6-7--8----|      R = StreamRestart; 3..5 were lost
        backfill:         (3,4,5)           backfill(3) -> one page
        [ gapless_trades(live, backfill, topic="btcusdt@trade") ]
                   -1-2----(3',4',5',6,7)-8-|   3',4',5' have backfilled=True

    * A live trade with id ``last + 1`` passes straight through (the hot path); an id
      at or below the last delivered one is a duplicate and is dropped.
    * A higher id starts a backfill: live trades are held (by id, duplicates merged);
      pages from ``backfill(last + 1)`` are emitted with ``backfilled=True`` until the
      gap is closed, then the held trades are released (a new gap among them starts
      another backfill). After a ``StreamRestart`` the backfill starts at once; pages
      follow while they come back full (``page_size``), so the trades missed during the
      outage arrive even if no live trade follows.
    * A jump is only believed when the venue can have it: a gap wider than
      ``max_backfill``, or a held trade a backfill cannot reach, is looked up
      (``backfill(id)``); found, or followed on by a live ``id + 1``: a real gap; not
      found :data:`CONFIRM_ATTEMPTS` times: a :class:`~rxconnector.errors.ParseError`,
      dropped (one hostile id must not become the baseline that turns every real trade
      after it into a "duplicate", issue #16). Live trades wait meanwhile. The first
      trade is checked the same way when live trades come below it
      (:mod:`rxconnector.streams.first_trade`).
    * A gap wider than ``max_backfill`` is reported as ``FeedGapError(topic, ...,
      first_missing=a, last_missing=b)`` and skipped. A failed or empty page is retried
      after ``retry_delay(n)`` (at least an error's ``retry_after``), without end by
      default (``retries`` bounds it); past ``max_held`` held trades the unfetched range
      is reported the same way and the held trades are released.
    * If the live stream completes during a backfill, the unfilled range is reported,
      the held trades are emitted, and the completion follows; an error is forwarded.

    Args:
        live: Parsed trades of one symbol with ``StreamRestart`` markers.
        backfill: ``backfill(from_id)`` makes a cold request for one page of trades
            starting at ``from_id`` (Binance ``aggTrades?fromId=`` or
            ``historicalTrades?fromId=``), ascending.
        topic: Names the feed in reports.
        max_backfill: Largest gap (in ids) fetched over REST.
        retries: Extra attempts per page after a failure (None: no limit; the
            ``max_held`` bound decides when to give up).
        retry_delay: Delay before retry ``n`` (1-based).
        report: Receives each :class:`FeedGapError` and each rejected trade's
            :class:`~rxconnector.errors.ParseError` (default: logged).
        scheduler: Times the retries; default: subscribe-time scheduler, then the loop's.
        max_held: Live trades held during a backfill before its range is given up.
        page_size: Trades a full ``backfill`` page holds (a shorter page after a
            restart means the present was reached).
        backfill_since: If given, ``backfill_since(from_id, since_ms, share)`` fetches
            the gap pages, told the last delivered trade's time and the share of live
            trades that continued their predecessor's order (:class:`FillSampler`;
            Binance Spot: ``aggTrades`` by time, weight 4); lookups use ``backfill``.

    Returns:
        An Observable of trades in id order.
    """
    settings = _settings(
        backfill,
        topic,
        max_backfill,
        retries,
        retry_delay,
        report,
        scheduler,
        max_held,
        page_size,
        backfill_since,
    )

    def subscribe(
        observer: abc.ObserverBase[Trade], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _GaplessRun(settings, observer, scheduler_)
        source = live.subscribe(run.on_next, run.on_error, run.on_completed, scheduler=scheduler_)
        return CompositeDisposable(source, run.request, run.timer)

    return Observable(subscribe)


#: What :func:`gapless_stage` returns: ``attach(downstream, scheduler_)`` -> the run, an
#: observer of the live trades (and markers) that is also the disposable of its state.
GaplessAttach = Callable[[abc.ObserverBase[Trade], "abc.SchedulerBase | None"], _GaplessRun]


def gapless_stage(
    backfill: Callable[[int], Observable[list[Trade]]],
    *,
    topic: str,
    max_backfill: int = DEFAULT_MAX_BACKFILL,
    retries: int | None = None,
    retry_delay: Callable[[int], float] = backfill_retry_delay,
    report: Callable[[Exception], None] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    max_held: int = DEFAULT_MAX_HELD,
    page_size: int = 1000,
    backfill_since: BackfillSince | None = None,
) -> GaplessAttach:
    """:func:`gapless_trades` as a stage, without an Observable of its own: the same
    arguments (but no ``live``), and ``attach(downstream, scheduler_)`` returns one
    subscription's state (the very object :func:`gapless_trades` subscribes to ``live``)
    whose ``on_next``/``on_error``/``on_completed`` the caller feeds the live trades and
    markers, which emits into ``downstream``, and whose ``dispose()`` ends it.

    .. marble::
        :alt: gapless_stage

        fed:       -1-2-R--6-7--8----|      R = StreamRestart; 3..5 were lost
        [ attach(downstream) with backfill(3) -> (3,4,5) ]
        downstream: -1-2----(3',4',5',6,7)-8-|

    Why: the connector runs it inside the trade feed's fan-out
    (:func:`rxconnector.operators._share.shared_stage`), so a trade in order costs one
    method call here instead of two more subscribed Observables and a multicast.
    """
    settings = _settings(
        backfill,
        topic,
        max_backfill,
        retries,
        retry_delay,
        report,
        scheduler,
        max_held,
        page_size,
        backfill_since,
    )

    def attach(
        downstream: abc.ObserverBase[Trade], scheduler_: abc.SchedulerBase | None
    ) -> _GaplessRun:
        return _GaplessRun(settings, downstream, scheduler_)

    return attach


def _settings(
    backfill: Callable[[int], Observable[list[Trade]]],
    topic: str,
    max_backfill: int,
    retries: int | None,
    retry_delay: Callable[[int], float],
    report: Callable[[Exception], None] | None,
    scheduler: abc.SchedulerBase | None,
    max_held: int,
    page_size: int,
    backfill_since: BackfillSince | None,
) -> _GaplessSettings:
    if max_backfill < 0:
        raise ValueError(f"max_backfill must be >= 0, got {max_backfill}")
    if max_held < 1 or page_size < 1:
        raise ValueError(f"max_held and page_size must be >= 1, got {max_held}, {page_size}")
    return _GaplessSettings(
        backfill,
        topic,
        max_backfill,
        retries,
        retry_delay,
        report_or_log(report),
        scheduler,
        max_held,
        page_size,
        backfill_since,
    )


def _trade_id(trade: Trade) -> int:
    return trade.trade_id
