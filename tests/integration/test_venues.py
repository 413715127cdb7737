"""The same pipelines on every venue, through the real ``rxc.Connector`` and the simulator.

Each test runs on Binance Spot, Binance USD-M, Bybit Spot and Bybit linear, pointed at
one :class:`ExchangeSimulator` (``rest_url``/``ws_url`` overrides), with the same
pipeline code; only what differs between venues by design is in the :class:`Venue`
table: which trade feed exists (USD-M has only aggregate trades), how a trade id looks
(Bybit linear: UUIDs), how an emitted book's update id maps to the simulator's true book
(Bybit's ``u`` is per topic, so it goes through ``sim.bybit.book_at``), and one feed the
venue does not have.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import attrs
import pytest
from reactivex import Observable

import rxconnector as rxc
from rxconnector.streams.orderbook import SEQUENCED_AFTER
from rxconnector.testing.simulator import ExchangeSimulator, Levels
from rxconnector.testing.simulator.bybit_payloads import exec_id

SYMBOL = "BTCUSDT"
#: Fast reconnects: the tests measure seconds, not minutes.
CONNECTION = {"reconnect_delay": 0.05, "reconnect_jitter": 0.0, "healthy_after": 1.0}


#: (trade id, price, quantity, taker side) as the connector should report a tape entry.
TapeRow = tuple[int, Decimal, Decimal, str]


@attrs.frozen
class Venue:
    """What a venue-parameterized test needs to know about one venue."""

    id: str
    config: Callable[..., rxc.Config]
    #: the connector method for "every trade": ``trades`` or ``agg_trades``
    trade_feed: str
    #: the simulator's tape as the connector reports it, oldest first
    tape: Callable[[ExchangeSimulator, str], list[TapeRow]]
    #: the true (bids, asks) at an emitted book's update id, cut at ``depth``
    true_book: Callable[[ExchangeSimulator, rxc.OrderBook, int], tuple[Levels, Levels]]
    #: (connector method, venue name in the error) of a feed the venue lacks
    unsupported: tuple[str, str]


def _spot_tape(sim: ExchangeSimulator, symbol: str) -> list[TapeRow]:
    return [(t.id, t.price, t.qty, t.taker_side.lower()) for t in sim.trades(symbol)]


def _agg_tape(sim: ExchangeSimulator, symbol: str) -> list[TapeRow]:
    return [
        (a.id, a.price, a.qty, "sell" if a.buyer_is_maker else "buy")
        for a in sim.agg_trades(symbol)
    ]


def _linear_tape(sim: ExchangeSimulator, symbol: str) -> list[TapeRow]:
    return [
        (uuid.UUID(exec_id("linear", symbol, t.id)).int, t.price, t.qty, t.taker_side.lower())
        for t in sim.trades(symbol)
    ]


def _binance_book(sim: ExchangeSimulator, book: rxc.OrderBook, depth: int) -> tuple[Levels, Levels]:
    return sim.book_at(book.symbol, book.update_id, depth)


def _bybit_book(sim: ExchangeSimulator, book: rxc.OrderBook, depth: int) -> tuple[Levels, Levels]:
    # order_book(depth <= 50) runs on orderbook.50 (the smallest Bybit depth holding it)
    return sim.bybit.book_at(book.symbol, book.update_id, topic_depth=50, depth=depth)


VENUES = [
    Venue("binance-spot", rxc.Config.binance, "trades", _spot_tape, _binance_book,
          ("mark_price", "binance")),
    Venue("binance-usdm", rxc.Config.binance_futures, "agg_trades", _agg_tape, _binance_book,
          ("trades", "binance_futures")),
    Venue("bybit-spot", lambda **kw: rxc.Config.bybit("spot", **kw), "trades", _spot_tape,
          _bybit_book, ("mark_price", "bybit")),
    Venue("bybit-linear", lambda **kw: rxc.Config.bybit("linear", **kw), "trades",
          _linear_tape, _bybit_book, ("agg_trades", "bybit")),
]  # fmt: skip


@pytest.fixture(params=VENUES, ids=[v.id for v in VENUES])
def venue(request: pytest.FixtureRequest) -> Venue:
    result: Venue = request.param
    return result


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=5, symbols=("BTCUSDT", "ETHUSDT"), tick_interval=0.02, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)  # some history for tickers and REST snapshots
        yield simulator


@asynccontextmanager
async def connector(venue: Venue, sim: ExchangeSimulator) -> AsyncIterator[rxc.Connector]:
    config = venue.config(rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION)
    async with rxc.Connector(config) as conn:
        yield conn


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def trades_of(venue: Venue, conn: rxc.Connector, symbol: str) -> Observable[rxc.Trade]:
    feed: Observable[rxc.Trade] = getattr(conn, venue.trade_feed)(symbol)
    return feed


def assert_tape_run(venue: Venue, sim: ExchangeSimulator, trades: list[rxc.Trade]) -> None:
    """``trades`` are consecutive entries of the simulator's tape: right id, price,
    quantity and taker side; nothing missing, nothing twice."""
    tape = venue.tape(sim, SYMBOL)
    index = {row[0]: i for i, row in enumerate(tape)}
    positions = [index[t.trade_id] for t in trades]
    assert positions == list(range(positions[0], positions[0] + len(trades)))
    for trade, at in zip(trades, positions, strict=True):
        assert (trade.trade_id, trade.price, trade.quantity, trade.side) == tape[at]
        assert trade.symbol == SYMBOL


def assert_true_books(
    venue: Venue, sim: ExchangeSimulator, books: list[rxc.OrderBook], depth: int
) -> None:
    """Every emitted book equals the simulator's book at the emitted update id."""
    for book in books:
        bids, asks = venue.true_book(sim, book, depth)
        assert (list(book.bids), list(book.asks)) == (bids, asks), book.update_id
        assert len(book.bids) == len(book.asks) == depth


