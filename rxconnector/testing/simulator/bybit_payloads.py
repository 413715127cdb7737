"""Bybit v5 market-data payloads built from the venue-agnostic market.

Key sets and value types follow PROTOCOL.md §C1/§C3 and the ``bybit.v5.*`` examples:
prices and sizes are strings with the instrument's own decimals (``"16493.50"``,
``"0.006"``), times are integer ms on WebSocket and strings in REST rows, ids are
strings. Spot and linear differ where Bybit's do: a linear trade carries a tick
direction ``L`` and a UUID trade id (Spot: a decimal string), linear tickers carry mark,
index, funding and best bid/ask (Spot: 24 h statistics only).

Pure: every builder takes the market (and, where a value depends on history the
market does not keep, that value) and returns a dict; the stateful parts (book windows,
ticker deltas, running candles) live in ``bybit_books`` and ``bybit_market``.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.klines import KlineAgg
from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.numbers import scaled
from rxconnector.testing.simulator.tape import SimTrade

__all__ = [
    "DayStats",
    "day_stats",
    "exec_id",
    "instrument_row",
    "kline_entry",
    "kline_row",
    "levels",
    "linear_ticker",
    "next_funding_ms",
    "orderbook_message",
    "price",
    "qty",
    "recent_trade_row",
    "rest_ticker_row",
    "spot_ticker",
    "trade_entry",
]

_HOUR_MS: Final = 3_600_000
_FUNDING_MS: Final = 8 * _HOUR_MS
#: Linear trade ids are UUIDs; derived from (symbol, id) so REST and WS agree.
_TRADE_NAMESPACE: Final = uuid.UUID("6f1d3c5e-9a4b-4c2d-8e7f-0a1b2c3d4e5f")
_SIDES: Final = {"BUY": "Buy", "SELL": "Sell"}


def price(m: SymbolMarket, ticks: int) -> str:
    """A price in ticks as Bybit writes it: the tick size's decimals (``"16493.50"``)."""
    return scaled(ticks, m.price_exp, 0)


def qty(m: SymbolMarket, steps: int) -> str:
    """A size in steps with the step size's decimals (``"0.006"``)."""
    return scaled(steps, m.qty_exp, 0)


def levels(m: SymbolMarket, pairs: list[tuple[int, int]]) -> list[list[str]]:
    pe, qe = m.price_exp, m.qty_exp
    return [[scaled(p, pe, 0), scaled(q, qe, 0)] for p, q in pairs]


def exec_id(category: str, symbol: str, trade_id: int) -> str:
    """The trade id Bybit would show: Spot decimal digits, linear a UUID (stable)."""
    if category == "spot":
        return str(trade_id)
    return str(uuid.uuid5(_TRADE_NAMESPACE, f"{symbol}:{trade_id}"))


