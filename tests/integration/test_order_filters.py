"""Order filter pre-checks through the real ``rxc.Connector`` against the simulator.

A fresh connector may not have the symbol's rules yet; the check must run anyway: the
rules are fetched first (one request, shared by concurrent orders) and an order that breaks
them is refused with ``OrderRejectedError`` before any order request leaves. On Binance the
connector's start-up ``exchangeInfo`` (read for the venue's rate limits) already caches every
symbol's rules, so the one rules request of a connector's life is that one; Bybit fetches
them on the first order. Either way: one rules request in all, and no order request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

KEY = "filters-key"
SECRET = "filters-secret-never-logged"
SYMBOL = "BTCUSDT"
#: BTCUSDT's tick size in the simulator is 0.01: six decimals break PRICE_FILTER.
BAD_PRICE = "50000.123456"


def _binance(sim: ExchangeSimulator) -> rxc.Config:
    return rxc.Config.binance(
        api_key=KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        ws_api_url=f"{sim.ws_url}/ws-api/v3",
    )


def _bybit(sim: ExchangeSimulator) -> rxc.Config:
    return rxc.Config.bybit(
        "spot",
        api_key=KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        private_ws_url=f"{sim.ws_url}/v5/private",
    )


VENUES: dict[str, tuple[Callable[[ExchangeSimulator], rxc.Config], str, str]] = {
    # venue: (config, rules path, order path)
    "binance": (_binance, "/api/v3/exchangeInfo", "/api/v3/order"),
    "bybit": (_bybit, "/v5/market/instruments-info", "/v5/order/create"),
}


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=5, autostart_market=False, api_keys={KEY: SECRET}) as s:
        s.set_balance(KEY, "USDT", "100000")
        yield s


def _paths(sim: ExchangeSimulator, since: int) -> list[str]:
    return [r.path for r in sim.rest_log[since:]]


def _rules_and_orders(sim: ExchangeSimulator, since: int) -> list[str]:
    """The rules and order requests since ``since`` (clock syncs left out)."""
    interesting = {rules for _make, rules, _order in VENUES.values()}
    interesting |= {order for _make, _rules, order in VENUES.values()}
    return [p for p in _paths(sim, since) if p in interesting]


async def test_a_fresh_connector_refuses_a_bad_price_before_sending(
    sim: ExchangeSimulator, venue: str
) -> None:
    make, rules_path, order_path = VENUES[venue]
    before = len(sim.rest_log)
    async with rxc.Connector(make(sim)) as conn:
        with pytest.raises(rxc.OrderRejectedError) as info:
            await conn.place_order(SYMBOL, "buy", "LIMIT", quantity="0.001", price=BAD_PRICE)
    assert info.value.filter == "PRICE_FILTER"
    assert f"[{venue}]" in str(info.value)
    # the rules were fetched once in the connector's life; no order request reached it
    assert _rules_and_orders(sim, before) == [rules_path]
    assert order_path not in {r.path for r in sim.rest_log}


async def test_concurrent_first_orders_share_one_rules_request(
    sim: ExchangeSimulator, venue: str
) -> None:
    make, rules_path, order_path = VENUES[venue]
    async with rxc.Connector(make(sim)) as conn:
        # Binance's start() cached every symbol's rules: make them stale, so these
        # orders are the first to need them on both venues
        conn.rest._rules.forget()
        before = len(sim.rest_log)
        results = await asyncio.gather(
            *(
                conn.place_order(SYMBOL, "buy", "LIMIT", quantity="0.001", price=BAD_PRICE)
                for _ in range(5)
            ),
            return_exceptions=True,
        )
        assert all(isinstance(r, rxc.OrderRejectedError) for r in results), results
        assert _rules_and_orders(sim, before) == [rules_path]  # one request for five orders
        # a valid order goes out, checked against the cached rules (no second fetch)
        order: Any = await conn.place_order(
            SYMBOL, "buy", "LIMIT", quantity="0.001", price="30000.00"
        )
        assert order.symbol == SYMBOL
        assert _rules_and_orders(sim, before) == [rules_path, order_path]
