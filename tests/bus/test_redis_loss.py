"""Redis loses trades the publisher had written and had acknowledged: the publisher (in
this process, against the simulator and a real redis-server) notices at its next fenced
write and writes them again, from its ring or over REST, so the stream is the exact
tape again. (An empty restart with consumers reading: tests/bus/test_end_to_end.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

import rxconnector as rxc
from rxconnector.bus import FeedTarget, Publisher
from rxconnector.testing.simulator import ExchangeSimulator

from .conftest import RedisServer
from .helpers import SYMBOL, TRADES_KEY, assert_tape, stream_last_seq, stream_trades

FAST = {"reconnect_delay": 0.05, "reconnect_jitter": 0.0, "healthy_after": 0.5}


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=5, symbols=(SYMBOL,), tick_interval=0.02, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)
        yield simulator


async def _newest(url: str) -> int:
    return await stream_last_seq(url) or 0


@pytest.mark.parametrize(
    ("ring", "how"),
    [(10_000, "written again from the ring"), (5, "backfilled over REST")],
    ids=["ring", "rest-beyond-the-ring"],
)
async def test_a_redis_that_comes_back_older_gets_the_lost_trades_written_again(
    sim: ExchangeSimulator, redis_server: RedisServer, ring: int, how: str
) -> None:
    reports: list[Exception] = []
    config = rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url, connection=FAST)
    publisher = Publisher(
        config,
        redis_server.url,
        [FeedTarget("trades", SYMBOL)],
        holder="P",
        lease_ms=1500,
        rewrite_ring=ring,
        report=reports.append,
    )
    async with publisher:
        newest = 0

        async def grown(at_least: int) -> None:
            nonlocal newest
            for _ in range(750):
                newest = await _newest(redis_server.url)
                if newest >= at_least:
                    return
                await sim.step(1)
            raise AssertionError(f"stream did not reach id {at_least}")

        await grown(1)
        first = (await stream_trades(redis_server.url))[0].trade_id
        await grown(first + 60)
        lost_from = newest
        await grown(lost_from + 1)  # a later flush landed: everything up to here was acknowledged
        # The server comes back holding only the older half (a replica that lagged, or
        # an old snapshot). No await from the kill to the restore: the publisher (same
        # loop) cannot write in between.
        sync: Any = redis.Redis.from_url(redis_server.url)
        entries = sync.xrange(TRADES_KEY)
        sync.close()
        keep = entries[: len(entries) // 2]
        kept_last = int(keep[-1][1][b"seq"])
        redis_server.kill()
        redis_server.start()
        sync = redis.Redis.from_url(redis_server.url)
        for _id, fields in keep:
            sync.xadd(TRADES_KEY, fields)
        sync.set(f"{TRADES_KEY}:seq", kept_last)
        sync.close()
        await grown(lost_from + 30)
        tape = await stream_trades(redis_server.url)
        assert tape[0].trade_id == first
        assert_tape(sim, tape)  # kept half + written again + live: no hole, no repeat
        lost = [e for e in reports if "redis lost acknowledged trades" in str(e)]
        assert lost and how in str(lost[0]), reports
        if ring == 5:
            again = [t for t in tape if kept_last < t.trade_id <= lost_from]
            assert again and all(t.backfilled for t in again)
