"""Bybit's order-book feeds on the typed wire path, end to end: the real ``Connector``
against the simulator's Bybit WebSocket (127.0.0.1), ``order_book``, ``depth``,
``book_ticker`` and ``diff_depth`` of one symbol at once (issue #12).

Every book shown must be the simulator's true book at its ``u``; the frames must really
take the typed readers (counted); hostile frames written with the topic's own head (so
the hub hands them to the typed readers undecoded) must each be one ``ParseError`` on
``errors`` with the socket kept, and a forged delta far ahead must resync the maintained
book, which comes back right from the next snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

import rxconnector as rxc
from rxconnector.exchanges.bybit import wire_book
from rxconnector.exchanges.bybit.book_sync import SEQUENCED_AFTER
from rxconnector.testing.simulator import ExchangeSimulator

SYMBOL = "BTCUSDT"
BOOK_TOPIC = f"orderbook.50.{SYMBOL}"
CONNECTION = {"reconnect_delay": 0.05, "reconnect_jitter": 0.0, "healthy_after": 1.0}
READERS = (
    "book_frame_parser",
    "merged_book_frame_parser",
    "book_ticker_frame_parser",
    "depth_update_frame_parser",
)


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=5, symbols=(SYMBOL, "ETHUSDT"), tick_interval=0.02, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)
        yield simulator


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Frames read by each typed reader (the feeds build them through the module).

    The feeds use them with the compiled core only (the measured choice,
    ``wire_book.TYPED_IS_FASTER``); forced here, so that a pure-Python run
    (``RXC_PURE_PYTHON=1``) checks the typed path on that core too.
    """
    monkeypatch.setattr(wire_book, "TYPED_IS_FASTER", True)
    counts = dict.fromkeys(READERS, 0)

    def counting(name: str) -> Callable[..., Any]:
        build = getattr(wire_book, name)

        def builder(*args: Any) -> Callable[[Any, float], Any]:
            read = build(*args)

            def reader(frame: Any, received_at: float) -> Any:
                counts[name] += 1
                return read(frame, received_at)

            return reader

        return builder

    for name in READERS:
        monkeypatch.setattr(wire_book, name, counting(name))
    return counts


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def hostile_frames() -> list[bytes]:
    head = b'{"topic":"' + BOOK_TOPIC.encode() + b'"'
    return [
        head + b',"type":"delta"',  # truncated
        head + b',"type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[]}}',  # no u/seq
        head + b',"type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["1","NaN"]],"a":[],'
        b'"u":5,"seq":5}}',
        head + b',"type":"delta","ts":1e999,"data":{"s":"BTCUSDT","b":[],"a":[],"u":5,"seq":5}}',
        head + b',"type":"delta","ts":1,"data":{"s":"BTCUSDT","b":"x","a":[],"u":5,"seq":5}}',
        head + b',"type":"delta","ts":1,"data":{"s":"BTC\xff\xfe","b":[],"a":[],"u":5,"seq":5}}',
        head + b',"type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":"5","seq":5}}',
        head
        + b',"type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["'
        + b"9" * 100_000
        + b'","1"]],"a":[],"u":5,"seq":5}}',
    ]


def forged_delta(u: int) -> bytes:
    """A well-formed delta changing nothing, with ``u`` (and ``seq``) far ahead of the
    stream: a gap for a topic known to number ``u`` + 1."""
    data = {"s": SYMBOL, "b": [], "a": [], "u": u, "seq": u}
    return orjson.dumps({"topic": BOOK_TOPIC, "type": "delta", "ts": 1, "data": data})


def send(sim: ExchangeSimulator, frames: list[bytes]) -> None:
    for conn in sim.bybit.connections:
        for frame in frames:
            conn.send_text(frame)


def apply(side: dict[Decimal, Decimal], levels: Any) -> None:
    for price, qty in levels:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)


async def test_four_book_feeds_of_one_symbol_are_right_and_survive_hostile_frames(
    sim: ExchangeSimulator, counted: dict[str, int]
) -> None:
    config = rxc.Config.bybit(
        "spot", rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION
    )
    books: list[rxc.OrderBook] = []
    depths: list[rxc.OrderBook] = []
    tickers: list[rxc.BookTicker] = []
    diffs: list[rxc.DepthUpdate] = []
    errors: list[Exception] = []
    forged = 10**12
    async with rxc.Connector(config) as conn:
        conn.errors.subscribe(errors.append)
        subs = [
            conn.order_book(SYMBOL, depth=10).subscribe(books.append),
            conn.depth(SYMBOL, 20).subscribe(depths.append),
            conn.book_ticker(SYMBOL).subscribe(tickers.append),
            conn.diff_depth(SYMBOL).subscribe(diffs.append),
        ]
        await until(lambda: len(books) >= SEQUENCED_AFTER + 5 and len(tickers) >= 5)
        opened = sim.connection_count_total

        hostile = hostile_frames()
        send(sim, hostile)
        await until(lambda: sum(isinstance(e, rxc.ParseError) for e in errors) >= len(hostile))
        seen = len(books)
        await until(lambda: len(books) >= seen + 10)
        assert not any(isinstance(e, rxc.FeedGapError) for e in errors)  # nothing was lost

        send(sim, [forged_delta(forged)])
        await until(lambda: any(isinstance(e, rxc.FeedGapError) for e in errors))
        seen = len(books)
        await until(lambda: len(books) >= seen + 10)  # back from the next snapshot
        for sub in subs:
            sub.dispose()
        assert sim.connection_count_total == opened  # no frame was a reason to reconnect

    assert all(counted[name] > 0 for name in READERS), counted
    parse_errors = [e for e in errors if isinstance(e, rxc.ParseError)]
    assert all(len(str(e)) < 700 for e in parse_errors)
    check_books(sim, books, depths, tickers, forged)
    check_diffs(sim, diffs)


def check_books(
    sim: ExchangeSimulator,
    books: list[rxc.OrderBook],
    depths: list[rxc.OrderBook],
    tickers: list[rxc.BookTicker],
    forged: int,
) -> None:
    assert all(book.update_id != forged for book in books)  # never shown
    for book in books:
        bids, asks = sim.bybit.book_at(SYMBOL, book.update_id, topic_depth=50, depth=10)
        assert (list(book.bids), list(book.asks)) == (bids, asks), book.update_id
    for book in depths:
        if book.update_id == forged:  # depth() is the venue's book as sent: it merged it
            continue
        bids, asks = sim.bybit.book_at(SYMBOL, book.update_id, topic_depth=50, depth=20)
        assert (list(book.bids), list(book.asks)) == (bids, asks), book.update_id
    for ticker in tickers:
        bids, asks = sim.bybit.book_at(SYMBOL, ticker.update_id, topic_depth=1, depth=1)
        assert ((ticker.bid, ticker.bid_qty), (ticker.ask, ticker.ask_qty)) == (bids[0], asks[0])


def check_diffs(sim: ExchangeSimulator, diffs: list[rxc.DepthUpdate]) -> None:
    """``diff_depth`` (``orderbook.200``) replayed onto a book from its snapshot gives
    the true window at every ``u``."""
    first = next(i for i, d in enumerate(diffs) if d.is_snapshot)
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for update in diffs[first:]:
        if update.is_snapshot:
            bids.clear()
            asks.clear()
        apply(bids, update.bids)
        apply(asks, update.asks)
        want = sim.bybit.book_at(SYMBOL, update.final_update_id, topic_depth=200)
        got = (sorted(bids.items(), reverse=True), sorted(asks.items()))
        assert got == (list(want[0]), list(want[1])), update.final_update_id
    assert len(diffs) - first >= 10
