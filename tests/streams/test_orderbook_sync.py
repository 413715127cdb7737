"""Venue sync rules: scripted scenarios and property tests against a reference book."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxconnector.exchanges.binance.book_sync import BinanceFuturesSync, BinanceSpotSync
from rxconnector.exchanges.binance.wire import depth_frame_parser
from rxconnector.exchanges.book_rules import BookRule, make_sync, snapshot_limit_for
from rxconnector.exchanges.book_sync import APPLIED, BUFFERED, IGNORED, BookSync, Refetch, Resync
from rxconnector.exchanges.bybit.book_sync import BybitDepthSync, BybitFullSync
from rxconnector.models import DepthUpdate, Level, OrderBook
from rxconnector.streams.book_snapshots import snapshot_retry_delay

D = Decimal


def lv(price: int | str, qty: int | str) -> Level:
    return (D(price), D(qty))


def upd(
    first: int,
    final: int,
    bids: tuple[Level, ...] = (),
    asks: tuple[Level, ...] = (),
    *,
    pu: int | None = None,
    seq: int | None = None,
    snapshot: bool = False,
    symbol: str = "BTCUSDT",
) -> DepthUpdate:
    return DepthUpdate(
        symbol,
        first,
        final,
        bids,
        asks,
        event_time=1000 + final,
        received_at=2000.0 + final,
        prev_final_update_id=pu,
        sequence=seq,
        is_snapshot=snapshot,
    )


def snap(
    update_id: int, bids: tuple[Level, ...], asks: tuple[Level, ...], symbol: str = "BTCUSDT"
) -> OrderBook:
    return OrderBook(symbol, bids, asks, update_id, event_time=0, received_at=3000.0)


BIDS = (lv(10, 1), lv(9, 1))
ASKS = (lv(11, 1), lv(12, 1))


class TestSnapshotLimits:
    """The REST snapshot size follows the shown depth with headroom, within the weight tiers."""

    def test_binance_spot_tiers(self) -> None:
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 5) == 100
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 10) == 100
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 20) == 100  # weight 5 (issue 16)
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 21) == 500
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 100) == 500
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 101) == 1000
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 201) == 5000
        assert snapshot_limit_for(BookRule.BINANCE_SPOT, 5000) == 5000

    def test_other_venues(self) -> None:
        assert snapshot_limit_for(BookRule.BINANCE_USDM, 20) == 100
        assert snapshot_limit_for(BookRule.BINANCE_USDM, 500) == 1000
        assert snapshot_limit_for(BookRule.BYBIT_DEPTH, 50) is None
        assert snapshot_limit_for(BookRule.BYBIT_FULL, 50) == 10_000

    def test_depth_beyond_any_snapshot_is_refused(self) -> None:
        with pytest.raises(ValueError, match="deeper than the snapshot limit"):
            make_sync(BookRule.BINANCE_USDM, 2000)
        with pytest.raises(ValueError, match="depth must be >= 1"):
            make_sync(BookRule.BINANCE_SPOT, 0)
        with pytest.raises(ValueError, match="window"):
            make_sync(BookRule.BYBIT_DEPTH, 50, window=20)

    def test_retry_delay_is_capped_exponential(self) -> None:
        assert [snapshot_retry_delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
        assert snapshot_retry_delay(50) == 30.0

    def test_make_sync_picks_the_machine(self) -> None:
        assert isinstance(make_sync(BookRule.BINANCE_SPOT, 5), BinanceSpotSync)
        assert isinstance(make_sync(BookRule.BINANCE_USDM, 5), BinanceFuturesSync)
        assert isinstance(make_sync(BookRule.BYBIT_DEPTH, 5), BybitDepthSync)
        assert isinstance(make_sync(BookRule.BYBIT_FULL, 5), BybitFullSync)
        assert repr(BookRule.BYBIT_FULL) == "BookRule.BYBIT_FULL"
        assert repr(APPLIED) == "Step.APPLIED"


class TestBinanceSpot:
    """PROTOCOL.md §A1.5, step by step."""

    def test_buffer_then_sync_applies_the_overlapping_event(self) -> None:
        sync = BinanceSpotSync(2)
        assert sync.on_update(upd(1, 3, (lv(10, 5),))) is BUFFERED
        assert sync.wants_snapshot
        assert sync.on_update(upd(4, 6, (), (lv(11, 7),))) is BUFFERED
        assert sync.on_snapshot(snap(4, BIDS, ASKS)) is APPLIED  # drops 1..3, applies 4..6
        assert sync.live and not sync.wants_snapshot
        view = sync.view()
        assert view.bids == BIDS and view.asks == (lv(11, 7), lv(12, 1))
        assert (view.update_id, view.event_time, view.received_at) == (6, 1006, 2006.0)

    def test_snapshot_older_than_first_event_is_refetched(self) -> None:
        sync = BinanceSpotSync(2)
        sync.on_update(upd(10, 12))
        outcome = sync.on_snapshot(snap(9, BIDS, ASKS))
        assert isinstance(outcome, Refetch) and "9 < first buffered U 10" in outcome.reason
        assert sync.wants_snapshot and not sync.live
        assert sync.on_snapshot(snap(10, BIDS, ASKS)) is APPLIED

    def test_snapshot_newer_than_every_buffered_event(self) -> None:
        sync = BinanceSpotSync(2)
        sync.on_update(upd(1, 3))
        assert sync.on_snapshot(snap(8, BIDS, ASKS)) is APPLIED
        view = sync.view()
        assert (view.update_id, view.received_at, view.symbol) == (8, 3000.0, "BTCUSDT")
        assert sync.on_update(upd(4, 7)) is IGNORED  # u < local: the stream catching up
        assert sync.on_update(upd(8, 8)) is APPLIED  # u == local: harmless re-apply
        assert sync.on_update(upd(9, 9, (lv(10, 2),))) is APPLIED
        assert sync.view().bids[0] == lv(10, 2)

    def test_live_gap_resyncs_and_rebuffers_the_event(self) -> None:
        sync = BinanceSpotSync(2)
        sync.on_update(upd(1, 1))
        sync.on_snapshot(snap(1, BIDS, ASKS))
        outcome = sync.on_update(upd(3, 4))
        assert isinstance(outcome, Resync) and "gap" in outcome.reason
        assert not sync.live and sync.buffered == 1 and sync.wants_snapshot

    def test_gap_while_buffering_restarts_the_buffer(self) -> None:
        sync = BinanceSpotSync(2)
        sync.on_update(upd(1, 2))
        sync.on_update(upd(5, 6))  # 3..4 missing: only this event stays
        assert sync.buffered == 1
        # Behind the buffer: on one ordered socket only a buffered event far ahead can
        # precede it (issue #16), so the buffer restarts here, reported.
        assert isinstance(sync.on_update(upd(3, 4)), Resync)
        assert sync.buffered == 1
        assert isinstance(sync.on_snapshot(snap(2, BIDS, ASKS)), Refetch)  # 2 < U 3

    def test_an_event_behind_the_book_once_in_step_resyncs(self) -> None:
        """Issue #16: U = local + 1 with a huge u is applied by the rule; the next real
        event is then behind the book. Ignoring it (and every one after) froze the book."""
        sync = BinanceSpotSync(2)
        sync.on_update(upd(1, 1))
        sync.on_snapshot(snap(1, BIDS, ASKS))
        assert sync.on_update(upd(2, 1000)) is APPLIED  # plausible on its own
        outcome = sync.on_update(upd(3, 3))
        assert isinstance(outcome, Resync) and "behind the book" in outcome.reason
        assert not sync.live and sync.buffered == 1

    def test_an_event_moving_the_id_absurdly_far_is_not_applied(self) -> None:
        sync = BinanceSpotSync(2)
        sync.on_update(upd(1, 1))
        sync.on_snapshot(snap(1, BIDS, ASKS))
        outcome = sync.on_update(upd(2, 10**15, (lv(10, 77),)))
        assert isinstance(outcome, Resync) and "not applied" in outcome.reason
        assert not sync.live and sync.buffered == 0  # the next real event starts the sync

    def test_snapshot_without_buffer_or_when_live_is_ignored(self) -> None:
        sync = BinanceSpotSync(2)
        assert sync.on_snapshot(snap(1, BIDS, ASKS)) is IGNORED
        sync.on_update(upd(1, 1))
        sync.on_snapshot(snap(1, BIDS, ASKS))
        assert sync.on_snapshot(snap(5, (), ())) is IGNORED

    def test_crossed_book_is_corruption(self) -> None:
        sync = BinanceSpotSync(2)
        sync.on_update(upd(1, 1))
        sync.on_snapshot(snap(1, BIDS, ASKS))
        outcome = sync.on_update(upd(2, 2, (lv(11, 1),)))
        assert isinstance(outcome, Resync) and "crossed" in outcome.reason
        assert not sync.live and sync.buffered == 0

    def test_coverage_exhaustion_resyncs(self) -> None:
        sync = BinanceSpotSync(2, snapshot_limit=2)
        sync.on_update(upd(1, 1))
        assert sync.on_snapshot(snap(1, BIDS, ASKS)) is APPLIED
        outcome = sync.on_update(upd(2, 2, (lv(10, 0),)))
        assert isinstance(outcome, Resync) and "coverage" in outcome.reason

    def test_restart_marker(self) -> None:
        sync = BinanceSpotSync(2)
        assert sync.restart("reconnect") is IGNORED  # nothing to lose yet
        sync.on_update(upd(1, 1))
        outcome = sync.restart("reconnect")
        assert isinstance(outcome, Resync) and "reconnect" in outcome.reason
        assert sync.buffered == 0 and not sync.wants_snapshot

    def test_buffer_overflow_restarts_buffering(self) -> None:
        sync = BinanceSpotSync(2, max_buffer=3)
        for i in range(1, 6):
            sync.on_update(upd(i, i))
        assert sync.buffered == 2  # cleared at the 4th, then 4 and 5

    def test_first_remaining_event_must_contain_last_update_id_plus_one(self) -> None:
        """Cannot happen with a gap-free buffer; guarded anyway as §A1.5 step 5 demands."""
        sync = BinanceSpotSync(2)
        sync._buffer.extend([upd(1, 2), upd(6, 7)])  # forge a gapped buffer
        outcome = sync.on_snapshot(snap(3, BIDS, ASKS))
        assert isinstance(outcome, Refetch) and "does not contain" in outcome.reason
        assert sync.buffered == 0


class TestBinanceFutures:
    """PROTOCOL.md §B: U <= lastUpdateId <= u for the first event, then pu == previous u."""

    def test_pu_chain(self) -> None:
        sync = BinanceFuturesSync(2)
        sync.on_update(upd(100, 105, pu=90))
        sync.on_update(upd(108, 110, (lv(10, 3),), pu=105))
        # lastUpdateId 107 falls in the hole before U=108: §B step 5 does not hold
        assert isinstance(sync.on_snapshot(snap(107, BIDS, ASKS)), Refetch)
        assert sync.on_snapshot(snap(108, BIDS, ASKS)) is APPLIED
        assert sync.view().bids[0] == lv(10, 3)
        assert sync.on_update(upd(115, 120, pu=110)) is APPLIED
        assert sync.on_update(upd(115, 120, pu=110)) is IGNORED  # duplicate
        outcome = sync.on_update(upd(130, 131, pu=125))
        assert isinstance(outcome, Resync) and "pu=125 != previous u 120" in outcome.reason
        assert sync.wants_snapshot

    def test_first_event_must_straddle_the_snapshot(self) -> None:
        sync = BinanceFuturesSync(2)
        sync.on_update(upd(100, 105, pu=90))
        assert isinstance(sync.on_snapshot(snap(99, BIDS, ASKS)), Refetch)
        assert sync.on_snapshot(snap(105, BIDS, ASKS)) is APPLIED  # u == lastUpdateId kept

    def test_snapshot_newer_than_buffer_waits_for_the_straddling_event(self) -> None:
        sync = BinanceFuturesSync(2)
        sync.on_update(upd(100, 105, pu=90))
        assert sync.on_snapshot(snap(107, BIDS, ASKS)) is APPLIED  # book = snapshot
        assert sync.on_update(upd(100, 106, pu=90)) is IGNORED  # u < lastUpdateId
        assert sync.on_update(upd(106, 109, pu=105)) is APPLIED  # 106 <= 107 <= 109
        outcome = BinanceFuturesSync(2)
        outcome.on_update(upd(100, 105, pu=90))
        outcome.on_snapshot(snap(107, BIDS, ASKS))
        gap = outcome.on_update(upd(108, 109, pu=105))
        assert isinstance(gap, Resync) and "U=108 > lastUpdateId 107" in gap.reason

    def test_chain_break_while_buffering(self) -> None:
        sync = BinanceFuturesSync(2)
        sync.on_update(upd(100, 105, pu=90))
        sync.on_update(upd(110, 112, pu=107))
        assert sync.buffered == 1
        assert sync.on_update(upd(110, 112, pu=107)) is IGNORED  # the same event again
        # Behind the buffer: the buffered event was ahead of the stream (issue #16).
        assert isinstance(sync.on_update(upd(100, 105, pu=90)), Resync)
        assert sync.buffered == 1


class TestBybitDepth:
    """§C1 orderbook.{depth}: snapshots reset, deltas apply, stale data is ignored."""

    def test_delta_before_snapshot_waits(self) -> None:
        sync = BybitDepthSync(2)
        assert sync.on_update(upd(5, 5, (lv(10, 1),), seq=50)) is IGNORED
        assert not sync.wants_snapshot  # no REST for this rule
        assert sync.on_update(upd(6, 6, BIDS, ASKS, seq=60, snapshot=True)) is APPLIED
        assert sync.on_update(upd(7, 7, (lv(10, 4),), seq=70)) is APPLIED
        assert sync.view().bids == (lv(10, 4), lv(9, 1))

    def test_stale_and_backwards_messages_are_ignored(self) -> None:
        sync = BybitDepthSync(2)
        sync.on_update(upd(6, 6, BIDS, ASKS, seq=60, snapshot=True))
        assert sync.on_update(upd(7, 7, (lv(10, 4),), seq=55)) is IGNORED  # seq backwards
        assert sync.on_update(upd(6, 6, (lv(10, 4),), seq=61)) is IGNORED  # u not above
        assert sync.on_update(upd(5, 5, (), (), seq=50, snapshot=True)) is IGNORED  # old snapshot
        assert sync.view().bids == BIDS

    def test_u_equals_one_overwrites(self) -> None:
        sync = BybitDepthSync(2)
        sync.on_update(upd(500, 500, BIDS, ASKS, seq=60, snapshot=True))
        assert sync.on_update(upd(1, 1, (lv(8, 1),), (lv(13, 1),), seq=1, snapshot=True)) is APPLIED
        assert sync.view().bids == (lv(8, 1),) and sync.view().update_id == 1
        assert sync.on_update(upd(2, 2, (lv(8, 2),), seq=2)) is APPLIED

    def test_u_one_overwrites_even_if_not_marked_as_snapshot(self) -> None:
        sync = BybitDepthSync(2)
        sync.on_update(upd(500, 500, BIDS, ASKS, seq=60, snapshot=True))
        assert sync.on_update(upd(1, 1, (lv(8, 1),), (lv(13, 1),), seq=70)) is APPLIED
        assert sync.view().bids == (lv(8, 1),) and sync.view().asks == (lv(13, 1),)

    def test_window_trims_levels_that_left_it(self) -> None:
        sync = BybitDepthSync(1, window=2)
        sync.on_update(upd(1, 1, BIDS, ASKS, snapshot=True))
        sync.on_update(upd(2, 2, (lv("10.5", 1),)))
        assert sync.book.bid_count == 2

    def test_crossed_waits_for_the_next_snapshot(self) -> None:
        sync = BybitDepthSync(2)
        sync.on_update(upd(1, 1, BIDS, ASKS, snapshot=True))
        outcome = sync.on_update(upd(2, 2, (lv(12, 1),)))
        assert isinstance(outcome, Resync) and "crossed" in outcome.reason
        assert sync.on_update(upd(3, 3, (lv(9, 2),))) is IGNORED
        assert sync.on_update(upd(4, 4, BIDS, ASKS, snapshot=True)) is APPLIED


class TestBybitFull:
    """§C1 orderbook.full: consecutive u with a REST snapshot."""

    def test_sync_and_gap(self) -> None:
        sync = BybitFullSync(2)
        for u in (10, 11, 12):
            assert sync.on_update(upd(u, u, (lv(10, u),), seq=u * 10)) is BUFFERED
        assert isinstance(sync.on_snapshot(snap(8, BIDS, ASKS)), Refetch)  # 8 + 1 < 10
        assert sync.on_snapshot(snap(11, BIDS, ASKS)) is APPLIED  # applies 12 only
        assert sync.view().bids[0] == lv(10, 12)
        assert sync.on_update(upd(12, 12)) is IGNORED
        outcome = sync.on_update(upd(14, 14))
        assert isinstance(outcome, Resync) and "u=14 after local u 12" in outcome.reason
        assert sync.wants_snapshot

    def test_u_one_restarts(self) -> None:
        sync = BybitFullSync(2)
        sync.on_update(upd(10, 10))
        sync.on_snapshot(snap(10, BIDS, ASKS))
        outcome = sync.on_update(upd(1, 1, snapshot=True))
        assert isinstance(outcome, Resync) and "u == 1" in outcome.reason
        assert sync.on_snapshot(snap(1, BIDS, ASKS)) is APPLIED

    def test_buffer_rules(self) -> None:
        sync = BybitFullSync(2)
        sync.on_update(upd(10, 10, seq=100))
        assert sync.on_update(upd(11, 11, seq=90)) is IGNORED  # seq went backwards
        sync.on_update(upd(13, 13, seq=130))  # discontinuity: restart at 13
        assert sync.buffered == 1
        assert sync.on_snapshot(snap(12, BIDS, ASKS)) is APPLIED


# ------------------------------------------------------------------------------------
# Property tests: a random true history, a perturbed delivery, snapshots at random
# times; every emitted view must equal the reference book at its update id.
# ------------------------------------------------------------------------------------

BID_PRICES = [D(p) for p in range(1, 9)]
ASK_PRICES = [D(p) for p in range(11, 19)]
QTYS = [D(0), D(1), D(2), D("3.5")]

change = st.tuples(st.booleans(), st.integers(0, 7), st.sampled_from(QTYS))
initial_side = st.dictionaries(st.integers(0, 7), st.sampled_from(QTYS[1:]))


class Truth:
    """The exchange's real book: atomic changes with ids; events aggregate id ranges."""

    def __init__(self, bids: dict[int, Decimal], asks: dict[int, Decimal]) -> None:
        self.initial = (
            {BID_PRICES[i]: q for i, q in bids.items()},
            {ASK_PRICES[i]: q for i, q in asks.items()},
        )
        self.changes: list[tuple[int, bool, Decimal, Decimal]] = []

    def state(self, upto: int) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        bids, asks = dict(self.initial[0]), dict(self.initial[1])
        for ident, is_bid, price, qty in self.changes:
            if ident > upto:
                break
            side = bids if is_bid else asks
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
        return bids, asks

    def top(self, upto: int, depth: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        bids, asks = self.state(upto)
        return (
            tuple(sorted(bids.items(), reverse=True)[:depth]),
            tuple(sorted(asks.items())[:depth]),
        )

    def snapshot(self, upto: int, limit: int | None) -> OrderBook:
        bids, asks = self.top(upto, limit or 10**6)
        return snap(upto, bids, asks)


@st.composite
def histories(draw: st.DrawFn, holes: bool) -> tuple[Truth, list[DepthUpdate]]:
    truth = Truth(draw(initial_side), draw(initial_side))
    events: list[DepthUpdate] = []
    ident = draw(st.integers(2, 6))  # u == 1 means a restart snapshot on Bybit
    previous_final = ident - 1
    for _ in range(draw(st.integers(1, 14))):
        merged: dict[tuple[bool, Decimal], Decimal] = {}
        first = None
        for _ in range(draw(st.integers(1, 3))):
            if holes:
                ident += draw(st.integers(0, 2))
            is_bid, index, qty = draw(change)
            price = (BID_PRICES if is_bid else ASK_PRICES)[index]
            truth.changes.append((ident, is_bid, price, qty))
            merged[(is_bid, price)] = qty
            first = ident if first is None else first
            ident += 1
        assert first is not None
        final = ident - 1
        bids = tuple((p, q) for (b, p), q in merged.items() if b)
        asks = tuple((p, q) for (b, p), q in merged.items() if not b)
        events.append(upd(first, final, bids, asks, pu=previous_final, seq=final * 10))
        previous_final = final
    return truth, events


ACTIONS = st.sampled_from(["send", "send", "send", "drop", "dup", "swap", "replay"])


def deliver(
    events: list[DepthUpdate], actions: list[str], replay_picks: list[int]
) -> list[DepthUpdate]:
    """The stream as received: events dropped, duplicated, swapped or replayed late."""
    out: list[DepthUpdate] = []
    i = 0
    picks = iter(replay_picks)
    while i < len(events):
        action = actions[i % len(actions)] if actions else "send"
        if action == "drop":
            i += 1
            continue
        if action == "swap" and i + 1 < len(events):
            out += [events[i + 1], events[i]]
            i += 2
            continue
        out.append(events[i])
        if action == "dup":
            out.append(events[i])
        if action == "replay":
            out.append(events[next(picks, 0) % (i + 1)])
        i += 1
    return out


def run_rest_rule(
    sync: BookSync,
    truth: Truth,
    stream: list[DepthUpdate],
    data: st.DataObject,
    limit: int | None,
    depth: int,
    final_id: int,
) -> int:
    """Feed ``stream``; snapshots arrive at random times with random freshness.

    Returns how many views were checked against the reference.
    """
    checked = 0
    position = 0  # the newest id the exchange has reached

    def check(outcome: object) -> None:
        nonlocal checked
        if outcome is APPLIED:
            view = sync.view()
            assert (view.bids, view.asks) == truth.top(view.update_id, depth), (
                f"wrong book at update {view.update_id}"
            )
            checked += 1
        if isinstance(outcome, Resync):
            assert not sync.live

    def offer_snapshot() -> None:
        while sync.wants_snapshot and data.draw(st.booleans(), label="snapshot now"):
            lag = data.draw(st.integers(-6, 3), label="snapshot lag")
            at = max(0, min(final_id, position + lag))
            check(sync.on_snapshot(truth.snapshot(at, limit)))

    for event in stream:
        position = max(position, event.final_update_id)
        check(sync.on_update(event))
        offer_snapshot()
    return checked


def assert_views_were_checked(checked: list[int]) -> None:
    """Most generated streams must reach a live book whose views were compared: a rule
    that never applied anything would otherwise pass every example vacuously (about
    three in four examples check at least one view with the current strategies)."""
    assert len(checked) >= 100
    assert sum(1 for n in checked if n) >= len(checked) // 3, checked


_parse_depth_frame = depth_frame_parser("btcusdt@depth@100ms")


def packed(event: DepthUpdate) -> Any:
    """``event`` as the book's wire path hands it over: written as Binance writes the
    frame, parsed by the one-pass depth parser (ids typed, levels packed)."""
    data: dict[str, Any] = {
        "e": "depthUpdate",
        "E": event.event_time,
        "s": event.symbol,
        "U": event.first_update_id,
        "u": event.final_update_id,
        "b": [[str(p), str(q)] for p, q in event.bids],
        "a": [[str(p), str(q)] for p, q in event.asks],
    }
    if event.prev_final_update_id is not None:
        data["pu"] = event.prev_final_update_id
    frame = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})
    return _parse_depth_frame(frame, event.received_at)


