"""End to end through real processes: the simulator (in this test's loop) ->
``rxconnector publish`` (a subprocess) -> redis-server (a subprocess) -> RemoteConnector.

Nothing is mocked: exchange faults are the simulator's, Redis faults are SIGKILLs of the
real server, publisher faults are SIGKILLs of the real publisher.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

import rxconnector as rxc
from rxconnector.bus import RemoteConnector
from rxconnector.testing.simulator import ExchangeSimulator

from .conftest import RedisServer, free_port
from .helpers import (
    BOOK_DEPTH,
    SYMBOL,
    PausableProxy,
    assert_tape,
    assert_true_books,
    lease_holder,
    start_publisher,
    stream_last_seq,
    stream_trades,
    until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=7, symbols=(SYMBOL,), tick_interval=0.02, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)
        yield simulator


async def test_exactly_once_tape_and_true_books_across_exchange_disconnects_then_sigterm(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    pub = await start_publisher(sim, redis_server.url, "A")
    try:
        async with RemoteConnector(redis_server.url, start="0") as remote:
            trades: list[rxc.Trade] = []
            books: list[rxc.OrderBook] = []
            errors: list[Exception] = []
            remote.trades(SYMBOL).subscribe(trades.append)
            remote.order_book(SYMBOL, depth=BOOK_DEPTH).subscribe(books.append)
            remote.errors.subscribe(errors.append)
            await until(lambda: len(trades) >= 20 and len(books) >= 5, 15, pub.output)
            for _ in range(3):
                seen = len(trades)
                # the publisher may still be reconnecting from the last drop (the trades
                # counted above can come from Redis): drop a live connection, not none
                await until(lambda: bool(sim.connections), 10, "publisher reconnected")
                assert await sim.drop_connections() >= 1
                await until(lambda seen=seen: len(trades) >= seen + 20, 10, "after a drop")
            assert_tape(sim, trades)
            assert_true_books(sim, books)
            assert any(t.backfilled for t in trades), "the disconnects lost nothing to backfill?"
            pub.signal(signal.SIGTERM)
            assert await pub.wait() == 0, pub.output
            assert "rxconnector publish stopped" in pub.output
            assert "Traceback" not in pub.output
            # the whole stream, not only what this consumer saw, is the exact tape
            assert_tape(sim, await stream_trades(redis_server.url))
            assert not [e for e in errors if isinstance(e, rxc.FeedGapError) and "trades" in str(e)]
    finally:
        await pub.close()


async def test_ctrl_c_flushes_and_exits_130_and_metrics_are_served(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    port = free_port()
    pub = await start_publisher(
        sim, redis_server.url, "A", feeds="trades", extra=("--metrics-port", str(port))
    )
    try:
        await until(lambda: "published trades" in pub.output, 15, pub.output)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as reply,
        ):
            text = await reply.text()
        assert reply.status == 200
        assert f'rxc_lease_held{{stream="rxc:binance:trades:{SYMBOL}"}} 1.0' in text
        assert "rxc_redis_write_seconds_bucket" in text
        pub.signal(signal.SIGINT)
        assert await pub.wait() == 130, pub.output
        assert "interrupted" in pub.output
        assert "Traceback" not in pub.output
        assert_tape(sim, await stream_trades(redis_server.url))
    finally:
        await pub.close()


async def test_sigkill_of_the_holder_standby_takes_over_gap_free_within_10s(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    first = await start_publisher(sim, redis_server.url, "A", feeds="trades")
    second = await start_publisher(sim, redis_server.url, "B", feeds="trades")
    try:
        async with RemoteConnector(redis_server.url, start="0") as remote:
            trades: list[rxc.Trade] = []
            states: list[rxc.ConnectionEvent] = []
            remote.trades(SYMBOL).subscribe(trades.append)
            remote.connection_state.subscribe(states.append)
            await until(lambda: len(trades) >= 30, 15, first.output + second.output)
            holder = await lease_holder(redis_server.url)
            assert holder in ("A", "B")
            victim, standby = (first, second) if holder == "A" else (second, first)
            victim.signal(signal.SIGKILL)
            await victim.wait()
            killed_at = time.monotonic()
            seen = len(trades)
            await until(lambda: len(trades) >= seen + 30, 12, standby.output)
            new_holder = await lease_holder(redis_server.url)
            assert new_holder == standby.holder
            taken_over = time.monotonic() - killed_at
            assert taken_over <= 10.0
            assert_tape(sim, trades)  # no gap, no duplicate across the takeover
            assert_tape(sim, await stream_trades(redis_server.url))
            # the dead publisher is reported stale (its heartbeat stopped)
            await until(
                lambda: any(
                    e.connection_id == f"publisher:{victim.holder}"
                    and e.state is rxc.ConnectionState.STALE
                    for e in states
                ),
                8,
                "stale publisher",
            )
        standby.signal(signal.SIGTERM)
        assert await standby.wait() == 0, standby.output
    finally:
        await first.close()
        await second.close()


async def test_consumer_group_resumes_after_restart_and_another_group_sees_everything(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    pub = await start_publisher(sim, redis_server.url, "A", feeds="trades")
    try:
        first: list[rxc.Trade] = []
        async with RemoteConnector(redis_server.url, group="g1", consumer="c1", start="0") as a:
            a.trades(SYMBOL).subscribe(first.append)
            await until(lambda: len(first) >= 30, 15, pub.output)
        await asyncio.sleep(0.5)  # trades go on while the consumer is away
        second: list[rxc.Trade] = []
        async with RemoteConnector(redis_server.url, group="g1", consumer="c1") as b:
            b.trades(SYMBOL).subscribe(second.append)
            await until(lambda: len(second) >= 30, 15, pub.output)
        # resumed at its first unacknowledged entry: no gap; at most one batch twice
        again = {t.trade_id for t in first} & {t.trade_id for t in second}
        assert len(again) <= 500
        merged = {t.trade_id: t for t in [*first, *second]}
        assert_tape(sim, [merged[i] for i in sorted(merged)])
        assert second[0].trade_id <= first[-1].trade_id + 1
        # an independent group reads the whole stream from the start
        other: list[rxc.Trade] = []
        async with RemoteConnector(redis_server.url, group="g2", consumer="x", start="0") as c:
            c.trades(SYMBOL).subscribe(other.append)
            await until(lambda: len(other) >= len(merged), 15, "second group")
        assert_tape(sim, other)
        assert other[0].trade_id == (await stream_trades(redis_server.url))[0].trade_id
    finally:
        pub.signal(signal.SIGTERM)
        assert await pub.wait() == 0, pub.output
        await pub.close()


async def test_redis_sigkill_and_restart_is_survived_by_publisher_and_consumers(
    sim: ExchangeSimulator, redis_server: RedisServer
) -> None:
    """Redis dies (SIGKILL, no persistence) holding trades the publisher had written and
    had acknowledged but the consumers had not read yet; it comes back empty. The
    consumers read through a proxy that is paused first, so they certainly had not read
    them: the publisher writes them again, the consumers drop what they had already
    seen, and both tapes are exact (no hole, no duplicate)."""
    pub = await start_publisher(sim, redis_server.url, "A", feeds="trades")
    proxy = PausableProxy(redis_server.port)
    await proxy.start()
    try:
        async with (
            # "$": tails live, resolved to an entry id at the first read, so the
            # reconnect after the restart skips nothing that was written meanwhile
            RemoteConnector(proxy.url, start="$") as plain,
            RemoteConnector(proxy.url, group="g", consumer="c", start="0") as grouped,
        ):
            trades: list[rxc.Trade] = []
            via_group: list[rxc.Trade] = []
            errors: list[Exception] = []
            group_errors: list[Exception] = []
            states: list[rxc.ConnectionEvent] = []
            plain.trades(SYMBOL).subscribe(trades.append)
            grouped.trades(SYMBOL).subscribe(via_group.append)
            plain.errors.subscribe(errors.append)
            grouped.errors.subscribe(group_errors.append)
            plain.connection_state.subscribe(states.append)
            await until(lambda: len(trades) >= 20 and len(via_group) >= 20, 15, pub.output)
            proxy.pause()
            # what the proxy forwarded before the pause is at most what the stream
            # holds now: an upper bound of what the consumers can still deliver
            read = await _seq_reaching(redis_server.url, 0)
            # entries written after the consumers stopped reading, then a later flush:
            # the publisher writes one flush after the other, so everything up to
            # ``acknowledged`` had its reply when the next flush landed
            acknowledged = await _seq_reaching(redis_server.url, read + 20)
            await _seq_reaching(redis_server.url, acknowledged + 1)
            redis_server.kill()
            proxy.cut()  # what the consumers had not read is gone with the server
            assert trades[-1].trade_id < acknowledged and via_group[-1].trade_id < acknowledged
            redis_server.start()  # same port, empty: no persistence
            proxy.resume()
            target = acknowledged + 30
            await until(lambda: bool(trades) and trades[-1].trade_id >= target, 20, pub.output)
            await until(lambda: bool(via_group) and via_group[-1].trade_id >= target, 20, "group")
            assert pub.proc.returncode is None, pub.output
            assert any("redis unavailable" in str(e) for e in errors)
            redis_states = [e.state for e in states if e.connection_id == "redis"]
            assert rxc.ConnectionState.RECONNECTING in redis_states
            assert redis_states[-1] is rxc.ConnectionState.CONNECTED
            # exact: no hole, no duplicate, each trade equal to the exchange's
            assert_tape(sim, trades)
            assert_tape(sim, via_group)
            for reported in (errors, group_errors):
                assert not [e for e in reported if isinstance(e, rxc.FeedGapError)]
            assert "redis lost acknowledged trades" in pub.output, pub.output
        pub.signal(signal.SIGTERM)
        assert await pub.wait() == 0, pub.output
        assert "Traceback" not in pub.output
    finally:
        await proxy.close()
        await pub.close()


async def _seq_reaching(redis_url: str, at_least: int, within: float = 15.0) -> int:
    """The stream's newest trade id once it is at least ``at_least``."""
    deadline = time.monotonic() + within
    while True:
        seq = await stream_last_seq(redis_url)
        if seq is not None and seq >= at_least:
            return seq
        assert time.monotonic() < deadline, f"stream did not reach id {at_least} in {within} s"
        await asyncio.sleep(0.02)
