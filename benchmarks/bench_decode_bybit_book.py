"""Typed one-pass decoding of Bybit v5 order-book frames against orjson + dict parsing.

Run::

    .venv/bin/python benchmarks/bench_decode_bybit_book.py --number 2000 --repeat 30
    RXC_PURE_PYTHON=1 .venv/bin/python benchmarks/bench_decode_bybit_book.py   # pure core

For every feed of the ``orderbook.{1|50|200|1000}.{S}`` / ``orderbook.full.{S}`` topics,
raw frame bytes are taken to what the feed emits (or, for the maintained book, to the
book state and the emitted view), both ways:

* **dict**: ``orjson.loads`` of the frame, then today's parser
  (:mod:`rxconnector.exchanges.bybit.parsers`: ``parse_depth``, the merger's parser,
  ``book_ticker_parser``), ``Decimal`` per number;
* **typed**: the frame parser of :mod:`rxconnector.exchanges.bybit.wire_book` (one
  ``msgspec`` pass, ids typed, the level arrays kept raw and packed by
  ``wire_levels.pack_levels``).

Feeds: ``diff_depth`` / ``full_depth`` (bytes → ``DepthUpdate``), ``book_diffs`` alone
(bytes → the event the maintained book reads), ``order_book`` (bytes → event →
``BybitDepthSync.on_update`` → the view it emits, window trimmed), ``depth(levels=20)``
(bytes → merged ``OrderBook``) and ``book_ticker`` (``orderbook.1`` → ``BookTicker``).

Frames: the documented examples (``bybit.v5.ws.orderbook.snapshot`` / ``.delta`` /
``orderbook_full.delta`` of ``tests/fixtures/examples.json``) and simulator-shaped
streams (``orjson.dumps`` of the simulator's message layout: a 200-level snapshot, then
deltas of ``k`` changed levels per side, ``u`` + 1 each) for k = 1, 5, 20, 50, 200.
Every path's outputs are asserted equal frame by frame before timing. The two are timed
alternately in each of ``--repeat`` rounds of ``--number`` frames (a loaded machine then
slows both); the figures are the best round of each, ``ratio`` = dict / typed (above 1:
typed faster), and ``median`` the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxconnector.exchanges._parsing import model_builder, parse_levels
from rxconnector.exchanges.book_sync import APPLIED
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire_book as w
from rxconnector.exchanges.bybit.book_sync import BybitDepthSync
from rxconnector.exchanges.wire_levels import pack_levels
from rxconnector.models import OrderBook

_OrderBook = model_builder(OrderBook)

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "examples.json"
SYMBOL = "BTCUSDT"


def _levels(rng: random.Random, prices: list[int], fresh: bool) -> list[list[str]]:
    out = []
    for tick in prices:
        size = rng.randrange(0 if not fresh else 1, 5_000)
        out.append([f"{tick // 10}.{tick % 10}", "0" if size == 0 else f"{size / 1000:.3f}"])
    return out


def stream(
    changed: int | tuple[int, int], deltas: int, depth: int = 200, seed: int = 7
) -> list[bytes]:
    """A simulator-shaped ``orderbook.{depth}`` stream: snapshot, then ``deltas`` deltas
    of ``changed`` levels per side (or a number drawn from the ``(low, high)`` range per
    delta; sizes set or ``"0"``), ``u`` and ``seq`` growing."""
    rng = random.Random(seed)
    topic = f"orderbook.{depth}.{SYMBOL}"
    mid = 300_000  # 30000.0 in ticks of 0.1
    bids = list(range(mid - 1, mid - 1 - depth, -1))
    asks = list(range(mid + 1, mid + 1 + depth))
    u, seq, ts = 1_000_000, 50_000_000_000, 1_700_000_000_000

    def message(kind: str, b: list[list[str]], a: list[list[str]]) -> bytes:
        data = {"s": SYMBOL, "b": b, "a": a, "u": u, "seq": seq}
        frame = {"topic": topic, "type": kind, "ts": ts, "data": data, "cts": ts - 2}
        return orjson.dumps(frame)

    frames = [message("snapshot", _levels(rng, bids, True), _levels(rng, asks, True))]
    for _ in range(deltas):
        u += 1
        seq += rng.randrange(1, 50)
        ts += 20
        n = min(changed if isinstance(changed, int) else rng.randint(*changed), depth)
        frames.append(
            message(
                "delta",
                _levels(rng, sorted(rng.sample(bids, n), reverse=True), False),
                _levels(rng, sorted(rng.sample(asks, n)), False),
            )
        )
    return frames


def documented() -> dict[str, bytes]:
    examples = orjson.loads(EXAMPLES.read_bytes())
    return {
        key: orjson.dumps(examples[key])
        for key in (
            "bybit.v5.ws.orderbook.snapshot",
            "bybit.v5.ws.orderbook.delta",
            "bybit.v5.ws.orderbook_full.delta",
        )
    }


# ----------------------------------------------------------------------------- paths


def _topic(frame: bytes) -> str:
    topic: str = orjson.loads(frame)["topic"]
    return topic


def depth_update_paths(frames: list[bytes]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """bytes → DepthUpdate (diff_depth / full_depth), every frame of ``frames``."""
    typed = w.depth_update_frame_parser(_topic(frames[0]))
    loads, parse = orjson.loads, p.parse_depth
    for frame in frames:
        assert typed(frame, 1.0) == parse(loads(frame), 1.0)

    def dict_path() -> None:
        for frame in frames:
            parse(loads(frame), 1.0)

    def typed_path() -> None:
        for frame in frames:
            typed(frame, 1.0)

    return dict_path, typed_path


def book_event_paths(frames: list[bytes]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """bytes → the maintained book's event (DepthUpdate vs PackedDepthUpdate)."""
    typed = w.book_frame_parser(_topic(frames[0]))
    loads, parse = orjson.loads, p.parse_depth
    for frame in frames:
        a, b = typed(frame, 1.0), parse(loads(frame), 1.0)
        assert (a.final_update_id, a.sequence, a.is_snapshot, a.event_time) == (
            b.final_update_id,
            b.sequence,
            b.is_snapshot,
            b.event_time,
        )
        assert tuple(a.bids) == b.bids and tuple(a.asks) == b.asks

    def dict_path() -> None:
        for frame in frames:
            parse(loads(frame), 1.0)

    def typed_path() -> None:
        for frame in frames:
            typed(frame, 1.0)

    return dict_path, typed_path


