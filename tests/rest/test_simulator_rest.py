"""Binance Spot's REST plans end to end against the ExchangeSimulator on 127.0.0.1.

The simulator checks what a real client must get right (signature over the exact query,
timestamps, unknown parameters -1104, weights), so these tests catch wire-level mistakes
the scripted-server tests cannot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import Config
from rxconnector.errors import ExchangeError, RateLimitError
from rxconnector.rest.planned import PlannedRest
from rxconnector.testing.simulator import ExchangeSimulator
from rxconnector.transport.http import HttpTransport

from .conftest import API_KEY, SECRET, binance_client, binance_spot_rest


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
) -> PlannedRest:
    config = Config.binance(
        api_key=API_KEY,
        api_secret=SECRET,
        rest_url=sim.rest_url,
        rate_limit={"max_weight_per_minute": limit},
    )
    transport = HttpTransport(session, timeout=2.0)
    client = binance_client(
        lambda: transport,
        config,
        base_url=sim.rest_url,
        on_timestamp_rejected=resync,
        scheduler=scheduler or TestScheduler(),
    )
    return binance_spot_rest(client, config, sim.server_time_ms)


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
        client = binance_client(lambda: transport, config, base_url=sim.rest_url)
        with pytest.raises(ExchangeError) as info:
            await binance_spot_rest(client, config, sim.server_time_ms).account()
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


def _without_receipt(trade: Any) -> dict[str, Any]:
    """Every field of the Trade model except ``received_at`` (when our process read the
    reply: a local clock, not trade data)."""
    fields = attrs.asdict(trade, recurse=False)
    del fields["received_at"]
    return fields


@pytest.fixture
async def still_sim() -> AsyncIterator[ExchangeSimulator]:
    """A market that moves only when stepped (the tape cannot grow between two calls)."""
    async with ExchangeSimulator(seed=3, symbols=("BTCUSDT",), tick_interval=3600.0) as simulator:
        await simulator.step(50)
        yield simulator


class TestTradesAfter:
    """Issue 16: plain trades proven by single-fill aggregates equal historicalTrades."""

    async def test_every_field_equals_historical_trades(
        self, still_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        await still_sim.step(200)
        aggs = still_sim.agg_trades("BTCUSDT")
        singles = [a for a in aggs if a.first_trade_id == a.last_trade_id]
        assert singles and len(singles) < len(aggs)  # both kinds are on the tape
        start = singles[len(singles) // 2]
        before = next(
            t for t in reversed(still_sim.trades("BTCUSDT")) if t.id < start.first_trade_id
        )
        rest = _rest(still_sim, session, limit=6000)
        page = await rest.trades_after("BTCUSDT", start.first_trade_id, before.time)
        ids = [t.trade_id for t in page]
        assert ids == list(range(start.first_trade_id, start.first_trade_id + len(ids)))
        by_id = await rest.trades_between("trades", "BTCUSDT", ids[0], ids[-1]).pipe(ops.to_list())
        assert [_without_receipt(t) for t in page] == [_without_receipt(t) for t in by_id]
        paths = [r.path for r in still_sim.rest_log]
        assert paths[0] == "/api/v3/aggTrades"
        first_multi = next(
            a
            for a in aggs
            if a.first_trade_id >= start.first_trade_id and a.first_trade_id != a.last_trade_id
        )
        if first_multi.first_trade_id <= ids[-1]:  # the page went past a multi-fill one
            assert paths[1] == "/api/v3/historicalTrades"
            assert still_sim.rest_log[1].params["fromId"] == str(first_multi.first_trade_id)

    async def test_a_gap_of_single_fill_trades_costs_one_aggtrades_call(
        self, still_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        for _ in range(500):  # until the newest aggregate is a single fill
            last = still_sim.agg_trades("BTCUSDT")[-1]
            if last.first_trade_id == last.last_trade_id:
                break
            await still_sim.step(1)
        assert last.first_trade_id == last.last_trade_id
        tape = still_sim.trades("BTCUSDT")
        assert tape[-1].id == last.first_trade_id
        rest = _rest(still_sim, session, limit=6000)
        page = await rest.trades_after("BTCUSDT", last.first_trade_id, tape[-2].time)
        assert [_without_receipt(t) for t in page] == [
            _without_receipt(t)
            for t in await rest.trades_between(
                "trades", "BTCUSDT", last.first_trade_id, last.first_trade_id
            ).pipe(ops.to_list())
        ]
        assert (still_sim.rest_log[0].path, still_sim.rest_log[0].weight) == (
            "/api/v3/aggTrades",
            4,
        )
        assert [r.path for r in still_sim.rest_log].count("/api/v3/aggTrades") == 1
        assert len(still_sim.rest_log) == 2  # the aggTrades call, then our own check by id

    async def test_a_window_older_than_an_hour_falls_back_to_ids(
        self, still_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        tape = still_sim.trades("BTCUSDT")
        rest = _rest(still_sim, session, limit=6000)
        long_ago = tape[0].time - 2 * 3_600_000  # aggTrades finds nothing in that hour
        page = await rest.trades_after("BTCUSDT", tape[1].id, long_ago)
        assert [t.trade_id for t in page][:3] == [t.id for t in tape[1:4]]
        assert [r.path for r in still_sim.rest_log] == [
            "/api/v3/aggTrades",
            "/api/v3/historicalTrades",
        ]

    async def test_after_a_multi_fill_page_the_next_go_by_id(
        self, still_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        await still_sim.step(100)
        aggs = still_sim.agg_trades("BTCUSDT")
        multi = next(a for a in aggs if a.first_trade_id != a.last_trade_id)
        rest = _rest(still_sim, session, limit=6000)
        since = multi.time - 1
        for _ in range(5):
            page = await rest.trades_after("BTCUSDT", multi.first_trade_id, since)
            assert page[0].trade_id == multi.first_trade_id
        paths = [r.path for r in still_sim.rest_log]
        agg, hist = "/api/v3/aggTrades", "/api/v3/historicalTrades"
        assert paths == [agg, hist, hist, hist, hist, agg, hist]  # then every 4th page

    async def test_live_trades_that_mostly_continue_orders_go_by_id_at_once(
        self, still_sim: ExchangeSimulator, session: aiohttp.ClientSession
    ) -> None:
        tape = still_sim.trades("BTCUSDT")
        rest = _rest(still_sim, session, limit=6000)
        page = await rest.trades_after("BTCUSDT", tape[5].id, tape[4].time, continuation=0.5)
        assert page[0].trade_id == tape[5].id
        assert [r.path for r in still_sim.rest_log] == ["/api/v3/historicalTrades"]
        await rest.trades_after("BTCUSDT", tape[5].id, tape[4].time, continuation=0.1)
        assert [r.path for r in still_sim.rest_log][1] == "/api/v3/aggTrades"
