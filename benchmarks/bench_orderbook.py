"""Order book throughput and memory: how many diff updates per second become a top-20 book.

Run::

    .venv/bin/python benchmarks/bench_orderbook.py            # everything (~1-2 min)
    .venv/bin/python benchmarks/bench_orderbook.py --quick    # smaller, for a smoke run
    .venv/bin/python benchmarks/bench_orderbook.py --levels 5-20 --skip-memory \
        --against /tmp/book_before      # before/after: another tree, interleaved
    LOOP=uvloop .venv/bin/python benchmarks/bench_orderbook.py ...   # the loopback on uvloop

No network: frames are synthetic Binance Spot ``depthUpdate`` events (the documented
shape, PROTOCOL.md §A1.4) in the combined-stream wrapper the connector receives
(``{"stream":"btcusdt@depth@100ms","data":{...}}``, byte for byte as Binance writes it),
generated from a simulated market that never crosses and never leaves the snapshot's
range, so every update is applied (the script asserts it).

**The library's real path.** The frames go through what ``Connector.order_book`` runs
on each frame of its topic, taken from the library itself (:func:`library_reader`): the
book's ``FeedSpec`` (``BinanceSpotFeeds().book_diffs``) - its one-pass ``parse_frame``
when it has one (the hub then hands the topic's frames over undecoded), else the hub's
``orjson.loads`` + ``["data"]`` + the spec's dict parser - then ``maintain_order_book``
and a subscriber. The baseline decodes the same bytes with ``orjson.loads``.

Sections (all times are **process CPU time**, ``time.process_time``, which foreign load
on a shared machine disturbs far less than wall time):

1. **Pipeline** (in process, best of ``--runs``, interleaved): decode only
   (``orjson.loads``, the baseline) → the library's frame reader (decode + parse/pack;
   on a one-pass reader also its decoder alone) → + sync rule and book update → + a
   top-20 :class:`OrderBook` per update → the same through ``maintain_order_book`` with a
   subscriber → the same through the chain ``Connector.order_book`` builds behind the
   hub (:func:`connector_chain`). The stage costs are the differences (printed).
2. **Key types** (``--layouts``): parsed updates applied to alternative book layouts, to
   back the choice documented in ``rxconnector/exchanges/book.py``.
3. **Memory** (fresh subprocess): 1,000 books of 1,000 levels per side, tracemalloc and
   peak RSS, split into "the parsed levels themselves" and "what the book adds".
4. **Loopback socket**: an aiohttp WebSocket server in another process pushes the frames
   as fast as it can (text frames, as Binance sends them); the client receives them as
   bytes (``decode_text=False``, as the library's transport does) and either only
   decodes them (the baseline) or runs the library's path on them (book). Printed: the
   rate, the client's CPU µs per frame, and book/baseline in the same run.

``--against DIR`` runs sections 1 and 4 in fresh processes for this tree and for the
tree at ``DIR`` (e.g. ``git archive <commit> | tar -x -C DIR``), alternating, against
one server: before and after under the same load. ``BENCH_TREE=DIR`` makes the script
import the library from ``DIR`` (how ``--against`` runs the other tree).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import random
import resource
import statistics
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

HERE = Path(__file__).resolve()
#: The library tree measured: this one, or ``BENCH_TREE`` (see the module docstring).
TREE = Path(os.environ.get("BENCH_TREE") or HERE.parent.parent).resolve()
sys.path.insert(0, str(TREE))

from rxconnector.exchanges._parsing import parse_levels  # noqa: E402
from rxconnector.exchanges.binance.book_sync import BinanceSpotSync  # noqa: E402
from rxconnector.exchanges.binance.feeds import BinanceSpotFeeds  # noqa: E402
from rxconnector.exchanges.binance.parsers import parse_depth_update  # noqa: E402
from rxconnector.exchanges.book import LocalBook  # noqa: E402
from rxconnector.exchanges.book_rules import BookRule  # noqa: E402
from rxconnector.exchanges.book_sync import APPLIED  # noqa: E402
from rxconnector.models import DepthUpdate, Level, OrderBook  # noqa: E402
from rxconnector.streams.orderbook import maintain_order_book  # noqa: E402

#: The dict parser (sections 2 and 3, and ``bench_orderbook_ab.py``'s parsed updates).
book_reader = parse_depth_update
DEPTH = 20
SYMBOL = "BTCUSDT"
#: The combined-stream name of the book's diff stream (what the frames are wrapped in).
TOPIC = "btcusdt@depth@100ms"
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
    """A REST snapshot payload and ``events`` pre-encoded depthUpdate frames (in the
    combined-stream wrapper, as the connector receives them).

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
        data = {
            "e": "depthUpdate",
            "E": event_time,
            "s": SYMBOL,
            "U": update_id,
            "u": update_id + n - 1,
            "b": [[_price(t), q] for t, q in b.items()],
            "a": [[_price(t), q] for t, q in a.items()],
        }
        frames.append(orjson.dumps({"stream": TOPIC, "data": data}))
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


