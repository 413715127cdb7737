"""The bus path and a local ``conn.trades`` against THE SAME source, in the same run.

Run::

    .venv/bin/python benchmarks/bench_bus_paced.py                        # paced + firehose
    .venv/bin/python benchmarks/bench_bus_paced.py --rates 10000 --seconds 10 --firehose 0
    .venv/bin/python benchmarks/bench_bus_paced.py --rates "" --firehose 200000 --runs 3

Needs ``redis-server`` on PATH and the ``redis`` extra; loopback only.

Two comparisons (issue 14's goal: "the bus path sustains at least half of what
``conn.trades`` delivers locally, with p99 < 20 ms at 10k msgs/s"):

1. **Paced simulator** (``_pacedsim.py``, its own process): the exchange simulator with
   its clock off, stepped by the child so that it produces exactly RATE trades/s over
   SYMBOLS symbols (0 = as fast as it can). For each rate, alternately: the bus path
   (``rxconnector publish`` as a process -> redis-server -> ``RemoteConnector`` in this
   process) and a local ``Connector.trades`` in this process, both reading that same
   simulator. Latency = the subscriber's wall clock at ``on_next`` minus the trade's
   ``received_at`` (the publisher's socket receive time for the bus; the connector's own
   for local; same machine, same clock). Every run checks that every produced trade was
   delivered once (the count) before the next run starts.
2. **Firehose** (bench_feeds' pre-framed loopback server, its own process: N Binance
   trade frames pushed at once on subscribe): a local ``conn.trades`` client process
   (bench_feeds' own client, its configuration (b)) and the bus path from a child process
   running :class:`~rxconnector.bus.Publisher` (the same code as ``rxconnector publish``,
   with ``buffer_limit`` raised to hold the whole burst: at the default 10,000 a trade
   stream suspends on overflow and backfills over REST, which this server does not have)
   -> redis-server -> ``RemoteConnector`` here. Rate = (N - 1) / (last - first delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import bench_bus
import bench_feeds
import orjson
from _gclog import GcLog, summarize

HERE = os.path.dirname(os.path.abspath(__file__))


class PacedSim:
    """``_pacedsim.py`` in a child process (its stdin/stdout protocol)."""

    def __init__(
        self, symbols: int, quiet_gc: bool = False, stall: tuple[float, float] | None = None
    ) -> None:
        #: (after s, ms): one synthetic stall of the simulator per window (``_pacedsim``)
        self.stall = stall
        env = dict(os.environ)
        env["PYTHONPATH"] = bench_bus.ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "_pacedsim.py"), "--symbols", str(symbols)]
            + (["--quiet-gc"] if quiet_gc else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        urls = self._read()
        self.rest_url: str = urls["rest"]
        self.ws_url: str = urls["ws"]
        self.names = tuple(f"S{i}USDT" for i in range(symbols))

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the paced simulator ended")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def go(self, rate: float) -> None:
        stall = self.stall
        self._send(f"go {rate}" + (f" {stall[0]} {stall[1]}" if stall else ""))

    def stop(self) -> dict[str, Any]:
        self._send("stop")
        return self._read()

    def streams(self) -> int:
        self._send("streams")
        count: int = self._read()["streams"]
        return count

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Tally:
    """What one subscriber saw: latencies (ms) and delivery times.

    ``latencies``: from the trade's ``received_at`` (the publisher's socket receive for
    the bus: the **bus-only** latency; the connector's own receive for local).
    ``end_to_end``: from the exchange's event time (the simulator's clock when it made
    the trade, integer ms, so this reads up to 1 ms long, never short): simulator send,
    socket, publisher, Redis, reader, ``on_next``.
    """

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.end_to_end: list[float] = []
        self.times: list[float] = []
        #: (wall ms at on_next, event time ms) per trade
        self.walls: list[float] = []
        self.events: list[int] = []

    def on_next(self, trade: Any) -> None:
        now = time.time() * 1000
        event = trade.event_time or trade.time
        self.latencies.append(now - trade.received_at)
        self.end_to_end.append(now - event)
        self.times.append(time.perf_counter())
        self.walls.append(now)
        self.events.append(event)

    def clear(self) -> None:
        self.latencies.clear()
        self.end_to_end.clear()
        self.times.clear()
        self.walls.clear()
        self.events.clear()

    def drain(self, stall: list[float]) -> str:
        """After a synthetic stall ``[start, end, backlog out]`` (wall ms): the backlog
        (trades whose event time is from the stall's end to the backlog being out), when
        its last trade arrived after the stall's end, and at what rate it drained."""
        if len(stall) < 3:
            return "no stall"
        _start, end, out = stall
        burst = [
            (wall, wall - event)
            for wall, event in zip(self.walls, self.events, strict=True)
            if end - 1 <= event <= out
        ]
        if not burst:
            return f"stall {end - _start:.0f} ms: no trade in its backlog"
        last = max(wall for wall, _lag in burst) - end
        lags = sorted(lag for _wall, lag in burst)
        return (
            f"stall {end - _start:.0f} ms: backlog of {len(burst):,} trades stepped out by "
            f"+{out - end:.0f} ms, all delivered by +{last:.0f} ms "
            f"({len(burst) / max(last, 1e-3) * 1000:,.0f} trades/s); their end-to-end "
            f"p50 {lags[len(lags) // 2]:.1f} max {lags[-1]:.1f} ms"
        )


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 / p99 / p999 / max of ``values`` (ms)."""
    ordered = sorted(values)
    n = len(ordered)
    return {
        "p50": ordered[n // 2],
        "p99": ordered[max(int(n * 0.99) - 1, 0)],
        "p999": ordered[max(int(n * 0.999) - 1, 0)],
        "max": ordered[-1],
    }


async def _window(
    sim: PacedSim,
    tally: Tally,
    rate: float,
    seconds: float,
    pids: dict[str, int],
    pauses: GcLog,
) -> dict[str, Any]:
    """Subscribed already: wait for every stream, pace for ``seconds``, drain, summarize
    (with each process's CPU time and CPU wait per delivered entry, from schedstat)."""
    deadline = time.monotonic() + 20
    while await asyncio.to_thread(sim.streams) < len(sim.names):
        if time.monotonic() > deadline:
            raise RuntimeError("the client never subscribed every trade stream")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    tally.clear()
    # The reader's collector stays on, as in a user's process; the garbage of the
    # earlier windows is collected first so that no pass of theirs falls into this one.
    gc.collect()
    pauses.clear()
    pids = {**pids, "simulator": sim.proc.pid, "reader": os.getpid()}
    before = {name: bench_bus._cpu_ms(pid) for name, pid in pids.items()}
    window = [time.time() * 1000]
    sim.go(rate)
    await asyncio.sleep(seconds)
    produced = await asyncio.to_thread(sim.stop)
    deadline = time.monotonic() + 15
    while len(tally.times) < produced["trades"] and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    after = {name: bench_bus._cpu_ms(pid) for name, pid in pids.items()}
    window.append(time.time() * 1000)
    await asyncio.sleep(0.2)  # a duplicate would arrive now
    summary = bench_bus._summary(tally.latencies, tally.times)
    summary["e2e"] = percentiles(tally.end_to_end)
    summary["bus_only"] = percentiles(tally.latencies)
    entries = max(len(tally.times), 1)
    summary["window"] = window
    summary["gc"] = (
        f"GC passes in the window: simulator {produced.get('gc', '?')}; "
        f"reader {pauses.summary(*window)}"
    )
    summary["tracked"] = produced.get("tracked", "?")
    if sim.stall:
        summary["drain"] = tally.drain(produced.get("stall", []))
    summary["cpu"] = "; ".join(
        f"{name} {(after[name][0] - before[name][0]) * 1e3 / entries:.1f} us run + "
        f"{(after[name][1] - before[name][1]) * 1e3 / entries:.1f} us waiting"
        for name in pids
    )
    summary["sent_lag"] = produced.get("sent_lag", {})
    summary["steps"] = produced.get("steps", "-")
    summary["offered"] = produced["trades"] / produced["seconds"]
    summary["produced"] = produced["trades"]
    return summary


async def bus_run(
    url: str, sim: PacedSim, rate: float, seconds: float, redis_pid: int
) -> dict[str, Any]:
    from redis import asyncio as aioredis

    from rxconnector.bus import RemoteConnector

    admin: Any = aioredis.Redis.from_url(url)
    await admin.flushall()  # a fresh stream: the publisher starts with the live feed
    await admin.aclose()
    env = dict(os.environ)
    env["PYTHONPATH"] = bench_bus.ROOT + os.pathsep + env.get("PYTHONPATH", "")
    gc_out = os.path.join(tempfile.mkdtemp(prefix="bench-bus-gc-"), "publisher.json")
    pub = await asyncio.create_subprocess_exec(
        sys.executable, os.path.join(HERE, "_gclog.py"), gc_out,  # its collector's passes
        "-m", "rxconnector", "publish", "binance", "--feeds", "trades",
        "--symbols", ",".join(sim.names), "--redis", url, "--rest-url", sim.rest_url,
        "--ws-url", sim.ws_url, "--status-every", "60",
        stdout=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    tally = Tally()
    try:
        async with (
            RemoteConnector(url, venue="binance", block_ms=100) as remote,
            GcLog() as pauses,
        ):
            for name in sim.names:
                remote.trades(name).subscribe(tally.on_next)
            pids = {"publisher": pub.pid, "redis": redis_pid}
            before = await _calls(url)
            result = await _window(sim, tally, rate, seconds, pids, pauses)
            after = await _calls(url)
            entries = max(result["n"], 1)
            result["calls"] = "Redis calls per 1,000 entries: " + ", ".join(
                f"{name} {(after[name] - before.get(name, 0)) * 1000 / entries:.1f}"
                for name in sorted(after)
            )
    finally:
        pub.send_signal(signal.SIGTERM)
        await pub.wait()
    since, until = result["window"]
    logged = orjson.loads(await asyncio.to_thread(_read_bytes, gc_out))
    passes = [p for p in logged if since <= p[0] <= until]
    result["gc"] += f"; publisher {summarize(passes)}"
    return result


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def _calls(url: str) -> dict[str, int]:
    """Redis's own count of calls per command so far (INFO commandstats)."""
    from redis import asyncio as aioredis

    client: Any = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") in ("evalsha", "xread", "xadd", "hset")
    }


async def local_run(sim: PacedSim, rate: float, seconds: float) -> dict[str, Any]:
    import rxconnector as rxc

    tally = Tally()
    config = rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url)
    async with rxc.Connector(config) as conn, GcLog() as pauses:
        for name in sim.names:
            conn.trades(name).subscribe(tally.on_next)
        result = await _window(sim, tally, rate, seconds, {}, pauses)
    return result


def _row(label: str, rate: float, figures: dict[str, Any]) -> str:
    offered = "max" if rate == 0 else f"{rate:,.0f}/s"
    lost = figures["produced"] - figures["n"]
    e2e, recv = figures["e2e"], figures["bus_only"]
    since = "publisher receive" if label == "bus" else "socket receive"
    return (
        f"{label:6s} {offered:>9} offered {figures['offered']:>9,.0f}/s delivered "
        f"{figures['rate']:>9,.0f}/s  (n={figures['n']:,}, produced-delivered={lost}; "
        f"load {os.getloadavg()[0]:.2f})\n"
        f"         end-to-end (exchange event time -> on_next) p50 {e2e['p50']:6.2f}  "
        f"p99 {e2e['p99']:7.2f}  p999 {e2e['p999']:7.2f}  max {e2e['max']:7.2f} ms\n"
        f"         from {since} -> on_next{' (bus only)' if label == 'bus' else ''}: "
        f"p50 {recv['p50']:6.2f}  p99 {recv['p99']:7.2f}  p999 {recv['p999']:7.2f}  "
        f"max {recv['max']:7.2f} ms\n"
        f"         simulator: tick -> frames handed to the sockets {figures['sent_lag']} ms; "
        f"{figures['steps']}\n"
        f"         {figures['gc']}\n         simulator at stop: {figures['tracked']}\n"
        + (f"         {figures['calls']}\n" if "calls" in figures else "")
        + (f"         {figures['drain']}\n" if "drain" in figures else "")
        + f"         per entry: {figures['cpu']}"
    )


def paced(
    url: str,
    redis_pid: int,
    rates: list[float],
    symbols: int,
    seconds: float,
    runs: int,
    sim_gc: str = "on",
    stall: tuple[float, float] | None = None,
) -> None:
    sim = PacedSim(symbols, quiet_gc=sim_gc == "off", stall=stall)
    try:
        for run in range(runs):
            for rate in rates:
                order = ("bus", "local") if run % 2 == 0 else ("local", "bus")
                for side in order:
                    load = os.getloadavg()[0]
                    if side == "bus":
                        figures = asyncio.run(bus_run(url, sim, rate, seconds, redis_pid))
                    else:
                        figures = asyncio.run(local_run(sim, rate, seconds))
                    print(_row(side, rate, figures) + f" [load before {load:.2f}]", flush=True)
    finally:
        sim.close()


def firehose_publisher(url: str, port: int, frames: int, ready: Any, stop: Any) -> None:
    """Child process: a Publisher of BTCUSDT trades from the loopback server."""
    asyncio.run(_firehose_publisher(url, port, frames, ready, stop))


async def _firehose_publisher(url: str, port: int, frames: int, ready: Any, stop: Any) -> None:
    import rxconnector as rxc
    from rxconnector.bus import FeedTarget, Publisher
    from rxconnector.bus.slots import BATCH

    config = rxc.Config.binance(
        rest_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        clock_sync={"enabled": False},
    )
    publisher = Publisher(
        config,
        url,
        [FeedTarget("trades", "BTCUSDT")],
        venue="firehose",
        buffer_limit=frames + BATCH,
        report=lambda _error: None,
    )
    async with publisher:
        ready.set()
        await asyncio.to_thread(stop.wait)


async def bus_firehose(url: str, port: int, frames: int) -> dict[str, Any]:
    from redis import asyncio as aioredis

    from rxconnector.bus import RemoteConnector

    admin: Any = aioredis.Redis.from_url(url)
    await admin.flushall()
    await admin.aclose()
    tally = Tally()
    done = asyncio.Event()

    def on_next(trade: Any) -> None:
        tally.on_next(trade)
        if len(tally.times) >= frames:
            done.set()

    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    async with RemoteConnector(url, venue="firehose", start="0", block_ms=100) as remote:
        remote.trades("BTCUSDT").subscribe(on_next)
        proc = ctx.Process(target=firehose_publisher, args=(url, port, frames, ready, stop))
        proc.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=180)
        finally:
            stop.set()
            await asyncio.to_thread(proc.join, 20)
    return bench_bus._summary(tally.latencies, tally.times)


