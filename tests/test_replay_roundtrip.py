"""Record on the exchange simulator, replay the file: the replayed model streams equal
the live ones (values, order, event and receive times), through disconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from reactivex import operators as ops

import rxconnector.replay as rxreplay
from rxconnector.config import Config
from rxconnector.errors import FeedGapError, RateLimitError, RecordingError
from rxconnector.models import OrderBook, Ticker, Trade
from rxconnector.recording import Kind
from rxconnector.replay import RecordingConnector
from rxconnector.replay.reader import RecordingReader
from rxconnector.testing.simulator import ExchangeSimulator

SYM = "BTCUSDT"


def _config(sim: ExchangeSimulator) -> Config:
    return Config.binance(
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        connection={"reconnect_delay": 0.05, "reconnect_max_delay": 0.2, "reconnect_jitter": 0.0},
        clock_sync={"samples": 1},
    )


class _Collected:
    """Everything a pipeline saw on ticker, trades and a depth-10 book."""

    def __init__(self) -> None:
        self.tickers: list[Ticker] = []
        self.trades: list[Trade] = []
        self.books: list[OrderBook] = []
        self.errors: list[Exception] = []
        self.completed: list[str] = []

    def attach(self, conn: Any) -> None:
        conn.errors.subscribe(self.errors.append)
        conn.ticker(SYM).subscribe(self.tickers.append, self.errors.append)
        conn.trades(SYM).subscribe(self.trades.append, self.errors.append)
        conn.order_book(SYM, depth=10).subscribe(
            self.books.append, self.errors.append, lambda: self.completed.append("book")
        )


class TestRoundTrip:
    """A recording replays into exactly the models the live connector produced."""

    async def test_models_equal_live_across_a_disconnect(self, tmp_path: Path) -> None:
        path = tmp_path / "live.jsonl.gz"
        live = _Collected()
        async with (
            ExchangeSimulator(seed=11, symbols=(SYM,), tick_interval=0.02, periodic_ticks=5) as sim,
            RecordingConnector(
                _config(sim), path, feeds=["ticker", "trades", "order_book:10"], symbols=[SYM]
            ) as conn,
        ):
            live.attach(conn)
            await asyncio.sleep(0.7)
            await sim.drop_connections()
            await asyncio.sleep(0.9)
        assert len(live.tickers) >= 5
        assert len(live.trades) >= 20
        assert len(live.books) >= 20
        assert any(t.backfilled for t in live.trades) or _gap_free(live.trades)
        assert live.completed == ["book"]

        replay = rxreplay.open(path)
        replayed = _Collected()
        replayed.attach(replay)
        stats = replay.run()

        assert replayed.tickers == live.tickers
        assert replayed.trades == live.trades
        assert replayed.books == live.books
        assert replayed.completed == ["book"]
        assert stats.frames > 0
        # the disconnect is in the recording: restart markers, and a second snapshot
        kinds = _kinds(path)
        assert Kind.RESTART in kinds
        assert _snapshot_requests(path) >= 2
        # the resync the live book reported is reported again by the replay
        assert _resyncs(replayed.errors) == _resyncs(live.errors) >= 1

    async def test_a_failed_snapshot_and_its_retry_replay_the_same(self, tmp_path: Path) -> None:
        path = tmp_path / "failed.jsonl.gz"
        books: list[OrderBook] = []
        errors: list[Exception] = []
        async with (
            ExchangeSimulator(seed=8, symbols=(SYM,), tick_interval=0.02, periodic_ticks=5) as sim,
            RecordingConnector(_config(sim), path, feeds=["order_book:5"], symbols=[SYM]) as conn,
        ):
            sim.fail_rest(status=429, count=1, retry_after=1)  # the book retries, not REST
            conn.errors.subscribe(errors.append)
            conn.order_book(SYM, depth=5).subscribe(books.append)
            await asyncio.sleep(2.0)
        assert len(books) >= 5, [repr(e) for e in errors]
        assert any(isinstance(e, RateLimitError) for e in errors)
        with RecordingReader(path) as reader:
            assert any(e[0] == Kind.REST_ERROR for e in reader)

        replay = rxreplay.open(path)
        replayed: list[OrderBook] = []
        replay_errors: list[Exception] = []
        replay.errors.subscribe(replay_errors.append)
        replay.order_book(SYM, depth=5).subscribe(replayed.append)
        replay.run()
        assert replayed == books
        assert [str(e) for e in replay_errors] == [str(e) for e in errors]

    async def test_windows_equal_live(self, tmp_path: Path) -> None:
        """buffer_with_time windows: trades are produced mid-window (the simulator is
        stepped by hand), so live timer jitter cannot move a trade across a boundary."""
        path = tmp_path / "windows.jsonl.gz"
        width = 0.4
        live: list[list[int]] = []
        async with ExchangeSimulator(seed=5, symbols=(SYM,), tick_interval=0.02) as sim:
            sim.pause()
            async with RecordingConnector(
                _config(sim), path, feeds=["trades"], symbols=[SYM]
            ) as conn:
                loop = asyncio.get_running_loop()
                subscribed = loop.time()
                conn.trades(SYM).pipe(
                    ops.map(lambda t: t.trade_id), ops.buffer_with_time(width)
                ).subscribe(live.append, scheduler=conn.scheduler)
                for k in range(5):
                    await asyncio.sleep(max(0.0, subscribed + (k + 0.5) * width - loop.time()))
                    await sim.step(3)
                await asyncio.sleep(max(0.0, subscribed + 5.5 * width - loop.time()))
        assert sum(len(w) for w in live) >= 5
        assert len(live) == 6  # five whole windows and the partial one closed by stop

        replay = rxreplay.open(path)
        replayed: list[list[int]] = []
        replay.trades(SYM).pipe(
            ops.map(lambda t: t.trade_id), ops.buffer_with_time(width)
        ).subscribe(replayed.append, scheduler=replay.scheduler)
        replay.run()
        assert replayed == live


VENUES = {
    "binance_futures": (Config.binance_futures, "agg_trades"),
    "bybit-spot": (lambda **kw: Config.bybit("spot", **kw), "trades"),
    "bybit-linear": (lambda **kw: Config.bybit("linear", **kw), "trades"),
}


class TestOtherVenues:
    """The same round trip on USD-M futures and Bybit (other routing, books built from
    WebSocket snapshots, stateful ticker merging), across a disconnect."""

    @pytest.mark.parametrize("venue", sorted(VENUES))
    async def test_models_equal_live(self, tmp_path: Path, venue: str) -> None:
        make, trades_feed = VENUES[venue]
        path = tmp_path / f"{venue}.jsonl.gz"

        def attach(conn: Any, into: dict[str, list[Any]]) -> None:
            conn.ticker(SYM).subscribe(into["ticker"].append)
            getattr(conn, trades_feed)(SYM).subscribe(into["trades"].append)
            conn.order_book(SYM, depth=10).subscribe(into["book"].append)
            conn.errors.subscribe(into["errors"].append)

        live: dict[str, list[Any]] = {"ticker": [], "trades": [], "book": [], "errors": []}
        async with ExchangeSimulator(
            seed=21, symbols=(SYM,), tick_interval=0.02, periodic_ticks=5
        ) as sim:
            config = make(
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
                connection={"reconnect_delay": 0.05, "reconnect_jitter": 0.0},
                clock_sync={"samples": 1},
            )
            async with RecordingConnector(config, path, symbols=[SYM]) as conn:
                attach(conn, live)
                await asyncio.sleep(0.7)
                await sim.drop_connections()
                await asyncio.sleep(0.9)
        assert live["ticker"] and live["trades"] and len(live["book"]) >= 5

        replay = rxreplay.open(path)
        replayed: dict[str, list[Any]] = {"ticker": [], "trades": [], "book": [], "errors": []}
        attach(replay, replayed)
        replay.run()
        assert replayed["ticker"] == live["ticker"]
        assert replayed["trades"] == live["trades"]
        assert replayed["book"] == live["book"]
        assert Kind.RESTART in _kinds(path)


def _gap_free(trades: list[Trade]) -> bool:
    ids = [t.trade_id for t in trades]
    return ids == list(range(ids[0], ids[0] + len(ids)))


def _kinds(path: Path) -> set[str]:
    with RecordingReader(path) as reader:
        return {entry[0] for entry in reader}


def _snapshot_requests(path: Path) -> int:
    with RecordingReader(path) as reader:
        return sum(
            1 for e in reader if e[0] == Kind.REST_REQUEST and e[3][0][0] == "depth_snapshot"
        )


def _resyncs(errors: list[Exception]) -> int:
    return sum(1 for e in errors if isinstance(e, FeedGapError))


class TestRecorderInterruptedAtStart:
    """Ctrl-C while start() waits for the first clock sync stops the recorder: the file
    is finished and the HTTP session is closed (``async with`` never reaches __aexit__
    when __aenter__ is what was cancelled)."""

    async def test_cancel_during_the_first_clock_sync(self, tmp_path: Path) -> None:
        from aiohttp import web
        from aiohttp.test_utils import TestServer

        asked = asyncio.Event()
        never = asyncio.Event()

        async def time_endpoint(_request: web.Request) -> web.Response:
            asked.set()
            await never.wait()  # the first clock sync never finishes
            return web.json_response({"serverTime": 0})

        app = web.Application()
        app.router.add_get("/api/v3/time", time_endpoint)
        path = tmp_path / "cut.jsonl.gz"
        async with TestServer(app, host="127.0.0.1") as server:
            config = Config.binance(
                rest_url=str(server.make_url("")).rstrip("/"),
                ws_url="ws://127.0.0.1:9",
                clock_sync={"samples": 1},
                connection={"rest_timeout": 30.0},
            )
            conn = RecordingConnector(config, path, feeds=["trades"], symbols=[SYM])
            starting = asyncio.get_running_loop().create_task(conn.start())
            await asyncio.wait_for(asked.wait(), 2.0)
            starting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await starting
            assert not conn.started
            assert conn.writer is not None and conn.writer.closed
            never.set()
        with RecordingReader(path) as reader:
            entries = list(reader)
        assert not reader.truncated
        assert entries[-1][0] == Kind.END


class TestNoSecretsInRecordings:
    """Signed REST calls made through a recording connector leave no key, secret or
    signature in the file, on success and on failure."""

    async def test_signed_calls_record_answers_only(self, tmp_path: Path) -> None:
        import gzip

        key, secret = "KEY-rec-4f1c9a", "SECRET-rec-77d02b"
        path = tmp_path / "signed.jsonl.gz"
        async with ExchangeSimulator(
            seed=5, symbols=(SYM,), tick_interval=0.02, api_keys={key: secret}
        ) as sim:
            config = Config.binance(
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
                api_key=key,
                api_secret=secret,
                clock_sync={"samples": 1},
            )
            async with RecordingConnector(config, path, feeds=["ticker"], symbols=[SYM]) as conn:
                balances = await conn.account()
                failed: list[Exception] = []
                try:
                    await conn.get_order(SYM, order_id=987654321)
                except Exception as exc:  # an unknown order: the venue's error
                    failed.append(exc)
        assert balances is not None
        assert len(failed) == 1
        text = gzip.decompress(path.read_bytes()).decode()
        kinds = [orjson.loads(line)[0] for line in text.splitlines()[1:]]
        assert kinds.count(Kind.REST_REQUEST) >= 2
        assert Kind.REST_ITEM in kinds and Kind.REST_ERROR in kinds
        for leaked in (key, secret, "signature", "X-MBX-APIKEY", "api_key", "api_secret"):
            assert leaked.lower() not in text.lower(), leaked


class TestRecorderStartIsIdempotent:
    """A second start() (Connector.start is idempotent) does not record each clock
    offset twice."""

    async def test_clock_lines_once_per_offset(self, tmp_path: Path) -> None:
        path = tmp_path / "twice.jsonl.gz"
        async with ExchangeSimulator(seed=2, symbols=(SYM,), tick_interval=0.02) as sim:
            conn = RecordingConnector(_config(sim), path, feeds=["ticker"], symbols=[SYM])
            await conn.start()
            await conn.start()
            offsets: list[Any] = []
            conn.clock.subscribe(offsets.append)
            await conn.stop()
        with RecordingReader(path) as reader:
            clock_lines = [e for e in reader if e[0] == Kind.CLOCK]
        assert len(offsets) >= 1
        assert len(clock_lines) == 1


class TestDiskFullWhileRecording:
    """A recording that cannot be written (disk full) is reported on ``errors``; the live
    feeds keep running through a reconnect, whose state events and restart markers are
    the lines that fail to be written."""

    async def test_write_failures_are_reported_not_raised_into_feeds(self, tmp_path: Path) -> None:
        path = tmp_path / "full.jsonl.gz"
        tickers: list[Ticker] = []
        trades: list[Trade] = []
        feed_errors: list[Exception] = []
        reported: list[Exception] = []
        async with (
            ExchangeSimulator(seed=4, symbols=(SYM,), tick_interval=0.02, periodic_ticks=5) as sim,
            RecordingConnector(_config(sim), path, feeds=["ticker"], symbols=[SYM]) as conn,
        ):
            conn.errors.subscribe(reported.append)
            conn.ticker(SYM).subscribe(tickers.append, feed_errors.append)
            conn.trades(SYM).subscribe(trades.append, feed_errors.append)
            await asyncio.sleep(0.4)
            assert conn.writer is not None

            def full(_entry: Any) -> None:
                raise OSError(28, "No space left on device")

            conn.writer._gz.write = full  # type: ignore[method-assign]
            before = len(trades)
            await sim.drop_connections()
            await asyncio.sleep(0.8)
        assert feed_errors == []
        assert len(trades) > before  # the feeds outlived the reconnect
        recording_errors = [e for e in reported if "No space left" in str(e)]
        assert recording_errors
        assert all(isinstance(e, RecordingError) for e in recording_errors)
        assert len(recording_errors) == 1  # the recorder stops at the first failure
        with RecordingReader(path) as reader:  # what reached the file still reads
            kinds = [e[0] for e in reader]
        assert Kind.FRAME in kinds
        assert Kind.END not in kinds