def payload(frame: bytes) -> Any:
    """The ``data`` of a combined-stream frame (the depthUpdate event as a dict)."""
    return orjson.loads(frame)["data"]


def library_reader() -> tuple[Callable[[bytes, float], Any], str]:
    """What the connector's ``order_book`` runs on each frame of its topic, in the tree
    imported, and a label: the book spec's one-pass ``parse_frame`` when it has one (the
    hub hands such a topic's frames over undecoded), else what the hub and the parse
    step do with a decoded topic: ``orjson.loads``, the routed ``["data"]``, the spec's
    dict parser."""
    spec = BinanceSpotFeeds().book_diffs(SYMBOL, DEPTH)
    assert spec.topic == TOPIC, spec.topic
    parse_frame = getattr(spec, "parse_frame", None)
    if parse_frame is not None:
        return parse_frame, f"one pass: {parse_frame.__qualname__.split('.')[0]}"
    parse, loads = spec.parse, orjson.loads

    def read(frame: bytes, received_at: float) -> Any:
        return parse(loads(frame)["data"], received_at)

    return read, f"orjson.loads + ['data'] + {parse.__name__}"


def library_decoder() -> Callable[[bytes], Any] | None:
    """The one-pass reader's decoder alone (ids typed, levels left as raw text), to split
    its decode from its parse/pack; ``None`` for a tree without one."""
    try:
        from rxconnector.exchanges.binance import wire
    except ImportError:
        return None
    data = getattr(wire, "DepthUpdateData", None)
    make = getattr(wire, "_frame_decoder", None)
    if data is None or make is None:
        return None
    decode: Callable[[bytes], Any] = make(data, TOPIC)
    return decode


read_frame, READER = library_reader()


