"""Every REST route a venue declares is complete data: method, path, weight, doc."""

from __future__ import annotations

from types import ModuleType

import pytest

from rxconnector.exchanges.binance import endpoints as binance_spot
from rxconnector.exchanges.binance import futures_endpoints as binance_usdm
from rxconnector.exchanges.bybit import endpoints as bybit
from rxconnector.exchanges.rest_spec import Endpoint

MODULES = [binance_spot, binance_usdm, bybit]


def _endpoints(module: ModuleType) -> dict[str, Endpoint]:
    return {n: v for n, v in vars(module).items() if isinstance(v, Endpoint)}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 2)[-2])
def test_each_route_is_complete_and_cites_its_source(module: ModuleType) -> None:
    endpoints = _endpoints(module)
    assert endpoints
    for name, endpoint in endpoints.items():
        assert endpoint.method in {"GET", "POST", "PUT", "DELETE"}, name
        assert endpoint.path.startswith("/"), name
        assert endpoint.weight >= 0, name
        assert endpoint.doc, f"{name} has no doc citation"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 2)[-2])
def test_no_two_routes_collide(module: ModuleType) -> None:
    routes = [(e.method, e.path) for e in _endpoints(module).values()]
    assert len(routes) == len(set(routes))
