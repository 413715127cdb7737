"""Bybit's REST plans on the generic client (PlannedRest) against Bybit's documented
payloads (examples.json, BY ``docs/v5``), served on 127.0.0.1, through the real
transport, RestClient pipeline, the venue's gates and signing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import (
    ConfigError,
    ExchangeError,
    NotSupportedError,
    OrderRejectedError,
    OrderStatusUnknownError,
    ParseError,
    RateLimitError,
)
from rxconnector.exchanges.bybit.endpoints import bybit_dialect, bybit_error
from rxconnector.exchanges.bybit.rest_parsers import order_status
from rxconnector.models import Kline, SymbolInfo
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rest.client import RestClient
from rxconnector.rest.planned import PlannedRest
from rxconnector.transport.http import HttpTransport
from rxconnector.venues import venue_for

from .conftest import (
    API_KEY,
    SECRET,
    FakeExchange,
    Reply,
    Seen,
    StepClock,
    bybit_rest,
    rules_known,
)

NOW = 1_700_000_000_000
TIME = "/v5/market/time"
INSTRUMENTS = "/v5/market/instruments-info"
ORDERBOOK = "/v5/market/orderbook"
TRADES = "/v5/market/recent-trade"
KLINE = "/v5/market/kline"
TICKERS = "/v5/market/tickers"
WALLET = "/v5/account/wallet-balance"
CREATE = "/v5/order/create"
CANCEL = "/v5/order/cancel"
REALTIME = "/v5/order/realtime"
HISTORY = "/v5/order/history"


def _limiter() -> RequestWeightLimiter:
    return RequestWeightLimiter(1200, scheduler=TestScheduler(), exchange="bybit")


def _rest(
    exchange: FakeExchange,
    session: aiohttp.ClientSession,
    *,
    category: str = "spot",
    clock: Callable[[], int] | None = None,
    limiter: RequestWeightLimiter | None = None,
    on_timestamp_rejected: Callable[[], Observable[Any]] | None = None,
    retry: Callable[[Observable[Any]], Observable[Any]] | None = None,
    scheduler: TestScheduler | None = None,
    timeout: float = 2.0,
    **kwargs: Any,
) -> PlannedRest:
    config = Config.bybit(
        category,  # type: ignore[arg-type]
        api_key=API_KEY,
        api_secret=SECRET,
        rest_url=exchange.base_url,
    )
    transport = HttpTransport(session, timeout=timeout)
    client = RestClient(
        lambda: transport,
        base_url=exchange.base_url,
        exchange="bybit",
        limiter=limiter,
        retry=retry,
        on_timestamp_rejected=on_timestamp_rejected,
        dialect=bybit_dialect(),
        scheduler=scheduler,
    )
    return rules_known(bybit_rest(client, config, clock or StepClock(NOW), **kwargs))


def _ok(result: Any, time: int = 1_700_000_000_500) -> dict[str, Any]:
    """Bybit's common envelope (PROTOCOL.md §C3, examples ``bybit.v5.rest.common_response``)."""
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": time}


