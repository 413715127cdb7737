"""Binance order endpoints and the WebSocket-API user data stream of the simulator,
over real sockets, signed here with our own HMAC code (not the library's)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from yarl import URL

from rxconnector.exchanges.binance.user_stream import parse_user_event
from rxconnector.models import Balance, BalanceDelta, Execution, OrderUpdate
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.testing.simulator.book import ASK, BID

from .helpers import wait_closed

D = Decimal
KEY, SECRET = "trade-key", "trade-secret-never-shown"


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    """A paused simulator (tests move the market with ``step``) with one funded key."""
    async with ExchangeSimulator(seed=7, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


class Rest:
    """Signed /api/v3 calls; the timestamp is the simulator's clock plus ``offset_ms``."""

    def __init__(self, sim: ExchangeSimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str = KEY,
        secret: str = SECRET,
        offset_ms: int = 0,
        **params: Any,
    ) -> tuple[int, Any]:
        params["timestamp"] = self.sim.server_time_ms() + offset_ms
        query = urlencode(params)
        url = f"{self.sim.rest_url}/api/v3/{path}?{query}&signature={hmac_hex(secret, query)}"
        sent = URL(url, encoded=True)  # exactly what was signed, as the library sends it
        async with self.session.request(method, sent, headers={"X-MBX-APIKEY": key}) as resp:
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, **params: Any) -> Any:
        status, body = await self.call(method, path, **params)
        assert status == 200, body
        return body


@pytest.fixture
def rest(sim: ExchangeSimulator, session: aiohttp.ClientSession) -> Rest:
    return Rest(sim, session)


def pem(private: ed25519.Ed25519PrivateKey) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def touch(sim: ExchangeSimulator, side: int, symbol: str = "BTCUSDT") -> Decimal:
    level = sim.symbol(symbol).book.levels(side, 1)[0][0]
    return D(level).scaleb(-sim.symbol(symbol).price_exp)


def below_bid(sim: ExchangeSimulator, ticks: int = 100) -> str:
    return str(touch(sim, BID) - D(ticks) / 100)


async def step_until_filled(sim: ExchangeSimulator, order_id: int, limit: int = 300) -> None:
    for _ in range(limit):
        order = next(o for o in sim.orders() if o.id == order_id)
        if not order.is_open:
            return
        await sim.step()
    raise AssertionError("the market never went through the order")


