"""REST endpoints: documented shapes, errors, weights, consistency with the streams."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.testing.simulator.binance_http import depth_weight

from .helpers import LocalBook, recv_json, shape

KEY, SECRET = "test-key", "test-secret"


async def get(
    session: aiohttp.ClientSession, sim: ExchangeSimulator, path: str, **params: Any
) -> tuple[int, Any, Any]:
    async with session.get(f"{sim.rest_url}/api/v3/{path}", params=params) as resp:
        return resp.status, await resp.json(), resp.headers


def signed_query(params: dict[str, Any], secret: str = SECRET) -> str:
    query = urlencode(params)
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={sig}"


class TestShapes:
    """Each endpoint answers the documented shape (compared with examples.json)."""

    @pytest.mark.parametrize(
        ("path", "params", "example"),
        [
            ("ping", {}, "binance.spot.rest.ping"),
            ("time", {}, "binance.spot.rest.time"),
            ("depth", {"symbol": "BTCUSDT", "limit": 5}, "binance.spot.rest.depth"),
            ("trades", {"symbol": "BTCUSDT", "limit": 3}, "binance.spot.rest.trades"),
            ("aggTrades", {"symbol": "BTCUSDT", "limit": 3}, "binance.spot.rest.aggTrades"),
            ("klines", {"symbol": "BTCUSDT", "interval": "1m"}, "binance.spot.rest.klines"),
            ("avgPrice", {"symbol": "ETHUSDT"}, "binance.spot.rest.avgPrice"),
            ("ticker/24hr", {"symbol": "BTCUSDT"}, "binance.spot.rest.ticker24hr.full"),
            (
                "ticker/24hr",
                {"symbol": "BTCUSDT", "type": "MINI"},
                "binance.spot.rest.ticker24hr.mini",
            ),
        ],
    )
    async def test_documented_shape(
        self,
        sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        path: str,
        params: dict[str, Any],
        example: str,
    ) -> None:
        await asyncio.sleep(0.1)  # some trades on the tape
        status, body, headers = await get(session, sim, path, **params)
        assert status == 200
        assert shape(body) == shape(examples[example])
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) > 0

    async def test_exchange_info(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        status, body, _ = await get(session, sim, "exchangeInfo")
        example = examples["binance.spot.rest.exchangeInfo"]
        assert status == 200
        assert set(body) == set(example) - {"sors"}
        assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        assert set(body["symbols"][0]) == set(example["symbols"][0])
        weight = body["rateLimits"][0]
        assert (weight["rateLimitType"], weight["interval"], weight["limit"]) == (
            "REQUEST_WEIGHT",
            "MINUTE",
            6000,  # Binance Spot's documented limit (PROTOCOL.md §A2.3), issue 16
        )
        filters = {f["filterType"]: f for f in body["symbols"][0]["filters"]}
        for name in ("PRICE_FILTER", "LOT_SIZE", "NOTIONAL"):
            assert set(filters[name]) == set(examples[f"binance.spot.filter.{name}"]), name
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        status, one, _ = await get(session, sim, "exchangeInfo", symbol="ETHUSDT")
        assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
        status, many, _ = await get(session, sim, "exchangeInfo", symbols='["ETHUSDT","BTCUSDT"]')
        assert [s["symbol"] for s in many["symbols"]] == ["ETHUSDT", "BTCUSDT"]

    async def test_ticker_price_and_book_ticker(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        _, prices, _ = await get(session, sim, "ticker/price")
        assert [p["symbol"] for p in prices] == ["BTCUSDT", "ETHUSDT"]
        _, top, _ = await get(session, sim, "ticker/bookTicker", symbol="BTCUSDT")
        assert set(top) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
        assert float(top["bidPrice"]) < float(top["askPrice"])


class TestErrors:
    """Documented error codes for bad input."""

    @pytest.mark.parametrize(
        ("path", "params", "code"),
        [
            ("depth", {"symbol": "DOGEUSDT"}, -1121),
            ("exchangeInfo", {"symbol": "DOGEUSDT"}, -1121),
            ("depth", {}, -1102),
            ("depth", {"symbol": "BTCUSDT", "limit": "ten"}, -1100),
            ("depth", {"symbol": "BTCUSDT", "limt": "10"}, -1104),
            ("klines", {"symbol": "BTCUSDT", "interval": "7m"}, -1120),
            ("aggTrades", {"symbol": "BTCUSDT", "fromId": 1, "startTime": 1}, -1128),
            ("aggTrades", {"symbol": "BTCUSDT", "startTime": 0, "endTime": 3_600_001}, -1127),
        ],
    )
    async def test_bad_requests(
        self,
        sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        path: str,
        params: dict[str, Any],
        code: int,
    ) -> None:
        status, body, headers = await get(session, sim, path, **params)
        assert status == 400 and body["code"] == code and body["msg"]
        assert "X-MBX-USED-WEIGHT-1M" in headers

    async def test_duplicate_parameter(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        url = f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT"
        async with session.get(url) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == -1101


class TestWeights:
    """Weights per §A2.4, the used-weight header, 429 then 418."""

    @pytest.mark.parametrize(("limit", "weight"), [(5, 5), (100, 5), (500, 25), (1000, 50)])
    async def test_depth_weight_table(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, limit: int, weight: int
    ) -> None:
        before = sim.rest_weight_used()
        _, _, headers = await get(session, sim, "depth", symbol="BTCUSDT", limit=limit)
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) - before == weight == depth_weight(limit)
        assert depth_weight(5000) == depth_weight(1001) == 250

    async def test_429_then_418(self, session: aiohttp.ClientSession) -> None:
        async with ExchangeSimulator(
            weight_limit=100, ban_after_429s=2, autostart_market=False
        ) as sim:
            statuses = []
            for _ in range(30):
                status, body, headers = await get(session, sim, "depth", symbol="BTCUSDT")
                statuses.append(status)
                if status == 429:
                    assert body["code"] == -1003 and "request weight" in body["msg"]
                    assert 1 <= int(headers["Retry-After"]) <= 60
                if status == 418:
                    assert body["code"] == -1003 and "banned until" in body["msg"]
                    assert int(headers["Retry-After"]) == 120
                    break
            # the window may roll over during the loop; the pattern is 200s, 429s, 418
            assert statuses[-1] == 418
            first_429 = statuses.index(429)
            assert statuses[first_429 : first_429 + 2] == [429, 429]
            status, _, headers = await get(session, sim, "ping")
            assert status == 418  # banned: even a weight-1 call is refused
            sim.reset_rest_limits()
            assert (await get(session, sim, "ping"))[0] == 200


class TestConsistency:
    """REST data agrees with the streams and with the simulator's history."""

    async def test_snapshot_plus_diffs_equals_book_at(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            first = await recv_json(ws)
            _, snapshot, _ = await get(session, sim, "depth", symbol="BTCUSDT", limit=5000)
            assert snapshot["lastUpdateId"] >= first["U"]  # §A1.5 step 4
            bids, asks = sim.book_at("BTCUSDT", snapshot["lastUpdateId"])
            book = LocalBook(snapshot)
            assert book.sides() == (bids, asks)
            buffered = [first]
            applied = 0
            while applied < 15:
                event = buffered.pop(0) if buffered else await recv_json(ws)
                if book.apply(event):
                    applied += 1
                    assert book.sides() == sim.book_at("BTCUSDT", event["u"])

    async def test_agg_trades_backfill_by_id_and_time(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        await asyncio.sleep(0.2)
        tape = sim.agg_trades("BTCUSDT")
        start = tape[2]
        _, by_id, _ = await get(
            session, sim, "aggTrades", symbol="BTCUSDT", fromId=start.id, limit=5
        )
        assert [a["a"] for a in by_id] == [a.id for a in tape[2:7]]
        assert [a["f"] for a in by_id] == [a.first_trade_id for a in tape[2:7]]
        _, by_time, _ = await get(
            session, sim, "aggTrades", symbol="BTCUSDT", startTime=start.time, endTime=start.time
        )
        assert {a["T"] for a in by_time} == {start.time}
        assert start.id in [a["a"] for a in by_time]

    async def test_trades_and_klines_match_the_tape(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        await asyncio.sleep(0.1)
        sim.pause()
        tape = sim.trades("ETHUSDT")
        _, recent, _ = await get(session, sim, "trades", symbol="ETHUSDT", limit=4)
        assert [t["id"] for t in recent] == [t.id for t in tape[-4:]]
        _, klines, _ = await get(
            session, sim, "klines", symbol="ETHUSDT", interval="1s", limit=1000
        )
        assert len(klines) == 1000
        start = sim.symbol("ETHUSDT").start_ms
        live = [k for k in klines if k[6] >= start]  # older candles are synthetic history
        assert live and sum(k[8] for k in live) == len(tape)  # trade counts add up
        assert sum(float(k[5]) for k in live) == pytest.approx(float(sum(t.qty for t in tape)))
        assert all(k[6] == k[0] + 999 for k in klines)
        _, paged, _ = await get(
            session,
            sim,
            "klines",
            symbol="ETHUSDT",
            interval="1h",
            startTime=klines[0][0] - 10 * 3_600_000,
            limit=3,
        )
        assert len(paged) == 3 and paged[1][0] - paged[0][0] == 3_600_000


class TestSignedAccount:
    """HMAC signatures and timestamps per §A3/§A4, with the clock faults."""

    @pytest.fixture
    async def keyed(self) -> Any:
        async with ExchangeSimulator(api_keys={KEY: SECRET}, autostart_market=False) as sim:
            yield sim

    async def account(
        self,
        session: aiohttp.ClientSession,
        sim: ExchangeSimulator,
        *,
        key: str = KEY,
        secret: str = SECRET,
        offset_ms: int = 0,
        **extra: Any,
    ) -> tuple[int, Any]:
        params = {"timestamp": int(time.time() * 1000) + offset_ms, **extra}
        url = f"{sim.rest_url}/api/v3/account?{signed_query(params, secret)}"
        async with session.get(url, headers={"X-MBX-APIKEY": key}) as resp:
            return resp.status, await resp.json()

    async def test_valid_request(
        self, keyed: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        status, body = await self.account(session, keyed)
        assert status == 200
        assert set(body) == set(examples["binance.spot.rest.account"])
        assets = {b["asset"]: b["free"] for b in body["balances"]}
        assert assets == {"BTC": "1.00000000", "ETH": "1.00000000", "USDT": "10000.00000000"}

    async def test_bad_signature_and_keys(
        self, keyed: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        assert await self.account(session, keyed, secret="wrong") == (
            400,
            {"code": -1022, "msg": "Signature for this request is not valid."},
        )
        assert (await self.account(session, keyed, key="nobody"))[1]["code"] == -2015
        async with session.get(f"{keyed.rest_url}/api/v3/account?timestamp=1") as resp:
            assert resp.status == 401 and (await resp.json())["code"] == -2014

    async def test_timestamps(
        self, keyed: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        status, body = await self.account(session, keyed, offset_ms=-6000)
        assert (status, body["code"]) == (400, -1021) and "recvWindow" in body["msg"]
        status, body = await self.account(session, keyed, offset_ms=-6000, recvWindow=10000)
        assert status == 200
        status, body = await self.account(session, keyed, offset_ms=1500)
        assert body["code"] == -1021 and "ahead" in body["msg"]
        assert (await self.account(session, keyed, recvWindow=70000))[1]["code"] == -1131

    async def test_clock_offset_shifts_server_time(
        self, keyed: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        keyed.clock_offset_ms = 3000
        _, body, _ = await get(session, keyed, "time")
        assert body["serverTime"] - int(time.time() * 1000) == pytest.approx(3000, abs=200)
        # a client using its own clock is now more than 1 s behind... and fine; ahead fails:
        keyed.clock_offset_ms = -3000
        assert (await self.account(session, keyed))[1]["code"] == -1021
        assert (await self.account(session, keyed, offset_ms=-3000))[0] == 200

    async def test_reject_timestamp_once(
        self, keyed: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        keyed.reject_timestamp_once()
        assert (await self.account(session, keyed))[1]["code"] == -1021
        assert (await self.account(session, keyed))[0] == 200
