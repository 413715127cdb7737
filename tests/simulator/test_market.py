"""The venue-agnostic market: determinism, book invariants, history, tape, klines."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from rxconnector.testing.simulator import BookHistoryError, SimulatorConfig
from rxconnector.testing.simulator.book import ASK, BID, SimBook
from rxconnector.testing.simulator.klines import bucket_open, kline_from_trades, prev_open
from rxconnector.testing.simulator.market import Market, TickEvents
from rxconnector.testing.simulator.tape import RollingWindow

T0 = 1_700_000_000_000


def make_market(seed: int = 7, **overrides: object) -> tuple[Market, list[int]]:
    """A market on a fake clock that advances 100 ms per reading."""
    cfg = SimulatorConfig(symbols=("BTCUSDT", "ETHUSDT", "XYZUSDT"), seed=seed)
    now = [T0]

    def clock() -> int:
        now[0] += 100
        return now[0]

    market = Market(cfg.symbol_specs(), seed, clock, **overrides)  # type: ignore[arg-type]
    return market, now


def run(market: Market, ticks: int) -> list[TickEvents]:
    events: list[TickEvents] = []
    for _ in range(ticks):
        events += market.tick()
    return events


def without_time(ev: TickEvents) -> tuple[object, ...]:
    trades = tuple((t.id, t.price, t.qty, t.taker_side, t.agg_id) for t in ev.trades)
    return (ev.symbol, ev.first_update_id, ev.last_update_id, ev.bids, ev.asks, trades)


class TestDeterminism:
    """The market depends only on the seed and the number of ticks."""

    def test_same_seed_same_market(self) -> None:
        a, _ = make_market(7)
        b, _ = make_market(7)
        assert [without_time(e) for e in run(a, 300)] == [without_time(e) for e in run(b, 300)]

    def test_different_seed_different_market(self) -> None:
        a, _ = make_market(7)
        b, _ = make_market(8)
        assert [without_time(e) for e in run(a, 50)] != [without_time(e) for e in run(b, 50)]

    def test_symbols_are_independent_of_each_other(self) -> None:
        cfg = SimulatorConfig(symbols=("BTCUSDT",), seed=7)
        alone = Market(cfg.symbol_specs(), 7, lambda: T0)
        together, _ = make_market(7)
        solo = [without_time(alone.tick()[0]) for _ in range(100)]
        mixed = [without_time(e) for e in run(together, 100) if e.symbol == "BTCUSDT"]
        assert solo == mixed


class TestBookInvariants:
    """Every tick leaves an uncrossed book of about ``book_levels`` levels per side."""

    def test_never_crossed_and_depth_kept(self) -> None:
        market, _ = make_market(11)
        for _ in range(1500):
            for ev in market.tick():
                book = market[ev.symbol].book
                bid, ask = book.best_bid(), book.best_ask()
                assert bid is not None and ask is not None and bid < ask
                assert 40 <= len(book.side(BID)) <= 61
                assert 40 <= len(book.side(ASK)) <= 61

    def test_every_tick_consumes_update_ids_contiguously(self) -> None:
        market, _ = make_market()
        last: dict[str, int] = {s: m.book.update_id for s, m in market.symbols.items()}
        for ev in run(market, 400):
            assert ev.first_update_id == last[ev.symbol] + 1
            assert ev.last_update_id >= ev.first_update_id
            assert ev.bids or ev.asks
            last[ev.symbol] = ev.last_update_id

    def test_sim_book_refuses_to_cross(self) -> None:
        book = SimBook(10, history=100)
        book.apply([(BID, 100, 5), (ASK, 101, 5)])
        with pytest.raises(ValueError, match="cross"):
            book.apply([(BID, 101, 1)])
        assert book.update_id == 11
        assert book.levels(BID) == [(100, 5)]


class TestHistory:
    """``book_at`` rebuilds any kept update id exactly."""

    def test_diffs_replayed_on_old_book_give_new_book(self) -> None:
        market, _ = make_market()
        m = market["BTCUSDT"]
        start = m.book.update_id
        events = [e for e in run(market, 200) if e.symbol == "BTCUSDT"]
        bids, asks = (dict(side) for side in m.book_at(start))
        for ev in events:
            for side, changes in ((bids, ev.bids), (asks, ev.asks)):
                for price, qty in changes:
                    key = Decimal(price).scaleb(-m.price_exp)
                    if qty == 0:
                        side.pop(key, None)
                    else:
                        side[key] = Decimal(qty).scaleb(-m.qty_exp)
            want_bids, want_asks = m.book_at(ev.last_update_id)
            assert sorted(bids.items(), reverse=True) == want_bids
            assert sorted(asks.items()) == want_asks

    def test_intermediate_ids_inside_an_event_are_rebuildable(self) -> None:
        market, _ = make_market()
        ev = next(e for e in run(market, 50) if e.last_update_id > e.first_update_id)
        m = market[ev.symbol]
        bids, asks = m.book_at(ev.first_update_id)
        assert bids and asks and bids[0][0] < asks[0][0]

    def test_ids_outside_history_raise(self) -> None:
        market, _ = make_market(book_history=50)
        run(market, 100)
        m = market["BTCUSDT"]
        with pytest.raises(BookHistoryError):
            m.book_at(m.book.update_id + 1)
        with pytest.raises(BookHistoryError):
            m.book_at(m.book.first_update_id - 1)
        assert m.book.update_id - m.book.first_update_id == 50
        m.book_at(m.book.first_update_id)

    def test_depth_limits_levels(self) -> None:
        market, _ = make_market()
        m = market["ETHUSDT"]
        bids, asks = m.book_at(m.book.update_id, depth=5)
        assert len(bids) == len(asks) == 5
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)


class TestTradeTape:
    """Trade ids are contiguous and aggregate trades cover exact id ranges."""

    def test_trade_and_agg_ids(self) -> None:
        market, _ = make_market()
        run(market, 300)
        m = market["BTCUSDT"]
        trades, aggs = m.tape.trades, m.tape.aggs
        assert len(trades) > 100
        assert [t.id for t in trades] == list(range(trades[0].id, trades[0].id + len(trades)))
        assert [a.id for a in aggs] == list(range(aggs[0].id, aggs[0].id + len(aggs)))
        by_id = {t.id: t for t in trades}
        assert aggs[0].first_trade_id == trades[0].id
        assert aggs[-1].last_trade_id == trades[-1].id
        for prev, agg in itertools.pairwise(aggs):
            assert agg.first_trade_id == prev.last_trade_id + 1
        for agg in aggs:
            members = [by_id[i] for i in range(agg.first_trade_id, agg.last_trade_id + 1)]
            assert sum(t.qty for t in members) == agg.qty
            assert {t.price for t in members} == {agg.price}
            assert {t.agg_id for t in members} == {agg.id}
            assert {t.buyer_is_maker for t in members} == {agg.buyer_is_maker}

    def test_each_fill_took_liquidity_from_the_book(self) -> None:
        market, _ = make_market()
        run(market, 300)
        m = market["BTCUSDT"]
        for agg in m.tape.aggs:
            before_bids, before_asks = (dict(s) for s in m.book_at(agg.update_id - 1))
            after_bids, after_asks = (dict(s) for s in m.book_at(agg.update_id))
            # a taker sell (buyer is maker) hits bids; a taker buy lifts asks
            before, after = (
                (before_bids, after_bids) if agg.buyer_is_maker else (before_asks, after_asks)
            )
            best = max(before) if agg.buyer_is_maker else min(before)
            assert agg.price in before
            assert after.get(agg.price, Decimal(0)) == before[agg.price] - agg.qty
            # a sweep starts at the best level and walks away from it
            if agg.buyer_is_maker:
                assert agg.price <= best
            else:
                assert agg.price >= best

    def test_tape_is_bounded(self) -> None:
        market, _ = make_market(trade_history=100)
        run(market, 400)
        trades = market["BTCUSDT"].tape.trades
        assert 100 <= len(trades) <= 111
        assert trades[-1].id - trades[0].id == len(trades) - 1


class TestRollingWindow:
    """Incremental window statistics equal a brute-force recomputation."""

    def test_matches_brute_force(self) -> None:
        market, _now = make_market()
        run(market, 600)
        m = market["BTCUSDT"]
        window = RollingWindow(10_000)
        trades = m.tape.trades
        for i, t in enumerate(trades):
            window.add(t)
            if i % 37 == 0:
                window.expire(t.time)
                inside = [x for x in trades[: i + 1] if x.time >= t.time - 10_000]
                assert window.count == len(inside)
                assert window.volume == sum(x.qty_steps for x in inside)
                assert window.high == max(x.price_ticks for x in inside)
                assert window.low == min(x.price_ticks for x in inside)
                assert window.first is inside[0]


class TestKlines:
    """Candles come from the tape; history before the start is synthetic and stable."""

    def test_live_candles_equal_the_tape(self) -> None:
        market, _ = make_market()
        run(market, 1500)  # 150 s of market time
        m = market["BTCUSDT"]
        candles = m.klines("1m", None, None, 3)
        assert [c.open_time for c in candles] == sorted(c.open_time for c in candles)
        for c in candles:
            inside = [t for t in m.tape.trades if c.open_time <= t.time <= c.close_time]
            if not inside:
                continue
            assert c.count == len(inside)
            assert c.first_id == inside[0].id and c.last_id == inside[-1].id
            assert c.volume == sum(t.qty_steps for t in inside)
            assert c.high == max(t.price_ticks for t in inside)
            assert (c.open, c.close) == (inside[0].price_ticks, inside[-1].price_ticks)

    def test_tracker_matches_history(self) -> None:
        market, _ = make_market()
        m = market["BTCUSDT"]
        run(market, 10)
        tracker = m.kline_tracker("1m")
        run(market, 1300)
        closed, current = tracker.poll(m.now_ms)
        assert closed
        for c in closed:
            (again,) = m.klines("1m", c.open_time, c.open_time, 1)
            assert again == c
        assert current.open_time == bucket_open("1m", m.now_ms)

    def test_synthetic_history_is_deterministic_and_continuous(self) -> None:
        a, _ = make_market()
        b, _ = make_market()
        start = T0 - 10 * 86_400_000
        ka = a["BTCUSDT"].klines("1h", start, None, 100)
        kb = b["BTCUSDT"].klines("1h", start, None, 100)
        assert ka == kb and len(ka) == 100
        for prev, nxt in itertools.pairwise(ka):
            assert nxt.open_time == prev.close_time + 1
            assert nxt.open == prev.close
            assert nxt.low <= min(nxt.open, nxt.close) <= max(nxt.open, nxt.close) <= nxt.high

    def test_range_and_limit_semantics(self) -> None:
        market, _ = make_market()
        m = market["BTCUSDT"]
        start = T0 - 3 * 86_400_000 + 1  # not on a boundary: first candle opens after it
        candles = m.klines("1d", start, None, 1000)
        assert candles[0].open_time >= start
        assert candles[-1].open_time == bucket_open("1d", m.now_ms)
        recent = m.klines("1m", None, T0 - 3_600_000, 5)
        assert len(recent) == 5 and recent[-1].open_time == bucket_open("1m", T0 - 3_600_000)

    def test_weeks_start_on_monday_and_months_on_the_first(self) -> None:
        monday = 1_699_833_600_000  # 2023-11-13 00:00 UTC, a Monday
        assert bucket_open("1w", monday + 3 * 86_400_000) == monday
        assert bucket_open("1M", T0) == 1_698_796_800_000  # 2023-11-01
        assert prev_open("1M", 1_698_796_800_000) == 1_696_118_400_000  # 2023-10-01

    def test_empty_bucket_is_flat_at_previous_close(self) -> None:
        k = kline_from_trades("1m", 60_000, [], 12345)
        assert (k.open, k.high, k.low, k.close, k.count, k.volume) == (
            12345,
            12345,
            12345,
            12345,
            0,
            0,
        )
        assert k.close_time == 119_999
