"""How often an aggregate trade covers several fills: simulator vs recorded Binance data.

A gap in a plain-trade feed can be closed from ``aggTrades`` (weight 4) alone only when
every aggregate in it is a single fill (``f == l``); one multi-fill aggregate adds a
``historicalTrades`` page (25). This prints, per source and per symbol:

* aggregates, trades, aggregates per second, the share of multi-fill aggregates and of
  trades inside them, and the distribution of fills per aggregate (1, 2, 3, 4, 5, 6-10,
  over 10);
* ``continuation``: the share of trades that continue their predecessor's order (what
  ``FillSampler`` measures on a live feed), ``(trades - aggregates) / trades``;
* for gaps of 1, 2 and 5 s (every window start at an aggregate): the share of windows
  with no multi-fill aggregate, and the mean weight of one gap page for
  ``aggTrades``-first (4, + 25 when needed) against ``historicalTrades`` (25).

Sources:

* the simulator's market (``--models``: its named fill models, see
  ``rxconnector/testing/simulator/fills.py``) for ``--symbols`` symbols over
  ``--seconds`` of market time (tick 0.1 s, seed 7 as in ``bench_recovery.py``);
* recorded files given as arguments, plain or ``.gz``/``.zst``, in any of these forms:

  - WebSocket recordings, one frame per line after an optional prefix (cryptofeed's
    ``sample_data/BINANCE*.ws.*`` ``<time>: <frame>``; hftbacktest's collector output
    ``<ns> <frame>``), holding ``aggTrade`` frames (used as they are) or ``trade`` frames
    (grouped into aggregates, below);
  - a REST ``aggTrades`` answer (a JSON array of ``{"a","f","l","T",...}``);
  - a data.binance.vision ``aggTrades`` CSV (``id,price,qty,first,last,time,maker...``;
    the symbol is taken from the file name).

  Plain ``trade`` frames are grouped into the aggregates Binance would have formed
  ("fills at the same time, from the same taker order, with the same price"):
  **exactly** when the frame carries the buyer and seller order ids (``b``/``a``, Spot
  until late 2023: the taker is the seller when ``m``), otherwise by the **proxy**
  "consecutive ids with the same trade time, price and side", which can only merge more
  fills than Binance did (two taker orders in one millisecond at one price) and so
  over-states the multi-fill share: the report says which rule each symbol used, and
  ``--check-proxy`` compares both rules where both are possible.

Aggregates are deduplicated by (symbol, first trade id) across files, so the same
recording committed at several commits counts once.

Run: ``.venv/bin/python benchmarks/bench_agg_fills.py [--models binance_spot,stress] FILES...``
"""

from __future__ import annotations

import argparse
import bisect
import csv
import gzip
import io
import itertools
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any, TextIO

from rxconnector.testing.simulator.config import symbol_spec
from rxconnector.testing.simulator.fills import fill_model
from rxconnector.testing.simulator.market import SymbolMarket

Agg = tuple[int, int, int]  # (time ms, first trade id, last trade id)
BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 10**9))


def simulated(symbols: int, seconds: float, model: str) -> dict[str, list[Agg]]:
    out: dict[str, list[Agg]] = {}
    for n in range(symbols):
        market = SymbolMarket(symbol_spec(f"S{n:04d}USDT"), 7, 0, fills=fill_model(model))
        aggs: list[Agg] = []
        for tick in range(int(seconds * 10)):
            events = market.tick(tick * 100)
            aggs += [(a.time, a.first_trade_id, a.last_trade_id) for a in events.aggs]
        out[market.symbol] = aggs
    return out


# -- readers ------------------------------------------------------------------------


def _open(path: str) -> TextIO:
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", errors="replace")
    if path.endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))  # noqa: SIM115
        return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _frames(path: str) -> Iterator[dict[str, Any]]:
    with _open(path) as f:
        for line in f:
            start = line.find("{")
            if start < 0 or ("aggTrade" not in line and '"trade"' not in line):
                continue
            try:
                frame = json.loads(line[start:])
            except ValueError:
                continue
            data = frame.get("data", frame) if isinstance(frame, dict) else None
            if isinstance(data, dict):
                yield data


