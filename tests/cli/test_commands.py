"""The commands end to end against the exchange simulator on 127.0.0.1: in-process
``main([...])`` (in a worker thread when the test's loop runs the simulator) and real
``python -m rxconnector`` subprocesses for the exit statuses a shell sees."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from rxconnector.cli import EXIT_INTERRUPTED, EXIT_OK, main
from rxconnector.replay.reader import RecordingReader
from rxconnector.testing.simulator import ExchangeSimulator

ROOT = Path(__file__).resolve().parents[2]


def _summary(out: str) -> dict[str, int]:
    match = re.search(
        r"ticks=(\d+) trades=(\d+) books=(\d+) \((all consistent)\) reconnects=(\d+) errors=(\d+)",
        out,
    )
    assert match is not None, out[-2000:]
    ticks, trades, books, _, reconnects, errors = match.groups()
    return {
        "ticks": int(ticks),
        "trades": int(trades),
        "books": int(books),
        "reconnects": int(reconnects),
        "errors": int(errors),
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class TestDemo:
    """The demo runs a real pipeline against the simulator and summarizes it."""

    def test_runs_for_n_seconds_and_summarizes(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["demo", "--seconds", "2.5"]) == EXIT_OK
        out = capsys.readouterr().out
        summary = _summary(out)
        assert summary["ticks"] >= 1
        assert summary["trades"] >= 1
        assert summary["books"] >= 1
        assert "last book: BTCUSDT" in out
        assert "crossed=False" in out
        assert "\x1b[" not in out  # not a TTY: plain lines only
        assert "ws connected" in out
        live = [line for line in out.splitlines() if line.startswith("rxconnector demo")]
        assert len(live) >= 2
        assert all(len(line) <= 160 for line in live), live  # one short line, not the block
        assert re.search(r" last \d+\.\d{2} ", live[-1]), live[-1]  # at the tick: 0.01

    def test_faults_show_recovery(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["demo", "--seconds", "4.5", "--faults", "--symbol", "ethusdt"]) == EXIT_OK
        out = capsys.readouterr().out
        summary = _summary(out)
        assert summary["reconnects"] >= 1
        assert "dropped" in out
        assert "last book: ETHUSDT" in out
        # data kept flowing after the fault
        assert summary["books"] >= 5

    def test_subprocess_demo_exits_0(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "rxconnector", "demo", "--seconds", "5"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        summary = _summary(done.stdout)
        assert summary["ticks"] >= 2
        assert summary["trades"] >= 5
        assert summary["books"] >= 5
        assert "crossed=False" in done.stdout
        assert "Traceback" not in done.stderr

    def test_ctrl_c_stops_cleanly_with_130(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rxconnector", "demo"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # the first plain view line: it is running
            assert "rxconnector demo" in first
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == EXIT_INTERRUPTED, err
        assert "Traceback" not in err
        assert "interrupted" in err
        assert "summary after" in out  # the connector stopped and the summary was printed
        assert "Unclosed" not in err


class TestTerminalView:
    """On a TTY the demo redraws its view in place with ANSI sequences, ~4 times a second."""

    def test_demo_on_a_pseudo_terminal(self) -> None:
        pty = pytest.importorskip("pty")  # POSIX only
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "rxconnector", "demo", "--seconds", "2.5"],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=_env(),
            cwd=ROOT,
        )
        os.close(follower)
        chunks: list[bytes] = []
        try:
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            proc.wait(timeout=30)
        finally:
            os.close(leader)
            if proc.poll() is None:
                proc.kill()
            if proc.stderr is not None:
                proc.stderr.close()
        text = b"".join(chunks).decode("utf-8", "replace")
        assert proc.returncode == 0
        redraws = text.count("\x1b[J")  # one clear-below per redraw
        assert 6 <= redraws <= 20  # ~4/s for 2.5 s, plus the final frame
        assert "\x1b[8;1H" in text  # each of the 8 rows is addressed on the screen
        assert "summary after" in text


class TestSim:
    """The standalone simulator prints its URLs and stops by itself or on Ctrl-C."""

    def test_prints_urls(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["sim", "--port", "0", "--seconds", "0.5", "--symbols", "btcusdt"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"REST\s+http://127\.0\.0\.1:\d+", out)
        assert re.search(r"WebSocket\s+ws://127\.0\.0\.1:\d+", out)
        assert "symbols=BTCUSDT" in out
        assert "simulator stopped" in out

    def test_faults_every(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["sim", "--port", "0", "--seconds", "0.9", "--faults-every", "0.2"]) == 0
        out = capsys.readouterr().out
        assert "fault #1 dropped" in out
        assert "fault #2 stalled" in out

    def test_prints_a_config_line_for_every_venue(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["sim", "--port", "0", "--seconds", "0.3"]) == 0
        out = capsys.readouterr().out
        for line in (
            "rxc.Config.binance(rest_url=",
            "rxc.Config.binance_futures(rest_url=",
            "rxc.Config.bybit('spot', rest_url=",
            "rxc.Config.bybit('linear', rest_url=",
        ):
            assert line in out, out

    def test_accounts_and_their_config_lines_work(self) -> None:
        """``--account KEY:SECRET:BALANCES`` creates the account holding exactly those
        balances; its printed config line, pasted into Python, trades on it."""
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "rxconnector", "sim", "--port", "0", "--symbols",
                "BTCUSDT,ETHUSDT", "--account", "alice:alice-secret:USDT=10000,BTC=1.5",
                "--account", "bob:bob-secret",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "Ctrl-C to stop" in line:
                    break
            text = "".join(lines)
            alice = [ln for ln in lines if "api_key='alice'" in ln and "Config.binance(" in ln]
            assert len(alice) == 1, text
            assert "ws_api_url='ws://127.0.0.1:" in alice[0]
            assert any("api_key='bob'" in ln and "Config.bybit('linear'" in ln for ln in lines)
            balances = asyncio.run(_account_from_line(alice[0]))
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
        assert balances.get("USDT") == Decimal("10000")
        assert balances.get("BTC") == Decimal("1.5")
        assert balances.get("ETH", Decimal(0)) == 0
        assert proc.returncode == EXIT_INTERRUPTED, err
        assert "simulator stopped" in out

    def test_subprocess_ctrl_c(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rxconnector", "sim", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            assert "simulator" in proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == EXIT_INTERRUPTED
        assert "Traceback" not in err
        assert "simulator stopped" in out


async def _account_from_line(line: str) -> dict[str, Decimal]:
    """Evaluate a printed ``config = rxc.Config...`` line and read the account's balances."""
    import rxconnector as rxc

    source = line[line.index("rxc.Config") :].strip()
    config = eval(source, {"rxc": rxc})  # the CLI's own output, built for pasting
    async with rxc.Connector(config) as conn:
        balances = await conn.account()
    return {b.asset: b.free for b in balances}


