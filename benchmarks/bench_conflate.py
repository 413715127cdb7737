"""``conflate()``'s cost per value, on the loop and on other schedulers.

Run::

    .venv/bin/python benchmarks/bench_conflate.py                 # this tree
    .venv/bin/python benchmarks/bench_conflate.py --tree /tmp/old  # another checkout

``conn.order_book`` (and every user pipeline that conflates a fast feed) pushes each
value through ``conflate()``; its delivery is scheduled on the running loop. Three cases,
CPU µs per value (best of ``--repeat``), each minus the same loop without ``conflate``:

* **one value per loop pass** (the worst case: every value schedules a delivery);
* **a burst of 10 per loop pass** (values collapse; one delivery per pass);
* **ImmediateScheduler** (delivery inline: the operator's own bookkeeping only).

Also the memory the operator holds per live subscription (tracemalloc, 1,000
subscriptions).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    return parser.parse_args()


ARGS = _arguments()
sys.path.insert(0, str(ARGS.tree.resolve()))

from reactivex.scheduler import ImmediateScheduler  # noqa: E402
from reactivex.subject import Subject  # noqa: E402

from rxconnector.operators import conflate  # noqa: E402


async def per_pass(values: int, burst: int, with_conflate: bool) -> float:
    """CPU seconds for ``values`` values pushed ``burst`` per loop pass."""
    subject: Subject[int] = Subject()
    seen = [0]

    def consume(_: int) -> None:
        seen[0] += 1

    if with_conflate:
        subject.pipe(conflate()).subscribe(consume)
        push = subject.on_next
    else:
        push = consume
    start = time.process_time()
    for i in range(0, values, burst):
        for j in range(burst):
            push(i + j)
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    elapsed = time.process_time() - start
    expected = values // burst if with_conflate else values
    assert seen[0] == expected, (seen[0], expected)
    return elapsed


def immediate(values: int) -> float:
    subject: Subject[int] = Subject()
    subject.pipe(conflate(ImmediateScheduler())).subscribe(lambda _: None)
    push = subject.on_next
    start = time.process_time()
    for i in range(values):
        push(i)
    return time.process_time() - start


def bare_subject(values: int) -> float:
    subject: Subject[int] = Subject()
    subject.subscribe(lambda _: None)
    push = subject.on_next
    start = time.process_time()
    for i in range(values):
        push(i)
    return time.process_time() - start


async def held_bytes(subscriptions: int) -> float:
    subject: Subject[int] = Subject()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    held: list[Any] = [
        subject.pipe(conflate()).subscribe(lambda _: None) for _ in range(subscriptions)
    ]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    for subscription in held:
        subscription.dispose()
    return size / subscriptions


async def main() -> None:
    n, repeat = ARGS.values, ARGS.repeat
    rows: dict[str, float] = {}
    for burst in (1, 10):
        spans = []
        for _ in range(repeat):  # alternated with the bare loop, best difference
            spans.append((await per_pass(n, burst, True)) - (await per_pass(n, burst, False)))
        best = min(spans)
        rows[f"loop, {burst} value(s) per pass"] = best / n * 1e6
    inline = min(immediate(n) - bare_subject(n) for _ in range(repeat))
    rows["ImmediateScheduler (operator only)"] = inline / n * 1e6
    print(f"conflate() at {ARGS.tree} ({n:,} values, best of {repeat}, CPU µs per value)")
    for label, us in rows.items():
        rate = f"{1e6 / us:>12,.0f} /s" if us > 0 else ""
        print(f"  {label:40s} {us:6.2f} µs {rate}")
    print(f"  held per live subscription              {await held_bytes(1000):6.0f} bytes")


if __name__ == "__main__":
    asyncio.run(main())