def check_binance_rule(
    rule: type[BinanceSpotSync | BinanceFuturesSync], holes: bool, wire: bool = False
) -> None:
    """Run a Binance REST rule over generated faulty streams (``holes``: ids may skip
    inside an event, as on USD-M) and require that views were really compared. With
    ``wire`` the events take the book's wire path (packed levels) first."""
    checked: list[int] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        histories(holes=holes),
        st.lists(ACTIONS, max_size=14),
        st.lists(st.integers(0, 100), max_size=5),
        st.sampled_from([None, 2, 3, 5]),
        st.data(),
    )
    def run(history, actions, picks, limit, data) -> None:  # type: ignore[no-untyped-def]
        truth, events = history
        depth = 2
        sync = rule(depth, snapshot_limit=limit)
        stream = deliver(events, actions, picks)
        if wire:
            stream = [packed(event) for event in stream]
        final_id = events[-1].final_update_id
        checked.append(run_rest_rule(sync, truth, stream, data, limit, depth, final_id))

    run()
    assert_views_were_checked(checked)


class TestNeverWrong:
    """Gaps, duplicates, stale and out-of-order events yield the reference book or a resync."""

    def test_binance_spot(self) -> None:
        check_binance_rule(BinanceSpotSync, holes=False)

    def test_binance_futures(self) -> None:
        check_binance_rule(BinanceFuturesSync, holes=True)

    def test_binance_spot_wire_path(self) -> None:
        """The same with the events the maintained book really gets (packed levels)."""
        check_binance_rule(BinanceSpotSync, holes=False, wire=True)

    def test_binance_futures_wire_path(self) -> None:
        check_binance_rule(BinanceFuturesSync, holes=True, wire=True)

    def test_bybit_full(self) -> None:
        checked: list[int] = []

        @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            histories(holes=False),
            st.lists(ACTIONS, max_size=14),
            st.lists(st.integers(0, 100), max_size=5),
            st.data(),
        )
        def run(history, actions, picks, data) -> None:  # type: ignore[no-untyped-def]
            truth, events = history
            # orderbook.full: one u per packet. Re-express each event as a single-id packet
            # whose u is its position (the atomic history is re-based the same way).
            rebased = Truth({}, {})
            rebased.initial = truth.initial
            packets = []
            for n, event in enumerate(events, start=1):
                for ident, is_bid, price, qty in truth.changes:
                    if event.first_update_id <= ident <= event.final_update_id:
                        rebased.changes.append((n, is_bid, price, qty))
                packets.append(upd(n, n, event.bids, event.asks, seq=n * 10))
            depth = 2
            sync = BybitFullSync(depth, snapshot_limit=None)
            stream = deliver(packets, actions, picks)
            checked.append(run_rest_rule(sync, rebased, stream, data, None, depth, len(packets)))

        run()
        assert_views_were_checked(checked)

    @settings(max_examples=300, deadline=None)
    @given(
        histories(holes=False),
        st.lists(st.sampled_from(["send", "send", "dup", "replay", "snapshot"]), max_size=14),
        st.lists(st.integers(0, 100), max_size=5),
        st.integers(0, 3),
    )
    def test_bybit_depth(self, history, actions, picks, lead_in) -> None:  # type: ignore[no-untyped-def]
        """Detectable faults only: lost or reordered deltas are invisible on these streams."""
        truth, events = history
        depth = 2
        sync = BybitDepthSync(depth)
        stream: list[DepthUpdate] = []
        # Deltas may arrive before the first snapshot; the snapshot is the state at the
        # last lead-in event, as Bybit sends it after subscribing.
        lead = min(lead_in, len(events) - 1)
        stream += events[:lead]
        base = events[lead - 1].final_update_id if lead else events[0].first_update_id - 1
        bids, asks = truth.top(base, 10**6)
        stream.append(upd(base, base, bids, asks, seq=base * 10, snapshot=True))
        body = events[lead:]
        pick = iter(picks)
        for i, event in enumerate(body):
            action = actions[i % len(actions)] if actions else "send"
            stream.append(event)
            if action == "dup":
                stream.append(event)
            elif action == "replay":
                stream.append(body[next(pick, 0) % (i + 1)])
            elif action == "snapshot":
                u = event.final_update_id
                b, a = truth.top(u, 10**6)
                stream.append(upd(u, u, b, a, seq=u * 10, snapshot=True))
        checked = 0
        for message in stream:
            outcome = sync.on_update(message)
            if outcome is APPLIED:
                view = sync.view()
                assert (view.bids, view.asks) == truth.top(view.update_id, depth)
                checked += 1
        assert checked >= 1


