"""One published stream's state on the publisher side: its feed, lease, bounded buffer
and the entries of a write in flight (the publisher's bookkeeping, no I/O here).

Entries move ``buffer`` -> in flight (taken out by :meth:`StreamSlot.take`, so nothing
the feed does meanwhile can touch them) -> written (:meth:`StreamSlot.written`: counted,
kept in the rewrite ring for trade streams) or back to the front of ``buffer``
(:meth:`StreamSlot.put_back`: the write failed). Buffered plus in-flight entries never
exceed ``limit``: at the limit a non-trade stream drops its oldest *buffered* entry
(never one in flight: it may be written) and counts it for the next gap marker; a trade
stream suspends instead (the publisher backfills the missing ids over REST later).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs
from reactivex import Observable, abc

from rxconnector.bus.codec import FEED_TYPES, Record, encode_record
from rxconnector.bus.keys import lease_key, seq_key, stream_key

__all__ = [
    "BATCH",
    "DEFAULT_BUFFER_LIMIT",
    "DEFAULT_REWRITE_RING",
    "ROUND",
    "TRADE_FEEDS",
    "FeedTarget",
    "PublisherStats",
    "StreamSlot",
    "check_settings",
]

#: Entries buffered per stream while Redis is slow or down.
DEFAULT_BUFFER_LIMIT = 10_000
#: Entries per fenced write (one EVALSHA: Redis runs it in ~2 ms, other clients wait that long).
BATCH = 500
#: Fenced writes per stream per round trip (one pipeline): 2,000 entries per round trip.
ROUND = 4
#: Acknowledged trade entries kept per stream to write again into a Redis that lost them.
DEFAULT_REWRITE_RING = 10_000

#: Feeds whose entries carry consecutive ids (exactly-once checked by the write script).
TRADE_FEEDS = frozenset({"trades", "agg_trades"})


@attrs.frozen
class FeedTarget:
    """One published feed: ``FeedTarget("order_book", "BTCUSDT", (20,))``."""

    feed: str
    symbol: str
    args: tuple[Any, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.feed not in FEED_TYPES:
            raise ValueError(f"feed {self.feed!r} cannot be published; one of {sorted(FEED_TYPES)}")

    def open(self, connector: Any) -> Observable[Any]:
        feed: Observable[Any] = getattr(connector, self.feed)(self.symbol, *self.args)
        return feed

    def key(self, venue: str) -> str:
        return stream_key(venue, self.feed, self.symbol, *self.args)


@attrs.frozen
class PublisherStats:
    """A snapshot of what one stream's publisher side did (for status lines and metrics)."""

    key: str
    holding: bool
    published: int
    buffered: int
    dropped: int
    gaps: int
    lag_ms: float


