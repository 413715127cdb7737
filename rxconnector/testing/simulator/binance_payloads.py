"""Binance Spot market-data payloads built from the venue-agnostic market.

Key sets and value types follow PROTOCOL.md §A1.4 and the ``binance.spot.ws.*`` /
``binance.spot.rest.*`` examples exactly: prices and quantities are 8-decimal strings,
ids and times are integers. The futures dialect can subclass :class:`SpotPayloads` and
override what differs (``depthUpdate`` with ``T``/``pu``, ...).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.klines import KlineAgg
from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.numbers import scaled
from rxconnector.testing.simulator.tape import SimAggTrade, SimTrade

__all__ = ["SpotPayloads", "TickerStats", "ticker_stats"]

_E8 = Decimal("1e-8")
_E3 = Decimal("0.001")
_DAY_MS = 86_400_000
#: the ``@trade`` payload exactly as ``orjson.dumps(SpotPayloads.trade(...))`` writes it
_TRADE_JSON = b'{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%s","q":"%s","T":%d,"m":%s,"M":true}'


def _levels(m: SymbolMarket, side: list[tuple[int, int]]) -> list[list[str]]:
    pe, qe = m.price_exp, m.qty_exp
    return [[scaled(p, pe), scaled(q, qe)] for p, q in side]


class TickerStats:
    """24 h rolling statistics of one symbol as Binance strings (shared by WS and REST)."""

    __slots__ = (
        "change",
        "change_pct",
        "close_time",
        "count",
        "first_id",
        "high",
        "last",
        "last_qty",
        "low",
        "open",
        "open_time",
        "prev_close",
        "quote_volume",
        "volume",
        "vwap",
    )  # fmt: skip

    def __init__(self, m: SymbolMarket, now: int) -> None:
        day = m.day
        day.expire(now)
        pe, qe = m.price_exp, m.qty_exp
        last_trade = m.tape.last_trade
        last = last_trade.price_ticks if last_trade else m.initial_ticks
        first = day.first
        open_ = first.price_ticks if first else last
        self.open = scaled(open_, pe)
        self.high = scaled(day.high if day.high is not None else last, pe)
        self.low = scaled(day.low if day.low is not None else last, pe)
        self.last = scaled(last, pe)
        self.last_qty = scaled(last_trade.qty_steps if last_trade else 0, qe)
        prev = day.prev_price if day.prev_price is not None else m.initial_ticks
        self.prev_close = scaled(prev, pe)
        self.change = scaled(last - open_, pe)
        pct = Decimal(last - open_) / Decimal(open_) * 100 if open_ else Decimal(0)
        self.change_pct = str(pct.quantize(_E3, ROUND_HALF_EVEN))
        self.volume = scaled(day.volume, qe)
        self.quote_volume = scaled(day.quote, pe + qe)
        if day.volume:
            vwap = (Decimal(day.quote) / Decimal(day.volume)).scaleb(-pe)
            self.vwap = str(vwap.quantize(_E8, ROUND_HALF_EVEN))
        else:
            self.vwap = scaled(0, pe)
        self.open_time = now - _DAY_MS
        self.close_time = now
        self.first_id = first.id if first else -1
        self.count = day.count


def ticker_stats(m: SymbolMarket, now: int) -> TickerStats:
    return TickerStats(m, now)


class SpotPayloads:
    """Builders for every Binance Spot market-data payload the simulator serves."""

    def trade(self, m: SymbolMarket, t: SimTrade, event_time: int) -> dict[str, Any]:
        return {
            "e": "trade",
            "E": event_time,
            "s": m.symbol,
            "t": t.id,
            "p": scaled(t.price_ticks, m.price_exp),
            "q": scaled(t.qty_steps, m.qty_exp),
            "T": t.time,
            "m": t.buyer_is_maker,
            "M": True,
        }

    def trade_json(self, m: SymbolMarket, t: SimTrade, event_time: int) -> bytes:
        """:meth:`trade`, already encoded: the same bytes ``orjson`` writes for it.

        The ``@trade`` stream sends one frame per trade, the simulator's largest frame
        count; formatting the bytes directly skips building a dict only to encode it
        (symbols are upper-case alphanumeric and the numbers are digit strings, so
        nothing needs escaping; ``test_fast_paths`` compares both on a market run).
        """
        return _TRADE_JSON % (
            event_time,
            m.symbol.encode(),
            t.id,
            scaled(t.price_ticks, m.price_exp).encode(),
            scaled(t.qty_steps, m.qty_exp).encode(),
            t.time,
            b"true" if t.taker_side == "SELL" else b"false",
        )

    def agg_trade(self, m: SymbolMarket, a: SimAggTrade, event_time: int) -> dict[str, Any]:
        return {
            "e": "aggTrade",
            "E": event_time,
            "s": m.symbol,
            "a": a.id,
            "p": scaled(a.price_ticks, m.price_exp),
            "q": scaled(a.qty_steps, m.qty_exp),
            "f": a.first_trade_id,
            "l": a.last_trade_id,
            "T": a.time,
            "m": a.buyer_is_maker,
            "M": True,
        }

    def depth_update(
        self,
        m: SymbolMarket,
        first_id: int,
        last_id: int,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        event_time: int,
    ) -> dict[str, Any]:
        return {
            "e": "depthUpdate",
            "E": event_time,
            "s": m.symbol,
            "U": first_id,
            "u": last_id,
            "b": _levels(m, bids),
            "a": _levels(m, asks),
        }

    def partial_depth(self, m: SymbolMarket, levels: int) -> dict[str, Any]:
        return {
            "lastUpdateId": m.book.update_id,
            "bids": _levels(m, m.book.levels(BID, levels)),
            "asks": _levels(m, m.book.levels(ASK, levels)),
        }

    def partial_depth_event(self, m: SymbolMarket, levels: int, event_time: int) -> dict[str, Any]:
        """The ``@depthN`` stream payload (Spot: the same object as the REST snapshot)."""
        return self.partial_depth(m, levels)

    def mark_price(self, m: SymbolMarket, event_time: int) -> dict[str, Any]:
        raise NotImplementedError("Binance Spot has no mark price")

    def force_order(
        self, m: SymbolMarket, aggs: tuple[SimAggTrade, ...], event_time: int
    ) -> dict[str, Any] | None:
        raise NotImplementedError("Binance Spot has no liquidation stream")

    def book_ticker(self, m: SymbolMarket) -> dict[str, Any]:
        (bp, bq), (ap, aq) = m.book.levels(BID, 1)[0], m.book.levels(ASK, 1)[0]
        pe, qe = m.price_exp, m.qty_exp
        return {
            "u": m.book.update_id,
            "s": m.symbol,
            "b": scaled(bp, pe),
            "B": scaled(bq, qe),
            "a": scaled(ap, pe),
            "A": scaled(aq, qe),
        }

    def ticker(self, m: SymbolMarket, event_time: int) -> dict[str, Any]:
        st = ticker_stats(m, event_time)
        top = self.book_ticker(m)
        return {
            "e": "24hrTicker",
            "E": event_time,
            "s": m.symbol,
            "p": st.change,
            "P": st.change_pct,
            "w": st.vwap,
            "x": st.prev_close,
            "c": st.last,
            "Q": st.last_qty,
            "b": top["b"],
            "B": top["B"],
            "a": top["a"],
            "A": top["A"],
            "o": st.open,
            "h": st.high,
            "l": st.low,
            "v": st.volume,
            "q": st.quote_volume,
            "O": st.open_time,
            "C": st.close_time,
            "F": st.first_id,
            "L": st.first_id + st.count - 1 if st.count else -1,
            "n": st.count,
        }

    def mini_ticker(self, m: SymbolMarket, event_time: int) -> dict[str, Any]:
        st = ticker_stats(m, event_time)
        return {
            "e": "24hrMiniTicker",
            "E": event_time,
            "s": m.symbol,
            "c": st.last,
            "o": st.open,
            "h": st.high,
            "l": st.low,
            "v": st.volume,
            "q": st.quote_volume,
        }

    def avg_price_value(self, m: SymbolMarket, now: int) -> tuple[str, int]:
        """(5-minute volume-weighted average price, time of the last trade)."""
        win = m.avg_window
        win.expire(now)
        last = m.tape.last_trade
        if win.volume:
            avg = (Decimal(win.quote) / Decimal(win.volume)).scaleb(-m.price_exp)
            price = str(avg.quantize(_E8, ROUND_HALF_EVEN))
        else:
            price = scaled(m.last_price_ticks(), m.price_exp)
        return price, last.time if last else now

    def avg_price(self, m: SymbolMarket, event_time: int) -> dict[str, Any]:
        price, last_time = self.avg_price_value(m, event_time)
        return {
            "e": "avgPrice",
            "E": event_time,
            "s": m.symbol,
            "i": "5m",
            "w": price,
            "T": last_time,
        }

    def kline(
        self, m: SymbolMarket, interval: str, k: KlineAgg, closed: bool, event_time: int
    ) -> dict[str, Any]:
        pe, qe = m.price_exp, m.qty_exp
        return {
            "e": "kline",
            "E": event_time,
            "s": m.symbol,
            "k": {
                "t": k.open_time,
                "T": k.close_time,
                "s": m.symbol,
                "i": interval,
                "f": k.first_id,
                "L": k.last_id,
                "o": scaled(k.open, pe),
                "c": scaled(k.close, pe),
                "h": scaled(k.high, pe),
                "l": scaled(k.low, pe),
                "v": scaled(k.volume, qe),
                "n": k.count,
                "x": closed,
                "q": scaled(k.quote, pe + qe),
                "V": scaled(k.taker_buy_volume, qe),
                "Q": scaled(k.taker_buy_quote, pe + qe),
                "B": "0",
            },
        }

    def kline_row(self, m: SymbolMarket, k: KlineAgg) -> list[Any]:
        """The REST ``/klines`` array-of-arrays row (PROTOCOL.md §A2.4)."""
        pe, qe = m.price_exp, m.qty_exp
        return [
            k.open_time,
            scaled(k.open, pe),
            scaled(k.high, pe),
            scaled(k.low, pe),
            scaled(k.close, pe),
            scaled(k.volume, qe),
            k.close_time,
            scaled(k.quote, pe + qe),
            k.count,
            scaled(k.taker_buy_volume, qe),
            scaled(k.taker_buy_quote, pe + qe),
            "0",
        ]

    def server_shutdown(self, event_time: int) -> dict[str, Any]:
        return {"e": "serverShutdown", "E": event_time}