def _err(code: int, message: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": NOW}


async def _error_of(observable: Observable[Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        await observable
    return info.value


def _signature_ok(seen: Seen, payload: str) -> bool:
    """Recompute X-BAPI-SIGN from what the server received (PROTOCOL.md §C3 "Signing")."""
    headers = seen.headers
    text = (
        headers["x-bapi-timestamp"] + headers["x-bapi-api-key"] + headers["x-bapi-recv-window"]
    ) + payload
    expected = hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    return headers["x-bapi-sign"] == expected


#: BY ``market/instrument.mdx`` response examples (linear USDT perpetual and spot rows).
LINEAR_BTC = {
    "symbol": "BTCUSDT",
    "contractType": "LinearPerpetual",
    "status": "Trading",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "launchTime": "1585526400000",
    "deliveryTime": "0",
    "deliveryFeeRate": "",
    "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {
        "maxOrderQty": "1190.000",
        "minOrderQty": "0.001",
        "qtyStep": "0.001",
        "postOnlyMaxOrderQty": "1190.000",
        "maxMktOrderQty": "500.000",
        "minNotionalValue": "5",
    },
    "unifiedMarginTrade": True,
    "fundingInterval": 480,
    "settleCoin": "USDT",
    "copyTrading": "both",
    "isPreListing": False,
    "preListingInfo": None,
    "symbolType": "",
}
SPOT_BTC = {
    "symbolId": 9,
    "symbol": "BTCUSDT",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "innovation": "0",
    "status": "Trading",
    "marginTrading": "utaOnly",
    "stTag": "0",
    "lotSizeFilter": {
        "basePrecision": "0.000001",
        "quotePrecision": "0.0000001",
        "minOrderQty": "0.000011",
        "maxOrderQty": "83",
        "minOrderAmt": "5",
        "maxOrderAmt": "8000000",
        "maxLimitOrderQty": "83",
        "maxMarketOrderQty": "41.5",
        "postOnlyMaxLimitOrderSize": "60000",
    },
    "priceFilter": {"tickSize": "0.1"},
    "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
    "symbolType": "",
}
#: BY ``order/open-order.mdx`` response example row.
OPEN_ORDER = {
    "orderId": "fd4300ae-7847-404e-b947-b46980a4d140",
    "orderLinkId": "test-000005",
    "symbol": "ETHUSDT",
    "price": "1600.00",
    "qty": "0.10",
    "side": "Buy",
    "positionIdx": 1,
    "orderStatus": "New",
    "cancelType": "UNKNOWN",
    "rejectReason": "EC_NoError",
    "avgPrice": "0",
    "leavesQty": "0.10",
    "leavesValue": "160",
    "cumExecQty": "0.00",
    "cumExecValue": "0",
    "cumExecFee": "0",
    "timeInForce": "GTC",
    "orderType": "Limit",
    "stopOrderType": "UNKNOWN",
    "triggerPrice": "0.00",
    "reduceOnly": False,
    "createdTime": "1684738540559",
    "updatedTime": "1684738540561",
}


class TestGeneral:
    """Server time, ping and instrument rules."""

    async def test_ping_and_server_time(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", TIME, examples["bybit.v5.rest.market.time"])
        limiter = _limiter()
        rest = _rest(exchange, session, limiter=limiter)
        assert await rest.ping() is None
        assert await rest.server_time() == 1688639403423  # timeNano // 10**6
        assert [s.query for s in exchange.seen] == ["", ""]
        assert limiter.used == 2  # one request weighs 1

    async def test_server_time_without_nano_uses_seconds(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", TIME, _ok({"timeSecond": "1688639403"}))
        assert await _rest(exchange, session).server_time() == 1688639403000

    async def test_linear_instrument_rules(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", INSTRUMENTS, _ok({"category": "linear", "list": [LINEAR_BTC]}))
        rest = _rest(exchange, session, category="linear")
        infos = await rest.exchange_info("btcusdt")  # type: ignore[arg-type]
        assert exchange.seen[0].query == "category=linear&symbol=BTCUSDT"
        assert infos == {
            "BTCUSDT": SymbolInfo(
                symbol="BTCUSDT",
                status="TRADING",
                base_asset="BTC",
                quote_asset="USDT",
                tick_size=Decimal("0.10"),
                min_price=Decimal("0.10"),
                max_price=Decimal("1999999.80"),
                step_size=Decimal("0.001"),
                min_qty=Decimal("0.001"),
                max_qty=Decimal("1190.000"),
                min_notional=Decimal("5"),
            )
        }
        assert rest.symbol_info("btcusdt") == infos["BTCUSDT"]

    async def test_spot_instrument_rules(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", INSTRUMENTS, _ok({"category": "spot", "list": [SPOT_BTC]}))
        info = (await _rest(exchange, session).exchange_info())["BTCUSDT"]
        assert exchange.seen[0].query == "category=spot"  # spot: no limit, no cursor
        assert (info.tick_size, info.step_size) == (Decimal("0.1"), Decimal("0.000001"))
        # minOrderQty is documented as no longer checked: minOrderAmt is the rule.
        assert (info.min_qty, info.max_qty) == (None, Decimal("83"))
        assert (info.min_notional, info.min_price, info.max_price) == (Decimal("5"), None, None)

    async def test_linear_pages_are_walked_with_the_cursor(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        eth = dict(LINEAR_BTC, symbol="ETHUSDT", baseCoin="ETH")
        sol = dict(LINEAR_BTC, symbol="SOLUSDT", baseCoin="SOL")
        exchange.reply(
            "GET",
            INSTRUMENTS,
            Reply(body=_ok({"category": "linear", "list": [LINEAR_BTC], "nextPageCursor": "p2"})),
            Reply(body=_ok({"category": "linear", "list": [eth, sol], "nextPageCursor": ""})),
        )
        infos = await _rest(exchange, session, category="linear").exchange_info(
            ["SOLUSDT", "btcusdt"]
        )
        assert sorted(infos) == ["BTCUSDT", "SOLUSDT"]
        assert [s.query for s in exchange.seen] == [
            "category=linear&limit=1000",
            "category=linear&limit=1000&cursor=p2",
        ]


class TestMarketData:
    """Market data parses the documented payloads into the same models as Binance."""

    async def test_orderbook_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", ORDERBOOK, examples["bybit.v5.rest.market.orderbook"])
        book = await _rest(exchange, session).depth_snapshot("btcusdt", limit=50)
        assert exchange.seen[0].query == "category=spot&symbol=BTCUSDT&limit=50"
        assert book.bids == ((Decimal("65485.47"), Decimal("47.081829")),)
        assert book.asks == ((Decimal("65557.7"), Decimal("16.606555")),)
        assert (book.update_id, book.event_time) == (230704, 1716863719031)
        assert book.received_at > 0

    async def test_orderbook_limit_is_checked_before_sending(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="limit"):
            _rest(exchange, session).depth_snapshot("BTCUSDT", limit=1001)
        assert exchange.seen == []

    async def test_recent_trades_example_and_capped_limit(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", TRADES, examples["bybit.v5.rest.market.recent_trade"])
        (trade,) = await _rest(exchange, session).recent_trades("BTCUSDT")
        assert exchange.seen[0].params["limit"] == "60"  # spot maximum, not the default 500
        assert (trade.trade_id, trade.price, trade.quantity, trade.side) == (
            2100000000007764263,
            Decimal("16618.49"),
            Decimal("0.00012"),
            "buy",
        )
        assert trade.time == trade.event_time == 1672052955758

    async def test_recent_trades_come_out_oldest_first(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        def row(exec_id: str, time: int) -> dict[str, Any]:
            return {
                "execId": exec_id,
                "symbol": "BTCUSDT",
                "price": "1",
                "size": "1",
                "side": "Sell",
                "time": str(time),
                "isBlockTrade": False,
            }

        newest_first = [row("13", 3000), row("12", 2000), row("11", 2000), row("10", 1000)]
        exchange.json("GET", TRADES, _ok({"category": "linear", "list": newest_first}))
        trades = await _rest(exchange, session, category="linear").recent_trades("BTCUSDT", 4)
        assert [t.trade_id for t in trades] == [10, 11, 12, 13]
        assert exchange.seen[0].params["limit"] == "4"

    async def test_klines_newest_first_become_oldest_first(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", KLINE, examples["bybit.v5.rest.market.kline"])
        rest = _rest(exchange, session, category="inverse")
        candles = await rest.klines("btcusd", "1h", start=1670601600000, end=1670608800000)
        assert exchange.seen[0].query == (
            "category=inverse&symbol=BTCUSD&interval=60"
            "&start=1670601600000&end=1670608800000&limit=500"
        )
        assert [k.open_time for k in candles] == [1670601600000, 1670605200000, 1670608800000]
        first = candles[0]
        assert first == Kline(
            symbol="BTCUSD",
            interval="1h",
            open_time=1670601600000,
            close_time=1670601600000 + 3_600_000 - 1,
            open=Decimal("17086.5"),
            high=Decimal("17088"),
            low=Decimal("16978"),
            close=Decimal("17071.5"),
            volume=Decimal("0.37288112"),  # inverse: turnover is the coin volume
            quote_volume=Decimal("6356"),
            trades=0,
            closed=True,
            event_time=1670601600000 + 3_600_000 - 1,
            received_at=first.received_at,
        )

    async def test_linear_volumes_are_not_swapped_and_running_candle_is_open(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        row = [str(NOW - 30_000), "1", "2", "0.5", "1.5", "10", "15"]
        exchange.json("GET", KLINE, _ok({"category": "linear", "symbol": "X", "list": [row]}))
        (candle,) = await _rest(exchange, session, category="linear").klines("BTCUSDT", "1")
        assert (candle.volume, candle.quote_volume, candle.interval) == (
            Decimal("10"),
            Decimal("15"),
            "1m",
        )
        assert candle.closed is False and candle.event_time < candle.close_time

    async def test_month_candle_closes_at_the_end_of_its_month(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        feb_2024 = 1706745600000  # 2024-02-01T00:00Z; a leap February
        row = [str(feb_2024), "1", "1", "1", "1", "1", "1"]
        exchange.json("GET", KLINE, _ok({"list": [row]}))
        (candle,) = await _rest(exchange, session).klines("BTCUSDT", "1M")
        assert candle.close_time == 1709251200000 - 1  # 2024-03-01T00:00Z - 1 ms
        assert candle.interval == "1M"

    def test_binance_only_interval_is_rejected(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="Bybit kline interval"):
            _rest(exchange, session).klines("BTCUSDT", "8h")

    async def test_ticker_spot_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", TICKERS, examples["bybit.v5.rest.market.tickers.spot"])
        ticker = await _rest(exchange, session).ticker_24h("btcusdt")
        assert exchange.seen[0].query == "category=spot&symbol=BTCUSDT"
        assert (ticker.last, ticker.bid, ticker.bid_qty, ticker.ask, ticker.ask_qty) == (
            Decimal("20533.13"),
            Decimal("20517.96"),
            Decimal("2"),
            Decimal("20527.77"),
            Decimal("1.862172"),
        )
        assert (ticker.open, ticker.high, ticker.low) == (
            Decimal("20393.48"),
            Decimal("21128.12"),
            Decimal("20318.89"),
        )
        assert (ticker.volume, ticker.quote_volume) == (
            Decimal("11801.27771"),
            Decimal("243765620.65899866"),
        )
        assert ticker.event_time == 1673859087947

    async def test_ticker_inverse_volumes_are_base_then_quote(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", TICKERS, examples["bybit.v5.rest.market.tickers.inverse"])
        ticker = await _rest(exchange, session, category="inverse").ticker_24h("BTCUSD")
        assert (ticker.volume, ticker.quote_volume) == (
            Decimal("115.6907"),
            Decimal("13713832.0000"),
        )

    async def test_unexpected_result_is_a_parse_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", ORDERBOOK, _ok({"s": "BTCUSDT"}))
        with pytest.raises(ParseError, match="orderbook"):
            await _rest(exchange, session).depth_snapshot("BTCUSDT")


def _minute_candles(seen: Seen) -> Reply:
    """A Bybit-like server: 1m candles of the requested window, newest first."""
    start, end, limit = (int(seen.params[k]) for k in ("start", "end", "limit"))
    first = -(-start // 60_000) * 60_000
    opens = list(range(first, end + 1, 60_000))[-limit:]
    rows = [[str(t), "1", "2", "0.5", "1.5", "10", "15"] for t in reversed(opens)]
    return Reply(body=_ok({"category": "spot", "symbol": "BTCUSDT", "list": rows}))


class TestKlinesHistory:
    """klines_history walks the range in 1000-candle windows, in time order."""

    async def test_walks_every_window_in_order(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", KLINE, _minute_candles)
        end = 2_499 * 60_000
        candles = (
            await _rest(exchange, session)
            .klines_history("btcusdt", "1m", 0, end)
            .pipe(ops.to_list())
        )
        assert [c.open_time for c in candles] == [i * 60_000 for i in range(2500)]
        windows = [(int(s.params["start"]), int(s.params["end"])) for s in exchange.seen]
        assert windows == [
            (0, 1000 * 60_000 - 1),
            (1000 * 60_000, 2000 * 60_000 - 1),
            (2000 * 60_000, end),
        ]
        assert {s.params["limit"] for s in exchange.seen} == {"1000"}

    async def test_open_end_means_now(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", KLINE, _minute_candles)
        clock = StepClock(10 * 60_000)
        candles = (
            await _rest(exchange, session, clock=clock)
            .klines_history("BTCUSDT", "1", 0)
            .pipe(ops.to_list())
        )
        assert len(candles) == 11 and candles[-1].open_time == 10 * 60_000
        assert len(exchange.seen) == 1

    async def test_disposing_stops_the_walk(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", KLINE, _minute_candles)
        first_page = asyncio.Event()
        received: list[Kline] = []

        def on_next(kline: Kline) -> None:
            received.append(kline)
            if len(received) == 1000:
                first_page.set()

        subscription = (
            _rest(exchange, session)
            .klines_history("BTCUSDT", "1m", 0, 2_499 * 60_000)
            .subscribe(on_next)
        )
        await asyncio.wait_for(first_page.wait(), 2)
        subscription.dispose()
        await asyncio.sleep(0.05)
        assert len(received) == 1000
        assert len(exchange.seen) <= 2  # the second page may have left; never the third

    def test_reversed_range_is_rejected(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="start"):
            _rest(exchange, session).klines_history("BTCUSDT", "1m", 10, 5)


class TestErrorCodes:
    """retCode answers (HTTP 200) and HTTP statuses map to the error tree."""

    async def test_parameter_error_is_final(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", ORDERBOOK, _err(10001, "params error: symbol invalid"))
        attempts: list[int] = []

        def retry(source: Observable[Any]) -> Observable[Any]:
            return reactivex.defer(lambda _: attempts.append(1) or source).pipe(ops.retry(3))

        error = await _error_of(_rest(exchange, session, retry=retry).depth_snapshot("NOPE"))
        assert isinstance(error, ExchangeError) and not isinstance(error, RateLimitError)
        assert (error.code, error.status, error.retryable) == (10001, 200, False)
        assert "symbol invalid" in str(error)

    async def test_bad_signature_is_final(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", WALLET, _err(10004, "error sign!"))
        error = await _error_of(_rest(exchange, session).account())
        assert isinstance(error, ExchangeError) and error.code == 10004
        assert not error.retryable and len(exchange.seen) == 1

    async def test_timestamp_rejection_resyncs_once_and_resends_with_a_new_stamp(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        resyncs: list[int] = []

        def resync() -> Observable[Any]:
            resyncs.append(1)
            return reactivex.of(1)

        wallet = _ok({"list": [{"accountType": "UNIFIED", "coin": []}]})
        exchange.reply(
            "GET",
            WALLET,
            Reply(body=_err(10002, "invalid request, please check your server timestamp")),
            Reply(body=wallet),
        )
        rest = _rest(exchange, session, on_timestamp_rejected=resync)
        assert await rest.account() == ()
        assert resyncs == [1]
        stamps = [s.headers["x-bapi-timestamp"] for s in exchange.seen]
        assert len(stamps) == 2 and stamps[0] != stamps[1]
        assert all(_signature_ok(s, s.query) for s in exchange.seen)

    async def test_timestamp_rejected_twice_is_final(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", WALLET, _err(10002, "timestamp"))
        rest = _rest(exchange, session, on_timestamp_rejected=lambda: reactivex.of(1))
        error = await _error_of(rest.account())
        assert isinstance(error, ExchangeError) and error.code == 10002
        assert len(exchange.seen) == 2

    async def test_endpoint_rate_limit_is_a_rate_limit_error_until_the_reset(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        clock = StepClock(NOW)
        exchange.json(
            "GET",
            TICKERS,
            _err(10006, "Too many visits!"),
            headers={
                "X-Bapi-Limit-Status": "0",
                "X-Bapi-Limit": "10",
                "X-Bapi-Limit-Reset-Timestamp": str(NOW + 800),
            },
        )
        limiter = _limiter()
        error = await _error_of(
            _rest(exchange, session, clock=clock, limiter=limiter).ticker_24h("BTCUSDT")
        )
        assert isinstance(error, RateLimitError) and not error.banned
        assert (error.code, error.status) == (10006, 200)
        assert 0.7 < error.retry_after <= 0.8
        assert "Too many visits" in str(error)
        assert limiter.state().held_for == 0  # per-UID endpoint limit: the IP budget is fine

    async def test_endpoint_rate_limit_without_reset_header_waits_one_second(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", TICKERS, _err(10006, "Too many visits!"))
        error = await _error_of(_rest(exchange, session).ticker_24h("BTCUSDT"))
        assert isinstance(error, RateLimitError) and error.retry_after == 1.0

    async def test_server_error_is_retryable(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.reply(
            "GET",
            TIME,
            Reply(body=_err(10016, "Server error")),
            Reply(body=examples["bybit.v5.rest.market.time"]),
        )
        rest = _rest(exchange, session, retry=lambda source: source.pipe(ops.retry(3)))
        assert await rest.server_time() == 1688639403423
        assert len(exchange.seen) == 2

    async def test_server_error_on_an_order_is_status_unknown(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", CREATE, _err(10016, "Server error"))
        rest = _rest(exchange, session, retry=lambda source: source.pipe(ops.retry(3)))
        error = await _error_of(
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "100", client_order_id="c-1")
        )
        assert isinstance(error, OrderStatusUnknownError) and error.client_order_id == "c-1"
        assert len(exchange.requests_to(CREATE)) == 1  # never resent

    async def test_http_403_is_a_ten_minute_ban(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.reply("GET", TIME, Reply(raw=b"access too frequent", status=403))
        clock = StepClock(NOW)
        limiter = _limiter()
        rest = _rest(exchange, session, clock=clock, limiter=limiter)
        error = await _error_of(rest.server_time())
        assert isinstance(error, RateLimitError) and error.banned
        assert (error.status, error.retry_after) == (403, 600.0)
        assert isinstance(error.__cause__, ExchangeError)
        assert limiter.state().banned and limiter.state().held_for == 600.0
        # Every call now fails at once without sending, until the ban is over.
        again = await _error_of(rest.depth_snapshot("BTCUSDT"))
        assert isinstance(again, RateLimitError) and again.banned
        assert 599.0 < again.retry_after <= 600.0
        assert len(exchange.seen) == 1

    async def test_ban_ends_after_ten_minutes(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.reply(
            "GET",
            TIME,
            Reply(raw=b"access too frequent", status=403),
            Reply(body=examples["bybit.v5.rest.market.time"]),
        )
        clock = StepClock(NOW)
        rest = _rest(exchange, session, clock=clock)  # no weight limiter: only the ban gate
        await _error_of(rest.server_time())
        clock.now += 599_000
        assert isinstance(await _error_of(rest.server_time()), RateLimitError)
        assert len(exchange.seen) == 1
        clock.now += 1_000
        assert await rest.server_time() == 1688639403423

    async def test_http_429_holds_the_budget(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("GET", TIME, Reply(raw=b"", status=429, headers={"Retry-After": "3"}))
        limiter = _limiter()
        error = await _error_of(_rest(exchange, session, limiter=limiter).server_time())
        assert isinstance(error, RateLimitError) and error.retry_after == 3.0
        assert limiter.state().held_for == 3.0


class TestPacing:
    """Per-endpoint resets and the IP's 600-per-5-s window delay calls on the scheduler."""

    async def test_exhausted_endpoint_waits_for_its_reset(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        clock = StepClock(NOW)
        scheduler = TestScheduler()
        exchange.json(
            "GET",
            TIME,
            examples["bybit.v5.rest.market.time"],
            headers={"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": str(NOW + 500)},
        )
        rest = _rest(exchange, session, clock=clock, scheduler=scheduler)
        await rest.server_time()
        results: list[int] = []
        rest.server_time().subscribe(results.append)
        await asyncio.sleep(0.05)
        assert len(exchange.seen) == 1  # held until the endpoint's window resets
        scheduler.advance_by(0.4)
        await asyncio.sleep(0.05)
        assert len(exchange.seen) == 1
        scheduler.advance_by(0.2)
        await _until(lambda: bool(results))
        assert len(exchange.seen) == 2

    async def test_other_endpoints_are_not_held(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json(
            "GET",
            TIME,
            examples["bybit.v5.rest.market.time"],
            headers={"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": str(NOW + 500)},
        )
        exchange.json("GET", ORDERBOOK, examples["bybit.v5.rest.market.orderbook"])
        rest = _rest(exchange, session, scheduler=TestScheduler())
        await rest.server_time()
        await asyncio.wait_for(rest.depth_snapshot("BTCUSDT"), 1)  # no virtual time needed

    async def test_ip_window_delays_the_request_over_budget(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", TIME, examples["bybit.v5.rest.market.time"])
        scheduler = TestScheduler()
        rest = _rest(exchange, session, scheduler=scheduler, ip_requests_per_window=2)
        results: list[int] = []
        for _ in range(3):
            rest.server_time().subscribe(results.append)
        await _until(lambda: len(results) == 2)
        await asyncio.sleep(0.05)
        assert len(exchange.seen) == 2
        scheduler.advance_by(4.9)
        await asyncio.sleep(0.05)
        assert len(exchange.seen) == 2
        scheduler.advance_by(0.1)  # 5 s after the first: a slot is free
        await _until(lambda: len(results) == 3)

    def test_default_budget_is_bybits_ip_limit(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        assert (rest.plans.ip_requests_per_window, rest.plans.ip_window_seconds) == (600, 5.0)


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run (at most 2 s) until ``condition`` holds."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 2 s")


class TestSigning:
    """Signed calls carry the four X-BAPI headers over the exact bytes sent."""

    async def test_get_is_signed_over_the_query_string(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", WALLET, _ok({"list": examples["bybit.v5.ws.private.wallet"]["data"]}))
        await _rest(exchange, session).account()
        (seen,) = exchange.seen
        assert seen.query == "accountType=UNIFIED"
        assert seen.headers["x-bapi-api-key"] == API_KEY
        assert seen.headers["x-bapi-recv-window"] == "5000"
        assert int(seen.headers["x-bapi-timestamp"]) > NOW
        assert _signature_ok(seen, seen.query)

    async def test_post_is_signed_over_the_exact_json_body(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("POST", CREATE, examples["bybit.v5.rest.order.create.response"])
        rest = _rest(exchange, session, category="linear")
        await rest.place_order(
            "btcusdt",
            "sell",
            "limit",
            quantity=Decimal("0.010"),
            price="30000",
            client_order_id="spot-test-postonly",
            reduceOnly=True,
            positionIdx=0,
        )
        (seen,) = exchange.seen
        assert seen.query == ""
        assert seen.headers["content-type"].startswith("application/json")
        assert orjson.loads(seen.body) == {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Sell",
            "orderType": "Limit",
            "qty": "0.010",
            "price": "30000",
            "timeInForce": "GTC",
            "orderLinkId": "spot-test-postonly",
            "reduceOnly": True,
            "positionIdx": 0,
        }
        assert _signature_ok(seen, seen.body)

    async def test_recv_window_comes_from_the_config(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", WALLET, _ok({"list": []}))
        config = Config.bybit(api_key=API_KEY, api_secret=SECRET, recv_window=20000)
        transport = HttpTransport(session, timeout=2.0)
        client = RestClient(
            lambda: transport, base_url=exchange.base_url, exchange="bybit", dialect=bybit_dialect()
        )
        await bybit_rest(client, config, StepClock(NOW)).account()
        assert exchange.seen[0].headers["x-bapi-recv-window"] == "20000"
        assert _signature_ok(exchange.seen[0], exchange.seen[0].query)

    def test_signed_calls_need_credentials(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        transport = HttpTransport(session, timeout=2.0)
        client = RestClient(
            lambda: transport, base_url=exchange.base_url, exchange="bybit", dialect=bybit_dialect()
        )
        rest = bybit_rest(client, Config.bybit(), StepClock(NOW))
        for call in (
            rest.account,
            lambda: rest.place_order("BTCUSDT", "buy", "MARKET", "1"),
            lambda: rest.open_orders(),
            lambda: rest.get_order("BTCUSDT", order_id="1"),
            lambda: rest.cancel_order("BTCUSDT", order_id="1"),
        ):
            with pytest.raises(ConfigError, match="api_key"):
                call()
        assert exchange.seen == []


class TestOrders:
    """Placing, cancelling and looking up orders."""

    async def test_place_order_ack(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("POST", CREATE, examples["bybit.v5.rest.order.create.response"])
        order = await _rest(exchange, session).place_order(
            "BTCUSDT", "buy", "LIMIT", "0.1", "15600", time_in_force="PostOnly"
        )
        assert (order.order_id, order.client_order_id) == (
            "1321003749386327552",
            "spot-test-postonly",
        )
        assert (order.side, order.type, order.status, order.time_in_force) == (
            "buy",
            "LIMIT",
            "ACK",
            "POST_ONLY",
        )
        assert (order.price, order.quantity, order.filled_quantity) == (
            Decimal("15600"),
            Decimal("0.1"),
            Decimal(0),
        )
        assert order.time == 1672211918471
        assert orjson.loads(exchange.seen[0].body)["timeInForce"] == "PostOnly"

    async def test_generated_link_id_is_sent_and_reused_on_resubscription(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", CREATE, _ok({"orderId": "1", "orderLinkId": ""}))
        rest = _rest(exchange, session, client_order_id_factory=lambda: "rxc-fixed-1")
        placing = rest.place_order("BTCUSDT", "sell", "MARKET", "0.5")
        first = await placing
        await placing
        sent = [orjson.loads(s.body) for s in exchange.seen]
        assert [b["orderLinkId"] for b in sent] == ["rxc-fixed-1", "rxc-fixed-1"]
        assert "price" not in sent[0] and "timeInForce" not in sent[0]
        assert first.client_order_id == "rxc-fixed-1"

    async def test_default_link_ids_come_from_the_nonce_generator(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", CREATE, _ok({"orderId": "1", "orderLinkId": ""}))
        rest = _rest(exchange, session)
        a = await rest.place_order("BTCUSDT", "buy", "MARKET", "1")
        b = await rest.place_order("BTCUSDT", "buy", "MARKET", "1")
        assert a.client_order_id.startswith("rxc") and a.client_order_id != b.client_order_id

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("hold", "LIMIT", "1", "1"), "side"),
            (("buy", "STOP", "1", "1"), "LIMIT' or 'MARKET"),
            (("buy", "LIMIT", "1", None), "price"),
            (("buy", "MARKET", None, None), "quantity"),
            (("buy", "LIMIT", "-1", "1"), "quantity"),
        ],
    )
    def test_bad_orders_fail_before_sending(
        self,
        exchange: FakeExchange,
        session: aiohttp.ClientSession,
        args: tuple[Any, ...],
        message: str,
    ) -> None:
        with pytest.raises(ValueError, match=message):
            _rest(exchange, session).place_order("BTCUSDT", *args)

    def test_bad_link_id_and_time_in_force_fail_before_sending(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(ValueError, match="orderLinkId"):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", client_order_id="a b")
        with pytest.raises(ValueError, match="time_in_force"):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", time_in_force="GTX")

    @pytest.mark.parametrize("name", ["category", "orderType", "qty", "orderLinkId"])
    def test_extra_cannot_replace_a_checked_field(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, name: str
    ) -> None:
        with pytest.raises(ValueError, match=name):
            _rest(exchange, session).place_order("BTCUSDT", "buy", "LIMIT", "1", "1", **{name: "x"})
        assert exchange.seen == []

    async def test_cached_rules_reject_a_bad_tick_locally(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", INSTRUMENTS, _ok({"category": "linear", "list": [LINEAR_BTC]}))
        rest = _rest(exchange, session, category="linear")
        await rest.exchange_info(["BTCUSDT"])
        error = await _error_of(rest.place_order("BTCUSDT", "buy", "LIMIT", "0.001", "100.05"))
        assert isinstance(error, OrderRejectedError) and error.filter == "PRICE_FILTER"
        assert exchange.requests_to(CREATE) == []

    async def test_spot_market_buy_quantity_is_quote_so_lot_rules_are_skipped(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", INSTRUMENTS, _ok({"category": "spot", "list": [SPOT_BTC]}))
        exchange.json("POST", CREATE, _ok({"orderId": "9", "orderLinkId": "x"}))
        rest = _rest(exchange, session)
        await rest.exchange_info()
        await rest.place_order("BTCUSDT", "buy", "MARKET", "200")  # 200 USDT, above maxQty 83
        error = await _error_of(rest.place_order("BTCUSDT", "sell", "MARKET", "200"))
        assert isinstance(error, OrderRejectedError) and error.filter == "LOT_SIZE"
        assert len(exchange.requests_to(CREATE)) == 1

    async def test_get_order_realtime_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", REALTIME, _ok({"list": [OPEN_ORDER], "category": "linear"}))
        order = await _rest(exchange, session, category="linear").get_order(
            "ETHUSDT", client_order_id="test-000005"
        )
        assert exchange.seen[0].query == "category=linear&symbol=ETHUSDT&orderLinkId=test-000005"
        assert (order.order_id, order.client_order_id, order.status, order.type) == (
            "fd4300ae-7847-404e-b947-b46980a4d140",
            "test-000005",
            "NEW",
            "LIMIT",
        )
        assert (order.price, order.quantity, order.filled_quantity, order.average_price) == (
            Decimal("1600.00"),
            Decimal("0.10"),
            Decimal("0.00"),
            None,
        )
        assert (order.time, order.update_time, order.time_in_force) == (
            1684738540559,
            1684738540561,
            "GTC",
        )

    async def test_get_order_falls_back_to_history(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        filled = dict(OPEN_ORDER, orderStatus="Filled", cumExecQty="0.10", avgPrice="1599.5")
        exchange.json("GET", REALTIME, _ok({"list": []}))
        exchange.json("GET", HISTORY, _ok({"list": [filled]}))
        order = await _rest(exchange, session).get_order("ETHUSDT", order_id="abc")
        assert (order.status, order.average_price) == ("FILLED", Decimal("1599.5"))
        assert [s.path for s in exchange.seen] == [REALTIME, HISTORY]

    async def test_unknown_order_is_an_exchange_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", REALTIME, _ok({"list": []}))
        exchange.json("GET", HISTORY, _ok({"list": []}))
        error = await _error_of(_rest(exchange, session).get_order("ETHUSDT", order_id="abc"))
        assert isinstance(error, ExchangeError) and "not found" in str(error)

    async def test_cancel_then_lookup(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", CANCEL, _ok({"orderId": OPEN_ORDER["orderId"], "orderLinkId": ""}))
        exchange.reply(
            "GET",
            REALTIME,
            Reply(body=_ok({"list": [dict(OPEN_ORDER, orderStatus="Cancelled")]})),
            Reply(body=_ok({"list": [OPEN_ORDER]})),
        )
        rest = _rest(exchange, session, category="linear")
        cancelled = await rest.cancel_order("ETHUSDT", client_order_id="test-000005")
        assert cancelled.status == "CANCELED"
        assert orjson.loads(exchange.requests_to(CANCEL)[0].body) == {
            "category": "linear",
            "symbol": "ETHUSDT",
            "orderLinkId": "test-000005",
        }
        lookup = exchange.requests_to(REALTIME)[0]
        assert lookup.params["orderId"] == OPEN_ORDER["orderId"]
        pending = await rest.cancel_order("ETHUSDT", order_id=OPEN_ORDER["orderId"])
        assert pending.status == "PENDING_CANCEL"  # Bybit applies cancels asynchronously

    async def test_failed_lookup_says_the_cancel_was_accepted(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", CANCEL, _ok({"orderId": "1", "orderLinkId": ""}))
        exchange.json("GET", REALTIME, _err(10001, "params error"))
        error = await _error_of(_rest(exchange, session).cancel_order("BTCUSDT", order_id="1"))
        assert isinstance(error, ExchangeError) and error.code == 10001
        assert "cancel was accepted" in str(error)

    async def test_open_orders_walk_pages(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        second = dict(OPEN_ORDER, orderId="2", orderStatus="PartiallyFilled")
        exchange.reply(
            "GET",
            REALTIME,
            Reply(body=_ok({"list": [OPEN_ORDER], "nextPageCursor": "page_args%3D1"})),
            Reply(body=_ok({"list": [second], "nextPageCursor": ""})),
        )
        orders = await _rest(exchange, session).open_orders("ethusdt")
        assert [o.status for o in orders] == ["NEW", "PARTIALLY_FILLED"]
        assert [s.params.get("cursor") for s in exchange.seen] == [None, "page_args=1"]
        assert exchange.seen[1].query.endswith("&cursor=page_args%3D1")  # back as Bybit wrote it
        assert exchange.seen[0].query == "category=spot&openOnly=0&limit=50&symbol=ETHUSDT"
        assert all(_signature_ok(s, s.query) for s in exchange.seen)

    async def test_linear_open_orders_without_symbol_ask_each_settle_coin(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply(
            "GET",
            REALTIME,
            Reply(body=_ok({"list": [OPEN_ORDER]})),
            Reply(body=_ok({"list": [dict(OPEN_ORDER, orderId="usdc")]})),
        )
        orders = await _rest(exchange, session, category="linear").open_orders()
        assert [o.order_id for o in orders] == [OPEN_ORDER["orderId"], "usdc"]
        assert [s.params["settleCoin"] for s in exchange.seen] == ["USDT", "USDC"]

    async def test_account_balances(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        coin = dict(examples["bybit.v5.ws.private.wallet"]["data"][0]["coin"][0], locked="0.0002")
        body = _ok({"list": [{"accountType": "UNIFIED", "coin": [coin]}]}, time=1672125441042)
        exchange.json("GET", WALLET, body)
        (balance,) = await _rest(exchange, session).account()
        assert (balance.asset, balance.free, balance.locked, balance.total) == (
            "BTC",
            Decimal("0.00082964"),
            Decimal("0.0002"),
            Decimal("0.00102964"),
        )
        assert balance.event_time == 1672125441042

    def test_order_status_vocabulary(self) -> None:
        assert [
            order_status(s)
            for s in ("New", "PartiallyFilledCanceled", "Cancelled", "Untriggered", "Whatever")
        ] == ["NEW", "CANCELED", "CANCELED", "NEW", "WHATEVER"]


class TestTradeBackfill:
    """Bybit cannot look trades up by id: backfill returns the most recent trades."""

    async def test_backfill_returns_recent_trades_marked_backfilled(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", TRADES, examples["bybit.v5.rest.market.recent_trade"])
        backfill = _rest(exchange, session, category="linear").trade_backfill("trades", "btcusdt")
        (trade,) = await backfill(12345)
        assert trade.backfilled and trade.symbol == "BTCUSDT"
        (again,) = await backfill()  # the overlap operator calls it without an id
        assert again.trade_id == trade.trade_id and again.backfilled
        assert exchange.seen[0].params == {
            "category": "linear",
            "symbol": "BTCUSDT",
            "limit": "1000",
        }

    def test_agg_trades_are_not_a_bybit_feed(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(NotSupportedError):
            _rest(exchange, session).trade_backfill("agg_trades", "BTCUSDT")


class TestSpotShape:
    """Every public method of the Spot plans exists here; the ones Bybit lacks say so."""

    def test_same_method_names_as_binance_spot(self) -> None:
        from rxconnector.exchanges.binance.spot_plans import BinanceSpotPlans
        from rxconnector.exchanges.bybit.trade_plans import BybitPlans

        # the Spot REST API: its plans' calls and what the generic client adds; Bybit's
        # plans offer each of them but the ones Bybit has no route for
        spot = {
            name
            for name, member in vars(BinanceSpotPlans).items()
            if not name.startswith("_") and callable(member)
        }
        plans = BybitPlans(Config.bybit())
        assert {name for name in spot if not plans.offers(name)} == {
            "agg_trades",
            "avg_price",
            "trades_between",
            "trades_after",
            "test_order",
        }
        assert {"symbol_info", "limiter", "request_weight_limit"} <= set(dir(PlannedRest))

    def test_missing_features_raise_not_supported(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        calls: list[Callable[[], Any]] = [
            lambda: rest.agg_trades("BTCUSDT"),
            lambda: rest.avg_price("BTCUSDT"),
            lambda: rest.trades_between("trades", "BTCUSDT", 1, 2),
            lambda: rest.test_order("BTCUSDT", "buy", "LIMIT", "1", "1"),
        ]
        for call in calls:
            with pytest.raises(NotSupportedError):
                call()
        assert rest.request_weight_limit is None and exchange.seen == []


class TestSecrecy:
    """The API secret never reaches errors, logs or reprs."""

    async def test_secret_absent_everywhere(
        self,
        exchange: FakeExchange,
        session: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="rxconnector")
        exchange.json("GET", WALLET, _err(10004, "error sign!"))
        exchange.reply("POST", CREATE, Reply(raw=b"upstream", status=502))
        exchange.reply("GET", TIME, Reply(raw=b"access too frequent", status=403))
        rest = _rest(exchange, session)
        errors = [
            await _error_of(rest.account()),
            await _error_of(rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1")),
            await _error_of(rest.server_time()),
        ]
        assert [type(e) for e in errors] == [ExchangeError, OrderStatusUnknownError, RateLimitError]
        texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(rest)]
        texts += [str(e.__cause__) for e in errors if e.__cause__ is not None]
        assert caplog.records
        for text in [*texts, caplog.text]:
            assert SECRET not in text
        # The signature itself is never logged either.
        signatures = [s.headers["x-bapi-sign"] for s in exchange.seen if "x-bapi-sign" in s.headers]
        assert signatures and all(sig not in caplog.text for sig in signatures)


class TestDialect:
    """The retCode vocabulary and the venue wiring."""

    @pytest.mark.parametrize(
        ("status", "body", "expected"),
        [
            (200, {"retCode": 0, "retMsg": "OK"}, None),
            (200, {"retCode": 10001, "retMsg": "bad"}, (10001, "bad")),
            (200, {"retCode": 10006, "retMsg": "Too many visits!"}, None),
            (429, {"retCode": 10006, "retMsg": "Too many visits!"}, (10006, "Too many visits!")),
            (200, {"retCode": True, "retMsg": "x"}, None),
            (200, [1, 2], None),
            (401, {"retCode": 10003, "retMsg": None}, (10003, "")),
        ],
    )
    def test_bybit_error(self, status: int, body: Any, expected: Any) -> None:
        assert bybit_error(status, body) == expected

    def test_codes(self) -> None:
        dialect = bybit_dialect()
        assert dialect.timestamp_codes == {10002}
        assert {10016, 10019, 429} <= dialect.retryable_codes
        assert 10016 in dialect.status_unknown_codes

    def test_built_the_way_the_venue_table_builds_it(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        config = Config.bybit("linear")
        transport = HttpTransport(session, timeout=2.0)
        client = RestClient(
            lambda: transport,
            base_url="https://api.bybit.com",
            exchange="bybit",
            dialect=bybit_dialect(),
        )
        venue = venue_for(config)  # the registry's plans and signer, as rest_runtime builds them
        assert venue.make_plans is not None and venue.make_signer is not None
        rest = PlannedRest(
            client, venue.make_plans(config), venue.make_signer(config), StepClock(NOW)
        )
        assert rest.plans.category == "linear"
        assert repr(rest) == "PlannedRest(venue='bybit', base_url='https://api.bybit.com')"
        assert repr(rest.plans) == "BybitPlans(category='linear')"
