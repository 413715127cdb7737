"""Start/stop hygiene, determinism across instances, manual stepping."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator, SimulatorConfig, SymbolSpec

from .helpers import recv_json, wait_closed


class TestLifecycle:
    """The server binds a free port, and stop releases everything."""

    async def test_urls_and_stop_closes_clients(self, session: aiohttp.ClientSession) -> None:
        sim = ExchangeSimulator(tick_interval=0.01)
        await sim.start()
        assert sim.rest_url == f"http://127.0.0.1:{sim.port}" and sim.port > 0
        assert sim.ws_url == f"ws://127.0.0.1:{sim.port}"
        ws = await session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade")
        await sim.wait_for_connections(1)
        reader = asyncio.create_task(wait_closed(ws))  # a client reads all the time
        await sim.stop()
        assert await reader == 1001
        await ws.close()
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{sim.rest_url}/api/v3/ping")
        await sim.stop()  # idempotent

    async def test_cannot_start_twice(self) -> None:
        async with ExchangeSimulator() as sim:
            with pytest.raises(RuntimeError):
                await sim.start()

    def test_config_validation(self) -> None:
        with pytest.raises(ValueError):
            SimulatorConfig(tick_interval=0)
        with pytest.raises(ValueError):
            SimulatorConfig(symbols=("BTCUSDT", "BTCUSDT")).symbol_specs()
        with pytest.raises(ValueError):
            SymbolSpec("ABCUSDT", "ABC", "USDT", "100", "0.05", "0.001")  # type: ignore[arg-type]

    async def test_custom_symbol_spec(self, session: aiohttp.ClientSession) -> None:
        spec = SymbolSpec("ABCDEF", "ABC", "DEF", "12.5", "0.001", "0.1")  # type: ignore[arg-type]
        async with ExchangeSimulator(symbols=(spec,), autostart_market=False) as sim:
            async with session.get(f"{sim.rest_url}/api/v3/depth?symbol=ABCDEF&limit=1") as r:
                body = await r.json()
            assert body["bids"][0][0].startswith("12.")
            assert sim.symbols == ["ABCDEF"]


class TestDeterminism:
    """Two simulators with one seed produce the same market."""

    async def test_same_seed_same_tape_and_book(self) -> None:
        async with (
            ExchangeSimulator(seed=3, autostart_market=False) as a,
            ExchangeSimulator(seed=3, autostart_market=False) as b,
        ):
            await a.step(50)
            await b.step(50)
            for sym in a.symbols:
                ta = [(t.id, t.price, t.qty, t.taker_side) for t in a.trades(sym)]
                tb = [(t.id, t.price, t.qty, t.taker_side) for t in b.trades(sym)]
                assert ta == tb and ta
                uid = a.current_update_id(sym)
                assert uid == b.current_update_id(sym)
                assert a.book_at(sym, uid - 7) == b.book_at(sym, uid - 7)


class TestManualClock:
    """pause/resume/step drive the market for deterministic tests."""

    async def test_paused_market_does_not_tick(self) -> None:
        async with ExchangeSimulator(tick_interval=0.01, autostart_market=False) as sim:
            uid = sim.current_update_id("BTCUSDT")
            await asyncio.sleep(0.05)
            assert sim.current_update_id("BTCUSDT") == uid and sim.paused
            sim.resume()
            await asyncio.sleep(0.05)
            assert sim.current_update_id("BTCUSDT") > uid
            sim.pause()
            uid = sim.current_update_id("BTCUSDT")
            await asyncio.sleep(0.03)
            assert sim.current_update_id("BTCUSDT") == uid

    async def test_step_delivers_one_event_per_tick(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            await sim.wait_for_connections(1)
            start = sim.current_update_id("BTCUSDT")
            await sim.step(3)
            events = [await recv_json(ws) for _ in range(3)]
            assert events[0]["U"] == start + 1
            assert events[-1]["u"] == sim.current_update_id("BTCUSDT")
            await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            assert await recv_json(ws) == {"result": ["btcusdt@depth@100ms"], "id": 1}
