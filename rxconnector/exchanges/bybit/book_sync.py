"""Bybit v5 order-book sync rules (PROTOCOL.md §C1): ``orderbook.{depth}`` and
``orderbook.full``.

``orderbook.{depth}`` streams bring their own snapshots on the WebSocket (no REST);
``orderbook.full`` is kept in step with ``GET /v5/market/full_orderbook``. Pure: no I/O,
no time.

Both rules read their events through
:class:`~rxconnector.exchanges.depth_events.BybitDiffEvent`: the maintained book's wire
path hands them :class:`~rxconnector.exchanges.depth_events.PackedDepthUpdate` (from
:func:`~rxconnector.exchanges.bybit.wire_book.book_frame_parser`: levels packed for the
book, no ``Decimal`` per level); a frame the hub decoded itself (written otherwise than
Bybit writes them, or a topic another feed left decoded) comes as the dict parser's
:class:`~rxconnector.models.DepthUpdate`. Same fields, same meaning, same book.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar, cast

from rxconnector.exchanges.book_sync import (
    APPLIED,
    BUFFERED,
    IGNORED,
    BookSync,
    Outcome,
    Refetch,
    SyncRule,
)
from rxconnector.exchanges.depth_events import BybitDiffEvent
from rxconnector.models import OrderBook

__all__ = [
    "BEHIND_RUN_LIMIT",
    "BYBIT_FULL_SNAPSHOT_LIMIT",
    "DEPTH_RULE",
    "FULL_RULE",
    "RECENT_UPDATE_IDS",
    "SEQUENCED_AFTER",
    "BybitDepthSync",
    "BybitFullSync",
]

#: ``GET /v5/market/full_orderbook`` returns at most 10 000 levels per side (§C1, §C3).
BYBIT_FULL_SNAPSHOT_LIMIT = 10_000
#: Consecutive ``u`` + 1 deltas after which a Bybit ``orderbook.{depth}`` topic counts as
#: sequenced (:class:`BybitDepthSync`). At the 20 ms push rate of ``orderbook.50`` that
#: is under half a second of a busy book; a stream that numbers ``u`` any other way
#: would have to step by exactly 1 twenty times running to be mistaken for sequenced.
SEQUENCED_AFTER = 20
#: Consecutive Bybit ``orderbook.{depth}`` deltas behind the book (``u`` or ``seq`` not
#: above the book's) after which the book is taken to be wedged by an earlier message
#: far ahead and resynced. One or two stale messages are ignored: Bybit documents no
#: numbering rule for these streams; three in a row on one ordered socket is no accident.
BEHIND_RUN_LIMIT = 3
#: How many recently applied ``u`` a Bybit depth book remembers to recognise late copies.
RECENT_UPDATE_IDS = 64


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

    def on_update(self, update: BybitDiffEvent) -> Outcome:
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
                return self._stale_delta(update)
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

    def _stale_delta(self, update: BybitDiffEvent) -> Outcome:
        """A delta whose ``u`` or ``seq`` is not above the live book's.

        A late copy of a delta already applied changes nothing: ignored. So is one or
        two never-seen deltas behind the book (this stream's numbering is not
        documented). A run of them means an earlier message far ahead (``u`` or ``seq``)
        was taken and every real delta is now "stale": the book froze.
        """
        final = update.final_update_id
        recent = self._recent
        if not recent or final in recent or final < recent[0]:
            return IGNORED
        self._behind_run += 1
        if self._behind_run < BEHIND_RUN_LIMIT:
            return IGNORED
        return self.fail(
            f"{self._behind_run} deltas in a row behind the book's u={self.update_id} "
            f"(seq {self._sequence}; the last: u={final}, seq {update.sequence}): a "
            "message far ahead had moved it there; waiting for the next snapshot"
        )

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

    def on_update(self, update: BybitDiffEvent) -> Outcome:
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
            previous = cast(BybitDiffEvent, buffer[-1])  # this rule buffers only its own events
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
            outcome = self.on_update(cast(BybitDiffEvent, event))
        return outcome


def _depth(depth: int, _limit: int | None, window: int | None, max_buffer: int) -> BookSync:
    return BybitDepthSync(depth, window=window, max_buffer=max_buffer)


def _full(depth: int, snapshot_limit: int | None, _window: int | None, max_buffer: int) -> BookSync:
    return BybitFullSync(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)


#: ``orderbook.{1|50|200|1000}``: WebSocket snapshot + deltas, no REST (§C1).
DEPTH_RULE = SyncRule("bybit-depth", _depth)
#: ``orderbook.full``: strict ``u`` + 1 with a REST snapshot of the whole book (§C1, §C3).
FULL_RULE = SyncRule("bybit-full", _full, (BYBIT_FULL_SNAPSHOT_LIMIT,))
