"""Locally maintained order books that are never wrong: venue sync rules + the Rx operator.

Two layers:

* **Sync state machines** (:class:`BinanceSpotSync`, :class:`BinanceFuturesSync`,
  :class:`BybitDepthSync`, :class:`BybitFullSync`): pure, no I/O, no time. They take diff
  events and snapshots and answer with an outcome: the book changed (emit it), the event
  was ignored or buffered, a snapshot is unusable (fetch another), or the book had to be
  dropped (a *resync*: report it). Each follows its venue's documented procedure
  (PROTOCOL.md §A1.5 Spot, §B USD-M ``pu`` rule, §C1 Bybit), and each also drops the
  book when applying leaves it crossed or when the top N would reach beyond what the
  snapshot covered: a book that cannot be proven right is not shown.
* **The operator** :func:`maintain_order_book`: feeds a diff stream through one machine,
  fetches REST snapshots when the machine asks (through an optional shared
  :class:`SnapshotGate`), retries failed snapshots with backoff on the scheduler, reports
  every resync as :class:`~rxconnector.errors.FeedGapError`, and emits an immutable
  :class:`~rxconnector.models.OrderBook` only while the book is consistent.

The operator never errors because of a gap, a bad snapshot or a REST failure; it errors or
completes only when the diff stream does.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SerialDisposable,
    SingleAssignmentDisposable,
)

from rxconnector._scheduling import resolve_scheduler
from rxconnector.errors import FeedGapError
from rxconnector.log import get_logger
from rxconnector.models import DepthUpdate, OrderBook
from rxconnector.streams.book import LocalBook
from rxconnector.streams.messages import StreamRestart

__all__ = [
    "APPLIED",
    "BINANCE_SPOT_SNAPSHOT_LIMITS",
    "BINANCE_USDM_SNAPSHOT_LIMITS",
    "BUFFERED",
    "BYBIT_FULL_SNAPSHOT_LIMIT",
    "IGNORED",
    "BinanceFuturesSync",
    "BinanceSpotSync",
    "BookRule",
    "BookSync",
    "BybitDepthSync",
    "BybitFullSync",
    "Outcome",
    "Refetch",
    "Resync",
    "RESUBSCRIBE_RETRY_MAX",
    "SEQUENCED_AFTER",
    "MAX_EVENT_ADVANCE",
    "BEHIND_RUN_LIMIT",
    "SnapshotGate",
    "Step",
    "maintain_order_book",
    "make_sync",
    "resubscribe_retry_delay",
    "snapshot_limit_for",
    "snapshot_retry_delay",
]

_T = TypeVar("_T")
_log = get_logger(component="orderbook")


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
# Rules and snapshot sizes
# =====================================================================================


class BookRule(enum.Enum):
    """Which documented procedure keeps the book in sync."""

    BINANCE_SPOT = "binance-spot"  # PROTOCOL.md §A1.5: U/u, snapshot lastUpdateId
    BINANCE_USDM = "binance-usdm"  # PROTOCOL.md §B: pu == previous u
    BYBIT_DEPTH = "bybit-depth"  # §C1 orderbook.{depth}: WS snapshot + deltas, no REST
    BYBIT_FULL = "bybit-full"  # §C1 orderbook.full: strict u+1 with a REST snapshot

    def __repr__(self) -> str:
        return f"BookRule.{self.name}"

    @property
    def uses_rest(self) -> bool:
        """Whether the rule needs REST snapshots (``fetch_snapshot``)."""
        return self is not BookRule.BYBIT_DEPTH


#: ``GET /api/v3/depth`` limit tiers and their weights 5/25/50/250 (PROTOCOL.md §A2.4).
BINANCE_SPOT_SNAPSHOT_LIMITS = (100, 500, 1000, 5000)
#: ``GET /fapi/v1/depth`` limits worth using, weights 5/10/20 (PROTOCOL.md §B).
BINANCE_USDM_SNAPSHOT_LIMITS = (100, 500, 1000)
#: ``GET /v5/market/full_orderbook`` returns at most 10 000 levels per side (§C1, §C3).
BYBIT_FULL_SNAPSHOT_LIMIT = 10_000
#: Pre-snapshot diff buffer bounds besides ``max_buffer`` events (see
#: ``BookSync._trim_buffer``): events older than this before the newest are dropped.
MAX_BUFFER_AGE_MS = 30_000.0
#: ... and at most this many buffered price levels (≈330 B each: ≈3.3 MB per book).
MAX_BUFFER_LEVELS = 10_000

#: Snapshot levels asked for per level shown (see :func:`snapshot_limit_for`).
SNAPSHOT_HEADROOM = 5
#: Consecutive ``u`` + 1 deltas after which a Bybit ``orderbook.{depth}`` topic counts as
#: sequenced (:class:`BybitDepthSync`). At the 20 ms push rate of ``orderbook.50`` that
#: is under half a second of a busy book; a stream that numbers ``u`` any other way
#: would have to step by exactly 1 twenty times running to be mistaken for sequenced.
SEQUENCED_AFTER = 20
#: Most a Binance diff event may move a live book's update id at once. BTCUSDT's ids
#: grew by ~7e10 in seven years (~300 per second on average, a few 10^4 at peaks): 10^9
#: in one 100 ms event is no market; such an event is hostile or corrupt and is not
#: applied (issue #16). Smaller lies are caught by the next real event (``_behind``).
MAX_EVENT_ADVANCE = 10**9
#: Consecutive Bybit ``orderbook.{depth}`` deltas behind the book (``u`` or ``seq`` not
#: above the book's) after which the book is taken to be wedged by an earlier message
#: far ahead and resynced. One or two stale messages are ignored: Bybit documents no
#: numbering rule for these streams; three in a row on one ordered socket is no accident.
BEHIND_RUN_LIMIT = 3
#: How many recently applied ``u`` a Bybit depth book remembers to recognise late copies.
RECENT_UPDATE_IDS = 64


def snapshot_limit_for(rule: BookRule, depth: int) -> int | None:
    """The REST snapshot ``limit`` to request for a book shown ``depth`` levels deep.

    Binance charges by the limit tier (Spot 1-100 → 5, 101-500 → 25, 501-1000 → 50,
    1001-5000 → 250), which is the same 0.05 weight per level in every tier, so a small
    tier is not cheaper per level; what a larger limit buys is *headroom*: the levels
    between ``depth`` and the snapshot's deepest level, which the price can eat through
    before the shown top N reaches unknown territory and the book must be refetched.
    What matters most is the resync after a reconnect, when every book of a connection
    asks at once: 50 books cost 250 weight at tier 100 and 1,250 at tier 500. We ask for
    the smallest tier holding ``5 * depth`` levels (at least 100): depth 1-20 → 100
    (weight 5), 21-100 → 500 (25), 101-200 → 1000 (50), deeper → 5000 (250); USD-M caps
    at 1000 (weight 20). Measured (``benchmarks/bench_coverage.py``, the simulator's
    random walk, depth 20): a 100-level snapshot lasts a median of 114 s before its
    coverage is exhausted (about 150 weight per hour per symbol in refetches; a refetch
    costs the book one round trip). On recorded real Binance depth data
    (``benchmarks/bench_coverage_real.py``: 43 symbols, ~30 s each) the shown 20th level
    never went deeper than the 37th snapshot level, so tier 100 was never exhausted
    there. Bybit ``orderbook.{depth}`` needs no
    REST (``None``); ``orderbook.full`` snapshots are the whole book up to 10 000 levels
    per side.
    """
    if rule is BookRule.BYBIT_DEPTH:
        return None
    if rule is BookRule.BYBIT_FULL:
        return BYBIT_FULL_SNAPSHOT_LIMIT
    tiers = (
        BINANCE_SPOT_SNAPSHOT_LIMITS
        if rule is BookRule.BINANCE_SPOT
        else (BINANCE_USDM_SNAPSHOT_LIMITS)
    )
    wanted = max(100, depth * SNAPSHOT_HEADROOM)
    for tier in tiers:
        if tier >= wanted:
            return tier
    return tiers[-1]


def snapshot_retry_delay(attempt: int) -> float:
    """Seconds before snapshot attempt ``attempt + 1``: 0.5, 1, 2, 4 ... capped at 30."""
    return float(min(0.5 * 2.0 ** (attempt - 1), 30.0))


#: Longest wait (s) between two resubscribe requests of a book that gets no snapshot.
RESUBSCRIBE_RETRY_MAX = 120.0


def resubscribe_retry_delay(attempt: int) -> float:
    """Seconds a WebSocket-snapshot book waits for its snapshot before asking again,
    after ``attempt`` requests: 30, 60, 120, 120 ...

    A resubscribe normally brings the snapshot within a round trip; this is the last
    resort for one that never came (an unanswered request, a lost snapshot), long
    enough not to pile requests onto a slow connection (the hub's answer timeout is
    10 s) and harmless when repeated (the hub coalesces, and does nothing while the
    socket is reconnecting).
    """
    return float(min(30.0 * 2.0 ** (attempt - 1), RESUBSCRIBE_RETRY_MAX))


# =====================================================================================
# Sync state machines
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
        self.book = LocalBook()
        #: True while the book is consistent and may be shown.
        self.live = False
        #: The update id the book is at (the last applied ``u``, or the snapshot's).
        self.update_id = 0
        #: The symbol of the first event or snapshot seen (kept across resyncs).
        self.symbol = ""
        self._buffer: list[DepthUpdate] = []
        self._last: DepthUpdate | None = None  # last applied event: time and symbol
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

    def on_update(self, update: DepthUpdate) -> Outcome:
        """Feed one diff event."""
        raise NotImplementedError

    def on_snapshot(self, snapshot: OrderBook) -> Outcome:
        """Feed a REST snapshot (rules without REST ignore it)."""
        return IGNORED

    def restart(self, reason: str) -> Outcome:
        """The stream was resubscribed (:class:`StreamRestart`): data may be missing."""
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
            return OrderBook(
                last.symbol,
                book.top_bids(depth),
                book.top_asks(depth),
                self.update_id,
                last.event_time,
                last.received_at,
            )
        snap = self._snapshot
        assert snap is not None, "view() of a book that was never synced"
        return OrderBook(
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

    def _restart_with(self, update: DepthUpdate, reason: str) -> Resync:
        """Drop the book and start buffering again from ``update`` (which revealed a gap)."""
        self._drop()
        self._buffer.clear()
        if self.uses_rest:
            self._buffer.append(update)
        return Resync(reason)

    def _behind(self, update: DepthUpdate) -> Outcome:
        """A live event behind the book's update id although the book was already in
        step with the stream (an event was applied since the snapshot).

        On one ordered socket that cannot happen - except for a repeated frame, which
        is ignored. Otherwise an earlier event moved the book's id far ahead (a hostile
        or corrupt ``u``) and was applied: from then on every real event would be
        ignored as stale, the book frozen and wrong, with no error. Resync (reported),
        buffering from this real event.
        """
        last = self._last
        if last is not None and _same_ids(update, last):
            return IGNORED
        return self._restart_with(
            update,
            f"event [{update.first_update_id};{update.final_update_id}] is behind the "
            f"book's update id {self.update_id}, where an earlier event far ahead of the "
            "stream had moved it",
        )

    def _implausible(self, update: DepthUpdate) -> Outcome:
        """An event that would move the book's id more than :data:`MAX_EVENT_ADVANCE`
        at once: not applied (its levels are not shown even once), the book resyncs
        from the next real event."""
        return self.fail(
            f"event [{update.first_update_id};{update.final_update_id}] would move the "
            f"update id from {self.update_id} by more than {MAX_EVENT_ADVANCE:,}: not a "
            "real event (hostile or corrupt), not applied"
        )

    def _tail_ahead(self, update: DepthUpdate) -> Resync:
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

    def _buffer_event(self, update: DepthUpdate) -> None:
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

    def _trim_buffer(self, newest: DepthUpdate) -> None:
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


class BinanceSpotSync(BookSync):
    """Binance Spot diff-depth sync, PROTOCOL.md §A1.5 (procedure corrected 2025-11-12).

    Buffer events (noting the first ``U``) until a snapshot arrives; a snapshot with
    ``lastUpdateId`` < first ``U`` is too old (refetch); buffered events with
    ``u <= lastUpdateId`` are dropped and the first one applied must have
    ``U <= lastUpdateId + 1 <= u``. Live: ``u`` < local id → ignore (stale/duplicate),
    ``U`` > local id + 1 → events were missed → resync; apply; local id := ``u``.
    While buffering, an event that does not follow the previous one restarts the buffer
    at itself, so the buffer is always gap-free.

    Hostile or corrupt ids (issue #16): "stale" is only normal while the stream catches
    up with a newer snapshot. Once an event was applied, one behind the book means an
    earlier event far ahead moved the book's id (``U = local + 1`` with a huge ``u``):
    resync instead of ignoring every real event from then on. While buffering, an
    event behind the buffer's last one restarts the buffer at itself (the far one was
    the liar), instead of leaving every snapshot "too old" for good.
    """

    __slots__ = ()

    def on_update(self, update: DepthUpdate) -> Outcome:
        if self.live:
            final = update.final_update_id
            local = self.update_id
            if final < local:
                # Catching up with a newer snapshot is normal; once in step, it is not.
                return IGNORED if self._last is None else self._behind(update)
            if update.first_update_id > local + 1:
                return self._restart_with(
                    update,
                    f"gap: event U={update.first_update_id} > local update id {local} + 1",
                )
            if final - local > MAX_EVENT_ADVANCE:
                return self._implausible(update)
            self.book.apply(update.bids, update.asks)
            self.update_id = final
            self._last = update
            return self._check()
        buffer = self._buffer
        if buffer:
            previous = buffer[-1]
            if update.final_update_id < previous.final_update_id:
                return self._tail_ahead(update)
            if update.first_update_id > previous.final_update_id + 1:
                buffer.clear()  # a gap before the snapshot: start buffering again here
        self._buffer_event(update)
        return BUFFERED

    def on_snapshot(self, snapshot: OrderBook) -> Outcome:
        buffer = self._buffer
        if self.live or not buffer:
            return IGNORED
        last_update_id = snapshot.update_id
        first_u = buffer[0].first_update_id
        if last_update_id < first_u:
            return Refetch(f"snapshot lastUpdateId {last_update_id} < first buffered U {first_u}")
        remaining = [e for e in buffer if e.final_update_id > last_update_id]
        if remaining and not (
            remaining[0].first_update_id <= last_update_id + 1 <= remaining[0].final_update_id
        ):
            buffer.clear()
            return Refetch(
                f"first event after the snapshot [{remaining[0].first_update_id};"
                f"{remaining[0].final_update_id}] does not contain lastUpdateId+1 "
                f"{last_update_id + 1}"
            )
        buffer.clear()
        self._load(snapshot, last_update_id, self.snapshot_limit)
        outcome: Outcome = self._check()
        for event in remaining:
            if outcome is not APPLIED:
                return outcome
            outcome = self.on_update(event)
            if outcome is IGNORED:
                outcome = APPLIED
        return outcome


class BinanceFuturesSync(BookSync):
    """Binance USD-M diff-depth sync, PROTOCOL.md §B (the ``pu`` rule).

    Buffer events until a snapshot arrives; drop buffered events with
    ``u < lastUpdateId``; the first event processed must have
    ``U <= lastUpdateId <= u`` (otherwise the snapshot does not fit the stream: fetch
    another); from then on each event's ``pu`` must equal the previous event's ``u``,
    otherwise resync. An event with ``u`` at or below the last applied ``u`` is a
    duplicate or stale replay and is ignored (it cannot carry anything new) - until an
    event was applied since the snapshot: then it means an earlier event far ahead
    moved the book's id, and the book resyncs (same reasoning as
    :class:`BinanceSpotSync`, issue #16).
    """

    __slots__ = ("_first_pending",)

    def __init__(
        self, depth: int, *, snapshot_limit: int | None = None, max_buffer: int = 10_000
    ) -> None:
        super().__init__(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)
        self._first_pending = False

    def on_update(self, update: DepthUpdate) -> Outcome:
        if self.live:
            final = update.final_update_id
            local = self.update_id
            if self._first_pending:
                if final < local:
                    return IGNORED
                if update.first_update_id > local:
                    return self._restart_with(
                        update,
                        f"first event after the snapshot starts at U={update.first_update_id}"
                        f" > lastUpdateId {local}",
                    )
                self._first_pending = False
            else:
                if final <= local:
                    return IGNORED if self._last is None else self._behind(update)
                if update.prev_final_update_id != local:
                    return self._restart_with(
                        update, f"gap: event pu={update.prev_final_update_id} != previous u {local}"
                    )
            if final - local > MAX_EVENT_ADVANCE:
                return self._implausible(update)
            self.book.apply(update.bids, update.asks)
            self.update_id = final
            self._last = update
            return self._check()
        buffer = self._buffer
        if buffer:
            previous = buffer[-1]
            if update.final_update_id <= previous.final_update_id:
                if _same_ids(update, previous):
                    return IGNORED
                return self._tail_ahead(update)
            if update.prev_final_update_id != previous.final_update_id:
                buffer.clear()  # the pu chain broke before the snapshot: restart here
        self._buffer_event(update)
        return BUFFERED

    def on_snapshot(self, snapshot: OrderBook) -> Outcome:
        buffer = self._buffer
        if self.live or not buffer:
            return IGNORED
        last_update_id = snapshot.update_id
        remaining = [e for e in buffer if e.final_update_id >= last_update_id]
        if remaining and remaining[0].first_update_id > last_update_id:
            return Refetch(
                f"snapshot lastUpdateId {last_update_id} is older than the first buffered "
                f"event [{remaining[0].first_update_id};{remaining[0].final_update_id}]"
            )
        buffer.clear()
        self._load(snapshot, last_update_id, self.snapshot_limit)
        self._first_pending = True
        outcome: Outcome = self._check()
        for event in remaining:
            if outcome is not APPLIED:
                return outcome
            outcome = self.on_update(event)
            if outcome is IGNORED:
                outcome = APPLIED
        return outcome

    def _drop(self) -> None:
        super()._drop()
        self._first_pending = False


class BybitDepthSync(BookSync):
    """Bybit ``orderbook.{depth}`` sync, PROTOCOL.md §C1: no REST, the stream resets itself.

    A snapshot message (or any message with ``u == 1``, a service restart; the parser
    marks both ``is_snapshot``) replaces the book. Deltas before the first snapshot are
    ignored (wait for it). A delta whose ``seq`` went backwards, or whose ``u`` is not
    above the last one, is stale and ignored. ``window`` (the stream's depth, e.g. 50)
    trims levels that left the window so they cannot come back as stale data.

    **Lost deltas: an adaptive continuity check.** Bybit documents strict ``u`` + 1
    continuity only for ``orderbook.full``; for these streams it documents none. Yet a
    lost delta leaves wrong levels that nothing else reveals (they stay until they leave
    the window; a crossed book is only the luckiest case), and the simulator - and Bybit,
    as far as observed - numbers each message of a topic ``u`` + 1. Trusting that blindly
    would turn every jump into a resync, forever, on a venue (or a future Bybit) that
    numbers differently; ignoring it shows wrong books. So the rule is *learned* per
    topic: once ``sequenced_after`` consecutive deltas have each had ``u == previous + 1``
    (the first one counted against the snapshot's ``u``) the topic is known to be
    sequenced, and from then on a jump (``u > previous + 1``) is a gap: the book is
    dropped (:class:`Resync`, reported as ``FeedGapError``) until the next snapshot,
    which the operator asks for with ``request_resubscribe``. A jump while still learning
    only restarts the count, so a venue that does not sequence ``u`` never resyncs on
    continuity alone. The price is a blind spot: a delta lost before the rule is learned
    (the first ``sequenced_after`` deltas of a subscription) goes unnoticed, as before.

    Late copies of deltas already applied are ignored; but :data:`BEHIND_RUN_LIMIT`
    never-seen deltas in a row behind the book mean an earlier message far ahead
    (``u`` or ``seq``) was taken and froze it: the book resyncs (issue #16).

    What is learned is kept for the life of the machine (across snapshots and resyncs:
    it describes the topic, not one session), with one exception that keeps a
    misjudgement from looping: a jump at the first delta after a snapshot still resyncs,
    but also forgets the rule (a venue might number snapshots differently from deltas;
    then every resubscribe would meet the same jump again). Learning starts over.
    """

    uses_rest: ClassVar[bool] = False
    __slots__ = (
        "_behind_run",
        "_fresh",
        "_recent",
        "_run",
        "_sequence",
        "sequenced",
        "sequenced_after",
        "window",
    )

    def __init__(
        self,
        depth: int,
        *,
        window: int | None = None,
        sequenced_after: int = SEQUENCED_AFTER,
        snapshot_limit: int | None = None,
        max_buffer: int = 10_000,
    ) -> None:
        super().__init__(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)
        if window is not None and window < depth:
            raise ValueError(f"window {window} is smaller than depth {depth}")
        if sequenced_after < 1:
            raise ValueError(f"sequenced_after must be >= 1, got {sequenced_after}")
        self.window = window
        self.sequenced_after = sequenced_after
        #: True once ``u`` is known to grow by exactly 1 per message on this topic.
        self.sequenced = False
        self._sequence: int | None = None
        self._run = 0  # consecutive u + 1 steps while learning
        self._fresh = False  # the next delta is the first after a snapshot
        self._behind_run = 0  # consecutive never-seen deltas behind the book
        #: ``u`` of the messages applied lately (since the last snapshot): tells a late
        #: copy of one of them from a real delta that arrives behind the book.
        self._recent: deque[int] = deque(maxlen=RECENT_UPDATE_IDS)

    def on_update(self, update: DepthUpdate) -> Outcome:
        book = self.book
        sequence = update.sequence
        final = update.final_update_id
        older = sequence is not None and self._sequence is not None and sequence < self._sequence
        if update.is_snapshot or final == 1:  # u == 1: a restart snapshot (§C1)
            if older and self.live and final != 1:
                return IGNORED  # a replayed old snapshot would roll the book back
            book.load_snapshot(update.bids, update.asks)
            self.live = True
            self.symbol = update.symbol
            self._fresh = True
        elif not self.live:
            return IGNORED
        else:
            previous = self.update_id
            if older or final <= previous:
                # A late copy of a delta already applied changes nothing: ignored. So is
                # one or two never-seen deltas behind the book (this stream's numbering
                # is not documented). A run of them means an earlier message far ahead
                # (u or seq) was taken and every real delta is now "stale": the book froze.
                recent = self._recent
                if not recent or final in recent or final < recent[0]:
                    return IGNORED
                self._behind_run += 1
                if self._behind_run < BEHIND_RUN_LIMIT:
                    return IGNORED
                return self.fail(
                    f"{self._behind_run} deltas in a row behind the book's u={previous} "
                    f"(seq {self._sequence}; the last: u={final}, seq {sequence}): a "
                    "message far ahead had moved it there; waiting for the next snapshot"
                )
            self._behind_run = 0
            if final == previous + 1:
                if not self.sequenced:
                    self._run += 1
                    self.sequenced = self._run >= self.sequenced_after
            elif self.sequenced:
                return self._gap(final, previous)
            else:
                self._run = 0
            self._fresh = False
            book.apply(update.bids, update.asks)
        self.update_id = final
        if update.is_snapshot or final == 1:
            self._recent.clear()
        self._recent.append(final)
        if sequence is not None:
            self._sequence = sequence
        self._last = update
        if self.window is not None:
            book.trim(self.window)
        return self._check()

    def _gap(self, final: int, previous: int) -> Outcome:
        reason = (
            f"gap: u={final} after u={previous} ({final - previous - 1} message(s) lost; "
            "this topic's u grows by 1 per message); waiting for the next snapshot"
        )
        if self._fresh:  # see the class docstring: never loop on a snapshot's numbering
            self.sequenced = False
            reason += "; u + 1 after a snapshot is no longer assumed"
        return self.fail(reason)

    def _check(self) -> Outcome:
        # Bybit's window always holds the true top: no snapshot coverage to run out of.
        book = self.book
        if book.is_crossed:
            bid = book.best_bid
            ask = book.best_ask
            return self.fail(
                f"crossed book at u={self.update_id}: best bid {bid[0] if bid else None} "
                f">= best ask {ask[0] if ask else None}; waiting for the next snapshot"
            )
        return APPLIED

    def _drop(self) -> None:
        super()._drop()
        self._sequence = None
        self._run = 0
        self._fresh = False
        self._behind_run = 0
        self._recent.clear()


class BybitFullSync(BookSync):
    """Bybit ``orderbook.full`` sync, PROTOCOL.md §C1: consecutive ``u`` + REST snapshot.

    Buffer deltas (an ``u`` that is not the previous + 1 restarts the buffer there, a
    ``seq`` that went backwards is dropped); the REST snapshot's ``u`` (``update_id``)
    must be at least the first buffered ``u`` - 1, else refetch; buffered deltas with
    ``u`` <= snapshot ``u`` are dropped, the rest applied. Live: ``u`` <= local → ignore,
    ``u`` > local + 1 → gap → resync, ``u == 1`` → the venue restarted the stream →
    resync. The :class:`~rxconnector.models.OrderBook` snapshot carries no ``seq``, so
    alignment uses ``u`` alone, which the docs say matches the stream's ``u``.
    """

    __slots__ = ()

    def on_update(self, update: DepthUpdate) -> Outcome:
        final = update.final_update_id
        if self.live:
            if final == 1:
                return self._restart_with(update, "u == 1: Bybit restarted the stream")
            local = self.update_id
            if final <= local:
                return IGNORED
            if final != local + 1:
                return self._restart_with(update, f"gap: u={final} after local u {local}")
            self.book.apply(update.bids, update.asks)
            self.update_id = final
            self._last = update
            return self._check()
        buffer = self._buffer
        if buffer:
            previous = buffer[-1]
            if (
                update.sequence is not None
                and previous.sequence is not None
                and update.sequence < previous.sequence
            ):
                return IGNORED
            if final != previous.final_update_id + 1:
                buffer.clear()
        self._buffer_event(update)
        return BUFFERED

    def on_snapshot(self, snapshot: OrderBook) -> Outcome:
        buffer = self._buffer
        if self.live or not buffer:
            return IGNORED
        snapshot_u = snapshot.update_id
        first_u = buffer[0].final_update_id
        if snapshot_u + 1 < first_u:
            return Refetch(f"snapshot u {snapshot_u} is older than first buffered u {first_u}")
        remaining = [e for e in buffer if e.final_update_id > snapshot_u]
        buffer.clear()
        self._load(snapshot, snapshot_u, self.snapshot_limit)
        outcome: Outcome = self._check()
        for event in remaining:
            if outcome is not APPLIED:
                return outcome
            outcome = self.on_update(event)
        return outcome


def _same_ids(a: DepthUpdate, b: DepthUpdate) -> bool:
    """The same event again (a repeated frame), by its update ids."""
    return a.first_update_id == b.first_update_id and a.final_update_id == b.final_update_id


def make_sync(
    rule: BookRule,
    depth: int,
    *,
    snapshot_limit: int | None = None,
    window: int | None = None,
    max_buffer: int = 10_000,
) -> BookSync:
    """A fresh state machine for ``rule`` (``snapshot_limit`` None: the rule's default)."""
    if snapshot_limit is None:
        snapshot_limit = snapshot_limit_for(rule, depth)
    if snapshot_limit is not None and depth > snapshot_limit:
        raise ValueError(
            f"depth {depth} is deeper than the snapshot limit {snapshot_limit}: the book "
            "could never be shown"
        )
    if rule is BookRule.BINANCE_SPOT:
        return BinanceSpotSync(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)
    if rule is BookRule.BINANCE_USDM:
        return BinanceFuturesSync(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)
    if rule is BookRule.BYBIT_FULL:
        return BybitFullSync(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)
    return BybitDepthSync(depth, window=window, max_buffer=max_buffer)


# =====================================================================================
# Snapshot gate
# =====================================================================================


class _Ticket(Generic[_T]):
    """One gated subscription: waiting, running, or done."""

    __slots__ = ("inner", "observer", "scheduler", "source", "state")

    def __init__(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self.source = source
        self.observer = observer
        self.scheduler = scheduler
        self.state = "waiting"
        self.inner = SingleAssignmentDisposable()


class SnapshotGate:
    """Lets at most ``max_in_flight`` snapshot requests run at once, in arrival order.

    One gate is shared by every book of a connector, so a reconnect that resyncs fifty
    symbols does not fire fifty REST snapshots in the same millisecond. The REST rate
    limiter still owns the weight budget; the gate only spreads the requests out.
    ``min_interval`` (seconds, on the scheduler) additionally spaces request starts.

    A request holds its slot until its observable terminates or is disposed; a waiting
    request that is disposed leaves the queue without ever being subscribed.
    """

    def __init__(
        self,
        max_in_flight: int = 2,
        *,
        min_interval: float = 0.0,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval}")
        self.max_in_flight = max_in_flight
        self.min_interval = min_interval
        self._scheduler = scheduler
        self._queue: list[_Ticket[Any]] = []
        self._running = 0
        self._draining = False
        self._next_start: datetime | None = None
        self._pacer = SerialDisposable()
        self._pacing = False

    @property
    def in_flight(self) -> int:
        """Requests subscribed and not finished."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._queue)

    def wrap(self, source: Observable[_T]) -> Observable[_T]:
        """``source`` subscribed only when the gate has a free slot."""

        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            ticket: _Ticket[_T] = _Ticket(source, observer, scheduler_)
            self._queue.append(ticket)
            self._drain()

            def dispose() -> None:
                if ticket.state == "waiting":
                    ticket.state = "done"
                    self._queue.remove(ticket)
                elif ticket.state == "running":
                    ticket.inner.dispose()
                    self._release(ticket)

            return Disposable(dispose)

        return Observable(subscribe)

    def _release(self, ticket: _Ticket[Any]) -> None:
        if ticket.state == "running":
            ticket.state = "done"
            self._running -= 1
            self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and self._running < self.max_in_flight and not self._pacing:
                ticket = self._queue[0]
                if self.min_interval > 0:
                    scheduler = resolve_scheduler(self._scheduler, ticket.scheduler)
                    now = scheduler.now
                    if self._next_start is not None and now < self._next_start:
                        self._pace(scheduler, (self._next_start - now).total_seconds())
                        return
                    self._next_start = now + (scheduler.to_timedelta(self.min_interval))
                self._queue.pop(0)
                self._start(ticket)
        finally:
            self._draining = False

    def _pace(self, scheduler: abc.SchedulerBase, delay: float) -> None:
        self._pacing = True

        def resume(_: abc.SchedulerBase, __: Any = None) -> None:
            self._pacing = False
            self._drain()

        self._pacer.disposable = scheduler.schedule_relative(delay, resume)

    def _start(self, ticket: _Ticket[Any]) -> None:
        ticket.state = "running"
        self._running += 1
        observer = ticket.observer

        def on_error(error: Exception) -> None:
            self._release(ticket)
            observer.on_error(error)

        def on_completed() -> None:
            self._release(ticket)
            observer.on_completed()

        ticket.inner.disposable = ticket.source.subscribe(
            observer.on_next, on_error, on_completed, scheduler=ticket.scheduler
        )


# =====================================================================================
# The operator
# =====================================================================================


def maintain_order_book(
    diffs: Observable[DepthUpdate | StreamRestart],
    fetch_snapshot: Callable[[], Observable[OrderBook]] | None,
    rule: BookRule,
    depth: int,
    *,
    topic: str | None = None,
    snapshot_limit: int | None = None,
    window: int | None = None,
    gate: SnapshotGate | None = None,
    retry_delay: Callable[[int], float] = snapshot_retry_delay,
    request_resubscribe: Callable[[], None] | None = None,
    resubscribe_retry: Callable[[int], float] = resubscribe_retry_delay,
    max_buffer: int = 10_000,
    scheduler: abc.SchedulerBase | None = None,
    report: Callable[[Exception], None] | None = None,
) -> Observable[OrderBook]:
    """A locally maintained book: consistent :class:`OrderBook` views of the top ``depth``.

    .. marble::
        :alt: maintain_order_book (Binance Spot rule)

        diffs:     -a--b--c--d-----e---|      events (U;u): a=1;2 b=3;4 c=5;6 d=9;9 e=10;10
        snapshot:     (S)                     fetched when a arrives, lastUpdateId 3
        [ maintain_order_book(diffs, fetch, BINANCE_SPOT, depth=20) ]
                   ----B--C--.---(refetch)-E-|
                   B = snapshot + b, C = + c; d has U 9 > 6 + 1: gap, resync (reported),
                   d is buffered, a new snapshot is fetched and the book resumes at E

    Behaviour:

    * Emits an immutable ``OrderBook`` (top ``depth`` bids high→low and asks low→high,
      the update id, the exchange event time and local receive time of the last applied
      event) after every event that changed the book, **only while the book is
      consistent**: never while buffering for a snapshot, never during a resync, never
      crossed, never reaching past what the snapshot covered.
    * Each resync (gap, crossed book, coverage exhausted, :class:`StreamRestart`,
      malformed event) is reported as ``FeedGapError(topic, "order book resync: ...")``
      through ``report``; the book then resyncs by itself (REST rules fetch a new
      snapshot; Bybit ``orderbook.{depth}`` waits for the next WebSocket snapshot and
      calls ``request_resubscribe`` if given, to make one come - except after a
      ``StreamRestart``: the stream was just subscribed again and its snapshot follows).
    * Bybit ``orderbook.{depth}`` with ``request_resubscribe``: a book that waits for a
      WebSocket snapshot (since subscribing, or since a resync) and gets none within
      ``resubscribe_retry(n)`` seconds asks again, ``n`` counting the requests since the
      book was last consistent - so a lost snapshot or an unanswered request cannot
      leave the feed silent for good.
    * REST rules fetch the snapshot once the first event is buffered (PROTOCOL.md §A1.5
      step 3 comes after step 2). A failed or unusable snapshot is reported (failures
      only) and fetched again after ``retry_delay(attempt)`` seconds on the scheduler
      (at least an error's ``retry_after``), forever: the feed never ends because of it.
      With ``gate``, requests go through that shared :class:`SnapshotGate`.
    * The diff stream's error or completion is forwarded (after cancelling any pending
      snapshot request and timer); disposal cancels everything.

    Args:
        diffs: Parsed diff events of one symbol, with ``StreamRestart`` markers.
        fetch_snapshot: Makes a cold snapshot request (REST rules); ``None`` for
            ``BYBIT_DEPTH``. It must ask for ``snapshot_limit`` levels.
        rule: The venue procedure.
        depth: Levels per side in each emitted book.
        topic: Names the feed in reports (default: ``"<symbol> order book"``).
        snapshot_limit: Levels per side the snapshot requests hold; default
            :func:`snapshot_limit_for` ``(rule, depth)``. Used to tell a truncated
            snapshot side from a complete one.
        window: Bybit ``orderbook.{depth}`` stream depth; levels beyond it are trimmed.
        gate: Shared pacing of snapshot requests.
        retry_delay: Seconds to wait before the next snapshot after ``attempt``
            consecutive failed or unusable ones.
        request_resubscribe: Called when a Bybit depth book was dropped and only a new
            WebSocket snapshot can restore it (e.g. ``hub.resubscribe(topic)``).
        resubscribe_retry: Seconds to wait for that snapshot before asking again, after
            ``n`` requests (at least 1); default :func:`resubscribe_retry_delay`.
        max_buffer: Events kept while waiting for a snapshot before buffering restarts.
        scheduler: Times the retries; default: the subscribe-time scheduler, then the
            running loop's.
        report: Receives each resync and snapshot failure (default: logged).

    Returns:
        An Observable of consistent order books.
    """
    if rule.uses_rest and fetch_snapshot is None:
        raise ValueError(f"{rule!r} needs fetch_snapshot (a REST snapshot request)")
    # Validate eagerly: a wrong depth is a programming error, better at call time.
    make_sync(rule, depth, snapshot_limit=snapshot_limit, window=window, max_buffer=max_buffer)

    def subscribe(
        observer: abc.ObserverBase[OrderBook], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sync = make_sync(
            rule, depth, snapshot_limit=snapshot_limit, window=window, max_buffer=max_buffer
        )
        source = SingleAssignmentDisposable()
        request = SerialDisposable()
        timer = SerialDisposable()
        watchdog = SerialDisposable()
        fetching = False
        cooling = False
        stopped = False
        attempts = 0
        name = topic
        # WebSocket-snapshot book (Bybit depth): waiting for a snapshot, requests made
        renews = not rule.uses_rest and request_resubscribe is not None
        waiting = False
        renewals = 0

        def feed_name() -> str:
            if name is not None:
                return name
            return f"{sync.symbol} order book" if sync.symbol else "order book"

        def tell(error: Exception) -> None:
            if report is None:
                _log.warning("order book problem", error=str(error), kind=type(error).__name__)
                return
            try:
                report(error)
            except Exception:
                _log.exception("order book report callback raised")

        def handle(outcome: Outcome, restarted: bool = False) -> None:
            nonlocal attempts
            if outcome is APPLIED:
                if waiting:
                    settled()
                observer.on_next(sync.view())
            elif isinstance(outcome, Resync):
                tell(FeedGapError(feed_name(), f"order book resync: {outcome.reason}"))
                if renews:
                    if not restarted:
                        resubscribe()
                    wait_for_snapshot()
            elif isinstance(outcome, Refetch):
                attempts += 1
                _log.info("order book snapshot unusable", topic=feed_name(), reason=outcome.reason)
                cool_down(retry_delay(attempts))
            maybe_fetch()

        def resubscribe() -> None:
            nonlocal renewals
            assert request_resubscribe is not None
            renewals += 1
            try:
                request_resubscribe()
            except Exception:
                _log.exception("request_resubscribe raised", topic=feed_name())

        def wait_for_snapshot() -> None:
            """(Re)start the wait for a WebSocket snapshot; ask again when it runs out."""
            nonlocal waiting
            waiting = True

            def expired(_: abc.SchedulerBase, __: Any = None) -> None:
                if stopped or sync.live:
                    return
                _log.info(
                    "order book got no snapshot; resubscribing again",
                    topic=feed_name(),
                    requests=renewals,
                )
                resubscribe()
                wait_for_snapshot()

            clock = resolve_scheduler(scheduler, scheduler_)
            delay = max(resubscribe_retry(max(renewals, 1)), 0.0)
            watchdog.disposable = clock.schedule_relative(delay, expired)

        def settled() -> None:
            """The book is consistent again: stop waiting for a snapshot."""
            nonlocal waiting, renewals
            waiting = False
            renewals = 0
            watchdog.disposable = Disposable()

        def maybe_fetch() -> None:
            if not fetching and not cooling and not stopped and sync.wants_snapshot:
                start_fetch()

        def cool_down(delay: float) -> None:
            nonlocal cooling
            cooling = True

            def fire(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal cooling
                cooling = False
                maybe_fetch()

            clock = resolve_scheduler(scheduler, scheduler_)
            timer.disposable = clock.schedule_relative(max(delay, 0.0), fire)

        def failed(error: Exception) -> None:
            nonlocal fetching, attempts
            fetching = False
            attempts += 1
            tell(error)
            delay = retry_delay(attempts)
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > delay:
                delay = float(retry_after)
            cool_down(delay)

        def start_fetch() -> None:
            nonlocal fetching
            assert fetch_snapshot is not None
            fetching = True
            got = False
            current = SingleAssignmentDisposable()
            request.disposable = current

            def on_snapshot(snapshot: OrderBook) -> None:
                nonlocal got, fetching, attempts
                if got or stopped:
                    return
                got = True
                fetching = False
                current.dispose()
                try:
                    outcome = sync.on_snapshot(snapshot)
                except Exception as exc:  # a malformed snapshot must not end the feed
                    outcome = sync.fail(f"could not load the snapshot: {exc!r}")
                if outcome is APPLIED:
                    attempts = 0
                handle(outcome)

            def on_error(error: Exception) -> None:
                if got or stopped:
                    return
                failed(error)

            def on_completed() -> None:
                if got or stopped:
                    return
                failed(FeedGapError(feed_name(), "order book snapshot request returned nothing"))

            try:
                snapshot_request = fetch_snapshot()
                if gate is not None:
                    snapshot_request = gate.wrap(snapshot_request)
            except Exception as exc:
                failed(exc)
                return
            current.disposable = snapshot_request.subscribe(
                on_snapshot, on_error, on_completed, scheduler=scheduler_
            )

        def on_next(item: DepthUpdate | StreamRestart) -> None:
            restarted = False
            try:
                if isinstance(item, StreamRestart):
                    restarted = True
                    outcome = sync.restart(item.reason)
                else:
                    outcome = sync.on_update(item)
            except Exception as exc:  # a malformed event: drop the book, do not die
                restarted = False
                outcome = sync.fail(f"could not apply an event: {exc!r}")
            if outcome is APPLIED and not waiting:
                observer.on_next(sync.view())
            elif outcome is not IGNORED or sync.wants_snapshot:
                handle(outcome, restarted)

        def stop() -> None:
            nonlocal stopped
            stopped = True
            request.dispose()
            timer.dispose()
            watchdog.dispose()

        def on_error(error: Exception) -> None:
            stop()
            observer.on_error(error)

        def on_completed() -> None:
            stop()
            observer.on_completed()

        if renews:
            wait_for_snapshot()  # for the snapshot the subscription brings
        source.disposable = diffs.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)
        return CompositeDisposable(source, Disposable(stop))

    return Observable(subscribe)
