"""Klines (candles) from the trade tape, and synthetic history before the market began.

A kline for a bucket the simulated market has lived through is computed from the tape,
so REST klines, WS klines and the trade tape agree. Buckets entirely before the market
started are synthesised from a hash of (seed, symbol, interval, open time): any past
range can be paged through and the same request always returns the same candles, which
is what a client's pagination code needs to be tested against.
Bucket alignment follows Binance: epoch-aligned, weeks start on Monday 00:00 UTC,
months are calendar months (PROTOCOL.md §A1.3 lists the intervals).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime

import attrs

from rxconnector.testing.simulator.tape import SimTrade

__all__ = [
    "INTERVALS",
    "KlineAgg",
    "KlineTracker",
    "bucket_close",
    "bucket_open",
    "kline_from_trades",
    "next_open",
    "prev_open",
    "synthetic_kline",
]

_S = 1000
_M = 60 * _S
_H = 60 * _M
_D = 24 * _H
#: Fixed-width intervals in ms; "1M" (calendar month) is handled separately.
_WIDTH = {
    "1s": _S,
    "1m": _M,
    "3m": 3 * _M,
    "5m": 5 * _M,
    "15m": 15 * _M,
    "30m": 30 * _M,
    "1h": _H,
    "2h": 2 * _H,
    "4h": 4 * _H,
    "6h": 6 * _H,
    "8h": 8 * _H,
    "12h": 12 * _H,
    "1d": _D,
    "3d": 3 * _D,
    "1w": 7 * _D,
}
INTERVALS: tuple[str, ...] = (*_WIDTH, "1M")
_MONDAY = 4 * _D  # 1970-01-05 was the first Monday after the epoch


def _month_index(t_ms: int) -> int:
    d = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    return d.year * 12 + d.month - 1


def _month_start(index: int) -> int:
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def bucket_open(interval: str, t_ms: int) -> int:
    """Open time of the bucket of ``interval`` containing ``t_ms``."""
    if interval == "1M":
        return _month_start(_month_index(t_ms))
    width = _WIDTH[interval]
    if interval == "1w":
        return (t_ms - _MONDAY) // width * width + _MONDAY
    return t_ms // width * width


def next_open(interval: str, open_ms: int) -> int:
    """Open time of the bucket after the one opening at ``open_ms``."""
    if interval == "1M":
        return _month_start(_month_index(open_ms) + 1)
    return open_ms + _WIDTH[interval]


def prev_open(interval: str, open_ms: int) -> int:
    """Open time of the bucket before the one opening at ``open_ms``."""
    if interval == "1M":
        return _month_start(_month_index(open_ms) - 1)
    return open_ms - _WIDTH[interval]


def bucket_close(interval: str, open_ms: int) -> int:
    """Close time (inclusive, ms) of the bucket opening at ``open_ms``."""
    return next_open(interval, open_ms) - 1


@attrs.define(slots=True)
class KlineAgg:
    """One candle in integer units (price ticks, quantity steps, quote = ticks*steps)."""

    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote: int = 0
    taker_buy_volume: int = 0
    taker_buy_quote: int = 0
    count: int = 0
    first_id: int = -1
    last_id: int = -1

    def add(self, trade: SimTrade) -> None:
        p = trade.price_ticks
        if self.count == 0:
            self.open = self.high = self.low = p
            self.first_id = trade.id
        self.high = max(self.high, p)
        self.low = min(self.low, p)
        self.close = p
        self.last_id = trade.id
        self.count += 1
        self.volume += trade.qty_steps
        self.quote += trade.qty_steps * p
        if trade.taker_side == "BUY":
            self.taker_buy_volume += trade.qty_steps
            self.taker_buy_quote += trade.qty_steps * p


def kline_from_trades(
    interval: str, open_ms: int, trades: Iterable[SimTrade], prev_close: int
) -> KlineAgg:
    """The candle of one bucket from its trades; an empty bucket is flat at ``prev_close``."""
    k = KlineAgg(
        open_ms, bucket_close(interval, open_ms), prev_close, prev_close, prev_close, prev_close
    )
    for trade in trades:
        k.add(trade)
    return k


def _synthetic_price(seed: int, symbol: str, t_ms: int, anchor: int, start_ms: int) -> float:
    """A deterministic price path: a slow 30-day wave with small per-instant noise,
    scaled so that it passes through ``anchor`` at ``start_ms`` (where the live market
    takes over). Keyed on time only, so every interval agrees at shared boundaries."""

    def wave(t: int) -> float:
        return 1 + 0.05 * math.sin(t / (30 * _D) * 2 * math.pi)

    noise = random.Random(f"kline:{seed}:{symbol}:{t_ms}").gauss(0, 0.002)
    return anchor * wave(t_ms) / wave(start_ms) * math.exp(noise)


def synthetic_kline(
    seed: int,
    symbol: str,
    interval: str,
    open_ms: int,
    anchor_ticks: int,
    lot_steps: int,
    start_ms: int,
) -> KlineAgg:
    """A deterministic, plausible candle for a bucket before the market started."""
    close_ms = bucket_close(interval, open_ms)
    o = max(1, round(_synthetic_price(seed, symbol, open_ms, anchor_ticks, start_ms)))
    c = max(1, round(_synthetic_price(seed, symbol, close_ms + 1, anchor_ticks, start_ms)))
    rng = random.Random(f"kline:{seed}:{symbol}:{interval}:{open_ms}")
    width_days = (close_ms + 1 - open_ms) / _D
    spread = anchor_ticks * 0.01 * math.sqrt(width_days)
    h = max(o, c) + round(abs(rng.gauss(0, spread)))
    lo = max(1, min(o, c) - round(abs(rng.gauss(0, spread))))
    count = rng.randint(1, max(2, int(width_days * 100_000)))
    lots = sum(rng.randint(1, lot_steps) for _ in range(min(count, 50)))
    volume = lots * max(1, count // 50)
    taker = volume * rng.randint(30, 70) // 100
    mid = (o + c) // 2
    return KlineAgg(open_ms, close_ms, o, h, lo, c, volume, volume * mid, taker, taker * mid, count)


class KlineTracker:
    """The running candle of one (symbol, interval), fed trade by trade.

    :meth:`poll` returns the candles that closed since the last poll (``closed`` ones,
    sent once with ``x: true``) followed by the current one.
    """

    def __init__(self, interval: str, now_ms: int, trades: Iterable[SimTrade], prev: int) -> None:
        self.interval = interval
        self.current = kline_from_trades(interval, bucket_open(interval, now_ms), trades, prev)
        self._closed: list[KlineAgg] = []

    def _roll(self, t_ms: int) -> None:
        cur = self.current
        if t_ms > cur.close_time:
            self._closed.append(cur)
            del self._closed[:-10]  # nobody polled for a while: keep the latest few
            o = bucket_open(self.interval, t_ms)
            p = cur.close
            self.current = KlineAgg(o, bucket_close(self.interval, o), p, p, p, p)

    def add(self, trade: SimTrade) -> None:
        self._roll(trade.time)
        self.current.add(trade)

    def poll(self, now_ms: int) -> tuple[list[KlineAgg], KlineAgg]:
        self._roll(now_ms)
        closed, self._closed = self._closed, []
        return closed, self.current
