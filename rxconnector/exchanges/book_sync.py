"""What every venue's order-book sync rule shares: outcomes, the base state machine, the
rule description a venue registers.

A *sync rule* turns a venue's diff events and snapshots into a book that is provably
right, following that venue's documented procedure. Each venue writes its rules in
``exchanges/<venue>/book_sync.py`` as subclasses of :class:`BookSync` plus one
:class:`SyncRule` per procedure; ``exchanges/book_rules.py`` names them
(:class:`~rxconnector.exchanges.book_rules.BookRule`) and ``venues.py`` picks one per
venue. The venue-neutral Rx operator (``streams/orderbook.py``) only talks to
:class:`BookSyncRule` and :class:`BookSync`.

Pure: no I/O, no time, no reactivex. A machine takes diff events and snapshots and
answers with an :data:`Outcome`: the book changed (emit it), the event was ignored or
buffered, a snapshot is unusable (fetch another), or the book had to be dropped (a
*resync*: report it). Every rule also drops the book when applying leaves it crossed or
when the top N would reach beyond what the snapshot covered: a book that cannot be
proven right is not shown.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import attrs

from rxconnector.exchanges._parsing import model_builder
from rxconnector.exchanges.book import new_local_book
from rxconnector.exchanges.depth_events import DiffEvent
from rxconnector.log import get_logger
from rxconnector.models import OrderBook

__all__ = [
    "APPLIED",
    "BUFFERED",
    "IGNORED",
    "MAX_BUFFER_AGE_MS",
    "MAX_BUFFER_LEVELS",
    "MAX_EVENT_ADVANCE",
    "SNAPSHOT_HEADROOM",
    "BookSync",
    "BookSyncRule",
    "Outcome",
    "Refetch",
    "Resync",
    "Step",
    "SyncRule",
    "same_ids",
]

_log = get_logger(component="orderbook")
#: ``OrderBook(...)`` without attrs' per-field ``object.__setattr__``: the view is built
#: after every applied event (≈0.35 µs of ≈1.1 µs per view, measured).
_OrderBook = model_builder(OrderBook)


# =====================================================================================
# Outcomes
# =====================================================================================


class Step(enum.Enum):
    """Outcomes that need no explanation (module-level singletons: no allocation)."""

    APPLIED = "applied"  # the book changed and is consistent: emit it
    IGNORED = "ignored"  # stale, duplicate or not usable yet: nothing changed
    BUFFERED = "buffered"  # kept until a snapshot arrives

    def __repr__(self) -> str:
        return f"Step.{self.name}"


APPLIED = Step.APPLIED
IGNORED = Step.IGNORED
BUFFERED = Step.BUFFERED


@attrs.frozen
class Resync:
    """The book was dropped (gap, corruption, restart): report ``reason``, then resync."""

    reason: str


@attrs.frozen
class Refetch:
    """The snapshot cannot be used (too old, not aligned): fetch another one later."""

    reason: str


Outcome = Step | Resync | Refetch


# =====================================================================================
# Limits every rule shares
# =====================================================================================

#: Pre-snapshot diff buffer bounds besides ``max_buffer`` events (see
#: ``BookSync._trim_buffer``): events older than this before the newest are dropped.
MAX_BUFFER_AGE_MS = 30_000.0
#: ... and at most this many buffered price levels (≈330 B each: ≈3.3 MB per book).
MAX_BUFFER_LEVELS = 10_000
#: Snapshot levels asked for per level shown (see :meth:`SyncRule.snapshot_limit`).
SNAPSHOT_HEADROOM = 5
#: Most a diff event may move a live book's update id at once. BTCUSDT's ids on Binance
#: grew by ~7e10 in seven years (~300 per second on average, a few 10^4 at peaks): 10^9
#: in one 100 ms event is no market; such an event is hostile or corrupt and is not
#: applied (issue #16). Smaller lies are caught by the next real event (``_behind``).
MAX_EVENT_ADVANCE = 10**9


# =====================================================================================
# The base state machine
# =====================================================================================


class BookSync:
    """What every venue rule shares: the book, the update id, the pre-snapshot buffer.

    Subclasses implement :meth:`on_update` and, for REST rules, :meth:`on_snapshot`.
    Not thread-safe; one instance per maintained book.
    """

    uses_rest: ClassVar[bool] = True

    __slots__ = (
        "_buffer",
        "_last",
        "_snapshot",
        "book",
        "depth",
        "live",
        "max_buffer",
        "snapshot_limit",
        "symbol",
        "update_id",
    )

    def __init__(
        self, depth: int, *, snapshot_limit: int | None = None, max_buffer: int = 10_000
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        self.snapshot_limit = snapshot_limit
        self.max_buffer = max_buffer
        self.book = new_local_book()
        #: True while the book is consistent and may be shown.
        self.live = False
        #: The update id the book is at (the last applied ``u``, or the snapshot's).
        self.update_id = 0
        #: The symbol of the first event or snapshot seen (kept across resyncs).
        self.symbol = ""
        self._buffer: list[DiffEvent] = []
        self._last: DiffEvent | None = None  # last applied event: time and symbol
        self._snapshot: OrderBook | None = None  # snapshot the book was built from

    # ---------------------------------------------------------------- interface
    @property
    def wants_snapshot(self) -> bool:
        """True when a REST snapshot is needed now (events are buffered, book not live)."""
        return self.uses_rest and not self.live and bool(self._buffer)

    @property
    def buffered(self) -> int:
        """How many events wait for a snapshot."""
        return len(self._buffer)

    def on_update(self, update: Any) -> Outcome:
        """Feed one diff event (each rule names the events it reads: a
        :class:`~rxconnector.exchanges.depth_events.DiffEvent` for Binance, whose wire
        path hands over packed levels, a :class:`~rxconnector.models.DepthUpdate`
        for Bybit)."""
        raise NotImplementedError

    def on_snapshot(self, snapshot: OrderBook) -> Outcome:
        """Feed a REST snapshot (rules without REST ignore it)."""
        return IGNORED

    def restart(self, reason: str) -> Outcome:
        """The stream was subscribed again (the operator saw a restart): data may be missing."""
        had_state = self.live or bool(self._buffer)
        self._drop()
        self._buffer.clear()
        return Resync(f"stream restarted ({reason})") if had_state else IGNORED

    def fail(self, reason: str) -> Outcome:
        """Give the book up for a reason found outside the rule (a malformed event)."""
        self._drop()
        self._buffer.clear()
        return Resync(reason)

    def view(self) -> OrderBook:
        """The top ``depth`` levels as an immutable :class:`OrderBook` (call while live)."""
        last = self._last
        book = self.book
        depth = self.depth
        if last is not None:
            return _OrderBook(
                last.symbol,
                book.top_bids(depth),
                book.top_asks(depth),
                self.update_id,
                last.event_time,
                last.received_at,
            )
        snap = self._snapshot
        assert snap is not None, "view() of a book that was never synced"
        return _OrderBook(
            snap.symbol,
            book.top_bids(depth),
            book.top_asks(depth),
            self.update_id,
            snap.event_time,
            snap.received_at,
        )

    # ---------------------------------------------------------------- helpers
    def _drop(self) -> None:
        self.live = False
        self.book.clear()
        self._last = None
        self._snapshot = None

    def _restart_with(self, update: DiffEvent, reason: str) -> Resync:
        """Drop the book and start buffering again from ``update`` (which revealed a gap)."""
        self._drop()
        self._buffer.clear()
        if self.uses_rest:
            self._buffer.append(update)
        return Resync(reason)

    def _behind(self, update: DiffEvent) -> Outcome:
        """A live event behind the book's update id although the book was already in
        step with the stream (an event was applied since the snapshot).

        On one ordered socket that cannot happen - except for a repeated frame, which
        is ignored. Otherwise an earlier event moved the book's id far ahead (a hostile
        or corrupt ``u``) and was applied: from then on every real event would be
        ignored as stale, the book frozen and wrong, with no error. Resync (reported),
        buffering from this real event.
        """
        last = self._last
        if last is not None and same_ids(update, last):
            return IGNORED
        return self._restart_with(
            update,
            f"event [{update.first_update_id};{update.final_update_id}] is behind the "
            f"book's update id {self.update_id}, where an earlier event far ahead of the "
            "stream had moved it",
        )

    def _implausible(self, update: DiffEvent) -> Outcome:
        """An event that would move the book's id more than :data:`MAX_EVENT_ADVANCE`
        at once: not applied (its levels are not shown even once), the book resyncs
        from the next real event."""
        return self.fail(
            f"event [{update.first_update_id};{update.final_update_id}] would move the "
            f"update id from {self.update_id} by more than {MAX_EVENT_ADVANCE:,}: not a "
            "real event (hostile or corrupt), not applied"
        )

    def _tail_ahead(self, update: DiffEvent) -> Resync:
        """While buffering: ``update`` goes back behind the buffer's last event. On one
        ordered socket only an event far ahead (hostile or corrupt) can precede it;
        trusting that one made every real event "old" and every snapshot "too old" - a
        refetch loop for good. Restart the buffer at this event instead (reported)."""
        previous = self._buffer[-1]
        self._buffer.clear()
        self._buffer_event(update)
        return Resync(
            f"buffered event [{previous.first_update_id};{previous.final_update_id}] is "
            f"ahead of the stream (next event [{update.first_update_id};"
            f"{update.final_update_id}]): dropped, buffering again from the stream"
        )

    def _load(self, snapshot: OrderBook, update_id: int, limit: int | None) -> None:
        self.book.load_snapshot(snapshot.bids, snapshot.asks, limit=limit)
        self.update_id = update_id
        self.live = True
        self._last = None
        self._snapshot = snapshot
        self.symbol = self.symbol or snapshot.symbol

    def _check(self) -> Outcome:
        """After applying: a crossed book or an uncovered top N is corruption."""
        book = self.book
        if book.is_consistent(self.depth):
            return APPLIED
        if book.is_crossed:
            bid = book.best_bid
            ask = book.best_ask
            self._drop()
            self._buffer.clear()
            return Resync(
                f"crossed book at update {self.update_id}: best bid "
                f"{bid[0] if bid else None} >= best ask {ask[0] if ask else None}"
            )
        if not book.covers(self.depth):
            self._drop()
            self._buffer.clear()
            return Resync(
                f"snapshot coverage exhausted at update {self.update_id}: fewer than "
                f"{self.depth} known levels left inside the snapshot's price range"
            )
        return APPLIED

    def _buffer_event(self, update: DiffEvent) -> None:
        if len(self._buffer) >= self.max_buffer:
            _log.warning(
                "order book buffer full; restarting sync",
                symbol=update.symbol,
                buffered=len(self._buffer),
            )
            self._buffer.clear()
        self._buffer.append(update)
        self.symbol = self.symbol or update.symbol
        self._trim_buffer(update)

    def _trim_buffer(self, newest: DiffEvent) -> None:
        """Bound the pre-snapshot buffer by age and memory too, not only by count.

        Events older than :data:`MAX_BUFFER_AGE_MS` before the newest one, and the
        oldest events past :data:`MAX_BUFFER_LEVELS` buffered levels (≈330 B each, so
        ≈3.3 MB per book), are dropped from the front. The buffer stays gap-free (a
        prefix goes), so the sync stays correct: a snapshot older than the new first
        event is simply refetched. A book waiting that long for a snapshot has no
        use for minutes-old events; what they cost is memory.
        """
        buffer = self._buffer
        if len(buffer) < 2:
            return
        horizon = newest.received_at - MAX_BUFFER_AGE_MS
        drop = 0
        if newest.received_at and buffer[0].received_at < horizon:
            while drop < len(buffer) - 1 and buffer[drop].received_at < horizon:
                drop += 1
        if drop == 0 and len(buffer) % 64:
            return  # the memory bound is checked every 64 events (the sum is O(n))
        levels = sum(len(e.bids) + len(e.asks) for e in buffer[drop:])
        while levels > MAX_BUFFER_LEVELS and drop < len(buffer) - 1:
            levels -= len(buffer[drop].bids) + len(buffer[drop].asks)
            drop += 1
        if drop:
            del buffer[:drop]


def same_ids(a: DiffEvent, b: DiffEvent) -> bool:
    """The same event again (a repeated frame), by its update ids."""
    return a.first_update_id == b.first_update_id and a.final_update_id == b.final_update_id


# =====================================================================================
# The rule a venue registers
# =====================================================================================


class BookSyncRule(Protocol):
    """What the venue-neutral book operator needs from a venue's rule."""

    @property
    def uses_rest(self) -> bool:
        """Whether the rule needs REST snapshots (``fetch_snapshot``)."""
        ...

    def snapshot_limit(self, depth: int) -> int | None:
        """The REST snapshot ``limit`` for a book shown ``depth`` levels deep."""
        ...

    def new_sync(
        self,
        depth: int,
        *,
        snapshot_limit: int | None = None,
        window: int | None = None,
        max_buffer: int = 10_000,
    ) -> BookSync:
        """A fresh state machine for one book."""
        ...


