"""Binance order-book sync rules: Spot (PROTOCOL.md §A1.5) and USD-M futures (§B).

Both keep a diff stream in step with a REST depth snapshot (``GET /api/v3/depth``,
``GET /fapi/v1/depth``). Pure: no I/O, no time.

Snapshot sizes: Binance charges by the limit tier (Spot 1-100 → 5, 101-500 → 25,
501-1000 → 50, 1001-5000 → 250), the same 0.05 weight per level in every tier, so a
small tier is not cheaper per level; a larger one buys headroom (see
:meth:`~rxconnector.exchanges.book_sync.SyncRule.snapshot_limit`). What matters most is
the resync after a reconnect, when every book of a connection asks at once: 50 books
cost 250 weight at tier 100 and 1,250 at tier 500. So depth 1-20 → 100 (weight 5),
21-100 → 500 (25), 101-200 → 1000 (50), deeper → 5000 (250); USD-M caps at 1000
(weight 20). Measured (``benchmarks/bench_coverage.py``, the simulator's random walk,
depth 20): a 100-level snapshot lasts a median of 114 s before its coverage is
exhausted (about 150 weight per hour per symbol in refetches; a refetch costs the book
one round trip). On recorded real Binance depth data (``benchmarks/
bench_coverage_real.py``: 43 symbols, ~30 s each) the shown 20th level never went
deeper than the 37th snapshot level, so tier 100 was never exhausted there.
"""

from __future__ import annotations

from rxconnector.exchanges.book_sync import (
    APPLIED,
    BUFFERED,
    IGNORED,
    MAX_EVENT_ADVANCE,
    BookSync,
    Outcome,
    Refetch,
    SyncRule,
    same_ids,
)
from rxconnector.exchanges.depth_events import DiffEvent
from rxconnector.models import OrderBook

__all__ = [
    "BINANCE_SPOT_SNAPSHOT_LIMITS",
    "BINANCE_USDM_SNAPSHOT_LIMITS",
    "SPOT_RULE",
    "USDM_RULE",
    "BinanceFuturesSync",
    "BinanceSpotSync",
]

#: ``GET /api/v3/depth`` limit tiers and their weights 5/25/50/250 (PROTOCOL.md §A2.4).
BINANCE_SPOT_SNAPSHOT_LIMITS = (100, 500, 1000, 5000)
#: ``GET /fapi/v1/depth`` limits worth using, weights 5/10/20 (PROTOCOL.md §B).
BINANCE_USDM_SNAPSHOT_LIMITS = (100, 500, 1000)


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

    def on_update(self, update: DiffEvent) -> Outcome:
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

    def on_update(self, update: DiffEvent) -> Outcome:
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
                if same_ids(update, previous):
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


def _spot(depth: int, snapshot_limit: int | None, _window: int | None, max_buffer: int) -> BookSync:
    return BinanceSpotSync(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)


def _usdm(depth: int, snapshot_limit: int | None, _window: int | None, max_buffer: int) -> BookSync:
    return BinanceFuturesSync(depth, snapshot_limit=snapshot_limit, max_buffer=max_buffer)


#: Spot diff depth + ``GET /api/v3/depth`` (PROTOCOL.md §A1.5).
SPOT_RULE = SyncRule("binance-spot", _spot, BINANCE_SPOT_SNAPSHOT_LIMITS)
#: USD-M diff depth with the ``pu`` chain + ``GET /fapi/v1/depth`` (PROTOCOL.md §B).
USDM_RULE = SyncRule("binance-usdm", _usdm, BINANCE_USDM_SNAPSHOT_LIMITS)
