"""Order book throughput and memory: how many diff updates per second become a top-20 book.

Run::

    .venv/bin/python benchmarks/bench_orderbook.py            # everything (~1-2 min)
    .venv/bin/python benchmarks/bench_orderbook.py --quick    # smaller, for a smoke run

No network: frames are synthetic Binance Spot ``depthUpdate`` payloads (the documented
shape, PROTOCOL.md §A1.4) generated from a simulated market that never crosses and never
leaves the snapshot's range, so every update is applied (the script asserts it).

Sections:

1. **Pipeline** (in process, best of 3): decode only (``orjson.loads``, the baseline the
   task asks for) → + parse (``parse_depth_update``) → + sync rule and book update →
   + a top-20 :class:`OrderBook` per update → the same through the Rx operator
   ``maintain_order_book`` with a subscriber. Stage costs are the differences.
2. **Key types**: the same parsed updates applied to alternative book layouts, to back
   the choice documented in ``rxconnector/exchanges/book.py``.
3. **Memory** (fresh subprocess): 1,000 books of 1,000 levels per side, tracemalloc and
   peak RSS, split into "the parsed levels themselves" and "what the book adds".
4. **Loopback socket**: an aiohttp WebSocket server in another process pushes the frames
   as fast as it can; the client receives, decodes, parses, maintains the book and emits
   a top-20 book per update (this is what "through a real socket" measures).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from bisect import bisect_left
from collections.abc import Callable, Iterable
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import reactivex
from reactivex.subject import Subject
from sortedcontainers import SortedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxconnector.exchanges._parsing import parse_levels
from rxconnector.exchanges.binance.book_sync import BinanceSpotSync
from rxconnector.exchanges.binance.parsers import parse_depth_update
from rxconnector.exchanges.book import LocalBook
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.exchanges.book_sync import APPLIED
from rxconnector.models import DepthUpdate, Level, OrderBook
from rxconnector.streams.orderbook import maintain_order_book

#: What order_book() reads the diff frames with.
book_reader = parse_depth_update
DEPTH = 20
SNAPSHOT_LEVELS = 1000
TICK = Decimal("0.01")
MID = 3_000_000  # in ticks: 30000.00


# =====================================================================================
# Synthetic market
# =====================================================================================


def _qty(rng: random.Random) -> str:
    return f"{rng.randint(1, 500_000) / 1e5:.8f}"


def _price(tick: int) -> str:
    return f"{tick // 100}.{tick % 100:02d}"


def make_market(
    events: int, levels: int | tuple[int, int], seed: int = 7
) -> tuple[dict[str, Any], list[bytes]]:
    """A REST snapshot payload and ``events`` pre-encoded depthUpdate frames.

    ``levels`` changes per event on average (at least 1), or ``(lo, hi)``: between lo
    and hi changes per side, uniformly (the "5-20 levels per side" profile of issue
    #12, ≈25 changes per frame). Changes cluster near the top
    (distance from the touch ~ exponential, mean 12 ticks), 20 % remove a level, the mid
    walks one tick at a time with mean reversion, and the touch moves consistently
    (removing the ask the bid steps onto and vice versa), so the book never crosses.
    """
    rng = random.Random(seed)
    mid = MID
    bids = {mid - 1 - i: _qty(rng) for i in range(SNAPSHOT_LEVELS)}
    asks = {mid + 1 + i: _qty(rng) for i in range(SNAPSHOT_LEVELS)}
    snapshot = {
        "lastUpdateId": 1000,
        "bids": [[_price(t), q] for t, q in sorted(bids.items(), reverse=True)],
        "asks": [[_price(t), q] for t, q in sorted(asks.items())],
    }
    low, high = mid - SNAPSHOT_LEVELS + 100, mid + SNAPSHOT_LEVELS - 100
    update_id = 1001
    frames: list[bytes] = []
    event_time = 1_700_000_000_000
    for _ in range(events):
        b: dict[int, str] = {}
        a: dict[int, str] = {}
        if rng.random() < 0.3:  # the mid moves one tick, reverting towards MID
            step = 1 if rng.random() < 0.5 + (MID - mid) / 400 else -1
            if step > 0:
                asks.pop(mid + 1, None)
                a[mid + 1] = "0"
                bids[mid] = b[mid] = _qty(rng)
            else:
                bids.pop(mid - 1, None)
                b[mid - 1] = "0"
                asks[mid] = a[mid] = _qty(rng)
            mid += step
        if isinstance(levels, tuple):
            sides = [True] * rng.randint(*levels) + [False] * rng.randint(*levels)
        else:
            sides = [rng.random() < 0.5 for _ in range(max(1, int(rng.expovariate(1 / levels))))]
        for bid_side in sides:
            distance = 1 + min(int(rng.expovariate(1 / 12)), 700)
            if bid_side:
                tick = mid - distance
                if rng.random() < 0.2 and tick in bids:
                    del bids[tick]
                    b[tick] = "0"
                elif tick >= low:
                    bids[tick] = b[tick] = _qty(rng)
            else:
                tick = mid + distance
                if rng.random() < 0.2 and tick in asks:
                    del asks[tick]
                    a[tick] = "0"
                elif tick <= high:
                    asks[tick] = a[tick] = _qty(rng)
        n = rng.randint(1, 3)  # Binance events cover several update ids
        event_time += 100
        frames.append(
            orjson.dumps(
                {
                    "e": "depthUpdate",
                    "E": event_time,
                    "s": "BTCUSDT",
                    "U": update_id,
                    "u": update_id + n - 1,
                    "b": [[_price(t), q] for t, q in b.items()],
                    "a": [[_price(t), q] for t, q in a.items()],
                }
            )
        )
        update_id += n
    return snapshot, frames


def snapshot_book(payload: dict[str, Any]) -> OrderBook:
    bids = tuple((Decimal(p), Decimal(q)) for p, q in payload["bids"])
    asks = tuple((Decimal(p), Decimal(q)) for p, q in payload["asks"])
    return OrderBook("BTCUSDT", bids, asks, payload["lastUpdateId"], 0, 0.0)


def first_event() -> Any:
    """An empty event ending at the snapshot's id: buffered first, so the snapshot
    (lastUpdateId 1000 >= its U) is accepted and the frames (from 1001) all apply."""
    return DepthUpdate("BTCUSDT", 1000, 1000, (), (), 0)


def new_sync(snapshot: OrderBook, first: Any) -> BinanceSpotSync:
    sync = BinanceSpotSync(DEPTH, snapshot_limit=SNAPSHOT_LEVELS)
    sync.on_update(first)
    assert sync.on_snapshot(snapshot) is APPLIED
    return sync


# =====================================================================================
# 1. Pipeline
# =====================================================================================


def best_of(runs: int, fn: Callable[[], int]) -> float:
    """Best wall time of ``runs`` runs of ``fn``."""
    return best_interleaved(runs, [fn])[0]


def best_interleaved(runs: int, fns: list[Callable[[], int]]) -> list[float]:
    """Best wall time of each ``fn`` over ``runs`` rounds, one run of each per round.

    Interleaving spreads bursts of load from other processes over every candidate
    instead of penalising whichever happened to run during the burst.
    """
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for k, fn in enumerate(fns):
            gc.collect()
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def pipeline(snapshot_payload: dict[str, Any], frames: list[bytes], runs: int) -> list[str]:
    loads = orjson.loads
    parse = book_reader
    snapshot = snapshot_book(snapshot_payload)
    warm = first_event()
    n = len(frames)

    def decode() -> int:
        for frame in frames:
            loads(frame)
        return n

    def decode_parse() -> int:
        for frame in frames:
            parse(loads(frame), 0.0)
        return n

    def decode_parse_apply() -> int:
        sync = new_sync(snapshot, warm)
        on_update = sync.on_update
        for frame in frames:
            if on_update(parse(loads(frame), 0.0)) is not APPLIED:
                raise AssertionError("an update was not applied")
        return n

    def full() -> int:
        sync = new_sync(snapshot, warm)
        on_update = sync.on_update
        view = sync.view
        for frame in frames:
            if on_update(parse(loads(frame), 0.0)) is not APPLIED:
                raise AssertionError("an update was not applied")
            view()
        return n

    def through_rx() -> int:
        subject: Subject[Any] = Subject()
        count = 0
        problems: list[Exception] = []

        def seen(book: OrderBook) -> None:
            nonlocal count
            count += 1

        maintain_order_book(
            subject,
            lambda: reactivex.of(snapshot),
            BookRule.BINANCE_SPOT,
            DEPTH,
            snapshot_limit=SNAPSHOT_LEVELS,
            report=problems.append,
        ).subscribe(seen)
        subject.on_next(warm)  # buffered; the snapshot arrives synchronously
        push = subject.on_next
        for frame in frames:
            push(parse(loads(frame), 0.0))
        assert not problems and count == n + 1, (problems, count)
        return n

    stages = [
        ("decode only (orjson.loads)", decode),
        (f"+ parse ({parse.__module__.rsplit('.', 1)[-1]}.{parse.__name__})", decode_parse),
        ("+ sync rule + book update", decode_parse_apply),
        ("+ top-20 OrderBook per update", full),
        ("same, through maintain_order_book (Rx)", through_rx),
    ]
    lines = []
    previous = 0.0
    timings = best_interleaved(runs, [fn for _, fn in stages])
    for (name, _), seconds in zip(stages, timings, strict=True):
        per = seconds / n * 1e6
        extra = f"(+{per - previous:5.2f})" if previous else " " * 8
        lines.append(f"  {name:42s} {n / seconds:>11,.0f} /s  {per:6.2f} µs {extra}")
        previous = per
    return lines


# =====================================================================================
# 2. Key types / layouts
# =====================================================================================


class FloatKeyBook:
    """Like LocalBook but with float sort keys (asks negated): float() per level."""

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bl = sorted(bids, key=lambda lv: lv[0])
        self.bk = [float(p) for p, _ in self.bl]
        self.al = sorted(asks, key=lambda lv: lv[0], reverse=True)
        self.ak = [-float(p) for p, _ in self.al]

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for keys, levels, changes, sign in (
            (self.bk, self.bl, bids, 1.0),
            (self.ak, self.al, asks, -1.0),
        ):
            for level in changes:
                key = sign * float(level[0])
                i = bisect_left(keys, key)
                if i != len(keys) and keys[i] == key:
                    if level[1]:
                        levels[i] = level
                    else:
                        del keys[i]
                        del levels[i]
                elif level[1]:
                    keys.insert(i, key)
                    levels.insert(i, level)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return tuple(self.bl[: -n - 1 : -1]), tuple(self.al[: -n - 1 : -1])


class SortedDictBook:
    """sortedcontainers.SortedDict keyed by Decimal; top-N via key iteration + lookups."""

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids: SortedDict = SortedDict({p: (p, q) for p, q in bids})
        self.asks: SortedDict = SortedDict({p: (p, q) for p, q in asks})

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for level in changes:
                if level[1]:
                    side[level[0]] = level
                else:
                    side.pop(level[0], None)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        bids, asks = self.bids, self.asks
        return (
            tuple(bids[k] for k in islice(reversed(bids), n)),
            tuple(asks[k] for k in islice(asks, n)),
        )


class DictSortBook:
    """Plain dicts, sorted on every read (what several peers do)."""

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids = {p: q for p, q in bids}
        self.asks = {p: q for p, q in asks}

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for p, q in changes:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return (
            tuple(sorted(self.bids.items(), reverse=True)[:n]),
            tuple(sorted(self.asks.items())[:n]),
        )


class AscendingAsksBook:
    """LocalBook's layout but asks kept ascending (best ask first): no key negation,
    but inserting near the best ask shifts the whole list."""

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bl = sorted(bids, key=lambda lv: lv[0])
        self.bk = [p for p, _ in self.bl]
        self.al = sorted(asks, key=lambda lv: lv[0])
        self.ak = [p for p, _ in self.al]

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for keys, levels, changes in ((self.bk, self.bl, bids), (self.ak, self.al, asks)):
            for level in changes:
                price = level[0]
                i = bisect_left(keys, price)
                if i != len(keys) and keys[i] == price:
                    if level[1]:
                        levels[i] = level
                    else:
                        del keys[i]
                        del levels[i]
                elif level[1]:
                    keys.insert(i, price)
                    levels.insert(i, level)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return tuple(self.bl[: -n - 1 : -1]), tuple(self.al[:n])


class ShippedBook:
    """rxconnector.exchanges.book.LocalBook (Decimal keys, best level last on both sides)."""

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.book = LocalBook()
        self.book.load_snapshot(bids, asks)
        self.apply = self.book.apply

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return self.book.top_bids(n), self.book.top_asks(n)


def key_types(snapshot_payload: dict[str, Any], frames: list[bytes], runs: int) -> list[str]:
    snapshot = snapshot_book(snapshot_payload)
    updates = [parse_depth_update(orjson.loads(f), 0.0) for f in frames]
    layouts: list[tuple[str, Callable[[Iterable[Level], Iterable[Level]], Any]]] = [
        ("Decimal keys, aligned lists, best last (shipped)", ShippedBook),
        ("Decimal keys, aligned lists, asks ascending", AscendingAsksBook),
        ("float keys, aligned lists, best last", FloatKeyBook),
        ("Decimal keys, sortedcontainers.SortedDict", SortedDictBook),
        ("dict, sort on every read", DictSortBook),
    ]
    n = len(updates)
    samples: list[list[DepthUpdate]] = []
    runners: list[Callable[[], int]] = []
    for _, make in layouts:
        # The naive layout is ~50x slower; a prefix is enough to show it.
        sample = updates[:20_000] if make is DictSortBook else updates
        samples.append(sample)

        def run(make: Any = make, sample: list[DepthUpdate] = sample) -> int:
            book = make(snapshot.bids, snapshot.asks)
            apply, top = book.apply, book.top
            for u in sample:
                apply(u.bids, u.asks)
                top(DEPTH)
            return len(sample)

        runners.append(run)
    timings = best_interleaved(runs, runners)
    reference: tuple[Any, ...] | None = None
    lines = []
    for (name, make), sample, seconds in zip(layouts, samples, timings, strict=True):
        check = make(snapshot.bids, snapshot.asks)
        for u in sample:
            check.apply(u.bids, u.asks)
        if len(sample) == n:
            result = check.top(DEPTH)
            if reference is None:
                reference = result
            assert result == reference, f"{name} disagrees with the shipped book"
        lines.append(
            f"  {name:50s} {len(sample) / seconds:>11,.0f} /s  "
            f"{seconds / len(sample) * 1e6:6.2f} µs  (apply + top-20 read)"
        )
    return lines


# =====================================================================================
# 3. Memory
# =====================================================================================


def _rss_mib() -> float:
    """Current resident set size (Linux ``/proc``; ``ru_maxrss`` elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(books: int, levels: int, trace: bool) -> list[str]:
    """Run in a fresh process: memory of ``books`` books of ``levels`` levels per side.

    With ``trace`` the bytes are counted by tracemalloc (exact, but tracemalloc's own
    bookkeeping inflates RSS, so RSS is measured in a separate run without it).
    """
    rng = random.Random(3)

    def side(start: int, step: int) -> list[Any]:
        """One side as the REST snapshot's JSON decodes: ``[["price", "qty"], ...]``."""
        return [[_price(start + step * i), _qty(rng)] for i in range(levels)]

    gc.collect()
    rss0 = _rss_mib()
    if trace:
        tracemalloc.start()
    # Each book is loaded from its own freshly decoded snapshot, which is then dropped
    # (as in the library: the snapshot is garbage once the book holds it), so what
    # stays is what the books keep. "decoded snapshots" is one snapshot's worth x books.
    one = (side(MID - 1, -1), side(MID + 1, 1))
    levels_bytes = (tracemalloc.get_traced_memory()[0] if trace else 0) * books
    rss1 = rss0 + (_rss_mib() - rss0) * books
    del one
    kept: list[LocalBook] = []
    for _ in range(books):
        bids, asks = side(MID - 1, -1), side(MID + 1, 1)
        book = LocalBook()
        # What the REST snapshot parser hands the book: Decimal levels.
        book.load_snapshot(parse_levels(bids), parse_levels(asks), limit=levels)
        kept.append(book)
    del bids, asks
    gc.collect()
    total_bytes = tracemalloc.get_traced_memory()[0] if trace else 0
    if trace:
        tracemalloc.stop()
    rss2 = _rss_mib()
    n_levels = books * levels * 2
    assert len(kept) == books
    if not trace:
        return [
            f"  RSS growth: decoded snapshots ~{rss1 - rss0:8.1f} MiB if all were kept, books "
            f"{rss2 - rss0:8.1f} MiB ({(rss2 - rss0) * 2**20 / n_levels:.0f} B/level, "
            "no tracemalloc)"
        ]
    return [
        f"  {books:,} books x {levels:,} levels per side = {n_levels:,} levels",
        f"  decoded snapshots if all were kept at once: {levels_bytes / 2**20:8.1f} MiB"
        f"  ({levels_bytes / n_levels:5.0f} B/level)",
        f"  kept by the books (tracemalloc): {total_bytes / 2**20:8.1f} MiB"
        f"  ({total_bytes / n_levels:5.0f} B/level)",
    ]


# =====================================================================================
# 4. Loopback socket
# =====================================================================================


def _serve(port_queue: Any, events: int, levels: Any) -> None:
    """Child process: a WebSocket server that sends every frame as fast as it can."""
    from aiohttp import web

    _, frames = make_market(events, levels)
    texts = [f.decode() for f in frames]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        for n, text in enumerate(texts, start=1):
            await ws.send_str(text)
            if n % 256 == 0:
                await asyncio.sleep(0)  # let the transport drain
        await ws.close()
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        port_queue.put(port)
        await asyncio.sleep(3600)

    asyncio.run(main())


async def _receive(port: int, snapshot: OrderBook, mode: str) -> tuple[int, float]:
    import aiohttp

    loads = orjson.loads
    parse = book_reader
    count = 0
    subject: Subject[Any] = Subject()
    books = 0

    def seen(book: OrderBook) -> None:
        nonlocal books
        books += 1

    if mode == "book":
        maintain_order_book(
            subject,
            lambda: reactivex.of(snapshot),
            BookRule.BINANCE_SPOT,
            DEPTH,
            snapshot_limit=SNAPSHOT_LEVELS,
        ).subscribe(seen)
    push = subject.on_next
    push(first_event())  # buffered; the snapshot arrives synchronously
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as ws,
    ):
        start = 0.0
        async for msg in ws:
            if not count:
                start = time.perf_counter()
            count += 1
            if mode == "decode":
                loads(msg.data)
            else:
                push(parse(loads(msg.data), time.time() * 1000.0))
        elapsed = time.perf_counter() - start
    if mode == "book":
        assert books == count + 1, (books, count)  # + the snapshot's own view
    return count, elapsed


def _run(coro: Any) -> Any:
    """``asyncio.run``, or ``uvloop.run`` with ``LOOP=uvloop`` (the benchmark's choice,
    never the library's: it installs no loop policy)."""
    if os.environ.get("LOOP") == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def loopback(events: int, levels: Any, snapshot_payload: dict[str, Any], runs: int) -> list[str]:
    """Best of ``runs`` connections per mode to one server process."""
    ctx = multiprocessing.get_context("spawn")
    lines = []
    snapshot = snapshot_book(snapshot_payload)
    ports: Any = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, events, levels), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=120)
        for mode, label in (("decode", "socket + decode"), ("book", "socket + full book pipeline")):
            best = 0.0
            for _ in range(runs):
                count, elapsed = _run(_receive(port, snapshot, mode))
                best = max(best, count / elapsed)
            lines.append(f"  {label:42s} {best:>11,.0f} /s  ({count:,} frames, best of {runs})")
    finally:
        server.terminate()
        server.join()
    return lines


