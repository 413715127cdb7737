"""Replay throughput: a synthetic 1,000,000-frame recording replayed through the parsers.

Run: ``.venv/bin/python benchmarks/bench_replay.py [--frames N] [--rate R]``
(no network; writes a temporary file and deletes it).

The recording imitates a busy Binance Spot symbol as the combined stream delivers it:
per 20 frames, 15 trades (``@trade``, contiguous ids), 4 diff-depth updates
(``@depth@100ms``, 3 + 3 levels) and 1 ticker, spaced evenly at ``--rate`` frames per
second of recorded time (default 200/s: BTCUSDT's trade rate at a lively moment plus
10 depth updates and one ticker a second). It is replayed with
``rxconnector.replay.open(path)`` subscribing ``ticker``, ``trades`` (the gap-free trade
feed) and ``diff_depth``, so every frame is decompressed, decoded, routed, parsed into
its model and delivered to a subscriber, in virtual time.

Printed: frames/s, the speed-up over real time (recorded duration / wall time), peak
resident memory, and a baseline that only decompresses and decodes the file, which
shows what the library itself adds.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from rxconnector.config import Config
from rxconnector.recording import RecordingHeader
from rxconnector.replay import open as open_replay
from rxconnector.replay.reader import RecordingReader
from rxconnector.replay.writer import RecordingWriter

T0 = 1_700_000_000_000.0
SYMBOL = "BTCUSDT"
#: Time spent in ``writer.sync()`` by the last :func:`generate` (a one-element cell).
SYNC_SECONDS = [0.0]


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def generate(path: Path, frames: int, rate: float, sync_every: int = 0) -> float:
    """Write the synthetic recording; returns its recorded duration in seconds.

    ``sync_every`` > 0 calls ``writer.sync()`` every that many frames, as the recording
    connector does once a second (``--sync-every 200`` at the default 200 frames/s).
    """
    header = RecordingHeader.for_config(
        Config.binance(), ["ticker", "trades", "diff_depth"], [SYMBOL], T0
    )
    step = 1000.0 / rate
    sym = SYMBOL.lower()
    trade_id = 1_000_000
    update_id = 5_000_000
    price = 60_000.00
    with RecordingWriter(path, header) as writer:
        for i in range(frames):
            t = T0 + i * step
            event = int(t) - 3
            slot = i % 20
            price += ((i * 7919) % 11 - 5) * 0.01
            p = f"{price:.2f}"
            if slot < 15:
                trade_id += 1
                side = "true" if i % 3 else "false"
                frame = (
                    f'{{"stream":"{sym}@trade","data":{{"e":"trade","E":{event},"s":"{SYMBOL}",'
                    f'"t":{trade_id},"p":"{p}","q":"0.0{i % 90 + 10}","T":{event},'
                    f'"m":{side},"M":true}}}}'
                )
            elif slot < 19:
                first = update_id + 1
                update_id += 3
                frame = (
                    f'{{"stream":"{sym}@depth@100ms","data":{{"e":"depthUpdate","E":{event},'
                    f'"s":"{SYMBOL}","U":{first},"u":{update_id},'
                    f'"b":[["{price - 0.01:.2f}","1.5"],["{price - 0.02:.2f}","0"],'
                    f'["{price - 0.05:.2f}","2.25"]],'
                    f'"a":[["{price + 0.01:.2f}","0.5"],["{price + 0.03:.2f}","0"],'
                    f'["{price + 0.04:.2f}","3.1"]]}}}}'
                )
            else:
                frame = (
                    f'{{"stream":"{sym}@ticker","data":{{"e":"24hrTicker","E":{event},'
                    f'"s":"{SYMBOL}","p":"12.50","P":"0.021","w":"59990.1","x":"59987.50",'
                    f'"c":"{p}","Q":"0.01","b":"{price - 0.01:.2f}","B":"1.5",'
                    f'"a":"{price + 0.01:.2f}","A":"0.5","o":"59987.50","h":"60120.00",'
                    f'"l":"59850.00","v":"12345.678","q":"740000000.12","O":{event - 86_400_000},'
                    f'"C":{event},"F":1,"L":{trade_id},"n":{trade_id}}}}}'
                )
            writer.frame("binance-1", t, frame)
            if sync_every and i % sync_every == sync_every - 1:
                started = time.perf_counter()
                writer.sync()
                SYNC_SECONDS[0] += time.perf_counter() - started
        writer.close(T0 + frames * step)
    return frames * step / 1000.0


def baseline(path: Path) -> float:
    """Seconds to only decompress and JSON-decode every line (no routing, no parsing)."""
    started = time.perf_counter()
    with RecordingReader(path) as reader:
        for _entry in reader:
            pass
    return time.perf_counter() - started


def replay(path: Path) -> tuple[float, dict[str, int], float]:
    """Replay through the parsers; returns (wall seconds, models per feed, recorded s)."""
    counts = {"ticker": 0, "trades": 0, "diff_depth": 0}
    errors: list[Exception] = []

    def counter(name: str):  # type: ignore[no-untyped-def]
        def bump(_model: object) -> None:
            counts[name] += 1

        return bump

    conn = open_replay(path)
    conn.errors.subscribe(errors.append)
    conn.ticker(SYMBOL).subscribe(counter("ticker"))
    conn.trades(SYMBOL).subscribe(counter("trades"))
    conn.diff_depth(SYMBOL).subscribe(counter("diff_depth"))
    gc.collect()
    started = time.perf_counter()
    stats = conn.run()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"replay reported {len(errors)} errors, first: {errors[0]!r}")
    return wall, counts, stats.recorded_ms / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0, help="recorded frames per second")
    parser.add_argument(
        "--sync-every",
        type=int,
        default=0,
        metavar="N",
        help="sync the file every N frames while writing, as the recorder does every second",
    )
    parser.add_argument("--write-only", action="store_true", help="measure the writer only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.jsonl.gz"
        started = time.perf_counter()
        recorded = generate(path, args.frames, args.rate, args.sync_every)
        generated = time.perf_counter() - started
        size = os.path.getsize(path)
        print(
            f"generated {args.frames:,} frames ({recorded / 3600:.2f} h at {args.rate:g}/s) in "
            f"{generated:.1f}s ({generated / args.frames * 1e6:.2f} us per line, frame "
            f"building included), file {size / 2**20:.2f} MiB, sync every "
            f"{args.sync_every or 'never'}"
        )
        if args.sync_every:
            syncs = args.frames // args.sync_every
            print(
                f"sync      {syncs:,} syncs, {SYNC_SECONDS[0] / max(syncs, 1) * 1e6:.1f} us each "
                f"= {SYNC_SECONDS[0] / args.frames * 1e9:.0f} ns per line amortized"
            )
        if args.write_only:
            return
        rss_before = _peak_rss_mib()
        base = baseline(path)
        print(
            f"baseline  decompress + decode only: {base:.2f}s  ({args.frames / base:,.0f} frames/s)"
        )
        wall, counts, replayed = replay(path)
        rss_after = _peak_rss_mib()
        models = sum(counts.values())
        print(
            f"replay    through the parsers:     {wall:.2f}s  ({args.frames / wall:,.0f} frames/s, "
            f"{models:,} models: {counts})"
        )
        print(
            f"speed-up  {replayed:,.0f}s of recording in {wall:.2f}s = {replayed / wall:,.0f}x "
            "real time"
        )
        print(f"memory    peak RSS {rss_after:.0f} MiB (before the replay: {rss_before:.0f} MiB)")
        if models != args.frames:
            raise SystemExit(f"expected {args.frames} models, got {models}")


if __name__ == "__main__":
    main()
