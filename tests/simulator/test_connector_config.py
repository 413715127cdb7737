"""``ExchangeSimulator.connector_config``: a ready client Config for every venue it speaks,
and every URL it serves as a property."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

KEY = "cc-key"
SECRET = "cc-secret"
VENUES = ["binance", "binance_futures", "bybit", "bybit-spot", "bybit-linear"]
URL_FIELDS = ("rest_url", "ws_url", "ws_api_url", "private_ws_url")


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=7, tick_interval=0.02) as s:
        yield s


@pytest.mark.parametrize("venue", VENUES)
async def test_every_url_of_the_config_is_the_simulator(sim: ExchangeSimulator, venue: str) -> None:
    config = sim.connector_config(venue, api_key=KEY, api_secret=SECRET)
    assert config.api_key == KEY and config.api_secret.reveal() == SECRET
    for field in URL_FIELDS:
        url = getattr(config, field)
        if url is not None:
            assert urlsplit(url).netloc == f"127.0.0.1:{sim.port}", (field, url)
    expected = {"binance": "binance", "binance_futures": "binance_futures"}.get(venue, "bybit")
    assert config.exchange == expected
    assert config.category == ("linear" if venue in ("binance_futures", "bybit-linear") else "spot")


@pytest.mark.parametrize("venue", VENUES)
async def test_a_connector_from_it_gets_data(sim: ExchangeSimulator, venue: str) -> None:
    """REST and a market feed work with the config as given."""
    async with rxc.Connector(sim.connector_config(venue)) as conn:
        assert abs(await conn.server_time() - sim.server_time_ms()) < 5_000
        ticker = await asyncio.wait_for(_first(conn.book_ticker("BTCUSDT")), 10)
        assert ticker.symbol == "BTCUSDT"


async def _first(observable: Any) -> Any:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    sub = observable.subscribe(
        lambda v: future.done() or future.set_result(v),
        lambda e: future.done() or future.set_exception(e),
    )
    try:
        return await future
    finally:
        sub.dispose()


@pytest.mark.parametrize("venue", ["binance", "bybit"])
async def test_accounts_are_included(sim: ExchangeSimulator, venue: str) -> None:
    """A new key is created on the simulator; signed REST and the account feed work."""
    assert KEY not in sim.api_keys
    config = sim.connector_config(venue, api_key=KEY, api_secret=SECRET)
    assert sim.api_keys[KEY] == SECRET
    async with rxc.Connector(config) as conn:
        balances: list[rxc.Balance] = []
        sub = conn.balances().subscribe(balances.append)
        order = await conn.place_order(
            "BTCUSDT", "buy", "limit", quantity="0.02", price="1000", time_in_force="GTC"
        )
        assert order.order_id
        for _ in range(250):
            if _subscribed(sim, venue):
                break
            await asyncio.sleep(0.02)
        sim.set_balance(KEY, "USDT", "1234")
        for _ in range(250):
            if any(b.asset == "USDT" and b.free == Decimal("1234") for b in balances):
                break
            await asyncio.sleep(0.02)
        sub.dispose()
    assert any(b.asset == "USDT" and b.free == Decimal("1234") for b in balances)


def _subscribed(sim: ExchangeSimulator, venue: str) -> bool:
    if venue == "binance":
        return any(k == KEY for _c, _s, k in sim.user_stream_subscriptions())
    return any(k == KEY and t for _c, k, t in sim.private_subscriptions())


async def test_overrides_pass_through_and_may_replace_a_url(sim: ExchangeSimulator) -> None:
    config = sim.connector_config(
        "binance", connection={"rest_timeout": 3}, ws_api_url="ws://127.0.0.1:9/x"
    )
    assert config.connection.rest_timeout == 3
    assert config.ws_api_url == "ws://127.0.0.1:9/x"
    assert config.rest_url == sim.rest_url


async def test_bad_calls_say_what_is_wrong(sim: ExchangeSimulator) -> None:
    with pytest.raises(ValueError, match="speaks binance, binance_futures"):
        sim.connector_config("kraken")
    with pytest.raises(ValueError, match="both api_key and api_secret"):
        sim.connector_config("binance", api_key=KEY)


async def test_not_started_is_refused() -> None:
    with pytest.raises(RuntimeError, match="start the simulator first"):
        ExchangeSimulator().connector_config("binance")


async def test_every_url_property_is_served(sim: ExchangeSimulator) -> None:
    """Each WebSocket URL accepts an upgrade; the REST URL answers a ping."""
    urls = sim.urls
    assert set(urls) >= {
        "rest_url",
        "ws_url",
        "ws_api_url",
        "futures_public_url",
        "futures_market_url",
        "futures_private_url",
        "bybit_spot_url",
        "bybit_linear_url",
        "bybit_private_url",
    }
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{urls['rest_url']}/api/v3/ping") as response:
            assert response.status == 200
        for name, url in urls.items():
            if name in ("rest_url", "ws_url", "futures_private_url"):
                continue
            async with session.ws_connect(url) as ws:
                assert not ws.closed, name
        # the USD-M private route takes sockets under it, with a listenKey
        async with session.get(
            f"{urls['futures_private_url']}/ws".replace("ws://", "http://")
        ) as r:
            assert r.status != 404
