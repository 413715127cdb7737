"""End to end: every Binance market feed that reads its frames typed (``wire_market``),
through the real Connector and the simulator on 127.0.0.1 (issue #12).

Per feed: the frames reach the feed's typed ``parse_frame`` as raw bytes, and every
model it emits equals the dict parser's model of the same frame; a frame written with
another key order (which the hub cannot name from its first bytes) takes the decoded
path and still becomes the same model; a hostile frame of the topic (a NaN number, a
bad level) is one ``ParseError`` on ``errors`` and the feed goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import orjson
import pytest

import rxconnector as rxc
from rxconnector.exchanges.binance import wire_market as wm
from rxconnector.exchanges.binance.feeds import BinanceFuturesFeeds, BinanceSpotFeeds
from rxconnector.testing import ExchangeSimulator

FAST = {"reconnect_delay": 0.05, "reconnect_max_delay": 0.2, "reconnect_jitter": 0.0}

#: (venue, connector feed, its arguments, the wire_market factory it uses, a number
#: field of the payload to poison, where it sits)
CASES: list[tuple[str, str, tuple[Any, ...], str, str, str | None]] = [
    ("binance", "ticker", (), "ticker_frame_parser", "c", None),
    ("binance", "mini_ticker", (), "mini_ticker_frame_parser", "c", None),
    ("binance", "klines", ("1m",), "kline_frame_parser", "c", "k"),
    ("binance", "avg_price", (), "avg_price_frame_parser", "w", None),
    ("binance", "depth", (5,), "partial_depth_frame_parser", "bids", None),
    ("binance_futures", "ticker", (), "ticker_frame_parser", "c", None),
    ("binance_futures", "mini_ticker", (), "mini_ticker_frame_parser", "c", None),
    ("binance_futures", "klines", ("1m",), "kline_frame_parser", "c", "k"),
    ("binance_futures", "mark_price", (), "mark_price_frame_parser", "p", None),
    ("binance_futures", "liquidations", (), "force_order_frame_parser", "p", "o"),
    ("binance_futures", "depth", (10,), "futures_partial_depth_frame_parser", "b", None),
]


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(
        seed=7, symbols=("BTCUSDT",), tick_interval=0.01, periodic_ticks=2
    ) as server:
        await server.step(20)
        yield server


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _config(venue: str, sim: ExchangeSimulator) -> rxc.Config:
    make = rxc.Config.binance if venue == "binance" else rxc.Config.binance_futures
    return make(
        rest_url=sim.rest_url, ws_url=sim.ws_url, connection=FAST, clock_sync={"enabled": False}
    )


def _with_number(data: dict[str, Any], field: str, where: str | None, number: str) -> Any:
    """``data`` with ``field`` (in ``where``) set to ``number`` (a side: one level)."""
    value: Any = [[number, "1"]] if field in ("bids", "b") else number
    if where is None:
        return {**data, field: value}
    return {**data, where: {**data[where], field: value}}


def _spec(venue: str, feed: str, args: tuple[Any, ...]) -> Any:
    feeds = BinanceSpotFeeds() if venue == "binance" else BinanceFuturesFeeds()
    return getattr(feeds, feed)("BTCUSDT", *args)


@pytest.mark.parametrize(
    ("venue", "feed", "args", "factory", "field", "where"),
    CASES,
    ids=[f"{venue}-{feed}" for venue, feed, *_ in CASES],
)
async def test_the_feed_reads_typed_and_equals_the_dict_path(
    sim: ExchangeSimulator,
    monkeypatch: pytest.MonkeyPatch,
    venue: str,
    feed: str,
    args: tuple[Any, ...],
    factory: str,
    field: str,
    where: str | None,
) -> None:
    if feed == "depth" and not wm.TYPED_PARTIAL_DEPTH:
        pytest.skip("partial depth reads typed only with the compiled level packer")
    typed_frames: list[tuple[bytes, Any]] = []
    make = getattr(wm, factory)

    def recording(*factory_args: Any) -> Any:
        parse = make(*factory_args)

        def parse_frame(frame: Any, received_at: float) -> Any:
            model = parse(frame, received_at)
            typed_frames.append((frame, model))
            return model

        return parse_frame

    monkeypatch.setattr(wm, factory, recording)
    spec = _spec(venue, feed, args)
    got: list[Any] = []
    errors: list[Exception] = []
    async with rxc.Connector(_config(venue, sim)) as conn:
        conn.errors.subscribe(errors.append)
        getattr(conn, feed)("BTCUSDT", *args).subscribe(got.append)
        await until(lambda: len(typed_frames) >= 3 and len(got) >= 3)
        assert errors == []

        # every typed model is the dict parser's model of the same raw frame
        for frame, model in list(typed_frames):
            assert type(frame) is bytes
            assert model == spec.parse(orjson.loads(frame)["data"], model.received_at)

        # another key order: the decoded path, the dict parser, the same model (a
        # number no simulated frame has, so the model is this frame's)
        data = _with_number(orjson.loads(typed_frames[-1][0])["data"], field, where, "12.3456")
        reordered = b'{"data":' + orjson.dumps(data) + b',"stream":"' + spec.topic.encode()
        reordered += b'"}'
        want = spec.parse(data, 0.0)
        typed_before = len(typed_frames)
        for connection in sim.connections:
            connection.send_text(reordered)
        await until(lambda: any(attrs.evolve(m, received_at=0.0) == want for m in got))
        assert len(typed_frames) == typed_before or all(
            attrs.evolve(m, received_at=0.0) != want for _, m in typed_frames
        )

        # a hostile frame of the topic: one ParseError, the feed goes on
        hostile = orjson.dumps(
            {"stream": spec.topic, "data": _with_number(data, field, where, "NaN")}
        )
        connections = len(sim.connections)
        for connection in sim.connections:
            connection.send_text(hostile)
        await until(lambda: any(isinstance(e, rxc.ParseError) for e in errors))
        count = len(got)
        await until(lambda: len(got) > count + 1)
        assert len(typed_frames) > typed_before  # still typed after all that
    assert [e for e in errors if not isinstance(e, rxc.ParseError)] == []
    assert sum(isinstance(e, rxc.ParseError) for e in errors) == connections
