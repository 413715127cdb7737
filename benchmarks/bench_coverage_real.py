"""Snapshot-tier coverage on recorded *real* Binance depth data (issue 16).

``bench_coverage.py`` measures how long a truncated snapshot stays good enough for a
depth-N book on the simulator's random walk. This replays real exchange recordings
instead: a REST depth snapshot (``limit=1000``) per symbol plus the ``@depth@100ms``
diff events that followed it on the same connection, as recorded by another project
(cryptofeed's ``sample_data``; see RESULTS.md for repository, commit and paths).

For every tier (20, 50, 100, 500, 1000) the recorded 1000-level snapshot is cut to the
tier's size and loaded into the library's own :class:`~rxconnector.exchanges.book.LocalBook`
with ``limit=tier`` (so its coverage boundaries are what a real snapshot of that tier
would give), then every diff event is applied in update-id order under Binance's
sync rules (Spot: ``U == previous u + 1``; futures: ``pu == previous u``). After each
event ``LocalBook.covers(depth)`` decides whether the shown top ``depth`` still lies
inside the snapshot's range; when it does not, coverage is exhausted (the library
would refetch), the lifetime is recorded in market time (event time ``E``) and in
events, and the tier is reloaded from the reference book (the 1000-level one, whose
top ``tier`` levels are then the true ones) to model the refetch.

Besides exhaustions the replay records, per symbol, the *needed tier*: at each event,
how many of the original snapshot's levels lie at or above the current 20th bid (and
at or below the current 20th ask). Its maximum over the recording is the smallest
tier that would never have been exhausted, so short recordings still give a number
(a lower bound for longer sessions), not only "no exhaustion seen".

Input: directories holding a cryptofeed-format pair ``NAME.http.0.0`` (lines
``URL -> time: JSON``) and ``NAME.ws.1.0`` (first line the URL, then ``time: JSON``).

Run: ``.venv/bin/python benchmarks/bench_coverage_real.py DIR [DIR ...]``
"""

from __future__ import annotations

import argparse
import json
import statistics
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from rxconnector.exchanges.book import LocalBook
from rxconnector.models import Level

TIERS = (20, 50, 100, 500, 1000)
# Weight of one depth snapshot per tier: Binance Spot (1-100 → 5, 101-500 → 25,
# 501-1000 → 50) and USD-M / COIN-M futures (≤50 → 2, 100 → 5, 500 → 10, 1000 → 20).
SPOT_WEIGHT = {20: 5, 50: 5, 100: 5, 500: 25, 1000: 50}
FUTURES_WEIGHT = {20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}


@dataclass
class Snapshot:
    update_id: int
    bids: list[Level]
    asks: list[Level]


@dataclass
class Event:
    first: int  # U
    last: int  # u
    previous: int | None  # pu (futures only)
    time_ms: int  # E
    bids: list[Level]
    asks: list[Level]


@dataclass
class TierRun:
    book: LocalBook
    since_ms: int
    since_event: int
    lives_s: list[float] = field(default_factory=list)
    lives_events: list[int] = field(default_factory=list)
    stopped: bool = False


@dataclass
class SymbolResult:
    venue: str
    symbol: str
    events: int
    span_s: float
    gap: str | None
    needed: int
    needed_at: dict[float, int]
    runs: dict[int, TierRun]
    range100_pct: float | None


def _levels(raw: list[list[str]]) -> list[Level]:
    return [(Decimal(p), Decimal(q)) for p, q in raw]


def _payload(line: str) -> str:
    """The JSON part of a ``time: JSON`` / ``URL -> time: JSON`` line."""
    return line.split(": ", 1)[1]


def load_snapshots(path: Path) -> dict[str, Snapshot]:
    out: dict[str, Snapshot] = {}
    for line in path.read_text().splitlines():
        if " -> " not in line:
            continue
        url = line.split(" -> ", 1)[0]
        query = parse_qs(urlparse(url).query)
        if "/depth" not in url or "symbol" not in query:
            continue
        body = json.loads(_payload(line))
        out[query["symbol"][0].upper()] = Snapshot(
            int(body["lastUpdateId"]), _levels(body["bids"]), _levels(body["asks"])
        )
    return out


def load_events(path: Path) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for line in path.read_text().splitlines()[1:]:
        if ": " not in line:
            continue  # blank lines between recordings
        msg: dict[str, Any] = json.loads(_payload(line))
        if not str(msg.get("stream", "")).endswith("@depth@100ms"):
            continue
        d = msg["data"]
        pu = d.get("pu")
        out.setdefault(d["s"].upper(), []).append(
            Event(
                int(d["U"]),
                int(d["u"]),
                int(pu) if pu is not None else None,
                int(d["E"]),
                _levels(d["b"]),
                _levels(d["a"]),
            )
        )
    return out


def synced(snap: Snapshot, events: list[Event]) -> tuple[list[Event], str | None]:
    """The events that follow ``snap`` by Binance's rules, cut at the first gap."""
    futures = any(e.previous is not None for e in events)
    kept: list[Event] = []
    for e in events:
        if not kept:
            if e.last < snap.update_id or (not futures and e.last == snap.update_id):
                continue  # older than the snapshot
            lid = snap.update_id if futures else snap.update_id + 1
            if not e.first <= lid <= e.last:
                return kept, f"first event U={e.first} u={e.last} does not straddle {lid}"
        else:
            prev = kept[-1].last
            ok = e.previous == prev if futures else e.first == prev + 1
            if not ok:
                return kept, f"gap after u={prev} (next U={e.first} pu={e.previous})"
        kept.append(e)
    return kept, None