class StreamSlot:
    """One stream: its lease, buffer, entries in flight and feed subscription."""

    def __init__(self, target: FeedTarget, key: str, token: str, limit: int, ring: int = 0) -> None:
        self.target = target
        self.key = key
        self.lease = lease_key(key)
        self.seq = seq_key(key)
        self.token = token
        self.limit = limit
        self.monotonic = target.feed in TRADE_FEEDS
        self.holding = False
        self.starting = False
        self.buffer: deque[Record] = deque()
        #: entries taken out of ``buffer`` by a write that has not answered yet
        self.in_flight = 0
        #: bumped whenever the slot's state is thrown away (lease lost, restart): a write
        #: that was in flight then settles nothing
        self.epoch = 0
        self.subscription: abc.DisposableBase | None = None
        self.suspended = False  # trade buffer overflowed: resume by backfill
        self.dropped_pending = 0
        self.published = 0
        self.dropped = 0
        self.gaps = 0
        self.lag_ms = 0.0
        self.last_buffered: int | None = None
        #: the last trade id Redis acknowledged (None: not known yet)
        self.written_last: int | None = None
        #: the last acknowledged trade entries, to write again if Redis loses them
        self.ring: deque[Record] = deque(maxlen=max(ring, 1))

    @property
    def drained(self) -> bool:
        """Nothing buffered and nothing in flight."""
        return not self.buffer and not self.in_flight

    @property
    def full(self) -> bool:
        return len(self.buffer) + self.in_flight >= self.limit

    def drop_oldest(self) -> bool:
        """Drop the oldest buffered entry (counted for the next gap marker); False when
        everything held is in flight (then the caller drops the new entry instead)."""
        self.dropped += 1
        self.dropped_pending += 1
        if not self.buffer:
            return False
        self.buffer.popleft()
        return True

    def offer(self, model: Any) -> bool:
        """Encode and buffer ``model``; False when it was not buffered: a full trade
        stream suspends (``suspended`` set), a full non-trade stream whose entries are
        all in flight drops it (counted). Encoding errors propagate (TypeError,
        ValueError)."""
        if self.full:
            if self.monotonic:
                self.suspended = True
                return False
            if not self.drop_oldest():
                return False
        self.buffer.append(encode_record(model))
        if self.monotonic:
            self.last_buffered = model.trade_id
        return True

    def take(self, count: int) -> list[Record]:
        """Move up to ``count`` entries from the front of the buffer into flight."""
        buffer = self.buffer
        taken = [buffer.popleft() for _ in range(min(count, len(buffer)))]
        self.in_flight += len(taken)
        return taken

    def written(self, records: Sequence[Record], marker: int, now_ms: float) -> None:
        """``records`` (taken earlier) and the gap marker for ``marker`` drops are in Redis."""
        self.in_flight -= len(records)
        if marker:
            self.gaps += 1
            self.dropped_pending -= marker
        if self.monotonic:
            self.ring.extend(records)
            for record in reversed(records):
                if record[1]:  # the newest trade id (gap markers have none)
                    self.written_last = int(record[1])
                    break
        self.published += len(records)
        last_ts = records[-1][2] if records else now_ms
        self.lag_ms = max(now_ms - last_ts, 0.0)

    def put_back(self, records: Sequence[Record], dropped_meanwhile: bool) -> None:
        """``records`` (taken earlier) were not written: in front of the buffer again.

        If the buffer dropped entries while they were in flight (a non-trade stream at its
        limit), the dropped ones sit between ``records`` and the rest of the buffer; so
        ``records``, now the oldest, are dropped too, and the next gap marker, written in
        front of the rest, counts exactly what is missing there.
        """
        self.in_flight -= len(records)
        if dropped_meanwhile:
            self.dropped += len(records)
            self.dropped_pending += len(records)
            return
        self.buffer.extendleft(reversed(records))

    def reset(self) -> None:
        """Forget buffered and in-flight entries (a write still in flight settles nothing)."""
        self.epoch += 1
        self.in_flight = 0
        self.buffer.clear()
        self.last_buffered = None

    def detach(self) -> None:
        if self.subscription is not None:
            self.subscription.dispose()
            self.subscription = None

    def health(self) -> dict[str, Any]:
        """This stream in the publisher's heartbeat."""
        return {
            "holding": self.holding,
            "published": self.published,
            "buffered": len(self.buffer) + self.in_flight,
            "dropped": self.dropped,
            "gaps": self.gaps,
            "lag_ms": round(self.lag_ms, 3),
        }

    def stats(self) -> PublisherStats:
        buffered = len(self.buffer) + self.in_flight
        return PublisherStats(
            self.key, self.holding, self.published, buffered, self.dropped, self.gaps, self.lag_ms
        )


def check_settings(
    targets: Sequence[FeedTarget],
    maxlen: int,
    lease_ms: int,
    buffer_limit: int,
    rewrite_ring: int,
    heartbeat_interval: float,
) -> None:
    """ValueError for a Publisher setting out of range (its streams' limits and leases)."""
    if not targets:
        raise ValueError("a publisher needs at least one feed")
    for name, value in (("maxlen", maxlen), ("lease_ms", lease_ms)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if buffer_limit < BATCH:
        raise ValueError(f"buffer_limit must be >= {BATCH}, got {buffer_limit}")
    if rewrite_ring < 1:
        raise ValueError(f"rewrite_ring must be >= 1, got {rewrite_ring}")
    if heartbeat_interval <= 0:
        raise ValueError(f"heartbeat_interval must be > 0, got {heartbeat_interval}")