class TestAgainstASimulator:
    """watch, record, replay and history talking to a simulator the test runs."""

    async def test_watch(self, capsys: pytest.CaptureFixture[str]) -> None:
        async with ExchangeSimulator(seed=2, symbols=("BTCUSDT",), tick_interval=0.02) as sim:
            code = await asyncio.to_thread(
                main,
                ["watch", "binance", "trades", "btcusdt", "--seconds", "1.0",
                 "--rest-url", sim.rest_url, "--ws-url", sim.ws_url],
            )  # fmt: skip
        assert code == EXIT_OK
        captured = capsys.readouterr()
        lines = [line for line in captured.out.splitlines() if " BTCUSDT trade #" in line]
        assert len(lines) >= 3
        assert "trades message(s) from binance BTCUSDT" in captured.err

    async def test_watch_klines_with_an_argument(self, capsys: pytest.CaptureFixture[str]) -> None:
        async with ExchangeSimulator(
            seed=2, symbols=("BTCUSDT",), tick_interval=0.02, periodic_ticks=5
        ) as sim:
            code = await asyncio.to_thread(
                main,
                ["watch", "binance", "klines", "BTCUSDT", "1m", "--seconds", "0.8",
                 "--rest-url", sim.rest_url, "--ws-url", sim.ws_url],
            )  # fmt: skip
        assert code == EXIT_OK
        assert "kline 1m" in capsys.readouterr().out

    async def test_record_then_replay(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        path = tmp_path / "btc.jsonl.gz"
        async with ExchangeSimulator(
            seed=4, symbols=("BTCUSDT", "ETHUSDT"), tick_interval=0.02, periodic_ticks=5
        ) as sim:
            code = await asyncio.to_thread(
                main,
                ["record", "binance", "ticker,trades,order_book:5", "BTCUSDT,ethusdt",
                 "-o", str(path), "--seconds", "1.2",
                 "--rest-url", sim.rest_url, "--ws-url", sim.ws_url],
            )  # fmt: skip
        assert code == EXIT_OK
        out = capsys.readouterr().out
        assert re.search(r"recording \d+ frames", out)
        assert f"wrote {path}" in out
        with RecordingReader(path) as reader:
            assert reader.header.feeds == ("ticker", "trades", "order_book:5")
            assert reader.header.symbols == ("BTCUSDT", "ETHUSDT")
            assert "api_key" not in reader.header.config
            assert sum(1 for e in reader if e[0] == "f") > 20
            assert reader.ended_at is not None

        # main() owns its event loop: run it off this test's loop
        assert await asyncio.to_thread(main, ["replay", str(path)]) == EXIT_OK
        captured = capsys.readouterr()
        assert "BTCUSDT ticker" in captured.out
        assert "ETHUSDT trade #" in captured.out
        assert "BTCUSDT book #" in captured.out
        assert re.search(r"replayed binance recording of .*: \d+ frames", captured.err)

        code = await asyncio.to_thread(
            main, ["replay", str(path), "--feed", "trades", "--speed", "50"]
        )
        assert code == EXIT_OK
        captured = capsys.readouterr()
        assert "trade #" in captured.out
        assert "ticker" not in captured.out
        assert "book #" not in captured.out

        code = await asyncio.to_thread(main, ["replay", str(path), "--feed", "klines:1m"])
        assert code == 2
        assert "not in this recording; it holds: ticker, trades, order_book:5" in (
            capsys.readouterr().err
        )

    async def test_record_ctrl_c_leaves_a_complete_file(self, tmp_path: Path) -> None:
        path = tmp_path / "cut.jsonl.gz"
        async with ExchangeSimulator(seed=3, symbols=("BTCUSDT",), tick_interval=0.02) as sim:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "rxconnector", "record", "binance", "trades,ticker",
                "BTCUSDT", "-o", str(path), "--rest-url", sim.rest_url, "--ws-url", sim.ws_url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=_env(), cwd=ROOT,
            )  # fmt: skip
            assert proc.stdout is not None
            first = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"recording" in first
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == EXIT_INTERRUPTED, err.decode()
        assert b"Traceback" not in err
        assert f"wrote {path}".encode() in out
        with RecordingReader(path) as reader:
            frames = sum(1 for e in reader if e[0] in ("f", "g"))
            assert not reader.truncated
            assert reader.ended_at is not None  # the connector was stopped cleanly
        assert frames > 10

    async def test_history_to_csv(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        out = tmp_path / "k.csv"
        async with ExchangeSimulator(seed=2, symbols=("BTCUSDT",)) as sim:
            code = await asyncio.to_thread(
                main,
                ["history", "binance", "BTCUSDT", "1h", "--start", "2024-01-01",
                 "--end", "2024-03-01T00:00:00Z", "-o", str(out),
                 "--rest-url", sim.rest_url, "--ws-url", sim.ws_url],
            )  # fmt: skip
        assert code == EXIT_OK, capsys.readouterr().err
        printed = capsys.readouterr().out
        with out.open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 60 * 24  # Jan + Feb 2024, hourly
        assert rows[0]["open_time"] == "1704067200000"
        assert int(rows[-1]["open_time"]) == 1709247600000
        assert "wrote" in printed and "1440 1h candles" in printed
        assert not (tmp_path / "k.csv.part").exists()

    async def test_history_over_an_empty_range_says_so(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A range with no candles (here: the future) exits 1 saying so, and leaves no
        empty CSV behind."""
        out = tmp_path / "k.csv"
        async with ExchangeSimulator(seed=2, symbols=("BTCUSDT",)) as sim:
            code = await asyncio.to_thread(
                main,
                ["history", "binance", "BTCUSDT", "1h", "--start", "2099-01-01",
                 "--end", "2099-01-02", "-o", str(out),
                 "--rest-url", sim.rest_url, "--ws-url", sim.ws_url],
            )  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1, err
        assert "no 1h candles of BTCUSDT" in err and "2099-01-01" in err
        assert not out.exists()
        assert not (tmp_path / "k.csv.part").exists()


class TestInterruptedStart:
    """Ctrl-C while a command's connector waits for its first clock sync still stops the
    connector (its session and clock-sync task are closed)."""

    async def test_watch_cancelled_during_start_stops_the_connector(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import argparse

        from aiohttp import web
        from aiohttp.test_utils import TestServer

        from rxconnector.arguments import FeedRequest
        from rxconnector.cli.watch import watch
        from rxconnector.config import Config
        from rxconnector.connector import Connector

        asked = asyncio.Event()
        never = asyncio.Event()

        async def time_endpoint(_request: web.Request) -> web.Response:
            asked.set()
            await never.wait()  # the first clock sync never finishes
            return web.json_response({"serverTime": 0})

        made: list[Connector] = []
        real_start = Connector.start

        async def start(self: Connector) -> None:
            made.append(self)
            await real_start(self)

        monkeypatch.setattr(Connector, "start", start)
        app = web.Application()
        app.router.add_get("/api/v3/time", time_endpoint)
        async with TestServer(app, host="127.0.0.1") as server:
            config = Config.binance(
                rest_url=str(server.make_url("")).rstrip("/"),
                ws_url="ws://127.0.0.1:9",
                clock_sync={"samples": 1},
                connection={"rest_timeout": 30.0},
            )
            args = argparse.Namespace(seconds=None)
            task = asyncio.get_running_loop().create_task(
                watch(args, config, FeedRequest("ticker"), "BTCUSDT")
            )
            await asyncio.wait_for(asked.wait(), 2.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            never.set()
        assert len(made) == 1
        assert not made[0].started
        assert not made[0]._sessions.is_open  # closed and dropped by stop()
