"""Trades with no gaps: every trade once, in order, across reconnects (or a precise report).

A WebSocket reconnect loses whatever traded while the socket was down; the hub marks the
spot with a :class:`~rxconnector.streams.messages.StreamRestart`. Two venue situations:

* **Consecutive ids** (Binance ``trade`` ids, ``aggTrade`` aggregate ids):
  :func:`gapless_trades` notices any jump in ids, holds the live trades back, fetches the
  missing range over REST page by page (``backfill(from_id)``), emits it marked
  ``backfilled=True``, then releases the held trades. Duplicates (ids already delivered)
  are dropped. After a :class:`StreamRestart` it fetches from the last delivered id *at
  once*, without waiting for a live trade to reveal the gap (a quiet symbol, or the end
  of activity, would otherwise leave the missed trades undelivered). A failing backfill
  is retried with backoff for as long as the exchange may still have the data; only a
  range the venue's history skips, a gap wider than ``max_backfill``, or held live
  trades past ``max_held`` is reported as :class:`~rxconnector.errors.FeedGapError`
  with the exact id range.
* **No usable ids** (Bybit: trade ids are UUIDs or per-venue numbers with no range
  queries): :func:`gapless_trades_by_overlap` fetches the recent trades after a restart,
  emits the ones not yet delivered, and reports a *possible* gap when the recent trades
  do not overlap what was delivered before the restart.

Neither operator ever errors because of a gap or a REST failure; they forward the live
stream's error or completion.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import FeedGapError, ParseError
from rxconnector.log import get_logger
from rxconnector.models import Trade
from rxconnector.streams.messages import StreamRestart

__all__ = [
    "DEFAULT_MAX_BACKFILL",
    "DEFAULT_MAX_HELD",
    "backfill_retry_delay",
    "gapless_trades",
    "gapless_trades_by_overlap",
]

_log = get_logger(component="continuity")

#: Largest id gap fetched over REST by default: 100 pages of 1000 (Binance: 2,500 weight
#: with ``historicalTrades``, 400 with ``aggTrades``; PROTOCOL.md §A2.4). Any outage a
#: reconnect can heal is far below it; a bigger jump is reported, not fetched.
DEFAULT_MAX_BACKFILL = 100_000

#: Live trades held back (per feed) while a backfill runs: about 10 MB of ``Trade``s.
#: Only when a backfill that keeps failing lets more pile up is the missing range given
#: up (reported with its exact ids) and the held trades released.
DEFAULT_MAX_HELD = 20_000


#: Lookups of a far id before it is rejected as one the venue does not have (REST can
#: lag the stream by a moment: the lookups are ``retry_delay(1)``, ``(2)`` ... apart).
CONFIRM_ATTEMPTS = 3


def backfill_retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt`` of a failed backfill page: 0.5, 1, 2 ... max 10."""
    return float(min(0.5 * 2.0 ** (attempt - 1), 10.0))


