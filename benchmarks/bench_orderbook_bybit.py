"""A maintained Bybit order book in process: bytes → ``Connector.order_book``'s chain →
subscriber, on the typed wire path and on the dict path, against ``orjson.loads`` alone.

Run::

    .venv/bin/python benchmarks/bench_orderbook_bybit.py --frames 5000 --runs 7

The frames are simulator-shaped ``orderbook.50.BTCUSDT`` messages (a 50-level snapshot,
then deltas of 5-20 changed levels per side, ``u`` + 1 each: the issue's "5-20 levels
per side" profile; ``--levels 1-5`` etc. for others), written as Bybit writes them.
They go through what ``Connector.order_book(symbol, 20)`` builds behind the hub (as in
``bench_orderbook.py``'s ``connector_chain``): the parse step's multicast with the
connector's own ``_message_parser`` of ``BybitFeeds().book_diffs``, then
``maintain_order_book`` with ``BookRule.BYBIT_DEPTH`` (window 50), ``conflate`` and
``share``, to a counting subscriber. A ``Subject`` stands in for the hub and is fed
what the hub hands over: the raw frame when the book's spec has a ``parse_frame``
(typed), else the decoded message (the hub's ``orjson.loads`` counted, as it runs there).

Printed: best process-CPU µs per frame of each (interleaved rounds), typed vs dict and
each against the decode-only baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import reactivex
from reactivex.scheduler import ImmediateScheduler
from reactivex.subject import Subject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_decode_bybit_book import stream

from rxconnector.connector import _message_parser
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.exchanges.bybit import wire_book
from rxconnector.exchanges.bybit.feeds import BybitFeeds
from rxconnector.exchanges.wire_levels import pack_levels
from rxconnector.operators import conflate, share
from rxconnector.operators._share import shared_deferred
from rxconnector.streams.orderbook import maintain_order_book

SYMBOL = "BTCUSDT"
DEPTH = 20
WINDOW = 50


def chain(frames: list[bytes], typed: bool) -> Callable[[], int]:
    """One run of ``frames`` through the connector's book chain; returns frames seen."""
    saved = wire_book.TYPED_IS_FASTER
    wire_book.TYPED_IS_FASTER = typed
    try:
        spec = BybitFeeds("spot").book_diffs(SYMBOL, DEPTH)
    finally:
        wire_book.TYPED_IS_FASTER = saved
    assert (spec.parse_frame is not None) is typed and spec.topic == f"orderbook.50.{SYMBOL}"
    loads = orjson.loads

    def run() -> int:
        hub: Subject[Any] = Subject()
        problems: list[Exception] = []
        diffs: Any = shared_deferred(
            lambda _: hub, problems.append, _message_parser(spec, problems.append, True)
        )

        def build(_: Any) -> Any:
            return maintain_order_book(
                diffs, None, BookRule.BYBIT_DEPTH, DEPTH, topic=spec.topic, window=WINDOW,
                report=problems.append,
            )  # fmt: skip

        seen = [0]

        def count(_: Any) -> None:
            seen[0] += 1

        reactivex.defer(build).pipe(conflate(ImmediateScheduler()), share()).subscribe(count)
        push = hub.on_next
        if typed:
            for frame in frames:
                push((0.0, frame))
        else:
            for frame in frames:
                push((0.0, loads(frame)))
        assert not problems and seen[0] == len(frames), (problems[:3], seen[0])
        return len(frames)

    return run


def decode_only(frames: list[bytes]) -> Callable[[], int]:
    loads = orjson.loads

    def run() -> int:
        for frame in frames:
            loads(frame)
        return len(frames)

    return run


def best_interleaved(runs: int, fns: list[Callable[[], int]]) -> list[float]:
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--levels", default="5-20", help="changed levels per side: N or A-B")
    args = parser.parse_args()
    low, _, high = args.levels.partition("-")
    levels: int | tuple[int, int] = (int(low), int(high)) if high else int(low)
    frames = stream(levels, args.frames - 1, depth=WINDOW)
    fns = [decode_only(frames), chain(frames, typed=False), chain(frames, typed=True)]
    base, dict_path, typed = (t / len(frames) * 1e6 for t in best_interleaved(args.runs, fns))
    print(
        f"Bybit orderbook.50 -> order_book({DEPTH}), {len(frames):,} frames, {args.levels} "
        f"changed levels per side; pack_levels from {pack_levels.__module__}; best of "
        f"{args.runs}; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  orjson.loads only (baseline)      {base:7.2f} µs/frame  {1e6 / base:>10,.0f}/s")
    for name, us in (
        ("dict path (orjson + parse_depth)", dict_path),
        ("typed path (wire_book)", typed),
    ):
        print(
            f"  {name:33s} {us:7.2f} µs/frame  {1e6 / us:>10,.0f}/s  "
            f"{base / us:5.2f}x of the baseline"
        )
    print(f"  typed / dict speed-up: {dict_path / typed:.2f}x")


if __name__ == "__main__":
    main()