def _group_trades(trades: list[dict[str, Any]]) -> tuple[list[Agg], str]:
    """Plain trades (one symbol, id order) -> aggregates, and the rule used."""
    exact = all("b" in t and "a" in t for t in trades)
    out: list[Agg] = []
    last_key: Any = None
    key: Any
    for t in trades:
        if exact:
            key = (t["a"] if t["m"] else t["b"], t["p"])
        else:
            key = (t["T"], t["p"], t["m"])
        if out and key == last_key and out[-1][2] + 1 == t["t"]:
            out[-1] = (out[-1][0], out[-1][1], t["t"])
        else:
            out.append((int(t["T"]), int(t["t"]), int(t["t"])))
        last_key = key
    return out, "exact" if exact else "proxy"


def _proxy_only(trades: list[dict[str, Any]]) -> list[Agg]:
    stripped = [{k: v for k, v in t.items() if k not in ("a", "b")} for t in trades]
    return _group_trades(stripped)[0]


def venue(path: str) -> str:
    """Which market a recording is from, by its file name (symbols repeat across them)."""
    name = os.path.basename(path).lower()
    for prefix, tag in (
        ("binance_futures", "usdm"),
        ("usdm", "usdm"),
        ("binance_delivery", "coinm"),
        ("cm_", "coinm"),
        ("binance_us", "binance.us"),
        ("binance_tr", "binance.tr"),
    ):
        if name.startswith(prefix):
            return tag
    return "spot"


def recorded(path: str, check_proxy: bool = False) -> tuple[dict[str, list[Agg]], dict[str, str]]:
    """Aggregates per ``venue:SYMBOL`` in one file, and for each how they were obtained."""
    series, how = _recorded(path, check_proxy)
    tag = venue(path)
    return {f"{tag}:{k}": v for k, v in series.items()}, {f"{tag}:{k}": v for k, v in how.items()}


def _recorded(path: str, check_proxy: bool) -> tuple[dict[str, list[Agg]], dict[str, str]]:
    name = os.path.basename(path)
    if name.endswith((".csv", ".csv.gz")):
        return _csv(path)
    with _open(path) as f:
        head = f.read(1).strip()
    if head == "[":
        with _open(path) as f:
            rows = json.load(f)
        sym = name.split("-")[0].split(".")[0].upper()
        return {sym: [(int(r["T"]), int(r["f"]), int(r["l"])) for r in rows]}, {sym: "aggTrades"}
    aggs: dict[str, list[Agg]] = defaultdict(list)
    trades: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in _frames(path):
        if d.get("e") == "aggTrade":
            aggs[d["s"].upper()].append((int(d["T"]), int(d["f"]), int(d["l"])))
        elif d.get("e") == "trade":
            trades[d["s"].upper()].append(d)
    how = {s: "aggTrade" for s in aggs}
    for sym, ts in trades.items():
        ts.sort(key=lambda t: int(t["t"]))
        grouped, rule = _group_trades(ts)
        if sym not in aggs:
            aggs[sym], how[sym] = grouped, f"trade, {rule}"
        if check_proxy and rule == "exact":
            proxy = _proxy_only(ts)
            print(
                f"  proxy check {name} {sym}: exact {_multi(grouped):.1f} % multi-fill of "
                f"{len(grouped)}, proxy {_multi(proxy):.1f} % of {len(proxy)}"
            )
    return dict(aggs), how


