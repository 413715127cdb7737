"""The compiled order-book core against the pure-Python one: CPU per frame and memory.

Run::

    .venv/bin/python benchmarks/bench_cbook.py              # ~1 min
    .venv/bin/python benchmarks/bench_cbook.py --quick      # smoke run

1. **Per frame** (in process, best of ``--runs``, interleaved): Binance ``depthUpdate``
   frames of the "5-20 levels per side" profile of issue #12 (``make_market`` of
   ``bench_orderbook.py``), their ``b``/``a`` arrays cut out as raw JSON text beforehand
   (``msgspec.Raw``, as the one-pass decoder of ``exchanges/binance/wire.py`` hands them
   over). Timed per frame: pack both
   sides (``pack_levels``) + ``book.apply`` + a top-20 view of both sides, for

   * pure Python: ``wire_levels.pack_levels_py`` (``parse_levels(orjson.loads(...))``)
     into ``LocalBook``;
   * compiled: ``_cbook.pack_levels`` into ``_cbook.CBook``.

   The bare ``orjson.loads`` of the whole frame is timed in the same rounds as the
   yardstick the issue's ratios use. Two more rows apply the same levels already parsed
   into ``Decimal`` tuples (the form Bybit's parser and the public ``diff_depth`` hand
   the book): apply + view only, ``LocalBook`` vs ``CBook``.
2. **Memory** (a fresh process per implementation): 1,000 books x 1,000 levels per side
   loaded from Decimal snapshots (what the REST snapshot parser hands the book), then
   after 200 frames of updates and a top-20 read per book; RSS growth and total RSS.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_orderbook import MID, SNAPSHOT_LEVELS, _price, _qty, make_market

from rxconnector.exchanges._parsing import parse_levels
from rxconnector.exchanges.book import LocalBook
from rxconnector.exchanges.wire_levels import pack_levels_py

try:
    from rxconnector.exchanges import _cbook
except ImportError:  # not built: the compiled half cannot run
    _cbook = None  # type: ignore[assignment]

DEPTH = 20


class _Sides(msgspec.Struct):
    """The two level arrays of a depthUpdate, kept as raw JSON text."""

    b: msgspec.Raw
    a: msgspec.Raw


class _Wrapped(msgspec.Struct):
    """A combined-stream frame (``{"stream": ..., "data": {...}}``)."""

    data: _Sides


def raw_sides(frames: list[bytes]) -> list[tuple[bytes, bytes]]:
    decode = msgspec.json.Decoder(_Wrapped).decode
    return [(bytes(w.data.b), bytes(w.data.a)) for w in map(decode, frames)]


def snapshot_levels(payload: dict[str, Any]) -> tuple[Any, Any]:
    return parse_levels(payload["bids"]), parse_levels(payload["asks"])


def per_frame(snapshot: dict[str, Any], frames: list[bytes], runs: int) -> list[str]:
    sides = raw_sides(frames)
    bids0, asks0 = snapshot_levels(snapshot)
    n = len(frames)

    def bare() -> None:
        for frame in frames:
            orjson.loads(frame)

    def run(make: Callable[[], Any], pack: Callable[[bytes], Any]) -> Callable[[], None]:
        def go() -> None:
            book = make()
            book.load_snapshot(bids0, asks0, limit=SNAPSHOT_LEVELS)
            apply, top_bids, top_asks = book.apply, book.top_bids, book.top_asks
            for b, a in sides:
                apply(pack(b), pack(a))
                top_bids(DEPTH)
                top_asks(DEPTH)
            assert book.is_consistent(DEPTH)

        return go

    parsed = {b: pack_levels_py(b) for pair in sides for b in pair}

    names = ["bare orjson.loads (yardstick)", "pure Python (LocalBook)"]
    fns = [bare, run(LocalBook, pack_levels_py)]
    if _cbook is not None:
        names.append("compiled (CBook)")
        fns.append(run(_cbook.CBook, _cbook.pack_levels))
        # Levels that arrive as Decimal tuples (Bybit, the public diff_depth path): the
        # parse is done beforehand, only apply + view are timed.
        names += ["Decimal tuples: LocalBook", "Decimal tuples: CBook"]
        fns += [run(LocalBook, parsed.__getitem__), run(_cbook.CBook, parsed.__getitem__)]
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for k, fn in enumerate(fns):
            gc.collect()
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    lines = [
        f"  {name:<34} {t / n * 1e6:7.2f} us/frame" for name, t in zip(names, best, strict=True)
    ]
    if len(best) == 5:
        lines.append(
            f"  compiled vs pure: {best[1] / best[2]:.1f}x faster; pack+apply+view per frame "
            f"= {best[2] / best[0]:.2f}x (compiled) vs {best[1] / best[0]:.2f}x (pure) "
            "a bare orjson.loads"
        )
    return lines


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory(impl: str, books: int, levels: int) -> str:
    """Fresh process: ``books`` books of ``levels`` levels per side, then updates."""
    import random

    rng = random.Random(3)
    make: Any = LocalBook if impl == "pure" else _cbook.CBook
    pack: Any = pack_levels_py if impl == "pure" else _cbook.pack_levels
    _, frames = make_market(200, (5, 20))
    sides = raw_sides(frames)

    def side(start: int, step: int) -> list[Any]:
        return [[_price(start + step * i), _qty(rng)] for i in range(levels)]

    gc.collect()
    rss0 = _rss_mib()
    kept = []
    for _ in range(books):
        book = make()
        book.load_snapshot(
            parse_levels(side(MID - 1, -1)), parse_levels(side(MID + 1, 1)), limit=levels
        )
        kept.append(book)
    gc.collect()
    rss1 = _rss_mib()
    for book in kept:
        for b, a in sides:
            book.apply(pack(b), pack(a))
        book.top_bids(DEPTH)
        book.top_asks(DEPTH)
    gc.collect()
    rss2 = _rss_mib()
    per = books * levels * 2
    return (
        f"  {impl:<8} loaded: +{rss1 - rss0:6.1f} MiB ({(rss1 - rss0) * 2**20 / per:4.0f} B/level),"
        f" after 200 frames + top-20 read: +{rss2 - rss0:6.1f} MiB; process RSS {rss2:6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--books", type=int, default=1000)
    parser.add_argument("--book-levels", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-only", choices=["pure", "compiled"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs, args.books = 2_000, 2, 50
    if args.memory_only:
        print(memory(args.memory_only, args.books, args.book_levels))
        return
    print(
        f"Python {sys.version.split()[0]}, compiled core "
        f"{'built' if _cbook is not None else 'NOT built'}, {os.cpu_count()} CPUs, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    snapshot, frames = make_market(args.events, (5, 20))
    changes = sum(len(pack_levels_py(b)) + len(pack_levels_py(a)) for b, a in raw_sides(frames))
    changes /= len(frames)
    print(
        f"\n-- 1. per frame: {len(frames):,} frames, {changes:.1f} level changes per frame, "
        f"book {SNAPSHOT_LEVELS} levels/side, top {DEPTH} (best of {args.runs})"
    )
    print("\n".join(per_frame(snapshot, frames, args.runs)))
    print(f"   (load average {os.getloadavg()[0]:.2f})")
    print(f"\n-- 2. memory: {args.books:,} books x {args.book_levels:,} levels per side")
    sizes = ["--books", str(args.books), "--book-levels", str(args.book_levels)]
    for impl in ["pure", "compiled"] if _cbook is not None else ["pure"]:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-only", impl, *sizes],
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout.rstrip())
    print(f"   (load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