def _load(book: LocalBook, bids: list[Level], asks: list[Level], tier: int) -> None:
    book.load_snapshot(bids[:tier], asks[:tier], limit=tier)


def replay(venue: str, symbol: str, snap: Snapshot, raw: list[Event], depth: int) -> SymbolResult:
    events, gap = synced(snap, raw)
    ref = LocalBook()
    _load(ref, snap.bids, snap.asks, 1000)
    start_ms = events[0].time_ms if events else 0
    runs: dict[int, TierRun] = {}
    for tier in TIERS:
        book = LocalBook()
        _load(book, snap.bids, snap.asks, tier)
        runs[tier] = TierRun(book, start_ms, 0)
    # Needed tier: original snapshot prices, ascending, to count levels beyond the 20th.
    bid_prices = sorted(p for p, _ in snap.bids)
    ask_prices = sorted(p for p, _ in snap.asks)
    needed = 0
    needed_at: dict[float, int] = {}
    marks = [5.0, 10.0, 20.0, 30.0, 60.0]
    for i, e in enumerate(events, 1):
        ref.apply(e.bids, e.asks)
        bids = ref.top_bids(depth)
        asks = ref.top_asks(depth)
        if len(bids) == depth:
            needed = max(needed, len(bid_prices) - bisect_left(bid_prices, bids[-1][0]))
        if len(asks) == depth:
            needed = max(needed, bisect_right(ask_prices, asks[-1][0]))
        elapsed = (e.time_ms - start_ms) / 1000
        while marks and elapsed >= marks[0]:
            needed_at[marks.pop(0)] = needed
        for tier, run in runs.items():
            if run.stopped:
                continue
            run.book.apply(e.bids, e.asks)
            if run.book.covers(depth):
                continue
            run.lives_s.append((e.time_ms - run.since_ms) / 1000)
            run.lives_events.append(i - run.since_event)
            if tier == 1000 or not ref.covers(tier):
                run.stopped = True  # no truthful refetch to model past this point
                continue
            _load(run.book, list(ref.top_bids(tier)), list(ref.top_asks(tier)), tier)
            run.since_ms, run.since_event = e.time_ms, i
    span = (events[-1].time_ms - start_ms) / 1000 if events else 0.0
    return SymbolResult(
        venue, symbol, len(events), span, gap, needed, needed_at, runs, _range_pct(snap, 100)
    )


def _range_pct(snap: Snapshot, tier: int) -> float | None:
    """How far (% of mid) the nearer side's ``tier``-th level lies from the mid."""
    if not snap.bids or not snap.asks:
        return None
    mid = (snap.bids[0][0] + snap.asks[0][0]) / 2
    spans = []
    if len(snap.bids) > tier:
        spans.append(mid - snap.bids[tier - 1][0])
    if len(snap.asks) > tier:
        spans.append(snap.asks[tier - 1][0] - mid)
    return float(min(spans) / mid * 100) if spans else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="recording directories")
    parser.add_argument("--depth", type=int, default=20)
    args = parser.parse_args()
    results: list[SymbolResult] = []
    for d in args.dirs:
        http = next(d.glob("*.http.0.0"))
        ws = next(d.glob("*.ws.1.0"))
        snaps = load_snapshots(http)
        events = load_events(ws)
        for symbol, snap in sorted(snaps.items()):
            if symbol in events:
                results.append(replay(d.name, symbol, snap, events[symbol], args.depth))

    print(f"depth {args.depth}; per symbol: synced events, market span, needed tier")
    print(
        "| recording | symbol | events | span | needed tier (max) | at 5/10/20 s "
        "| tier-100 range | note |"
    )
    print("|---|---|---:|---:|---:|---|---:|---|")
    for r in results:
        at = "/".join(str(r.needed_at.get(m, "—")) for m in (5.0, 10.0, 20.0))
        note = r.gap or ""
        rng = f"±{r.range100_pct:.2f} %" if r.range100_pct is not None else "whole book"
        print(
            f"| {r.venue} | {r.symbol} | {r.events} | {r.span_s:.1f} s | {r.needed} "
            f"| {at} | {rng} | {note} |"
        )

    total_s = sum(r.span_s for r in results)
    total_events = sum(r.events for r in results)
    print(
        f"\n{len(results)} symbol recordings, {total_events} events, "
        f"{total_s:.0f} s of market time in all"
    )
    print(
        "| tier | weight spot/futures | exhaustions | median life | median events "
        "| exhaustions/h | weight/h/symbol spot |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for tier in TIERS:
        lives = [x for r in results for x in r.runs[tier].lives_s]
        evs = [x for r in results for x in r.runs[tier].lives_events]
        n = len(lives)
        per_hour = n / total_s * 3600 if total_s else 0.0
        med = f"{statistics.median(lives):.2f} s" if lives else "—"
        med_e = f"{statistics.median(evs):.0f}" if evs else "—"
        print(
            f"| {tier} | {SPOT_WEIGHT[tier]}/{FUTURES_WEIGHT[tier]} | {n} | {med} | {med_e} "
            f"| {per_hour:.0f} | {per_hour * SPOT_WEIGHT[tier]:.0f} |"
        )


if __name__ == "__main__":
    main()
