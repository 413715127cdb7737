"""The simulator's USD-M accounts over raw HTTP and WebSocket (no library client):
listenKey lifetime, the /private socket and its events, margin, leverage, hedge mode,
reduce-only, PERCENT_PRICE, and the wallet moving exactly with the fills."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from yarl import URL

from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.testing.simulator.orders import FEE_RATE

from .helpers import recv_json

D = Decimal
KEY, SECRET = "usdm-key", "usdm-secret"
SYMBOL = "BTCUSDT"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


class Fapi:
    def __init__(self, sim: ExchangeSimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session

    async def signed(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        params["timestamp"] = self.sim.server_time_ms()
        query = urlencode(params)
        signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        url = URL(f"{self.sim.rest_url}/fapi/{path}?{query}&signature={signature}", encoded=True)
        async with self.session.request(method, url, headers={"X-MBX-APIKEY": KEY}) as resp:
            return resp.status, await resp.json()

    async def keyed(self, method: str, key: str = KEY) -> tuple[int, Any]:
        url = f"{self.sim.rest_url}/fapi/v1/listenKey"
        async with self.session.request(method, url, headers={"X-MBX-APIKEY": key}) as resp:
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, **params: Any) -> Any:
        status, body = await self.signed(method, path, **params)
        assert status == 200, body
        return body


@pytest.fixture
async def fapi(sim: ExchangeSimulator) -> AsyncIterator[Fapi]:
    async with aiohttp.ClientSession() as session:
        yield Fapi(sim, session)


async def events(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    return [await recv_json(ws) for _ in range(n)]


class TestListenKeys:
    async def test_post_returns_the_active_key_and_put_fails_once_it_expired(
        self, sim: ExchangeSimulator, fapi: Fapi
    ) -> None:
        status, first = await fapi.keyed("POST")
        assert status == 200
        _, again = await fapi.keyed("POST")
        assert again == first
        assert (await fapi.keyed("PUT"))[0] == 200
        assert sim.expire_listen_keys(KEY) == 1
        status, body = await fapi.keyed("PUT")
        assert (status, body["code"]) == (400, -1125)
        _, fresh = await fapi.keyed("POST")
        assert fresh != first
        assert (await fapi.keyed("POST", key="nobody"))[0] == 401

    async def test_the_socket_needs_a_valid_key_and_hears_the_expiry(
        self, sim: ExchangeSimulator, fapi: Fapi
    ) -> None:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await fapi.session.ws_connect(f"{sim.ws_url}/private/ws?listenKey=nope")
        _, body = await fapi.keyed("POST")
        key = body["listenKey"]
        async with fapi.session.ws_connect(f"{sim.ws_url}/private/ws/{key}") as ws:
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 7})
            assert await recv_json(ws) == {"result": [], "id": 7}
            sim.expire_listen_keys()
            expired = await recv_json(ws)
            assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == key
            assert isinstance(expired["E"], str)  # as in the recorded real payload
            await fapi.ok(
                "POST", "v1/order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.01"
            )
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 8})
            assert (await recv_json(ws))["id"] == 8  # nothing came in between


class TestTrading:
    async def test_a_fill_moves_the_position_and_the_wallet_exactly(
        self, sim: ExchangeSimulator, fapi: Fapi
    ) -> None:
        _, body = await fapi.keyed("POST")
        async with fapi.session.ws_connect(
            f"{sim.ws_url}/private/ws?listenKey={body['listenKey']}"
        ) as ws:
            order = await fapi.ok(
                "POST", "v1/order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.05"
            )
            assert order["status"] == "FILLED"
            fills = len(next(o for o in sim.orders(KEY) if o.id == order["orderId"]).fills)
            got = await events(ws, 1 + 3 * fills)  # NEW, then per fill three events
            kinds = [e["e"] for e in got]
            assert kinds[0] == "ORDER_TRADE_UPDATE" and got[0]["o"]["x"] == "NEW"
            assert kinds[1:] == ["TRADE_LITE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"] * fills
            update = got[-1]
            assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "ORDER"
            (position,) = update["a"]["P"]
            engine = sim.engine.position(KEY, SYMBOL)
            assert (D(position["pa"]), D(position["ep"])) == (D("0.05"), engine.entry_price)
            notional = D(order["cumQuote"])
            free, locked = sim.balance(KEY, "USDT")
            assert locked == notional / 10  # initial margin at leverage 10
            assert free + locked == D(100000) - notional * FEE_RATE  # only the fee left
            assert D(update["a"]["B"][0]["wb"]) == free + locked
            rows = await fapi.ok("GET", "v3/positionRisk")
            assert D(rows[0]["positionAmt"]) == D("0.05") and D(rows[0]["liquidationPrice"]) > 0

    async def test_reduce_only_hedge_mode_leverage_and_percent_price(
        self, sim: ExchangeSimulator, fapi: Fapi
    ) -> None:
        status, body = await fapi.signed(
            "POST", "v1/order", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.01",
            reduceOnly="true",
        )  # fmt: skip
        assert (status, body["code"]) == (400, -2022)  # nothing to reduce
        await fapi.ok("POST", "v1/leverage", symbol=SYMBOL, leverage=20)
        assert sim.engine.leverage(KEY, SYMBOL) == 20
        assert (await fapi.signed("POST", "v1/leverage", symbol=SYMBOL, leverage=200))[0] == 400
        await fapi.ok("POST", "v1/order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.01")
        status, body = await fapi.signed("POST", "v1/positionSide/dual", dualSidePosition="true")
        assert (status, body["code"]) == (400, -4068)  # a position is open
        await fapi.ok(
            "POST", "v1/order", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.01",
            reduceOnly="true",
        )  # fmt: skip
        await fapi.ok("POST", "v1/positionSide/dual", dualSidePosition="true")
        status, body = await fapi.signed(
            "POST", "v1/order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.01"
        )
        assert (status, body["code"]) == (400, -4061)  # hedge mode needs LONG/SHORT
        async with fapi.session.get(f"{sim.rest_url}/fapi/v1/premiumIndex?symbol={SYMBOL}") as r:
            mark = D((await r.json())["markPrice"])
        status, body = await fapi.signed(
            "POST", "v1/order", symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
            quantity="0.01", price=str((mark * D("1.2")).quantize(D("0.01"))), positionSide="SHORT",
        )  # fmt: skip
        assert (status, body["code"]) == (400, -4016)
