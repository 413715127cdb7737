"""BinanceSpotRest end to end against the ExchangeSimulator on 127.0.0.1.

The simulator checks what a real client must get right (signature over the exact query,
timestamps, unknown parameters -1104, weights), so these tests catch wire-level mistakes
the scripted-server tests cannot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import ExchangeError, RateLimitError
from rxconnector.rest.binance_spot import BinanceSpotRest, binance_spot_client
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.transport.http import HttpTransport

from .conftest import API_KEY, SECRET


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=3, symbols=("BTCUSDT", "ETHUSDT"), tick_interval=0.01, api_keys={API_KEY: SECRET}
    ) as simulator:
        await simulator.step(50)
        yield simulator


def _rest(
    sim: ExchangeSimulator,
    session: aiohttp.ClientSession,
    *,
    limit: int = 1200,
    resync: Any = None,
    scheduler: TestScheduler | None = None,
) -> BinanceSpotRest:
    config = Config.binance(
        api_key=API_KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        rate_limit={"max_weight_per_minute": limit},
    )
    transport = HttpTransport(session, timeout=2.0)
    client = binance_spot_client(
        lambda: transport,
        config,
        base_url=sim.rest_url,
        on_timestamp_rejected=resync,
        scheduler=scheduler or TestScheduler(),
    )
    return BinanceSpotRest(client, config, sim.server_time_ms)


class TestMarketDataAgainstSimulator:
    """Every public endpoint is accepted by the simulator and parses."""

    async def test_public_endpoints(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(sim, session)
        assert await rest.ping() is None
        assert abs(await rest.server_time() - sim.server_time_ms()) < 5_000
        infos = await rest.exchange_info(["BTCUSDT", "ETHUSDT"])
        assert set(infos) == {"BTCUSDT", "ETHUSDT"}
        assert infos["BTCUSDT"].tick_size == Decimal("0.01")
        book = await rest.depth_snapshot("BTCUSDT", limit=20)
        assert book.bids and book.asks and not book.is_crossed
        assert book.update_id > 0
        trades = await rest.recent_trades("BTCUSDT", limit=10)
        assert trades and all(t.symbol == "BTCUSDT" for t in trades)
        aggs = await rest.agg_trades("BTCUSDT", limit=10)
        assert all(a.first_trade_id is not None for a in aggs)
        ticker = await rest.ticker_24h("BTCUSDT")
        assert ticker.symbol == "BTCUSDT" and ticker.last > 0
        avg = await rest.avg_price("BTCUSDT")
        assert avg.price > 0
        candles = await rest.klines("BTCUSDT", "1m", limit=5)
        assert [c.open_time for c in candles] == sorted(c.open_time for c in candles)

    async def test_trade_backfill_matches_the_tape(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        tape = sim.trades("BTCUSDT")
        assert len(tape) >= 3
        first, last = tape[0].id, tape[-1].id
        rest = _rest(sim, session)
        trades = await rest.trades_between("trades", "BTCUSDT", first, last).pipe(ops.to_list())
        assert [t.trade_id for t in trades] == [t.id for t in tape]
        assert [(t.price, t.quantity) for t in trades] == [(t.price, t.qty) for t in tape]
        assert [t.side for t in trades] == [t.taker_side.lower() for t in tape]
        assert all(t.backfilled for t in trades)

    async def test_our_limiter_keeps_us_under_the_servers_budget(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        rest = _rest(sim, session, limit=30)  # weight 25 each: the second call must wait
        await rest.recent_trades("BTCUSDT")
        waiting: list[Any] = []
        subscription = rest.recent_trades("BTCUSDT").subscribe(waiting.append, waiting.append)
        await sim.step(5)
        assert waiting == []
        assert [r.status for r in sim.rest_log] == [200]
        subscription.dispose()


class TestSignedAgainstSimulator:
    """Signed calls pass the simulator's signature and timestamp checks."""

    async def test_account(self, sim: ExchangeSimulator, session: aiohttp.ClientSession) -> None:
        balances = await _rest(sim, session).account()
        assert all(b.free >= 0 for b in balances)
        assert sim.rest_log[-1].status == 200

    async def test_timestamp_rejection_resyncs_and_retries_once(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        resyncs: list[int] = []

        def resync() -> Observable[Any]:
            resyncs.append(1)
            return reactivex.of(sim.server_time_ms())

        sim.reject_timestamp_once()
        await _rest(sim, session, resync=resync).account()
        assert resyncs == [1]
        assert [r.status for r in sim.rest_log] == [400, 200]

    async def test_wrong_secret_is_an_invalid_signature(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim.add_api_key("other-key", "other-secret")
        config = Config.binance(api_key="other-key", api_secret=SECRET, rest_url=sim.rest_url)
        transport = HttpTransport(session, timeout=2.0)
        client = binance_spot_client(lambda: transport, config, base_url=sim.rest_url)
        with pytest.raises(ExchangeError) as info:
            await BinanceSpotRest(client, config, sim.server_time_ms).account()
        assert info.value.code == -1022
        assert SECRET not in str(info.value)


class TestFaultsFromSimulator:
    """Injected 5xx and 429 answers map to the error tree and the limiter hold."""

    async def test_500_on_a_read_is_retryable(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        sim.fail_rest(503)
        with pytest.raises(ExchangeError) as info:
            await _rest(sim, session).server_time()
        assert (info.value.status, info.value.code, info.value.retryable) == (503, -1008, True)

    async def test_429_holds_the_limiter(
        self, sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        rest = _rest(sim, session, scheduler=scheduler)
        sim.fail_rest(429, retry_after=3)
        with pytest.raises(RateLimitError) as info:
            await rest.ping()
        assert info.value.retry_after == 3.0
        with pytest.raises(RateLimitError):
            await rest.ping()
        assert len(sim.rest_log) == 1
        scheduler.advance_by(3.0)
        assert await rest.ping() is None
