"""``kline_history``: from ``start`` until now (no ``end``), and the last ``limit`` candles,
on every venue, against the simulator (whose history reaches any time in the past)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from reactivex import operators as ops

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

MINUTE = 60_000
VENUES = ["binance", "binance_futures", "bybit-spot", "bybit-linear"]


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=5, symbols=("BTCUSDT",)) as s:
        yield s


def _consecutive(candles: list[rxc.Kline], width: int = MINUTE) -> bool:
    times = [k.open_time for k in candles]
    return all(b - a == width for a, b in itertools.pairwise(times))


@pytest.mark.parametrize("venue", VENUES)
async def test_from_start_until_now(sim: ExchangeSimulator, venue: str) -> None:
    async with rxc.Connector(sim.connector_config(venue)) as conn:
        now = await conn.server_time()
        start = now - 90 * MINUTE
        candles = await conn.kline_history("BTCUSDT", "1m", start).pipe(ops.to_list())
    assert candles[0].open_time >= start
    assert candles[0].open_time - start < MINUTE
    assert _consecutive(candles)
    # until now: the candle running at the call is the last one
    assert candles[-1].open_time <= now < candles[-1].open_time + MINUTE + 5_000
    assert 90 <= len(candles) <= 92


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("limit", [1, 7, 1000, 2345])
async def test_the_last_n_candles(sim: ExchangeSimulator, venue: str, limit: int) -> None:
    async with rxc.Connector(sim.connector_config(venue)) as conn:
        now = await conn.server_time()
        candles = await conn.kline_history("BTCUSDT", "1m", limit=limit).pipe(ops.to_list())
    assert len(candles) == limit
    assert _consecutive(candles)
    assert candles[-1].open_time <= now < candles[-1].open_time + MINUTE + 5_000


async def test_the_last_n_before_end(sim: ExchangeSimulator) -> None:
    async with rxc.Connector(sim.connector_config("binance")) as conn:
        now = await conn.server_time()
        end = (now // MINUTE - 600) * MINUTE
        candles = await conn.kline_history("BTCUSDT", "1m", end=end, limit=3).pipe(ops.to_list())
    assert [k.open_time for k in candles] == [end - 2 * MINUTE, end - MINUTE, end]


async def test_start_with_limit_is_the_first_n(sim: ExchangeSimulator) -> None:
    async with rxc.Connector(sim.connector_config("binance")) as conn:
        now = await conn.server_time()
        start = (now // MINUTE - 5000) * MINUTE
        candles = await conn.kline_history("BTCUSDT", "1m", start, limit=4).pipe(ops.to_list())
    assert [k.open_time for k in candles] == [start + i * MINUTE for i in range(4)]


async def test_neither_start_nor_limit_is_a_clear_error(sim: ExchangeSimulator) -> None:
    async with rxc.Connector(sim.connector_config("binance")) as conn:
        with pytest.raises(ValueError, match=r"start.*limit"):
            await conn.kline_history("BTCUSDT", "1m")
        with pytest.raises(ValueError, match="limit"):
            await conn.kline_history("BTCUSDT", "1m", limit=0)
