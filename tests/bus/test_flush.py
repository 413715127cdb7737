"""A non-trade stream whose buffer overflows while a write is in flight (a real
redis-server, stopped with SIGSTOP so the write waits for its answer): every entry is
either in the stream or counted by a gap marker at its place, with the exact count.

Regression: the flush used to leave the entries of a write in the buffer and pop as
many from its front when the answer came; a drop meanwhile had already removed some
of them, so unwritten entries were popped instead, and a marker in flight reset the
count of drops made during its own flight to zero (those drops were never announced).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import orjson
from redis import asyncio as aioredis

import rxconnector as rxc
from rxconnector.bus import FeedTarget, Publisher
from rxconnector.bus.codec import decode_entry
from rxconnector.testing.factories import make_book_ticker
from rxconnector.testing.simulator import ExchangeSimulator

from .conftest import RedisServer
from .helpers import SYMBOL, until

KEY = f"rxc:binance:book_ticker:{SYMBOL}"


async def _tape(url: str) -> list[tuple[str, int]]:
    """The stream as ("entry", update id) and ("gap", dropped count), oldest first."""
    client: Any = aioredis.Redis.from_url(url)
    try:
        entries = await client.xrange(KEY)
    finally:
        await client.aclose()
    tape: list[tuple[str, int]] = []
    for _id, fields in entries:
        if fields[b"type"] == b"gap":
            reason = orjson.loads(fields[b"data"])["reason"]
            tape.append(("gap", int(reason.split()[0])))
        else:
            tape.append(("entry", decode_entry(KEY, fields).update_id))
    return tape


def assert_every_drop_announced(tape: list[tuple[str, int]], total: int) -> None:
    """Entries in order; the markers before an entry count exactly the ids skipped."""
    expected, announced = 0, 0
    for kind, value in tape:
        if kind == "gap":
            announced += value
            continue
        assert value >= expected, f"entry {value} after {expected - 1}: out of order"
        assert value - expected == announced, (
            f"ids {expected}..{value - 1} missing, markers announced {announced}"
        )
        expected, announced = value + 1, 0
    assert (total - expected, announced) == (0, 0), "the newest entries were not written"


async def test_drops_while_a_write_is_in_flight_are_announced_exactly(
    redis_server: RedisServer,
) -> None:
    async with ExchangeSimulator(seed=5, symbols=(SYMBOL,), autostart_market=False) as sim:
        config = rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url)
        publisher = Publisher(
            config,
            redis_server.url,
            [FeedTarget("book_ticker", SYMBOL)],
            buffer_limit=500,
            lease_ms=30_000,
            report=lambda _error: None,
        )
        assert redis_server.proc is not None
        pid = redis_server.proc.pid
        armed: list[bool] = []
        answered: list[bool] = []

        def stop_redis_after_this_write(_elapsed: float, _written: int) -> None:
            # runs as the write's answer is settled, before the next write is sent:
            # that next write then waits for a stopped server, deterministically
            if armed:
                armed.clear()
                os.kill(pid, signal.SIGSTOP)
                answered.append(True)

        publisher.on_write.append(stop_redis_after_this_write)
        pushed = 0
        async with publisher:
            slot = publisher._slots[0]
            await until(lambda: slot.holding and slot.subscription is not None, 10, "lease")
            push = publisher._make_on_next(slot)

            def feed(count: int) -> None:
                nonlocal pushed
                for _ in range(count):
                    push(make_book_ticker(SYMBOL, update_id=pushed))
                    pushed += 1

            feed(10)
            await until(lambda: slot.published == 10, 10, "first entries written")
            os.kill(pid, signal.SIGSTOP)
            try:
                feed(500)  # write A goes out and waits
                await asyncio.sleep(0.3)
                feed(700)  # the buffer overflows while A is in flight
                armed.append(True)
                os.kill(pid, signal.SIGCONT)
                await until(lambda: bool(answered), 10, "write A answered")
                await asyncio.sleep(0.3)  # write B (led by the gap marker) waits
                feed(600)  # the buffer overflows while B is in flight
            finally:
                os.kill(pid, signal.SIGCONT)
            await until(lambda: slot.drained and not slot.dropped_pending, 10, "everything written")
        tape = await _tape(redis_server.url)
        assert_every_drop_announced(tape, pushed)
        assert slot.dropped == sum(value for kind, value in tape if kind == "gap") > 0
