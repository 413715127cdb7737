"""Every venue client answers the calls RestApi declares, and exposes its limiter."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.exchanges.binance.endpoints import BINANCE_ERRORS
from rxconnector.exchanges.bybit.endpoints import bybit_dialect
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rest.api import DerivativesRestApi, RestApi
from rxconnector.rest.client import RestClient
from rxconnector.rest.planned import PlannedRest

from .conftest import StepClock, binance_futures_rest, binance_spot_rest, bybit_rest

PROTOCOL_CALLS = {
    name for name in dir(RestApi) if not name.startswith("_") and name not in dir(object)
}


@pytest.mark.parametrize("cls", [PlannedRest])
def test_each_client_has_every_declared_call(cls: type) -> None:
    assert {"place_order", "limiter", "klines_history"} <= PROTOCOL_CALLS
    assert PROTOCOL_CALLS - set(dir(cls)) == set()


@pytest.mark.parametrize("cls", [PlannedRest])
def test_derivatives_clients_have_positions(cls: type) -> None:
    assert "positions" in dir(DerivativesRestApi) and callable(cls.positions)


@pytest.mark.parametrize(
    ("make", "config", "dialect"),
    [
        (binance_spot_rest, Config.binance(), BINANCE_ERRORS),
        (binance_futures_rest, Config.binance_futures(), BINANCE_ERRORS),
        (bybit_rest, Config.bybit("linear"), bybit_dialect()),
    ],
)
def test_the_limiter_is_the_clients(make: Any, config: Config, dialect: object) -> None:
    limiter = RequestWeightLimiter(1200, scheduler=TestScheduler())
    client = RestClient(
        lambda: None,
        base_url="http://127.0.0.1:1",
        exchange=config.exchange,
        limiter=limiter,
        dialect=dialect,
    )
    rest = make(client, config, StepClock())
    assert rest.limiter is limiter
    assert (
        make(
            RestClient(lambda: None, base_url="http://x", exchange="x", dialect=dialect),
            config,
            StepClock(),
        ).limiter
        is None
    )


def test_the_cheaper_trade_backfill_is_offered_where_it_exists() -> None:
    """The connector closes Spot trade gaps with ``trades_after`` (aggregates first)
    only where the venue's plans offer it: Binance Spot, not USD-M."""
    client = RestClient(lambda: None, base_url="http://x", exchange="x", dialect=BINANCE_ERRORS)
    spot = binance_spot_rest(client, Config.binance(), StepClock())
    futures = binance_futures_rest(client, Config.binance_futures(), StepClock())
    assert spot.offers("trades_after") and not futures.offers("trades_after")
    assert futures.offers("positions") and not spot.offers("positions")
