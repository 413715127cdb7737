"""Public feeds, order books and trade tapes through the real Connector and simulator.

These are the acceptance tests of the live-streams and order-book issues: every emitted
book equals the simulator's true book at that update id, and the trade tape received
equals the simulator's tape — zero lost, zero duplicated — across 20 forced disconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from reactivex import operators as ops

import rxconnector as rxc
from rxconnector.testing import ExchangeSimulator

FAST = {
    "reconnect_delay": 0.05,
    "reconnect_max_delay": 0.2,
    "reconnect_jitter": 0.0,
    "stale_after": 0.6,
    "healthy_after": 0.5,
}


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=5, symbols=("BTCUSDT", "ETHUSDT"), tick_interval=0.01, periodic_ticks=2
    ) as server:
        yield server


def _config(sim: ExchangeSimulator) -> rxc.Config:
    return rxc.Config.binance(
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        connection=FAST,
        clock_sync={"enabled": False},
    )


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class TestFeeds:
    async def test_each_feed_delivers_models(self, sim: ExchangeSimulator) -> None:
        """Every Binance Spot public feed delivers its normalized model."""
        async with rxc.Connector(_config(sim)) as conn:
            checks = {
                "ticker": (conn.ticker("btcusdt"), rxc.Ticker),
                "mini_ticker": (conn.mini_ticker("BTCUSDT"), rxc.MiniTicker),
                "book_ticker": (conn.book_ticker("BTCUSDT"), rxc.BookTicker),
                "trades": (conn.trades("BTCUSDT"), rxc.Trade),
                "agg_trades": (conn.agg_trades("BTCUSDT"), rxc.Trade),
                "klines": (conn.klines("BTCUSDT", "1m"), rxc.Kline),
                "depth": (conn.depth("BTCUSDT", 5), rxc.OrderBook),
                "avg_price": (conn.avg_price("BTCUSDT"), rxc.AvgPrice),
                "diff_depth": (conn.diff_depth("BTCUSDT"), rxc.DepthUpdate),
            }
            for name, (feed, model) in checks.items():
                item = await asyncio.wait_for(feed.pipe(ops.first()), 5)
                assert isinstance(item, model), name
                assert item.symbol == "BTCUSDT", name  # normalized from "btcusdt" too
                assert abs(item.received_at - time.time() * 1000) < 60_000, name  # epoch ms

    async def test_bad_input_fails_at_call_time(self, sim: ExchangeSimulator) -> None:
        """Unknown intervals, bad symbols and unsupported feeds raise clear errors at once."""
        async with rxc.Connector(_config(sim)) as conn:
            with pytest.raises(ValueError, match="1m"):
                conn.klines("BTCUSDT", "7m")
            with pytest.raises(ValueError):
                conn.ticker("BTC/USDT")
            with pytest.raises(rxc.NotSupportedError, match="binance"):
                conn.mark_price("BTCUSDT")

    async def test_two_subscribers_share_one_subscription_and_last_dispose_unsubscribes(
        self, sim: ExchangeSimulator
    ) -> None:
        """The simulator sees one SUBSCRIBE for two subscribers and an UNSUBSCRIBE after both."""
        async with rxc.Connector(_config(sim)) as conn:
            seen_a: list[rxc.Ticker] = []
            seen_b: list[rxc.Ticker] = []
            a = conn.ticker("BTCUSDT").subscribe(seen_a.append)
            b = conn.ticker("BTCUSDT").subscribe(seen_b.append)
            await until(lambda: bool(seen_a) and bool(seen_b))
            assert sim.active_streams() == {"btcusdt@ticker"}
            subscribes = [r for r in sim.control_log if r.message.get("method") == "SUBSCRIBE"]
            assert len(subscribes) == 1
            a.dispose()
            await asyncio.sleep(0.2)
            assert sim.active_streams() == {"btcusdt@ticker"}
            b.dispose()
            await until(lambda: not sim.active_streams())
            methods = [r.message.get("method") for r in sim.control_log]
            assert methods == ["SUBSCRIBE", "UNSUBSCRIBE"]
            assert sim.control_log[-1].message.get("params") == ["btcusdt@ticker"]

    async def test_unknown_symbol_fails_only_its_feed(self, sim: ExchangeSimulator) -> None:
        """A rejected subscription errors that feed with SubscriptionError; others go on."""
        async with rxc.Connector(_config(sim)) as conn:
            good: list[rxc.Ticker] = []
            conn.ticker("BTCUSDT").subscribe(good.append)
            with pytest.raises(rxc.SubscriptionError):
                await asyncio.wait_for(conn.ticker("NOPEUSDT").pipe(ops.first()), 5)
            count = len(good)
            await until(lambda: len(good) > count + 2)

    async def test_raising_subscriber_does_not_disturb_another(
        self, sim: ExchangeSimulator
    ) -> None:
        """One subscriber's exception is reported and detaches only that subscriber."""
        async with rxc.Connector(_config(sim)) as conn:
            errors: list[Exception] = []
            conn.errors.subscribe(errors.append)
            healthy: list[rxc.Trade] = []

            def explode(_: rxc.Trade) -> None:
                raise ZeroDivisionError("user bug")

            conn.book_ticker("BTCUSDT").subscribe(explode)
            conn.book_ticker("BTCUSDT").subscribe(healthy.append)
            await until(lambda: len(healthy) > 10)
            # reported once: the raising subscriber was detached at its first exception
            assert len([e for e in errors if isinstance(e, ZeroDivisionError)]) == 1

    async def test_disconnect_stall_and_garbage_are_survived_and_reported(
        self, sim: ExchangeSimulator
    ) -> None:
        """Drops, a stall and garbage frames: the feed keeps delivering; problems reported."""
        async with rxc.Connector(_config(sim)) as conn:
            errors: list[Exception] = []
            states: list[rxc.ConnectionEvent] = []
            conn.errors.subscribe(errors.append)
            conn.connection_state.subscribe(states.append)
            got: list[rxc.BookTicker] = []
            conn.book_ticker("BTCUSDT").subscribe(got.append)
            await until(lambda: len(got) > 5)

            await sim.drop_connections()
            mark = len(got)
            await until(lambda: len(got) > mark + 5)
            assert any(s.state is rxc.ConnectionState.RECONNECTING for s in states)

            sim.stall(2.0)
            await until(lambda: any(s.state is rxc.ConnectionState.STALE for s in states))
            sim.unstall()
            mark = len(got)
            await until(lambda: len(got) > mark + 5)

            sim.send_garbage(3)
            mark = len(got)
            await until(lambda: len(got) > mark + 5)
            assert sum(isinstance(e, rxc.ParseError) for e in errors) == 3  # one per frame

    async def test_feeds_complete_when_the_connector_stops(self, sim: ExchangeSimulator) -> None:
        """Stopping completes every feed and closes every socket."""
        done = asyncio.Event()
        async with rxc.Connector(_config(sim)) as conn:
            conn.ticker("BTCUSDT").subscribe(on_completed=done.set)
            await until(lambda: bool(sim.active_streams()))
        await asyncio.wait_for(done.wait(), 2)
        await until(lambda: not sim.connections)