def _make_reporter(report: Callable[[Exception], None] | None) -> Callable[[Exception], None]:
    def tell(error: Exception) -> None:
        if report is None:
            _log.warning("trade feed problem", error=str(error), kind=type(error).__name__)
            return
        try:
            report(error)
        except Exception:
            _log.exception("trade report callback raised")

    return tell


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
) -> Observable[Trade]:
    """Every trade exactly once, in id order, with id gaps filled over REST.

    .. marble::
        :alt: gapless_trades

        live:      -1-2-R--6-7--8----|      R = StreamRestart; 3..5 were lost
        backfill:         (3,4,5)           backfill(3) -> one page
        [ gapless_trades(live, backfill, topic="btcusdt@trade") ]
                   -1-2----(3',4',5',6,7)-8-|   3',4',5' have backfilled=True

    * A live trade with id ``last + 1`` passes straight through (the hot path).
    * An id at or below the last delivered one is a duplicate and is dropped.
    * A higher id starts a backfill: live trades are held (ordered by id, duplicates
      merged); ``backfill(last + 1)`` is subscribed and each page's trades that close the
      gap are emitted with ``backfilled=True``; pages are requested until the gap is
      closed, then the held trades are released (a new gap among them starts another
      backfill).
    * After a ``StreamRestart`` (once something was delivered) ``backfill(last + 1)`` is
      fetched at once; pages follow while they come back full (``page_size`` trades),
      so the trades missed during the outage arrive even if no live trade follows.
    * A jump is only believed when the venue can have it: before a gap wider than
      ``max_backfill`` is given up, and when a backfill finds nothing new before the
      trade beyond the gap, that trade's id is looked up (``backfill(id)``). Found,
      or followed on by a live ``id + 1``: the gap is real. Not found
      :data:`CONFIRM_ATTEMPTS` times: the trade is reported as a
      :class:`~rxconnector.errors.ParseError` and dropped - one hostile or corrupt
      trade id must not become the baseline that turns every real trade after it
      into a "duplicate" (issue #16). Live trades wait during the lookup.
    * A gap wider than ``max_backfill`` ids is not fetched: it is reported as
      ``FeedGapError(topic, ..., first_missing=a, last_missing=b)`` and skipped. A page
      request that errors, or that brings no new trade, is retried after
      ``retry_delay(n)`` seconds (at least an error's ``retry_after``) on the scheduler,
      without end by default (``retries`` bounds it); meanwhile live trades are held, at
      most ``max_held`` of them: past that, the unfetched range is reported the same way
      and skipped, and the held trades are released. Nothing is lost silently.
    * If the live stream completes during a backfill, the unfilled range is reported,
      the held trades are emitted, and the completion follows; an error is forwarded.

    Args:
        live: Parsed trades of one symbol with ``StreamRestart`` markers (markers need
            no action here: gaps are found from the ids).
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

    Returns:
        An Observable of trades in id order.
    """
    if max_backfill < 0:
        raise ValueError(f"max_backfill must be >= 0, got {max_backfill}")
    if max_held < 1 or page_size < 1:
        raise ValueError(f"max_held and page_size must be >= 1, got {max_held}, {page_size}")
    tell = _make_reporter(report)

    def subscribe(
        observer: abc.ObserverBase[Trade], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        last: int | None = None
        held: dict[int, Trade] = {}
        order: list[int] = []  # heap of held ids
        backfilling = False
        failures = 0
        stopped = False
        confirmed: set[int] = set()  # far ids the venue (or the stream) vouched for
        misses: dict[int, int] = {}  # far ids looked up and not found, how often
        request = SerialDisposable()
        timer = SerialDisposable()
        source = SingleAssignmentDisposable()

        def hold(trade: Trade) -> None:
            if trade.trade_id not in held:
                held[trade.trade_id] = trade
                heapq.heappush(order, trade.trade_id)
            if backfilling and len(held) > max_held and last is not None:
                overflow()

        def overflow() -> None:
            """Too many live trades held: give the unfetched range up, release them."""
            assert last is not None
            request.disposable = SingleAssignmentDisposable()
            timer.disposable = SingleAssignmentDisposable()
            if order[0] > last + 1:
                give_up(last + 1, order[0] - 1, f"more than {max_held} live trades held")
            release()

        def give_up(first_missing: int, last_missing: int, why: str) -> None:
            nonlocal last
            tell(
                FeedGapError(
                    topic,
                    f"trades {first_missing}..{last_missing} "
                    f"({last_missing - first_missing + 1} ids) lost: {why}",
                    first_missing=first_missing,
                    last_missing=last_missing,
                )
            )
            last = last_missing

        def release() -> None:
            """Emit held trades while they follow on; start a backfill at the next hole."""
            nonlocal last, backfilling, failures
            assert last is not None
            while order:
                tid = order[0]
                if tid <= last:
                    heapq.heappop(order)
                    del held[tid]
                    continue
                if tid == last + 1:
                    heapq.heappop(order)
                    last = tid
                    observer.on_next(held.pop(tid))
                    continue
                first_missing, last_missing = last + 1, tid - 1
                size = last_missing - first_missing + 1
                if size > max_backfill:
                    if tid not in confirmed:  # never let an unconfirmed id jump the baseline
                        backfilling = True
                        confirm(tid, release)
                        return
                    give_up(first_missing, last_missing, f"gap larger than {max_backfill}")
                    continue
                backfilling = True
                failures = 0
                fetch()
                return
            backfilling = False

        def fetch() -> None:
            assert last is not None
            start = last + 1
            current = SingleAssignmentDisposable()
            request.disposable = current
            progress = False
            finished = False
            count = 0

            def on_page(page: Iterable[Trade]) -> None:
                """Merge the page with the held live trades and emit what follows on.

                One page may close several holes (outages close together): its trades
                up to the newest held one join the held ones (a live copy is kept over
                a page copy; newer trades will come live), and an id the page skipped
                inside its own range is absent from the venue's history (a ``fromId``
                page lists consecutive trades): said, skipped. With nothing held (after
                a restart) the whole page counts."""
                nonlocal last, progress, count
                if finished or stopped:
                    return
                trades = sorted(page, key=_trade_id)
                count += len(trades)
                if not trades:
                    return
                assert last is not None
                newest = max(order) if order else None
                if newest is not None:
                    trades = [t for t in trades if t.trade_id <= newest]
                    if not trades:
                        return
                page_max = trades[-1].trade_id
                for trade in trades:
                    tid = trade.trade_id
                    if tid > last and tid not in held:
                        held[tid] = attrs.evolve(trade, backfilled=True)
                        heapq.heappush(order, tid)
                before = last
                while order:
                    tid = order[0]
                    if tid <= last:
                        heapq.heappop(order)
                        del held[tid]
                    elif tid == last + 1:
                        heapq.heappop(order)
                        last = tid
                        observer.on_next(held.pop(tid))
                    elif tid <= page_max:
                        give_up(last + 1, tid - 1, "absent from the venue's trade history")
                    else:
                        break
                if last > before:
                    progress = True

            def on_error(error: Exception) -> None:
                nonlocal finished
                if finished or stopped:
                    return
                finished = True
                failed(start, error)

            def on_completed() -> None:
                nonlocal finished, failures
                if finished or stopped:
                    return
                finished = True
                assert last is not None
                if not order:  # after a restart: fetch until the present is reached
                    if progress and count >= page_size:
                        failures = 0
                        fetch()
                    else:
                        release()
                elif progress or last + 1 >= order[0]:
                    release()  # the next hole (or page), checked against max_backfill
                elif order[0] not in confirmed:
                    # Nothing new from last + 1 on: is the trade beyond the gap real?
                    confirm(order[0], lambda: failed(start, None))
                else:
                    failed(start, None)

            try:
                page_request = backfill(start)
            except Exception as exc:
                finished = True
                failed(start, exc)
                return
            current.disposable = page_request.subscribe(
                on_page, on_error, on_completed, scheduler=scheduler_
            )

        def confirm(head: int, proceed: Callable[[], None]) -> None:
            """Ask the venue whether ``head`` (the held trade beyond a gap) exists:
            ``backfill(head)`` brings trades from that id on when it does. Confirmed
            (or followed on by a live ``head + 1``): ``proceed()``. Not found
            :data:`CONFIRM_ATTEMPTS` times (counted per id, across interruptions by
            live trades that fill the gap meanwhile): rejected (:func:`reject`)."""
            current = SingleAssignmentDisposable()
            request.disposable = current
            found = False
            finished = False

            def later(attempt: int) -> None:
                def run(_: abc.SchedulerBase, __: Any = None) -> None:
                    if stopped or last is None:
                        return
                    if order and order[0] == head:
                        confirm(head, proceed)
                    else:
                        release()  # live trades came before it meanwhile: go on from there

                clock = resolve_scheduler(scheduler, scheduler_)
                timer.disposable = clock.schedule_relative(retry_delay(attempt), run)

            def on_page(page: Iterable[Trade]) -> None:
                nonlocal found
                found = found or any(trade.trade_id >= head for trade in page)

            def on_error(error: Exception) -> None:
                nonlocal finished
                if finished or stopped:
                    return
                finished = True
                _log.info("trade id lookup failed", topic=topic, trade_id=head, error=repr(error))
                later(misses.get(head, 0) + 1)  # says nothing about the id: not a miss

            def on_completed() -> None:
                nonlocal finished
                if finished or stopped:
                    return
                finished = True
                if found or head + 1 in held:
                    misses.pop(head, None)
                    confirmed.add(head)
                    proceed()
                    return
                misses[head] = missed = misses.get(head, 0) + 1
                if missed >= CONFIRM_ATTEMPTS:
                    misses.pop(head, None)
                    reject(head)
                else:
                    later(missed)

            try:
                lookup = backfill(head)
            except Exception as exc:
                finished = True
                on_error(exc)
                return
            current.disposable = lookup.subscribe(
                on_page, on_error, on_completed, scheduler=scheduler_
            )

        def reject(head: int) -> None:
            """``head`` is not a trade the venue has: this frame's ParseError; the
            baseline stays where the real trades are."""
            assert order and order[0] == head
            heapq.heappop(order)
            trade = held.pop(head)
            tell(
                ParseError(
                    f"{topic}: trade id {head} is beyond what the venue has (a lookup "
                    f"from that id found nothing, {CONFIRM_ATTEMPTS} times, and no live "
                    f"trade followed on from it; last delivered id {last}): dropped, "
                    "not taken as the new baseline",
                    trade,
                )
            )
            release()

        def failed(start: int, error: Exception | None) -> None:
            nonlocal failures
            failures += 1
            why = f"backfill failed: {error!r}" if error else "backfill returned no new trade"
            if retries is not None and failures > retries:
                assert last is not None
                if order:
                    give_up(last + 1, order[0] - 1, f"{why} (after {retries} retries)")
                release()
                return
            _log.info("trade backfill retry", topic=topic, from_id=start, reason=why)

            def again(_: abc.SchedulerBase, __: Any = None) -> None:
                if not stopped:
                    fetch()

            delay = retry_delay(failures)
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > delay:
                delay = float(retry_after)
            clock = resolve_scheduler(scheduler, scheduler_)
            timer.disposable = clock.schedule_relative(delay, again)

        def on_next(item: Trade | StreamRestart) -> None:
            nonlocal last, backfilling, failures
            if isinstance(item, StreamRestart):
                if last is not None and not backfilling:
                    backfilling = True  # fetch what the outage missed, now
                    failures = 0
                    fetch()
                return
            tid = item.trade_id
            if backfilling:
                if last is None or tid > last:
                    hold(item)
                return
            if last is None or tid == last + 1:
                last = tid
                observer.on_next(item)
            elif tid > last:
                hold(item)
                release()

        def stop() -> None:
            nonlocal stopped
            stopped = True
            request.dispose()
            timer.dispose()

        def on_error(error: Exception) -> None:
            stop()
            observer.on_error(error)

        def on_completed() -> None:
            nonlocal last
            stop()
            while order and last is not None:
                tid = heapq.heappop(order)
                trade = held.pop(tid)
                if tid <= last:
                    continue
                if tid > last + 1:
                    give_up(last + 1, tid - 1, "the live stream ended before the backfill")
                last = tid
                observer.on_next(trade)
            observer.on_completed()

        source.disposable = live.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)
        return CompositeDisposable(source, request, timer)

    return Observable(subscribe)


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