#: Builds a rule's machine: ``(depth, snapshot_limit, window, max_buffer)``.
SyncBuilder = Callable[[int, int | None, int | None, int], BookSync]


@attrs.frozen
class SyncRule:
    """One documented procedure: the machine that follows it and the snapshot sizes.

    ``snapshot_tiers`` are the REST snapshot ``limit`` values worth asking for, smallest
    first; empty when the venue sends its snapshots on the WebSocket (no REST).
    """

    name: str
    build: SyncBuilder
    snapshot_tiers: tuple[int, ...] = ()

    @property
    def uses_rest(self) -> bool:
        """Whether the rule needs REST snapshots."""
        return bool(self.snapshot_tiers)

    def snapshot_limit(self, depth: int) -> int | None:
        """The smallest tier holding :data:`SNAPSHOT_HEADROOM` ``* depth`` levels (at
        least 100), else the largest; ``None`` without REST.

        What a larger limit buys is headroom: the levels between ``depth`` and the
        snapshot's deepest level, which the price can eat through before the shown top
        N reaches unknown territory and the book must be refetched. The venue modules
        explain their tiers' prices.
        """
        tiers = self.snapshot_tiers
        if not tiers:
            return None
        wanted = max(100, depth * SNAPSHOT_HEADROOM)
        for tier in tiers:
            if tier >= wanted:
                return tier
        return tiers[-1]

    def new_sync(
        self,
        depth: int,
        *,
        snapshot_limit: int | None = None,
        window: int | None = None,
        max_buffer: int = 10_000,
    ) -> BookSync:
        """A fresh machine (``snapshot_limit`` None: :meth:`snapshot_limit` of ``depth``)."""
        if snapshot_limit is None:
            snapshot_limit = self.snapshot_limit(depth)
        if snapshot_limit is not None and depth > snapshot_limit:
            raise ValueError(
                f"depth {depth} is deeper than the snapshot limit {snapshot_limit}: the book "
                "could never be shown"
            )
        return self.build(depth, snapshot_limit, window, max_buffer)
