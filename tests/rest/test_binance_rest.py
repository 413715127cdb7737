"""Binance Spot's REST plans against the exchanges' documented payloads (examples.json), served on
127.0.0.1, through the real transport, limiter and signing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import ConfigError, ExchangeError, OrderRejectedError
from rxconnector.exchanges.binance.endpoints import KLINE_INTERVALS, depth_weight
from rxconnector.models import Kline, SymbolInfo
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
    binance_spot_rest,
    rules_known,
)

NOW = 1_700_000_000_000


def _rest(
    exchange: FakeExchange,
    session: aiohttp.ClientSession,
    *,
    limit: int | None = 1200,
    scheduler: TestScheduler | None = None,
    clock: StepClock | None = None,
    **config: Any,
) -> PlannedRest:
    settings: dict[str, Any] = {"api_key": API_KEY, "api_secret": SECRET, **config}
    cfg = Config.binance(
        rest_url=exchange.base_url, rate_limit={"max_weight_per_minute": limit}, **settings
    )
    transport = HttpTransport(session, timeout=2.0)
    client = binance_client(
        lambda: transport, cfg, base_url=exchange.base_url, scheduler=scheduler or TestScheduler()
    )
    return rules_known(binance_spot_rest(client, cfg, clock or StepClock(NOW)))


def _limiter(rest: PlannedRest) -> RequestWeightLimiter:
    limiter = rest._client.limiter
    assert limiter is not None
    return limiter


def _assert_signed(seen: Seen) -> None:
    """The signature verifies over the exact query the server received."""
    query, _, signature = seen.query.rpartition("&signature=")
    expected = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    assert seen.headers["x-mbx-apikey"] == API_KEY
    assert seen.params["recvWindow"] == "5000"
    assert int(seen.params["timestamp"]) > NOW


class TestGeneral:
    """ping, server time and exchange information."""

    async def test_ping_and_time(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/ping", examples["binance.spot.rest.ping"])
        exchange.json("GET", "/api/v3/time", examples["binance.spot.rest.time"])
        rest = _rest(exchange, session)
        assert await rest.ping() is None
        assert await rest.server_time() == 1499827319559
        assert _limiter(rest).used == 2

    async def test_exchange_info_documented_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/exchangeInfo", examples["binance.spot.rest.exchangeInfo"])
        rest = _rest(exchange, session)
        infos = await rest.exchange_info()
        assert infos == {
            "ETHBTC": SymbolInfo(
                symbol="ETHBTC", status="TRADING", base_asset="ETH", quote_asset="BTC"
            )
        }
        assert rest.symbol_info("ethbtc") == infos["ETHBTC"]
        assert rest.request_weight_limit is None  # the example's rateLimits is [{}]
        assert exchange.seen[0].query == ""
        assert _limiter(rest).used == 20

    async def test_exchange_info_filters_limits_and_symbols_param(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        body = dict(examples["binance.spot.rest.exchangeInfo"])
        symbol = dict(body["symbols"][0], symbol="BTCUSDT")
        symbol["filters"] = [
            examples["binance.spot.filter.PRICE_FILTER"],
            examples["binance.spot.filter.LOT_SIZE"],
            examples["binance.spot.filter.NOTIONAL"],
            examples["binance.spot.filter.PERCENT_PRICE"],
        ]
        body["symbols"] = [symbol]
        body["rateLimits"] = [
            examples["binance.spot.rateLimit.REQUEST_WEIGHT"],
            examples["binance.spot.rateLimit.ORDERS"],
        ]
        exchange.json("GET", "/api/v3/exchangeInfo", body)
        rest = _rest(exchange, session)
        info = (await rest.exchange_info(["btcusdt", "ETHBTC"]))["BTCUSDT"]
        assert exchange.seen[0].query == "symbols=%5B%22BTCUSDT%22%2C%22ETHBTC%22%5D"
        assert (info.tick_size, info.min_price, info.max_price) == (
            Decimal("0.00000100"),
            Decimal("0.00000100"),
            Decimal("100000.00000000"),
        )
        assert (info.step_size, info.min_qty, info.max_qty) == (
            Decimal("0.001"),
            Decimal("0.001"),
            Decimal("100000"),
        )
        assert (info.min_notional, info.max_notional) == (Decimal("10"), Decimal("10000"))
        assert rest.request_weight_limit == 6000
        # the Config's 1,200 caps what the venue allows (issue 16)
        assert _limiter(rest).limit == 1200
        uncapped = _rest(exchange, session, limit=None)
        await uncapped.exchange_info(["BTCUSDT"])
        assert _limiter(uncapped).limit == 6000

    async def test_single_symbol_uses_the_symbol_param(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/exchangeInfo", examples["binance.spot.rest.exchangeInfo"])
        await _rest(exchange, session).exchange_info("ethbtc")  # type: ignore[arg-type]
        assert exchange.seen[0].query == "symbol=ETHBTC"


class TestMarketData:
    """Market-data endpoints parse the documented payloads into models."""

    async def test_depth_snapshot(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/depth", examples["binance.spot.rest.depth"])
        rest = _rest(exchange, session)
        book = await rest.depth_snapshot("bnbbtc", limit=1000)
        assert exchange.seen[0].query == "symbol=BNBBTC&limit=1000"
        assert book.symbol == "BNBBTC" and book.update_id == 1027024
        assert book.bids == ((Decimal("4.00000000"), Decimal("431.00000000")),)
        assert book.asks == ((Decimal("4.00000200"), Decimal("12.00000000")),)
        assert book.received_at > 0
        assert _limiter(rest).used == 50

    @pytest.mark.parametrize(
        ("limit", "weight"),
        [(1, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50), (1001, 250), (5000, 250)],
    )
    def test_depth_weight_table(self, limit: int, weight: int) -> None:
        assert depth_weight(limit) == weight

    async def test_depth_limit_out_of_range(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="limit"):
            _rest(exchange, session).depth_snapshot("BTCUSDT", limit=5001)

    async def test_recent_trades(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/trades", examples["binance.spot.rest.trades"])
        rest = _rest(exchange, session)
        (trade,) = await rest.recent_trades("bnbbtc", limit=1)
        assert exchange.seen[0].query == "symbol=BNBBTC&limit=1"
        assert (trade.symbol, trade.trade_id, trade.price, trade.quantity) == (
            "BNBBTC",
            28457,
            Decimal("4.00000100"),
            Decimal("12.00000000"),
        )
        assert trade.side == "sell"  # buyer was the maker: the taker sold
        assert trade.time == trade.event_time == 1499865549590
        assert _limiter(rest).used == 25

    async def test_agg_trades(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/aggTrades", examples["binance.spot.rest.aggTrades"])
        (trade,) = await _rest(exchange, session).agg_trades("BNBBTC", from_id=26129, limit=10)
        assert exchange.seen[0].query == "symbol=BNBBTC&fromId=26129&limit=10"
        assert (trade.trade_id, trade.first_trade_id, trade.last_trade_id) == (26129, 27781, 27781)
        assert trade.price == Decimal("0.01633102") and trade.side == "sell"

    async def test_klines(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/klines", examples["binance.spot.rest.klines"])
        (kline,) = await _rest(exchange, session).klines("bnbbtc", "1d", start=1, end=2, limit=3)
        assert exchange.seen[0].query == "symbol=BNBBTC&interval=1d&startTime=1&endTime=2&limit=3"
        assert kline == Kline(
            symbol="BNBBTC",
            interval="1d",
            open_time=1499040000000,
            close_time=1499644799999,
            open=Decimal("0.01634790"),
            high=Decimal("0.80000000"),
            low=Decimal("0.01575800"),
            close=Decimal("0.01577100"),
            volume=Decimal("148976.11427815"),
            quote_volume=Decimal("2434.19055334"),
            trades=308,
            closed=True,
            event_time=1499644799999,
            received_at=kline.received_at,
        )

    async def test_running_kline_is_not_closed(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        row = [NOW - 30_000, "1", "1", "1", "1", "1", NOW + 29_999, "1", 1, "0", "0", "0"]
        exchange.json("GET", "/api/v3/klines", [row])
        (kline,) = await _rest(exchange, session).klines("BTCUSDT", "1m")
        assert kline.closed is False
        assert kline.event_time < kline.close_time

    def test_interval_is_validated(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError) as info:
            _rest(exchange, session).klines("BTCUSDT", "7m")
        assert all(interval in str(info.value) for interval in KLINE_INTERVALS)

    async def test_ticker_24h(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/ticker/24hr", examples["binance.spot.rest.ticker24hr.full"])
        ticker = await _rest(exchange, session).ticker_24h("bnbbtc")
        assert exchange.seen[0].query == "symbol=BNBBTC"
        assert (ticker.symbol, ticker.last, ticker.bid, ticker.ask) == (
            "BNBBTC",
            Decimal("4.00000200"),
            Decimal("4.00000000"),
            Decimal("4.00000200"),
        )
        assert (ticker.open, ticker.high, ticker.low) == (
            Decimal("99.00000000"),
            Decimal("100.00000000"),
            Decimal("0.10000000"),
        )
        assert ticker.volume == Decimal("8913.30000000")
        assert ticker.event_time == 1499869899040

    async def test_mini_ticker_body_has_no_book(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/ticker/24hr", examples["binance.spot.rest.ticker24hr.mini"])
        ticker = await _rest(exchange, session).ticker_24h("BNBBTC")
        assert ticker.bid is None and ticker.ask_qty is None

    async def test_avg_price(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/avgPrice", examples["binance.spot.rest.avgPrice"])
        avg = await _rest(exchange, session).avg_price("BNBBTC")
        assert (avg.interval, avg.price, avg.last_trade_time) == (
            "5m",
            Decimal("9.35751834"),
            1694061154503,
        )

    async def test_unexpected_body_is_a_parse_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        from rxconnector.errors import ParseError

        exchange.json("GET", "/api/v3/avgPrice", {"mins": 5})
        with pytest.raises(ParseError, match="avgPrice"):
            await _rest(exchange, session).avg_price("BNBBTC")

    async def test_exchange_error_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/depth", examples["binance.spot.rest.error"], status=400)
        with pytest.raises(ExchangeError) as info:
            await _rest(exchange, session).depth_snapshot("NOPE")
        assert info.value.code == -1121


def _minute_klines(seen: Seen) -> Reply:
    """A server producing 1m candles for any startTime/endTime/limit window."""
    start, end, limit = (int(seen.params[k]) for k in ("startTime", "endTime", "limit"))
    rows: list[list[Any]] = []
    open_time = math.ceil(start / 60_000) * 60_000
    while open_time <= end and len(rows) < limit:
        close = open_time + 59_999
        rows.append([open_time, "1", "2", "0.5", "1.5", "10", close, "15", 3, "5", "7", "0"])
        open_time += 60_000
    return Reply(body=rows)


class TestKlinesHistory:
    """klines_history walks a range in 1000-candle pages, in order, through the limiter."""

    async def test_walks_every_page_in_order(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/api/v3/klines", _minute_klines)
        start, end = 0, 2_499 * 60_000
        candles = (
            await _rest(exchange, session)
            .klines_history("btcusdt", "1m", start, end)
            .pipe(ops.to_list())
        )
        assert len(candles) == 2500
        assert [c.open_time for c in candles] == [i * 60_000 for i in range(2500)]
        assert [int(s.params["startTime"]) for s in exchange.seen] == [
            0,
            999 * 60_000 + 1,
            1999 * 60_000 + 1,
        ]
        assert {s.params["limit"] for s in exchange.seen} == {"1000"}

    async def test_is_paced_by_the_weight_budget(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        exchange.handle_with("GET", "/api/v3/klines", _minute_klines)
        rest = _rest(exchange, session, limit=5, scheduler=scheduler)  # klines weigh 2
        received: list[Kline] = []
        done = asyncio.Event()
        rest.klines_history("BTCUSDT", "1m", 0, 2_499 * 60_000).subscribe(
            received.append, lambda e: done.set(), done.set
        )
        for _ in range(50):
            await asyncio.sleep(0.01)
            if len(exchange.seen) == 2 and len(received) == 2000:
                break
        assert (len(exchange.seen), len(received)) == (2, 2000)  # third page waits
        scheduler.advance_to(60.0)  # the minute rolls
        await asyncio.wait_for(done.wait(), 2)
        assert (len(exchange.seen), len(received)) == (3, 2500)

    async def test_disposal_stops_the_walk(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/api/v3/klines", _minute_klines)
        first = await (
            _rest(exchange, session)
            .klines_history("BTCUSDT", "1m", 0, 5_000 * 60_000)
            .pipe(ops.take(1500), ops.to_list())
        )
        await asyncio.sleep(0.05)
        assert len(first) == 1500
        assert len(exchange.seen) == 2

    async def test_empty_range_completes(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/api/v3/klines", _minute_klines)
        candles = (
            await _rest(exchange, session)
            .klines_history("BTCUSDT", "1m", 1, 59_000)
            .pipe(ops.to_list())
        )
        assert candles == []

    def test_start_after_end_is_refused(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="start"):
            _rest(exchange, session).klines_history("BTCUSDT", "1m", 10, 5)


class TestAccountAndOrders:
    """Signed endpoints: signature over the exact query, key header, documented bodies."""

    async def test_account(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/account", examples["binance.spot.rest.account"])
        rest = _rest(exchange, session)
        balances = await rest.account(omit_zero_balances=True)
        assert [(b.asset, b.free, b.locked) for b in balances] == [
            ("BTC", Decimal("4723846.89208129"), Decimal("0")),
            ("LTC", Decimal("4763368.68006011"), Decimal("0")),
        ]
        assert balances[0].event_time == 123456789
        seen = exchange.seen[0]
        _assert_signed(seen)
        assert seen.query.startswith("omitZeroBalances=true&recvWindow=5000&timestamp=")
        assert _limiter(rest).used == 20

    async def test_place_order_result(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("POST", "/api/v3/order", examples["binance.spot.rest.order.result"])
        order = await _rest(exchange, session).place_order(
            "btcusdt", "SELL", "market", quantity=Decimal("10"), client_order_id="6gCrw2kRUAF9"
        )
        seen = exchange.seen[0]
        _assert_signed(seen)
        assert seen.method == "POST"
        assert seen.query.startswith(
            "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=10&newClientOrderId=6gCrw2kRUAF9"
            "&newOrderRespType=RESULT&recvWindow=5000&timestamp="
        )
        assert (order.symbol, order.order_id, order.client_order_id) == (
            "BTCUSDT",
            "28",
            "6gCrw2kRUAF9CvJDGP16IP",
        )
        assert (order.side, order.type, order.status, order.time_in_force) == (
            "sell",
            "MARKET",
            "FILLED",
            "GTC",
        )
        assert order.quantity == order.filled_quantity == Decimal("10")
        assert order.average_price == Decimal("1")
        assert order.time == order.update_time == 1507725176595

    async def test_place_order_full_and_ack(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.reply(
            "POST",
            "/api/v3/order",
            Reply(body=examples["binance.spot.rest.order.full"]),
            Reply(body=examples["binance.spot.rest.order.ack"]),
        )
        rest = _rest(exchange, session)
        full = await rest.place_order("BTCUSDT", "sell", "MARKET", quantity="10")
        assert full.status == "FILLED" and full.filled_quantity == Decimal("10")
        ack = await rest.place_order(
            "BTCUSDT", "buy", "LIMIT", "1.5", "3000", newOrderRespType="ACK"
        )
        assert exchange.seen[1].params["newOrderRespType"] == "ACK"
        assert exchange.seen[1].params["timeInForce"] == "GTC"  # LIMIT default
        assert (ack.status, ack.side, ack.type) == ("ACK", "buy", "LIMIT")
        assert (ack.price, ack.quantity) == (Decimal("3000"), Decimal("1.5"))

    async def test_test_order_with_commission_rates(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        body = examples["binance.spot.rest.order_test.with_commission"]
        exchange.json("POST", "/api/v3/order/test", body)
        rest = _rest(exchange, session)
        result = await rest.test_order(
            "BTCUSDT", "buy", "LIMIT", "1", "100", compute_commission_rates=True
        )
        assert result == body
        assert exchange.seen[0].params["computeCommissionRates"] == "true"
        assert _limiter(rest).used == 20

    async def test_cancel_order(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("DELETE", "/api/v3/order", examples["binance.spot.rest.cancel_order"])
        order = await _rest(exchange, session).cancel_order("ltcbtc", client_order_id="myOrder1")
        seen = exchange.seen[0]
        _assert_signed(seen)
        assert seen.query.startswith("symbol=LTCBTC&origClientOrderId=myOrder1&recvWindow=")
        assert (order.client_order_id, order.order_id, order.status) == (
            "myOrder1",
            "4",
            "CANCELED",
        )
        assert order.average_price is None and order.price == Decimal("2")

    async def test_cancel_restriction_error_example(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json(
            "DELETE",
            "/api/v3/order",
            examples["binance.spot.rest.error.cancel_restrictions"],
            status=400,
        )
        with pytest.raises(ExchangeError) as info:
            await _rest(exchange, session).cancel_order("LTCBTC", order_id=4)
        assert info.value.code == -2011

    async def test_get_order_and_open_orders(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        result = examples["binance.spot.rest.order.result"]
        exchange.json("GET", "/api/v3/order", result)
        exchange.json("GET", "/api/v3/openOrders", [result, result])
        rest = _rest(exchange, session)
        order = await rest.get_order("BTCUSDT", order_id=28)
        assert order.order_id == "28"
        assert exchange.seen[0].query.startswith("symbol=BTCUSDT&orderId=28&recvWindow=")
        assert _limiter(rest).used == 4
        assert len(await rest.open_orders("BTCUSDT")) == 2
        assert _limiter(rest).used == 10
        await rest.open_orders()
        assert exchange.seen[2].query.startswith("recvWindow=")
        assert _limiter(rest).used == 90
        for seen in exchange.seen:
            _assert_signed(seen)

    def test_order_arguments_are_validated(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(ValueError, match="side"):
            rest.place_order("BTCUSDT", "long", "LIMIT", "1", "1")
        with pytest.raises(ValueError, match="price"):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1")
        with pytest.raises(ValueError, match="quantity"):
            rest.place_order("BTCUSDT", "buy", "MARKET")
        with pytest.raises(ValueError, match="positive"):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "-1", "1")
        with pytest.raises(ValueError, match="client_order_id"):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", client_order_id="bad id!")
        with pytest.raises(ValueError, match="order_id"):
            rest.cancel_order("BTCUSDT")
        assert exchange.seen == []

    @pytest.mark.parametrize("name", ["newClientOrderId", "recvWindow", "timestamp", "signature"])
    def test_extra_cannot_replace_the_id_or_the_signing_fields(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, name: str
    ) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(ValueError, match=name):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", **{name: "x"})
        with pytest.raises(ValueError, match=name):
            rest.test_order("BTCUSDT", "buy", "LIMIT", "1", "1", **{name: "x"})
        assert exchange.seen == []

    def test_order_type_must_be_a_string(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        with pytest.raises(ValueError, match="type"):
            _rest(exchange, session).place_order("BTCUSDT", "buy", None, "1", "1")  # type: ignore[arg-type]

    def test_market_order_by_quote_amount(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        _rest(exchange, session).place_order("BTCUSDT", "buy", "MARKET", quoteOrderQty="25")

    def test_signed_call_without_credentials(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(exchange, session, api_key="", api_secret="")
        with pytest.raises(ConfigError):
            rest.account()
        with pytest.raises(ConfigError):
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1")

    async def test_filters_reject_before_sending(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        body = dict(examples["binance.spot.rest.exchangeInfo"])
        symbol = dict(body["symbols"][0], symbol="BTCUSDT")
        symbol["filters"] = [
            examples["binance.spot.filter.PRICE_FILTER"],
            examples["binance.spot.filter.LOT_SIZE"],
        ]
        body["symbols"] = [symbol]
        exchange.json("GET", "/api/v3/exchangeInfo", body)
        rest = _rest(exchange, session)
        await rest.exchange_info(["BTCUSDT"])
        with pytest.raises(OrderRejectedError) as info:
            await rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "0.0000015")
        assert info.value.filter == "PRICE_FILTER"
        assert info.value.nearest_valid == Decimal("0.000002")
        with pytest.raises(OrderRejectedError) as info:
            await rest.test_order("BTCUSDT", "buy", "LIMIT", "0.0015", "1")
        assert info.value.filter == "LOT_SIZE"
        assert len(exchange.seen) == 1  # only exchangeInfo went out


def _trade_rows(agg: bool, newest: int) -> Any:
    """A server holding trades with ids 1..newest, answering fromId/limit pages."""

    def handler(seen: Seen) -> Reply:
        first, limit = int(seen.params["fromId"]), int(seen.params["limit"])
        ids = range(first, min(first + limit, newest + 1))
        if agg:
            rows = [
                {"a": i, "p": "1.5", "q": "2", "f": i * 10, "l": i * 10 + 1, "T": i, "m": False}
                for i in ids
            ]
        else:
            rows = [
                {"id": i, "price": "1.5", "qty": "2", "time": i, "isBuyerMaker": True} for i in ids
            ]
        return Reply(body=rows)

    return handler


class TestTradeBackfill:
    """trades_between closes an id gap page by page with backfilled trades."""

    async def test_plain_trades_by_id_range(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/api/v3/historicalTrades", _trade_rows(False, 10_000))
        rest = _rest(exchange, session)
        trades = await rest.trades_between("trades", "btcusdt", 10, 2500).pipe(ops.to_list())
        assert [t.trade_id for t in trades] == list(range(10, 2501))
        assert all(t.backfilled and t.symbol == "BTCUSDT" for t in trades)
        assert [s.params["fromId"] for s in exchange.seen] == ["10", "1010", "2010"]
        assert _limiter(rest).used == 75

    async def test_agg_trades_stop_at_the_newest_trade(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.handle_with("GET", "/api/v3/aggTrades", _trade_rows(True, 1500))
        backfill = _rest(exchange, session).trade_backfill("agg_trades", "BTCUSDT")
        trades = await backfill(1, 5000).pipe(ops.to_list())
        assert len(trades) == 1500 and trades[-1].trade_id == 1500
        assert trades[0].first_trade_id == 10 and trades[0].backfilled
        assert len(exchange.seen) == 2

    def test_bad_arguments(self, exchange: FakeExchange, session: aiohttp.ClientSession) -> None:
        rest = _rest(exchange, session)
        with pytest.raises(ValueError, match="feed"):
            rest.trades_between("book", "BTCUSDT", 1, 2)
        with pytest.raises(ValueError, match="first_id"):
            rest.trades_between("trades", "BTCUSDT", 3, 2)


class TestClientOrderIds:
    """Generated client order ids come from the nonce generator and are all different."""

    async def test_generated_ids_are_unique_and_valid(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("POST", "/api/v3/order/test", {})
        rest = _rest(exchange, session)
        for _ in range(3):
            await rest.test_order("BTCUSDT", "buy", "LIMIT", "1", "1")
        ids = [s.params["newClientOrderId"] for s in exchange.seen]
        assert len(set(ids)) == 3
        assert all(i.startswith("rxc") and len(i) <= 36 for i in ids)

    async def test_factory_can_be_injected(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", "/api/v3/order/test", {})
        base = _rest(exchange, session)
        rest = rules_known(
            binance_spot_rest(
                base._client,
                base.plans._config,
                StepClock(),
                client_order_id_factory=lambda: "fixed-id",
            )
        )
        await rest.test_order("BTCUSDT", "buy", "LIMIT", "1", "1")
        assert exchange.seen[0].params["newClientOrderId"] == "fixed-id"