class Counter:
    """A subscriber that counts what it gets."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _item: Any) -> None:
        self.count += 1


def best_interleaved(runs: int, fns: list[Callable[[], int]]) -> list[float]:
    """Least CPU time of each ``fn`` over ``runs`` rounds, one run of each per round.

    Interleaving spreads bursts of load from other processes over every candidate
    instead of penalising whichever happened to run during the burst.
    """
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for k, fn in enumerate(fns):
            gc.collect()
            start = time.process_time()
            fn()
            best[k] = min(best[k], time.process_time() - start)
    return best


def pipeline_stages(
    snapshot_payload: dict[str, Any], frames: list[bytes]
) -> list[tuple[str, str, Callable[[], int]]]:
    """(key, label, run) of each cumulative measurement of section 1."""
    loads = orjson.loads
    read = read_frame
    decoder = library_decoder()
    snapshot = snapshot_book(snapshot_payload)
    warm = first_event()
    n = len(frames)

    def decode() -> int:
        for frame in frames:
            loads(frame)
        return n

    def library_decode() -> int:
        assert decoder is not None
        for frame in frames:
            decoder(frame)
        return n

    def reader() -> int:
        for frame in frames:
            read(frame, 0.0)
        return n

    def apply() -> int:
        on_update = new_sync(snapshot, warm).on_update
        for frame in frames:
            if on_update(read(frame, 0.0)) is not APPLIED:
                raise AssertionError("an update was not applied")
        return n

    def view() -> int:
        sync = new_sync(snapshot, warm)
        on_update, show = sync.on_update, sync.view
        for frame in frames:
            if on_update(read(frame, 0.0)) is not APPLIED:
                raise AssertionError("an update was not applied")
            show()
        return n

    def through_rx() -> int:
        subject: Subject[Any] = Subject()
        seen = Counter()  # books are counted, not kept (a growing list taxes the collector)
        problems: list[Exception] = []
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
            push(read(frame, 0.0))
        assert not problems and seen.count == n + 1, (problems, seen.count)
        return n

    def connector() -> int:
        return connector_chain(snapshot, frames)

    stages = [("decode", "decode only: orjson.loads (the baseline)", decode)]
    if decoder is not None:
        stages.append(("libdecode", "the reader's decoder alone (msgspec)", library_decode))
    stages += [
        ("read", f"library frame reader ({READER})", reader),
        ("apply", "+ sync rule + book update", apply),
        ("view", "+ top-20 OrderBook per update", view),
        ("rx", "same, through maintain_order_book (Rx)", through_rx),
        ("connector", "same, through conn.order_book's chain (see connector_chain)", connector),
    ]
    return stages


#: The first diff event as the hub hands a decoded one over: buffered, then the
#: snapshot (lastUpdateId 1000 >= its U) is accepted and the frames (from 1001) apply.
WARM_PAYLOAD = {"e": "depthUpdate", "E": 0, "s": SYMBOL, "U": 1000, "u": 1000, "b": [], "a": []}


def connector_chain(snapshot: OrderBook, frames: list[bytes]) -> int:
    """The frames through what ``Connector.order_book`` builds behind the hub: the parse
    step's multicast (``shared_deferred`` with the connector's own ``_message_parser`` of
    the book's spec), ``maintain_order_book``, ``conflate()`` and ``share()``, to a
    subscriber. Two stand-ins: a ``Subject`` for the hub (fed what the hub hands over:
    the raw frame for a topic with a ``parse_frame``, else the decoded ``data`` - so the
    hub's ``orjson.loads`` is counted for such a tree), and an immediate scheduler for
    ``conflate`` (in the connector it delivers on the loop, once per loop pass)."""
    from reactivex.scheduler import ImmediateScheduler

    from rxconnector.connector import _message_parser
    from rxconnector.operators import conflate, share
    from rxconnector.operators._share import shared_deferred

    spec = BinanceSpotFeeds().book_diffs(SYMBOL, DEPTH)
    undecoded = getattr(spec, "parse_frame", None) is not None
    loads = orjson.loads
    hub: Subject[Any] = Subject()
    problems: list[Exception] = []
    diffs: Any = shared_deferred(
        lambda _: hub, problems.append, _message_parser(spec, problems.append, True)
    )

    def build(_: Any) -> Any:
        return maintain_order_book(
            diffs,
            lambda: reactivex.of(snapshot),
            BookRule.BINANCE_SPOT,
            DEPTH,
            topic=spec.topic,
            snapshot_limit=SNAPSHOT_LEVELS,
            report=problems.append,
        )

    seen = Counter()
    reactivex.defer(build).pipe(conflate(ImmediateScheduler()), share()).subscribe(seen)
    push = hub.on_next
    push((0.0, WARM_PAYLOAD))
    if undecoded:
        for frame in frames:
            push((0.0, frame))
    else:
        for frame in frames:
            push((0.0, loads(frame)["data"]))
    assert not problems and seen.count == len(frames) + 1, (problems, seen.count)
    return len(frames)


def pipeline(snapshot_payload: dict[str, Any], frames: list[bytes], runs: int) -> dict[str, float]:
    """Section 1: best CPU µs per frame of each cumulative measurement, by key."""
    stages = pipeline_stages(snapshot_payload, frames)
    timings = best_interleaved(runs, [fn for _, _, fn in stages])
    return {key: t / len(frames) * 1e6 for (key, _, _), t in zip(stages, timings, strict=True)}


def stage_costs(us: dict[str, float]) -> list[tuple[str, float]]:
    """The per-stage costs (µs per frame) from the cumulative measurements."""
    decode = us.get("libdecode", us["decode"])
    return [
        ("decode", decode),
        ("parse/pack", us["read"] - decode),
        ("sync+apply", us["apply"] - us["read"]),
        ("view", us["view"] - us["apply"]),
        ("Rx", us["rx"] - us["view"]),
        ("total", us["rx"]),
        ("connector chain extra", us["connector"] - us["rx"]),
        ("total, connector chain", us["connector"]),
    ]


def pipeline_lines(snapshot_payload: dict[str, Any], us: dict[str, float]) -> list[str]:
    labels = {key: label for key, label, _ in pipeline_stages(snapshot_payload, [])}
    lines = [f"  {labels[key]:58s} {v:7.2f} µs  {1e6 / v:>11,.0f} /s" for key, v in us.items()]
    costs = "  ".join(f"{name} {v:.2f}" for name, v in stage_costs(us))
    lines.append(f"  stage costs, CPU µs per frame: {costs}")
    lines.append(f"  in process, maintained book / decode only: {us['decode'] / us['rx']:.3f}x")
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
    updates = [parse_depth_update(payload(f), 0.0) for f in frames]
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


async def _receive(port: int, snapshot: OrderBook, mode: str) -> tuple[int, float, float]:
    """One connection: ``decode`` (plain aiohttp + orjson.loads) or ``book`` (the
    library's reader → maintain_order_book → subscriber). Returns (frames, wall seconds,
    CPU seconds), both from the first frame to the last."""
    import aiohttp

    loads = orjson.loads
    read = read_frame
    count = 0
    subject: Subject[Any] = Subject()
    books = Counter()
    if mode == "book":
        maintain_order_book(
            subject,
            lambda: reactivex.of(snapshot),
            BookRule.BINANCE_SPOT,
            DEPTH,
            snapshot_limit=SNAPSHOT_LEVELS,
        ).subscribe(books)
    push = subject.on_next
    push(first_event())  # buffered; the snapshot arrives synchronously
    clock, cpu = time.perf_counter, time.process_time
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0, decode_text=False) as ws,
    ):
        start = cpu_start = 0.0
        async for msg in ws:
            if not count:
                start, cpu_start = clock(), cpu()
            count += 1
            if mode == "decode":
                loads(msg.data)
            else:
                push(read(msg.data, time.time() * 1000.0))
        elapsed, cpu_used = clock() - start, cpu() - cpu_start
    if mode == "book":
        assert books.count == count + 1, (books.count, count)  # + the snapshot's own view
    return count, elapsed, cpu_used


def _run(coro: Any) -> Any:
    """``asyncio.run``, or ``uvloop.run`` with ``LOOP=uvloop`` (the benchmark's choice,
    never the library's: it installs no loop policy)."""
    if os.environ.get("LOOP") == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def _client(port: int, mode: str, levels: Any, tree: Path | None) -> tuple[int, float, float]:
    """One loopback connection, here (``tree`` None) or in a fresh process on ``tree``."""
    if tree is None:
        snapshot = snapshot_book(make_market(1, levels)[0])
        result: tuple[int, float, float] = _run(_receive(port, snapshot, mode))
        return result
    out = _child(tree, ["--client", str(port), mode, "--levels", _levels_arg(levels)])
    count, wall, cpu_s = json.loads(out)
    return int(count), float(wall), float(cpu_s)


def loopback(
    events: int, levels: Any, runs: int, against: Path | None
) -> tuple[list[str], dict[str, Any]]:
    """Section 4: ``runs`` rounds against one server process; each round one decode-only
    connection and one book connection per tree, interleaved. Returns the lines and the
    per-round figures."""
    ctx = multiprocessing.get_context("spawn")
    ports: Any = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, events, levels), daemon=True)
    server.start()
    trees: list[tuple[str, Path | None]] = [("this tree", None if against is None else TREE)]
    if against is not None:
        trees.append(("--against", against))
    rows: dict[str, list[tuple[float, float]]] = {"decode": []}
    rows.update({f"book, {name}": [] for name, _ in trees})
    try:
        port = ports.get(timeout=120)
        for _ in range(runs):
            count, wall, cpu_s = _client(port, "decode", levels, None if against is None else TREE)
            rows["decode"].append((count / wall, cpu_s / count * 1e6))
            for name, tree in trees:
                count, wall, cpu_s = _client(port, "book", levels, tree)
                rows[f"book, {name}"].append((count / wall, cpu_s / count * 1e6))
    finally:
        server.terminate()
        server.join()
    return _loopback_lines(rows, events, runs), rows