def _csv(path: str) -> tuple[dict[str, list[Agg]], dict[str, str]]:
    sym = os.path.basename(path).split("-")[0].upper()
    out: list[Agg] = []
    with _open(path) as f:
        for row in csv.reader(f):
            if len(row) < 6 or not row[0].strip().isdigit():
                continue  # header
            t = int(row[5])
            out.append((t // 1000 if t > 10**14 else t, int(row[3]), int(row[4])))
    return {sym: out}, {sym: "aggTrades CSV"}


# -- figures ------------------------------------------------------------------------


def _multi(aggs: list[Agg]) -> float:
    return 100 * sum(a[1] != a[2] for a in aggs) / len(aggs) if aggs else 0.0


def gap_costs(series: dict[str, list[Agg]], seconds: float) -> tuple[float, float, int]:
    """(share of windows without a multi-fill aggregate, mean aggTrades-first weight,
    windows) over every window [t, t + seconds) that starts at an aggregate."""
    clean = windows = 0
    for aggs in series.values():
        times = [a[0] for a in aggs]
        multi = [a[1] != a[2] for a in aggs]
        next_multi = len(aggs)  # index of the first multi-fill aggregate at or after i
        firsts = [0] * len(aggs)
        for i in range(len(aggs) - 1, -1, -1):
            if multi[i]:
                next_multi = i
            firsts[i] = next_multi
        for i, start in enumerate(times):
            j = bisect.bisect_left(times, start + seconds * 1000)
            windows += 1
            clean += firsts[i] >= j
    share = clean / windows if windows else 0.0
    return share, 4 + 25 * (1 - share), windows


def distribution(aggs: list[Agg]) -> list[float]:
    """Share (%) of aggregates per fills-per-aggregate bucket (see BUCKETS)."""
    sizes = Counter(a[2] - a[1] + 1 for a in aggs)
    n = len(aggs) or 1
    return [100 * sum(c for k, c in sizes.items() if lo <= k <= hi) / n for lo, hi in BUCKETS]


def _rate(aggs: list[Agg]) -> float:
    """Aggregates per second of recorded time (pauses over 60 s split recordings)."""
    times = sorted(a[0] for a in aggs)
    span = sum(b - a for a, b in itertools.pairwise(times) if b - a <= 60_000)
    return 1000 * len(aggs) / span if span > 0 else 0.0


def report(name: str, series: dict[str, list[Agg]], how: dict[str, str] | None = None) -> None:
    aggs = [a for s in series.values() for a in s]
    if not aggs:
        print(f"{name}: no aggregate trades")
        return
    trades = sum(a[2] - a[1] + 1 for a in aggs)
    multi = [a for a in aggs if a[1] != a[2]]
    in_multi = sum(a[2] - a[1] + 1 for a in multi)
    dist = " / ".join(f"{v:.1f}" for v in distribution(aggs))
    print(
        f"{name}: {len(series)} symbols, {len(aggs)} aggregates, {trades} trades; "
        f"multi-fill aggregates {100 * len(multi) / len(aggs):.1f} %, trades in them "
        f"{100 * in_multi / trades:.1f} %, continuation {(trades - len(aggs)) / trades:.2f}\n"
        f"    fills per aggregate 1/2/3/4/5/6-10/>10: {dist} %"
    )
    for seconds in (1.0, 2.0, 5.0):
        share, weight, windows = gap_costs(series, seconds)
        print(
            f"    {seconds:.0f}-s gaps ({windows}): no multi-fill {100 * share:.1f} %, "
            f"weight per gap page aggTrades-first {weight:.1f} vs historicalTrades 25"
        )
    if how is not None and len(series) > 1:
        for sym, s in sorted(series.items(), key=lambda kv: -len(kv[1])):
            share, weight, _ = gap_costs({sym: s}, 2.0)
            print(
                f"    {sym:<28} {len(s):>6} aggs {_rate(s):6.2f}/s  multi {_multi(s):5.1f} %  "
                f"2-s gaps clean {100 * share:5.1f} %  ({how.get(sym, '?')})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--models", default="binance_spot,stress", help="simulator fill models")
    parser.add_argument("--check-proxy", action="store_true")
    args = parser.parse_args()
    for model in filter(None, args.models.split(",")):
        report(
            f"simulator, fill model {model!r} ({args.seconds:.0f} s)",
            simulated(args.symbols, args.seconds, model),
        )
    everything: dict[str, list[Agg]] = {}
    how_all: dict[str, str] = {}
    for path in args.files:
        series, how = recorded(path, args.check_proxy)
        new: dict[str, list[Agg]] = {}
        for sym, s in series.items():
            seen = {a[1] for a in everything.get(sym, [])}
            fresh = [a for a in s if a[1] not in seen]
            if fresh:
                new[sym] = fresh
                everything.setdefault(sym, []).extend(fresh)
                if how[sym] not in how_all.get(sym, ""):
                    how_all[sym] = f"{how_all[sym]} + {how[sym]}" if sym in how_all else how[sym]
        if new:
            report(os.path.basename(path), new)
        else:
            print(f"{os.path.basename(path)}: nothing new (already counted)")
    if args.files:
        for s in everything.values():
            s.sort()
        for tag in sorted({k.split(":")[0] for k in everything}):
            part = {k: v for k, v in everything.items() if k.startswith(tag + ":")}
            report(f"all recordings, {tag}", part, how_all)


if __name__ == "__main__":
    main()
