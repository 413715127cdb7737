"""SubscriptionHub against the project's ExchangeSimulator (Binance Spot dialect).

The simulator enforces Binance's limits on its side (5 frames/s, 1024 streams, unknown
symbols rejected) and produces real sequenced market data, so these tests check the
hub end to end: continuity of depth update ids across a serverShutdown rotation,
recovery from drops and stalls, and rejected subscriptions.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from rxconnector.config import ConnectionConfig
from rxconnector.errors import ParseError, SubscriptionError
from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.streams.messages import StreamRestart
from rxconnector.testing.simulator import ExchangeSimulator

CONFIG = ConnectionConfig(
    reconnect_delay=0.05, reconnect_jitter=0.0, healthy_after=1.0, stale_after=0.5
)


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=11, tick_interval=0.01, periodic_ticks=2, shutdown_grace=0.3
    ) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


class Rig:
    def __init__(self, sim: ExchangeSimulator, session: aiohttp.ClientSession, **kw: Any):
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []
        self.hub = SubscriptionHub(
            BinanceSpotWsProtocol(),
            sim.ws_url,
            lambda: session,
            kw.pop("config", CONFIG),
            report_error=self.errors.append,
            report_state=self.states.append,
            **kw,
        )

    def count(self, state: ConnectionState) -> int:
        return sum(1 for e in self.states if e.state is state)


def updates(messages: list[Any]) -> list[dict[str, Any]]:
    return [m[1] for m in messages if isinstance(m, tuple)]


class TestSimulator:
    """End-to-end behaviour on the simulator's real sequenced data."""

    async def test_depth_ids_stay_contiguous_across_a_server_shutdown(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rig = Rig(sim, session, sequence_of=lambda _t, p: p["u"], rotation_overlap=2.0)
        got: list[Any] = []
        rig.hub.feed("btcusdt@depth@100ms").subscribe(got.append)
        await until(lambda: len(got) >= 10)
        await sim.server_shutdown()  # notice, then closed after 0.3 s
        await until(lambda: sim.connection_count_total == 2 and len(sim.connections) == 1)
        seen = len(got)
        await until(lambda: len(got) >= seen + 10)
        await rig.hub.close()

        diffs = updates(got)
        for previous, current in itertools.pairwise(diffs):
            assert current["U"] == previous["u"] + 1  # no gap, no duplicate
        assert not [m for m in got if isinstance(m, StreamRestart)]
        assert rig.count(ConnectionState.ROTATING) == 1
        assert rig.count(ConnectionState.RECONNECTING) == 0
        assert all(rate <= 5 for rate in sim.max_message_rates().values())
        assert rig.errors == []

    async def test_dropped_connections_come_back_with_a_marker(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rig = Rig(sim, session)
        got: list[Any] = []
        rig.hub.feed("btcusdt@trade").subscribe(got.append)
        rig.hub.feed("ethusdt@bookTicker").subscribe(lambda _m: None)
        await until(lambda: len(updates(got)) >= 3)
        await sim.drop_connections()
        await until(lambda: any(isinstance(m, StreamRestart) for m in got))
        marker_at = next(i for i, m in enumerate(got) if isinstance(m, StreamRestart))
        await until(lambda: len(got) > marker_at + 3)
        markers = [m for m in got if isinstance(m, StreamRestart)]
        assert len(markers) == 1 and markers[0].topic == "btcusdt@trade"
        assert all(isinstance(m, tuple) for m in got[marker_at + 1 :])  # data flows again
        assert sim.active_streams() == {"btcusdt@trade", "ethusdt@bookTicker"}
        assert rig.count(ConnectionState.RECONNECTING) == 1
        await rig.hub.close()

    async def test_a_stall_is_detected_and_recovered(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rig = Rig(sim, session)
        got: list[Any] = []
        rig.hub.feed("btcusdt@depth@100ms").subscribe(got.append)
        await until(lambda: len(got) >= 3)
        sim.stall(1.0)  # pings and control answers go on, market data stops
        await until(lambda: rig.count(ConnectionState.STALE) == 1)
        await until(lambda: any(isinstance(m, StreamRestart) for m in got), within=4.0)
        marker_at = next(i for i, m in enumerate(got) if isinstance(m, StreamRestart))
        await until(lambda: len(got) > marker_at + 2)
        assert sim.connection_count_total == 2
        await rig.hub.close()

    async def test_unknown_symbols_fail_only_their_feed_and_garbage_is_reported(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rig = Rig(sim, session)
        good: list[Any] = []
        bad: list[Exception] = []
        rig.hub.feed("btcusdt@trade").subscribe(good.append)
        rig.hub.feed("nosuchusdt@trade").subscribe(on_error=bad.append)
        await until(lambda: bool(bad) and len(good) >= 2)
        assert isinstance(bad[0], SubscriptionError) and bad[0].topic == "nosuchusdt@trade"
        sim.send_garbage(3)
        await until(lambda: sum(isinstance(e, ParseError) for e in rig.errors) == 3)
        before = len(good)
        await until(lambda: len(good) > before + 2)
        assert len(sim.connections) == 1
        await rig.hub.close()
