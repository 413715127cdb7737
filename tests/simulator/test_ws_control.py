"""Live SUBSCRIBE / UNSUBSCRIBE / LIST / properties and their documented error answers."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator

from .helpers import recv_json, recv_until


async def request(ws: aiohttp.ClientWebSocketResponse, payload: Any) -> Any:
    """Send a control message; return the next answer (a frame with id/code, not data)."""
    await ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))
    return await recv_until(ws, lambda f: "code" in f or "result" in f)


class TestSubscriptions:
    """The documented success answers, and data that follows them."""

    async def test_subscribe_list_unsubscribe(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/stream") as ws:
            sub = examples["binance.spot.ws.SUBSCRIBE.request"]
            sub = {**sub, "params": ["btcusdt@aggTrade", "btcusdt@depth"]}
            assert await request(ws, sub) == examples["binance.spot.ws.SUBSCRIBE.response"]
            frame = await recv_until(ws, lambda f: f.get("stream") == "btcusdt@aggTrade")
            assert frame["data"]["e"] == "aggTrade"
            unsub = examples["binance.spot.ws.UNSUBSCRIBE.request"]
            assert await request(ws, unsub) == examples["binance.spot.ws.UNSUBSCRIBE.response"]
            listed = await request(ws, examples["binance.spot.ws.LIST_SUBSCRIPTIONS.request"])
            assert listed == examples["binance.spot.ws.LIST_SUBSCRIPTIONS.response"]
            assert sim.active_streams() == {"btcusdt@aggTrade"}
            await request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 9})
            assert sim.active_streams() == set()
            # nothing subscribed: only the answer to this request arrives
            assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 10}) == {
                "result": [],
                "id": 10,
            }

    async def test_unsubscribed_stream_stops_flowing(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            await sim.wait_for_connections(1)
            await request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 1})
            await sim.step(3)
            answer = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
            assert answer == {"result": [], "id": 2}

    async def test_properties_switch_wrapping(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            assert await request(
                ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}
            ) == {
                "result": False,
                "id": 2,
            }
            set_req = examples["binance.spot.ws.SET_PROPERTY.request"]
            assert await request(ws, set_req) == examples["binance.spot.ws.SET_PROPERTY.response"]
            get_req = examples["binance.spot.ws.GET_PROPERTY.request"]
            assert await request(ws, get_req) == examples["binance.spot.ws.GET_PROPERTY.response"]
            frame = await recv_json(ws)
            assert frame["stream"] == "btcusdt@trade" and frame["data"]["e"] == "trade"

    async def test_control_log_records_every_text_frame(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            await request(ws, "not json")
        conn = sim.connection_history[-1]
        assert [r.connection_id for r in sim.control_log] == [conn.id, conn.id]
        assert sim.control_log[0].message == {"method": "LIST_SUBSCRIPTIONS", "id": 1}
        assert sim.control_log[1].message is None and sim.control_log[1].text == "not json"
        assert [m.kind for m in conn.messages("text")] == ["text", "text"]

    @pytest.mark.parametrize("req_id", [0, 2**62, "abc123", None])
    async def test_accepted_id_forms(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, req_id: Any
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            answer = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": req_id})
        assert answer == {"result": [], "id": req_id}


class TestErrors:
    """Every documented error answer, plus the simulator's unknown-symbol rejection."""

    @pytest.mark.parametrize(
        ("payload", "answer"),
        [
            ("{bad", {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 2"}),
            (
                {"method": "LIST_SUBSCRIPTIONS"},
                {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
            ),
            (
                {"method": "LIST_SUBSCRIPTIONS", "id": True},
                {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
            ),
            (
                {"method": "LIST_SUBSCRIPTIONS", "id": "x" * 37},
                {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
            ),
            (
                {"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 1},
                {"code": 2, "msg": "Invalid request: too many parameters"},
            ),
            (
                {"method": "GET_PROPERTY", "params": ["colour"], "id": 4},
                {"code": 0, "msg": "Unknown property", "id": 4},
            ),
            (
                {"method": "GET_PROPERTY", "params": [5], "id": 4},
                {"code": 2, "msg": "Invalid request: property name must be a string"},
            ),
            (
                {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 5},
                {"code": 1, "msg": "Invalid value type: expected Boolean"},
            ),
            (
                {"method": "SET_PROPERTY", "params": ["combined", True, 1], "id": 5},
                {"code": 2, "msg": "Invalid request: too many parameters"},
            ),
            (
                {"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 7},
                {"code": 2, "msg": "Invalid request: unknown symbol dogeusdt", "id": 7},
            ),
            (
                {"method": "SUBSCRIBE", "params": ["btcusdt@bogus"], "id": 8},
                {"code": 2, "msg": "Invalid request: invalid stream name btcusdt@bogus", "id": 8},
            ),
        ],
    )
    async def test_error_answers(
        self,
        sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        payload: Any,
        answer: dict[str, Any],
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            assert await request(ws, payload) == answer
            # the connection survives an error answer
            assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 99}) == {
                "result": [],
                "id": 99,
            }

    async def test_unknown_method_and_missing_method(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            unknown = await request(ws, '{"method":"SUBSCRIBEX","params":[],"id":1}')
            missing = await request(ws, '{"params":[],"id":1}')
        assert unknown["code"] == 2
        assert unknown["msg"].startswith("Invalid request: unknown variant `SUBSCRIBEX`, expected")
        assert "`LIST_SUBSCRIPTIONS`" in unknown["msg"]
        assert unknown["msg"].endswith("at line 1 column 22")
        assert missing == {
            "code": 2,
            "msg": "Invalid request: missing field `method` at line 1 column 20",
        }

    async def test_rejected_subscribe_subscribes_nothing(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            answer = await request(
                ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "zzzusdt@trade"], "id": 3}
            )
            assert answer["code"] == 2
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert listed == {"result": [], "id": 4}
