"""One ``Connector.place_order`` Observable is one order: every subscription to it sends
the same client order id, also when the caller let the library generate it. Resubscribing
(``ops.retry``, ``await`` twice after an ``OrderStatusUnknownError``) then cannot place a
second order: the exchange sees the id again (and refuses a duplicate), and the order can
be looked up by that id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

SYMBOL = "BTCUSDT"
KEY = "resub-key"
SECRET = "resub-secret-never-logged"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


def _below_the_market(sim: ExchangeSimulator) -> Decimal:
    best_bid = Decimal(sim.symbol(SYMBOL).book.levels(1, 1)[0][0]).scaleb(-2)
    return best_bid - 100


async def test_every_subscription_sends_the_same_generated_client_order_id(
    sim: ExchangeSimulator,
) -> None:
    config = rxc.Config.binance(
        api_key=KEY, api_secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url
    )
    async with rxc.Connector(config) as conn:
        order = conn.place_order(
            SYMBOL, "buy", "LIMIT", quantity=Decimal("0.01"), price=_below_the_market(sim)
        )
        placed = await order
        with pytest.raises(rxc.ExchangeError):  # the same id again: a duplicate
            await order
        sent = [r.params["newClientOrderId"] for r in sim.rest_log if r.path == "/api/v3/order"]
        assert sent == [placed.client_order_id, placed.client_order_id]
        assert [o.order_id for o in await conn.open_orders(SYMBOL)] == [placed.order_id]
