"""Where the bus path's latency tail comes from (issue 14, "Bus tail at 10k/s" in RESULTS).

Run::

    .venv/bin/python benchmarks/bench_bus_tail.py --rate 10000 --seconds 10 --sim-gc on
    .venv/bin/python benchmarks/bench_bus_tail.py --rate 10000 --seconds 10 --sim-gc off

One ``bench_bus_paced`` bus run (paced simulator -> ``rxconnector publish`` -> Redis ->
``RemoteConnector``) with the reader's reply parsing wrapped, in this process only, to
note each entry's Redis id and ``ts``, so every delivered trade's latency splits into
received -> encoded -> in Redis (the entry id: Redis's clock, truncated to the ms) ->
XREAD reply read -> ``on_next``. A thread samples ``/proc/stat`` and our processes'
schedstat every 5 ms. Printed: the split, the simulator's stalls (gaps in its trades'
event times) and how many p99 samples follow one, and each p99 episode (p99 samples less
than 50 ms apart) with how busy the machine was and how much of it was ours. The
wrapper and the sampler cost CPU of their own (the reader ~+8 us per entry).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import signal
import statistics
import tempfile
import threading
import time
from typing import Any

import bench_bus
import bench_bus_paced

import rxconnector.bus.reader as reader_module

#: (symbol, trade id) -> (entry id ms, ts ms, reply read ms)
ENTRIES: dict[tuple[str, int], tuple[int, float, float]] = {}
#: (symbol, trade id, received_at, on_next ms, event time)
DELIVERED: list[tuple[str, int, float, float, int]] = []
_replies = reader_module._stream_replies


def _noting_replies(reply: Any) -> Any:
    now = time.time() * 1000
    pairs = list(_replies(reply))
    for stream, entries in pairs:
        symbol = reader_module.as_text(stream).rsplit(":", 1)[1]
        for entry_id, flat in entries:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            written = int(entry_id.split(b"-")[0])
            ENTRIES[(symbol, int(fields[b"seq"]))] = (written, float(fields[b"ts"]), now)
    return pairs


class NotingTally(bench_bus_paced.Tally):
    def on_next(self, trade: Any) -> None:
        super().on_next(trade)
        event = trade.event_time or trade.time
        now = time.time() * 1000
        DELIVERED.append((trade.symbol, trade.trade_id, trade.received_at, now, event))


class Sampler(threading.Thread):
    """(wall ms, machine busy CPU ms, our processes' CPU ms) every 5 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float, float]] = []
        self.stop = threading.Event()
        self.tick_ms = 1000 / os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.stop.is_set():
            with open("/proc/stat") as stat:
                values = [int(v) for v in stat.readline().split()[1:]]
            busy = (sum(values) - values[3] - values[4]) * self.tick_ms
            self.samples.append((time.time() * 1000, busy, _our_cpu_ms()))
            time.sleep(0.005)

    def usage(self, start: float, end: float) -> tuple[float, float] | None:
        """(machine busy in cores, ours in cores) between two wall clock ms."""
        times = [s[0] for s in self.samples]
        i, j = bisect.bisect_left(times, start), bisect.bisect_left(times, end) - 1
        if j <= i:
            return None
        wall = self.samples[j][0] - self.samples[i][0]
        busy = (self.samples[j][1] - self.samples[i][1]) / wall
        return busy, (self.samples[j][2] - self.samples[i][2]) / wall


def _our_cpu_ms() -> float:
    """CPU ms so far of this process and its children (simulator, publisher, Redis)."""
    me = os.getpid()
    pids = [me]
    for task in os.listdir(f"/proc/{me}/task"):
        try:
            with open(f"/proc/{me}/task/{task}/children") as children:
                pids += [int(pid) for pid in children.read().split()]
        except OSError:
            pass
    total = 0.0
    for pid in pids:
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                    total += int(schedstat.read().split()[0]) / 1e6
        except OSError:
            pass
    return total


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99) - 1]


