"""The stateful parts of Bybit's public topics that the venue-agnostic market lacks.

* :class:`TickDirections`: Bybit's ``tickDirection`` / trade ``L`` (``PlusTick``,
  ``ZeroPlusTick``, ``MinusTick``, ``ZeroMinusTick``), which depends on the previous
  trade of the symbol.
* :class:`LinearTickers`: linear ``tickers`` are a snapshot followed by deltas that
  carry only the changed fields (PROTOCOL.md §C1). The last full ticker sent is kept
  per symbol while anybody is subscribed; a new subscriber's snapshot is that same
  state, so every subscriber's merged ticker equals the next delta's base.
* :class:`SpotTickers`: Spot tickers are snapshot-only; one is sent when a field
  changed.
* :class:`KlineTrackers`: the running candle per (symbol, interval), fed trade by trade
  from the tick events. Separate from the market's own trackers, which the Binance
  dialect polls: a candle that closes is then reported once on each venue.
"""

from __future__ import annotations

from typing import Any, Final

from rxconnector.testing.simulator.klines import KlineAgg, KlineTracker, bucket_open
from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.tape import SimTrade

__all__ = ["KlineTrackers", "LinearTickers", "SpotTickers", "TickDirections"]

_UP: Final = ("PlusTick", "ZeroPlusTick")


class TickDirections:
    """The tick direction of every trade, per symbol."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, str]] = {}

    def observe(self, symbol: str, trades: tuple[SimTrade, ...]) -> list[str]:
        """Directions of ``trades`` (in order); remembers the last for the next tick."""
        out: list[str] = []
        last = self._last.get(symbol)
        for t in trades:
            p = t.price_ticks
            if last is None:
                direction = "ZeroPlusTick"
            elif p > last[0]:
                direction = "PlusTick"
            elif p < last[0]:
                direction = "MinusTick"
            else:
                direction = "ZeroPlusTick" if last[1] in _UP else "ZeroMinusTick"
            last = (p, direction)
            out.append(direction)
        if last is not None:
            self._last[symbol] = last
        return out

    def current(self, symbol: str) -> str:
        last = self._last.get(symbol)
        return last[1] if last is not None else "ZeroPlusTick"


class LinearTickers:
    """Full linear tickers as last sent, per symbol (only while subscribed)."""

    def __init__(self) -> None:
        self._last: dict[str, dict[str, Any]] = {}

    def snapshot(self, symbol: str, build: Any) -> dict[str, Any]:
        """The state a new subscriber starts from (``build()`` makes it if none yet)."""
        last = self._last.get(symbol)
        if last is None:
            last = self._last[symbol] = build()
        return dict(last)

    def delta(self, symbol: str, full: dict[str, Any]) -> dict[str, Any] | None:
        """The fields of ``full`` that differ from the last state (with ``symbol``), or
        ``None`` when nothing changed; ``full`` becomes the state."""
        last = self._last.get(symbol)
        self._last[symbol] = full
        if last is None:
            return full
        changed = {k: v for k, v in full.items() if last.get(k) != v}
        if not changed:
            return None
        return {"symbol": symbol, **changed}

    def tracking(self, symbol: str) -> bool:
        return symbol in self._last

    def forget(self, symbol: str) -> None:
        self._last.pop(symbol, None)


class SpotTickers:
    """The last Spot ticker sent per symbol, to send a snapshot only on change."""

    def __init__(self) -> None:
        self._last: dict[str, dict[str, Any]] = {}

    def changed(self, symbol: str, ticker: dict[str, Any]) -> bool:
        if self._last.get(symbol) == ticker:
            return False
        self._last[symbol] = ticker
        return True

    def forget(self, symbol: str) -> None:
        self._last.pop(symbol, None)


class KlineTrackers:
    """Running candles per (symbol, simulator interval), created on first subscription."""

    def __init__(self) -> None:
        self._trackers: dict[str, dict[str, KlineTracker]] = {}

    def ensure(self, m: SymbolMarket, interval: str) -> None:
        """Start tracking ``interval`` for ``m`` from the trades already on the tape."""
        by_interval = self._trackers.setdefault(m.symbol, {})
        if interval in by_interval:
            return
        now = m.now_ms
        open_ms = bucket_open(interval, now)
        prev = m.tape.last_trade_before(open_ms)
        by_interval[interval] = KlineTracker(
            interval,
            now,
            m.tape.trades_between(open_ms, now),
            prev.price_ticks if prev else m.initial_ticks,
        )

    def observe(self, symbol: str, trades: tuple[SimTrade, ...]) -> None:
        for tracker in self._trackers.get(symbol, {}).values():
            for trade in trades:
                tracker.add(trade)

    def poll(self, symbol: str, interval: str, now: int) -> tuple[list[KlineAgg], KlineAgg]:
        """(candles closed since the last poll, the running one)."""
        return self._trackers[symbol][interval].poll(now)

    def current(self, symbol: str, interval: str) -> KlineAgg | None:
        tracker = self._trackers.get(symbol, {}).get(interval)
        return tracker.current if tracker is not None else None