def _loopback_lines(
    rows: dict[str, list[tuple[float, float]]], events: int, runs: int
) -> list[str]:
    lines = []
    base = rows["decode"]
    for name, got in rows.items():
        rates = [r for r, _ in got]
        cpus = [c for _, c in got]
        label = (
            "socket + decode only (plain aiohttp + orjson)"
            if name == "decode"
            else (f"socket + maintained book ({name})")
        )
        line = (
            f"  {label:52s} median {statistics.median(rates):>9,.0f} /s, CPU "
            f"{statistics.median(cpus):6.2f} µs/frame (best {min(cpus):.2f})"
        )
        if name != "decode":
            by_rate = [r / b[0] for (r, _), b in zip(got, base, strict=True)]
            by_cpu = [b[1] / c for (_, c), b in zip(got, base, strict=True)]
            line += (
                f"\n  {'':52s} vs decode only, same round: by rate "
                f"{statistics.median(by_rate):.3f}x (best {max(by_rate):.3f}), by CPU "
                f"{statistics.median(by_cpu):.3f}x (best {max(by_cpu):.3f})"
            )
        lines.append(line)
    lines.append(f"  ({events:,} frames per connection, {runs} rounds)")
    return lines


# =====================================================================================
# Before/after: the same measurements on another tree, in fresh processes
# =====================================================================================


