"""Raw and combined market streams deliver payloads of the documented shapes."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator

from .helpers import recv_json, recv_until, shape

#: stream suffix -> examples.json key of the documented payload
STREAMS = {
    "trade": "binance.spot.ws.trade",
    "aggTrade": "binance.spot.ws.aggTrade",
    "ticker": "binance.spot.ws.ticker",
    "miniTicker": "binance.spot.ws.miniTicker",
    "bookTicker": "binance.spot.ws.bookTicker",
    "avgPrice": "binance.spot.ws.avgPrice",
    "kline_1m": "binance.spot.ws.kline",
    "depth@100ms": "binance.spot.ws.depthUpdate",
    "depth": "binance.spot.ws.depthUpdate",
    "depth5": "binance.spot.ws.partialDepth",
    "depth10@100ms": "binance.spot.ws.partialDepth",
}


class TestCombinedStreams:
    """``/stream?streams=`` wraps every documented payload as {"stream", "data"}."""

    async def test_every_stream_kind_has_the_documented_shape(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        names = "/".join(f"btcusdt@{s}" for s in STREAMS)
        seen: dict[str, Any] = {}
        async with session.ws_connect(f"{sim.ws_url}/stream?streams={names}") as ws:
            while len(seen) < len(STREAMS):
                frame = await recv_json(ws)
                assert set(frame) == {"stream", "data"}
                seen.setdefault(frame["stream"].split("@", 1)[1], frame["data"])
        for suffix, key in STREAMS.items():
            assert shape(seen[suffix]) == shape(examples[key]), suffix
        assert seen["trade"]["s"] == "BTCUSDT"
        assert seen["kline_1m"]["k"]["i"] == "1m"
        assert len(seen["depth5"]["bids"]) == 5 and len(seen["depth10@100ms"]["asks"]) == 10

    async def test_values_are_consistent_with_the_simulator(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        url = f"{sim.ws_url}/stream?streams=ethusdt@trade/ethusdt@bookTicker"
        async with session.ws_connect(url) as ws:
            trade = (await recv_until(ws, lambda f: f["stream"] == "ethusdt@trade"))["data"]
            top = (await recv_until(ws, lambda f: f["stream"] == "ethusdt@bookTicker"))["data"]
        tape = {t.id: t for t in sim.trades("ETHUSDT")}
        assert tape[trade["t"]].price == Decimal(trade["p"])
        assert tape[trade["t"]].qty == Decimal(trade["q"])
        bids, asks = sim.book_at("ETHUSDT", top["u"], depth=1)
        assert bids[0] == (Decimal(top["b"]), Decimal(top["B"]))
        assert asks[0] == (Decimal(top["a"]), Decimal(top["A"]))


class TestRawStreams:
    """``/ws/<stream>`` sends bare payloads; several streams may share the path."""

    async def test_single_raw_stream(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            data = await recv_json(ws)
        assert data["e"] == "trade" and "stream" not in data

    async def test_several_raw_streams_on_one_path(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade/ethusdt@depth@100ms") as ws:
            kinds = set()
            while kinds != {("trade", "BTCUSDT"), ("depthUpdate", "ETHUSDT")}:
                data = await recv_json(ws)
                kinds.add((data["e"], data["s"]))
        (conn,) = sim.connection_history
        assert conn.streams == {"btcusdt@trade", "ethusdt@depth@100ms"}
        assert not conn.combined

    async def test_diff_events_are_contiguous(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            events = [await recv_json(ws) for _ in range(20)]
        for prev, nxt in itertools.pairwise(events):
            assert nxt["U"] == prev["u"] + 1
            assert nxt["u"] >= nxt["U"]

    async def test_slow_depth_merges_ticks_without_gaps(
        self, paused_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim = paused_sim  # periodic_ticks=2: one @depth event per two ticks
        async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth") as ws:
            await sim.wait_for_connections(1)
            start = sim.current_update_id("BTCUSDT")
            await sim.step(6)
            events = [await recv_json(ws) for _ in range(3)]
        assert events[0]["U"] == start + 1  # ticks 1-2, 3-4, 5-6
        for prev, nxt in itertools.pairwise(events):
            assert nxt["U"] == prev["u"] + 1
        assert events[-1]["u"] == sim.current_update_id("BTCUSDT")


class TestUrlValidation:
    """Bad stream names in the URL are refused before the upgrade."""

    @pytest.mark.parametrize(
        "path",
        ["/ws/foousdt@trade", "/ws/BTCUSDT@trade", "/ws/btcusdt@nonsense", "/stream?streams=x"],
    )
    async def test_bad_names_get_http_400(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, path: str
    ) -> None:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(sim.ws_url + path)
        assert info.value.status == 400
        async with session.get(sim.rest_url + path) as resp:
            body = json.loads(await resp.text())
        assert body["code"] == 2 and body["msg"].startswith("Invalid request")

    async def test_unknown_symbol_message_names_it(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        async with session.get(f"{sim.rest_url}/ws/dogeusdt@trade") as resp:
            assert (await resp.json())["msg"] == "Invalid request: unknown symbol dogeusdt"