class TestLiveness:
    """With a clean stream and a fresh snapshot every REST rule goes live and stays right."""

    @settings(max_examples=100, deadline=None)
    @given(histories(holes=False), st.integers(0, 3))
    def test_spot_reaches_the_end(self, history, snapshot_after) -> None:  # type: ignore[no-untyped-def]
        truth, events = history
        sync = BinanceSpotSync(3)
        n = min(snapshot_after, len(events) - 1)
        for event in events[: n + 1]:
            sync.on_update(event)
        assert sync.on_snapshot(truth.snapshot(events[n].first_update_id, None)) is APPLIED
        for event in events[n + 1 :]:
            assert sync.on_update(event) is APPLIED
        final = events[-1].final_update_id
        assert (sync.view().bids, sync.view().asks) == truth.top(final, 3)

    @settings(max_examples=100, deadline=None)
    @given(histories(holes=True), st.integers(0, 3))
    def test_futures_reaches_the_end(self, history, snapshot_after) -> None:  # type: ignore[no-untyped-def]
        truth, events = history
        sync = BinanceFuturesSync(3)
        n = min(snapshot_after, len(events) - 1)
        for event in events[: n + 1]:
            sync.on_update(event)
        assert sync.on_snapshot(truth.snapshot(events[n].final_update_id, None)) is APPLIED
        for event in events[n + 1 :]:
            assert sync.on_update(event) is APPLIED
        final = events[-1].final_update_id
        assert (sync.view().bids, sync.view().asks) == truth.top(final, 3)


