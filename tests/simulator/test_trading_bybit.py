"""Bybit signed REST (orders, wallet) and the private stream of the simulator, over real
sockets, signed here with our own HMAC code (not the library's)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from yarl import URL

from rxconnector.exchanges.bybit.private import parse_executions, parse_orders, parse_wallet
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.testing.simulator.book import ASK, BID

from .helpers import wait_closed

D = Decimal
KEY, SECRET = "bybit-key", "bybit-secret-never-shown"


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    """A paused simulator (tests move the market with ``step``) with one funded key."""
    async with ExchangeSimulator(seed=11, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


class Rest:
    """Signed Bybit calls; the timestamp is the simulator's clock plus ``offset_ms``."""

    def __init__(self, sim: ExchangeSimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        key: str = KEY,
        secret: str = SECRET,
        offset_ms: int = 0,
        recv_window: int | None = 5000,
    ) -> tuple[int, dict[str, Any], Any]:
        timestamp = self.sim.server_time_ms() + offset_ms
        window = "" if recv_window is None else str(recv_window)
        if method == "GET":
            payload = urlencode(params)
            url = URL(f"{self.sim.rest_url}{path}?{payload}", encoded=True)
            body = None
        else:
            payload = body = json.dumps(params)
            url = URL(f"{self.sim.rest_url}{path}")
        headers = {
            "X-BAPI-API-KEY": key,
            "X-BAPI-TIMESTAMP": str(timestamp),
            "X-BAPI-SIGN": hmac_hex(secret, f"{timestamp}{key}{window or 5000}{payload}"),
            "Content-Type": "application/json",
        }
        if window:
            headers["X-BAPI-RECV-WINDOW"] = window
        async with self.session.request(method, url, data=body, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers

    async def ok(self, method: str, path: str, params: dict[str, Any]) -> Any:
        status, body, _headers = await self.call(method, path, params)
        assert status == 200 and body["retCode"] == 0, body
        return body["result"]

    async def code(self, method: str, path: str, params: dict[str, Any], **kw: Any) -> int:
        status, body, _headers = await self.call(method, path, params, **kw)
        assert status == 200 and set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
        code: int = body["retCode"]
        return code


@pytest.fixture
def rest(sim: ExchangeSimulator, session: aiohttp.ClientSession) -> Rest:
    return Rest(sim, session)


def touch(sim: ExchangeSimulator, side: int) -> Decimal:
    return D(sim.symbol("BTCUSDT").book.levels(side, 1)[0][0]).scaleb(-2)


def limit(sim: ExchangeSimulator, **fields: Any) -> dict[str, Any]:
    """A Limit Buy below the book, with ``fields`` changed."""
    order = {
        "category": "spot",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.01",
        "price": str(touch(sim, BID) - 1),
    }
    order.update(fields)
    return {k: v for k, v in order.items() if v is not None}


class TestOrders:
    """create / cancel / realtime / history answer Bybit's envelope and rows."""

    async def test_create_then_look_it_up(
        self, sim: ExchangeSimulator, rest: Rest, examples: dict[str, Any]
    ) -> None:
        created = await rest.ok("POST", "/v5/order/create", limit(sim, orderLinkId="link-1"))
        assert set(created) == set(examples["bybit.v5.rest.order.create.response"]["result"])
        assert created["orderLinkId"] == "link-1"
        listed = await rest.ok("GET", "/v5/order/realtime", {"category": "spot"})
        (row,) = listed["list"]
        assert (row["orderId"], row["orderStatus"], row["qty"], row["leavesQty"]) == (
            created["orderId"],
            "New",
            "0.01000",
            "0.01000",
        )
        assert listed["nextPageCursor"] == "" and listed["category"] == "spot"
        by_link = await rest.ok(
            "GET", "/v5/order/realtime", {"category": "spot", "orderLinkId": "link-1"}
        )
        assert by_link["list"] == [row]
        assert sim.balance(KEY, "USDT")[1] == D(row["price"]) * D("0.01")
        logged = [(r.method, r.path, r.status) for r in sim.rest_log]
        assert ("POST", "/v5/order/create", 200) in logged

    async def test_cancel_unlocks_and_the_order_moves_to_history(
        self, sim: ExchangeSimulator, rest: Rest
    ) -> None:
        created = await rest.ok("POST", "/v5/order/create", limit(sim))
        ref = {"category": "spot", "symbol": "BTCUSDT", "orderId": created["orderId"]}
        assert await rest.ok("POST", "/v5/order/cancel", ref) == {
            "orderId": created["orderId"],
            "orderLinkId": "",
        }
        assert sim.balance(KEY, "USDT") == (D(100_000), 0)
        assert (await rest.ok("GET", "/v5/order/realtime", {"category": "spot"}))["list"] == []
        closed = await rest.ok(
            "GET", "/v5/order/realtime", {"category": "spot", "orderId": created["orderId"]}
        )
        assert closed["list"][0]["orderStatus"] == "Cancelled"
        history = await rest.ok("GET", "/v5/order/history", {"category": "spot"})
        assert [r["cancelType"] for r in history["list"]] == ["CancelByUser"]
        assert await rest.code("POST", "/v5/order/cancel", ref) == 170213

    async def test_a_market_buy_is_in_quote_coin_unless_told_otherwise(
        self, sim: ExchangeSimulator, rest: Rest
    ) -> None:
        market = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market"}
        by_quote = await rest.ok("POST", "/v5/order/create", {**market, "qty": "1000"})
        by_base = await rest.ok(
            "POST", "/v5/order/create", {**market, "qty": "0.01", "marketUnit": "baseCoin"}
        )
        rows = {
            r["orderId"]: r
            for r in (await rest.ok("GET", "/v5/order/history", {"category": "spot"}))["list"]
        }
        spent = D(rows[by_quote["orderId"]]["cumExecValue"])
        assert D(1000) - spent < touch(sim, ASK) * D("0.00001")
        assert rows[by_base["orderId"]]["cumExecQty"] == "0.01000"
        assert {r["orderStatus"] for r in rows.values()} == {"Filled"}
        assert {r["timeInForce"] for r in rows.values()} == {"IOC"}

    async def test_post_only_that_would_take_is_cancelled(
        self, sim: ExchangeSimulator, rest: Rest
    ) -> None:
        created = await rest.ok(
            "POST",
            "/v5/order/create",
            limit(sim, price=str(touch(sim, ASK)), timeInForce="PostOnly"),
        )
        found = await rest.ok(
            "GET", "/v5/order/realtime", {"category": "spot", "orderId": created["orderId"]}
        )
        (row,) = found["list"]
        assert (row["orderStatus"], row["rejectReason"], row["cumExecQty"]) == (
            "Cancelled",
            "EC_PostOnlyWillTakeLiquidity",
            "0.00000",
        )

    async def test_paging(self, sim: ExchangeSimulator, rest: Rest) -> None:
        for i in range(5):
            await rest.ok("POST", "/v5/order/create", limit(sim, orderLinkId=f"p{i}"))
        first = await rest.ok("GET", "/v5/order/realtime", {"category": "spot", "limit": 3})
        assert [r["orderLinkId"] for r in first["list"]] == ["p4", "p3", "p2"]
        cursor = first["nextPageCursor"]
        rest_of = await rest.ok(
            "GET", "/v5/order/realtime", {"category": "spot", "limit": 3, "cursor": cursor}
        )
        assert [r["orderLinkId"] for r in rest_of["list"]] == ["p1", "p0"]
        assert rest_of["nextPageCursor"] == ""

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"category": "inverse"}, 10001),
            ({"category": None}, 10001),
            ({"symbol": "DOGEUSDT"}, 170121),
            ({"side": "Hold"}, 170117),
            ({"orderType": "Stop"}, 170116),
            ({"timeInForce": "GTX"}, 170115),
            ({"qty": None}, 170130),
            ({"price": "1.001"}, 170134),
            ({"price": "0.00"}, 170133),
            ({"price": "99999999"}, 170132),
            ({"qty": "0.000001"}, 170137),
            ({"qty": "99999"}, 170135),
            ({"qty": "0.00001"}, 170140),
            ({"qty": "10"}, 170131),
            ({"orderLinkId": "no spaces"}, 10001),
            ({"triggerPrice": "50000"}, 10001),
            ({"reduceOnly": True}, 10001),
        ],
    )
    async def test_create_errors(
        self, sim: ExchangeSimulator, rest: Rest, fields: dict[str, Any], code: int
    ) -> None:
        assert await rest.code("POST", "/v5/order/create", limit(sim, **fields)) == code
        assert sim.orders() == []

    async def test_order_link_ids_never_repeat(self, sim: ExchangeSimulator, rest: Rest) -> None:
        created = await rest.ok("POST", "/v5/order/create", limit(sim, orderLinkId="once"))
        ref = {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "once"}
        await rest.ok("POST", "/v5/order/cancel", ref)
        assert await rest.code("POST", "/v5/order/create", limit(sim, orderLinkId="once")) == 170141
        assert [o.id for o in sim.orders()] == [int(created["orderId"])]


