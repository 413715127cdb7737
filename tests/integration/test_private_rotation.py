"""The 24 h limit of private streams, made before broken, through the real Connector.

With ``connection_lifetime`` shortened to half a second, the account stream of every
venue opens a replacement socket, switches to it once it is subscribed and only then
closes the old one: no reconnect, no reconciliation, and fills that arrive while both
sockets carry the account's events are delivered exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

import rxconnector as rxc
from rxconnector.streams.accounts.rotation import FrameMemory, fingerprint
from rxconnector.testing.simulator import ExchangeSimulator

D = Decimal
SYMBOL = "BTCUSDT"
KEY = "rotation-key"
SECRET = "rotation-secret"
CONNECTION = {
    "reconnect_delay": 0.3,
    "reconnect_jitter": 0.0,
    "healthy_after": 1.0,
    "connection_lifetime": 0.5,
}


def _config(venue: str, sim: ExchangeSimulator) -> rxc.Config:
    return sim.connector_config(venue, api_key=KEY, api_secret=SECRET, connection=CONNECTION)


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("venue", ["binance", "binance_futures", "bybit-linear"])
async def test_rotation_loses_and_repeats_nothing(venue: str, sim: ExchangeSimulator) -> None:
    async with rxc.Connector(_config(venue, sim)) as conn:
        states: list[rxc.ConnectionEvent] = []
        orders: list[rxc.OrderUpdate] = []
        fills: list[rxc.Execution] = []
        errors: list[Exception] = []
        conn.connection_state.subscribe(states.append)
        conn.errors.subscribe(errors.append)
        conn.orders().subscribe(orders.append)
        conn.executions().subscribe(fills.append)
        await until(lambda: any(s.state is rxc.ConnectionState.ROTATING for s in states))
        placed = []
        for _ in range(6):  # fills spread over several rotations and overlaps
            placed.append(await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.01")))
            await asyncio.sleep(0.15)
        ids = {o.order_id for o in placed}
        await until(lambda: {f.order_id for f in fills} >= ids)
        await asyncio.sleep(0.6)  # a late duplicate would show up by now
        for order_id in ids:
            assert sum(f.quantity for f in fills if f.order_id == order_id) == D("0.01")
            finals = [u for u in orders if u.order_id == order_id and u.status == "FILLED"]
            assert len(finals) == 1
        assert not any(u.reconciled for u in orders)
        rotated = [
            s for s in states if s.state is rxc.ConnectionState.CLOSED and "rotated" in s.reason
        ]
        assert len(rotated) >= 2
        assert not any(s.state is rxc.ConnectionState.RECONNECTING for s in states)
        assert not [e for e in errors if isinstance(e, rxc.FeedGapError)]


def test_fingerprints_ignore_the_subscription_id() -> None:
    event = {"e": "executionReport", "i": 7}
    assert fingerprint({"subscriptionId": 0, "event": event}) == fingerprint(
        {"event": event, "subscriptionId": 3}
    )
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def test_frame_memory_drops_each_repeat_once() -> None:
    memory = FrameMemory()
    memory.remember({"e": "x", "E": 1})
    assert memory.repeated({"E": 1, "e": "x"})
    assert not memory.repeated({"E": 1, "e": "x"})  # a second, genuine repeat passes
    assert not memory.repeated({"e": "y"})
