"""Bybit's typed feeds end to end: the real ``rxc.Connector`` against the simulator.

Each test records every raw frame the connector receives (``on_frame``), collects what
the feeds emit, and parses the recorded frames again with today's dict parsers: the
models must be the same, the topic must have been taken the typed way (its frames handed
over undecoded), and nothing may land on ``errors``. Hostile frames injected on a typed
topic are reported as ``ParseError`` and the feed goes on.

``allLiquidation`` is not served by the simulator; its typed parser is checked through
the connector with a hub that plays recorded frames (``hub_factory``), the replay's seam.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from reactivex import Observable
from reactivex.subject import Subject

import rxconnector as rxc
from rxconnector.errors import ParseError
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.streams.messages import StreamRestart
from rxconnector.testing.simulator import ExchangeSimulator

SYMBOL = "BTCUSDT"
CONNECTION = {"reconnect_delay": 0.05, "reconnect_jitter": 0.0, "healthy_after": 1.0}

Frames = list[tuple[float, Any]]


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=7, symbols=("BTCUSDT", "ETHUSDT"), tick_interval=0.02, periodic_ticks=2
    ) as simulator:
        await simulator.step(20)
        yield simulator


@asynccontextmanager
async def connector(
    sim: ExchangeSimulator, category: Any
) -> AsyncIterator[tuple[rxc.Connector, Frames, list[Exception]]]:
    """A connector on ``sim`` with every raw frame recorded and its errors collected."""
    frames: Frames = []

    def record(_conn_id: str, received_at: float, data: str | bytes) -> None:
        frames.append((received_at, data))

    config = rxc.Config.bybit(
        category, rest_url=sim.rest_url, ws_url=sim.ws_url, connection=CONNECTION
    )
    errors: list[Exception] = []
    async with rxc.Connector(config, on_frame=record) as conn:
        conn.errors.subscribe(errors.append)
        yield conn, frames, errors


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def of_topic(frames: Frames, topic: str) -> Frames:
    head = b'{"topic":"' + topic.encode() + b'"'
    return [
        (at, data) for at, data in frames if isinstance(data, bytes) and data[: len(head)] == head
    ]


def raw_topics(conn: rxc.Connector) -> set[bytes]:
    """The frame heads the connector's hubs hand over undecoded (the typed topics)."""
    return {head for hub in conn._hubs.values() for head in hub._raw_topics}


def replayed(frames: Frames, parse: Callable[[Any, float], Any], many: bool) -> list[Any]:
    """What today's dict parser makes of ``frames`` (decoded as the hub would)."""
    out: list[Any] = []
    for received_at, data in frames:
        result = parse(orjson.loads(data), received_at)
        out.extend(result if many else [result])
    return out


@pytest.mark.parametrize("category", ["spot", "linear"])
async def test_trades_are_typed_and_equal_the_dict_parsers(
    sim: ExchangeSimulator, category: str
) -> None:
    async with connector(sim, category) as (conn, frames, errors):
        got: list[rxc.Trade] = []
        sub = conn.trades(SYMBOL).subscribe(got.append)
        await until(lambda: len(got) >= 40)
        heads = raw_topics(conn)
        sub.dispose()
    assert b'{"topic":"publicTrade.BTCUSDT"' in heads
    want = replayed(of_topic(frames, "publicTrade.BTCUSDT"), p.parse_trades, many=True)
    live = [t for t in got if not t.backfilled]
    assert live == want[: len(live)] and len(live) >= 40
    assert errors == []


@pytest.mark.parametrize(("category", "interval"), [("spot", "1m"), ("linear", "1m")])
async def test_klines_are_typed_and_equal_the_dict_parsers(
    sim: ExchangeSimulator, category: str, interval: str
) -> None:
    async with connector(sim, category) as (conn, frames, errors):
        got: list[rxc.Kline] = []
        sub = conn.klines(SYMBOL, interval).subscribe(got.append)
        await until(lambda: len(got) >= 5)
        heads = raw_topics(conn)
        sub.dispose()
    assert b'{"topic":"kline.1.BTCUSDT"' in heads
    want = replayed(of_topic(frames, "kline.1.BTCUSDT"), p.kline_parser(SYMBOL), many=True)
    assert got == want[: len(got)]
    assert all(k.interval == "1m" and k.symbol == SYMBOL for k in got)
    assert errors == []


async def test_ticker_mini_ticker_and_mark_price_together_on_one_linear_symbol(
    sim: ExchangeSimulator,
) -> None:
    """The three feeds of ``tickers.BTCUSDT`` share the topic, its merger and its raw
    frames: each one equals the dict parsers run on the same frames, deltas included."""
    async with connector(sim, "linear") as (conn, frames, errors):
        tickers: list[rxc.Ticker] = []
        minis: list[rxc.MiniTicker] = []
        marks: list[rxc.MarkPrice] = []
        subs = [
            conn.ticker(SYMBOL).subscribe(tickers.append),
            conn.mini_ticker(SYMBOL).subscribe(minis.append),
            conn.mark_price(SYMBOL).subscribe(marks.append),
        ]
        await until(lambda: len(tickers) >= 12 and len(marks) >= 3)
        heads = raw_topics(conn)
        for sub in subs:
            sub.dispose()
    assert b'{"topic":"tickers.BTCUSDT"' in heads
    topic_frames = of_topic(frames, "tickers.BTCUSDT")
    kinds = [orjson.loads(data).get("type") for _at, data in topic_frames]
    assert kinds[0] == "snapshot" and "delta" in kinds
    merger = p.BybitTickerMerger()
    want_tickers = replayed(topic_frames, p.ticker_parser(merger), many=False)
    want_minis = replayed(topic_frames, p.mini_ticker_parser(merger), many=False)
    want_marks = replayed(topic_frames, p.mark_price_parser(merger), many=True)
    assert tickers == want_tickers[: len(tickers)]
    assert minis == want_minis[: len(minis)] and len(minis) >= 12
    assert marks == want_marks[: len(marks)]
    assert errors == []


