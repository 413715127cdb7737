"""Recording cost per line and compression ratio: zstd (the default) against gzip.

Run::

    .venv/bin/python benchmarks/bench_recording.py               # 200,000 frames, best of 5
    .venv/bin/python benchmarks/bench_recording.py --frames 20000 --runs 1   # smoke run

The frames are ``bench_replay.py``'s synthetic Binance combined-stream mix (15 trades,
4 depth updates, 1 ticker per 20 frames), written through ``RecordingWriter`` exactly as
the recorder writes them (one ``orjson.dumps`` + compressor write per line, a
``sync()`` every 1,000 lines as the recorder's 1-s flush would at 1,000 frames/s).
CPU time (``time.process_time``) per line, interleaved runs, best of N; the reading
side is ``RecordingReader`` iterating the file (decompress + split + ``orjson.loads``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_replay import generate

from rxconnector.recording import ZSTD_LEVEL
from rxconnector.replay.reader import RecordingReader
from rxconnector.replay.writer import RecordingWriter

SUFFIX = {"zstd": ".jsonl.zst", "gzip": ".jsonl.gz"}


def _write(path: Path, frames: int) -> float:
    original = RecordingWriter.frame
    count = 0

    def frame(self: RecordingWriter, *args: object, **kwargs: object) -> None:
        nonlocal count
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        count += 1
        if count % 1000 == 0:
            self.sync()

    RecordingWriter.frame = frame  # type: ignore[method-assign]
    try:
        start = time.process_time()
        generate(path, frames, 200.0)
        return time.process_time() - start
    finally:
        RecordingWriter.frame = original  # type: ignore[method-assign]


def _read(path: Path) -> float:
    start = time.process_time()
    with RecordingReader(path) as reader:
        n = sum(1 for _ in reader)
    assert n >= 1
    return time.process_time() - start


def _compress(kind: str, lines: list[bytes]) -> float:
    """The compressor alone: each line written, a sync flush every 1,000 lines."""
    sink = io.BytesIO()
    if kind == "zstd":
        out: Any = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).stream_writer(
            sink
        )
        mode: int = zstandard.FLUSH_BLOCK
    else:
        out = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=5, mtime=0)
        mode = zlib.Z_SYNC_FLUSH
    start = time.process_time()
    write = out.write
    for n, line in enumerate(lines, 1):
        write(line)
        if n % 1000 == 0:
            out.flush(mode)
    out.close()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # The same lines generated without compression: the baseline cost and the raw size.
    best_write = {"zstd": float("inf"), "gzip": float("inf")}
    best_read = dict(best_write)
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            for kind, suffix in SUFFIX.items():
                path = Path(folder) / f"bench{suffix}"
                best_write[kind] = min(best_write[kind], _write(path, args.frames))
                sizes[kind] = path.stat().st_size
                best_read[kind] = min(best_read[kind], _read(path))
        with zstandard.ZstdDecompressor().stream_reader(
            open(Path(folder) / "bench.jsonl.zst", "rb"), read_across_frames=True
        ) as stream:
            text = stream.read()
        raw = len(text)
        lines = text.splitlines(keepends=True)
        compress_only = {kind: float("inf") for kind in SUFFIX}
        for _ in range(args.runs):
            for kind in SUFFIX:
                compress_only[kind] = min(compress_only[kind], _compress(kind, lines))
    print(
        f"{args.frames:,} frames (+ header and end line), {raw / 2**20:.1f} MiB of JSON lines, "
        f"best of {args.runs}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  {'':6s} {'compressor µs/line':>18s} {'write CPU µs/line':>18s} "
        f"{'read CPU µs/line':>17s} {'file':>12s} {'ratio':>7s}"
    )
    for kind in SUFFIX:
        print(
            f"  {kind:6s} {compress_only[kind] / len(lines) * 1e6:18.2f} "
            f"{best_write[kind] / args.frames * 1e6:18.2f} "
            f"{best_read[kind] / args.frames * 1e6:17.2f} {sizes[kind] / 2**20:10.2f} MiB "
            f"{raw / sizes[kind]:6.1f}x"
        )
    print(
        "  (write includes generating each frame's text, the same for both: compare the difference)"
    )


if __name__ == "__main__":
    main()
