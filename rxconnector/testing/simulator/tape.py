"""The trade tape: every trade and aggregate trade the market produced, in order.

Trade ids and aggregate ids are contiguous, so a lookup by id is an index computation.
Records and logs are kept out of the cyclic collector's work (``gc=False`` structs in
:class:`~rxconnector.testing.simulator.chunked.ChunkedLog`; see there why).
The tape is bounded (``trade_history``) so a long-running simulator does not grow
without limit; tests are far below the bound and see the full tape.
:class:`RollingWindow` keeps the statistics of the last N milliseconds of trades
incrementally (sums plus monotonic deques for high/low), which is what the 24 h ticker
and the 5 min average price need without rescanning the tape on every event.
"""

from __future__ import annotations

import bisect
from collections import deque
from decimal import Decimal

import msgspec

from rxconnector.testing.simulator.chunked import ChunkedLog

__all__ = ["RollingWindow", "SimAggTrade", "SimTrade", "TradeTape"]


class SimTrade(msgspec.Struct, frozen=True, gc=False):
    """One fill between a taker order and one maker order.

    Untracked by the cyclic collector (``gc=False``): a tape keeps up to a million of
    them per symbol, and as tracked objects every full pass of the collector walked all
    of them (measured: passes of 40-140 ms, growing with the tape, pausing the whole
    exchange). Its fields are strings, ints and Decimals, so it can never be part of a
    reference cycle, which is the condition for ``gc=False``.
    """

    symbol: str
    id: int
    price: Decimal
    qty: Decimal
    time: int  # ms, server clock
    taker_side: str  # "BUY" or "SELL"
    agg_id: int  # the aggregate trade this fill belongs to
    price_ticks: int
    qty_steps: int
    #: the book update that took this fill's liquidity (the level shrank by ``qty`` there)
    update_id: int = 0

    @property
    def buyer_is_maker(self) -> bool:
        """Binance's ``m``: true when the seller was the taker."""
        return self.taker_side == "SELL"

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


class SimAggTrade(msgspec.Struct, frozen=True, gc=False):
    """Fills of one taker order at one price (Binance's aggregate trade).

    Untracked by the cyclic collector, like :class:`SimTrade` (atoms only).
    """

    symbol: str
    id: int
    price: Decimal
    qty: Decimal
    first_trade_id: int
    last_trade_id: int
    time: int
    buyer_is_maker: bool
    price_ticks: int
    qty_steps: int
    #: the book update that took this aggregate's liquidity
    update_id: int = 0


def _trim(items: ChunkedLog[SimTrade] | ChunkedLog[SimAggTrade], bound: int) -> None:
    if len(items) > bound + bound // 10 + 1:
        items.drop_front(len(items) - bound)


class TradeTape:
    """Bounded, id-indexed logs of trades and aggregate trades of one symbol.

    Held in :class:`ChunkedLog`: with the records untracked (``gc=False``), the
    collector's full passes visit one tuple per thousand records, not every record.
    """

    __slots__ = ("_aggs", "_bound", "_trades")

    def __init__(self, bound: int) -> None:
        self._trades: ChunkedLog[SimTrade] = ChunkedLog()
        self._aggs: ChunkedLog[SimAggTrade] = ChunkedLog()
        self._bound = bound

    def add(self, trades: list[SimTrade], aggs: list[SimAggTrade]) -> None:
        self._trades.extend(trades)
        self._aggs.extend(aggs)
        _trim(self._trades, self._bound)
        _trim(self._aggs, self._bound)

    @property
    def trades(self) -> list[SimTrade]:
        """A copy of the kept trades, oldest first."""
        return list(self._trades)

    @property
    def aggs(self) -> list[SimAggTrade]:
        """A copy of the kept aggregate trades, oldest first."""
        return list(self._aggs)

    @property
    def last_trade(self) -> SimTrade | None:
        return self._trades[-1] if self._trades else None

    def recent_trades(self, limit: int) -> list[SimTrade]:
        return self._trades[-limit:] if limit > 0 else []

    def trades_from(self, from_id: int, limit: int) -> list[SimTrade]:
        if not self._trades:
            return []
        start = max(0, from_id - self._trades[0].id)
        return self._trades[start : start + limit]

    def recent_aggs(self, limit: int) -> list[SimAggTrade]:
        return self._aggs[-limit:] if limit > 0 else []

    def aggs_from(self, from_id: int, limit: int) -> list[SimAggTrade]:
        if not self._aggs:
            return []
        start = max(0, from_id - self._aggs[0].id)
        return self._aggs[start : start + limit]

    def aggs_between(self, start_ms: int, end_ms: int, limit: int) -> list[SimAggTrade]:
        lo = bisect.bisect_left(self._aggs, start_ms, key=lambda a: a.time)
        hi = bisect.bisect_right(self._aggs, end_ms, key=lambda a: a.time)
        return self._aggs[lo : min(hi, lo + limit)]

    def trades_between(self, start_ms: int, end_ms: int) -> list[SimTrade]:
        """Trades with ``start_ms <= time <= end_ms``."""
        lo = bisect.bisect_left(self._trades, start_ms, key=lambda t: t.time)
        hi = bisect.bisect_right(self._trades, end_ms, key=lambda t: t.time)
        return self._trades[lo:hi]

    def last_trade_before(self, time_ms: int) -> SimTrade | None:
        i = bisect.bisect_left(self._trades, time_ms, key=lambda t: t.time)
        return self._trades[i - 1] if i > 0 else None


class RollingWindow:
    """Statistics of the trades in the last ``window_ms`` milliseconds."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        # every trade of the window (24 h: all of a long run's): chunked, see TradeTape
        self._items: ChunkedLog[SimTrade] = ChunkedLog()
        self._max: deque[SimTrade] = deque()
        self._min: deque[SimTrade] = deque()
        self.volume = 0  # steps
        self.quote = 0  # ticks * steps
        #: price (ticks) of the last trade that left the window, if any
        self.prev_price: int | None = None

    def add(self, trade: SimTrade) -> None:
        self._items.append(trade)
        self.volume += trade.qty_steps
        self.quote += trade.qty_steps * trade.price_ticks
        while self._max and self._max[-1].price_ticks <= trade.price_ticks:
            self._max.pop()
        self._max.append(trade)
        while self._min and self._min[-1].price_ticks >= trade.price_ticks:
            self._min.pop()
        self._min.append(trade)

    def expire(self, now_ms: int) -> None:
        """Drop trades older than ``now_ms - window_ms``."""
        cutoff = now_ms - self.window_ms
        items = self._items
        while items and items[0].time < cutoff:
            old = items.popleft()
            self.volume -= old.qty_steps
            self.quote -= old.qty_steps * old.price_ticks
            self.prev_price = old.price_ticks
            if self._max and self._max[0] is old:
                self._max.popleft()
            if self._min and self._min[0] is old:
                self._min.popleft()

    @property
    def count(self) -> int:
        return len(self._items)

    @property
    def first(self) -> SimTrade | None:
        return self._items[0] if self._items else None

    @property
    def last(self) -> SimTrade | None:
        return self._items[-1] if self._items else None

    @property
    def high(self) -> int | None:
        return self._max[0].price_ticks if self._max else None

    @property
    def low(self) -> int | None:
        return self._min[0].price_ticks if self._min else None
