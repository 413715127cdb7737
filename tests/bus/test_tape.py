"""The consumer's trade id check: repeats dropped, unexplained holes reported with the
exact ids (the TradeTape alone, then a RemoteConnector reading a real redis-server)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from redis import asyncio as aioredis

import rxconnector as rxc
from rxconnector.bus import RemoteConnector
from rxconnector.bus.codec import encode_gap, encode_model
from rxconnector.bus.tape import TradeTape, consecutive_trade_ids

from .conftest import RedisServer
from .helpers import SYMBOL, TRADES_KEY, until


def _gap(first: int | None, last: int | None) -> rxc.FeedGapError:
    return rxc.FeedGapError("t", "lost", first_missing=first, last_missing=last)


def test_repeats_are_dropped_and_an_unexplained_jump_is_one_exact_hole() -> None:
    tape = TradeTape("t")
    out = []
    holes = []
    for trade_id in (1, 2, 3, 2, 3, 4, 7, 7, 8):
        deliver, hole = tape.admit(trade_id)
        if deliver:
            out.append(trade_id)
        if hole is not None:
            holes.append((hole.first_missing, hole.last_missing))
    assert out == [1, 2, 3, 4, 7, 8]
    assert holes == [(5, 6)]
    assert tape.repeats == 3


def test_a_gap_marker_explains_its_range_and_nothing_more() -> None:
    tape = TradeTape("t")
    assert tape.admit(10) == (True, None)
    # the marker names 15..16: 11..14 before it are a hole nobody explained
    hole = tape.marker(_gap(15, 16))
    assert hole is not None and (hole.first_missing, hole.last_missing) == (11, 14)
    assert tape.admit(17) == (True, None)
    # a marker without ids (e.g. a reason only) explains the next jump
    assert tape.marker(_gap(None, None)) is None
    assert tape.admit(30) == (True, None)
    deliver, hole = tape.admit(32)
    assert deliver and hole is not None and (hole.first_missing, hole.last_missing) == (31, 31)


def test_group_members_drop_repeats_but_never_report_holes() -> None:
    tape = TradeTape("t", report_holes=False)
    assert tape.admit(1) == (True, None)
    assert tape.admit(9) == (True, None)  # 2..8 went to another member of the group
    assert tape.admit(9) == (False, None)


def test_only_consecutive_id_venues_are_checked() -> None:
    assert consecutive_trade_ids("binance") and consecutive_trade_ids("binance-futures")
    assert not consecutive_trade_ids("bybit") and not consecutive_trade_ids("bybit-linear")


def _trade(trade_id: int) -> rxc.Trade:
    return rxc.Trade(SYMBOL, trade_id, Decimal("100.5"), Decimal("0.1"), "buy", 1_000, 1_000)


async def _append(client: Any, parts: tuple[str, str, bytes, str]) -> None:
    kind, seq, data, ts = parts
    await client.xadd(TRADES_KEY, {"type": kind, "v": "1", "seq": seq, "data": data, "ts": ts})


async def test_remote_trades_drop_repeats_and_report_holes_from_a_real_stream(
    redis_server: RedisServer,
) -> None:
    client: Any = aioredis.Redis.from_url(redis_server.url)
    try:
        for parts in (
            *(encode_model(_trade(i)) for i in (1, 2, 3)),
            # Redis lost 2..3 and the publisher wrote them again: repeats
            *(encode_model(_trade(i)) for i in (2, 3, 4)),
            # a jump nobody explains: 5..6 are reported
            encode_model(_trade(7)),
            # a marker with the exact ids explains the next jump
            encode_gap("not backfilled", 8, 9),
            encode_model(_trade(10)),
        ):
            await _append(client, parts)
        async with RemoteConnector(redis_server.url, start="0") as remote:
            trades: list[rxc.Trade] = []
            errors: list[Exception] = []
            remote.errors.subscribe(errors.append)
            remote.trades(SYMBOL).subscribe(trades.append)
            await until(lambda: len(trades) >= 6, 10, "trades")
            assert [t.trade_id for t in trades] == [1, 2, 3, 4, 7, 10]
            gaps = [e for e in errors if isinstance(e, rxc.FeedGapError)]
            assert [(g.first_missing, g.last_missing) for g in gaps] == [(5, 6), (8, 9)]
            assert "no gap marker explains" in str(gaps[0])
            assert "not backfilled" in str(gaps[1])
    finally:
        await client.aclose()


async def test_the_check_can_be_switched_off(redis_server: RedisServer) -> None:
    client: Any = aioredis.Redis.from_url(redis_server.url)
    try:
        for i in (1, 2, 2, 5):
            await _append(client, encode_model(_trade(i)))
        async with RemoteConnector(redis_server.url, start="0", check_trade_ids=False) as remote:
            trades: list[rxc.Trade] = []
            errors: list[Exception] = []
            remote.errors.subscribe(errors.append)
            remote.trades(SYMBOL).subscribe(trades.append)
            await until(lambda: len(trades) >= 4, 10, "trades")
            assert [t.trade_id for t in trades] == [1, 2, 2, 5]
            assert not errors
    finally:
        await client.aclose()