def _default_key(trade: Trade) -> Hashable:
    return trade.trade_id


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
    tell = _make_reporter(report)

    def subscribe(
        observer: abc.ObserverBase[Trade], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        seen: set[Hashable] = set()
        remembered: deque[Hashable] = deque()
        last_time: int | None = None
        recovering = False
        held: list[Trade] = []
        failures = 0
        stopped = False
        request = SerialDisposable()
        timer = SerialDisposable()
        source = SingleAssignmentDisposable()

        def deliver(trade: Trade, k: Hashable) -> None:
            nonlocal last_time
            seen.add(k)
            remembered.append(k)
            if len(remembered) > memory:
                seen.discard(remembered.popleft())
            if last_time is None or trade.time > last_time:
                last_time = trade.time
            observer.on_next(trade)

        def finish(backfilled: list[Trade]) -> None:
            nonlocal recovering, held
            recovering = False
            pending, held = held, []
            live_keys = {key(t) for t in pending}  # prefer the live copy of a trade
            backfilled = [t for t in backfilled if key(t) not in live_keys]
            merged = sorted(
                [(t.time, 0, n, t) for n, t in enumerate(backfilled)]
                + [(t.time, 1, n, t) for n, t in enumerate(pending)],
                key=lambda row: row[:3],
            )
            for _, _, _, trade in merged:
                k = key(trade)
                if k not in seen:
                    deliver(trade, k)

        def fetch() -> None:
            current = SingleAssignmentDisposable()
            request.disposable = current
            pages: list[Trade] = []
            finished = False

            def on_page(page: Iterable[Trade]) -> None:
                if not finished:
                    pages.extend(page)

            def on_error(error: Exception) -> None:
                nonlocal finished
                if finished or stopped:
                    return
                finished = True
                failed(error)

            def on_completed() -> None:
                nonlocal finished, failures
                if finished or stopped:
                    return
                finished = True
                failures = 0
                trades = pages
                if len(trades) > 1 and trades[0].time > trades[-1].time:
                    trades = trades[::-1]  # newest-first answer: put it oldest-first
                trades = sorted(trades, key=_trade_time)
                overlap = any(key(t) in seen for t in trades)
                if trades and not overlap:
                    tell(
                        FeedGapError(
                            topic,
                            "possible trade gap after a stream restart: the recent trades "
                            f"do not reach back to the last delivered one (time {last_time})",
                        )
                    )
                floor = last_time if last_time is not None else 0
                missing = [
                    attrs.evolve(t, backfilled=True)
                    for t in trades
                    if t.time >= floor and key(t) not in seen
                ]
                finish(missing)

            try:
                page_request = recent()
            except Exception as exc:
                finished = True
                failed(exc)
                return
            current.disposable = page_request.subscribe(
                on_page, on_error, on_completed, scheduler=scheduler_
            )

        def failed(error: Exception) -> None:
            nonlocal failures
            failures += 1
            if failures > retries:
                tell(
                    FeedGapError(
                        topic,
                        "possible trade gap after a stream restart: recent trades "
                        f"unavailable ({error!r}, after {retries} retries)",
                    )
                )
                failures = 0
                finish([])
                return

            def again(_: abc.SchedulerBase, __: Any = None) -> None:
                if not stopped:
                    fetch()

            clock = resolve_scheduler(scheduler, scheduler_)
            timer.disposable = clock.schedule_relative(retry_delay(failures), again)

        def on_next(item: Trade | StreamRestart) -> None:
            nonlocal recovering, failures
            if isinstance(item, StreamRestart):
                if last_time is None:
                    return  # nothing delivered yet: nothing to continue from
                recovering = True
                failures = 0
                timer.disposable = SingleAssignmentDisposable()
                fetch()  # (again, if already recovering: the older answer may miss data)
                return
            if recovering:
                held.append(item)
                return
            k = key(item)
            if k not in seen:
                deliver(item, k)

        def stop() -> None:
            nonlocal stopped
            stopped = True
            request.dispose()
            timer.dispose()

        def on_error(error: Exception) -> None:
            stop()
            observer.on_error(error)

        def on_completed() -> None:
            stop()
            if recovering:
                tell(
                    FeedGapError(topic, "possible trade gap: the live stream ended during recovery")
                )
                finish([])
            observer.on_completed()

        source.disposable = live.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)
        return CompositeDisposable(source, request, timer)

    return Observable(subscribe)


def _trade_time(trade: Trade) -> int:
    return trade.time
