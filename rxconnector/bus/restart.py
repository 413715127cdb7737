"""Where a trade stream (re)starts: the last id already in Redis, the REST backfill after
it, and the rewrite of acknowledged trades a Redis lost (from the publisher's ring).

A trade stream starts (first start, restart, takeover, after its buffer overflowed)
after the last trade id in the stream: :func:`trades_after` backfills the ids between
that id and the first live trade over REST before the live trades. When Redis lost
trades it had acknowledged (restarted empty, failed over to a replica that lagged),
:func:`requeue_from_ring` puts them in front of the buffer again if the ring reaches
back to the stream's last id; otherwise the publisher restarts the stream through
:func:`trades_after`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.bus.slots import StreamSlot
from rxconnector.connector import BACKFILL_PAGE
from rxconnector.errors import FeedGapError
from rxconnector.models import Trade
from rxconnector.streams.continuity import gapless_trades

__all__ = ["last_seq", "requeue_from_ring", "trades_after"]


async def last_seq(redis: Any, slot: StreamSlot) -> int | None:
    """The last trade id already in the stream (None for an empty stream)."""
    raw = await redis.get(slot.seq)
    if raw is not None:
        return int(raw)
    entries: Any = await redis.xrevrange(slot.key, count=100)
    for _id, fields in entries or ():
        seq = (fields or {}).get(b"seq")
        if seq:
            return int(seq)
    return None


def trades_after(
    slot: StreamSlot,
    last: int | None,
    connector: Any,
    *,
    max_backfill: int,
    on_gap: Callable[[FeedGapError], None],
    report: Callable[[Exception], None],
    scheduler: abc.SchedulerBase | None,
) -> Observable[Trade]:
    """The gapless live trades, preceded by a REST backfill of the ids after ``last``.

    The live feed is prefixed with a stand-in trade of id ``last``; the library's own
    :func:`gapless_trades` then sees the jump to the first live id and backfills the
    range page by page (reporting what cannot be fetched with exact ids; ``on_gap``
    turns such a report into a gap marker in the stream).
    """
    live: Observable[Trade] = slot.target.open(connector)
    if last is None:
        return live
    symbol = slot.target.symbol.upper()
    feed = slot.target.feed
    rest = connector.rest
    seed = Trade(symbol, last, Decimal(0), Decimal(0), "buy", 0, 0)

    def backfill(from_id: int) -> Observable[list[Trade]]:
        page: Observable[Trade] = rest.trades_between(
            feed, symbol, from_id, from_id + BACKFILL_PAGE - 1
        )
        return page.pipe(ops.to_list())

    def reported(error: Exception) -> None:
        if isinstance(error, FeedGapError):
            on_gap(error)
        report(error)

    seeded = gapless_trades(
        reactivex.concat(reactivex.of(seed), live),
        backfill,
        topic=slot.key,
        max_backfill=max_backfill,
        report=reported,
        scheduler=scheduler,
    )
    return seeded.pipe(ops.filter(lambda trade: trade is not seed))


def requeue_from_ring(slot: StreamSlot, have: int | None) -> str | None:
    """Redis's last id is ``have`` (None: empty stream) but it acknowledged more: put the
    ring's entries after ``have`` in front of the buffer again and say what was done, or
    return None when the ring does not reach back to ``have + 1`` (REST must fill it)."""
    records = list(slot.ring)
    start = 0
    if have is not None:
        start = len(records)
        for index, record in enumerate(records):
            if record[1] and int(record[1]) > have:
                start = index
                break
    oldest = next((int(r[1]) for r in records[start:] if r[1]), None)
    first_lost = 1 if have is None else have + 1
    if have is not None and (oldest is None or oldest > first_lost):
        return None
    again = records[start:]
    for _ in again:
        slot.ring.pop()
    slot.buffer.extendleft(reversed(again))
    slot.written_last = have
    how = f"{len(again)} entries written again from the ring"
    if have is None and oldest is not None and oldest > first_lost:
        how += f" (ids before {oldest} are beyond the ring of {slot.ring.maxlen})"
    return how
