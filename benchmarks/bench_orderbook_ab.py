"""Order book A/B: the same in-process book pipeline of two source trees, in CPU time.

Run::

    .venv/bin/python benchmarks/bench_orderbook_ab.py --before /path/to/old/checkout

For a change that must not make the book slower (issue 11 moved the sync rules and
rewrote the operator as a class). Wall-clock figures of ``bench_orderbook.py`` swing by
±25 % and more on a shared, loaded machine; this script measures *process CPU time*
(``time.process_time``), which foreign load disturbs far less, and alternates the two
trees in fresh processes (``--rounds`` times each) so that whatever load remains hits
both. Each process imports ``bench_orderbook.py`` of its own tree (its market, snapshot
and sync setup), parses the frames once outside the timing, then times, best of
``--runs``: the sync rule + book update + top-20 view per update, and the same through
``maintain_order_book`` with a subscriber. Printed: the best CPU µs per update of each
tree over all rounds, and the ratio after/before. (A tree whose ``bench_orderbook.py``
has ``read_frame`` - frames in the combined-stream wrapper - is parsed with it: the
library's own reader, packed levels where the library packs them.)
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Runs inside a fresh process with the tree's root first on ``sys.path``.
_CHILD = """
import gc, sys, time
sys.path.insert(0, {root!r})
sys.path.insert(0, {root!r} + "/benchmarks")
import orjson, reactivex
from reactivex.subject import Subject
import bench_orderbook as b

snapshot_payload, frames = b.make_market({events}, {levels})
snapshot = b.snapshot_book(snapshot_payload)
warm = b.first_event()
read = getattr(b, "read_frame", None)  # frames in the combined-stream wrapper, the library's reader
updates = ([read(f, 0.0) for f in frames] if read is not None
           else [b.book_reader(orjson.loads(f), 0.0) for f in frames])
APPLIED = b.APPLIED

def rule():
    sync = b.new_sync(snapshot, warm)
    on_update, view = sync.on_update, sync.view
    for u in updates:
        if on_update(u) is not APPLIED:
            raise AssertionError("not applied")
        view()

def operator():
    subject = Subject()
    seen = []
    b.maintain_order_book(subject, lambda: reactivex.of(snapshot), b.BookRule.BINANCE_SPOT,
                          b.DEPTH, snapshot_limit=b.SNAPSHOT_LEVELS).subscribe(seen.append)
    subject.on_next(warm)
    push = subject.on_next
    for u in updates:
        push(u)
    assert len(seen) == len(updates) + 1

best = {{"rule": float("inf"), "operator": float("inf")}}
for _ in range({runs}):
    for name, fn in (("rule", rule), ("operator", operator)):
        gc.collect()
        start = time.process_time()
        fn()
        best[name] = min(best[name], time.process_time() - start)
print(best["rule"] / len(updates) * 1e6, best["operator"] / len(updates) * 1e6)
"""


def measure(root: Path, events: int, levels: Any, runs: int) -> tuple[float, float]:
    """(rule, operator) best CPU µs per update of one fresh process on ``root``."""
    code = _CHILD.format(root=str(root), events=events, levels=levels, runs=runs)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the old checkout's root")
    parser.add_argument("--after", type=Path, default=HERE.parent, help="default: this tree")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--levels", default="3", help="level changes per frame: N or LO-HI")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per process")
    parser.add_argument("--rounds", type=int, default=4, help="processes per tree")
    args = parser.parse_args()
    lo, _, hi = args.levels.partition("-")
    levels = (int(lo), int(hi)) if hi else int(lo)
    best = {"before": [float("inf")] * 2, "after": [float("inf")] * 2}
    start_load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for tree, root in (("after", args.after), ("before", args.before)):
            gc.collect()
            pair = measure(root.resolve(), args.events, levels, args.runs)
            best[tree] = [min(a, b) for a, b in zip(best[tree], pair, strict=True)]
    print(
        f"{args.events:,} updates, {args.levels} level changes/frame, best CPU µs per update "
        f"over {args.rounds} processes x {args.runs} runs per tree "
        f"(load average {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end)"
    )
    for k, stage in enumerate(("sync rule + book + top-20 view", "through maintain_order_book")):
        before, after = best["before"][k], best["after"][k]
        print(f"  {stage:32s} before {before:6.2f}  after {after:6.2f}  ratio {after / before:.3f}")


if __name__ == "__main__":
    main()
