"""The Bybit v5 public WebSocket dialect: control answers, limits and topic payloads."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator, TickEvents
from rxconnector.testing.simulator import bybit_ws as bws
from rxconnector.testing.simulator.bybit_payloads import exec_id

from .helpers import levels, recv_json, recv_until, shape, wait_closed

SPOT = "/v5/public/spot"
LINEAR = "/v5/public/linear"


def is_answer(frame: Any) -> bool:
    return "op" in frame and "topic" not in frame


async def request(ws: aiohttp.ClientWebSocketResponse, payload: Any) -> Any:
    """Send a control message; return the next answer (skipping data)."""
    await ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))
    return await recv_until(ws, is_answer)


async def frames(ws: aiohttp.ClientWebSocketResponse, wait: float = 0.05) -> list[Any]:
    """Every frame already waiting (stops after ``wait`` s of silence)."""
    out: list[Any] = []
    while True:
        try:
            out.append(await recv_json(ws, wait))
        except TimeoutError:
            return out


def without(message: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in keys}


class BookReplica:
    """A client book built by Bybit's rules: snapshot replaces, size 0 deletes."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.u = 0

    def apply(self, message: dict[str, Any]) -> None:
        data = message["data"]
        if message["type"] == "snapshot":
            self.bids, self.asks = dict(levels(data["b"])), dict(levels(data["a"]))
        else:
            for side, key in ((self.bids, "b"), (self.asks, "a")):
                for price, size in levels(data[key]):
                    if size == 0:
                        side.pop(price, None)
                    else:
                        side[price] = size
        self.u = data["u"]

    def sides(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


class TestControl:
    """Subscribe, unsubscribe and ping answers in the documented per-category shapes."""

    async def test_spot_answers(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            answer = await request(ws, {**examples["bybit.v5.ws.subscribe.request"]})
            expected = examples["bybit.v5.ws.subscribe.response.public_spot"]
            assert shape(answer) == shape(expected)
            assert without(answer, "conn_id") == {**without(expected, "conn_id"), "req_id": "test"}
            pong = await request(ws, {"op": "ping"})
            assert pong == {
                **examples["bybit.v5.ws.pong.public_spot"],
                "conn_id": answer["conn_id"],
            }
            unsub = await request(ws, {"op": "unsubscribe", "args": ["orderbook.1.BTCUSDT"]})
            assert unsub["success"] is True and unsub["op"] == "unsubscribe"
            assert "req_id" not in unsub  # Spot echoes req_id only when it was sent
        assert sim.bybit.active_topics() == set()

    async def test_linear_answers(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        async with session.ws_connect(sim.ws_url + LINEAR) as ws:
            answer = await request(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
            expected = examples["bybit.v5.ws.subscribe.response.public_linear_inverse"]
            assert without(answer, "conn_id") == without(expected, "conn_id")
            echoed = await request(
                ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": "7"}
            )
            assert echoed["req_id"] == "7" and echoed["ret_msg"] == ""
            pong = await request(ws, examples["bybit.v5.ws.ping.request"])
            expected_pong = examples["bybit.v5.ws.pong.public_linear_inverse"]
            assert shape(pong) == shape(expected_pong)
            assert pong["req_id"] == "100001" and pong["ret_msg"] == "pong" and pong["op"] == "ping"
        ids = {answer["conn_id"], pong["conn_id"]}
        assert len(ids) == 1 and uuid.UUID(ids.pop())

    async def test_subscribed_topics_are_tracked_per_category(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with (
            session.ws_connect(sim.ws_url + SPOT) as spot,
            session.ws_connect(sim.ws_url + LINEAR) as linear,
        ):
            await request(spot, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
            await request(
                linear, {"op": "subscribe", "args": ["tickers.ETHUSDT", "tickers.ETHUSDT"]}
            )
            assert sim.bybit.active_topics("spot") == {"tickers.BTCUSDT"}
            assert sim.bybit.active_topics("linear") == {"tickers.ETHUSDT"}
            assert sim.active_streams() == {"tickers.BTCUSDT", "tickers.ETHUSDT"}
            await request(
                linear, {"op": "unsubscribe", "args": ["tickers.ETHUSDT", "tickers.NONE"]}
            )
            assert sim.bybit.active_topics() == {"tickers.BTCUSDT"}

    async def test_rejections(self, sim: ExchangeSimulator, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            too_many = [
                f"kline.{i}.BTCUSDT" for i in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720, "D")
            ]
            answer = await request(ws, {"op": "subscribe", "args": too_many, "req_id": "1"})
            assert answer["success"] is False and answer["ret_msg"] == "args size >10"
            assert sim.bybit.active_topics() == set()
            mixed = ["publicTrade.BTCUSDT", "publicTrade.NOPEUSDT", "tickers.btcusdt"]
            answer = await request(ws, {"op": "subscribe", "args": mixed, "req_id": "2"})
            assert answer["success"] is False and answer["req_id"] == "2"
            assert answer["ret_msg"] == "Invalid symbol :[publicTrade.NOPEUSDT,tickers.btcusdt]"
            assert sim.bybit.active_topics() == {"publicTrade.BTCUSDT"}  # the valid one went on
            answer = await request(ws, {"op": "subscribe", "args": ["orderbook.25.BTCUSDT", "x"]})
            assert answer["ret_msg"] == "error:handler not found,topic:orderbook.25.BTCUSDT,x"
            for bad in ("not json", "[1]", {"op": "auth", "args": []}, {"op": "subscribe"}):
                answer = await request(ws, bad)
                assert answer["success"] is False
        async with session.ws_connect(sim.ws_url + LINEAR) as ws:  # no args limit on linear
            answer = await request(ws, {"op": "subscribe", "args": too_many})
            assert answer["success"] is True
            assert len(sim.bybit.active_topics("linear")) == 11

    async def test_args_of_a_connection_are_capped_in_characters(
        self, session: aiohttp.ClientSession
    ) -> None:
        symbols = tuple(f"SYM{i:03d}USDT" for i in range(80))
        async with ExchangeSimulator(symbols=symbols, autostart_market=False) as sim:
            kinds = ["publicTrade", "tickers", *(f"orderbook.{d}" for d in (1, 50, 200, 1000))]
            kinds += [f"kline.{i}" for i in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720, "D", "W")]
            topics = [f"{k}.{s}" for s in symbols for k in kinds]
            async with session.ws_connect(sim.ws_url + LINEAR) as ws:
                taken = 0
                for start in range(0, len(topics), 100):
                    batch = topics[start : start + 100]
                    answer = await request(ws, {"op": "subscribe", "args": batch})
                    if not answer["success"]:
                        break
                    taken += sum(len(t) for t in batch)
                assert "21000" in answer["ret_msg"]
                (conn,) = sim.connections
                assert sum(len(t) for t in conn.streams) == taken <= bws.MAX_ARGS_CHARS
                assert taken + sum(len(t) for t in batch) > bws.MAX_ARGS_CHARS

    async def test_connection_attempts_are_limited(
        self,
        sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(bws, "MAX_CONNECTION_ATTEMPTS", 2)
        for _ in range(2):
            async with session.ws_connect(sim.ws_url + SPOT):
                pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(sim.ws_url + LINEAR)
        assert info.value.status == 429


class TestIdle:
    """A connection without ping-pong and without data is cut; either keeps it alive."""

    async def test_idle_connection_is_closed(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(bybit_idle_timeout=0.2, autostart_market=False) as sim,
            session.ws_connect(sim.ws_url + SPOT) as ws,
        ):
            assert await wait_closed(ws, 1.0) == 1001
            assert sim.connection_history[0].close_reason.startswith("Idle")

    async def test_pings_keep_a_connection_alive(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(bybit_idle_timeout=0.2, autostart_market=False) as sim,
            session.ws_connect(sim.ws_url + LINEAR) as ws,
        ):
            for _ in range(8):  # 0.64 s: three timeouts
                assert (await request(ws, {"op": "ping"}))["ret_msg"] == "pong"
                await asyncio.sleep(0.08)
            (conn,) = sim.connections
            assert not conn.closing and conn.close_code is None

    async def test_data_keeps_a_connection_alive(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(bybit_idle_timeout=0.2, tick_interval=0.02) as sim,
            session.ws_connect(sim.ws_url + SPOT) as ws,
        ):
            await request(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
            await asyncio.sleep(0.6)
            (conn,) = sim.connections
            assert not conn.closing and conn.close_code is None
            for _ in range(10):  # still flowing
                assert (await recv_json(ws))["topic"] == "orderbook.50.BTCUSDT"


class TestOrderBook:
    """Snapshot then window deltas: a replica equals the true book at every ``u``."""

    @pytest.mark.parametrize("depth", [50, 200])
    async def test_deltas_rebuild_the_true_window(
        self,
        paused_sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        depth: int,
    ) -> None:
        sim = paused_sim
        topic = f"orderbook.{depth}.BTCUSDT"
        async with session.ws_connect(sim.ws_url + LINEAR) as ws:
            await request(ws, {"op": "subscribe", "args": [topic]})
            await sim.step(40)
            messages = await frames(ws)
        assert messages[0]["type"] == "snapshot"
        assert shape(messages[0]) == shape(examples["bybit.v5.ws.orderbook.snapshot"])
        assert shape(messages[1]) == shape(examples["bybit.v5.ws.orderbook.delta"])
        replica = BookReplica()
        for previous, message in itertools.pairwise([None, *messages]):
            replica.apply(message)
            u, seq = message["data"]["u"], message["data"]["seq"]
            if previous is not None:
                assert message["type"] == "delta"
                assert u == previous["data"]["u"] + 1
                assert seq > previous["data"]["seq"]
            bids, asks = sim.bybit.book_at("BTCUSDT", u, topic_depth=depth)
            assert replica.sides() == (bids, asks)
            assert (bids, asks) == sim.book_at("BTCUSDT", seq, depth)
            assert sim.bybit.seq_at("BTCUSDT", u, depth) == seq
        assert len(messages) == 41

    async def test_level_1_is_snapshots_resent_with_the_same_u(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            await request(ws, {"op": "subscribe", "args": ["orderbook.1.ETHUSDT"]})
            await sim.step(10)
            moving = await frames(ws)
            # ticks that leave the book alone: level 1 is re-sent after 3 periods
            quiet = TickEvents("ETHUSDT", sim.server_time_ms(), 0, 0, (), (), (), (), False)
            for tick in range(1, 3 * sim.config.periodic_ticks + 1):
                sim.bybit.publish([quiet], tick, set())
            await sim.flush()
            resent = await frames(ws)
        assert all(m["type"] == "snapshot" for m in moving + resent)
        assert all(len(m["data"]["b"]) == len(m["data"]["a"]) == 1 for m in moving)
        us = [m["data"]["u"] for m in moving]
        assert us == list(range(us[0], us[0] + len(us)))
        assert [m["data"] for m in resent] == [moving[-1]["data"]]

    async def test_a_stall_ends_with_a_snapshot(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            await request(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
            await sim.step(3)
            before = await frames(ws)
            sim.stall(60)
            await sim.step(5)
            assert await frames(ws) == []
            sim.unstall()
            await sim.step(3)
            after = await frames(ws)
        assert [m["type"] for m in after] == ["snapshot", "delta", "delta"]
        assert after[0]["data"]["u"] == before[-1]["data"]["u"] + 6  # u went on meanwhile
        replica = BookReplica()
        for message in after:
            replica.apply(message)
        assert replica.sides() == sim.bybit.book_at("BTCUSDT", replica.u)

    async def test_dropped_updates_leave_a_u_gap(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(sim.ws_url + LINEAR) as ws:
            await request(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
            await sim.step(2)
            sim.drop_updates("BTCUSDT", 2)
            await sim.step(3)
            messages = await frames(ws)
        us = [m["data"]["u"] for m in messages]
        assert [m["type"] for m in messages] == ["snapshot", "delta", "delta", "delta"]
        assert us[1:] == [us[0] + 1, us[0] + 2, us[0] + 5]

    async def test_restart_fault_sends_u_1(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            await request(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
            await sim.step(2)
            sim.bybit.restart_books("BTCUSDT")
            await sim.step(2)
            messages = await frames(ws)
        tail = [(m["type"], m["data"]["u"]) for m in messages[-3:]]
        assert tail == [("snapshot", 1), ("delta", 2), ("delta", 3)]
        replica = BookReplica()
        for message in messages[-3:]:
            replica.apply(message)
        assert replica.sides() == sim.bybit.book_at("BTCUSDT", 3)


class TestTradesTickersKlines:
    """publicTrade, tickers and kline payloads agree with the market and the examples."""

    @pytest.mark.parametrize("category", ["spot", "linear"])
    async def test_public_trades(
        self,
        paused_sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
        category: str,
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(f"{sim.ws_url}/v5/public/{category}") as ws:
            await request(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
            start = len(sim.trades("BTCUSDT"))
            await sim.step(30)
            messages = await frames(ws)
        example = examples["bybit.v5.ws.publicTrade"]
        entries = [e for m in messages for e in m["data"]]
        tape = sim.trades("BTCUSDT")[start:]
        assert len(entries) == len(tape) and any(len(m["data"]) > 1 for m in messages)
        for message in messages:
            assert shape(without(message, "data")) == shape(without(example, "data"))
        expected_keys = set(example["data"][0]) - ({"L"} if category == "spot" else set())
        for entry, trade in zip(entries, tape, strict=True):
            assert set(entry) == expected_keys
            assert entry["i"] == exec_id(category, "BTCUSDT", trade.id)
            assert Decimal(entry["p"]) == trade.price and Decimal(entry["v"]) == trade.qty
            assert entry["S"] == trade.taker_side.capitalize() and entry["T"] == trade.time
        if category == "linear":
            assert {e["L"] for e in entries} <= {
                "PlusTick",
                "ZeroPlusTick",
                "MinusTick",
                "ZeroMinusTick",
            }
            uuid.UUID(entries[0]["i"])
        else:
            assert [int(e["i"]) for e in entries] == [t.id for t in tape]

    async def test_spot_tickers_are_snapshots(
        self,
        paused_sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
    ) -> None:
        sim = paused_sim
        await sim.step(5)
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            await request(ws, {"op": "subscribe", "args": ["tickers.ETHUSDT"]})
            await sim.step(20)
            messages = await frames(ws)
        example = examples["bybit.v5.ws.tickers.spot"]
        assert len(messages) > 3
        for message in messages:
            assert shape(message) == shape(example) and message["type"] == "snapshot"
        for previous, message in itertools.pairwise(messages):
            assert previous["data"] != message["data"]  # sent only when something changed
        last = messages[-1]["data"]
        assert Decimal(last["lastPrice"]) == sim.trades("ETHUSDT")[-1].price

    async def test_linear_tickers_are_a_snapshot_then_deltas(
        self,
        paused_sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
    ) -> None:
        sim = paused_sim
        await sim.step(5)
        async with session.ws_connect(sim.ws_url + LINEAR) as ws:
            await request(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
            await sim.step(20)
            messages = await frames(ws)
        example = examples["bybit.v5.ws.tickers.linear_perpetual"]
        assert shape(messages[0]) == shape(example)
        assert {m["type"] for m in messages[1:]} == {"delta"}
        merged: dict[str, Any] = {}
        for message in messages:
            data = message["data"]
            if message["type"] == "delta":
                assert set(data) < set(merged) and data["symbol"] == "BTCUSDT"
                assert any(merged[k] != v for k, v in data.items() if k != "symbol")
            merged.update(data)
            (bid, _), (ask, _) = (side[0] for side in sim.book_at("BTCUSDT", message["cs"], 1))
            assert (Decimal(merged["bid1Price"]), Decimal(merged["ask1Price"])) == (bid, ask)
        assert Decimal(merged["lastPrice"]) == sim.trades("BTCUSDT")[-1].price

    async def test_klines_close_with_confirm(
        self,
        paused_sim: ExchangeSimulator,
        session: aiohttp.ClientSession,
        examples: dict[str, Any],
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            await request(ws, {"op": "subscribe", "args": ["kline.1.BTCUSDT"]})
            await sim.step(4)
            sim.clock_offset_ms = 61_000  # the next tick is in the next minute
            await sim.step(4)
            messages = await frames(ws)
        example = examples["bybit.v5.ws.kline"]
        candles = [m["data"][0] for m in messages]
        assert all(shape(m) == shape(example) for m in messages)
        closed = [c for c in candles if c["confirm"]]
        assert len(closed) == 1
        first = candles[0]
        assert closed[0]["start"] == first["start"] and closed[0]["end"] == first["start"] + 59_999
        later = [c for c in candles if c["start"] > first["start"]]
        assert later and not any(c["confirm"] for c in later)
        assert {c["interval"] for c in candles} == {"1"}


class TestSharedFaults:
    """The simulator-wide faults reach Bybit connections too."""

    async def test_garbage_drop_and_shutdown(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(sim.ws_url + SPOT) as ws:
            await request(ws, {"op": "ping"})
            sim.send_garbage(2)
            first = await ws.receive(timeout=1)
            assert first.data == "this is not json"
            await sim.drop_connections()
            assert await wait_closed(ws) == 1006
        async with session.ws_connect(sim.ws_url + LINEAR) as ws:
            await request(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
            shutdown = asyncio.ensure_future(sim.server_shutdown(grace=0.2))
            # no serverShutdown notice on Bybit: only trades until the close
            while True:
                msg = await ws.receive(timeout=2)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                assert json.loads(msg.data)["topic"] == "publicTrade.BTCUSDT"
            assert ws.close_code == 1001
            assert await shutdown == 1
