"""Recordings lose nothing a user would expect to keep: ``record -o`` never overwrites a
file by accident, and a recorder killed with SIGKILL (no ``finally``, no gzip trailer)
leaves a file whose frames are readable up to about the last second before the kill."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rxconnector.cli import EXIT_OK, EXIT_USAGE, main
from rxconnector.config import Config
from rxconnector.recording import RecordingHeader
from rxconnector.replay.reader import RecordingReader
from rxconnector.replay.writer import RecordingWriter
from rxconnector.testing.simulator import ExchangeSimulator

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class TestNoAccidentalOverwrite:
    def test_an_existing_file_is_refused_without_force(self, tmp_path: Path) -> None:
        path = tmp_path / "precious.jsonl.gz"
        path.write_bytes(b"yesterday's recording")
        # a real shell's view (exit status, stderr); nothing listens on port 9: were the
        # file not refused up front, the recorder would start and time out here
        proc = subprocess.run(
            [sys.executable, "-m", "rxconnector", "record", "binance", "trades", "BTCUSDT",
             "-o", str(path), "--rest-url", "http://127.0.0.1:9", "--ws-url", "ws://127.0.0.1:9"],
            capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=30,
        )  # fmt: skip
        assert proc.returncode == EXIT_USAGE == 2, proc.stderr
        assert f"{path} already exists" in proc.stderr and "--force" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert path.read_bytes() == b"yesterday's recording"

    async def test_force_overwrites(self, tmp_path: Path) -> None:
        path = tmp_path / "old.jsonl.gz"
        path.write_bytes(b"old")
        async with ExchangeSimulator(seed=3, symbols=("BTCUSDT",), tick_interval=0.02) as sim:
            code = await asyncio.to_thread(
                main,
                ["record", "binance", "trades", "BTCUSDT", "-o", str(path), "--force",
                 "--seconds", "1", "--rest-url", sim.rest_url, "--ws-url", sim.ws_url],
            )  # fmt: skip
        assert code == EXIT_OK
        with RecordingReader(path) as reader:
            assert reader.header.exchange == "binance"
            assert sum(1 for e in reader if e[0] in ("f", "g")) > 0


#: Both compressions: zstd (the default, FLUSH_BLOCK syncs) and gzip (a .gz name).
SUFFIXES = pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])


class TestKilledRecorder:
    @SUFFIXES
    async def test_sigkill_loses_at_most_about_the_last_second(
        self, tmp_path: Path, suffix: str
    ) -> None:
        path = tmp_path / f"killed{suffix}"
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
            await asyncio.sleep(3.0)
            killed_at = time.time() * 1000.0
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == -signal.SIGKILL
        with RecordingReader(path) as reader:
            frames = [e for e in reader if e[0] in ("f", "g", "d")]
            assert reader.truncated  # no end line, no gzip trailer: the cut is noticed
            assert reader.ended_at is None
        assert len(frames) > 20
        last = frames[-1][1]
        # written at most ~1 s (the sync interval) before the kill, plus scheduling slack
        assert killed_at - last < 1600, f"lost {killed_at - last:.0f} ms of frames"
        # and the replay command plays it, saying once that it was cut short
        replay = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "rxconnector", "replay", str(path)],
            capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert replay.returncode == EXIT_OK, replay.stderr
        assert replay.stderr.count("cut short") == 1, replay.stderr
        assert f": {len(frames)} frames" in replay.stderr  # every frame before the cut


class TestPeriodicSync:
    @SUFFIXES
    def test_a_synced_file_is_readable_while_still_open(self, tmp_path: Path, suffix: str) -> None:
        path = tmp_path / f"open{suffix}"
        header = RecordingHeader.for_config(Config.binance(), ["trades"], ["BTCUSDT"], T0)
        writer = RecordingWriter(path, header)
        for i in range(300):
            writer.frame("c1", T0 + i, f'{{"i":{i}}}')
        writer.sync()
        copy = tmp_path / f"copy{suffix}"  # what a SIGKILL now would leave on disk
        copy.write_bytes(path.read_bytes())
        writer.close(T0 + 400)
        with RecordingReader(copy) as reader:
            times = [e[1] for e in reader]
        assert times == [T0 + i for i in range(300)]

    @SUFFIXES
    def test_a_cut_file_says_so_once(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str
    ) -> None:
        path = tmp_path / f"whole{suffix}"
        header = RecordingHeader.for_config(Config.binance(), ["trades"], ["BTCUSDT"], T0)
        with RecordingWriter(path, header) as writer:
            for i in range(5000):
                writer.frame("c1", T0 + i, f'{{"i":{i},"n":"{(i * 2654435761) % 2**32}"}}')
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with caplog.at_level(logging.WARNING, logger="rxconnector"), RecordingReader(cut) as reader:
            entries = list(reader)
        assert reader.truncated and 0 < len(entries) < 5000
        warnings = [r for r in caplog.records if "cut short" in r.getMessage()]
        assert len(warnings) == 1
        assert str(cut) in warnings[0].getMessage()


class TestDurableSync:
    async def test_the_recorder_fsyncs_every_sync_interval_off_the_loop(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Power loss: what was synced must be on the disk, so each sync is followed by an
        ``fsync`` of the recording's file, run in a worker thread."""
        import threading

        from rxconnector.replay import RecordingConnector

        calls: list[tuple[int, bool]] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            calls.append((fd, threading.current_thread() is threading.main_thread()))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        path = tmp_path / "durable.jsonl.gz"
        async with ExchangeSimulator(seed=3, symbols=("BTCUSDT",), tick_interval=0.02) as sim:
            config = Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url)
            conn = RecordingConnector(config, path, sync_interval=0.1)
            async with conn:
                fd = conn.writer._raw.fileno()  # type: ignore[union-attr]
                sub = conn.trades("BTCUSDT").subscribe(lambda _t: None)
                # A sync is skipped while the previous fsync still runs, which on a loaded
                # machine can take longer than the interval: wait for three, not for 1 s.
                for _ in range(200):
                    if len(calls) >= 3:
                        break
                    await asyncio.sleep(0.05)
                sub.dispose()
        assert len(calls) >= 3, calls
        assert all(f == fd for f, _main in calls)
        assert not any(on_main for _f, on_main in calls)  # never on the event loop's thread