def worst_hops(
    rows: list[tuple[float, float, float, float, float, int]],
    hops: dict[str, tuple[int, int]],
) -> None:
    """The worst 1 % of entries by end-to-end latency, split per hop: each hop's median
    and mean there (beside its median over all entries), and for how many of them it
    was the largest part. The entry id and the event time are whole ms: "-> in Redis"
    reads up to 1 ms short and "in Redis ->" as much long; "exchange ->" up to 1 ms long.
    """
    ordered = sorted(rows, key=lambda row: row[4] - row[5])
    worst = ordered[len(ordered) - max(len(ordered) // 100, 1) :]
    largest = {label: 0 for label in hops}
    for row in worst:
        parts = {label: row[b] - row[a] for label, (a, b) in hops.items()}
        largest[max(parts, key=parts.__getitem__)] += 1
    print(
        f"  worst 1 % by end to end ({len(worst)} entries, "
        f"from {worst[0][4] - worst[0][5]:.1f} ms): per hop median / mean there "
        f"[median over all] ms, largest part of how many"
    )
    for label, (a, b) in hops.items():
        there = [row[b] - row[a] for row in worst]
        everywhere = statistics.median(row[b] - row[a] for row in rows)
        print(
            f"    {label:20s} {statistics.median(there):7.2f} / {statistics.mean(there):7.2f} "
            f"[{everywhere:5.2f}]  largest in {largest[label]}"
        )


def report(rows: list[tuple[float, float, float, float, float, int]], sampler: Sampler) -> None:
    """rows: (received_at, ts, in Redis, reply read, on_next, event time), all ms."""
    rows.sort(key=lambda row: row[0])
    segments = {
        "exchange -> received": (5, 0),
        "received -> encoded": (0, 1),
        "encoded -> in Redis": (1, 2),
        "in Redis -> read": (2, 3),
        "read -> on_next": (3, 4),
        "bus only": (0, 4),
        "end to end": (5, 4),
    }
    for label, (a, b) in segments.items():
        values = [row[b] - row[a] for row in rows]
        print(
            f"  {label:20s} p50 {statistics.median(values):6.2f}  p99 {_p99(values):6.2f}  "
            f"max {max(values):6.2f} ms"
        )
    worst_hops(rows, dict(list(segments.items())[:5]))
    events = sorted({row[5] for row in rows})
    stalls = [b for a, b in itertools.pairwise(events) if b - a >= 30]
    gaps = sorted(b - a for a, b in itertools.pairwise(events))[-5:]
    p99 = _p99([row[4] - row[0] for row in rows])
    tail = [row for row in rows if row[4] - row[0] >= p99]
    after = sum(1 for row in tail if any(0 <= row[0] - end <= 200 for end in stalls))
    print(
        f"  simulator: largest gaps between its trades {gaps} ms; {len(stalls)} of >= 30 ms; "
        f"p99 samples within 200 ms after one: {after} of {len(tail)}"
    )
    whole = sampler.usage(rows[0][0], rows[-1][4])
    if whole is not None:
        print(f"  whole window: machine {whole[0]:.2f} of 2 cores busy, ours {whole[1]:.2f}")
    episodes: list[list[tuple[float, ...]]] = []
    for row in tail:
        if episodes and row[0] - episodes[-1][-1][0] < 50:
            episodes[-1].append(row)
        else:
            episodes.append([row])
    for episode in episodes:
        start, end = episode[0][0] - 30, max(row[4] for row in episode)
        worst = [max(row[b] - row[a] for row in episode) for a, b in ((1, 2), (2, 3), (3, 4))]
        used = sampler.usage(start, end)
        busy = "" if used is None else f"; machine {used[0]:.2f} cores busy, ours {used[1]:.2f}"
        print(
            f"  p99 episode at {episode[0][0] - rows[0][0]:6.0f} ms: {len(episode)} samples, "
            f"{end - start:4.0f} ms; worst encoded->Redis {worst[0]:.1f}, Redis->read "
            f"{worst[1]:.1f}, read->on_next {worst[2]:.1f} ms{busy}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--sim-gc", choices=("on", "off"), default="on")
    args = parser.parse_args()
    reader_module._stream_replies = _noting_replies  # type: ignore[assignment]
    bench_bus_paced.Tally = NotingTally  # type: ignore[misc]
    port = bench_bus.free_port()
    server = bench_bus.start_redis(port, tempfile.mkdtemp(prefix="bench-bus-tail-"))
    url = f"redis://127.0.0.1:{port}/0"
    sim = bench_bus_paced.PacedSim(args.symbols, quiet_gc=args.sim_gc == "off")
    sampler = Sampler()
    sampler.start()
    try:
        load = os.getloadavg()[0]
        figures = asyncio.run(
            bench_bus_paced.bus_run(url, sim, args.rate, args.seconds, server.pid)
        )
        print(bench_bus_paced._row("bus", args.rate, figures) + f" [load before {load:.2f}]")
    finally:
        sampler.stop.set()
        sim.close()
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
    rows = []
    for symbol, trade_id, received, delivered, event in DELIVERED[-figures["n"] :]:
        written, stamp, read = ENTRIES[(symbol, trade_id)]
        rows.append((received, stamp, float(written), read, delivered, event))
    report(rows, sampler)


if __name__ == "__main__":
    main()
