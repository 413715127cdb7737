"""Binance USD-M futures dialect: routed ``/public`` and ``/market`` streams, ``/fapi/v1``.

What differs from Spot (PROTOCOL.md §B), on the same venue-agnostic market:

* Streams live under routed paths: ``/public/ws|stream`` carries depth, partial depth
  and bookTicker; ``/market/ws|stream`` carries aggTrade, markPrice, kline, tickers and
  forceOrder. A stream subscribed on the wrong route is accepted and pushes nothing, as
  Binance documents it ("silently push nothing").
* ``depthUpdate`` adds ``T`` (transaction time) and ``pu`` (final update id of the
  previous event). The simulator's ids are contiguous, so ``pu == U - 1``; a dropped or
  stalled event therefore shows up to a client as ``pu != previous u``.
* Partial depth is sent as a ``depthUpdate``-shaped object with the top N levels.
* ``markPriceUpdate``: mark = book mid, index = last trade price, a fixed funding rate,
  next funding at the next 00/08/16 UTC boundary.
* ``forceOrder``: the simulator reports an aggregate trade as a liquidation when its id
  is a multiple of 7 (deterministic, occasional; at most one per symbol per period, as
  Binance sends only the latest per 1000 ms).
* Limits: ping every 3 min, pong within 10 min, 10 incoming messages/s, 1024 streams;
  REST weight 2400/min; ``/fapi/v1/depth`` limits 5..1000 with weights 2/5/10/20.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rxconnector.testing.simulator.accounts import Account, Accounts
from rxconnector.testing.simulator.binance_http import ApiError, int_param, mandatory
from rxconnector.testing.simulator.binance_payloads import SpotPayloads
from rxconnector.testing.simulator.binance_rest import BinanceSpotRest, Endpoint
from rxconnector.testing.simulator.binance_streams import FUTURES_KINDS, StreamKey
from rxconnector.testing.simulator.binance_ws import BinanceStreamServer
from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.connection import ConnectionPolicy
from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.numbers import scaled
from rxconnector.testing.simulator.state import SimState
from rxconnector.testing.simulator.tape import SimAggTrade

__all__ = ["FuturesPayloads", "BinanceFuturesRest", "futures_stream_servers"]

_PUBLIC_KINDS = frozenset({"depth", "partialDepth", "bookTicker"})
_FUNDING_MS = 8 * 3_600_000
_DEPTH_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
_E8 = Decimal("1e-8")


class FuturesPayloads(SpotPayloads):
    """USD-M payloads: Spot's plus ``T``/``pu`` on depth, mark price and liquidations."""

    def depth_update(
        self,
        m: SymbolMarket,
        first_id: int,
        last_id: int,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        event_time: int,
    ) -> dict[str, Any]:
        spot = super().depth_update(m, first_id, last_id, bids, asks, event_time)
        return {
            "e": "depthUpdate",
            "E": event_time,
            "T": event_time,
            "s": m.symbol,
            "U": first_id,
            "u": last_id,
            "pu": first_id - 1,
            "b": spot["b"],
            "a": spot["a"],
        }

    def partial_depth_event(self, m: SymbolMarket, levels: int, event_time: int) -> dict[str, Any]:
        uid = m.book.update_id
        return self.depth_update(
            m, uid, uid, m.book.levels(BID, levels), m.book.levels(ASK, levels), event_time
        )

    def mark_price(self, m: SymbolMarket, event_time: int) -> dict[str, Any]:
        (bid, _), (ask, _) = m.book.levels(BID, 1)[0], m.book.levels(ASK, 1)[0]
        mark = (Decimal(bid + ask) / 2).scaleb(-m.price_exp).quantize(_E8, ROUND_HALF_EVEN)
        index = scaled(m.last_price_ticks(), m.price_exp)
        return {
            "e": "markPriceUpdate",
            "E": event_time,
            "s": m.symbol,
            "p": str(mark),
            "i": index,
            "P": index,
            "r": "0.00010000",
            "T": (event_time // _FUNDING_MS + 1) * _FUNDING_MS,
        }

    def force_order(
        self, m: SymbolMarket, aggs: tuple[SimAggTrade, ...], event_time: int
    ) -> dict[str, Any] | None:
        picked = [a for a in aggs if a.id % 7 == 0]
        if not picked:
            return None
        a = picked[-1]
        price, qty = scaled(a.price_ticks, m.price_exp), scaled(a.qty_steps, m.qty_exp)
        return {
            "e": "forceOrder",
            "E": event_time,
            "o": {
                "s": m.symbol,
                "S": "SELL" if a.buyer_is_maker else "BUY",
                "o": "LIMIT",
                "f": "IOC",
                "q": qty,
                "p": price,
                "ap": price,
                "X": "FILLED",
                "l": qty,
                "z": qty,
                "T": a.time,
            },
        }


def futures_stream_servers(
    state: SimState, payloads: FuturesPayloads | None = None
) -> list[BinanceStreamServer]:
    """The ``/public`` and ``/market`` stream endpoints."""
    cfg = state.config
    policy = ConnectionPolicy(
        ping_interval=cfg.futures_ping_interval,
        pong_timeout=cfg.futures_pong_timeout,
        max_messages_per_second=cfg.futures_max_messages_per_second,
        lifetime=cfg.connection_lifetime,
        max_pending_frames=cfg.max_pending_frames,
        close_timeout=cfg.ws_close_timeout,
    )
    payloads = payloads or FuturesPayloads()

    def public(key: StreamKey) -> bool:
        return key.kind in _PUBLIC_KINDS

    def market(key: StreamKey) -> bool:
        return key.kind not in _PUBLIC_KINDS

    return [
        BinanceStreamServer(
            state, payloads, prefix=prefix, policy=policy, kinds=FUTURES_KINDS, serves=serves
        )
        for prefix, serves in (("/public", public), ("/market", market))
    ]


class BinanceFuturesRest(BinanceSpotRest):
    """``/fapi/v1`` market data (ping, time, exchangeInfo, depth, aggTrades, klines,
    premiumIndex), through the same wrapper as Spot (faults, weights, errors)."""

    def __init__(self, state: SimState, accounts: Accounts) -> None:
        super().__init__(
            state,
            accounts,
            FuturesPayloads(),
            prefix="/fapi/v1",
            weight_limit=state.config.futures_weight_limit,
        )

    def _endpoints(self) -> list[Endpoint]:
        sym = frozenset({"symbol"})
        klines = sym | {"interval", "startTime", "endTime", "limit"}
        return [
            Endpoint("GET", "/ping", self._ping, lambda p: 1, frozenset()),
            Endpoint("GET", "/time", self._time, lambda p: 1, frozenset()),
            Endpoint("GET", "/exchangeInfo", self._futures_info, lambda p: 1, frozenset()),
            Endpoint("GET", "/depth", self._futures_depth, self._depth_weight, sym | {"limit"}),
            Endpoint(
                "GET",
                "/aggTrades",
                self._agg_trades,
                lambda p: 20,
                sym | {"fromId", "startTime", "endTime", "limit"},
            ),
            Endpoint("GET", "/klines", self._futures_klines, self._klines_weight, klines),
            Endpoint("GET", "/premiumIndex", self._premium_index, lambda p: 1, sym),
        ]

    @staticmethod
    def _depth_weight(params: dict[str, str]) -> int:
        limit = int_param(params, "limit", 500) or 500
        return _DEPTH_LIMITS.get(limit, 20)

    @staticmethod
    def _klines_weight(params: dict[str, str]) -> int:
        limit = int_param(params, "limit", 500) or 500
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def _futures_depth(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        m = self._market(params)
        limit = int_param(params, "limit", 500) or 500
        if limit not in _DEPTH_LIMITS:
            raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        snap = self._payloads.partial_depth(m, limit)
        return {
            "lastUpdateId": snap["lastUpdateId"],
            "E": now,
            "T": m.now_ms,
            "bids": snap["bids"],
            "asks": snap["asks"],
        }

    def _futures_klines(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        return self._kline_rows(params, 1500)  # USD-M pages hold up to 1500 candles

    def _premium_index(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        if not params.get("symbol"):
            raise mandatory("symbol")
        m = self._market(params)
        mark = self._payloads.mark_price(m, now)
        return {
            "symbol": m.symbol,
            "markPrice": mark["p"],
            "indexPrice": mark["i"],
            "estimatedSettlePrice": mark["P"],
            "lastFundingRate": mark["r"],
            "interestRate": "0.00010000",
            "nextFundingTime": mark["T"],
            "time": now,
        }

    def _futures_info(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        symbols = []
        for m in self._state.market.symbols.values():
            spec = m.spec
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "pair": spec.symbol,
                    "contractType": "PERPETUAL",
                    "status": "TRADING",
                    "baseAsset": spec.base_asset,
                    "quoteAsset": spec.quote_asset,
                    "marginAsset": spec.quote_asset,
                    "pricePrecision": m.price_exp,
                    "quantityPrecision": m.qty_exp,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": scaled(1, m.price_exp),
                            "maxPrice": scaled(m.initial_ticks * 100, m.price_exp),
                            "tickSize": scaled(1, m.price_exp),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": scaled(1, m.qty_exp),
                            "maxQty": scaled(m.lot * 10_000, m.qty_exp),
                            "stepSize": scaled(1, m.qty_exp),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": scaled(1, m.qty_exp),
                            "maxQty": scaled(m.lot * 1_000, m.qty_exp),
                            "stepSize": scaled(1, m.qty_exp),
                        },
                        {"filterType": "MIN_NOTIONAL", "notional": "5"},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.limit,
                }
            ],
            "exchangeFilters": [],
            "assets": [],
            "symbols": symbols,
        }
