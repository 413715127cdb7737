"""How long a truncated order-book snapshot stays good enough for a depth-N book.

A REST snapshot of ``limit`` levels per side says nothing beyond its deepest level;
once the top ``depth`` levels reach past it the book must be refetched (coverage
exhausted, ``LocalBook.covers``). This measures, on the simulator's random-walk market
(recorded real Binance depth data is measured by bench_coverage_real.py), the market
time from a snapshot until its coverage is exhausted, for each Binance Spot snapshot
tier, and what that costs in weight per hour per symbol.

The market: ``ExchangeSimulator`` with ``book_levels`` levels per side (deeper than the
largest tier measured, so every snapshot is truncated), stepped tick by tick (0.1 s of
market time each, the simulator's default). After each tick the true top ``depth`` of
each side is compared with the snapshot's deepest price.

Run: ``.venv/bin/python benchmarks/bench_coverage.py`` (``--ticks``, ``--symbols``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from rxconnector.testing import ExchangeSimulator
from rxconnector.testing.simulator.book import SimBook

BID, ASK = 0, 1
TIERS = ((100, 5), (500, 25), (1000, 50))


def _bounds(book: SimBook, limit: int) -> tuple[int | None, int | None]:
    """Deepest bid / ask price a ``limit``-level snapshot holds (None: side complete)."""
    bids = book.levels(BID, limit)
    asks = book.levels(ASK, limit)
    floor = bids[-1][0] if len(bids) >= limit else None
    ceiling = asks[-1][0] if len(asks) >= limit else None
    return floor, ceiling


def _exhausted(book: SimBook, depth: int, floor: int | None, ceiling: int | None) -> bool:
    bids = book.levels(BID, depth)
    asks = book.levels(ASK, depth)
    if floor is not None and (len(bids) < depth or bids[-1][0] < floor):
        return True
    return ceiling is not None and (len(asks) < depth or asks[-1][0] > ceiling)


async def measure(args: argparse.Namespace) -> None:
    symbols = tuple(f"S{i:04d}USDT" for i in range(args.symbols))
    async with ExchangeSimulator(
        seed=11,
        symbols=symbols,
        book_levels=args.book_levels,
        autostart_market=False,
        book_history=1000,
    ) as sim:
        books = {s: sim.symbol(s).book for s in symbols}
        state = {(s, limit): (_bounds(books[s], limit), 0) for s in symbols for limit, _ in TIERS}
        lifetimes: dict[int, list[int]] = {limit: [] for limit, _ in TIERS}
        for tick in range(1, args.ticks + 1):
            await sim.step(1)
            for (s, limit), ((floor, ceiling), since) in list(state.items()):
                if _exhausted(books[s], args.depth, floor, ceiling):
                    lifetimes[limit].append(tick - since)
                    state[(s, limit)] = (_bounds(books[s], limit), tick)
        market_s = args.ticks * args.tick
        print(
            f"{len(symbols)} symbols, {args.ticks} ticks = {market_s:.0f} s of market each, "
            f"book {args.book_levels} levels a side, depth {args.depth}"
        )
        print("| tier | weight | exhaustions | median life | mean life | weight/h/symbol |")
        print("|---:|---:|---:|---:|---:|---:|")
        for limit, weight in TIERS:
            lives = [t * args.tick for t in lifetimes[limit]]
            n = len(lives)
            per_hour = n / (market_s * len(symbols)) * 3600
            med = f"{statistics.median(lives):.0f} s" if lives else f"> {market_s:.0f} s"
            mean = f"{statistics.fmean(lives):.0f} s" if lives else "—"
            print(f"| {limit} | {weight} | {n} | {med} | {mean} | {per_hour * weight:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--book-levels", type=int, default=1200)
    parser.add_argument("--tick", type=float, default=0.1, help="market seconds per tick")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