def order_book_paths(
    frames: list[bytes], depth: int = 20, window: int = 200
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """bytes → event → BybitDepthSync → the emitted view (the maintained book)."""
    typed = w.book_frame_parser(_topic(frames[0]))
    loads, parse = orjson.loads, p.parse_depth
    a_sync, b_sync = BybitDepthSync(depth, window=window), BybitDepthSync(depth, window=window)
    for frame in frames:
        a = a_sync.on_update(typed(frame, 1.0))
        b = b_sync.on_update(parse(loads(frame), 1.0))
        assert a == b == APPLIED, (a, b)
        assert a_sync.view() == b_sync.view()
        assert [(str(x), str(y)) for x, y in a_sync.view().bids] == [
            (str(x), str(y)) for x, y in b_sync.view().bids
        ]

    def run(read: Callable[[bytes], Any]) -> Callable[[], None]:
        sync = BybitDepthSync(depth, window=window)
        on_update, view = sync.on_update, sync.view

        def go() -> None:
            for frame in frames:
                if on_update(read(frame)) is APPLIED:
                    view()

        return go

    return run(lambda f: parse(loads(f), 1.0)), run(lambda f: typed(f, 1.0))


class MainMerger:
    """``BybitBookMerger`` as on main before this work (b0f4bd7): a dict per side,
    the whole side sorted after every message; the "before" of the merged feeds."""

    def __init__(self) -> None:
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._synced = False

    def apply(self, message: Any, received_at: float, levels: int) -> OrderBook:
        data = message["data"]
        symbol = data["s"]
        u = int(data["u"])
        event_time = int(message["ts"])
        bids = parse_levels(data["b"])
        asks = parse_levels(data["a"])
        if message["type"] == "snapshot" or u == 1:
            self._bids = dict(bids)
            self._asks = dict(asks)
            self._synced = True
        elif not self._synced:
            raise ValueError(f"orderbook delta for {symbol} before any snapshot")
        else:
            _apply_side(self._bids, bids)
            _apply_side(self._asks, asks)
        return _OrderBook(
            symbol=symbol,
            bids=tuple(sorted(self._bids.items(), reverse=True)[:levels]),
            asks=tuple(sorted(self._asks.items())[:levels]),
            update_id=u,
            event_time=event_time,
            received_at=received_at,
        )

    def parser(self, levels: int) -> Callable[[Any, float], OrderBook]:
        def parse(message: Any, received_at: float) -> OrderBook:
            return self.apply(message, received_at, levels)

        return parse


def _apply_side(side: dict[Decimal, Decimal], levels: Any) -> None:
    for price, qty in levels:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)


