"""The subscription hub with the Bybit protocol against the simulator's Bybit dialect.

End to end over real sockets: legal batches (Spot: at most 10 args), a rejected symbol
that fails only its own topic, and application pings that keep a quiet connection from
being cut as idle.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from rxconnector.config import ConnectionConfig
from rxconnector.errors import SubscriptionError
from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams.hub import SubscriptionHub
from rxconnector.testing.simulator import ExchangeSimulator

CONFIG = ConnectionConfig(
    reconnect_delay=0.05, reconnect_jitter=0.0, healthy_after=1.0, stale_after=10.0
)


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


class FastPings(BybitWsProtocol):
    """Bybit's protocol with a ping every 250 ms instead of 20 s (the test is short;
    pings count against the 5 messages/s the hub allows itself)."""

    client_ping_interval = 0.25


class NoPings(BybitWsProtocol):
    client_ping_interval = None


class Rig:
    def __init__(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession, protocol: BybitWsProtocol
    ) -> None:
        self.errors: list[Exception] = []
        self.states: list[ConnectionEvent] = []
        self.hub = SubscriptionHub(
            protocol,
            sim.ws_url,
            lambda: session,
            CONFIG,
            report_error=self.errors.append,
            report_state=self.states.append,
        )


def subscribe_requests(sim: ExchangeSimulator) -> list[list[str]]:
    return [
        r.message["args"]
        for r in sim.control_log
        if isinstance(r.message, dict) and r.message.get("op") == "subscribe"
    ]


class TestBatches:
    """Batches respect Spot's 10-args rule and a bad topic fails alone."""

    async def test_a_bad_symbol_fails_only_its_topic(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rig = Rig(sim, session, BybitWsProtocol("spot"))
        good = [f"kline.{i}.BTCUSDT" for i in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)]
        good += ["publicTrade.BTCUSDT"]
        bad = "publicTrade.NOPEUSDT"
        got: dict[str, list[Any]] = {topic: [] for topic in good}
        failed: list[Exception] = []
        for topic in good[:5]:
            rig.hub.feed(topic).subscribe(got[topic].append)
        rig.hub.feed(bad).subscribe(on_error=failed.append)
        for topic in good[5:]:
            rig.hub.feed(topic).subscribe(got[topic].append)
        await until(lambda: bool(failed) and all(got.values()))
        await rig.hub.close()
        await until(lambda: not sim.connections)

        assert isinstance(failed[0], SubscriptionError) and bad in str(failed[0])
        requests = subscribe_requests(sim)
        assert all(len(args) <= 10 for args in requests)
        assert sorted(t for args in requests for t in args) == sorted([*good, bad])  # once each
        assert sim.bybit.active_topics() == set()  # closed: nothing left subscribed
        assert all(isinstance(e, SubscriptionError) and bad in str(e) for e in rig.errors)


class TestHeartbeat:
    """Application pings keep a connection without data alive; without them it is cut."""

    async def test_pings_keep_a_quiet_connection_alive(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with ExchangeSimulator(bybit_idle_timeout=0.5, autostart_market=False) as sim:
            rig = Rig(sim, session, FastPings("linear"))
            rig.hub.feed("publicTrade.BTCUSDT").subscribe(lambda _m: None)
            await sim.wait_for_connections(1)
            await asyncio.sleep(1.2)  # more than two idle timeouts, no market data
            (conn,) = sim.connections
            assert not conn.closing and sim.connection_count_total == 1
            pings = [r for r in sim.control_log if r.message == {"op": "ping"}]
            assert len(pings) >= 4
            await rig.hub.close()
        assert rig.errors == []

    async def test_without_pings_the_connection_is_cut_and_comes_back(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with ExchangeSimulator(bybit_idle_timeout=0.2, autostart_market=False) as sim:
            rig = Rig(sim, session, NoPings("spot"))
            rig.hub.feed("publicTrade.BTCUSDT").subscribe(lambda _m: None)
            await until(lambda: sim.connection_count_total >= 2)
            await until(lambda: sim.bybit.active_topics() == {"publicTrade.BTCUSDT"})
            assert sim.connection_history[0].close_reason.startswith("Idle")
            await rig.hub.close()
        assert any(e.state is ConnectionState.RECONNECTING for e in rig.states)
