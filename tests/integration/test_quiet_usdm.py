"""A quiet USD-M connection against the simulator: a liquidation stream with nothing to
report, whose server pings it, is not torn down; the same connection whose server stops
pinging is. Fast: the simulator pings every 0.3 s and both thresholds are 1 s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

RUN_FOR = 4.0  # four times the thresholds below
CONNECTION = {
    "stale_after": 1.0,  # data silence on busy streams
    "link_stale_after": 1.0,  # nothing at all, pings included
    "reconnect_delay": 0.2,
    "reconnect_jitter": 0.0,
}


async def _watch(sim: ExchangeSimulator) -> list[rxc.ConnectionEvent]:
    config = rxc.Config.binance_futures(
        rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION
    )
    events: list[rxc.ConnectionEvent] = []
    liquidations: list[object] = []
    async with rxc.Connector(config) as conn:
        conn.connection_state.subscribe(events.append)
        sub = conn.liquidations("BTCUSDT").subscribe(liquidations.append)
        await asyncio.sleep(RUN_FOR)
        sub.dispose()
    assert liquidations == []  # the market is paused: the stream stayed silent throughout
    return events


@pytest.fixture
async def pinging() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=4, symbols=("BTCUSDT",), autostart_market=False, futures_ping_interval=0.3
    ) as sim:
        yield sim


@pytest.fixture
async def silent() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=4, symbols=("BTCUSDT",), autostart_market=False, futures_ping_interval=600.0
    ) as sim:
        yield sim


async def test_a_quiet_connection_answering_pings_is_not_torn_down(
    pinging: ExchangeSimulator,
) -> None:
    events = await _watch(pinging)
    states = [e.state for e in events]
    assert rxc.ConnectionState.STALE not in states, events
    assert rxc.ConnectionState.RECONNECTING not in states, events
    assert pinging.connection_count_total == 1


async def test_a_quiet_connection_that_hears_nothing_is_torn_down(
    silent: ExchangeSimulator,
) -> None:
    events = await _watch(silent)
    stale = [e for e in events if e.state is rxc.ConnectionState.STALE]
    assert stale and "not even a ping" in (stale[0].reason or "")
    assert silent.connection_count_total >= 2  # and reconnected
