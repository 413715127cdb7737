"""Memory of held trades: a parsed ``Trade`` kept as is vs ``HeldTrades``' packed form.

Parses N Binance ``trade`` frames the way the live feed does (``json.loads`` + the
library's parser, so each ``Trade`` keeps what it keeps in production), then holds them
(a) in a list of ``Trade``s plus a dict by id (what ``gapless_trades`` held before) and
(b) in :class:`~rxconnector.streams.held_trades.HeldTrades`, and prints the traced bytes
per trade of each (tracemalloc, the frames themselves freed).

Run: ``.venv/bin/python benchmarks/bench_held.py [--trades 20000]``
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import tracemalloc
from typing import Any

from rxconnector.exchanges.binance.parsers import parse_trade
from rxconnector.streams.held_trades import HeldTrades


def frames(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        data = {
            "e": "trade",
            "E": 1_700_000_000_000 + 3 * i + 2,
            "s": "BTCUSDT",
            "t": 4_000_000_000 + i,
            "p": f"{60000 + (i * 7919) % 5000}.{i % 100:02d}000000",
            "q": f"0.{(i * 104729) % 100000:05d}000",
            "T": 1_700_000_000_000 + 3 * i,
            "m": i % 3 == 0,
            "M": True,
        }
        out.append(json.dumps({"stream": "btcusdt@trade", "data": data}).encode())
    return out


def measure(raw: list[bytes], packed: bool) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    held: Any
    if packed:
        held = HeldTrades()
        for frame in raw:
            held.add(parse_trade(json.loads(frame)["data"], 1_700_000_000.123))
    else:
        held = ({}, [])
        for frame in raw:
            trade = parse_trade(json.loads(frame)["data"], 1_700_000_000.123)
            held[0][trade.trade_id] = trade
            heapq.heappush(held[1], trade.trade_id)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del held
    return used / len(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=20_000)
    args = parser.parse_args()
    raw = frames(args.trades)
    plain, packed = measure(raw, False), measure(raw, True)
    print(f"held trades: {args.trades}")
    print(f"  Trade objects (before): {plain:.0f} bytes per trade")
    print(f"  HeldTrades (packed):    {packed:.0f} bytes per trade ({packed / plain:.0%})")


if __name__ == "__main__":
    main()
