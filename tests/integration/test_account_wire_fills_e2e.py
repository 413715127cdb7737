"""Fills end to end: the simulator's matching engine → the private stream → ``rxc.Connector``.

The Binance Spot and USD-M dict parsers build a fill's :class:`~rxconnector.Execution`
from the :class:`~rxconnector.OrderUpdate` parsed from the same report (the fill's
fields are no longer converted twice, issue #12; the unit tests in
``tests/account/test_account_wire_fills.py`` pin it against the old parsers). Here the
whole path: a market order that fills against the simulator's book must show every
engine fill once on ``executions()`` with the engine's own trade id, price, quantity,
fee, fee asset, maker flag and time, and each fill must match the ``TRADE`` order update
it came with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

D = Decimal
SYMBOL = "BTCUSDT"
KEY = "wire-fills-key"
SECRET = "wire-fills-secret"


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


def spot_subscribed(sim: ExchangeSimulator) -> bool:
    return any(key == KEY for _c, _s, key in sim.user_stream_subscriptions())


def futures_open(sim: ExchangeSimulator) -> bool:
    return any(not c.closed for c in sim.futures_users.connections)


@pytest.mark.parametrize(
    ("venue", "ready"), [("binance", spot_subscribed), ("binance_futures", futures_open)]
)
async def test_every_engine_fill_arrives_once_as_the_engine_made_it(
    sim: ExchangeSimulator, venue: str, ready: Callable[[ExchangeSimulator], bool]
) -> None:
    config = sim.connector_config(venue, api_key=KEY, api_secret=SECRET)
    async with rxc.Connector(config) as conn:
        orders: list[rxc.OrderUpdate] = []
        fills: list[rxc.Execution] = []
        failures: list[Exception] = []
        errors: list[Exception] = []
        conn.errors.subscribe(errors.append)
        subscriptions = [
            conn.orders().subscribe(orders.append, failures.append),
            conn.executions().subscribe(fills.append, failures.append),
        ]
        await until(lambda: ready(sim))
        placed = await conn.place_order(SYMBOL, "buy", "MARKET", quantity=D("0.05"))
        await until(
            lambda: any(u.status == "FILLED" for u in orders if u.order_id == placed.order_id)
        )
        engine = next(o for o in sim.orders(KEY) if str(o.id) == placed.order_id)
        await until(lambda: len(fills) >= len(engine.fills))
        for subscription in subscriptions:
            subscription.dispose()

    assert engine.fills and not failures and not errors
    assert [
        (f.execution_id, f.price, f.quantity, f.fee, f.fee_asset, f.is_maker, f.time) for f in fills
    ] == [
        (str(e.trade_id), e.price, e.qty, e.fee, e.fee_asset, e.maker, e.time) for e in engine.fills
    ]
    trades = [u for u in orders if u.execution_type == "TRADE"]
    assert len(trades) == len(fills)
    for update, fill in zip(trades, fills, strict=True):
        assert (fill.symbol, fill.order_id, fill.client_order_id, fill.side) == (
            update.symbol,
            update.order_id,
            update.client_order_id,
            update.side,
        )
        assert (fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
            update.last_fill_price,
            update.last_fill_quantity,
            update.fee,
            update.fee_asset,
        )
    assert sum(f.quantity for f in fills) == D("0.05")