def next_funding_ms(now: int) -> int:
    """The next 00/08/16 UTC funding time after ``now``."""
    return (now // _FUNDING_MS + 1) * _FUNDING_MS


# -- order book ----------------------------------------------------------------------------


def orderbook_message(
    m: SymbolMarket,
    topic: str,
    kind: str,
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    u: int,
    seq: int,
    ts: int,
    cts: int,
) -> dict[str, Any]:
    """``orderbook.{depth}.{symbol}`` snapshot or delta (``bybit.v5.ws.orderbook.*``)."""
    return {
        "topic": topic,
        "type": kind,
        "ts": ts,
        "data": {"s": m.symbol, "b": levels(m, bids), "a": levels(m, asks), "u": u, "seq": seq},
        "cts": cts,
    }


# -- trades ----------------------------------------------------------------------------------


def trade_entry(
    m: SymbolMarket, category: str, t: SimTrade, direction: str | None
) -> dict[str, Any]:
    """One element of a ``publicTrade`` message's ``data`` (``L`` on linear only)."""
    entry: dict[str, Any] = {
        "T": t.time,
        "s": m.symbol,
        "S": _SIDES[t.taker_side],
        "v": qty(m, t.qty_steps),
        "p": price(m, t.price_ticks),
    }
    if category != "spot" and direction is not None:
        entry["L"] = direction
    entry["i"] = exec_id(category, m.symbol, t.id)
    entry["BT"] = False
    entry["seq"] = t.update_id
    return entry


def recent_trade_row(m: SymbolMarket, category: str, t: SimTrade) -> dict[str, Any]:
    """A ``/v5/market/recent-trade`` row (``bybit.v5.rest.market.recent_trade``)."""
    return {
        "execId": exec_id(category, m.symbol, t.id),
        "symbol": m.symbol,
        "price": price(m, t.price_ticks),
        "size": qty(m, t.qty_steps),
        "side": _SIDES[t.taker_side],
        "time": str(t.time),
        "isBlockTrade": False,
        "isRPITrade": False,
        "seq": str(t.update_id),
    }


# -- tickers ---------------------------------------------------------------------------------


class DayStats:
    """24 h rolling statistics of one symbol as Bybit strings (WS and REST share them)."""

    __slots__ = ("high", "last", "last_ticks", "low", "pcnt_ratio", "prev", "turnover", "volume")

    def __init__(self, m: SymbolMarket, now: int) -> None:
        day = m.day
        day.expire(now)
        last_trade = m.tape.last_trade
        last = last_trade.price_ticks if last_trade else m.initial_ticks
        first = day.first
        prev = first.price_ticks if first else last
        self.last_ticks = last
        self.last = price(m, last)
        self.prev = price(m, prev)
        self.high = price(m, day.high if day.high is not None else last)
        self.low = price(m, day.low if day.low is not None else last)
        self.volume = qty(m, day.volume)
        self.turnover = scaled(day.quote, m.price_exp + m.qty_exp, 0)
        self.pcnt_ratio = Decimal(last - prev) / Decimal(prev) if prev else Decimal(0)

    def pcnt(self, decimals: int) -> str:
        """``price24hPcnt`` as a ratio (``"0.0196"`` = +1.96 %)."""
        return str(self.pcnt_ratio.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_EVEN))


def day_stats(m: SymbolMarket, now: int) -> DayStats:
    return DayStats(m, now)


def spot_ticker(m: SymbolMarket, now: int) -> dict[str, Any]:
    """The ``data`` of a Spot ``tickers`` snapshot (``bybit.v5.ws.tickers.spot``)."""
    st = day_stats(m, now)
    return {
        "symbol": m.symbol,
        "lastPrice": st.last,
        "highPrice24h": st.high,
        "lowPrice24h": st.low,
        "prevPrice24h": st.prev,
        "volume24h": st.volume,
        "turnover24h": st.turnover,
        "price24hPcnt": st.pcnt(4),
        "usdIndexPrice": st.last,
    }


def _top(m: SymbolMarket) -> tuple[tuple[int, int], tuple[int, int]]:
    return m.book.levels(BID, 1)[0], m.book.levels(ASK, 1)[0]


def linear_ticker(m: SymbolMarket, now: int, direction: str) -> dict[str, Any]:
    """The full ``data`` of a linear ``tickers`` snapshot
    (``bybit.v5.ws.tickers.linear_perpetual``). Mark = book mid on the tick grid, index
    = last price, a fixed funding rate; open interest is a constant of the symbol."""
    st = day_stats(m, now)
    (bid, bid_qty), (ask, ask_qty) = _top(m)
    mark = (bid + ask) // 2
    hour_ago = m.tape.last_trade_before(now - _HOUR_MS)
    oi_steps = m.lot * 5_000
    return {
        "symbol": m.symbol,
        "tickDirection": direction,
        "price24hPcnt": st.pcnt(6),
        "lastPrice": st.last,
        "prevPrice24h": st.prev,
        "highPrice24h": st.high,
        "lowPrice24h": st.low,
        "prevPrice1h": price(m, hour_ago.price_ticks if hour_ago else m.initial_ticks),
        "markPrice": price(m, mark),
        "indexPrice": st.last,
        "openInterest": qty(m, oi_steps),
        "openInterestValue": scaled(oi_steps * mark, m.price_exp + m.qty_exp, 0),
        "turnover24h": st.turnover,
        "volume24h": st.volume,
        "fundingIntervalHour": "8",
        "fundingCap": "0.005",
        "nextFundingTime": str(next_funding_ms(now)),
        "fundingRate": "0.0001",
        "bid1Price": price(m, bid),
        "bid1Size": qty(m, bid_qty),
        "ask1Price": price(m, ask),
        "ask1Size": qty(m, ask_qty),
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
    }