def _levels_arg(levels: Any) -> str:
    return f"{levels[0]}-{levels[1]}" if isinstance(levels, tuple) else str(levels)


def _child(tree: Path, args: list[str]) -> str:
    """Run this script on ``tree`` (``BENCH_TREE``) with ``args``; its stdout."""
    env = {**os.environ, "BENCH_TREE": str(tree)}
    out = subprocess.run(
        [sys.executable, str(HERE), *args], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def pipeline_against(against: Path, events: int, levels: Any, runs: int, rounds: int) -> list[str]:
    """Section 1 for this tree and ``against``, ``rounds`` fresh processes each,
    alternating; the least CPU µs per frame of each measurement over all rounds."""
    best: dict[str, dict[str, float]] = {"after": {}, "before": {}}
    for _ in range(rounds):
        for name, tree in (("after", TREE), ("before", against)):
            args = ["--pipeline-json", "--events", str(events), "--runs", str(runs)]
            got = json.loads(_child(tree, [*args, "--levels", _levels_arg(levels)]))
            for key, value in got.items():
                best[name][key] = min(best[name].get(key, float("inf")), value)
    after, before = best["after"], best["before"]
    lines = [f"  {'CPU µs per frame':34s} {'before':>8s} {'after':>8s} {'after/before':>13s}"]
    for (stage, b), (_, a) in zip(stage_costs(before), stage_costs(after), strict=True):
        lines.append(f"  {stage:34s} {b:8.2f} {a:8.2f} {a / b:13.3f}")
    lines.append(
        f"  {'in process: book / decode only':34s} {before['decode'] / before['rx']:8.3f} "
        f"{after['decode'] / after['rx']:8.3f}   (x; speed-up of the whole path "
        f"{before['rx'] / after['rx']:.2f}x)"
    )
    lines.append(f"  (best of {rounds} processes x {runs} runs per tree, alternating)")
    return lines


# =====================================================================================


def _loop_name() -> str:
    return "uvloop" if os.environ.get("LOOP") == "uvloop" else "asyncio"


def _parse_levels_arg(spec: str) -> int | tuple[int, int]:
    lo, _, hi = spec.partition("-")
    return (int(lo), int(hi)) if hi else int(lo)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--levels",
        default="3,10,40,5-20",
        help="mean level changes per event, or LO-HI changes per side (comma-separated)",
    )
    parser.add_argument("--layouts", action="store_true", help="run section 2 (layouts)")
    parser.add_argument("--runs", type=int, default=3, help="in-process runs (best of)")
    parser.add_argument("--socket-runs", type=int, default=3, help="loopback rounds (median)")
    parser.add_argument(
        "--against", type=Path, default=None, help="another tree: before/after, interleaved"
    )
    parser.add_argument("--rounds", type=int, default=3, help="processes per tree (--against)")
    parser.add_argument("--books", type=int, default=1000)
    parser.add_argument("--book-levels", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--skip-socket", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, metavar=("PORT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs, args.socket_runs, args.books = 20_000, 1, 1, 100
        args.rounds = 1
    return args


def _profile(args: argparse.Namespace, levels: int | tuple[int, int]) -> None:
    """Sections 1, 2 and 4 for one profile of level changes."""
    snapshot, frames = make_market(args.events, levels)
    size = sum(len(f) for f in frames) / len(frames)
    changes = sum(len(u["b"]) + len(u["a"]) for u in map(payload, frames)) / len(frames)
    print(
        f"\n== {len(frames):,} depthUpdate frames, {changes:.1f} level changes per frame "
        f"(mean), {size:.0f} B per frame, book {SNAPSHOT_LEVELS} levels/side, top {DEPTH}"
    )
    if not args.skip_pipeline:
        print(f"-- 1. pipeline (in process, CPU time, best of {args.runs}; tree {TREE})")
        print("\n".join(pipeline_lines(snapshot, pipeline(snapshot, frames, args.runs))))
        if args.against is not None:
            print(f"-- 1b. before ({args.against}) / after ({TREE}), fresh processes")
            print("\n".join(pipeline_against(args.against, args.events, levels, args.runs,
                                             args.rounds)))  # fmt: skip
        print(f"   (load average {os.getloadavg()[0]:.2f})")
    if args.layouts:  # the historical comparison behind the Decimal-key layout
        print(f"-- 2. book layouts (parsed updates, best of {args.runs})")
        print("\n".join(key_types(snapshot, frames, args.runs)))
    if not args.skip_socket:
        print(f"-- 4. loopback WebSocket (server in another process, LOOP={_loop_name()})")
        lines, _ = loopback(len(frames), levels, args.socket_runs, args.against)
        print("\n".join(lines))
        print(f"   (load average {os.getloadavg()[0]:.2f})")


def main() -> None:
    args = _arguments()
    if args.memory_only:
        print("\n".join(memory(args.books, args.book_levels, args.trace)))
        return
    if args.pipeline_json:  # a child of --against: section 1 only, as JSON
        snapshot, frames = make_market(args.events, _parse_levels_arg(args.levels))
        print(json.dumps(pipeline(snapshot, frames, args.runs)))
        return
    if args.client:  # a child of --against: one loopback connection, as JSON
        port, mode = args.client
        print(json.dumps(_client(int(port), mode, _parse_levels_arg(args.levels), None)))
        return

    print(
        f"Python {sys.version.split()[0]}, orjson {orjson.__version__}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}, "
        f"LOOP={_loop_name()}, reader: {READER}"
    )
    for spec in args.levels.split(","):
        _profile(args, _parse_levels_arg(spec))
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
