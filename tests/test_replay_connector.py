"""ReplayConnector on synthetic recordings: the same feeds as a Connector, driven in
virtual time set to the recorded receive times."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from reactivex import operators as ops
from reactivex.scheduler import HistoricalScheduler, ImmediateScheduler

import rxconnector.replay as rxreplay
from rxconnector.config import Config
from rxconnector.errors import NotSupportedError, RecordingError, RxConnectorError
from rxconnector.models import ConnectionEvent, ConnectionState, Ticker, Trade
from rxconnector.recording import RecordingHeader
from rxconnector.replay import ReplayConnector
from rxconnector.replay.recorder import _StepClock
from rxconnector.replay.writer import RecordingWriter

T0 = 1_700_000_000_000.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _trade(trade_id: int, price: str = "100.5") -> str:
    data = (
        f'{{"e":"trade","E":{trade_id},"s":"BTCUSDT","t":{trade_id},"p":"{price}",'
        f'"q":"0.25","T":{trade_id},"m":false,"M":true}}'
    )
    return f'{{"stream":"btcusdt@trade","data":{data}}}'


def _ticker(event_time: int, last: str) -> str:
    data = (
        f'{{"e":"24hrTicker","E":{event_time},"s":"BTCUSDT","p":"1","P":"1","w":"1",'
        f'"x":"1","c":"{last}","Q":"1","b":"1","B":"1","a":"2","A":"1","o":"1","h":"3",'
        f'"l":"0.5","v":"10","q":"20","O":0,"C":1,"F":0,"L":1,"n":1}}'
    )
    return f'{{"stream":"btcusdt@ticker","data":{data}}}'


def _write(path: Path, lines: list[tuple[str, float, Any]], end: float | None) -> None:
    """``lines``: (what, time, value); what: frame, same-step frame, dropped, subscribed,
    state."""
    header = RecordingHeader.for_config(Config.binance(), ["trades", "ticker"], ["BTCUSDT"], T0)
    with RecordingWriter(path, header, track_delivery=True) as writer:
        for what, at, value in lines:
            if what in ("frame", "same-step frame"):
                writer.frame("binance-1", at, value, same_step=what != "frame")
                writer.delivered()
            elif what == "dropped":
                writer.frame("binance-1", at, value)
            elif what == "subscribed":
                writer.subscribed(at, value)
            elif what == "state":
                writer.state(at, value)
        writer.close(end)


@pytest.fixture
def trades_file(tmp_path: Path) -> Path:
    path = tmp_path / "trades.jsonl.gz"
    _write(
        path,
        [
            ("subscribed", T0 + 100, "btcusdt@trade"),
            ("frame", T0 + 150, _trade(1)),
            ("frame", T0 + 900, _trade(2)),
            ("dropped", T0 + 950, _trade(2)),  # the hub's duplicate: never replayed
            ("frame", T0 + 1_050, _trade(3)),
            ("frame", T0 + 2_300, _trade(4)),
            ("frame", T0 + 2_310, _ticker(2_310, "101")),
        ],
        end=T0 + 3_400,
    )
    return path


class TestFeedsAndTimes:
    """Feeds emit the recorded messages, parsed by the venue parsers, with their times."""

    def test_trades_come_back_parsed_with_receive_times(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        got: list[Trade] = []
        done: list[bool] = []
        replay.trades("BTCUSDT").subscribe(got.append, on_completed=lambda: done.append(True))
        stats = replay.run()
        assert [t.trade_id for t in got] == [1, 2, 3, 4]
        assert [t.received_at for t in got] == [T0 + 150, T0 + 900, T0 + 1_050, T0 + 2_300]
        assert got[0] == Trade("BTCUSDT", 1, got[0].price, got[0].quantity, "buy", 1, 1, T0 + 150)
        assert done == [True]
        assert stats.frames == 6
        assert stats.delivered == 4  # trades only: the ticker frame had no subscriber
        assert stats.recorded_ms == pytest.approx(3_300)  # first subscription -> end

    def test_time_based_operators_see_the_recorded_clock(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        windows: list[list[int]] = []
        replay.trades("BTCUSDT").pipe(
            ops.map(lambda t: t.trade_id),
            ops.buffer_with_time(1.0),
        ).subscribe(windows.append, scheduler=replay.scheduler)
        replay.run()
        # windows start at the first subscription (T0+100): [100,1100) [1100,2100)
        # [2100,3100) and the partial one closed by the end of the recording at T0+3400
        assert windows == [[1, 2, 3], [], [4], []]

    def test_without_scheduler_the_replay_clock_is_the_default(self, trades_file: Path) -> None:
        """Subscribing without ``scheduler=`` gives the same windows: a piped feed of a
        replay subscribes its time-based operators on the replay's clock."""
        replay = rxreplay.open(trades_file)
        windows: list[list[int]] = []
        quiet: list[int] = []
        feed = replay.trades("BTCUSDT")
        feed.pipe(ops.map(lambda t: t.trade_id)).pipe(ops.buffer_with_time(1.0)).subscribe(
            windows.append
        )
        feed.pipe(ops.map(lambda t: t.trade_id), ops.debounce(0.5)).subscribe(quiet.append)
        replay.run()
        assert windows == [[1, 2, 3], [], [4], []]
        # 2 arrives 750 ms after 1, 3 only 150 ms after 2: 1, 3 and 4 are followed by quiet
        assert quiet == [1, 3, 4]

    def test_an_explicit_scheduler_still_wins(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        other = HistoricalScheduler(EPOCH + timedelta(milliseconds=T0))
        windows: list[list[int]] = []
        replay.trades("BTCUSDT").pipe(
            ops.map(lambda t: t.trade_id), ops.buffer_with_time(1.0)
        ).subscribe(windows.append, scheduler=other)
        replay.run()
        # ``other`` never advanced: no window closed by time, one flushed at the end
        assert windows == [[1, 2, 3, 4]]

    def test_the_clock_starts_at_the_first_subscription(self, trades_file: Path) -> None:
        replay = ReplayConnector(trades_file)
        assert replay.scheduler.now == EPOCH + timedelta(milliseconds=T0 + 100)
        seen: list[float] = []
        replay.trades("BTCUSDT").subscribe(lambda _t: seen.append(replay.now()))
        replay.run()
        assert seen == [int(T0 + 150), int(T0 + 900), int(T0 + 1_050), int(T0 + 2_300)]

    def test_a_scheduler_of_your_own(self, trades_file: Path) -> None:
        scheduler = HistoricalScheduler()  # starts at 1970: moved to the recording
        replay = rxreplay.open(trades_file, scheduler=scheduler)
        assert replay.scheduler is scheduler
        assert scheduler.now == EPOCH + timedelta(milliseconds=T0 + 100)
        replay.run()
        assert scheduler.now >= EPOCH + timedelta(milliseconds=T0 + 3_400)
        with pytest.raises(TypeError, match="virtual-time scheduler"):
            rxreplay.open(trades_file, scheduler=ImmediateScheduler())  # type: ignore[arg-type]

    def test_subscribers_may_pass_any_scheduler(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        tickers: list[Ticker] = []
        replay.ticker("btcusdt").subscribe(tickers.append)  # no scheduler at all
        replay.run()
        assert [str(t.last) for t in tickers] == ["101"]
        assert tickers[0].received_at == T0 + 2_310

    def test_connection_states_are_replayed(self, tmp_path: Path) -> None:
        path = tmp_path / "s.gz"
        up = ConnectionEvent(ConnectionState.CONNECTED, "binance-1", "ws://x", T0 + 5)
        again = ConnectionEvent(
            ConnectionState.RECONNECTING, "binance-1", "ws://x", T0 + 50, 1, 0.5, "eof"
        )
        _write(path, [("state", T0 + 5, up), ("state", T0 + 50, again)], end=T0 + 60)
        replay = rxreplay.open(path)
        states: list[ConnectionEvent] = []
        replay.connection_state.subscribe(states.append)
        replay.run()
        assert states == [up, again]


class TestLifecycle:
    """A replay runs once, completes its feeds at the end, and can be stopped early."""

    def test_runs_once(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        replay.run()
        with pytest.raises(RxConnectorError, match="runs once"):
            replay.run()
        late: list[Exception] = []
        replay.ticker("BTCUSDT").subscribe(on_error=late.append)
        assert len(late) == 1
        assert isinstance(late[0], RxConnectorError)
        assert "replay is over" in str(late[0])

    def test_a_header_with_an_unusable_config(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.gz"
        header = RecordingHeader.for_config(Config.binance(), ["ticker"], ["BTCUSDT"], T0)
        broken = attrs.evolve(header, config={**header.config, "exchange": "kraken"})
        RecordingWriter(path, broken).close(T0)
        with pytest.raises(RecordingError, match="config is unusable"):
            rxreplay.open(path)

    def test_account_feeds_are_not_recorded(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        errors: list[Exception] = []
        replay.orders().subscribe(on_error=errors.append)
        assert len(errors) == 1
        assert isinstance(errors[0], NotSupportedError)
        assert "not recorded" in str(errors[0])

    async def test_async_with_and_stop(self, trades_file: Path) -> None:
        async with rxreplay.open(trades_file) as replay:
            done: list[bool] = []
            replay.trades("BTCUSDT").subscribe(on_completed=lambda: done.append(True))
        assert done == [True]  # stop completes the feeds without replaying

    def test_a_subscriber_that_raises_does_not_stop_the_replay(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        errors: list[Exception] = []
        good: list[int] = []
        replay.errors.subscribe(errors.append)

        def bad(_t: Trade) -> None:
            raise ValueError("user bug")

        replay.trades("BTCUSDT").subscribe(bad)
        replay.trades("BTCUSDT").subscribe(lambda t: good.append(t.trade_id))
        replay.run()
        assert good == [1, 2, 3, 4]
        assert any("user bug" in str(e) for e in errors)


class TestPacing:
    """play() yields to the event loop; with speed it follows the recorded pace."""

    async def test_as_fast_as_possible_keeps_the_loop_alive(self, tmp_path: Path) -> None:
        path = tmp_path / "many.gz"
        lines = [("subscribed", T0, "btcusdt@trade")]
        lines += [("frame", T0 + i, _trade(i + 1)) for i in range(10_000)]
        _write(path, lines, end=T0 + 10_000)
        replay = rxreplay.open(path)
        count = 0

        def bump(_t: Trade) -> None:
            nonlocal count
            count += 1

        replay.trades("BTCUSDT").subscribe(bump)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(ticker())
        stats = await replay.play()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert count == 10_000
        assert ticks >= 3  # the loop ran other work while the replay went on
        assert stats.speedup > 10

    async def test_speed_paces_in_recorded_time(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        replay.trades("BTCUSDT").subscribe(lambda _t: None)
        started = time.perf_counter()
        await replay.play(speed=10.0)  # 2.2 s between first and last frame -> 0.22 s
        elapsed = time.perf_counter() - started
        assert 0.2 <= elapsed < 1.0

    async def test_cancelling_play_ends_the_replay(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        done: list[bool] = []
        replay.trades("BTCUSDT").subscribe(on_completed=lambda: done.append(True))
        task = asyncio.get_running_loop().create_task(replay.play(speed=1.0))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == [True]

    async def test_speed_must_be_positive(self, trades_file: Path) -> None:
        with pytest.raises(ValueError, match="speed"):
            await rxreplay.open(trades_file).play(speed=0)


class TestLoopSteps:
    """Frames handled in one event-loop step live are replayed with nothing scheduled
    running between them (timers, conflate deliveries), as live."""

    def _windows(self, path: Path) -> list[list[int]]:
        replay = rxreplay.open(path)
        windows: list[list[int]] = []
        replay.trades("BTCUSDT").pipe(
            ops.map(lambda t: t.trade_id), ops.buffer_with_time(1.0)
        ).subscribe(windows.append, scheduler=replay.scheduler)
        replay.run()
        return windows

    def test_a_same_step_frame_does_not_let_a_timer_run_first(self, tmp_path: Path) -> None:
        path = tmp_path / "same.gz"
        _write(
            path,
            [
                ("subscribed", T0, "btcusdt@trade"),
                ("frame", T0 + 999.5, _trade(1)),
                ("same-step frame", T0 + 1_000.5, _trade(2)),  # read in the same step
            ],
            end=T0 + 1_500,
        )
        assert self._windows(path) == [[1, 2], []]

    def test_separate_steps_are_separate_instants(self, tmp_path: Path) -> None:
        path = tmp_path / "apart.gz"
        _write(
            path,
            [
                ("subscribed", T0, "btcusdt@trade"),
                ("frame", T0 + 999.5, _trade(1)),
                ("frame", T0 + 1_000.5, _trade(2)),
            ],
            end=T0 + 1_500,
        )
        assert self._windows(path) == [[1], [2]]

    async def test_step_clock_groups_lines_until_the_loop_moves_on(self) -> None:
        clock = _StepClock()
        assert clock.frame(T0 + 5) is False  # opens a step
        assert clock.frame(T0 + 6) is True
        assert clock.now() == T0 + 5  # other lines of the step share its time
        await asyncio.sleep(0)
        opened = clock.now()  # a new step, opened by a non-frame line at the wall clock
        assert opened > T0
        assert clock.frame(T0 + 7) is True
        await asyncio.sleep(0)
        assert clock.frame(T0 + 8) is False

    def test_step_clock_without_a_loop(self) -> None:
        clock = _StepClock()
        assert clock.frame(T0) is False
        assert clock.frame(T0 + 1) is False  # no loop, no steps


class TestEarlyStop:
    """A subscriber may close the replay from inside a callback: the run ends there."""

    def test_close_from_a_subscriber(self, trades_file: Path) -> None:
        replay = rxreplay.open(trades_file)
        got: list[int] = []

        def take(trade: Trade) -> None:
            got.append(trade.trade_id)
            if trade.trade_id == 2:
                replay.close()

        replay.trades("BTCUSDT").subscribe(take)
        stats = replay.run()
        assert got == [1, 2]
        assert stats.frames == 2
