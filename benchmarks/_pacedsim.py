"""The exchange simulator paced at an exact trade rate, in a child process (bench_bus_paced).

The simulator's own clock makes a random number of trades per tick, so its rate is
whatever its tick interval and symbol count happen to give. Here the market clock is
off (``autostart_market=False``) and this process ticks it itself: every millisecond it
computes how many trades are due at the asked rate since ``go`` and steps the market
(``ExchangeSimulator.step``: one tick of every symbol, frames handed to the sockets)
until the tape holds at least that many. At rate 0 it steps as fast as it can (each
step waits until its frames are handed to the sockets: the client's reading is the
back-pressure). The rate is exact over the run; within it trades come a tick at a time
(one step of 20 symbols makes ~67 trades: measured 65-69 per step on average), as
from the simulator's own clock; every trade of a step carries the step's start time
and reaches the sockets when the whole step is done.

``--quiet-gc`` keeps Python's cyclic collector out of the paced window: ``go`` collects
once, freezes what survives and disables the collector; ``stop`` enables it again. It
is not the default and not what the goal is measured with. Until the simulator kept its
histories out of the collector (``rxconnector/testing/simulator/chunked.py``) its full
passes grew with the run (measured at 10,000 trades/s: 42-287 ms, 5-7 per 10 s); now
its process has one pass of its own modules (~68,000 objects) every few tens of
seconds. During a pause the market stands still and the pacing then steps the backlog
as fast as it can.

Protocol over stdin/stdout, one line each:

* at start it prints ``{"rest": URL, "ws": URL}``;
* ``go RATE [AFTER_S STALL_MS]`` starts pacing (answers nothing); with the two extra
  words the process blocks once, AFTER_S into the run, for STALL_MS (a synthetic stall:
  what a long pass of the collector does) and then steps the backlog at once;
* ``stop`` stops pacing and answers ``{"trades": N, "seconds": S, "sent_lag": {...},
  "gc": ..., "tracked": ...}`` (what was produced since ``go``; p50/p99/p999 over those
  trades of the tick's time -> its frames handed to the sockets, ms; the collector's
  passes since ``go``, and what it tracks at ``stop``: see ``_gclog.py``);
* ``streams`` answers ``{"streams": N}``: the active trade streams (subscribed clients);
* EOF ends the process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time

import orjson
from _gclog import GcLog, tracked_census

from rxconnector.testing import ExchangeSimulator


def _produced(sim: ExchangeSimulator, names: list[str]) -> int:
    total = 0
    for name in names:
        last = sim.market[name].tape.last_trade
        total += last.id if last is not None else 0
    return total


#: per step: (trades it made, wall ms when its frames were handed to the sockets minus
#: the tick's own time): the simulator's share of the end-to-end latency
SENT_LAG: list[tuple[int, float]] = []


#: per step: its wall time (ms) and trades
STEPS: list[tuple[float, int]] = []


async def _step(sim: ExchangeSimulator, names: list[str], before: int) -> int:
    started = time.perf_counter()
    await sim.step(1)
    produced = _produced(sim, names)
    SENT_LAG.append((produced - before, time.time() * 1000 - sim.market[names[0]].now_ms))
    STEPS.append(((time.perf_counter() - started) * 1000, produced - before))
    return produced


#: the synthetic stall of the last run, wall ms: [start, end, catch-up done] (empty: none)
STALL: list[float] = []


async def _pace(
    sim: ExchangeSimulator,
    names: list[str],
    rate: float,
    stop: asyncio.Event,
    stall: tuple[float, float] = (0.0, 0.0),
) -> int:
    """Step at ``rate`` trades/s until ``stop``; ``stall`` = (after s, for ms): block the
    whole process once for that long (``time.sleep``: what a long collector pass does),
    then catch up at once as after any pause."""
    loop = asyncio.get_running_loop()
    first = _produced(sim, names)
    started = loop.time()
    produced = first
    SENT_LAG.clear()
    STEPS.clear()
    STALL.clear()
    stall_at, stall_ms = stall
    while not stop.is_set():
        if rate <= 0:
            produced = await _step(sim, names, produced)
            continue
        if stall_ms > 0 and not STALL and loop.time() - started >= stall_at:
            STALL.append(time.time() * 1000)
            time.sleep(stall_ms / 1000)  # noqa: ASYNC251 - the point: block the loop
            STALL.append(time.time() * 1000)
        due = first + rate * (loop.time() - started)
        while produced < due and not stop.is_set():
            produced = await _step(sim, names, produced)
        if len(STALL) == 2:
            STALL.append(time.time() * 1000)  # the backlog is out
        await asyncio.sleep(0.001)
    return produced - first


def _steps() -> str:
    """Steps made, trades per step, and the median / p99 wall time of one step (ms)."""
    if not STEPS:
        return "-"
    times = sorted(ms for ms, _n in STEPS)
    trades = sum(n for _ms, n in STEPS)
    return (
        f"{len(STEPS)} steps, {trades / len(STEPS):.1f} trades each, "
        f"p50 {times[len(times) // 2]:.2f} p99 {times[int(len(times) * 0.99)]:.2f} ms each"
    )


def _sent_lag() -> dict[str, float]:
    """p50 / p99 over trades of "tick time -> frames handed to the sockets" (ms; the
    tick time is whole ms, so this reads up to 1 ms long)."""
    lags = sorted((lag, count) for count, lag in SENT_LAG if count)
    total = sum(count for _lag, count in lags)
    out: dict[str, float] = {}
    for name, share in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        seen = 0
        for lag, count in lags:
            seen += count
            if seen >= share * total:
                out[name] = round(lag, 2)
                break
    return out


async def main(names: list[str], quiet_gc: bool) -> None:
    loop = asyncio.get_running_loop()
    gc_log = GcLog()
    gc_log.start()
    async with ExchangeSimulator(symbols=names, seed=1, autostart_market=False) as sim:
        # a tape's first id is random: tick until every symbol has one (before any client)
        while any(sim.market[name].tape.last_trade is None for name in names):
            await sim.step(1)
        print(orjson.dumps({"rest": sim.rest_url, "ws": sim.ws_url}).decode(), flush=True)
        pacing: asyncio.Task[int] | None = None
        stop = asyncio.Event()
        started = 0.0
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not words:
                if not line:
                    return
                continue
            if words[0] == "go":
                if quiet_gc:
                    gc.collect()
                    gc.freeze()
                    gc.disable()
                stop.clear()
                started = loop.time()
                gc_log.passes.clear()
                stall = (float(words[2]), float(words[3])) if len(words) > 3 else (0.0, 0.0)
                pacing = loop.create_task(_pace(sim, names, float(words[1]), stop, stall))
            elif words[0] == "stop" and pacing is not None:
                stop.set()
                trades = await pacing
                passes = gc_log.summary()  # before enable(): its first pass is not the run's
                gc.enable()
                reply = {
                    "trades": trades,
                    "seconds": loop.time() - started,
                    "sent_lag": _sent_lag(),
                    "steps": _steps(),
                    "gc": passes,
                    "stall": STALL,
                    "tracked": tracked_census(),
                }
                print(orjson.dumps(reply).decode(), flush=True)
            elif words[0] == "streams":
                active = [s for s in sim.active_streams() if s.endswith("@trade")]
                print(orjson.dumps({"streams": len(active)}).decode(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--quiet-gc", action="store_true", help="no collector while pacing")
    args = parser.parse_args()
    asyncio.run(main([f"S{i}USDT" for i in range(args.symbols)], args.quiet_gc))
