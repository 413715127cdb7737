"""Binance USD-M's REST plans against documented payloads, served on 127.0.0.1, through the
real transport, weight limiter and HMAC signing.

Bodies not in examples.json follow the USD-M docs' response examples (developers.binance.com
``usds-margined-futures``: Exchange Information, Recent Trades List, Compressed/Aggregate
Trades List, 24hr Ticker, New Order, Query Order, Futures Account Balance V3).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import math
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import (
    ExchangeError,
    NotSupportedError,
    OrderRejectedError,
    OrderStatusUnknownError,
)
from rxconnector.exchanges.binance.futures_endpoints import (
    DEPTH_LIMITS,
    depth_weight,
    klines_weight,
)
from rxconnector.exchanges.binance.futures_plans import BinanceFuturesPlans
from rxconnector.exchanges.binance.spot_plans import BinanceSpotPlans
from rxconnector.exchanges.rest_plan import Call
from rxconnector.models import Order, SymbolInfo
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rest.planned import PlannedRest
from rxconnector.transport.http import HttpTransport

from .conftest import (
    API_KEY,
    SECRET,
    FakeExchange,
    Reply,
    Seen,
    StepClock,
    binance_client,
    binance_futures_rest,
    rules_known,
)

NOW = 1_700_000_000_000
D = Decimal
ORDER = "/fapi/v1/order"

#: The USD-M docs' exchangeInfo example (one symbol, rate limits).
EXCHANGE_INFO = {
    "exchangeFilters": [],
    "rateLimits": [
        {"interval": "MINUTE", "intervalNum": 1, "limit": 2400, "rateLimitType": "REQUEST_WEIGHT"},
        {"interval": "MINUTE", "intervalNum": 1, "limit": 1200, "rateLimitType": "ORDERS"},
    ],
    "serverTime": 1565613908500,
    "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
    "symbols": [
        {
            "symbol": "BLZUSDT",
            "pair": "BLZUSDT",
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1598252400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": "BLZ",
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": 5,
            "quantityPrecision": 0,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": ["STORAGE"],
            "settlePlan": 0,
            "triggerProtect": "0.15",
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "maxPrice": "300",
                    "minPrice": "0.0001",
                    "tickSize": "0.0001",
                },
                {"filterType": "LOT_SIZE", "maxQty": "10000000", "minQty": "1", "stepSize": "1"},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "maxQty": "590119",
                    "minQty": "1",
                    "stepSize": "1",
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": "5.0"},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.1500",
                    "multiplierDown": "0.8500",
                    "multiplierDecimal": 4,
                },
            ],
            "OrderType": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "liquidationFee": "0.010000",
            "marketTakeBound": "0.30",
        }
    ],
    "timezone": "UTC",
}
#: The USD-M docs' New Order response example (fields the Order uses).
NEW_ORDER_RESPONSE = {
    "clientOrderId": "testOrder",
    "cumQty": "0",
    "cumQuote": "0",
    "executedQty": "0",
    "orderId": 22542179,
    "avgPrice": "0.00000",
    "origQty": "10",
    "price": "0",
    "reduceOnly": False,
    "side": "BUY",
    "positionSide": "SHORT",
    "status": "NEW",
    "stopPrice": "9300",
    "closePosition": False,
    "symbol": "BTCUSDT",
    "timeInForce": "GTD",
    "type": "TRAILING_STOP_MARKET",
    "origType": "TRAILING_STOP_MARKET",
    "activatePrice": "9020",
    "priceRate": "0.3",
    "updateTime": 1566818724722,
    "workingType": "CONTRACT_PRICE",
    "priceProtect": False,
    "priceMatch": "NONE",
    "selfTradePreventionMode": "NONE",
    "goodTillDate": 1693207680000,
}
#: The USD-M docs' Query Order response example (a filled LIMIT order).
QUERY_ORDER_RESPONSE = {
    "avgPrice": "0.00000",
    "clientOrderId": "abc",
    "cumQuote": "0",
    "executedQty": "0",
    "orderId": 1917641,
    "origQty": "0.40",
    "origType": "TRAILING_STOP_MARKET",
    "price": "0",
    "reduceOnly": False,
    "side": "BUY",
    "positionSide": "SHORT",
    "status": "NEW",
    "stopPrice": "9300",
    "closePosition": False,
    "symbol": "BTCUSDT",
    "time": 1579276756075,
    "timeInForce": "GTC",
    "type": "TRAILING_STOP_MARKET",
    "activatePrice": "9020",
    "priceRate": "0.3",
    "updateTime": 1579276756075,
    "workingType": "CONTRACT_PRICE",
    "priceProtect": False,
}
#: The USD-M docs' Futures Account Balance V3 example.
BALANCE = [
    {
        "accountAlias": "SgsR",
        "asset": "USDT",
        "balance": "122607.35137903",
        "crossWalletBalance": "23.72469206",
        "crossUnPnl": "0.00000000",
        "availableBalance": "23.72469206",
        "maxWithdrawAmount": "23.72469206",
        "marginAvailable": True,
        "updateTime": 1617939110373,
    }
]


def _rest(
    exchange: FakeExchange,
    session: aiohttp.ClientSession,
    *,
    clock: StepClock | None = None,
    on_timestamp_rejected: Any = None,
) -> PlannedRest:
    config = Config.binance_futures(api_key=API_KEY, api_secret=SECRET, rest_url=exchange.base_url)
    transport = HttpTransport(session, timeout=2.0)
    client = binance_client(
        lambda: transport,
        config,
        base_url=exchange.base_url,
        scheduler=TestScheduler(),
        on_timestamp_rejected=on_timestamp_rejected,
    )
    return rules_known(binance_futures_rest(client, config, clock or StepClock(NOW)))


def _limiter(rest: PlannedRest) -> RequestWeightLimiter:
    limiter = rest._client.limiter
    assert limiter is not None
    return limiter


def _assert_signed(seen: Seen) -> None:
    """The HMAC verifies over the exact query string the server received (PROTOCOL.md §A3)."""
    query, _, signature = seen.query.rpartition("&signature=")
    expected = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    assert seen.headers["x-mbx-apikey"] == API_KEY
    assert seen.params["recvWindow"] == "5000" and int(seen.params["timestamp"]) > NOW


async def _error_of(observable: Observable[Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        await observable
    return info.value


class TestGeneral:
    """ping, server time and exchange information on /fapi."""

    async def test_ping_and_time(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/fapi/v1/ping", {})
        exchange.json("GET", "/fapi/v1/time", examples["binance.usdm.rest.time"])
        rest = _rest(exchange, session)
        assert await rest.ping() is None
        assert await rest.server_time() == 1499827319559
        assert _limiter(rest).used == 2

    async def test_exchange_info_filters_locally_and_reads_usdm_notional(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        other = dict(EXCHANGE_INFO["symbols"][0], symbol="ETHUSDT")  # type: ignore[index]
        exchange.json(
            "GET",
            "/fapi/v1/exchangeInfo",
            dict(EXCHANGE_INFO, symbols=[*EXCHANGE_INFO["symbols"], other]),
        )
        rest = _rest(exchange, session)
        infos = await rest.exchange_info(["blzusdt"])
        assert exchange.seen[0].query == ""  # USD-M has no symbol filter
        assert infos == {
            "BLZUSDT": SymbolInfo(
                symbol="BLZUSDT",
                status="TRADING",
                base_asset="BLZ",
                quote_asset="USDT",
                tick_size=Decimal("0.0001"),
                min_price=Decimal("0.0001"),
                max_price=Decimal("300"),
                step_size=Decimal("1"),
                min_qty=Decimal("1"),
                max_qty=Decimal("10000000"),
                min_notional=Decimal("5.0"),
            )
        }
        assert rest.symbol_info("ETHUSDT") is not None  # everything fetched is cached
        assert rest.symbol_info("blzusdt") == infos["BLZUSDT"]
        assert rest.request_weight_limit == 2400 and _limiter(rest).limit == 2400
        assert _limiter(rest).used == 1


class TestDepth:
    """USD-M depth: its own limits, weights and the E/T fields."""

    async def test_documented_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/fapi/v1/depth", examples["binance.usdm.rest.depth"])
        rest = _rest(exchange, session)
        book = await rest.depth_snapshot("btcusdt", limit=1000)
        assert exchange.seen[0].query == "symbol=BTCUSDT&limit=1000"
        assert (book.update_id, book.event_time) == (1027024, 1589436922972)
        assert book.bids == ((Decimal("4.00000000"), Decimal("431.00000000")),)
        assert book.asks == ((Decimal("4.00000200"), Decimal("12.00000000")),)
        assert _limiter(rest).used == 20

    @pytest.mark.parametrize(
        ("limit", "weight"),
        [(5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)],
    )
    async def test_weight_follows_the_limit(
        self,
        exchange: FakeExchange,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        limit: int,
        weight: int,
    ) -> None:
        exchange.json("GET", "/fapi/v1/depth", examples["binance.usdm.rest.depth"])
        rest = _rest(exchange, session)
        await rest.depth_snapshot("BTCUSDT", limit=limit)
        assert depth_weight(limit) == weight
        assert _limiter(rest).used == weight

    @pytest.mark.parametrize("limit", [1, 15, 200, 5000, True])
    def test_other_limits_are_refused_before_sending(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, limit: int
    ) -> None:
        with pytest.raises(ValueError, match="5, 10, 20, 50, 100, 500, 1000"):
            _rest(exchange, session).depth_snapshot("BTCUSDT", limit=limit)
        assert exchange.seen == []
        assert DEPTH_LIMITS == (5, 10, 20, 50, 100, 500, 1000)


class TestMarketData:
    """Trades, klines and tickers on /fapi with their USD-M weights."""

    async def test_recent_trades(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        row = {
            "id": 28457,
            "price": "4.00000100",
            "qty": "12.00000000",
            "quoteQty": "48.00",
            "time": 1499865549590,
            "isBuyerMaker": True,
        }
        exchange.json("GET", "/fapi/v1/trades", [row])
        rest = _rest(exchange, session)
        (trade,) = await rest.recent_trades("btcusdt", limit=1)
        assert exchange.seen[0].query == "symbol=BTCUSDT&limit=1"
        assert (trade.trade_id, trade.price, trade.side) == (28457, Decimal("4.00000100"), "sell")
        assert _limiter(rest).used == 5

    async def test_agg_trades(self, exchange: FakeExchange, session: aiohttp.ClientSession) -> None:
        row = {
            "a": 26129,
            "p": "0.01633102",
            "q": "4.70443515",
            "f": 27781,
            "l": 27781,
            "T": 1498793709153,
            "m": True,
        }
        exchange.json("GET", "/fapi/v1/aggTrades", [row])
        rest = _rest(exchange, session)
        (trade,) = await rest.agg_trades("BTCUSDT", from_id=26129, limit=10)
        assert exchange.seen[0].query == "symbol=BTCUSDT&fromId=26129&limit=10"
        assert (trade.trade_id, trade.first_trade_id, trade.last_trade_id) == (26129, 27781, 27781)
        assert _limiter(rest).used == 20

    @pytest.mark.parametrize(
        ("limit", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10)]
    )
    async def test_kline_weight_follows_the_limit(
        self,
        exchange: FakeExchange,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        limit: int,
        weight: int,
    ) -> None:
        exchange.json("GET", "/fapi/v1/klines", examples["binance.spot.rest.klines"])
        rest = _rest(exchange, session)
        (kline,) = await rest.klines("BTCUSDT", "1d", limit=limit)
        assert exchange.seen[0].path == "/fapi/v1/klines"
        assert (kline.open_time, kline.trades, kline.closed) == (1499040000000, 308, True)
        assert klines_weight(limit) == weight and _limiter(rest).used == weight

    def test_kline_arguments_are_checked(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(ValueError, match="Spot only"):
            rest.klines("BTCUSDT", "1s")
        with pytest.raises(ValueError, match="limit"):
            rest.klines("BTCUSDT", "1m", limit=1501)

    async def test_ticker_24h_has_no_book(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        body = {
            "symbol": "BTCUSDT",
            "priceChange": "-94.99999800",
            "priceChangePercent": "-95.960",
            "weightedAvgPrice": "0.29628482",
            "lastPrice": "4.00000200",
            "lastQty": "200.00000000",
            "openPrice": "99.00000000",
            "highPrice": "100.00000000",
            "lowPrice": "0.10000000",
            "volume": "8913.30000000",
            "quoteVolume": "15.30000000",
            "openTime": 1499783499040,
            "closeTime": 1499869899040,
            "firstId": 28385,
            "lastId": 28460,
            "count": 76,
        }
        exchange.json("GET", "/fapi/v1/ticker/24hr", body)
        rest = _rest(exchange, session)
        ticker = await rest.ticker_24h("btcusdt")
        assert (ticker.last, ticker.open, ticker.bid, ticker.ask) == (
            Decimal("4.00000200"),
            Decimal("99.00000000"),
            None,
            None,
        )
        assert ticker.event_time == 1499869899040 and _limiter(rest).used == 1

    def test_avg_price_is_not_a_futures_endpoint(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(NotSupportedError):
            _rest(exchange, session).avg_price("BTCUSDT")


def _minute_klines(seen: Seen) -> Reply:
    """A server producing 1m candles for a startTime/endTime/limit window, oldest first."""
    start, end, limit = (int(seen.params[k]) for k in ("startTime", "endTime", "limit"))
    rows: list[list[Any]] = []
    open_time = math.ceil(start / 60_000) * 60_000
    while open_time <= end and len(rows) < limit:
        rows.append([open_time, "1", "2", "0.5", "1.5", "10", open_time + 59_999, "15", 3])
        open_time += 60_000
    return Reply(body=rows)


class TestKlinesHistory:
    """Pages of 1000 from /fapi/v1/klines, in order; an open end means now."""

    async def test_walks_pages_at_weight_5(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/fapi/v1/klines", _minute_klines)
        rest = _rest(exchange, session)
        candles = await rest.klines_history("btcusdt", "1m", 0, 2_499 * 60_000).pipe(ops.to_list())
        assert [c.open_time for c in candles] == [i * 60_000 for i in range(2500)]
        assert [s.path for s in exchange.seen] == ["/fapi/v1/klines"] * 3
        assert _limiter(rest).used == 15

    async def test_open_end_is_now(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/fapi/v1/klines", _minute_klines)
        rest = _rest(exchange, session, clock=StepClock(5 * 60_000))
        candles = await rest.klines_history("BTCUSDT", "1m", 0).pipe(ops.to_list())
        assert len(candles) == 6

    def test_spot_only_interval_is_refused(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="Spot only"):
            _rest(exchange, session).klines_history("BTCUSDT", "1s", 0, 1)


def _agg_pages(seen: Seen) -> Reply:
    """Aggregate trades with consecutive ids from ``fromId`` (ids up to 2600 exist)."""
    first, limit = int(seen.params["fromId"]), int(seen.params["limit"])
    rows = [
        {"a": i, "p": "1", "q": "1", "f": i, "l": i, "T": 1_000 + i, "m": False}
        for i in range(first, min(first + limit, 2601))
    ]
    return Reply(body=rows)


class TestTradeBackfill:
    """Exact aggregate-trade backfill by fromId."""

    async def test_closes_the_gap_page_by_page(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/fapi/v1/aggTrades", _agg_pages)
        backfill = _rest(exchange, session).trade_backfill("agg_trades", "btcusdt")
        trades = await backfill(100, 2150).pipe(ops.to_list())
        assert [t.trade_id for t in trades] == list(range(100, 2151))
        assert all(t.backfilled and t.symbol == "BTCUSDT" for t in trades)
        assert [int(s.params["fromId"]) for s in exchange.seen] == [100, 1100, 2100]
        assert {s.params["limit"] for s in exchange.seen} == {"1000"}

    def test_trades_feed_is_not_on_usdm(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(NotSupportedError):
            rest.trade_backfill("trades", "BTCUSDT")
        with pytest.raises(NotSupportedError):
            rest.trades_between("trades", "BTCUSDT", 1, 2)


class TestSigned:
    """Signed USD-M calls: routes, weights, HMAC over the exact query, order parsing."""

    async def test_account_balances(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        zero = dict(BALANCE[0], asset="BNB", balance="0", availableBalance="0")
        exchange.json("GET", "/fapi/v3/balance", [*BALANCE, zero])
        rest = _rest(exchange, session)
        usdt, bnb = await rest.account()
        _assert_signed(exchange.seen[0])
        assert (usdt.asset, usdt.free, usdt.locked, usdt.total) == (
            "USDT",
            Decimal("23.72469206"),
            Decimal("122583.62668697"),
            Decimal("122607.35137903"),
        )
        assert usdt.event_time == 1617939110373 and bnb.total == 0
        assert [b.asset for b in await rest.account(omit_zero_balances=True)] == ["USDT"]
        assert _limiter(rest).used == 10

    async def test_cross_wallet_above_wallet_never_makes_locked_negative(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        row = dict(BALANCE[0], balance="100", crossWalletBalance="130", crossUnPnl="-7.5")
        exchange.json("GET", "/fapi/v3/balance", [row])
        (usdt,) = await _rest(exchange, session).account()
        # free never exceeds the wallet; equity is wallet + cross unrealised PnL
        assert (usdt.free, usdt.locked, usdt.equity) == (
            Decimal("100"),
            Decimal(0),
            Decimal("92.5"),
        )

    async def test_listen_key_calls_send_the_key_and_no_signature(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", "/fapi/v1/listenKey", {"listenKey": "abc"})
        exchange.json("PUT", "/fapi/v1/listenKey", {})
        rest = _rest(exchange, session)
        assert await rest.create_listen_key() == "abc"
        assert await rest.keepalive_listen_key("abc") is None
        for seen in exchange.seen:
            assert seen.headers["x-mbx-apikey"] == API_KEY
            assert "signature" not in seen.params and "timestamp" not in seen.params
        assert [r.method for r in exchange.seen] == ["POST", "PUT"]

    async def test_positions_leave_flat_rows_out(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        row = {
            "symbol": "BTCUSDT",
            "positionSide": "LONG",
            "positionAmt": "0.5",
            "entryPrice": "60000",
            "markPrice": "61000",
            "unRealizedProfit": "500",
            "liquidationPrice": "40000",
            "isolatedMargin": "0",
            "notional": "30500",
            "initialMargin": "1525",
            "updateTime": 1720736417660,
        }
        flat = dict(row, symbol="ETHUSDT", positionAmt="0", notional="0", initialMargin="0")
        exchange.json("GET", "/fapi/v3/positionRisk", [row, flat])
        rest = _rest(exchange, session)
        (position,) = await rest.positions()
        _assert_signed(exchange.seen[0])
        assert (position.side, position.size, position.position_side) == ("long", D("0.5"), "long")
        assert (position.leverage, position.mark_price, position.unrealised_pnl) == (
            D(20),
            D(61000),
            D(500),
        )

    def test_account_settings_are_checked_before_sending(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(ValueError, match=r"1\.\.125"):
            rest.set_leverage("BTCUSDT", 0)
        with pytest.raises(ValueError, match="ISOLATED or CROSSED"):
            rest.set_margin_type("BTCUSDT", "cross")
        assert exchange.seen == []

    async def test_close_position_sends_no_quantity(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", ORDER, dict(NEW_ORDER_RESPONSE, type="STOP_MARKET"))
        rest = _rest(exchange, session)
        await rest.place_order(
            "BTCUSDT", "sell", "STOP_MARKET", stopPrice="9000", closePosition=True
        )
        (seen,) = exchange.seen
        assert seen.params["closePosition"] == "true" and seen.params["stopPrice"] == "9000"
        assert "quantity" not in seen.params and "reduceOnly" not in seen.params

    async def test_hedge_mode_and_reduce_only_are_sent_as_binance_spells_them(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", ORDER, NEW_ORDER_RESPONSE)
        rest = _rest(exchange, session)
        await rest.place_order("BTCUSDT", "sell", "MARKET", "1", reduceOnly=True)
        (seen,) = exchange.seen
        assert seen.params["reduceOnly"] == "true"
        with pytest.raises(ValueError, match="positionSide"):
            rest.place_order("BTCUSDT", "sell", "MARKET", "1", positionSide="up")
        with pytest.raises(ValueError, match="no quantity"):
            rest.place_order(
                "BTCUSDT", "sell", "STOP_MARKET", "1", stopPrice="1", closePosition=True
            )

    async def test_place_order(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", ORDER, dict(NEW_ORDER_RESPONSE, avgPrice="9010.5", executedQty="10"))
        rest = _rest(exchange, session)
        order = await rest.place_order(
            "btcusdt",
            "buy",
            "LIMIT",
            quantity="10",
            price="9000",
            client_order_id="testOrder",
            positionSide="SHORT",
        )
        (seen,) = exchange.seen
        _assert_signed(seen)
        assert seen.params["positionSide"] == "SHORT"
        assert seen.params["newClientOrderId"] == "testOrder"
        assert seen.params["timeInForce"] == "GTC"
        assert (order.order_id, order.client_order_id, order.status) == (
            "22542179",
            "testOrder",
            "NEW",
        )
        assert order.average_price == Decimal("9010.5")  # from avgPrice, not cumQuote
        assert order.time == order.update_time == 1566818724722  # no "time" in the answer
        assert _limiter(rest).used == 0  # 0 IP weight: counts against order limits only

    async def test_lost_order_answer_is_status_unknown(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", ORDER, {"code": -1000, "msg": "internal"}, status=503)
        error = await _error_of(
            _rest(exchange, session).place_order(
                "BTCUSDT", "sell", "MARKET", "1", client_order_id="lost-1"
            )
        )
        assert isinstance(error, OrderStatusUnknownError) and error.client_order_id == "lost-1"

    def test_extra_cannot_replace_the_client_order_id(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="newClientOrderId"):
            _rest(exchange, session).place_order(
                "BTCUSDT", "buy", "LIMIT", "1", "1", newClientOrderId="other"
            )
        assert exchange.seen == []

    async def test_cached_filters_reject_a_bad_lot_locally(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/fapi/v1/exchangeInfo", EXCHANGE_INFO)
        rest = _rest(exchange, session)
        await rest.exchange_info()
        error = await _error_of(rest.place_order("BLZUSDT", "buy", "LIMIT", "1.5", "0.1"))
        assert isinstance(error, OrderRejectedError) and error.filter == "LOT_SIZE"
        assert exchange.requests_to(ORDER) == []

    async def test_a_filter_failure_makes_the_next_order_fetch_the_rules(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        """As on Spot: the local check passed but Binance answered -1013, so the cached
        rules are out of date and the next order fetches them first."""
        exchange.json("POST", ORDER, {"code": -1013, "msg": "Filter failure"}, status=400)
        exchange.json("GET", "/fapi/v1/exchangeInfo", EXCHANGE_INFO)
        rest = _rest(exchange, session)  # BTCUSDT rules known (every filter off)
        error = await _error_of(rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "10"))
        assert isinstance(error, ExchangeError) and error.code == -1013
        assert exchange.requests_to("/fapi/v1/exchangeInfo") == []
        await _error_of(rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "10"))
        assert len(exchange.requests_to("/fapi/v1/exchangeInfo")) == 1

    async def test_get_cancel_and_open_orders(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", ORDER, QUERY_ORDER_RESPONSE)
        exchange.json("DELETE", ORDER, dict(QUERY_ORDER_RESPONSE, status="CANCELED"))
        exchange.json("GET", "/fapi/v1/openOrders", [QUERY_ORDER_RESPONSE])
        rest = _rest(exchange, session)
        found = await rest.get_order("BTCUSDT", client_order_id="abc")
        cancelled = await rest.cancel_order("BTCUSDT", order_id=1917641)
        (open_one,) = await rest.open_orders("BTCUSDT")
        everything = await rest.open_orders()
        assert found.time == 1579276756075 and found.average_price is None
        assert found == open_one == everything[0]
        assert isinstance(cancelled, Order) and cancelled.status == "CANCELED"
        queries = [(s.method, s.params) for s in exchange.seen]
        assert queries[0][1]["origClientOrderId"] == "abc"
        assert queries[1][0] == "DELETE" and queries[1][1]["orderId"] == "1917641"
        assert "symbol" not in queries[3][1]
        for seen in exchange.seen:
            _assert_signed(seen)
        assert _limiter(rest).used == 1 + 1 + 1 + 40

    async def test_test_order(self, exchange: FakeExchange, session: aiohttp.ClientSession) -> None:
        exchange.json("POST", "/fapi/v1/order/test", {})
        rest = _rest(exchange, session)
        assert await rest.test_order("BTCUSDT", "buy", "LIMIT", "1", "100") == {}
        assert exchange.seen[0].path == "/fapi/v1/order/test"
        with pytest.raises(NotSupportedError):
            rest.test_order("BTCUSDT", "buy", "LIMIT", "1", "100", compute_commission_rates=True)

    async def test_timestamp_rejection_resyncs_once(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        resyncs: list[int] = []

        def resync() -> Observable[Any]:
            resyncs.append(1)
            return reactivex.of(1)

        exchange.reply(
            "GET",
            "/fapi/v3/balance",
            Reply(body={"code": -1021, "msg": "Timestamp outside of the recvWindow."}, status=400),
            Reply(body=BALANCE),
        )
        rest = _rest(exchange, session, on_timestamp_rejected=resync)
        (usdt,) = await rest.account()
        assert usdt.asset == "USDT" and resyncs == [1]
        stamps = [s.params["timestamp"] for s in exchange.seen]
        assert len(stamps) == 2 and stamps[0] != stamps[1]

    async def test_exchange_error_keeps_the_code(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", ORDER, {"code": -2013, "msg": "Order does not exist."}, status=400)
        error = await _error_of(_rest(exchange, session).get_order("BTCUSDT", order_id=1))
        assert isinstance(error, ExchangeError) and error.code == -2013


class TestNoSpotRouteLeaks:
    """Every call Spot's plans make is USD-M's own plan (or refused), so none can call a
    Spot path on /fapi."""

    def test_every_public_spot_method_is_overridden(self) -> None:
        spot = {
            name
            for name, member in inspect.getmembers(BinanceSpotPlans)
            if not name.startswith("_") and callable(member) and name in vars(BinanceSpotPlans)
        }
        assert BinanceSpotPlans not in BinanceFuturesPlans.__mro__
        plans = BinanceFuturesPlans(Config.binance_futures())
        not_overridden = {name for name in spot if name not in vars(BinanceFuturesPlans)}
        # what USD-M does not define, it refuses (NotSupportedError at the call)
        assert not_overridden == {"avg_price", "trades_after"}
        assert not any(plans.offers(name) for name in not_overridden)
        # the walk picks its route and weight itself
        plan = BinanceFuturesPlans(Config.binance_futures()).klines_history("BTCUSDT", "1m", 0, 1)()
        route = next(plan)
        assert isinstance(route, Call)
        assert (route.endpoint.path, route.weight) == ("/fapi/v1/klines", 5)
