"""REST calls in flight when the connector stops end with ConnectorStoppedError.

Regression test for issue #16: ``stop()`` closed the HTTP session under calls still in
flight; each failed as a transport error, the breaker counted them, opened, and every
caller saw ``CircuitOpenError`` (retries included) - a misleading "the exchange is
down" for what was our own shutdown. Against the real simulator on 127.0.0.1, with a
REST latency so that the calls are surely in flight when ``stop()`` runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import rxconnector as rxc
from rxconnector.models import BreakerState
from rxconnector.testing import ExchangeSimulator

KEY = "simkey"
SECRET = "sim-secret-value-that-must-never-leak"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=5, symbols=("BTCUSDT",), tick_interval=0.05) as server:
        server.add_api_key(KEY, SECRET)
        yield server


async def test_calls_in_flight_at_stop_end_with_connector_stopped(sim: ExchangeSimulator) -> None:
    conn = rxc.Connector(
        rxc.Config.binance(api_key=KEY, api_secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url)
    )
    await conn.start()
    sim.rest_latency = 1.0
    runner = sim._runner
    assert runner is not None and runner.server is not None
    server = runner.server  # aiohttp counts every request it starts handling
    received_before = server.requests_count
    calls = [
        asyncio.ensure_future(_await(conn.server_time())),
        asyncio.ensure_future(_await(conn.depth_snapshot("BTCUSDT", 100))),
        asyncio.ensure_future(_await(conn.recent_trades("BTCUSDT", 10))),
        *(asyncio.ensure_future(_await(conn.ping())) for _ in range(7)),
    ]
    # all ten reached the simulator and wait out its latency (a fixed sleep could let
    # stop() run before they were sent, and the test would pass without testing this)
    deadline = asyncio.get_running_loop().time() + 0.8
    while server.requests_count < received_before + len(calls):
        assert asyncio.get_running_loop().time() < deadline, "the calls never reached the server"
        await asyncio.sleep(0.005)
    assert not any(call.done() for call in calls)
    stats_before = conn.breaker.stats
    await conn.stop()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(o) for o in outcomes] == [rxc.ConnectorStoppedError] * len(calls)
    assert all("connector stopped" in str(o) for o in outcomes)
    # The breaker saw nothing: no failure counted, still closed.
    stats = conn.breaker.stats
    assert stats.state is BreakerState.CLOSED
    assert stats.failures == stats_before.failures
    assert stats.consecutive_failures == 0


async def test_calls_after_stop_fail_at_once_with_connector_stopped(
    sim: ExchangeSimulator,
) -> None:
    conn = rxc.Connector(rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url))
    await conn.start()
    await conn.stop()
    with pytest.raises(rxc.ConnectorStoppedError):
        await asyncio.wait_for(_await(conn.server_time()), 2.0)
    assert conn.breaker.stats.failures == 0


async def _await(observable: object) -> object:
    return await observable  # type: ignore[misc]
