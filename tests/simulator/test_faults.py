"""Each fault the simulator can inject, observed by a real client."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator

from .helpers import recv_json, recv_until, wait_closed


class TestDropConnections:
    """``drop_connections`` kills sockets without a close handshake."""

    async def test_clients_see_an_abnormal_close(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with (
            session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as a,
            session.ws_connect(f"{sim.ws_url}/stream?streams=ethusdt@trade") as b,
        ):
            await sim.wait_for_connections(2)
            assert await sim.drop_connections() == 2
            assert await wait_closed(a) == 1006
            assert await wait_closed(b) == 1006
        assert sim.connections == []
        assert {c.close_code for c in sim.connection_history} == {1006}

    async def test_reconnect_after_drop(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            await sim.wait_for_connections(1)
            await sim.drop_connections()
            await wait_closed(ws)
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            assert (await recv_json(ws))["e"] == "trade"
        assert sim.connection_count_total == 2

    async def test_close_connections_sends_a_close_frame(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            await sim.wait_for_connections(1)
            reader = asyncio.create_task(wait_closed(ws))  # a client reads all the time
            assert await sim.close_connections(1013, "try again later") == 1
            assert await reader == 1013
        assert sim.connection_history[-1].close_reason == "try again later"


class TestStall:
    """A stall stops data but keeps pings and control answers going."""

    async def test_no_data_during_a_stall_then_data_again(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with (
            ExchangeSimulator(
                tick_interval=0.01, ping_interval=0.05, pong_timeout=1.0, max_messages_per_second=50
            ) as sim,
            session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms", autoping=False) as ws,
        ):
            # Pings come every 0.05 s and the first depth frame after up to 0.1 s: answer
            # any ping that arrives first (autoping is off) and start from the first data.
            first = await ws.receive(timeout=2)
            while first.type is aiohttp.WSMsgType.PING:
                await ws.pong(first.data)
                first = await ws.receive(timeout=2)
            assert first.type is aiohttp.WSMsgType.TEXT, first
            last = json.loads(first.data)["u"]
            sim.stall(0.3)
            before = sim.current_update_id("BTCUSDT")
            stall_end = asyncio.get_running_loop().time() + 0.3
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            seen_ping = answered = False
            while True:
                msg = await ws.receive(timeout=2)
                if msg.type is aiohttp.WSMsgType.PING:
                    seen_ping = True
                    await ws.pong(msg.data)
                    continue
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                frame = json.loads(msg.data)
                if frame.get("id") == 4:
                    answered = True
                    continue
                if frame["u"] <= before:
                    last = frame["u"]  # sent before the stall began
                    continue
                break
            assert asyncio.get_running_loop().time() >= stall_end - 0.02
            assert seen_ping and answered
            assert frame["U"] > last + 1  # the stalled updates are lost: a gap
            assert sim.connections[0].pongs_matched >= 1


class TestGarbage:
    """``send_garbage`` delivers non-JSON and malformed frames, then data goes on."""

    async def test_garbage_frames(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            await sim.wait_for_connections(1)
            sim.send_garbage(6)
            await sim.step(1)
            frames = [await ws.receive(timeout=2) for _ in range(7)]
        texts = [f.data for f in frames if f.type is aiohttp.WSMsgType.TEXT]
        binaries = [f for f in frames if f.type is aiohttp.WSMsgType.BINARY]
        assert len(binaries) == 1
        with pytest.raises(json.JSONDecodeError):
            json.loads(texts[0])
        with pytest.raises(json.JSONDecodeError):
            json.loads(texts[1])
        assert json.loads(texts[2]) == {"unexpected": "shape", "n": 1}
        assert json.loads(texts[-1])["e"] == "depthUpdate"  # real data after the garbage


class TestServerShutdown:
    """``serverShutdown`` arrives raw on /ws, wrapped on /stream; then the close."""

    async def test_notice_then_close(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        async with (
            session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as raw,
            session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade") as combined,
        ):
            await sim.wait_for_connections(2)
            shutdown = asyncio.create_task(sim.server_shutdown(grace=0.2))
            notice_raw = await recv_until(raw, lambda f: f.get("e") == "serverShutdown")
            notice_comb = await recv_until(combined, lambda f: f["stream"] == "!serverShutdown")
            assert await wait_closed(raw) == 1001
            assert await wait_closed(combined) == 1001
            assert await shutdown == 2
        assert set(notice_raw) == set(examples["binance.spot.ws.serverShutdown.raw"])
        example = examples["binance.spot.ws.serverShutdown.combined"]
        assert set(notice_comb) == set(example) and set(notice_comb["data"]) == set(example["data"])

    async def test_data_keeps_flowing_during_the_grace_period(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            await sim.wait_for_connections(1)
            shutdown = asyncio.create_task(sim.server_shutdown(grace=0.3))
            await recv_until(ws, lambda f: f.get("e") == "serverShutdown")
            assert (await recv_json(ws))["e"] == "depthUpdate"
            assert await wait_closed(ws) == 1001
            assert await shutdown == 1


class TestRestFaults:
    """Injected REST failures, latency and their bodies."""

    @pytest.mark.parametrize(("status", "code"), [(500, -1000), (503, -1008)])
    async def test_server_errors(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, status: int, code: int
    ) -> None:
        sim.fail_rest(status, count=2)
        for _ in range(2):
            async with session.get(f"{sim.rest_url}/api/v3/time") as resp:
                assert resp.status == status and (await resp.json())["code"] == code
        async with session.get(f"{sim.rest_url}/api/v3/time") as resp:
            assert resp.status == 200

    @pytest.mark.parametrize("status", [429, 418])
    async def test_rate_limit_answers(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, status: int
    ) -> None:
        sim.fail_rest(status, count=1, retry_after=7)
        async with session.get(f"{sim.rest_url}/api/v3/ping") as resp:
            assert resp.status == status
            assert resp.headers["Retry-After"] == "7"
            assert "X-MBX-USED-WEIGHT-1M" in resp.headers
            assert (await resp.json())["code"] == -1003

    async def test_latency(self, sim: ExchangeSimulator, session: aiohttp.ClientSession) -> None:
        sim.rest_latency = 0.15
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with session.get(f"{sim.rest_url}/api/v3/ping") as resp:
            assert resp.status == 200
        assert loop.time() - started >= 0.15
        with pytest.raises(ValueError):
            sim.rest_latency = -1

    def test_unsupported_status_is_refused(self) -> None:
        sim = ExchangeSimulator()
        with pytest.raises(ValueError):
            sim.fail_rest(404)


class TestDropUpdates:
    """``drop_updates`` leaves exactly one U/u gap per dropped run, on that symbol only."""

    async def test_gap_in_the_diff_stream(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim
        url = f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
        async with session.ws_connect(url) as ws:
            await sim.wait_for_connections(1)
            await sim.step(2)
            sim.drop_updates("BTCUSDT", 2)
            await sim.step(4)
            frames = [await recv_json(ws) for _ in range(2 + 2 + 4 + 2)]
        btc = [f["data"] for f in frames if f["stream"] == "btcusdt@depth@100ms"]
        eth = [f["data"] for f in frames if f["stream"] == "ethusdt@depth@100ms"]
        assert len(btc) == 4 and len(eth) == 6
        gaps = [n["U"] - p["u"] - 1 for p, n in itertools.pairwise(btc)]
        assert gaps[0] == 0 and gaps[1] > 0 and gaps[2] == 0
        assert all(n["U"] == p["u"] + 1 for p, n in itertools.pairwise(eth))
        with pytest.raises(KeyError):
            sim.drop_updates("DOGEUSDT")