def rest_ticker_row(m: SymbolMarket, category: str, now: int, direction: str) -> dict[str, Any]:
    """A ``/v5/market/tickers`` row (``bybit.v5.rest.market.tickers.*``)."""
    if category == "spot":
        st = day_stats(m, now)
        (bid, bid_qty), (ask, ask_qty) = _top(m)
        return {
            "symbol": m.symbol,
            "bid1Price": price(m, bid),
            "bid1Size": qty(m, bid_qty),
            "ask1Price": price(m, ask),
            "ask1Size": qty(m, ask_qty),
            "lastPrice": st.last,
            "prevPrice24h": st.prev,
            "price24hPcnt": st.pcnt(4),
            "highPrice24h": st.high,
            "lowPrice24h": st.low,
            "turnover24h": st.turnover,
            "volume24h": st.volume,
            "usdIndexPrice": st.last,
        }
    row = linear_ticker(m, now, direction)
    del row["tickDirection"]
    row.update(
        predictedDeliveryPrice="",
        basisRate="",
        deliveryFeeRate="",
        deliveryTime="0",
        basis="",
        basisRateYear="",
    )
    return row


# -- klines ----------------------------------------------------------------------------------


def kline_entry(
    m: SymbolMarket, native: str, k: KlineAgg, confirm: bool, ts: int
) -> dict[str, Any]:
    """One candle of a ``kline.{interval}.{symbol}`` message (``bybit.v5.ws.kline``)."""
    return {
        "start": k.open_time,
        "end": k.close_time,
        "interval": native,
        "open": price(m, k.open),
        "close": price(m, k.close),
        "high": price(m, k.high),
        "low": price(m, k.low),
        "volume": qty(m, k.volume),
        "turnover": scaled(k.quote, m.price_exp + m.qty_exp, 0),
        "confirm": confirm,
        "timestamp": ts,
    }


def kline_row(m: SymbolMarket, k: KlineAgg) -> list[str]:
    """A ``/v5/market/kline`` row: ``[start, open, high, low, close, volume, turnover]``."""
    return [
        str(k.open_time),
        price(m, k.open),
        price(m, k.high),
        price(m, k.low),
        price(m, k.close),
        qty(m, k.volume),
        scaled(k.quote, m.price_exp + m.qty_exp, 0),
    ]


# -- instruments -----------------------------------------------------------------------------


def instrument_row(m: SymbolMarket, category: str) -> dict[str, Any]:
    """A ``/v5/market/instruments-info`` row (BY ``market/instrument.mdx``)."""
    spec = m.spec
    tick, step = price(m, 1), qty(m, 1)
    max_qty = qty(m, m.lot * 10_000)
    if category == "spot":
        return {
            "symbol": spec.symbol,
            "baseCoin": spec.base_asset,
            "quoteCoin": spec.quote_asset,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "none",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": step,
                "quotePrecision": "0.00000001",
                "minOrderQty": step,
                "maxOrderQty": max_qty,
                "minOrderAmt": "5",
                "maxOrderAmt": "2000000",
                "maxLimitOrderQty": max_qty,
                "maxMarketOrderQty": qty(m, m.lot * 1_000),
            },
            "priceFilter": {"tickSize": tick},
            "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
        }
    return {
        "symbol": spec.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": spec.base_asset,
        "quoteCoin": spec.quote_asset,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(m.price_exp),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {
            "minPrice": tick,
            "maxPrice": price(m, m.initial_ticks * 100),
            "tickSize": tick,
        },
        "lotSizeFilter": {
            "maxOrderQty": max_qty,
            "minOrderQty": step,
            "qtyStep": step,
            "postOnlyMaxOrderQty": max_qty,
            "maxMktOrderQty": qty(m, m.lot * 1_000),
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": spec.quote_asset,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
    }
