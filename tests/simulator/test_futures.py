"""The USD-M futures dialect: routed streams, depth with ``pu``, mark price, ``/fapi/v1``."""

from __future__ import annotations

import itertools
import json
from typing import Any

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator

from .helpers import LocalBook, recv_json, recv_until, shape, wait_closed


class TestRoutedStreams:
    """``/public`` and ``/market`` carry their own streams, in the documented shapes."""

    async def test_public_depth_has_transaction_time_and_pu(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        url = f"{sim.ws_url}/public/stream?streams=btcusdt@depth@100ms"
        async with session.ws_connect(url) as ws:
            events = [(await recv_json(ws))["data"] for _ in range(10)]
        assert shape(events[0]) == shape(examples["binance.usdm.ws.depthUpdate"])
        for prev, nxt in itertools.pairwise(events):
            assert nxt["pu"] == prev["u"]

    async def test_market_streams(
        self,
        paused_sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
    ) -> None:
        sim = paused_sim
        names = "btcusdt@markPrice@1s/btcusdt@forceOrder/btcusdt@aggTrade"
        async with session.ws_connect(f"{sim.ws_url}/market/stream?streams={names}") as ws:
            await sim.wait_for_connections(1)
            seen: dict[str, Any] = {}
            for _ in range(200):
                if len(seen) == 3:
                    break
                await sim.step(2)
                while True:
                    try:
                        frame = await recv_json(ws, wait=0.05)
                    except TimeoutError:
                        break
                    seen.setdefault(frame["stream"], frame["data"])
        mark = seen["btcusdt@markPrice@1s"]
        assert shape(mark) == shape(examples["binance.usdm.ws.markPriceUpdate"])
        assert shape(seen["btcusdt@forceOrder"]) == shape(examples["binance.usdm.ws.forceOrder"])
        assert seen["btcusdt@aggTrade"]["e"] == "aggTrade"
        assert mark["T"] % (8 * 3_600_000) == 0 and mark["T"] > mark["E"]

    async def test_stream_on_the_wrong_route_pushes_nothing(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@aggTrade") as ws:
            await sim.wait_for_connections(1)
            await sim.step(10)
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            # the first frame is the answer: no aggTrade was pushed before it
            assert await recv_json(ws) == {"result": ["btcusdt@aggTrade"], "id": 1}
        assert sim.trades("BTCUSDT")

    async def test_spot_only_streams_are_refused(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.get(f"{sim.rest_url}/market/ws/btcusdt@avgPrice") as resp:
            assert resp.status == 400
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            await ws.send_str(
                json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": 2})
            )
            answer = await recv_json(ws)
        assert answer["code"] == 2 and answer["id"] == 2

    async def test_own_message_rate_limit(self, session: aiohttp.ClientSession) -> None:
        # futures allow 10 incoming messages per second where Spot allows 5
        async with (
            ExchangeSimulator(autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/market/ws") as ws,
        ):
            for _ in range(8):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
                assert (await recv_json(ws))["id"] == 1
            for _ in range(3):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            assert await wait_closed(ws) == 1008

    async def test_dropped_events_show_as_pu_mismatch(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(f"{sim.ws_url}/public/ws/ethusdt@depth@100ms") as ws:
            await sim.wait_for_connections(1)
            await sim.step(1)
            sim.drop_updates("ETHUSDT", 1)
            await sim.step(2)
            first, second = await recv_json(ws), await recv_json(ws)
        assert second["pu"] != first["u"]


class TestFuturesRest:
    """``/fapi/v1`` endpoints, weights and the depth sync rule with ``pu``."""

    async def test_depth_shape_limits_and_weights(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        url = f"{sim.rest_url}/fapi/v1/depth"
        async with session.get(url, params={"symbol": "BTCUSDT", "limit": "5"}) as resp:
            body = await resp.json()
            assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "2"
        assert shape(body) == shape(examples["binance.usdm.rest.depth"])
        assert len(body["bids"]) == 5
        async with session.get(url, params={"symbol": "BTCUSDT", "limit": "1000"}) as resp:
            assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "22"
        async with session.get(url, params={"symbol": "BTCUSDT", "limit": "7"}) as resp:
            assert resp.status == 400
        assert sim.futures_weight_used() == 22 + 20 and sim.rest_weight_used() == 0

    @pytest.mark.parametrize(
        ("path", "params", "keys"),
        [
            ("time", {}, {"serverTime"}),
            ("ping", {}, set()),
            ("exchangeInfo", {}, {"timezone", "serverTime", "rateLimits", "exchangeFilters",
                                  "assets", "symbols"}),
            ("premiumIndex", {"symbol": "ETHUSDT"}, {"symbol", "markPrice", "indexPrice",
             "estimatedSettlePrice", "lastFundingRate", "interestRate", "nextFundingTime",
             "time"}),
        ],
    )  # fmt: skip
    async def test_endpoints(
        self,
        sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        path: str,
        params: dict[str, str],
        keys: set[str],
    ) -> None:
        async with session.get(f"{sim.rest_url}/fapi/v1/{path}", params=params) as resp:
            assert resp.status == 200
            assert set(await resp.json()) == keys

    async def test_klines_pages_of_1500(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        params = {"symbol": "BTCUSDT", "interval": "1m", "limit": "2000"}
        async with session.get(f"{sim.rest_url}/fapi/v1/klines", params=params) as resp:
            rows = await resp.json()
            assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "10"
        assert len(rows) == 1500 and len(rows[0]) == 12

    async def test_snapshot_and_diffs_by_the_pu_rule(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@depth@100ms") as ws:
            await recv_json(ws)
            async with session.get(
                f"{sim.rest_url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": "1000"}
            ) as resp:
                snapshot = await resp.json()
            book = LocalBook(snapshot)
            assert book.sides() == sim.book_at("BTCUSDT", snapshot["lastUpdateId"])
            # §B step 4/5: drop u < lastUpdateId; the first must straddle lastUpdateId
            event = await recv_until(ws, lambda e: e["u"] >= snapshot["lastUpdateId"])
            assert event["U"] <= snapshot["lastUpdateId"] + 1
            previous_u = None
            for _ in range(10):
                if previous_u is not None:
                    assert event["pu"] == previous_u
                book.apply(event)
                assert book.sides() == sim.book_at("BTCUSDT", event["u"])
                previous_u = event["u"]
                event = await recv_json(ws)