def merged_paths(
    frames: list[bytes], levels: int, main: bool = False
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """bytes → merged OrderBook cut at ``levels`` (the ``depth`` feed); the dict path
    on today's merger, or with ``main`` on main's (:class:`MainMerger`)."""
    topic = _topic(frames[0])
    dict_parse = (MainMerger() if main else p.BybitBookMerger()).parser(levels)
    typed = w.merged_book_frame_parser(topic, p.BybitBookMerger(), levels)
    loads = orjson.loads
    for frame in frames:
        assert typed(frame, 1.0) == dict_parse(loads(frame), 1.0)

    def dict_path() -> None:
        for frame in frames:
            dict_parse(loads(frame), 1.0)

    def typed_path() -> None:
        for frame in frames:
            typed(frame, 1.0)

    return dict_path, typed_path


def book_ticker_paths(
    frames: list[bytes], main: bool = False
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``orderbook.1`` bytes → BookTicker (merged; ``main``: the dict path as on main)."""
    topic = _topic(frames[0])
    dict_parse = p.book_ticker_parser(cast(Any, MainMerger() if main else p.BybitBookMerger()))
    typed = w.book_ticker_frame_parser(topic, p.BybitBookMerger())
    loads = orjson.loads
    for frame in frames:
        assert list(typed(frame, 1.0)) == list(dict_parse(loads(frame), 1.0))

    def dict_path() -> None:
        for frame in frames:
            dict_parse(loads(frame), 1.0)

    def typed_path() -> None:
        for frame in frames:
            typed(frame, 1.0)

    return dict_path, typed_path


def level1_stream(count: int) -> list[bytes]:
    """``orderbook.1`` as Bybit sends it today: a snapshot of one level per side each."""
    rng = random.Random(3)
    out = []
    for i in range(count):
        bid = 300_000 - rng.randrange(1, 5)
        data = {
            "s": SYMBOL,
            "b": [[f"{bid // 10}.{bid % 10}", f"{rng.randrange(1, 9000) / 1000:.3f}"]],
            "a": [[f"{(bid + 2) // 10}.{(bid + 2) % 10}", f"{rng.randrange(1, 9000) / 1000:.3f}"]],
            "u": 5_000 + i,
            "seq": 90_000 + 3 * i,
        }
        frame = {"topic": f"orderbook.1.{SYMBOL}", "type": "snapshot", "ts": 1_700 + i}
        out.append(orjson.dumps({**frame, "data": data, "cts": 1_699 + i}))
    return out


# ----------------------------------------------------------------------------- timing


def interleaved(
    first: Callable[[], Any], second: Callable[[], Any], number: int, repeat: int
) -> tuple[float, float, float]:
    """Best time of each and the median per-round ratio first/second, timed alternately."""
    best_a = best_b = float("inf")
    ratios = []
    for _ in range(repeat):
        a = timeit.timeit(first, number=number)
        b = timeit.timeit(second, number=number)
        best_a, best_b = min(best_a, a), min(best_b, b)
        ratios.append(a / b)
    return best_a, best_b, statistics.median(ratios)


Paths = tuple[Callable[[], Any], Callable[[], Any]]


def row(name: str, frames: int, paths: Paths, args: Any) -> None:
    # each call handles ``frames`` frames: ``number`` frames in all per round
    calls = max(1, args.number // frames)
    a, b, median = interleaved(*paths, calls, args.repeat)
    per = calls * frames
    print(f"  {name:50s} {a / per * 1e6:9.2f} {b / per * 1e6:9.2f} {a / b:6.2f} {median:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=2000, help="frames per round")
    parser.add_argument("--repeat", type=int, default=30, help="rounds (best one shown)")
    args = parser.parse_args()
    core = pack_levels.__module__
    print(
        f"pack_levels from {core}; {args.repeat} rounds x {args.number:,} frames; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'feed / frames':50s} {'dict µs':>9s} {'typed µs':>9s} {'ratio':>6s} {'median':>7s}")
    docs = documented()
    snap, delta, full = docs.values()
    row("diff_depth: documented snapshot (2+2)", 1, depth_update_paths([snap]), args)
    row("diff_depth: documented delta (5+7)", 1, depth_update_paths([delta]), args)
    row("full_depth: documented orderbook.full (5+0)", 1, depth_update_paths([full]), args)
    row("book_diffs event: documented delta (5+7)", 1, book_event_paths([delta]), args)
    row("order_book: documented snapshot", 1, order_book_paths([snap], 2, 50), args)
    for main, before in ((True, "main's dict"), (False, "dict now")):
        docs_pair = merged_paths([snap, delta], 20, main)
        row(f"depth(20): documented snap + delta, {before}", 2, docs_pair, args)
        ticker = level1_stream(50)
        ticker_paths = book_ticker_paths(ticker, main)
        row(f"book_ticker: orderbook.1 (1+1), {before}", len(ticker), ticker_paths, args)
    for changed in (1, 5, 20, 50, 200):
        frames = stream(changed, 40)
        deltas = frames[1:]
        label = f"k={changed}"
        row(f"diff_depth: deltas {label}", len(deltas), depth_update_paths(deltas), args)
        row(f"book_diffs event: deltas {label}", len(deltas), book_event_paths(deltas), args)
        n = len(frames)
        row(f"order_book: snapshot + 40 deltas {label}", n, order_book_paths(frames), args)
        row(f"depth(20): 40 deltas {label}, main's dict", n, merged_paths(frames, 20, True), args)
        row(f"depth(20): 40 deltas {label}, dict now", n, merged_paths(frames, 20), args)
    row("diff_depth: snapshot of 200+200", 1, depth_update_paths(stream(1, 0)), args)


if __name__ == "__main__":
    main()