class TestWithVenueParsers:
    """The parsers' models of the documented examples drive the rules as intended."""

    def test_binance_spot_documented_event(self, examples: dict[str, Any]) -> None:
        from rxconnector.exchanges.binance.parsers import parse_depth_update

        event = parse_depth_update(examples["binance.spot.ws.depthUpdate"], 5.0)  # U 157 u 160
        sync = BinanceSpotSync(5)
        assert sync.on_update(event) is BUFFERED
        book = snap(158, (lv("0.0023", 5),), (lv("0.0027", 1),), symbol="BNBBTC")
        assert sync.on_snapshot(book) is APPLIED
        view = sync.view()
        assert view.symbol == "BNBBTC" and view.update_id == 160
        assert view.bids == (lv("0.0024", 10), lv("0.0023", 5))
        assert view.asks == (lv("0.0026", 100), lv("0.0027", 1))

    def test_binance_usdm_documented_event_carries_pu(self, examples: dict[str, Any]) -> None:
        from rxconnector.exchanges.binance.parsers import parse_depth_update

        event = parse_depth_update(examples["binance.usdm.ws.depthUpdate"], 5.0)  # pu 149
        sync = BinanceFuturesSync(5)
        sync.on_update(upd(140, 149, pu=130, symbol="BTCUSDT"))
        assert sync.on_update(event) is BUFFERED  # pu 149 continues the chain
        assert sync.on_snapshot(snap(158, (), ())) is APPLIED
        assert sync.view().bids == (lv("0.0024", 10),) and sync.view().update_id == 160

    def test_bybit_documented_snapshot(self, examples: dict[str, Any]) -> None:
        from rxconnector.exchanges.bybit.parsers import parse_depth

        message = parse_depth(examples["bybit.v5.ws.orderbook.snapshot"], 5.0)
        sync = BybitDepthSync(2, window=50)
        assert sync.on_update(message) is APPLIED
        view = sync.view()
        assert view.bids == (lv("16493.50", "0.006"), lv("16493.00", "0.100"))
        assert view.asks == (lv("16611.00", "0.029"), lv("16612.00", "0.213"))
        assert (view.update_id, view.event_time) == (18521288, 1672304484978)


