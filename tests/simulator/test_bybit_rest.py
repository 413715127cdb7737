"""The Bybit v5 market REST dialect: envelopes, documented shapes, limits and faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from reactivex import operators as ops

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.testing.simulator.bybit_payloads import exec_id

from .helpers import levels, recv_until, shape

MARKET = "/v5/market"


@pytest.fixture
async def stepped() -> AsyncIterator[ExchangeSimulator]:
    """A paused simulator with 50 ticks of history."""
    async with ExchangeSimulator(seed=7, autostart_market=False, periodic_ticks=2) as sim:
        await sim.step(50)
        yield sim


async def get(
    session: aiohttp.ClientSession, sim: ExchangeSimulator, path: str, **params: Any
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body or text)."""
    async with session.get(f"{sim.rest_url}{MARKET}{path}", params=params) as resp:
        text = await resp.text()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        return resp.status, dict(resp.headers), body


async def result(
    session: aiohttp.ClientSession, sim: ExchangeSimulator, path: str, **params: Any
) -> Any:
    status, _, body = await get(session, sim, path, **params)
    assert status == 200 and body["retCode"] == 0, body
    return body["result"]


class TestShapes:
    """Each endpoint answers the documented envelope and shape, with the market's data."""

    async def test_time(
        self, stepped: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        sim = stepped
        _, _, body = await get(session, sim, "/time")
        assert shape(body) == shape(examples["bybit.v5.rest.market.time"])
        assert body["retMsg"] == "OK" and body["retExtInfo"] == {}
        assert int(body["result"]["timeNano"]) // 1_000_000 == body["time"]
        assert abs(body["time"] - time.time() * 1000) < 1000
        sim.clock_offset_ms = 5000
        _, _, shifted = await get(session, sim, "/time")
        assert 4000 < shifted["time"] - body["time"] < 6000

    @pytest.mark.parametrize(("category", "default"), [("spot", 1), ("linear", 25)])
    async def test_orderbook(
        self,
        stepped: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        category: str,
        default: int,
    ) -> None:
        sim = stepped
        _, _, body = await get(session, sim, "/orderbook", category=category, symbol="BTCUSDT")
        assert shape(body) == shape(examples["bybit.v5.rest.market.orderbook"])
        book = body["result"]
        assert len(book["b"]) == len(book["a"]) == default
        book = await result(
            session, sim, "/orderbook", category=category, symbol="BTCUSDT", limit=30
        )
        assert (levels(book["b"]), levels(book["a"])) == sim.book_at("BTCUSDT", book["seq"], 30)
        assert book["seq"] == sim.current_update_id("BTCUSDT")

    async def test_orderbook_u_is_the_1000_level_streams(
        self, stepped: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = stepped
        first = await result(session, sim, "/orderbook", category="linear", symbol="ETHUSDT")
        async with session.ws_connect(f"{sim.ws_url}/v5/public/linear") as ws:
            await ws.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.1000.ETHUSDT"]}))
            snapshot = await recv_until(ws, lambda f: f.get("type") == "snapshot")
            assert snapshot["data"]["u"] == first["u"]
            await sim.step(3)
            delta = await recv_until(ws, lambda f: f.get("type") == "delta")
            delta = await recv_until(ws, lambda f: f.get("type") == "delta")
            delta = await recv_until(ws, lambda f: f.get("type") == "delta")
        later = await result(session, sim, "/orderbook", category="linear", symbol="ETHUSDT")
        assert later["u"] == delta["data"]["u"] == first["u"] + 3

    @pytest.mark.parametrize("category", ["spot", "linear"])
    async def test_recent_trades(
        self,
        stepped: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        category: str,
    ) -> None:
        sim = stepped
        page = await result(
            session, sim, "/recent-trade", category=category, symbol="BTCUSDT", limit=5
        )
        example = examples["bybit.v5.rest.market.recent_trade"]["result"]
        assert shape(page) == {**shape(example), "category": "str"}
        tape = sim.trades("BTCUSDT")[-5:]
        assert [r["execId"] for r in page["list"]] == [
            exec_id(category, "BTCUSDT", t.id) for t in reversed(tape)
        ]  # newest first
        assert [Decimal(r["price"]) for r in page["list"]] == [t.price for t in reversed(tape)]
        default = await result(session, sim, "/recent-trade", category=category, symbol="BTCUSDT")
        assert len(default["list"]) == min(
            len(sim.trades("BTCUSDT")), 60 if category == "spot" else 500
        )

    async def test_klines_newest_first(
        self, stepped: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        sim = stepped
        page = await result(session, sim, "/kline", symbol="BTCUSDT", interval="60", limit=5)
        assert page["category"] == "linear"  # the documented default
        assert shape(page) == shape(examples["bybit.v5.rest.market.kline"]["result"])
        starts = [int(row[0]) for row in page["list"]]
        assert starts == sorted(starts, reverse=True) and len(starts) == 5
        assert all(b - a == 3_600_000 for a, b in zip(starts[1:], starts, strict=False))
        binance = await session.get(
            f"{sim.rest_url}/api/v3/klines",
            params={"symbol": "BTCUSDT", "interval": "1h", "limit": "5"},
        )
        rows = await binance.json()
        binance.release()
        assert [int(r[0]) for r in reversed(rows)] == starts  # same candles as the tape's
        assert [Decimal(r[4]) for r in reversed(rows)] == [Decimal(r[4]) for r in page["list"]]
        window = await result(
            session, sim, "/kline", category="spot", symbol="BTCUSDT", interval="D",
            start=starts[-1] - 10 * 86_400_000, end=starts[-1] - 5 * 86_400_000,
        )  # fmt: skip
        days = [int(row[0]) for row in window["list"]]
        start, end = starts[-1] - 10 * 86_400_000, starts[-1] - 5 * 86_400_000
        # the first midnight at or after ``start`` (``start`` itself is one when the oldest
        # of the five hourly candles opened at 00:00 UTC: a run between 04:00 and 05:00)
        midnights = range(-(-start // 86_400_000) * 86_400_000, end + 1, 86_400_000)
        assert days == sorted(midnights, reverse=True)

    async def test_instruments_paginate_on_linear(
        self, stepped: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = stepped
        spot = await result(session, sim, "/instruments-info", category="spot", limit=1)
        assert [r["symbol"] for r in spot["list"]] == ["BTCUSDT", "ETHUSDT"]  # no pages
        assert spot["list"][0]["lotSizeFilter"]["basePrecision"] == "0.00001"
        first = await result(session, sim, "/instruments-info", category="linear", limit=1)
        assert [r["symbol"] for r in first["list"]] == ["BTCUSDT"]
        assert first["nextPageCursor"] == "page_args%3D1"
        second = await result(
            session, sim, "/instruments-info", category="linear", limit=1,
            cursor=unquote(first["nextPageCursor"]),
        )  # fmt: skip
        assert [r["symbol"] for r in second["list"]] == ["ETHUSDT"]
        assert second["nextPageCursor"] == ""
        row = second["list"][0]
        assert (
            row["priceFilter"]["tickSize"] == "0.01" and row["lotSizeFilter"]["qtyStep"] == "0.0001"
        )

    async def test_tickers(
        self, stepped: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        sim = stepped
        spot = await result(session, sim, "/tickers", category="spot", symbol="BTCUSDT")
        assert shape(spot) == shape(examples["bybit.v5.rest.market.tickers.spot"]["result"])
        linear = await result(session, sim, "/tickers", category="linear")
        inverse_keys = set(examples["bybit.v5.rest.market.tickers.inverse"]["result"]["list"][0])
        assert [r["symbol"] for r in linear["list"]] == ["BTCUSDT", "ETHUSDT"]
        assert set(linear["list"][0]) == inverse_keys
        row = spot["list"][0]
        (bid, _), (ask, _) = (
            side[0] for side in sim.book_at("BTCUSDT", sim.current_update_id("BTCUSDT"), 1)
        )
        assert (Decimal(row["bid1Price"]), Decimal(row["ask1Price"])) == (bid, ask)
        assert Decimal(row["lastPrice"]) == sim.trades("BTCUSDT")[-1].price


class TestErrors:
    """Bad requests are retCode 10001 with HTTP 200; limits and faults as documented."""

    @pytest.mark.parametrize(
        ("path", "params", "fragment"),
        [
            ("/orderbook", {"symbol": "BTCUSDT"}, "category is required"),
            ("/orderbook", {"category": "inverse", "symbol": "BTCUSDT"}, "category"),
            ("/orderbook", {"category": "spot", "symbol": "NOPE"}, "symbol invalid"),
            ("/orderbook", {"category": "spot", "symbol": "btcusdt"}, "symbol invalid"),
            ("/orderbook", {"category": "spot", "symbol": "BTCUSDT", "limit": "1001"}, "limit"),
            ("/recent-trade", {"category": "spot", "symbol": "BTCUSDT", "limit": "61"}, "limit"),
            ("/kline", {"symbol": "BTCUSDT", "interval": "1h"}, "interval invalid"),
            ("/kline", {"symbol": "BTCUSDT", "interval": "1", "start": "9", "end": "1"}, "start"),
            ("/kline", {"symbol": "BTCUSDT", "interval": "1", "limit": "x"}, "integer"),
            ("/tickers", {"category": "spot", "symbols": "BTCUSDT"}, "unknown parameter symbols"),
            ("/instruments-info", {"category": "linear", "cursor": "zzz"}, "cursor"),
        ],
    )
    async def test_bad_requests(
        self,
        stepped: ExchangeSimulator,
        session: aiohttp.ClientSession,
        path: str,
        params: dict[str, str],
        fragment: str,
    ) -> None:
        status, _, body = await get(session, stepped, path, **params)
        assert status == 200 and body["retCode"] == 10001
        assert body["retMsg"].startswith("params error: ") and fragment in body["retMsg"]
        assert body["result"] == {} and isinstance(body["time"], int)

    async def test_limit_headers_and_10006(self, session: aiohttp.ClientSession) -> None:
        async with ExchangeSimulator(bybit_endpoint_limit=3, autostart_market=False) as sim:
            answers = [await get(session, sim, "/time") for _ in range(4)]
            if len({a[2]["time"] // 1000 for a in answers}) > 1:
                pytest.skip("the four requests straddled a second boundary")
            left = [int(h["X-Bapi-Limit-Status"]) for _, h, _ in answers]
            assert left == [2, 1, 0, 0]
            assert {h["X-Bapi-Limit"] for _, h, _ in answers} == {"3"}
            _, headers, body = answers[-1]
            assert body["retCode"] == 10006 and body["retMsg"] == "Too many visits!"
            reset = int(headers["X-Bapi-Limit-Reset-Timestamp"])
            assert reset == (body["time"] // 1000 + 1) * 1000
            assert int(answers[0][1]["X-Bapi-Limit-Reset-Timestamp"]) == answers[0][2]["time"]
            other = await get(session, sim, "/tickers", category="spot")
            assert other[2]["retCode"] == 0  # limits are per endpoint

    async def test_ip_limit_bans_with_403(self, session: aiohttp.ClientSession) -> None:
        async with ExchangeSimulator(bybit_ip_limit=5, autostart_market=False) as sim:
            statuses = [(await get(session, sim, "/time"))[0] for _ in range(7)]
            assert statuses == [200] * 5 + [403, 403]
            status, _, text = await get(session, sim, "/time")
            assert status == 403 and text == "access too frequent" and sim.bybit_rest.banned
            sim.reset_rest_limits()
            assert (await get(session, sim, "/time"))[0] == 200

    async def test_injected_failures(
        self, stepped: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = stepped
        sim.fail_rest(503)
        status, _, text = await get(session, sim, "/time")
        assert status == 503 and "Service Unavailable" in text
        sim.fail_rest(429, retry_after=2)
        status, headers, text = await get(session, sim, "/time")
        assert status == 429 and "frequency" in text
        assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > time.time() * 1000 + 1000
        sim.fail_rest(418, retry_after=1)
        assert (await get(session, sim, "/time"))[0] == 403  # Bybit's ban is a 403
        assert (await get(session, sim, "/time"))[0] == 403  # ... and it lasts
        await asyncio.sleep(1.05)
        assert (await get(session, sim, "/time"))[0] == 200
        sim.rest_latency = 0.2
        started = time.monotonic()
        await get(session, sim, "/time")
        assert time.monotonic() - started >= 0.2
        assert [r.status for r in sim.rest_log if r.path == f"{MARKET}/time"][:4] == [
            503,
            429,
            403,
            403,
        ]


class TestClientAgainstSimulator:
    """The connector's Bybit REST side reads the simulator's answers correctly."""

    @pytest.mark.parametrize("category", ["spot", "linear"])
    async def test_market_data_calls(self, stepped: ExchangeSimulator, category: str) -> None:
        sim = stepped
        config = rxc.Config.bybit(category, rest_url=sim.rest_url, ws_url=sim.ws_url)
        async with rxc.Connector(config) as conn:
            assert abs(await conn.server_time() - sim.server_time_ms()) < 1000
            info = await conn.exchange_info()
            assert set(info) == {"BTCUSDT", "ETHUSDT"}
            assert info["ETHUSDT"].tick_size == Decimal("0.01")
            assert info["ETHUSDT"].step_size == Decimal("0.0001")
            book = await conn.depth_snapshot("BTCUSDT", 20)
            bids, asks = sim.book_at("BTCUSDT", sim.current_update_id("BTCUSDT"), 20)
            assert (list(book.bids), list(book.asks)) == (bids, asks)
            tape = sim.trades("BTCUSDT")
            trades = await conn.recent_trades("BTCUSDT", 10)
            assert [t.price for t in trades] == [t.price for t in tape[-10:]]
            # a page whose trades all share one millisecond still comes out oldest first
            same_ms = [t for t in tape[-60:] if t.time == tape[-1].time]
            assert len(same_ms) > 1
            trades = await conn.recent_trades("BTCUSDT", len(same_ms))
            assert [(t.price, t.quantity) for t in trades] == [(t.price, t.qty) for t in same_ms]
            ticker = await conn.ticker_24h("ETHUSDT")
            assert ticker.last == sim.trades("ETHUSDT")[-1].price
            now = sim.server_time_ms()
            start = now - 30 * 3_600_000
            candles = await conn.kline_history("BTCUSDT", "1h", start).pipe(ops.to_list())
            opens = [k.open_time for k in candles]
            assert opens == sorted(opens) and len(opens) in (30, 31)
            assert all(b - a == 3_600_000 for a, b in itertools.pairwise(opens))
