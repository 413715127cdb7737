"""How often an aggregate trade covers several fills: simulator vs recorded Binance data.

A gap in a plain-trade feed can be closed from ``aggTrades`` (weight 4) alone only when
every aggregate in it is a single fill (``f == l``); one multi-fill aggregate adds a
``historicalTrades`` page (25). This prints, per source:

* aggregates, trades, the share of multi-fill aggregates and of trades inside them;
* ``continuation``: the share of trades that continue their predecessor's order (what
  ``FillSampler`` measures on a live feed), ``(trades - aggregates) / trades``;
* for gaps of 1, 2 and 5 s (every window start at an aggregate): the share of windows
  with no multi-fill aggregate, and the mean weight of one gap page for
  ``aggTrades``-first (4, + 25 when needed) against ``historicalTrades`` (25).

Sources: the simulator's market for ``--symbols`` symbols over ``--seconds`` of market
time (its default tick of 0.1 s, seed 7 as in ``bench_recovery.py``), and any recorded
Binance WebSocket sessions given as files (lines ``<time>: <frame>`` holding
``aggTrade`` frames, e.g. cryptofeed's ``sample_data/BINANCE*.ws.1.0``).

Run: ``.venv/bin/python benchmarks/bench_agg_fills.py [FILES...]``
"""

from __future__ import annotations

import argparse
import bisect
import json
from collections import defaultdict

from rxconnector.testing.simulator.config import symbol_spec
from rxconnector.testing.simulator.market import SymbolMarket

Agg = tuple[int, int, int]  # (time ms, first trade id, last trade id)


def simulated(symbols: int, seconds: float) -> dict[str, list[Agg]]:
    out: dict[str, list[Agg]] = {}
    for n in range(symbols):
        market = SymbolMarket(symbol_spec(f"S{n:04d}USDT"), 7, 0)
        aggs: list[Agg] = []
        for tick in range(int(seconds * 10)):
            events = market.tick(tick * 100)
            aggs += [(a.time, a.first_trade_id, a.last_trade_id) for a in events.aggs]
        out[market.symbol] = aggs
    return out


def recorded(path: str) -> dict[str, list[Agg]]:
    out: dict[str, list[Agg]] = defaultdict(list)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"aggTrade"' not in line:
                continue
            frame = json.loads(line.split(": ", 1)[1])
            d = frame.get("data", frame)
            out[d["s"]].append((int(d["T"]), int(d["f"]), int(d["l"])))
    return out


def gap_costs(series: dict[str, list[Agg]], seconds: float) -> tuple[float, float, int]:
    """(share of windows without a multi-fill aggregate, mean aggTrades-first weight,
    windows) over every window [t, t + seconds) that starts at an aggregate."""
    clean = windows = 0
    for aggs in series.values():
        times = [a[0] for a in aggs]
        multi = [a[1] != a[2] for a in aggs]
        for i, start in enumerate(times):
            j = bisect.bisect_left(times, start + seconds * 1000)
            windows += 1
            clean += not any(multi[i:j])
    share = clean / windows if windows else 0.0
    return share, 4 + 25 * (1 - share), windows


def report(name: str, series: dict[str, list[Agg]]) -> None:
    aggs = [a for s in series.values() for a in s]
    if not aggs:
        print(f"{name}: no aggregate trades")
        return
    trades = sum(a[2] - a[1] + 1 for a in aggs)
    multi = [a for a in aggs if a[1] != a[2]]
    in_multi = sum(a[2] - a[1] + 1 for a in multi)
    print(
        f"{name}: {len(series)} symbols, {len(aggs)} aggregates, {trades} trades; "
        f"multi-fill aggregates {100 * len(multi) / len(aggs):.1f} %, trades in them "
        f"{100 * in_multi / trades:.1f} %, continuation {(trades - len(aggs)) / trades:.2f}"
    )
    for seconds in (1.0, 2.0, 5.0):
        share, weight, windows = gap_costs(series, seconds)
        print(
            f"    {seconds:.0f}-s gaps ({windows}): no multi-fill {100 * share:.1f} %, "
            f"weight per gap page aggTrades-first {weight:.1f} vs historicalTrades 25"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()
    report(f"simulator ({args.seconds:.0f} s)", simulated(args.symbols, args.seconds))
    everything: dict[str, list[Agg]] = {}
    for path in args.files:
        series = recorded(path)
        report(path.rsplit("/", 1)[-1], series)
        everything.update({f"{path}:{k}": v for k, v in series.items()})
    if args.files:
        report("all recordings", everything)


if __name__ == "__main__":
    main()
