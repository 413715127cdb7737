"""The Prometheus ``rxc_rest_weight_used`` gauge reads the connector's REST weight
limiter through the public API (``connector.rest.limiter``), not a private attribute
path that a refactor can silently break (it did: the gauge stayed 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import rxconnector as rxc
from rxconnector.bus.metrics import PublisherMetrics
from rxconnector.testing.simulator import ExchangeSimulator

pytest.importorskip("prometheus_client")

SYMBOL = "BTCUSDT"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=3, symbols=(SYMBOL,)) as simulator:
        yield simulator


class _PublisherOf:
    """What PublisherMetrics reads of a Publisher, around a real started Connector."""

    def __init__(self, connector: rxc.Connector) -> None:
        self.connector = connector
        self.on_write: list[Callable[[float, int], None]] = []
        self.redis_state: list[Callable[[bool], None]] = []
        self.redis_up = True

    def stats(self) -> list[Any]:
        return []


def _gauge(text: str) -> float:
    line = next(row for row in text.splitlines() if row.startswith("rxc_rest_weight_used "))
    return float(line.split()[1])


async def test_the_weight_gauge_is_the_limiters_used_weight(sim: ExchangeSimulator) -> None:
    config = rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url)
    connector = rxc.Connector(config)
    metrics = PublisherMetrics(_PublisherOf(connector))  # type: ignore[arg-type]
    assert _gauge(metrics.render().decode()) == 0.0  # not started: no limiter to read
    async with connector:
        await connector.depth_snapshot(SYMBOL, 100)  # weight 5 on top of start()'s calls
        limiter = connector.rest.limiter
        assert limiter is not None and limiter.used >= 5
        assert _gauge(metrics.render().decode()) == float(limiter.used)