class TestWallet:
    """wallet-balance lists the shared balances with Bybit's coin fields."""

    async def test_wallet_balance(self, sim: ExchangeSimulator, rest: Rest) -> None:
        await rest.ok("POST", "/v5/order/create", limit(sim))
        result = await rest.ok(
            "GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": "USDT,BTC"}
        )
        (account,) = result["list"]
        coins = {c["coin"]: c for c in account["coin"]}
        assert list(coins) == ["USDT", "BTC"]
        free, locked = sim.balance(KEY, "USDT")
        assert D(coins["USDT"]["walletBalance"]) == free + locked
        assert D(coins["USDT"]["locked"]) == locked > 0
        assert account["accountType"] == "UNIFIED"
        assert (
            await rest.code("GET", "/v5/account/wallet-balance", {"accountType": "SPOT"}) == 10001
        )


class TestAuthentication:
    """Keys, signatures, timestamps and per-endpoint limits (§C3)."""

    async def test_keys_signatures_and_timestamps(self, sim: ExchangeSimulator, rest: Rest) -> None:
        wallet = ("GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED"})
        assert await rest.code(*wallet, key="nobody") == 10003
        _status, body, _ = await rest.call(*wallet, secret="wrong")
        assert body["retCode"] == 10004 and body["retMsg"].startswith("error sign! origin_string[")
        assert SECRET not in json.dumps(body)
        assert await rest.code(*wallet, offset_ms=-6000) == 10002
        assert await rest.code(*wallet, offset_ms=-6000, recv_window=10_000) == 0
        # 1 s or more ahead is refused; 1.5 s so that the request's own latency (which
        # lets the server clock catch up) cannot bring it under the bound on a busy machine
        assert await rest.code(*wallet, offset_ms=1500) == 10002
        assert await rest.code(*wallet, recv_window=None) == 0  # default 5000
        sim.reject_timestamp_once()
        assert await rest.code(*wallet) == 10002
        assert await rest.code("POST", "/v5/order/create", limit(sim), secret="wrong") == 10004
        assert sim.orders() == []

    async def test_the_shifted_clock_decides(self, sim: ExchangeSimulator, rest: Rest) -> None:
        sim.clock_offset_ms = 20_000
        wallet = ("GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED"})
        assert await rest.code(*wallet, offset_ms=-20_000) == 10002
        assert await rest.code(*wallet) == 0

    async def test_per_endpoint_limits(self, sim: ExchangeSimulator, rest: Rest) -> None:
        order = limit(sim)
        codes, headers = [], []
        for _ in range(21):
            _status, body, got = await rest.call("POST", "/v5/order/create", order)
            codes.append(body["retCode"])
            headers.append(got)
        assert codes[:20] == [0] * 20 and codes[20] == 10006
        assert headers[0]["X-Bapi-Limit"] == "20" and headers[0]["X-Bapi-Limit-Status"] == "19"
        reset = int(headers[20]["X-Bapi-Limit-Reset-Timestamp"])
        assert headers[20]["X-Bapi-Limit-Status"] == "0" and reset > sim.server_time_ms()
        assert len(sim.orders()) == 20

    async def test_injected_failures(self, sim: ExchangeSimulator, rest: Rest) -> None:
        sim.fail_rest(503)
        status, body, _ = await rest.call("GET", "/v5/order/realtime", {"category": "spot"})
        assert (status, body["retCode"]) == (503, 10016)
        sim.fail_rest(418)
        status, body, _ = await rest.call("GET", "/v5/order/realtime", {"category": "spot"})
        assert status == 403