class TestDelivery:
    """Tickers, trades and order books deliver what the simulator's market did."""

    async def test_ticker_delivers(self, venue: Venue, sim: ExchangeSimulator) -> None:
        async with connector(venue, sim) as conn:
            got: list[rxc.Ticker] = []
            sub = conn.ticker(SYMBOL).subscribe(got.append)
            await until(lambda: len(got) >= 3)
            sub.dispose()
        prices = {t.price for t in sim.trades(SYMBOL)}
        for ticker in got:
            assert ticker.symbol == SYMBOL
            assert ticker.last in prices
            assert ticker.low <= ticker.last <= ticker.high
            assert ticker.volume > 0 and ticker.event_time > 0

    async def test_trades_deliver_the_tape(self, venue: Venue, sim: ExchangeSimulator) -> None:
        async with connector(venue, sim) as conn:
            got: list[rxc.Trade] = []
            sub = trades_of(venue, conn, SYMBOL).subscribe(got.append)
            await until(lambda: len(got) >= 30)
            sub.dispose()
        assert_tape_run(venue, sim, got)

    async def test_order_book_equals_the_true_book(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with connector(venue, sim) as conn:
            errors: list[Exception] = []
            conn.errors.subscribe(errors.append)
            books: list[rxc.OrderBook] = []
            sub = conn.order_book(SYMBOL, depth=10).subscribe(books.append)
            await until(lambda: len(books) >= 25)
            sub.dispose()
        assert_true_books(venue, sim, books, 10)
        ids = [b.update_id for b in books]
        assert ids == sorted(set(ids))  # conflated maybe, never backwards or repeated
        assert errors == []


class TestFaults:
    """Disconnects and garbage are survived; missing feeds are refused by name."""

    async def test_forced_disconnect_reconnects_resubscribes_and_continues(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with connector(venue, sim) as conn:
            states: list[rxc.ConnectionEvent] = []
            conn.connection_state.subscribe(states.append)
            trades: list[rxc.Trade] = []
            books: list[rxc.OrderBook] = []
            subs = [
                trades_of(venue, conn, SYMBOL).subscribe(trades.append),
                conn.order_book(SYMBOL, depth=10).subscribe(books.append),
            ]
            await until(lambda: len(trades) >= 5 and len(books) >= 5)
            topics = sim.active_streams()
            opened = sim.connection_count_total
            trades_before, books_before = len(trades), len(books)

            sim.pause()  # the market moves on while the client is away: trades to backfill
            assert await sim.drop_connections() >= 1
            await sim.step(10)
            sim.resume()

            await until(
                lambda: (
                    sim.connection_count_total > opened
                    and sim.active_streams() == topics
                    and len(trades) >= trades_before + 20
                    and len(books) >= books_before + 10
                )
            )
            for sub in subs:
                sub.dispose()
        assert any(e.state is rxc.ConnectionState.RECONNECTING for e in states)
        assert any(t.backfilled for t in trades)  # the outage's trades came over REST
        assert_tape_run(venue, sim, trades)  # ... in order, none missing, none twice
        assert_true_books(venue, sim, books, 10)

    async def test_a_stall_ends_with_correct_books_again(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with connector(venue, sim) as conn:
            books: list[rxc.OrderBook] = []
            sub = conn.order_book(SYMBOL, depth=10).subscribe(books.append)
            await until(lambda: len(books) >= 5)

            sim.stall(0.3)  # market data is lost meanwhile (Bybit: a snapshot follows)

            await asyncio.sleep(0.3)
            seen = len(books)
            await until(lambda: len(books) >= seen + 10)
            sub.dispose()
        assert_true_books(venue, sim, books, 10)

    async def test_lost_depth_updates_never_show_a_wrong_book(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with connector(venue, sim) as conn:
            errors: list[Exception] = []
            conn.errors.subscribe(errors.append)
            books: list[rxc.OrderBook] = []
            sub = conn.order_book(SYMBOL, depth=10).subscribe(books.append)
            # Bybit documents no u continuity for orderbook.{depth}: the book relies on
            # it only once it has seen SEQUENCED_AFTER deltas in a row step u by 1 (a
            # loss before that goes unnoticed, see BybitDepthSync). Binance: no wait needed.
            await until(lambda: len(books) >= SEQUENCED_AFTER + 5)

            sim.drop_updates(SYMBOL, 5)  # five diff events never reach the client

            seen = len(books)
            try:
                await until(lambda: len(books) >= seen + 25, within=2.0)
            finally:
                sub.dispose()
        assert_true_books(venue, sim, books, 10)
        assert any(isinstance(e, rxc.FeedGapError) for e in errors)  # the gap was noticed

    async def test_garbage_is_reported_and_delivery_continues(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        async with connector(venue, sim) as conn:
            errors: list[Exception] = []
            conn.errors.subscribe(errors.append)
            got: list[rxc.Trade] = []
            sub = trades_of(venue, conn, SYMBOL).subscribe(got.append)
            await until(lambda: len(got) >= 3)
            opened = sim.connection_count_total

            sim.send_garbage(6)

            await until(lambda: sum(isinstance(e, rxc.ParseError) for e in errors) >= 3)
            seen = len(got)
            await until(lambda: len(got) >= seen + 10)
            sub.dispose()
            assert sim.connection_count_total == opened  # garbage is no reason to reconnect
        assert_tape_run(venue, sim, got)

    async def test_unsupported_feed_is_refused_by_name(
        self, venue: Venue, sim: ExchangeSimulator
    ) -> None:
        method, name = venue.unsupported
        async with connector(venue, sim) as conn:
            feed: Callable[[str], Any] = getattr(conn, method)
            with pytest.raises(rxc.NotSupportedError) as info:
                feed(SYMBOL)
        assert info.value.venue == name
        assert method in str(info.value) and name in str(info.value)