async def test_spot_ticker_and_mini_ticker(sim: ExchangeSimulator) -> None:
    async with connector(sim, "spot") as (conn, frames, errors):
        tickers: list[rxc.Ticker] = []
        minis: list[rxc.MiniTicker] = []
        subs = [
            conn.ticker(SYMBOL).subscribe(tickers.append),
            conn.mini_ticker(SYMBOL).subscribe(minis.append),
        ]
        await until(lambda: len(tickers) >= 5 and len(minis) >= 5)
        heads = raw_topics(conn)
        for sub in subs:
            sub.dispose()
    assert b'{"topic":"tickers.BTCUSDT"' in heads
    topic_frames = of_topic(frames, "tickers.BTCUSDT")
    merger = p.BybitTickerMerger()
    assert tickers == replayed(topic_frames, p.ticker_parser(merger), False)[: len(tickers)]
    assert minis == replayed(topic_frames, p.mini_ticker_parser(merger), False)[: len(minis)]
    assert all(t.bid is None for t in tickers)  # Spot tickers have no best bid/ask
    assert errors == []


#: Refused before they reach the merger (a hostile frame the merger takes - a snapshot
#: of NaNs, say - poisons the topic's state until the next snapshot, on either path).
HOSTILE_TICKERS = [
    b'{"topic":"tickers.BTCUSDT","ts":1,"data":{"symbol":"BTCUSDT","lastPrice":1e999}}',
    b'{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"topic":"tickers.BTCUSDT","topic":"tickers.ETHUSDT","ts":1,"data":{}}',
    b'{"topic":"tickers.BTCUSDT","ts":1,"data":{"symbol":"\xff\xfe"}}',
    b'{"topic":"tickers.BTCUSDT"' + b" " * 100_000,
]
HOSTILE_TRADES = [
    b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy",'
    b'"v":"1e999","p":"1","i":"1"}]}',
    b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Up",'
    b'"v":"1","p":"1","i":"1"}]}',
    b'{"topic":"publicTrade.BTCUSDT","ts":"x","data":"' + b"x" * 100_000 + b'"}',
]


async def test_hostile_frames_on_typed_topics_never_kill_the_feeds(
    sim: ExchangeSimulator,
) -> None:
    """Hostile frames that start with a typed topic's head (so the hub hands them to
    the typed parsers undecoded): one bounded ParseError each, the feeds carry on."""
    async with connector(sim, "linear") as (conn, _frames, errors):
        tickers: list[rxc.Ticker] = []
        marks: list[rxc.MarkPrice] = []
        trades: list[rxc.Trade] = []
        subs = [
            conn.ticker(SYMBOL).subscribe(tickers.append),
            conn.mark_price(SYMBOL).subscribe(marks.append),
            conn.trades(SYMBOL).subscribe(trades.append),
        ]
        await until(lambda: len(tickers) >= 3 and len(trades) >= 3)
        for conn_ in sim.connections:
            for hostile in HOSTILE_TICKERS + HOSTILE_TRADES:
                conn_.send_text(hostile)
        await until(lambda: sum(isinstance(e, ParseError) for e in errors) >= 10)
        seen = len(tickers), len(trades)
        await until(lambda: len(tickers) > seen[0] + 3 and len(trades) > seen[1] + 3)
        for sub in subs:
            sub.dispose()
    parse_errors = [e for e in errors if isinstance(e, ParseError)]
    assert all(len(e.excerpt) <= ParseError.MAX_EXCERPT for e in parse_errors)
    assert all(len(str(e)) < 2000 for e in parse_errors)
    assert not [e for e in errors if not isinstance(e, ParseError)]


class _PlayedHub:
    """A hub that plays given frames to a topic's subscribers (the replay's seam)."""

    def __init__(self) -> None:
        self.subject: Subject[Any] = Subject()

    def feed(self, topic: str) -> Observable[Any]:
        return self.subject

    def play(self, received_at: float, frame: bytes | dict[str, Any] | StreamRestart) -> None:
        self.subject.on_next(frame if isinstance(frame, StreamRestart) else (received_at, frame))


async def test_liquidations_through_the_connector(sim: ExchangeSimulator) -> None:
    """The simulator has no allLiquidation topic: raw frames (as the hub hands a typed
    topic's frames over) are played into the connector's liquidations feed."""
    hub = _PlayedHub()
    config = rxc.Config.bybit("linear", rest_url=sim.rest_url, ws_url=sim.ws_url)
    message = {
        "topic": "allLiquidation.ROSEUSDT",
        "type": "snapshot",
        "ts": 1739502303204,
        "data": [
            {"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"},
            {"T": 1739502302930, "s": "ROSEUSDT", "S": "Buy", "v": "1", "p": "0.045"},
        ],
    }
    async with rxc.Connector(config, hub_factory=lambda _topic, _live: hub) as conn:  # type: ignore[arg-type,return-value]
        errors: list[Exception] = []
        conn.errors.subscribe(errors.append)
        got: list[rxc.Liquidation] = []
        conn.liquidations("ROSEUSDT").subscribe(got.append)
        raw = orjson.dumps(message)
        hub.play(1.0, raw)
        hub.play(2.0, raw.replace(b'"20000"', b'"NaN"'))  # refused, reported
        hub.play(3.0, message)  # a decoded frame still goes through the dict parser
    assert got == [*p.parse_liquidations(message, 1.0), *p.parse_liquidations(message, 3.0)]
    assert [type(e) for e in errors] == [ParseError]