class Private:
    """A client of /v5/private that keeps topic messages apart from answers."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sim: ExchangeSimulator) -> None:
        self.ws, self.sim = ws, sim
        self.messages: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send_str(json.dumps(frame))
        while True:
            msg = await self.ws.receive_json(timeout=2)
            if "topic" in msg:
                self.messages.append(msg)
            else:
                return dict(msg)

    async def auth(
        self, key: str = KEY, secret: str = SECRET, expires_in: int = 5000
    ) -> dict[str, Any]:
        expires = self.sim.server_time_ms() + expires_in
        signature = hmac_hex(secret, f"GET/realtime{expires}")
        return await self.send({"req_id": "auth", "op": "auth", "args": [key, expires, signature]})

    async def topic(self, name: str) -> dict[str, Any]:
        while True:
            for i, msg in enumerate(self.messages):
                if msg["topic"] == name:
                    return self.messages.pop(i)
            msg = await self.ws.receive_json(timeout=2)
            self.messages.append(msg)

    async def quiet(self, wait: float = 0.2) -> list[dict[str, Any]]:
        try:
            while True:
                self.messages.append(await self.ws.receive_json(timeout=wait))
        except TimeoutError:
            pass
        out, self.messages = self.messages, []
        return out


@pytest.fixture
async def private(sim: ExchangeSimulator, session: aiohttp.ClientSession) -> AsyncIterator[Private]:
    async with session.ws_connect(f"{sim.ws_url}/v5/private") as ws:
        yield Private(ws, sim)


class TestPrivateStream:
    """auth, subscribe, and the order / execution / wallet topics."""

    async def test_auth_answers(self, private: Private, examples: dict[str, Any]) -> None:
        expired = await private.auth(expires_in=-1)
        assert (expired["success"], expired["ret_msg"]) == (False, "Params Error")
        wrong = await private.auth(secret="wrong")
        assert (wrong["success"], wrong["ret_msg"]) == (False, "Request not authorized")
        nobody = await private.auth(key="nobody")
        assert nobody["success"] is False
        early = await private.send({"op": "subscribe", "args": ["order"]})
        assert early["success"] is False
        ok = await private.auth()
        assert set(ok) - {"req_id"} == set(examples["bybit.v5.ws.auth.response"])
        assert ok["success"] is True and ok["req_id"] == "auth"

    async def test_expiry_is_judged_by_the_shifted_clock(
        self, sim: ExchangeSimulator, private: Private
    ) -> None:
        sim.clock_offset_ms = 10_000
        expires = sim.server_time_ms() - 5000  # 5 s ahead of OUR clock, behind the server's
        late = await private.send(
            {"op": "auth", "args": [KEY, expires, hmac_hex(SECRET, f"GET/realtime{expires}")]}
        )
        assert late["success"] is False

    async def test_topics_are_checked(self, sim: ExchangeSimulator, private: Private) -> None:
        await private.auth()
        unknown = await private.send({"op": "subscribe", "args": ["order", "orders"]})
        assert unknown == {
            "success": False,
            "ret_msg": "error:handler not found,topic:orders",
            "op": "subscribe",
            "conn_id": unknown["conn_id"],
        }
        mixed = await private.send({"op": "subscribe", "args": ["order", "execution.spot"]})
        assert mixed["success"] is False
        fine = await private.send({"req_id": "s", "op": "subscribe", "args": ["order.spot"]})
        assert fine["success"] is True and fine["req_id"] == "s"
        (_conn, key, topics) = sim.private_subscriptions()[0]
        assert (key, topics) == (KEY, ["order.spot"])
        pong = await private.send({"req_id": "p", "op": "ping"})
        assert (pong["op"], pong["req_id"], pong["conn_id"]) == ("pong", "p", fine["conn_id"])
        assert abs(int(pong["args"][0]) - sim.server_time_ms()) < 1000

    async def test_an_order_life_on_the_topics(
        self, sim: ExchangeSimulator, rest: Rest, private: Private, examples: dict[str, Any]
    ) -> None:
        await private.auth()
        topics = ["order", "execution", "wallet", "position"]
        assert (await private.send({"op": "subscribe", "args": topics}))["success"] is True
        created = await rest.ok(
            "POST",
            "/v5/order/create",
            limit(sim, price=str(touch(sim, ASK) - D("0.01")), orderLinkId="life"),
        )
        new = await private.topic("order")
        assert set(new) == set(examples["bybit.v5.ws.private.order"])
        assert set(new["data"][0]) == set(examples["bybit.v5.ws.private.order"]["data"][0])
        (update,) = parse_orders(new, 0.0)
        assert (update.order_id, update.client_order_id, update.status) == (
            created["orderId"],
            "life",
            "NEW",
        )
        wallet = await private.topic("wallet")
        assert set(wallet["data"][0]) == set(examples["bybit.v5.ws.private.wallet"]["data"][0])
        (usdt,) = parse_wallet(wallet, 0.0)
        assert usdt.asset == "USDT" and usdt.locked > 0
        for _ in range(300):
            if not sim.orders()[0].is_open:
                break
            await sim.step()
        filled = await private.topic("order")
        assert parse_orders(filled, 0.0)[0].status == "FILLED"
        execution = await private.topic("execution")
        assert set(execution["data"][0]) == set(
            examples["bybit.v5.ws.private.execution"]["data"][0]
        )
        (fill,) = parse_executions(execution, 0.0)
        assert (fill.quantity, fill.is_maker, fill.fee_asset) == (D("0.01"), True, "BTC")
        balances = {b.asset: b for b in parse_wallet(await private.topic("wallet"), 0.0)}
        assert balances["BTC"].free == sim.balance(KEY, "BTC")[0]
        assert not [m for m in await private.quiet() if m["topic"] == "position"]

    async def test_categorised_topics_and_other_accounts(
        self, sim: ExchangeSimulator, rest: Rest, private: Private
    ) -> None:
        sim.add_api_key("other", "other-secret")
        await private.auth()
        await private.send({"op": "subscribe", "args": ["order.spot"]})
        sim.set_balance("other", "USDT", "5")
        await rest.ok("POST", "/v5/order/create", limit(sim))
        message = await private.topic("order.spot")
        assert message["data"][0]["category"] == "spot"
        await private.send({"op": "unsubscribe", "args": ["order.spot"]})
        await rest.ok("POST", "/v5/order/create", limit(sim))
        assert await private.quiet() == []

    async def test_binance_activity_moves_the_shared_wallet(
        self, sim: ExchangeSimulator, private: Private
    ) -> None:
        await private.auth()
        await private.send({"op": "subscribe", "args": ["order", "wallet"]})
        sim.set_balance(KEY, "ETH", "7")
        (eth,) = parse_wallet(await private.topic("wallet"), 0.0)
        assert (eth.asset, eth.free) == ("ETH", D(7))

    async def test_idle_connections_are_cut_unless_they_ping(
        self, session: aiohttp.ClientSession
    ) -> None:
        sim = ExchangeSimulator(autostart_market=False, bybit_idle_timeout=0.4)
        async with (
            sim,
            session.ws_connect(f"{sim.ws_url}/v5/private") as idle,
            session.ws_connect(f"{sim.ws_url}/v5/private") as alive,
        ):
            pinger = Private(alive, sim)
            for _ in range(6):
                await pinger.send({"op": "ping"})
                await asyncio.sleep(0.1)
            assert await wait_closed(idle) == 1001
            assert not alive.closed

    async def test_a_dropped_connection_forgets_its_session(
        self, sim: ExchangeSimulator, private: Private
    ) -> None:
        await private.auth()
        await private.send({"op": "subscribe", "args": ["order"]})
        assert await sim.drop_connections() == 1
        assert await wait_closed(private.ws) is not None
        assert sim.private_subscriptions() == []


def linear(sim: ExchangeSimulator, **fields: Any) -> dict[str, Any]:
    return limit(sim, category="linear", **fields)


class TestLinear:
    """USDT perpetuals: margin, positions on REST and on the position topic."""

    async def test_a_position_opens_on_a_fill_and_shows_everywhere(
        self, sim: ExchangeSimulator, rest: Rest, private: Private, examples: dict[str, Any]
    ) -> None:
        await private.auth()
        await private.send({"op": "subscribe", "args": ["order", "position", "wallet"]})
        market = linear(sim, orderType="Market", qty="0.1", price=None)
        created = await rest.ok("POST", "/v5/order/create", market)
        (order,) = sim.orders()
        assert order.status == "FILLED" and order.category == "linear"
        position = await private.topic("position")  # on create: still flat
        assert set(position["data"][0]) == set(examples["bybit.v5.ws.private.position"]["data"][0])
        assert position["data"][0]["side"] == ""
        position = await private.topic("position")  # after the fill
        row = position["data"][0]
        entry = order.average_price
        assert entry is not None
        assert (row["side"], row["size"], D(row["entryPrice"])) == ("Buy", "0.10000", entry)
        assert D(row["positionIM"]) == entry * D("0.1") / 10 == sim.balance(KEY, "USDT")[1]
        listed = await rest.ok(
            "GET", "/v5/position/list", {"category": "linear", "settleCoin": "USDT"}
        )
        assert listed["list"][0]["size"] == "0.10000"
        assert listed["list"][0]["seq"] == 0 and row["seq"] > 0
        found = await rest.ok(
            "GET",
            "/v5/order/realtime",
            {"category": "linear", "symbol": "BTCUSDT", "orderId": created["orderId"]},
        )
        assert found["list"][0]["orderStatus"] == "Filled"
        assert sim.balance(KEY, "BTC") == (D(1), 0)  # linear never touches the base coin

    async def test_closing_realizes_pnl(self, sim: ExchangeSimulator, rest: Rest) -> None:
        buy = linear(sim, orderType="Market", qty="0.1", price=None)
        await rest.ok("POST", "/v5/order/create", buy)
        await rest.ok("POST", "/v5/order/create", {**buy, "side": "Sell"})
        opened, closed = sim.orders()
        assert opened.average_price is not None and closed.average_price is not None
        pnl = (closed.average_price - opened.average_price) * D("0.1")
        fees = opened.cum_fee + closed.cum_fee
        assert sim.balance(KEY, "USDT") == (D(100_000) + pnl - fees, 0)
        result = await rest.ok(
            "GET", "/v5/position/list", {"category": "linear", "symbol": "BTCUSDT"}
        )
        (row,) = result["list"]
        assert (row["side"], D(row["cumRealisedPnl"])) == ("", pnl)

    async def test_linear_queries_and_errors(self, sim: ExchangeSimulator, rest: Rest) -> None:
        assert await rest.code("GET", "/v5/order/realtime", {"category": "linear"}) == 10001
        usdc = {"category": "linear", "settleCoin": "USDC"}
        assert (await rest.ok("GET", "/v5/order/realtime", usdc))["list"] == []
        assert await rest.code("POST", "/v5/order/create", linear(sim, qty="20")) == 110007
        assert await rest.code("POST", "/v5/order/create", linear(sim, qty="0.00001")) == 110094
        created = await rest.ok("POST", "/v5/order/create", linear(sim, orderLinkId="lin"))
        assert await rest.code("POST", "/v5/order/create", linear(sim, orderLinkId="lin")) == 110072
        spot_ref = {"category": "spot", "symbol": "BTCUSDT", "orderId": created["orderId"]}
        assert await rest.code("POST", "/v5/order/cancel", spot_ref) == 170213
        ref = {**spot_ref, "category": "linear"}
        await rest.ok("POST", "/v5/order/cancel", ref)
        assert await rest.code("POST", "/v5/order/cancel", ref) == 110001
        assert sim.balance(KEY, "USDT") == (D(100_000), 0)