class TestBufferBounds:
    """Issue 16: the pre-snapshot buffer is bounded by age and by levels, not only count;
    it drops its oldest events, stays gap-free, and a snapshot still syncs after it."""

    def test_events_older_than_the_age_bound_are_dropped(self) -> None:
        import attrs

        from rxconnector.exchanges.book_sync import MAX_BUFFER_AGE_MS

        sync = BinanceSpotSync(2)
        step = 1000.0  # one event a second
        n = int(MAX_BUFFER_AGE_MS / step) + 20
        for i in range(1, n + 1):
            sync.on_update(attrs.evolve(upd(i, i, (lv(10, i),)), received_at=i * step))
        assert sync.buffered == int(MAX_BUFFER_AGE_MS / step) + 1
        # still gap-free: a snapshot covering the first kept event syncs
        first_kept = n - sync.buffered + 1
        assert sync.on_snapshot(snap(first_kept, BIDS, ASKS)) is APPLIED
        assert sync.live and sync.update_id == n

    def test_levels_bound(self) -> None:
        from rxconnector.exchanges.book_sync import MAX_BUFFER_LEVELS

        sync = BinanceSpotSync(2)
        wide = tuple(lv(1000 + k, 1) for k in range(100))
        n = MAX_BUFFER_LEVELS // 100 + 200
        for i in range(1, n + 1):
            sync.on_update(upd(i, i, wide))
        assert sync.buffered * 100 <= MAX_BUFFER_LEVELS + 64 * 100
        assert sync.buffered < n

    def test_levels_bound_on_the_wire_path(self) -> None:
        """Packed events count their levels too: the bound holds, and the kept (gap-free)
        tail still syncs with a snapshot."""
        from rxconnector.exchanges.book_sync import MAX_BUFFER_LEVELS

        sync = BinanceSpotSync(2)
        wide = tuple(lv(f"5.{k:02d}", "1.12345678") for k in range(100))  # under the bids
        n = MAX_BUFFER_LEVELS // 100 + 200
        for i in range(1, n + 1):
            sync.on_update(packed(upd(i, i, wide)))
        assert sync.buffered * 100 <= MAX_BUFFER_LEVELS + 64 * 100
        assert sync.buffered < n
        first_kept = n - sync.buffered + 1
        assert sync.on_snapshot(snap(first_kept, BIDS, ASKS)) is APPLIED
        assert sync.live and sync.update_id == n
