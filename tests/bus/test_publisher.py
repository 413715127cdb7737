"""The publisher in this process (simulator + Publisher + RemoteConnector on one loop, a
real redis-server): restart backfill, book resync markers, forwarded exchange events,
Prometheus metrics, and the ``publish`` command's argument checks."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import rxconnector as rxc
from rxconnector.bus import FeedTarget, Publisher, RemoteConnector
from rxconnector.bus.metrics import PublisherMetrics
from rxconnector.bus.slots import DEFAULT_REWRITE_RING
from rxconnector.cli import EXIT_USAGE, main
from rxconnector.testing.simulator import ExchangeSimulator
from tests.simthread import SimThread

from .conftest import RedisServer, free_port
from .helpers import (
    BOOK_DEPTH,
    SYMBOL,
    assert_tape,
    assert_true_books,
    start_publisher,
    stream_trades,
    until,
)

FAST = {"reconnect_delay": 0.05, "reconnect_jitter": 0.0, "healthy_after": 0.5}


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=11, symbols=(SYMBOL,), tick_interval=0.02, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)
        yield simulator


def _config(sim: ExchangeSimulator) -> rxc.Config:
    return rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url, connection=FAST)


async def test_a_restarted_publisher_backfills_from_the_last_id_in_the_stream(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    first = await start_publisher(sim, redis_server.url, "A", feeds="trades")
    await until(lambda: "published trades" in first.output, 15, first.output)
    first.signal(signal.SIGTERM)
    assert await first.wait() == 0, first.output
    before = await stream_trades(redis_server.url)
    await asyncio.sleep(1.0)  # trading goes on while nobody publishes
    second = await start_publisher(sim, redis_server.url, "A", feeds="trades")
    try:
        await until(lambda: "published trades" in second.output, 15, second.output)
        await asyncio.sleep(1.0)
        after = await stream_trades(redis_server.url)
        assert len(after) > len(before) + 10
        assert_tape(sim, after)  # no gap, no duplicate across the restart
        assert any(t.backfilled for t in after[len(before) :])
    finally:
        second.signal(signal.SIGTERM)
        assert await second.wait() == 0, second.output
        await second.close()


async def test_book_resyncs_and_exchange_events_reach_the_remote_side(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    publisher = Publisher(
        _config(sim),
        redis_server.url,
        [FeedTarget("order_book", SYMBOL, (BOOK_DEPTH,)), FeedTarget("ticker", SYMBOL)],
        holder="P",
        report=lambda _e: None,
    )
    async with publisher, RemoteConnector(redis_server.url, heartbeat_poll=0.2) as remote:
        books: list[rxc.OrderBook] = []
        tickers: list[rxc.Ticker] = []
        errors: list[Exception] = []
        states: list[rxc.ConnectionEvent] = []
        remote.order_book(SYMBOL, depth=BOOK_DEPTH).subscribe(books.append)
        remote.ticker(SYMBOL).subscribe(tickers.append)
        remote.errors.subscribe(errors.append)
        remote.connection_state.subscribe(states.append)
        await until(lambda: len(books) >= 5 and len(tickers) >= 2, 15, "books and tickers")
        sim.drop_updates(SYMBOL, 3)  # the publisher's book sees a gap and resyncs
        await until(
            lambda: any(isinstance(e, rxc.FeedGapError) and "resync" in str(e) for e in errors),
            15,
            "resync marker",
        )
        assert await sim.drop_connections() >= 1
        await until(
            lambda: any(
                e.connection_id.startswith("P/") and e.state is rxc.ConnectionState.RECONNECTING
                for e in states
            ),
            10,
            "the publisher's reconnect, forwarded",
        )
        seen = len(books)
        await until(lambda: len(books) >= seen + 5, 15, "books after the reconnect")
        assert_true_books(sim, books)
        assert "P" in remote.publishers_alive
        # one clock for every event: epoch ms, as on Connector.connection_state - the
        # forwarded exchange events and RemoteConnector's own (redis, publisher:P)
        now = time.time() * 1000.0
        sources = {e.connection_id.split("/")[0].split(":")[0] for e in states}
        assert {"redis", "publisher", "P"} <= sources
        assert all(now - 600_000 < e.time <= now + 1_000 for e in states), states
        gap = next(e for e in errors if isinstance(e, rxc.FeedGapError))
        assert gap.topic == f"rxc:binance:order_book:{SYMBOL}:{BOOK_DEPTH}"
    # a clean stop removes the heartbeat: the publisher is not reported stale later
    assert not any(e.state is rxc.ConnectionState.STALE for e in states)
    # and leaves no task of its own (nor of the RemoteConnector) behind
    await asyncio.sleep(0)
    left = [
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and any(name in repr(t) for name in ("Publisher", "RemoteConnector"))
    ]
    assert left == []


async def test_bybit_linear_trades_with_uuid_ids_are_all_published(
    redis_server: RedisServer,
) -> None:
    """Bybit ids are not ordered numbers: the stream must not apply the id check to them
    (a UUID compared as a number would drop trades)."""
    import uuid

    from rxconnector.testing.simulator.bybit_payloads import exec_id

    async with ExchangeSimulator(seed=4, symbols=(SYMBOL,), tick_interval=0.02) as sim:
        await sim.step(20)
        config = rxc.Config.bybit("linear", rest_url=sim.rest_url, ws_url=sim.ws_url)
        problems: list[Exception] = []
        publisher = Publisher(
            config, redis_server.url, [FeedTarget("trades", SYMBOL)], report=problems.append
        )
        async with publisher, RemoteConnector(redis_server.url, venue="bybit-linear") as remote:
            trades: list[rxc.Trade] = []
            remote.trades(SYMBOL).subscribe(trades.append)
            await until(lambda: len(trades) >= 30, 15, "bybit trades")
        assert problems == []
        tape = [uuid.UUID(exec_id("linear", SYMBOL, t.id)).int for t in sim.trades(SYMBOL)]
        at = tape.index(trades[0].trade_id)
        assert [t.trade_id for t in trades] == tape[at : at + len(trades)]


async def test_prometheus_metrics(sim: ExchangeSimulator, redis_server: RedisServer) -> None:
    publisher = Publisher(
        _config(sim), redis_server.url, [FeedTarget("trades", SYMBOL)], report=lambda _e: None
    )
    async with publisher:
        metrics = PublisherMetrics(publisher)
        try:
            await until(lambda: publisher.stats()[0].published >= 5, 15, "trades published")
            text = metrics.render().decode()
            stream = f'stream="rxc:binance:trades:{SYMBOL}"'
            published = re.search(rf"rxc_published_entries\{{{stream}\}} (\S+)", text)
            assert published is not None and float(published.group(1)) >= 5
            assert re.search(r"rxc_redis_write_seconds_count (\S+)", text)
            assert f"rxc_lease_held{{{stream}}} 1.0" in text
            assert "rxc_redis_up 1.0" in text
            port = free_port()
            metrics.serve(port, addr="127.0.0.1")
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as reply,
            ):
                assert reply.status == 200
                assert "rxc_published_entries" in await reply.text()
        finally:
            metrics.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--feeds", "diff_depth", "--symbols", "BTCUSDT"], "cannot be published"),
        (["--feeds", "nonsense", "--symbols", "BTCUSDT"], "unknown feed"),
        (["--feeds", "trades", "--symbols", "BTCUSDT", "--redis", "http://x"], "redis://"),
        (["--feeds", "mark_price", "--symbols", "BTCUSDT"], "mark_price"),
        # 0 or less printed status lines in a busy loop; nan never stopped
        (["--feeds", "trades", "--symbols", "BTCUSDT", "--status-every", "0"], "must be > 0"),
        (["--feeds", "trades", "--symbols", "BTCUSDT", "--seconds", "-1"], "must be > 0"),
        (["--feeds", "trades", "--symbols", "BTCUSDT", "--seconds", "nan"], "must be > 0"),
        (["--feeds", "trades", "--symbols", "BTCUSDT", "--rewrite-ring", "0"], "must be >= 1"),
        (["--feeds", "trades", "--symbols", "BTCUSDT", "--rewrite-ring", "x"], "whole number"),
    ],
)
def test_publish_refuses_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", "binance", *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "ring"), [((), DEFAULT_REWRITE_RING), (("--rewrite-ring", "7"), 7)]
)
def test_publish_passes_its_rewrite_ring_to_the_publisher(
    option: tuple[str, ...], ring: int, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rxconnector.bus.publisher as home

    rings: list[int] = []

    class Recording(home.Publisher):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            rings.append(self._slots[0].ring.maxlen or 0)

    monkeypatch.setattr(home, "Publisher", Recording)
    with SimThread([SYMBOL]) as sim:
        argv = [
            "publish", "binance", "--feeds", "trades", "--symbols", SYMBOL,
            "--redis", redis_server.url, "--rest-url", sim.rest_url, "--ws-url", sim.ws_url,
            "--seconds", "0.3", *option,
        ]  # fmt: skip
        assert main(argv) == 0
    assert rings == [ring]


def test_publish_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "rxconnector publish binance --feeds" in out


async def test_lease_renewal_and_heartbeat_follow_the_scheduler(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    """Lease renewal and heartbeats are timed by the scheduler: under a TestScheduler
    nothing is renewed until virtual time moves, then exactly on time."""
    from reactivex.testing import TestScheduler
    from redis import asyncio as aioredis

    scheduler = TestScheduler()
    publisher = Publisher(
        _config(sim),
        redis_server.url,
        [FeedTarget("ticker", SYMBOL)],
        lease_ms=3000,
        holder="V",
        scheduler=scheduler,
        report=lambda _e: None,
    )
    client: Any = aioredis.Redis.from_url(redis_server.url)
    lease = f"rxc:binance:ticker:{SYMBOL}:lease"
    try:
        async with publisher:
            await until(lambda: publisher.stats()[0].holding, 10, "lease taken")
            beat = await client.hget("rxc:binance:heartbeats", "V")
            await asyncio.sleep(0.6)  # real time passes, virtual time does not
            assert await client.pttl(lease) <= 2500
            assert await client.hget("rxc:binance:heartbeats", "V") == beat
            scheduler.advance_by(1.0)  # = lease_ms / 3: one renewal, one heartbeat
            await until_async(lambda: _pttl_above(client, lease, 2800), 5)
            await until_async(lambda: _changed(client, beat), 5)
    finally:
        await client.aclose()


async def test_staleness_follows_the_scheduler(redis_server: RedisServer) -> None:
    """A heartbeat that stops changing is called stale after 3 periods of the consumer's
    (virtual) clock, whatever the wall clock says."""
    import orjson
    from reactivex.testing import TestScheduler
    from redis import asyncio as aioredis

    scheduler = TestScheduler()
    client: Any = aioredis.Redis.from_url(redis_server.url)
    beat = orjson.dumps({"holder": "H", "time": 1.0, "period_ms": 1000.0})
    await client.hset("rxc:binance:heartbeats", "H", beat)
    states: list[rxc.ConnectionEvent] = []
    try:
        async with RemoteConnector(redis_server.url, scheduler=scheduler) as remote:
            remote.connection_state.subscribe(states.append)
            await until(lambda: _states_of(states, "publisher:H") == ["connected"], 5, "seen")
            for _ in range(3):
                scheduler.advance_by(1.0)
                await asyncio.sleep(0.1)  # let the poll read Redis
            assert _states_of(states, "publisher:H") == ["connected"]  # 3 periods: not yet
            scheduler.advance_by(1.0)
            await until(
                lambda: _states_of(states, "publisher:H") == ["connected", "stale"], 5, "stale"
            )
    finally:
        await client.aclose()


def _states_of(events: list[rxc.ConnectionEvent], connection_id: str) -> list[str]:
    return [e.state.value for e in events if e.connection_id == connection_id]


async def _pttl_above(client: Any, key: str, floor: int) -> bool:
    return bool(await client.pttl(key) > floor)


async def _changed(client: Any, beat: bytes) -> bool:
    return bool(await client.hget("rxc:binance:heartbeats", "V") != beat)


async def until_async(check: Any, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
