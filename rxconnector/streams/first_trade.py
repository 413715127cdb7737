"""What live trades tell a backfill: is the first one real, how often do fills continue.

:class:`FillSampler`: the share of live trades that continued their predecessor's order.

:class:`FirstTradeCheck` (issue 16, hostile input):

:func:`~rxconnector.streams.continuity.gapless_trades` takes the first trade after
subscribing as its baseline: every later trade at or below its id is a duplicate. A
hostile or corrupt first trade with an id far ahead would therefore silence the feed
for good. Nothing can tell it apart when it arrives (there is nothing to compare it
with), but the trades after it can: when live trades come in *below* the baseline
before any trade followed on from it, :class:`FirstTradeCheck` looks the baseline's id
up over REST (``lookup(id)`` brings trades from that id on when the venue has it).
Found: the lower trades were duplicates after all. Not found
:data:`~rxconnector.streams.continuity.CONFIRM_ATTEMPTS` times: the baseline was not a
venue trade; the caller reports it and starts again from the lower trades, which were
held meanwhile (at most ``max_below``; more than that many real trades below it is
taken as the answer at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from rxconnector.models import Trade

__all__ = ["FillSampler", "FirstTradeCheck"]


class FillSampler:
    """How often a live trade continues its predecessor's order: same time, price and
    side (on Binance: another fill of the same aggregate trade).

    Sampled on pairs of ids ``8k, 8k + 1`` (a quarter of the hot path's cost of
    looking at every pair); the counts halve past 64 pairs, so the share follows the
    symbol's recent trading. Tells a backfill whether aggregates are likely to prove
    the missed trades alone (:mod:`rxconnector.exchanges.binance.aggregates`).
    """

    __slots__ = ("_continued", "_pairs", "_prev")

    def __init__(self) -> None:
        self._prev: Trade | None = None
        self._pairs = 0
        self._continued = 0

    def sample(self, trade: Trade) -> None:
        """``trade`` has an id ``8k`` or ``8k + 1`` and was just delivered."""
        prev = self._prev
        self._prev = trade
        if prev is None or prev.trade_id + 1 != trade.trade_id:
            return
        self._pairs += 1
        if prev.time == trade.time and prev.price == trade.price and prev.side == trade.side:
            self._continued += 1
        if self._pairs >= 64:
            self._pairs //= 2
            self._continued //= 2

    def share(self) -> float | None:
        """Continued pairs / sampled pairs (None before 8 pairs were seen)."""
        return self._continued / self._pairs if self._pairs >= 8 else None


class FirstTradeCheck:
    """One check of a baseline trade ``head``; ``verdict(genuine, below)`` ends it once.

    ``below`` are the live trades that arrived under the baseline meanwhile, in arrival
    order. Lookups that fail (errors) are retried after ``retry_delay(n)`` without
    counting as misses.
    """

    def __init__(
        self,
        head: int,
        lookup: Callable[[int], Observable[list[Trade]]],
        *,
        attempts: int,
        max_below: int,
        retry_delay: Callable[[int], float],
        clock: abc.SchedulerBase,
        scheduler_: abc.SchedulerBase | None,
        verdict: Callable[[bool, list[Trade]], None],
    ) -> None:
        self.head = head
        self.lookup = lookup
        self.attempts = attempts
        self.max_below = max_below
        self.retry_delay = retry_delay
        self.clock = clock
        self.scheduler_ = scheduler_
        self.verdict = verdict
        self.below: list[Trade] = []
        self.misses = 0
        self.tries = 0
        self.found = False
        self.done = False
        self.request = SerialDisposable()
        self.timer = SerialDisposable()

    def add(self, trade: Trade) -> None:
        """A live trade under the baseline: held; the first one starts the lookup."""
        self.below.append(trade)
        if len(self.below) == 1:
            self.ask()
        elif len(self.below) > self.max_below:
            self.decide(False)  # that many real trades below it: not a venue trade

    def ask(self) -> None:
        if self.done:
            return
        self.found = False
        self.tries += 1
        current = SingleAssignmentDisposable()
        self.request.disposable = current
        try:
            answer = self.lookup(self.head)
        except Exception:
            self.later()
            return
        current.disposable = answer.subscribe(
            self.on_page, lambda _error: self.later(), self.on_completed, scheduler=self.scheduler_
        )

    def on_page(self, page: Iterable[Trade]) -> None:
        self.found = self.found or any(trade.trade_id >= self.head for trade in page)

    def on_completed(self) -> None:
        if self.done:
            return
        if self.found:
            self.decide(True)
            return
        self.misses += 1
        if self.misses >= self.attempts:
            self.decide(False)
        else:
            self.later()

    def later(self) -> None:
        if not self.done:
            delay = self.retry_delay(self.tries)
            self.timer.disposable = self.clock.schedule_relative(delay, self._again)

    def _again(self, _: abc.SchedulerBase, __: Any = None) -> None:
        self.ask()

    def decide(self, genuine: bool) -> None:
        if self.done:
            return
        self.done = True
        self.dispose()
        self.verdict(genuine, self.below)

    def dispose(self) -> None:
        self.request.dispose()
        self.timer.dispose()