def firehose(url: str, frames: int, runs: int) -> None:
    for run in range(runs):
        order = ("bus", "local") if run % 2 == 0 else ("local", "bus")
        # one server per client: it pushes its frames once per subscription
        for side in order:
            load = os.getloadavg()[0]
            with bench_feeds.loopback_server(frames) as port:
                if side == "local":
                    args = ["--client", "trades", "--port", str(port), "--frames", str(frames)]
                    rate = bench_feeds._child(bench_feeds._self(*args))["rate"]
                    print(f"firehose local conn.trades: {rate:,.0f} trades/s", end="")
                else:
                    figures = asyncio.run(bus_firehose(url, port, frames))
                    print(
                        f"firehose bus (Publisher -> Redis -> RemoteConnector): "
                        f"{figures['rate']:,.0f} trades/s (n={figures['n']:,})",
                        end="",
                    )
            print(f"  [load before {load:.2f}, after {os.getloadavg()[0]:.2f}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,10000,0", help="trades/s, 0 = max")
    parser.add_argument("--symbols", type=int, default=20, help="simulated symbols")
    parser.add_argument("--seconds", type=float, default=10.0, help="per paced run")
    parser.add_argument("--runs", type=int, default=1, help="alternating repetitions")
    parser.add_argument(
        "--sim-gc",
        choices=("on", "off"),
        default="on",
        help="off: the paced simulator's collector is off while it paces (--quiet-gc)",
    )
    parser.add_argument(
        "--stall",
        default="",
        help="AFTER_S,MS: block the simulator once per window (a synthetic stall) and "
        "report how fast each side delivers the backlog after it",
    )
    parser.add_argument("--firehose", type=int, default=200_000, help="frames (0 = skip)")
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.2f} (1 min) at start; simulator GC {args.sim_gc}",
        flush=True,
    )
    port = bench_bus.free_port()
    folder = tempfile.mkdtemp(prefix="bench-bus-paced-")
    server = bench_bus.start_redis(port, folder)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        rates = [float(text) for text in filter(None, args.rates.split(","))]
        if rates:
            stall = tuple(float(v) for v in args.stall.split(",")) if args.stall else None
            paced(
                url, server.pid, rates, args.symbols, args.seconds, args.runs, args.sim_gc,
                (stall[0], stall[1]) if stall else None,
            )  # fmt: skip
        if args.firehose > 0:
            firehose(url, args.firehose, args.runs)
        print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    main()
