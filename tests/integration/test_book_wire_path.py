"""The maintained order book's wire path end to end: Binance Spot and USD-M depth frames
from the simulator (a real aiohttp server on 127.0.0.1) reach the book undecoded, are
parsed in one pass into packed events, and every emitted book equals the simulator's
true book at its update id - also with ``diff_depth`` on the same topic, hostile frames
on the topic and lost events (issue #12).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

import rxconnector as rxc
from rxconnector.exchanges.binance.book_sync import BinanceFuturesSync, BinanceSpotSync
from rxconnector.exchanges.depth_events import PackedDepthUpdate
from rxconnector.testing import ExchangeSimulator

SYMBOL = "BTCUSDT"
TOPIC = "btcusdt@depth@100ms"
DEPTH = 10
CONNECTION = {"reconnect_delay": 0.05, "reconnect_jitter": 0.0, "healthy_after": 1.0}
VENUES: list[tuple[str, Callable[..., rxc.Config], type[BinanceSpotSync]]] = [
    ("binance-spot", rxc.Config.binance, BinanceSpotSync),
    ("binance-usdm", rxc.Config.binance_futures, BinanceFuturesSync),
]


@pytest.fixture(params=VENUES, ids=[v[0] for v in VENUES])
def venue(request: pytest.FixtureRequest) -> tuple[str, Callable[..., rxc.Config], type[Any]]:
    result: tuple[str, Callable[..., rxc.Config], type[Any]] = request.param
    return result


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=11, symbols=(SYMBOL,), tick_interval=0.01, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)
        yield simulator


@pytest.fixture
def seen_events(
    venue: tuple[str, Callable[..., rxc.Config], type[Any]], monkeypatch: pytest.MonkeyPatch
) -> list[type]:
    """The types of the events the venue's sync rule is fed."""
    rule = venue[2]
    seen: list[type] = []
    original = rule.on_update

    def on_update(self: Any, update: Any) -> Any:
        seen.append(type(update))
        return original(self, update)

    monkeypatch.setattr(rule, "on_update", on_update)
    return seen


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def assert_true_books(sim: ExchangeSimulator, books: list[rxc.OrderBook]) -> None:
    assert books
    for book in books:
        bids, asks = sim.book_at(book.symbol, book.update_id, DEPTH)
        assert (list(book.bids), list(book.asks)) == (bids, asks), book.update_id
        assert len(book.bids) == len(book.asks) == DEPTH


def hostile(data: dict[str, Any]) -> str:
    """A depth frame written exactly as Binance writes them (so the hub hands it to the
    book undecoded) around a hostile payload."""
    return '{"stream":"%s","data":%s}' % (TOPIC, orjson.dumps(data).decode())  # noqa: UP031


GOOD = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": 5, "u": 6, "b": [], "a": []}
HOSTILE = [
    {**GOOD, "b": [["NaN", "1"]]},
    {**GOOD, "a": [["1e999999", "1"]]},
    {**GOOD, "U": "5"},
    {**GOOD, "b": {"12": 1}},
    {k: v for k, v in GOOD.items() if k != "u"},
]


class TestWirePath:
    async def test_books_equal_the_true_book_and_take_the_packed_path(
        self,
        venue: tuple[str, Callable[..., rxc.Config], type[Any]],
        sim: ExchangeSimulator,
        seen_events: list[type],
    ) -> None:
        """``diff_depth`` on the same topic still gets ``DepthUpdate`` with Decimal
        levels; the book's rule is fed packed events only."""
        config = venue[1](rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION)
        books: list[rxc.OrderBook] = []
        diffs: list[rxc.DepthUpdate] = []
        errors: list[Exception] = []
        async with rxc.Connector(config) as conn:
            conn.errors.subscribe(errors.append)
            conn.order_book(SYMBOL, depth=DEPTH).subscribe(books.append)
            conn.diff_depth(SYMBOL).subscribe(diffs.append)
            await until(lambda: len(books) >= 40 and len(diffs) >= 20)
        assert errors == []
        assert_true_books(sim, books)
        assert all(type(d) is rxc.DepthUpdate for d in diffs)
        assert any(d.bids or d.asks for d in diffs)
        # the first event may be one the hub decoded before the topic was known; the
        # stream itself takes the wire path
        assert seen_events.count(PackedDepthUpdate) >= 40
        assert set(seen_events) <= {PackedDepthUpdate, rxc.DepthUpdate}

    async def test_diff_depth_subscribed_first_leaves_the_book_on_the_wire_path(
        self,
        venue: tuple[str, Callable[..., rxc.Config], type[Any]],
        sim: ExchangeSimulator,
        seen_events: list[type],
    ) -> None:
        """Whichever feed of the topic comes first, the topic is handed over undecoded
        and each feed reads the frames with its own parser."""
        config = venue[1](rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION)
        books: list[rxc.OrderBook] = []
        diffs: list[rxc.DepthUpdate] = []
        errors: list[Exception] = []
        async with rxc.Connector(config) as conn:
            conn.errors.subscribe(errors.append)
            conn.diff_depth(SYMBOL).subscribe(diffs.append)
            await until(lambda: len(diffs) >= 3)
            conn.order_book(SYMBOL, depth=DEPTH).subscribe(books.append)
            await until(lambda: len(books) >= 30)
        assert errors == []
        assert_true_books(sim, books)
        assert all(type(d) is rxc.DepthUpdate for d in diffs)
        assert seen_events.count(PackedDepthUpdate) >= 30

    async def test_hostile_frames_are_reported_and_lost_events_resync(
        self,
        venue: tuple[str, Callable[..., rxc.Config], type[Any]],
        sim: ExchangeSimulator,
        seen_events: list[type],
    ) -> None:
        """Each hostile depth frame is one ParseError on ``errors``; the feed goes on, a
        frame moving the id absurdly far and lost events resync the book (reported),
        and no emitted book is ever wrong."""
        config = venue[1](rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION)
        books: list[rxc.OrderBook] = []
        errors: list[Exception] = []
        async with rxc.Connector(config) as conn:
            conn.errors.subscribe(errors.append)
            conn.order_book(SYMBOL, depth=DEPTH).subscribe(books.append)
            await until(lambda: len(books) >= 10)
            for data in HOSTILE:
                for connection in sim.connections:
                    connection.send_text(hostile(data))
            await until(lambda: sum(isinstance(e, rxc.ParseError) for e in errors) >= 5)
            mark = len(books)
            await until(lambda: len(books) >= mark + 10)

            last = books[-1].update_id
            far = {**GOOD, "U": last + 1, "u": last + 10**12, "pu": last}
            for connection in sim.connections:
                connection.send_text(hostile(far))
            await until(lambda: any("more than" in str(e) for e in errors))
            mark = len(books)
            await until(lambda: len(books) >= mark + 10)

            sim.drop_updates(SYMBOL, 3)
            gaps = sum(isinstance(e, rxc.FeedGapError) for e in errors)
            await until(lambda: sum(isinstance(e, rxc.FeedGapError) for e in errors) > gaps)
            mark = len(books)
            await until(lambda: len(books) >= mark + 10)
        parse_errors = [e for e in errors if isinstance(e, rxc.ParseError)]
        assert len(parse_errors) == len(HOSTILE)
        assert all(len(e.excerpt) <= rxc.ParseError.MAX_EXCERPT for e in parse_errors)
        assert_true_books(sim, books)
        assert seen_events.count(PackedDepthUpdate) >= 30