class TestOrderEndpoints:
    """Placing, querying and cancelling answer Binance's documented shapes."""

    async def test_the_three_response_types(
        self, sim: ExchangeSimulator, rest: Rest, examples: dict[str, Any]
    ) -> None:
        common = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        for resp_type in ("ACK", "RESULT", "FULL"):
            body = await rest.ok(
                "POST",
                "order",
                **common,
                quantity="0.001",
                price=below_bid(sim),
                newOrderRespType=resp_type,
            )
            expected = examples[f"binance.spot.rest.order.{resp_type.lower()}"]
            assert set(body) == set(expected)
            assert body["orderListId"] == -1 and isinstance(body["orderId"], int)
            if resp_type != "ACK":
                assert (body["status"], body["executedQty"]) == ("NEW", "0.00000000")

    async def test_a_market_order_fills_at_the_book_and_moves_the_balances(
        self, sim: ExchangeSimulator, rest: Rest, examples: dict[str, Any]
    ) -> None:
        book = sim.symbol("BTCUSDT").book
        (p0, q0), (p1, _q1) = book.levels(ASK, 2)
        quantity = D(q0 + 100).scaleb(-5)
        body = await rest.ok(
            "POST", "order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=str(quantity)
        )
        assert body["status"] == "FILLED" and D(body["executedQty"]) == quantity
        fill_keys = set(examples["binance.spot.rest.order.full"]["fills"][0])
        assert all(set(f) == fill_keys for f in body["fills"])
        assert [D(f["price"]) for f in body["fills"]] == [D(p0) / 100, D(p1) / 100]
        spent = sum(D(f["price"]) * D(f["qty"]) for f in body["fills"])
        fee = sum(D(f["commission"]) for f in body["fills"])
        assert D(body["cummulativeQuoteQty"]) == spent and fee == quantity * D("0.001")
        account = await rest.ok("GET", "account")
        balances = {b["asset"]: (D(b["free"]), D(b["locked"])) for b in account["balances"]}
        assert balances["USDT"] == (D(100_000) - spent, 0)
        assert balances["BTC"] == (1 + quantity - fee, 0)

    async def test_query_open_orders_and_my_trades(
        self, sim: ExchangeSimulator, rest: Rest
    ) -> None:
        resting = await rest.ok(
            "POST",
            "order",
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=str(touch(sim, ASK) + 1),
            newClientOrderId="mine-1",
        )
        taker = await rest.ok(
            "POST", "order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002"
        )
        by_id = await rest.ok("GET", "order", symbol="BTCUSDT", orderId=resting["orderId"])
        by_client = await rest.ok("GET", "order", symbol="BTCUSDT", origClientOrderId="mine-1")
        assert by_id == by_client and by_id["isWorking"] is True
        assert {"time", "updateTime", "stopPrice", "icebergQty"} <= set(by_id)
        opened = await rest.ok("GET", "openOrders", symbol="BTCUSDT")
        assert [o["orderId"] for o in opened] == [resting["orderId"]]
        assert await rest.ok("GET", "openOrders") == opened
        trades = await rest.ok("GET", "myTrades", symbol="BTCUSDT")
        assert {t["orderId"] for t in trades} == {taker["orderId"]}
        assert all(t["isBuyer"] is False and t["isMaker"] is False for t in trades)
        status, body = await rest.call("GET", "order", symbol="BTCUSDT", orderId=1)
        assert (status, body["code"]) == (400, -2013)

    async def test_cancel_answers_the_documented_shape_once(
        self, sim: ExchangeSimulator, rest: Rest, examples: dict[str, Any]
    ) -> None:
        placed = await rest.ok(
            "POST",
            "order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=below_bid(sim),
            newClientOrderId="to-cancel",
        )
        assert sim.balance(KEY, "USDT")[1] == D(placed["price"]) * D("0.01")
        body = await rest.ok(
            "DELETE",
            "order",
            symbol="BTCUSDT",
            origClientOrderId="to-cancel",
            newClientOrderId="cancel-1",
        )
        assert set(body) == set(examples["binance.spot.rest.cancel_order"])
        assert (body["status"], body["origClientOrderId"], body["clientOrderId"]) == (
            "CANCELED",
            "to-cancel",
            "cancel-1",
        )
        assert sim.balance(KEY, "USDT") == (D(100_000), 0)
        status, again = await rest.call(
            "DELETE", "order", symbol="BTCUSDT", orderId=placed["orderId"]
        )
        assert (status, again) == (400, {"code": -2011, "msg": "Unknown order sent."})

    async def test_cancel_restrictions_and_cancel_all(
        self, sim: ExchangeSimulator, rest: Rest, examples: dict[str, Any]
    ) -> None:
        ids = []
        for _ in range(2):
            placed = await rest.ok(
                "POST",
                "order",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price=below_bid(sim),
            )
            ids.append(placed["orderId"])
        status, body = await rest.call(
            "DELETE",
            "order",
            symbol="BTCUSDT",
            orderId=ids[0],
            cancelRestrictions="ONLY_PARTIALLY_FILLED",
        )
        assert (status, body) == (400, examples["binance.spot.rest.error.cancel_restrictions"])
        status, body = await rest.call(
            "DELETE", "order", symbol="BTCUSDT", orderId=ids[0], cancelRestrictions="SOMETIMES"
        )
        assert body["code"] == -1145
        cancelled = await rest.ok("DELETE", "openOrders", symbol="BTCUSDT")
        assert sorted(c["orderId"] for c in cancelled) == ids
        assert all(c["status"] == "CANCELED" for c in cancelled)
        assert await rest.ok("GET", "openOrders") == []

    async def test_test_order_validates_without_placing(
        self, sim: ExchangeSimulator, rest: Rest, examples: dict[str, Any]
    ) -> None:
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": below_bid(sim),
        }
        assert await rest.ok("POST", "order/test", **order) == {}
        rates = await rest.ok("POST", "order/test", computeCommissionRates="true", **order)
        assert set(rates) == set(examples["binance.spot.rest.order_test.with_commission"])
        assert rates["standardCommissionForOrder"]["taker"] == "0.00100000"
        status, body = await rest.call("POST", "order/test", **{**order, "price": "1.001"})
        assert (status, body["code"], body["msg"]) == (400, -1013, "Filter failure: PRICE_FILTER")
        assert sim.orders() == []
        weights = [r.weight for r in sim.rest_log if r.path.endswith("/order/test")]
        assert weights == [1, 20, 1]

    @pytest.mark.parametrize(
        ("change", "code", "msg"),
        [
            ({"symbol": None}, -1102, "Mandatory parameter 'symbol'"),
            ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
            ({"side": "HOLD"}, -1117, "Invalid side."),
            ({"type": "ICEBERG"}, -1116, "Invalid orderType."),
            ({"type": "STOP_LOSS"}, -1013, "does not support STOP_LOSS"),
            ({"timeInForce": None}, -1102, "Mandatory parameter 'timeInForce'"),
            ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
            ({"type": "MARKET", "timeInForce": None}, -1106, "'price' sent when not required"),
            ({"quantity": "0.000000001"}, -1111, "'quantity' has too much precision"),
            ({"quantity": "1e-3"}, -1100, "Illegal characters"),
            ({"price": "20000.005"}, -1013, "Filter failure: PRICE_FILTER"),
            ({"quantity": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
            ({"quantity": "0.0001"}, -1013, "Filter failure: NOTIONAL"),
            ({"quantity": "10"}, -2010, "Account has insufficient balance for requested action."),
            ({"newClientOrderId": "bad id!"}, -1100, "Illegal characters"),
            ({"unknownParameter": "1"}, -1104, "Not all sent parameters were read"),
            ({"icebergQty": "0.001"}, -1013, "does not support 'icebergQty'"),
        ],
    )
    async def test_order_errors(
        self, sim: ExchangeSimulator, rest: Rest, change: dict[str, Any], code: int, msg: str
    ) -> None:
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "20000",
        }
        order.update(change)
        params = {k: v for k, v in order.items() if v is not None}
        status, body = await rest.call("POST", "order", **params)
        assert status == 400 and body["code"] == code and msg in body["msg"], body
        assert sim.orders() == []

    async def test_business_rejections(self, sim: ExchangeSimulator, rest: Rest) -> None:
        ask = touch(sim, ASK)
        status, body = await rest.call(
            "POST",
            "order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT_MAKER",
            quantity="0.01",
            price=str(ask),
        )
        assert (status, body) == (
            400,
            {"code": -2010, "msg": "Order would immediately match and take."},
        )
        first = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": below_bid(sim),
            "newClientOrderId": "dup",
        }
        await rest.ok("POST", "order", **first)
        status, body = await rest.call("POST", "order", **first)
        assert body == {"code": -2010, "msg": "Duplicate order sent."}

    async def test_signatures_cover_the_query_exactly_as_sent(
        self, sim: ExchangeSimulator, rest: Rest
    ) -> None:
        """``/`` and ``:`` are legal in client order ids and sent percent-encoded."""
        body = await rest.ok("POST", "order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                             timeInForce="GTC", quantity="0.01", price=below_bid(sim),
                             newClientOrderId="desk/1:a.b_c-d")  # fmt: skip
        assert body["clientOrderId"] == "desk/1:a.b_c-d"

    async def test_ed25519_keys_sign_rest_requests(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        private = ed25519.Ed25519PrivateKey.generate()
        sim.add_api_key("ed-key", pem(private))
        query = urlencode({"timestamp": sim.server_time_ms()})
        signature = quote(base64.b64encode(private.sign(query.encode())).decode(), safe="")
        url = URL(f"{sim.rest_url}/api/v3/account?{query}&signature={signature}", encoded=True)
        async with session.get(url, headers={"X-MBX-APIKEY": "ed-key"}) as resp:
            assert resp.status == 200 and "balances" in await resp.json()
        forged = URL(f"{sim.rest_url}/api/v3/account?{query}&signature=AAAA", encoded=True)
        async with session.get(forged, headers={"X-MBX-APIKEY": "ed-key"}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, -1022)

    async def test_orders_are_signed_and_timed(self, sim: ExchangeSimulator, rest: Rest) -> None:
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        status, body = await rest.call("POST", "order", secret="wrong", **order)
        assert (status, body["code"]) == (400, -1022)
        sim.clock_offset_ms = 10_000  # our timestamps are 10 s behind the server now
        status, body = await rest.call("POST", "order", offset_ms=-10_000, **order)
        assert body["code"] == -1021 and "recvWindow" in body["msg"]
        status, body = await rest.call(
            "POST", "order", offset_ms=-10_000, recvWindow=15_000, **order
        )
        assert status == 200
        sim.clock_offset_ms = -3000  # now 3 s ahead of the server
        status, body = await rest.call("POST", "order", offset_ms=3000, **order)
        assert body["code"] == -1021 and "ahead" in body["msg"]
        assert len(sim.orders()) == 1


class WsApi:
    """A WebSocket-API client: answers by request id, user data events buffered."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sim: ExchangeSimulator) -> None:
        self.ws, self.sim = ws, sim
        self.events: list[dict[str, Any]] = []
        self._answers: dict[Any, dict[str, Any]] = {}
        self._next = 0

    async def _read(self, wait: float = 2.0) -> None:
        msg = await self.ws.receive(timeout=wait)
        assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
        frame = json.loads(msg.data)
        if "status" in frame:
            self._answers[frame["id"]] = frame
        else:
            self.events.append(frame)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next += 1
        request_id = f"r{self._next}"
        frame: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send_str(json.dumps(frame))
        while request_id not in self._answers:
            await self._read()
        return self._answers.pop(request_id)

    def signed(
        self, key: str = KEY, secret: str = SECRET, offset_ms: int = 0, **extra: Any
    ) -> dict[str, Any]:
        params = {"apiKey": key, "timestamp": self.sim.server_time_ms() + offset_ms, **extra}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        return {**params, "signature": hmac_hex(secret, payload)}

    async def subscribe(self, key: str = KEY, secret: str = SECRET) -> int:
        answer = await self.request("userDataStream.subscribe.signature", self.signed(key, secret))
        assert answer["status"] == 200, answer
        sid: int = answer["result"]["subscriptionId"]
        return sid

    async def event(self, kind: str, wait: float = 2.0) -> dict[str, Any]:
        """The next buffered or arriving event of ``kind`` (earlier ones are dropped)."""
        while True:
            while self.events:
                frame = self.events.pop(0)
                if frame.get("event", {}).get("e") == kind:
                    return frame
            await self._read(wait)

    async def quiet(self, wait: float = 0.2) -> list[dict[str, Any]]:
        """Everything that arrives within ``wait`` seconds."""
        try:
            while True:
                await self._read(wait)
        except TimeoutError:
            pass
        out, self.events = self.events, []
        return out


@pytest.fixture
async def ws_api(sim: ExchangeSimulator, session: aiohttp.ClientSession) -> AsyncIterator[WsApi]:
    async with session.ws_connect(f"{sim.ws_url}/ws-api/v3") as ws:
        yield WsApi(ws, sim)


def models(frame: dict[str, Any]) -> list[Any]:
    """What the library's own parser makes of an event frame."""
    return parse_user_event(frame["event"], 0.0)


class TestUserDataStream:
    """userDataStream.subscribe.signature, then every account change as an event."""

    async def test_an_order_life_as_events(
        self, sim: ExchangeSimulator, rest: Rest, ws_api: WsApi, examples: dict[str, Any]
    ) -> None:
        sid = await ws_api.subscribe()
        assert sid == 0 and sim.user_stream_subscriptions() == [(sim.connections[0].id, 0, KEY)]
        placed = await rest.ok(
            "POST",
            "order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=str(touch(sim, ASK) - D("0.01")),
        )
        new = await ws_api.event("executionReport")
        example = examples["binance.spot.uds.executionReport"]["event"]
        assert set(new["event"]) == set(example) - {"v"}  # v: STP only (§A5.1)
        assert new["subscriptionId"] == sid
        (update,) = models(new)
        assert isinstance(update, OrderUpdate)
        assert (update.order_id, update.status, update.execution_type) == (
            str(placed["orderId"]),
            "NEW",
            "NEW",
        )
        position = await ws_api.event("outboundAccountPosition")
        assert set(position["event"]) == set(
            examples["binance.spot.uds.outboundAccountPosition"]["event"]
        )
        (usdt,) = models(position)
        assert isinstance(usdt, Balance) and usdt.locked == D(placed["price"]) * D("0.01")
        await step_until_filled(sim, placed["orderId"])
        trade = await ws_api.event("executionReport")
        update, execution = models(trade)
        assert isinstance(execution, Execution) and execution.is_maker
        assert (update.status, update.filled_quantity, execution.quantity) == (
            "FILLED",
            D("0.01"),
            D("0.01"),
        )
        assert execution.fee == D("0.00001") and execution.fee_asset == "BTC"
        after = {b.asset: b for b in models(await ws_api.event("outboundAccountPosition"))}
        assert after["BTC"].free == sim.balance(KEY, "BTC")[0] == D("1.00999")
        assert after["USDT"].locked == 0

    async def test_a_cancel_reports_both_client_ids(
        self, sim: ExchangeSimulator, rest: Rest, ws_api: WsApi
    ) -> None:
        await ws_api.subscribe()
        await rest.ok(
            "POST",
            "order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=below_bid(sim),
            newClientOrderId="original",
        )
        await rest.ok(
            "DELETE",
            "order",
            symbol="BTCUSDT",
            origClientOrderId="original",
            newClientOrderId="the-cancel",
        )
        await ws_api.event("executionReport")
        cancel = await ws_api.event("executionReport")
        assert (cancel["event"]["x"], cancel["event"]["c"], cancel["event"]["C"]) == (
            "CANCELED",
            "the-cancel",
            "original",
        )
        assert models(cancel)[0].client_order_id == "original"

    async def test_a_deposit_sends_balance_update_then_the_position(
        self, sim: ExchangeSimulator, ws_api: WsApi, examples: dict[str, Any]
    ) -> None:
        await ws_api.subscribe()
        sim.set_balance(KEY, "BTC", "3.5")
        update = await ws_api.event("balanceUpdate")
        assert set(update["event"]) == set(examples["binance.spot.uds.balanceUpdate"]["event"])
        (delta,) = models(update)
        assert isinstance(delta, BalanceDelta) and (delta.asset, delta.delta) == ("BTC", D("2.5"))
        (btc,) = models(await ws_api.event("outboundAccountPosition"))
        assert (btc.asset, btc.free, btc.locked) == ("BTC", D("3.5"), 0)

    async def test_terminated_subscriptions_get_no_events_until_renewed(
        self, sim: ExchangeSimulator, ws_api: WsApi, examples: dict[str, Any]
    ) -> None:
        sid = await ws_api.subscribe()
        assert sim.terminate_user_streams() == 1
        ended = await ws_api.event("eventStreamTerminated")
        assert ended["subscriptionId"] == sid
        assert set(ended["event"]) == set(
            examples["binance.spot.uds.eventStreamTerminated"]["event"]
        )
        sim.set_balance(KEY, "BTC", "2")
        assert await ws_api.quiet() == []
        renewed = await ws_api.subscribe()
        assert renewed == sid + 1
        sim.set_balance(KEY, "BTC", "3")
        assert (await ws_api.event("balanceUpdate"))["subscriptionId"] == renewed

    async def test_unsubscribe_one_or_all(self, sim: ExchangeSimulator, ws_api: WsApi) -> None:
        sim.add_api_key("second", "second-secret")
        first = await ws_api.subscribe()
        second = await ws_api.subscribe("second", "second-secret")
        listed = await ws_api.request("session.subscriptions")
        assert listed["result"] == [{"subscriptionId": first}, {"subscriptionId": second}]
        assert (await ws_api.request("userDataStream.unsubscribe", {"subscriptionId": first}))[
            "status"
        ] == 200
        assert (await ws_api.event("eventStreamTerminated"))["subscriptionId"] == first
        missing = await ws_api.request("userDataStream.unsubscribe", {"subscriptionId": first})
        assert (missing["status"], missing["error"]["code"]) == (400, -2036)
        await ws_api.request("userDataStream.unsubscribe")
        assert (await ws_api.event("eventStreamTerminated"))["subscriptionId"] == second
        assert sim.user_stream_subscriptions() == []

    async def test_one_subscription_per_account_and_events_only_for_it(
        self, sim: ExchangeSimulator, ws_api: WsApi
    ) -> None:
        sim.add_api_key("second", "second-secret")
        await ws_api.subscribe()
        again = await ws_api.request("userDataStream.subscribe.signature", ws_api.signed())
        assert (again["status"], again["error"]["code"]) == (400, -2035)
        sim.set_balance("second", "BTC", "5")
        assert await ws_api.quiet() == []

    @pytest.mark.parametrize(
        ("params", "status", "code"),
        [
            ({"secret": "wrong"}, 400, -1022),
            ({"key": "nobody"}, 401, -2015),
            ({"offset_ms": -6000}, 400, -1021),
            ({"offset_ms": 1500}, 400, -1021),
            ({"recvWindow": 70_000}, 400, -1131),
        ],
    )
    async def test_signature_and_timestamp_checks(
        self, ws_api: WsApi, params: dict[str, Any], status: int, code: int
    ) -> None:
        answer = await ws_api.request("userDataStream.subscribe.signature", ws_api.signed(**params))
        assert (answer["status"], answer["error"]["code"]) == (status, code)
        unsigned = await ws_api.request("userDataStream.subscribe.signature", {"apiKey": KEY})
        assert unsigned["error"]["code"] == -1102

    async def test_the_shifted_clock_decides(self, sim: ExchangeSimulator, ws_api: WsApi) -> None:
        sim.clock_offset_ms = 8000
        late = await ws_api.request(
            "userDataStream.subscribe.signature", ws_api.signed(offset_ms=-8000)
        )
        assert late["error"]["code"] == -1021
        sim.reject_timestamp_once()
        assert (await ws_api.request("userDataStream.subscribe.signature", ws_api.signed()))[
            "error"
        ]["code"] == -1021
        assert await ws_api.subscribe() == 0

    async def test_logon_needs_an_ed25519_key(self, sim: ExchangeSimulator, ws_api: WsApi) -> None:
        refused = await ws_api.request("session.logon", ws_api.signed())
        assert (refused["status"], refused["error"]["code"]) == (401, -2015)
        early = await ws_api.request("userDataStream.subscribe")
        assert early["error"]["code"] == -1002
        private = ed25519.Ed25519PrivateKey.generate()
        sim.add_api_key("ed-key", pem(private))
        params = {"apiKey": "ed-key", "timestamp": sim.server_time_ms()}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        signature = base64.b64encode(private.sign(payload.encode())).decode()
        logon = await ws_api.request("session.logon", {**params, "signature": signature})
        assert logon["status"] == 200 and logon["result"]["apiKey"] == "ed-key"
        subscribed = await ws_api.request("userDataStream.subscribe")
        sid = subscribed["result"]["subscriptionId"]
        status = await ws_api.request("session.status")
        assert status["result"]["userDataStream"] is True
        await ws_api.request("session.logout")
        assert (await ws_api.event("eventStreamTerminated"))["subscriptionId"] == sid
        assert (await ws_api.request("session.status"))["result"]["apiKey"] is None

    async def test_ping_time_unknown_methods_and_rate_limits(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, ws_api: WsApi
    ) -> None:
        pong = await ws_api.request("ping")
        assert pong["result"] == {} and pong["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
        now = await ws_api.request("time")
        assert abs(now["result"]["serverTime"] - sim.server_time_ms()) < 1000
        unknown = await ws_api.request("order.place", {"symbol": "BTCUSDT"})
        assert (unknown["status"], unknown["error"]["code"]) == (400, -1020)
        url = f"{sim.ws_url}/ws-api/v3?returnRateLimits=false"
        async with session.ws_connect(url) as ws:
            quiet = await WsApi(ws, sim).request("ping")
            assert "rateLimits" not in quiet

    async def test_request_weight_is_limited(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(
                autostart_market=False, weight_limit=6, api_keys={KEY: SECRET}
            ) as sim,
            session.ws_connect(f"{sim.ws_url}/ws-api/v3") as ws,
        ):
            client = WsApi(ws, sim)
            answers = [await client.request("ping") for _ in range(5)]  # 2 to connect + 1 each
            assert [a["status"] for a in answers] == [200] * 4 + [429]
            error = answers[-1]["error"]
            assert (
                error["code"] == -1003 and error["data"]["retryAfter"] > error["data"]["serverTime"]
            )

    async def test_server_shutdown_and_dropped_connections(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, ws_api: WsApi
    ) -> None:
        await ws_api.subscribe()
        assert await sim.drop_connections() == 1
        assert await wait_closed(ws_api.ws) is not None
        assert sim.user_stream_subscriptions() == []
        async with session.ws_connect(f"{sim.ws_url}/ws-api/v3") as ws:
            shutdown = asyncio.ensure_future(sim.server_shutdown(grace=0.05))
            msg = await ws.receive_json(timeout=2)
            assert msg == {"event": {"e": "serverShutdown", "E": msg["event"]["E"]}}
            assert await wait_closed(ws) == 1001
            assert await shutdown == 1
