"""The venue-agnostic simulated market: a seeded random walk with a real-looking book.

Nothing here knows about Binance or Bybit: a tick produces :class:`TickEvents` (trades,
aggregate trades, the net book diff with the update ids it consumed, whether the top of
book changed) and the dialects turn those into their own wire formats. Given the seed,
the sequence of prices, quantities and ids depends only on the number of ticks, never
on wall time or on which clients are connected, so two simulators with the same seed
produce the same market (times differ; they come from the clock).

One tick of one symbol, each step consuming one book update id when it changes the book:

1. the pivot price walks; levels on the wrong side of it are pulled and, if the spread
   opened up, a level is placed next to the pivot (bids <= pivot < asks: never crossed);
2. 0..3 taker orders (none on most ticks of a symbol whose ``activity`` is below 1)
   sweep up to 4 levels from the best; each swept level yields one
   aggregate trade of one or more fills (trades, one per maker order), how many drawn
   from the fill model (``fills.py``: by default the distribution recorded on Binance
   Spot, 28 % multi-fill; ``stress`` = the original uniform 1..3, 67 %);
3. 1..3 maker actions modify, add or cancel levels, mostly near the top;
4. the book is topped up or trimmed back to ``book_levels`` per side.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec

from rxconnector.testing.simulator.book import ASK, BID, LevelChange, SimBook
from rxconnector.testing.simulator.config import SymbolSpec
from rxconnector.testing.simulator.fills import FILL_MODELS, FillModel, fill_model
from rxconnector.testing.simulator.klines import (
    KlineAgg,
    KlineTracker,
    bucket_close,
    bucket_open,
    kline_from_trades,
    next_open,
    prev_open,
    synthetic_kline,
)
from rxconnector.testing.simulator.numbers import to_decimal
from rxconnector.testing.simulator.tape import RollingWindow, SimAggTrade, SimTrade, TradeTape

__all__ = ["Levels", "Market", "SymbolMarket", "TickEvents"]

#: Book levels as exact decimals, best first: [(price, quantity), ...]
Levels = list[tuple[Decimal, Decimal]]

_DAY_MS = 86_400_000
#: taker orders per tick: 0, 1, 2, 3 with weights 30, 40, 20, 10, as cumulative weights
_TAKERS_CUM = (30, 70, 90, 100)
_AVG_PRICE_MS = 5 * 60_000


#: the tape's records: msgspec structs, whose constructors are already cheap (C)
_new_trade = SimTrade
_new_agg = SimAggTrade


class TickEvents(msgspec.Struct, frozen=True, gc=False):
    """What one tick did to one symbol (integer units; see ``config``).

    Untracked by the cyclic collector (``gc=False``; its fields are atoms and tuples of
    them, never a cycle): the 1000-ms ``@depth`` stream keeps a period's ticks, and as
    tracked objects they were promoted to the oldest generation by the thousand and
    triggered its full passes (``chunked.py`` says why those matter).
    """

    symbol: str
    time: int
    first_update_id: int
    last_update_id: int
    #: final quantity of every bid level changed this tick, best first (0 = removed)
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    trades: tuple[SimTrade, ...]
    aggs: tuple[SimAggTrade, ...]
    top_changed: bool


_new_tick_events = TickEvents


class SymbolMarket:
    """Book, tape and statistics of one symbol, advanced one tick at a time."""

    def __init__(
        self,
        spec: SymbolSpec,
        seed: int,
        start_ms: int,
        *,
        book_levels: int = 50,
        book_history: int = 100_000,
        trade_history: int = 1_000_000,
        fills: FillModel = FILL_MODELS["binance_spot"],
    ) -> None:
        self.spec = spec
        self._fills = fill_model(spec.fill_model) if spec.fill_model is not None else fills
        self._activity = spec.activity
        self.symbol = spec.symbol
        self.seed = seed
        self.start_ms = start_ms
        self.price_exp = spec.price_exp
        self.qty_exp = spec.qty_exp
        self._rng = random.Random(f"market:{seed}:{spec.symbol}")
        rng = self._rng
        self._levels = book_levels
        self.initial_ticks = int(spec.initial_price / spec.tick_size)
        self._pivot = self.initial_ticks
        self._unit = max(1, round(self.initial_ticks * 1e-5))  # level spacing, in ticks
        self._floor = max(200, 4 * book_levels * self._unit)
        self.lot = max(1, round(20_000 / float(spec.initial_price) / float(spec.step_size)))
        self.book = SimBook(1_000_000 + rng.randrange(1_000_000), book_history)
        self._next_trade_id = 100_000 + rng.randrange(100_000)
        self._next_agg_id = 10_000 + rng.randrange(10_000)
        self.tape = TradeTape(trade_history)
        self.day = RollingWindow(_DAY_MS)
        self.avg_window = RollingWindow(_AVG_PRICE_MS)
        self._trackers: dict[str, KlineTracker] = {}
        self._last_time = start_ms
        self._seed_book()

    # -- generation -----------------------------------------------------------------

    def _qty(self) -> int:
        return self._rng.randint(max(1, self.lot // 10), self.lot * 3)

    def _seed_book(self) -> None:
        rng = self._rng
        changes: list[LevelChange] = []
        price = self._pivot
        for _ in range(self._levels):
            changes.append((BID, price, self._qty()))
            price -= rng.randint(1, 2 * self._unit)
        price = self._pivot + 1
        for _ in range(self._levels):
            changes.append((ASK, price, self._qty()))
            price += rng.randint(1, 2 * self._unit)
        self.book.apply(changes)
        self.book.first_update_id = self.book.update_id  # the seed is not history

    def _walk(self) -> list[LevelChange]:
        rng, book, unit = self._rng, self.book, self._unit
        self._pivot = max(self._floor, self._pivot + round(rng.gauss(0, 1.5) * unit))
        pivot = self._pivot
        pulled_asks = list(book.side(ASK).irange(maximum=pivot))
        pulled_bids = list(book.side(BID).irange(minimum=pivot + 1))
        changes: list[LevelChange] = [(ASK, p, 0) for p in pulled_asks]
        changes += [(BID, p, 0) for p in pulled_bids]
        # Orders on the wrong side of the new price are re-placed behind it, so the
        # book keeps its depth near the top instead of thinning out after a move.
        for side, pulled in ((BID, pulled_bids), (ASK, pulled_asks)):
            spread = 2 * unit * (len(pulled) + 1)
            for _ in range(len(pulled) + 1):
                offset = rng.randint(0, spread)
                price = pivot - offset if side == BID else pivot + 1 + offset
                changes.append((side, max(1, price), self._qty()))
        return changes

    def _take(self, now: int, trades: list[SimTrade], aggs: list[SimAggTrade]) -> list[LevelChange]:
        rng = self._rng
        taker = "BUY" if rng.random() < 0.5 else "SELL"
        side = ASK if taker == "BUY" else BID
        remaining = rng.randint(max(1, self.lot // 4), self.lot * 2)
        changes: list[LevelChange] = []
        uid = self.book.update_id + 1  # a sweep always changes the book: one update
        for price, level_qty in self.book.levels(side, 4):
            fill = min(remaining, level_qty)
            parts = self._fills.draw(rng, fill)
            cuts = sorted(rng.sample(range(1, fill), parts - 1)) if parts > 1 else []
            sizes = [b - a for a, b in zip([0, *cuts], [*cuts, fill], strict=True)]
            agg_id = self._next_agg_id
            self._next_agg_id += 1
            first_id = self._next_trade_id
            p_dec = to_decimal(price, self.price_exp)
            for size in sizes:
                trades.append(
                    _new_trade(
                        self.symbol,
                        self._next_trade_id,
                        p_dec,
                        to_decimal(size, self.qty_exp),
                        now,
                        taker,
                        agg_id,
                        price,
                        size,
                        uid,
                    )
                )
                self._next_trade_id += 1
            aggs.append(
                _new_agg(
                    self.symbol,
                    agg_id,
                    p_dec,
                    to_decimal(fill, self.qty_exp),
                    first_id,
                    self._next_trade_id - 1,
                    now,
                    taker == "SELL",
                    price,
                    fill,
                    uid,
                )
            )
            changes.append((side, price, level_qty - fill))
            remaining -= fill
            if remaining == 0:
                break
        return changes

    def _make(self) -> list[LevelChange]:
        rng, book = self._rng, self.book
        side = BID if rng.random() < 0.5 else ASK
        levels = book.side(side)
        action = rng.random()
        if action < 0.5 and levels:
            idx = min(len(levels) - 1, int(rng.expovariate(0.15)))
            price = levels.peekitem(-1 - idx if side == BID else idx)[0]
            return [(side, price, self._qty())]
        if action < 0.8 or len(levels) <= self._levels // 2:
            offset = int(rng.expovariate(1 / (5 * self._unit)))
            price = self._pivot - offset if side == BID else self._pivot + 1 + offset
            return [(side, max(1, price), self._qty())]
        idx = min(len(levels) - 1, int(rng.expovariate(0.1)))
        price = levels.peekitem(-1 - idx if side == BID else idx)[0]
        return [(side, price, 0)]

    def _maintain(self) -> list[LevelChange]:
        rng, book = self._rng, self.book
        changes: list[LevelChange] = []
        for side in (BID, ASK):
            levels = book.side(side)
            n = len(levels)
            if n < self._levels:
                worst = levels.peekitem(0 if side == BID else -1)[0] if n else self._pivot
                for _ in range(self._levels - n):
                    step = rng.randint(1, 2 * self._unit)
                    worst = worst - step if side == BID else worst + step
                    if worst < 1:
                        break
                    changes.append((side, worst, self._qty()))
            elif n > self._levels + 10:
                extra = n - self._levels
                prices = levels.keys()[:extra] if side == BID else levels.keys()[-extra:]
                changes += [(side, p, 0) for p in prices]
        return changes

    def tick(self, now_ms: int) -> TickEvents:
        """Advance one tick at server time ``now_ms`` (clamped to be non-decreasing)."""
        now = max(now_ms, self._last_time)
        self._last_time = now
        rng, book = self._rng, self.book
        top_before = book.top()
        first_uid = book.update_id + 1
        net: dict[tuple[int, int], int] = {}
        trades: list[SimTrade] = []
        aggs: list[SimAggTrade] = []

        sides = (book.side(BID), book.side(ASK))  # indexed by BID (0) / ASK (1)

        def commit(changes: Iterable[LevelChange]) -> None:
            real = [c for c in changes if sides[c[0]].get(c[1], 0) != c[2]]
            if real:
                book.apply(real)
                for side, price, qty in real:
                    net[(side, price)] = qty

        commit(self._walk())
        # a quiet symbol (activity < 1) skips the takers of most ticks; at 1 no draw is
        # spent here, so a busy symbol's market is what it was before activity existed
        quiet = self._activity < 1.0 and rng.random() >= self._activity
        # the draw of ``rng.choices((0, 1, 2, 3), (30, 40, 20, 10))[0]`` (one ``random()``,
        # the same bisection) without its per-call set-up
        takers = 0 if quiet else bisect.bisect(_TAKERS_CUM, rng.random() * 100.0, 0, 3)
        for _ in range(takers):
            commit(self._take(now, trades, aggs))
        for _ in range(rng.randint(1, 3)):
            commit(self._make())
        commit(self._maintain())
        if not net:  # every tick changes the book: a diff event per tick
            price, qty = book.levels(BID, 1)[0]
            commit([(BID, price, qty + 1)])
        self._record(trades, aggs)
        bids = sorted(((p, q) for (s, p), q in net.items() if s == BID), reverse=True)
        asks = sorted((p, q) for (s, p), q in net.items() if s == ASK)
        return _new_tick_events(
            self.symbol,
            now,
            first_uid,
            book.update_id,
            tuple(bids),
            tuple(asks),
            tuple(trades),
            tuple(aggs),
            book.top() != top_before,
        )

    def _record(self, trades: list[SimTrade], aggs: list[SimAggTrade]) -> None:
        self.tape.add(trades, aggs)
        for trade in trades:
            self.day.add(trade)
            self.avg_window.add(trade)
            for tracker in self._trackers.values():
                tracker.add(trade)

    # -- queries --------------------------------------------------------------------

    @property
    def fill_model(self) -> FillModel:
        """How many fills one aggregate trade of this symbol holds (``fills.py``)."""
        return self._fills

    @property
    def now_ms(self) -> int:
        """Time of the latest tick (or the start time before the first tick)."""
        return self._last_time

    def _levels_dec(self, side: dict[int, int], bids: bool, depth: int | None) -> Levels:
        prices = sorted(side, reverse=bids)[:depth]
        pe, qe = self.price_exp, self.qty_exp
        return [(to_decimal(p, pe), to_decimal(side[p], qe)) for p in prices]

    def book_at(self, update_id: int, depth: int | None = None) -> tuple[Levels, Levels]:
        """(bids, asks) right after ``update_id``, best first, as exact decimals."""
        bids, asks = self.book.at(update_id)
        return self._levels_dec(bids, True, depth), self._levels_dec(asks, False, depth)

    def last_price_ticks(self) -> int:
        last = self.tape.last_trade
        return last.price_ticks if last is not None else self._pivot

    def kline_tracker(self, interval: str) -> KlineTracker:
        """The running candle of ``interval`` (created from the tape on first use)."""
        tracker = self._trackers.get(interval)
        if tracker is None:
            now = self._last_time
            open_ms = bucket_open(interval, now)
            prev = self.tape.last_trade_before(open_ms)
            tracker = KlineTracker(
                interval,
                now,
                self.tape.trades_between(open_ms, now),
                prev.price_ticks if prev else self.initial_ticks,
            )
            self._trackers[interval] = tracker
        return tracker

    def _kline(self, interval: str, open_ms: int) -> KlineAgg:
        if bucket_close(interval, open_ms) < self.start_ms:
            return synthetic_kline(
                self.seed,
                self.symbol,
                interval,
                open_ms,
                self.initial_ticks,
                self.lot,
                self.start_ms,
            )
        prev = self.tape.last_trade_before(open_ms)
        return kline_from_trades(
            interval,
            open_ms,
            self.tape.trades_between(open_ms, bucket_close(interval, open_ms)),
            prev.price_ticks if prev else self.initial_ticks,
        )

    def klines(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[KlineAgg]:
        """Up to ``limit`` candles with ``start <= open time <= end`` (Binance semantics:
        without a start, the most recent ones ending at ``end`` or now)."""
        now = self._last_time
        last_open = bucket_open(interval, min(end_ms, now) if end_ms is not None else now)
        opens: list[int] = []
        if start_ms is None:
            o = last_open
            while len(opens) < limit:
                opens.append(o)
                o = prev_open(interval, o)
            opens.reverse()
        else:
            o = bucket_open(interval, start_ms)
            if o < start_ms:
                o = next_open(interval, o)
            while o <= last_open and len(opens) < limit:
                opens.append(o)
                o = next_open(interval, o)
        return [self._kline(interval, o) for o in opens]


class Market:
    """All listed symbols, ticked together from one clock."""

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        seed: int,
        clock: Callable[[], int],
        *,
        book_levels: int = 50,
        book_history: int = 100_000,
        trade_history: int = 1_000_000,
        fills: FillModel = FILL_MODELS["binance_spot"],
    ) -> None:
        self.seed = seed
        self._clock = clock
        start = clock()
        self.symbols: dict[str, SymbolMarket] = {
            spec.symbol: SymbolMarket(
                spec,
                seed,
                start,
                book_levels=book_levels,
                book_history=book_history,
                trade_history=trade_history,
                fills=fills,
            )
            for spec in specs
        }
        self.tick_count = 0

    def __getitem__(self, symbol: str) -> SymbolMarket:
        return self.symbols[symbol.upper()]

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and symbol.upper() in self.symbols

    def tick(self) -> list[TickEvents]:
        """Advance every symbol by one tick."""
        now = self._clock()
        self.tick_count += 1
        return [m.tick(now) for m in self.symbols.values()]
