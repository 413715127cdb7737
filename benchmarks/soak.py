"""The chaos soak of issue 16: many symbols, user REST calls, a random fault every 5-15 s.

The simulator runs in a child process (``_simproc.py``) with the venue's documented
limits. One ``Connector`` (default settings) subscribes N symbols x (``trades``,
``order_book(depth=20)``, ``ticker``) and makes one user REST call a second
(``server_time``); every 5-15 s (uniform) one fault of a random kind is injected:
disconnect, 5-s stall, disconnect + 429 Retry-After 1, disconnect + 418 Retry-After 1,
``serverShutdown``. Measured:

* books available: sampled every 0.5 s, the share of (symbol, sample) pairs whose book
  emitted within the last 2 s and has not been reported resyncing since;
* trade ids reported lost (``FeedGapError`` ranges) and, of those, ids the exchange
  still served when the report came (the goal is 0);
* trades delivered, duplicates, out-of-order ids (must be 0);
* user calls made / failed, and RSS at 20 % of the run and at its end (the "minute 2
  to 10" of the default 10-minute run).

Run: ``.venv/bin/python benchmarks/soak.py`` (default 10 minutes; ``--minutes 3`` to
shorten, ``--symbols``, ``--seed``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import time
import tracemalloc
from typing import Any

from bench_recovery import Sim, _first

import rxconnector as rxc
from rxconnector.errors import FeedGapError

FAULTS = ("disconnect", "stall5", "disconnect_429", "ban418", "shutdown")


def census() -> dict[str, int]:
    """What the bounded buffers hold now: held trades (``HeldTrades``), book diff events
    waiting for a snapshot (the syncs' ``_buffer``), live ``Trade`` and ``DepthUpdate``
    objects. Walks every GC-tracked object: for a diagnosis run only (``--census``)."""
    out = {"held_trades": 0, "book_buffered_events": 0, "Trade": 0, "DepthUpdate": 0}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name == "HeldTrades":
            out["held_trades"] += len(obj)
        elif name.endswith("Sync") and isinstance(getattr(obj, "_buffer", None), list):
            out["book_buffered_events"] += len(obj._buffer)
        elif name in ("Trade", "DepthUpdate"):
            out[name] += 1
    return out


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def soak(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    sim, urls = await Sim.start(args.symbols, ["--fill-model", args.fill_model])
    symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
    last_book = dict.fromkeys(symbols, 0.0)
    last_resync = dict.fromkeys(symbols, 0.0)
    last_trade = dict.fromkeys(symbols, 0)
    last_ticker = dict.fromkeys(symbols, 0.0)
    counts = {"trades": 0, "dup": 0, "disorder": 0, "lost": 0, "lost_served": 0, "calls": 0}
    counts["call_failures"] = 0
    gaps: list[tuple[str, int, int]] = []
    faults: list[str] = []
    samples = [0, 0, 0]  # books available, total, tickers available
    connection = {} if args.healthy_after is None else {"healthy_after": args.healthy_after}
    cfg = rxc.Config.binance(
        rest_url=urls["rest_url"], ws_url=urls["ws_url"], connection=connection
    )
    duration = args.minutes * 60.0
    try:
        async with rxc.Connector(cfg) as conn:

            def on_error(e: Exception) -> None:
                if isinstance(e, FeedGapError):
                    sym = e.topic.split("@")[0].upper()
                    if e.first_missing is not None and e.last_missing is not None:
                        gaps.append((sym, e.first_missing, e.last_missing))
                        counts["lost"] += e.last_missing - e.first_missing + 1
                        counts["disorder"] -= 1  # the jump over a reported gap is expected
                    elif sym in last_resync:
                        last_resync[sym] = time.monotonic()

            def on_book(s: str) -> Any:
                def f(_b: rxc.OrderBook) -> None:
                    last_book[s] = time.monotonic()

                return f

            def on_ticker(s: str) -> Any:
                def f(_t: rxc.Ticker) -> None:
                    last_ticker[s] = time.monotonic()

                return f

            def on_trade(s: str) -> Any:
                def f(t: rxc.Trade) -> None:
                    counts["trades"] += 1
                    last = last_trade[s]
                    if last and t.trade_id <= last:
                        counts["dup"] += 1
                        return
                    if last and t.trade_id != last + 1:
                        counts["disorder"] += 1
                    last_trade[s] = t.trade_id

                return f

            subs = [conn.errors.subscribe(on_error)]
            for s in symbols:
                subs.append(conn.ticker(s).subscribe(on_ticker(s)))
                subs.append(conn.trades(s).subscribe(on_trade(s)))
                subs.append(conn.order_book(s, 20).subscribe(on_book(s)))
            start = time.monotonic()
            next_fault = start + rng.uniform(5, 15)
            next_call = start + 1.0
            next_sample = start + 0.5
            rss_early: float | None = None
            rss_by_minute: list[float] = []
            next_census = time.monotonic() + args.census
            peak_census: dict[str, int] = {}
            fault_task: asyncio.Task[Any] | None = None
            calls: set[asyncio.Task[Any]] = set()

            async def user_call() -> None:
                counts["calls"] += 1
                try:
                    await asyncio.wait_for(_first(conn.server_time()), 10)
                except Exception:
                    counts["call_failures"] += 1

            while (now := time.monotonic()) < start + duration:
                if now >= next_fault and (fault_task is None or fault_task.done()):
                    name = rng.choice(FAULTS)
                    faults.append(name)
                    fault_task = asyncio.ensure_future(sim.ask(cmd="inject", name=name))
                    next_fault = now + rng.uniform(5, 15)
                if now >= next_call:
                    task = asyncio.ensure_future(user_call())
                    calls.add(task)
                    task.add_done_callback(calls.discard)
                    next_call += 1.0
                if now >= next_sample:
                    next_sample += 0.5
                    if now - start > 10:  # after the cold start
                        for s in symbols:
                            samples[1] += 1
                            if now - last_book[s] < 2.0 and last_book[s] > last_resync[s]:
                                samples[0] += 1
                            if now - last_ticker[s] < 2.5:  # tickers come every 1 s
                                samples[2] += 1
                if rss_early is None and now - start >= duration * 0.2:
                    rss_early = rss_mib()
                    if args.tracemalloc:
                        early_snapshot = tracemalloc.take_snapshot()
                if now - start >= 60.0 * (len(rss_by_minute) + 1):
                    rss_by_minute.append(rss_mib())
                if args.census and now >= next_census:
                    next_census += args.census
                    counts_now = census()
                    for name, value in counts_now.items():
                        peak_census[name] = max(peak_census.get(name, 0), value)
                    print(f"  census {now - start:5.0f} s: {counts_now}", flush=True)
                await asyncio.sleep(0.05)
            rss_end = rss_mib()
            if args.census:
                print(f"  census peak: {peak_census}", flush=True)
            if args.tracemalloc:
                diff = tracemalloc.take_snapshot().compare_to(early_snapshot, "lineno")
                for stat in diff[:15]:
                    print("  tracemalloc:", stat)
            if fault_task is not None:
                await fault_task
            for sym, first, last in gaps:
                if (await sim.ask(cmd="tape", symbol=sym, **{"from": first, "to": last}))["served"]:
                    counts["lost_served"] += last - first + 1
            rest = await sim.ask(cmd="rest", since=0)
            for sub in subs:
                sub.dispose()
    finally:
        await sim.close()
    assert rss_early is not None
    print(
        f"soak: {args.minutes} min, {args.symbols} symbols, seed {args.seed}, "
        f"load {os.getloadavg()[0]:.1f}\n"
        f"  faults: {len(faults)} ({', '.join(f'{f} {faults.count(f)}' for f in FAULTS)})\n"
        f"  books available: {100.0 * samples[0] / max(samples[1], 1):.1f} % of "
        f"{samples[1]} samples (tickers, which need no REST: "
        f"{100.0 * samples[2] / max(samples[1], 1):.1f} %)\n"
        f"  trades: {counts['trades']}, duplicates {counts['dup']}, out of order "
        f"{counts['disorder']}, ids reported lost {counts['lost']}, of which the exchange "
        f"still served {counts['lost_served']}\n"
        f"  user calls: {counts['calls']}, failed {counts['call_failures']}\n"
        f"  REST: {rest['calls']} calls, {rest['weight']} weight, statuses {rest['statuses']}, "
        f"peak used weight {rest['max_minute_weight']}/{rest['limit']}\n"
        f"  RSS: {rss_early:.1f} MiB at {0.2 * args.minutes:.1f} min -> {rss_end:.1f} MiB at "
        f"{args.minutes} min ({100.0 * (rss_end - rss_early) / rss_early:+.1f} %); by minute: "
        f"{', '.join(f'{r:.0f}' for r in rss_by_minute)} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fill-model", default="binance_spot", help="the simulator's market (see bench_recovery)"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="where memory grew")
    parser.add_argument(
        "--census",
        type=float,
        default=0.0,
        help="every N s, count what the buffers hold (a gc walk: a diagnosis, it slows the run)",
    )
    parser.add_argument(
        "--healthy-after",
        type=float,
        default=None,
        help="connection.healthy_after (default: the library's)",
    )
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(8)
    asyncio.run(soak(args))


if __name__ == "__main__":
    main()