class TestOrderBookAndTapes:
    async def test_books_equal_true_book_and_tapes_are_exact_across_20_disconnects(
        self, sim: ExchangeSimulator
    ) -> None:
        """Every emitted book equals the simulator's book at its update id, and the trade and
        aggregate-trade tapes equal the simulator's, across 20 forced disconnects and
        injected depth gaps."""
        books: list[rxc.OrderBook] = []
        trades: list[rxc.Trade] = []
        aggs: list[rxc.Trade] = []
        errors: list[Exception] = []
        depth = 10
        async with rxc.Connector(_config(sim)) as conn:
            conn.errors.subscribe(errors.append)
            conn.order_book("BTCUSDT", depth=depth).subscribe(books.append)
            conn.trades("BTCUSDT").subscribe(trades.append)
            conn.agg_trades("BTCUSDT").subscribe(aggs.append)
            await until(lambda: bool(books) and bool(trades) and bool(aggs))
            first_trade, first_agg = trades[0].trade_id, aggs[0].trade_id
            for round_ in range(20):
                if round_ % 5 == 2:
                    sim.drop_updates("BTCUSDT", 2)
                await sim.drop_connections()
                mark = len(books)
                await until(lambda m=mark: len(books) > m + 2, within=10)
            sim.pause()
            last_id = sim.trades("BTCUSDT")[-1].id
            last_agg = sim.agg_trades("BTCUSDT")[-1].id
            await until(lambda: bool(trades) and trades[-1].trade_id >= last_id, within=10)
            await until(lambda: bool(aggs) and aggs[-1].trade_id >= last_agg, within=10)

        for book in books:
            bids, asks = sim.book_at("BTCUSDT", book.update_id, depth=depth)
            assert list(book.bids) == list(bids), book.update_id
            assert list(book.asks) == list(asks), book.update_id
            assert not book.is_crossed

        true_ids = [t.id for t in sim.trades("BTCUSDT") if first_trade <= t.id <= last_id]
        assert [t.trade_id for t in trades] == true_ids
        true_aggs = [a.id for a in sim.agg_trades("BTCUSDT") if first_agg <= a.id <= last_agg]
        assert [a.trade_id for a in aggs] == true_aggs
        assert any(t.backfilled for t in trades)
        by_id = {t.id: t for t in sim.trades("BTCUSDT")}
        for trade in trades[:200]:
            truth = by_id[trade.trade_id]
            assert (trade.price, trade.quantity) == (truth.price, truth.qty)
            assert trade.side == truth.taker_side.lower()
        resyncs = [e for e in errors if isinstance(e, rxc.FeedGapError)]
        assert resyncs  # resyncs are reported, never silent
        assert isinstance(books[-1].bids[0][0], Decimal)


class TestHealthStreams:
    async def test_a_raising_errors_subscriber_does_not_break_the_feed(
        self, sim: ExchangeSimulator
    ) -> None:
        """A subscriber of conn.errors that raises is detached; feeds and other error
        subscribers carry on (the exception never reaches the hub that reported)."""
        async with rxc.Connector(_config(sim)) as conn:
            seen: list[Exception] = []

            def bad(_: Exception) -> None:
                raise RuntimeError("bad errors subscriber")

            conn.errors.subscribe(bad)
            conn.errors.subscribe(seen.append)
            got: list[rxc.BookTicker] = []
            conn.book_ticker("BTCUSDT").subscribe(got.append)
            await until(lambda: len(got) > 3)
            sim.send_garbage(2)
            await until(lambda: len(seen) >= 2)
            mark = len(got)
            await until(lambda: len(got) > mark + 3)
            assert all(isinstance(e, rxc.ParseError) for e in seen)
