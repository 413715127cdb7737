"""Binance's per-connection limits are enforced: rate, stream cap, pong deadline, lifetime."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator

from .helpers import recv_json, recv_until, wait_closed

LIST = json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1})


class TestMessageRate:
    """More than 5 incoming frames in any 1-second window closes the connection (1008)."""

    async def test_six_control_messages_disconnect(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws") as ws:
            for _ in range(6):
                await ws.send_str(LIST)
            assert await wait_closed(ws) == 1008
        conn = sim.connection_history[-1]
        await conn.wait_closed()
        assert conn.close_code == 1008 and conn.close_reason == "Too many messages"
        assert sim.max_message_rates()[conn.id] == 6
        assert sim.connections == []

    async def test_pings_and_pongs_count(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws", autoping=False) as ws:
            for i in range(3):
                await ws.ping(b"p%d" % i)
                await ws.pong(b"unsolicited")
            assert await wait_closed(ws) == 1008
        kinds = [m.kind for m in sim.connection_history[-1].received]
        assert kinds == ["ping", "pong", "ping", "pong", "ping", "pong"]

    async def test_client_pings_are_answered_with_their_payload(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws", autoping=False) as ws:
            await ws.ping(b"hello")
            msg = await ws.receive(timeout=2)
        assert msg.type is aiohttp.WSMsgType.PONG and msg.data == b"hello"

    async def test_five_per_second_is_allowed(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(max_messages_per_second=3, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws") as ws,
        ):
            for _ in range(3):
                await ws.send_str(LIST)
                await recv_json(ws)
            await asyncio.sleep(1.05)  # the window slides: three more are fine
            for _ in range(3):
                await ws.send_str(LIST)
                assert (await recv_json(ws))["id"] == 1
            assert sim.connections[0].max_rate == 3


class TestStreamCap:
    """A connection may not hold more than ``max_streams_per_connection`` streams."""

    async def test_subscribe_past_the_cap_is_answered_then_closed(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with (
            ExchangeSimulator(max_streams_per_connection=3, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade/btcusdt@ticker") as ws,
        ):
            names = ["ethusdt@trade", "ethusdt@ticker"]
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": names, "id": 5}))
            answer = await recv_json(ws)
            assert answer["code"] == 2 and answer["id"] == 5
            assert "too many streams" in answer["msg"]
            assert await wait_closed(ws) == 1008
        assert sim.connection_history[-1].streams == {"btcusdt@trade", "btcusdt@ticker"}

    async def test_resubscribing_existing_streams_does_not_count_twice(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with (
            ExchangeSimulator(max_streams_per_connection=2, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade/btcusdt@ticker") as ws,
        ):
            names = ["btcusdt@trade", "btcusdt@ticker"]
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": names, "id": 5}))
            assert await recv_json(ws) == {"result": None, "id": 5}

    async def test_url_past_the_cap_is_closed(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(max_streams_per_connection=1, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade") as ws,
        ):
            assert await wait_closed(ws) == 1008


class TestPingPong:
    """Server pings carry a payload; a client that does not answer is dropped."""

    async def test_client_that_never_pongs_is_dropped(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(ping_interval=0.05, pong_timeout=0.15, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws", autoping=False) as ws,
        ):
            pings = []
            while True:
                msg = await ws.receive(timeout=2)
                if msg.type is not aiohttp.WSMsgType.PING:
                    break
                pings.append(msg.data)
            assert ws.close_code == 1008
        assert pings and all(p.isdigit() for p in pings)
        conn = sim.connection_history[-1]
        assert conn.close_reason == "Pong timeout"
        assert conn.pings_sent >= 1 and conn.pongs_received == 0

    async def test_unsolicited_pongs_do_not_keep_a_client_alive(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with (
            ExchangeSimulator(ping_interval=0.05, pong_timeout=0.2, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws", autoping=False) as ws,
        ):

            async def pong_wrong_payload() -> None:
                while True:
                    await ws.pong(b"not-the-payload")
                    await asyncio.sleep(0.25)

            task = asyncio.create_task(pong_wrong_payload())
            try:
                assert await wait_closed(ws) == 1008
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        conn = sim.connection_history[-1]
        assert conn.pongs_received >= 1 and conn.pongs_matched == 0

    async def test_client_that_pongs_stays(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(
                ping_interval=0.1, pong_timeout=0.15, max_messages_per_second=50, seed=1
            ) as sim,
            session.ws_connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws,
        ):
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.5
            while loop.time() < end:  # aiohttp answers pings while the client reads
                assert (await recv_json(ws))["e"] == "aggTrade"
            conn = sim.connections[0]
            assert conn.pongs_matched >= 3 and not conn.closing
            assert conn.pongs_received == conn.pongs_matched


class TestConnectionLimits:
    """Lifetime, connection-attempt rate and slow consumers."""

    async def test_lifetime_ends_with_going_away(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(connection_lifetime=0.2, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws") as ws,
        ):
            assert await wait_closed(ws) == 1001
        assert sim.connection_history[-1].close_reason == "Connection lifetime exceeded"

    async def test_too_many_connection_attempts(self, session: aiohttp.ClientSession) -> None:
        async with ExchangeSimulator(max_connections_per_window=2, autostart_market=False) as sim:
            async with (
                session.ws_connect(f"{sim.ws_url}/ws"),
                session.ws_connect(f"{sim.ws_url}/ws"),
            ):
                pass
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f"{sim.ws_url}/ws")
            assert info.value.status == 429
            assert sim.connection_count_total == 2

    async def test_slow_consumer_is_closed(self, session: aiohttp.ClientSession) -> None:
        async with (
            ExchangeSimulator(max_pending_frames=5, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws") as ws,
        ):
            await sim.wait_for_connections(1)
            conn = sim.connections[0]
            for i in range(10):  # queued faster than the writer can run
                conn.send_text(str(i))
            assert await wait_closed(ws) == 1008
        assert conn.close_reason.startswith("Slow consumer")

    async def test_client_that_stops_reading_is_closed(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Frames are written in runs (one socket write per run); once the socket's
        buffers are full the writer still waits for them to drain, so the queue of a
        client that reads nothing grows to the limit and the connection is closed."""
        async with (
            ExchangeSimulator(max_pending_frames=50, autostart_market=False) as sim,
            session.ws_connect(f"{sim.ws_url}/ws") as ws,
        ):
            await sim.wait_for_connections(1)
            conn = sim.connections[0]
            big = "x" * 100_000
            for _ in range(400):  # 40 MB, far more than loopback socket buffers hold
                if conn.closing:
                    break
                for _ in range(5):
                    conn.send_text(big)
                await asyncio.sleep(0.001)
            assert conn.closing
            assert conn.close_reason.startswith("Slow consumer")
            assert conn.frames_sent < 400 * 5
            await ws.close()

    async def test_runs_of_frames_arrive_whole_and_in_order(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        """Text frames of every header size, a ping between them, then a close: each
        arrives as sent, in order."""
        async with session.ws_connect(f"{sim.ws_url}/ws", autoping=False) as ws:
            await sim.wait_for_connections(1)
            conn = sim.connections[0]
            texts = ["a", "b" * 125, "c" * 126, "d" * 65_535, "e" * 65_536, "é€😀"]
            for text in texts[:3]:
                conn.send_text(text)
            conn.send_ping(b"between")
            for text in texts[3:]:
                conn.send_text(text)
            conn.close_after_pending(1000, "done")
            got: list[tuple[aiohttp.WSMsgType, object]] = []
            while True:
                msg = await ws.receive(timeout=2.0)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
                got.append((msg.type, msg.data))
        assert got == [
            *((aiohttp.WSMsgType.TEXT, t) for t in texts[:3]),
            (aiohttp.WSMsgType.PING, b"between"),
            *((aiohttp.WSMsgType.TEXT, t) for t in texts[3:]),
        ]
        assert ws.close_code == 1000
        assert conn.frames_sent == len(texts) + 1

    async def test_recv_until_helper_sees_only_matching(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade") as ws:
            frame = await recv_until(ws, lambda f: f["data"]["e"] == "trade")
        assert frame["stream"] == "btcusdt@trade"