# =====================================================================================


def _loop_name() -> str:
    return "uvloop" if os.environ.get("LOOP") == "uvloop" else "asyncio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--levels",
        default="3,10,40,5-20",
        help="mean level changes per event, or LO-HI changes per side (comma-separated)",
    )
    parser.add_argument("--layouts", action="store_true", help="run section 2 (layouts)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--books", type=int, default=1000)
    parser.add_argument("--book-levels", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--skip-socket", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs, args.books = 20_000, 1, 100
    if args.memory_only:
        print("\n".join(memory(args.books, args.book_levels, args.trace)))
        return

    print(
        f"Python {sys.version.split()[0]}, orjson {orjson.__version__}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}"
    )
    for spec in args.levels.split(","):
        lo, _, hi = spec.partition("-")
        levels: int | tuple[int, int] = (int(lo), int(hi)) if hi else int(lo)
        snapshot, frames = make_market(args.events, levels)
        size = sum(len(f) for f in frames) / len(frames)
        changes = sum(len(u["b"]) + len(u["a"]) for u in map(orjson.loads, frames)) / len(frames)
        print(
            f"\n== {len(frames):,} depthUpdate frames, {changes:.1f} level changes per frame "
            f"(mean), {size:.0f} B per frame, book {SNAPSHOT_LEVELS} levels/side, top {DEPTH}"
        )
        print(f"-- 1. pipeline (in process, best of {args.runs})")
        print("\n".join(pipeline(snapshot, frames, args.runs)))
        print(f"   (load average {os.getloadavg()[0]:.2f})")
        if args.layouts:  # the historical comparison behind the Decimal-key layout
            print(f"-- 2. book layouts (parsed updates, best of {args.runs})")
            print("\n".join(key_types(snapshot, frames, args.runs)))
        if not args.skip_socket:
            print(f"-- 4. loopback WebSocket (server in another process, LOOP={_loop_name()})")
            print("\n".join(loopback(len(frames), levels, snapshot, min(args.runs, 3))))
            print(f"   (load average {os.getloadavg()[0]:.2f})")
    if not args.skip_memory:
        print(f"\n-- 3. memory ({args.books:,} books, fresh process)")
        for flags in (["--trace"], []):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-only",
                    "--books",
                    str(args.books),
                    "--book-levels",
                    str(args.book_levels),
                    *flags,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            print(out.stdout.rstrip())


if __name__ == "__main__":
    main()
