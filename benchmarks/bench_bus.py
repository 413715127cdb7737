"""The Redis Streams bus path: throughput and end-to-end latency, publisher -> Redis ->
RemoteConnector.

Run::

    .venv/bin/python benchmarks/bench_bus.py               # 1k/s, 10k/s, max + simulator path
    .venv/bin/python benchmarks/bench_bus.py --rates 1000 --seconds 5 --publisher-seconds 0
    .venv/bin/python benchmarks/bench_bus.py --rates "" --publisher-seconds 0 --outage 60
                                                           # memory through a Redis outage
                                                           # (alone: RSS is per process)

Needs ``redis-server`` on PATH (started here on a free 127.0.0.1 port, no persistence)
and the ``redis`` extra. No network beyond loopback.

What is measured: a writer *process* produces ``Trade`` models at a paced rate and
writes them as :class:`rxconnector.bus.Publisher` does - the producer encodes
(``encode_record``) into a buffer while a flush task sends pipelined fenced batches of up
to ``BATCH`` entries, each packed into one argument (``pack_batch``), through the
``FENCED_APPEND`` Lua script (lease check + exactly-once id check + XADD) - while this
process runs a
:class:`~rxconnector.bus.RemoteConnector` (XREAD, decode to ``Trade``, share, on_next).
Latency = the subscriber's wall clock at ``on_next`` minus the entry's ``ts`` (the
writer's clock at encode time; same machine, same clock). The exchange side (socket,
parse, gapless operator) is not in this path: it is the same as for a local
``conn.trades`` (see bench_feeds.py), so "bus sustains >= half of local conn.trades"
compares this max rate with bench_feeds' (b) figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from decimal import Decimal
from itertools import islice
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYMBOL = "BTCUSDT"
KEY = f"rxc:bench:trades:{SYMBOL}"


class GcPauses:
    """The cyclic collector's pauses in this (the consumer's) process while active."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1e3))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    async def __aenter__(self) -> GcPauses:
        return self.__enter__()

    async def __aexit__(self, *_exc: object) -> None:
        self.__exit__()

    def clear(self) -> None:
        self.pauses.clear()

    def summary(self) -> str:
        full = [ms for gen, ms in self.pauses if gen == 2]
        longest = max((ms for _gen, ms in self.pauses), default=0.0)
        return (
            f"consumer GC: {len(self.pauses)} collections, {len(full)} full, "
            f"longest {longest:.1f} ms, total {sum(ms for _g, ms in self.pauses):.0f} ms"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(port: int, folder: str) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server not found (apt-get install -y redis-server)")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", folder, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(8).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def writer(url: str, rate: float, count: int, first_id: int) -> None:
    """The publisher's write path at ``rate`` trades/s (0 = as fast as possible)."""
    asyncio.run(_write(url, rate, count, first_id))


async def _write(url: str, rate: float, count: int, first_id: int) -> None:
    """Like the publisher: a producer (the feed's callbacks: build the model, encode,
    buffer) and a flush task (pipelined fenced batches) that runs while the producer
    encodes the next entries; at the max rate the producer waits while the buffer is
    full, so the rate is what the flush path sustains."""
    from redis import asyncio as aioredis

    from rxconnector.bus.codec import Record, encode_record, pack_batch
    from rxconnector.bus.fencing import ACQUIRE_OR_RENEW, FENCED_APPEND
    from rxconnector.bus.slots import BATCH, DEFAULT_BUFFER_LIMIT, ROUND
    from rxconnector.models import Trade

    client: Any = aioredis.Redis.from_url(url)
    acquire = client.register_script(ACQUIRE_OR_RENEW)
    sha = await client.script_load(FENCED_APPEND)
    await acquire(keys=[f"{KEY}:lease"], args=["bench", 600_000])
    keys = [KEY, f"{KEY}:lease", f"{KEY}:seq"]
    price, qty = Decimal("65000.10"), Decimal("0.00100000")
    buffer: deque[Record] = deque()
    wake, space = asyncio.Event(), asyncio.Event()
    produced_all = False

    async def produce() -> None:
        nonlocal produced_all
        sent = 0
        started = time.perf_counter()
        while sent < count:
            if rate > 0:  # pace: produce what is due by now (the feed's arrival pattern)
                due = min(int((time.perf_counter() - started) * rate) + 1, count)
                if due <= sent:
                    await asyncio.sleep(max((sent + 1) / rate - (time.perf_counter() - started), 0))
                    continue
            else:
                while len(buffer) >= DEFAULT_BUFFER_LIMIT:
                    space.clear()
                    await space.wait()
                due = min(sent + BATCH, count)
            now_ms = int(time.time() * 1000)
            for i in range(sent, due):
                trade = Trade(
                    SYMBOL, first_id + i, price, qty, "buy", now_ms, now_ms, time.time() * 1000
                )
                buffer.append(encode_record(trade))
            sent = due
            wake.set()
            await asyncio.sleep(0)  # let the flush task send what is buffered
        produced_all = True
        wake.set()

    async def flush() -> None:
        # as Publisher._flush_once: up to ROUND batches of BATCH entries per round trip
        while True:
            if not buffer:
                if produced_all:
                    return
                wake.clear()
                await wake.wait()
                continue
            after = ""
            taken = 0
            sizes: list[int] = []
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(ROUND):
                    size = min(len(buffer) - taken, BATCH)
                    if size <= 0:
                        break
                    batch = pack_batch(r[0] for r in islice(buffer, taken, taken + size))
                    # EVALSHA queued directly, as the publisher does (a registered
                    # Script would add a SCRIPT EXISTS round trip per flush)
                    pipe.evalsha(
                        sha, len(keys), *keys, "bench", 600_000, 1_000_000, "1", after, batch
                    )
                    taken += size
                    sizes.append(size)
                    after = buffer[taken - 1][1]  # the seq of this batch's last entry
                results = await pipe.execute()
            if [int(r) for r in results] != sizes:
                raise RuntimeError(f"fenced writes refused or partial: {results} for {sizes}")
            for _ in range(taken):
                buffer.popleft()
            space.set()

    await asyncio.gather(produce(), flush())
    await client.aclose()


async def measure(url: str, rate: float, count: int, first_id: int) -> dict[str, Any]:
    from rxconnector.bus import RemoteConnector

    latencies: list[float] = []
    times: list[float] = []
    done = asyncio.Event()

    async with RemoteConnector(url, venue="bench", block_ms=100) as remote, GcPauses() as pauses:

        def on_next(trade: Any) -> None:
            now = time.time() * 1000
            latencies.append(now - trade.received_at)
            times.append(time.perf_counter())
            if len(times) >= count:
                done.set()

        remote.trades(SYMBOL).subscribe(on_next)
        await asyncio.sleep(0.3)  # the reader resolved "$"
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=writer, args=(url, rate, count, first_id))
        proc.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=max(count / max(rate, 1) * 3, 60))
        finally:
            proc.join(timeout=10)
    span = times[-1] - times[0]
    ordered = sorted(latencies)
    return {
        "rate": (len(times) - 1) / span if span > 0 else float("nan"),
        "p50": statistics.median(ordered),
        "p99": ordered[int(len(ordered) * 0.99) - 1],
        "max": ordered[-1],
        "n": len(times),
        "gc": pauses.summary(),
    }


async def through_publisher(
    url: str, seconds: float, names: tuple[str, ...], rest_url: str, ws_url: str
) -> dict[str, Any]:
    """The whole path with the real command: ``rxconnector sim`` (a process) ->
    ``rxconnector publish`` (a process) -> Redis -> RemoteConnector (this process).
    Latency = on_next wall clock minus ``received_at`` (the publisher's socket receive)."""
    from rxconnector.bus import RemoteConnector

    latencies: list[float] = []
    times: list[float] = []
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    pub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxconnector", "publish", "binance", "--feeds", "trades",
        "--symbols", ",".join(names), "--redis", url, "--rest-url", rest_url,
        "--ws-url", ws_url, "--status-every", "60",
        stdout=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        async with (
            RemoteConnector(url, venue="binance", block_ms=100) as remote,
            GcPauses() as pauses,
        ):

            def on_next(trade: Any) -> None:
                latencies.append(time.time() * 1000 - trade.received_at)
                times.append(time.perf_counter())

            for name in names:
                remote.trades(name).subscribe(on_next)
            await asyncio.sleep(3.0)  # publisher up and subscribed
            latencies.clear()
            times.clear()
            pauses.clear()
            await asyncio.sleep(seconds)
    finally:
        pub.send_signal(signal.SIGTERM)
        await pub.wait()
    return {**_summary(latencies, times), "gc": pauses.summary()}


def _summary(latencies: list[float], times: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    span = times[-1] - times[0]
    return {
        "rate": (len(times) - 1) / span,
        "p50": statistics.median(ordered),
        "p99": ordered[int(len(ordered) * 0.99) - 1],
        "max": ordered[-1],
        "n": len(times),
    }


async def local_trades(
    seconds: float, names: tuple[str, ...], rest_url: str, ws_url: str
) -> dict[str, float]:
    """The same simulator read by a local ``Connector.trades`` (the reference rate)."""
    import rxconnector as rxc

    latencies: list[float] = []
    times: list[float] = []
    config = rxc.Config.binance(rest_url=rest_url, ws_url=ws_url)
    async with rxc.Connector(config) as conn:

        def on_next(trade: Any) -> None:
            latencies.append(time.time() * 1000 - trade.received_at)
            times.append(time.perf_counter())

        for name in names:
            conn.trades(name).subscribe(on_next)
        await asyncio.sleep(3.0)
        latencies.clear()
        times.clear()
        await asyncio.sleep(seconds)
    return _summary(latencies, times)


def _cpu_ms(pid: int) -> tuple[float, float]:
    """(on a CPU, waiting for one) of all threads of ``pid`` so far, ms (schedstat)."""
    run = wait = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
            fields = stat.read().split()
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e6, wait / 1e6


async def split(
    url: str,
    seconds: float,
    names: tuple[str, ...],
    rest_url: str,
    ws_url: str,
    pids: dict[str, int],
) -> None:
    """Where the whole path's latency sits, per entry: received_at -> ts (publisher:
    parse, gapless, encode) -> entry id (Redis's clock at XADD: buffer wait, round trip,
    script) -> read here (a raw XREAD, no decode); and how long each process was ready
    to run but waited for a CPU."""
    from redis import asyncio as aioredis

    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    pub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxconnector", "publish", "binance", "--feeds", "trades",
        "--symbols", ",".join(names), "--redis", url, "--rest-url", rest_url,
        "--ws-url", ws_url, "--status-every", "60",
        stdout=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    client: Any = aioredis.Redis.from_url(url)
    client.set_response_callback("XREAD", lambda reply, **_options: reply)
    rows: list[tuple[float, float, float]] = []
    try:
        await asyncio.sleep(3.0)  # publisher up and subscribed
        keys: dict[str, Any] = {}
        for name in names:
            newest = await client.xrevrange(f"rxc:binance:trades:{name}", count=1)
            keys[f"rxc:binance:trades:{name}"] = newest[0][0] if newest else "0-0"
        procs = {**pids, "publisher": pub.pid, "reader": os.getpid()}
        before = {name: _cpu_ms(pid) for name, pid in procs.items()}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            reply = await client.xread(keys, count=500, block=100)
            now = time.time() * 1000
            pairs = reply.items() if isinstance(reply, dict) else reply or ()
            for stream, entries in pairs:
                for entry_id, flat in entries:
                    keys[stream.decode()] = entry_id
                    fields = dict(zip(flat[::2], flat[1::2], strict=True))
                    received = orjson.loads(fields[b"data"])["received_at"]
                    stamp, written = float(fields[b"ts"]), int(entry_id.split(b"-")[0])
                    rows.append((stamp - received, written - stamp, now - written))
        after = {name: _cpu_ms(pid) for name, pid in procs.items()}
    finally:
        pub.send_signal(signal.SIGTERM)
        await pub.wait()
        await client.aclose()
    print(f"whole path split ({len(names)} symbols, {len(rows) / seconds:,.0f} trades/s):")
    labels = ("received -> encoded", "encoded -> in Redis", "in Redis -> read")
    for index, label in enumerate(labels):
        ordered = sorted(row[index] for row in rows)
        print(
            f"  {label:20s} p50 {statistics.median(ordered):7.2f}  "
            f"p99 {ordered[int(len(ordered) * 0.99) - 1]:7.2f}  max {ordered[-1]:7.2f} ms"
        )
    for name in procs:
        run = (after[name][0] - before[name][0]) / seconds
        wait = (after[name][1] - before[name][1]) / seconds
        print(f"  {name:10s} on a CPU {run:4.0f} ms/s, ready but waiting for one {wait:4.0f} ms/s")


def stages(url: str, count: int = 20_000) -> None:
    """Microseconds per entry of each stage of the bus path, one after the other."""
    asyncio.run(_stages(url, count))


async def _stages(url: str, count: int) -> None:
    from redis import asyncio as aioredis
    from redis.asyncio.connection import Connection

    from rxconnector.bus.codec import decode_fields, encode_record, pack_batch
    from rxconnector.bus.fencing import ACQUIRE_OR_RENEW, FENCED_APPEND
    from rxconnector.bus.slots import BATCH
    from rxconnector.models import Trade

    def best(label: str, run: Any) -> Any:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - started)
        print(f"  {label:44s} {min(times) / count * 1e6:6.2f} us/entry (best of 3)")
        return result

    price, qty = Decimal("65000.10"), Decimal("0.00100000")
    trades = [Trade(SYMBOL, n, price, qty, "buy", 1, 1, 1.5) for n in range(1, count + 1)]
    print("per-stage cost:")
    records = best("writer: encode_record", lambda: [encode_record(t) for t in trades])
    chunks = [records[i : i + BATCH] for i in range(0, count, BATCH)]
    keys = [KEY + ":stages", KEY + ":stages:lease", KEY + ":stages:seq"]
    fixed = [*keys, "bench", 600_000, 1_000_000, "1", ""]
    packer = Connection()
    best(
        "writer: pack_batch + redis-py command packing",
        lambda: [
            packer.pack_command("EVALSHA", "0" * 40, 3, *fixed, pack_batch(r[0] for r in chunk))
            for chunk in chunks
        ],
    )
    client: Any = aioredis.Redis.from_url(url)
    try:
        await client.register_script(ACQUIRE_OR_RENEW)(keys=[keys[1]], args=["bench", 600_000])
        sha = await client.script_load(FENCED_APPEND)
        await client.config_resetstat()
        for chunk in chunks:
            await client.evalsha(sha, 3, *fixed, pack_batch(r[0] for r in chunk))
        script = (await client.info("commandstats"))["cmdstat_evalsha"]["usec"] / count
        print(f"  {'redis-server: FENCED_APPEND script':44s} {script:6.2f} us/entry")
        client.set_response_callback("XREAD", lambda reply, **_options: reply)

        async def read() -> list[Any]:
            got: list[Any] = []
            last: Any = "0-0"
            while len(got) < count:
                reply = await client.xread({keys[0]: last}, count=500)
                for _stream, entries in reply.items() if isinstance(reply, dict) else reply:
                    got.extend(entries)
                    last = entries[-1][0]
            return got

        started = time.perf_counter()
        entries = await read()
        elapsed = time.perf_counter() - started
        print(f"  {'reader: XREAD count=500, raw reply':44s} {elapsed / count * 1e6:6.2f} us/entry")
        best("reader: decode_fields", lambda: [decode_fields("k", f) for _id, f in entries])
    finally:
        await client.aclose()


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def start_simulator(
    names: tuple[str, ...], tick: float = 0.005
) -> tuple[subprocess.Popen[str], str, str]:
    """``rxconnector sim`` in its own process (its histories must not count as ours)."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "rxconnector", "sim", "--port", "0", "--symbols", ",".join(names),
         "--tick-interval", str(tick)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    urls: dict[str, str] = {}
    assert sim.stdout is not None
    while len(urls) < 2:
        line = sim.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        words = line.split()
        if words and words[0] == "try":  # "try rxconnector watch ... --rest-url U --ws-url W"
            urls["rest"] = words[words.index("--rest-url") + 1]
            urls["ws"] = words[words.index("--ws-url") + 1]
    return sim, urls["rest"], urls["ws"]


async def outage(seconds: float, names: tuple[str, ...], rest_url: str, ws_url: str) -> None:
    """Memory of an in-process Publisher (trades + 20-level books of ``names`` from the
    simulator) while redis-server is down for ``seconds``; then the recovery."""
    import rxconnector as rxc
    from rxconnector.bus import FeedTarget, Publisher

    port = free_port()
    folder = tempfile.mkdtemp(prefix="bench-bus-outage-")
    server = start_redis(port, folder)
    url = f"redis://127.0.0.1:{port}/0"
    config = rxc.Config.binance(rest_url=rest_url, ws_url=ws_url)
    targets = [FeedTarget("trades", n) for n in names]
    targets += [FeedTarget("order_book", n, (20,)) for n in names]
    publisher = Publisher(config, url, targets, report=lambda _e: None)
    try:
        async with publisher:
            await asyncio.sleep(5.0)
            before = _rss_mib()
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            peak_rss, peak_bytes, peak_entries = before, 0, 0
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                await asyncio.sleep(1.0)
                slots = publisher._slots
                entries = sum(len(slot.buffer) for slot in slots)
                held = sum(len(e[0]) + len(e[1]) for slot in slots for e in slot.buffer)
                peak_rss = max(peak_rss, _rss_mib())
                peak_bytes = max(peak_bytes, held)
                peak_entries = max(peak_entries, entries)
            suspended = sum(1 for slot in publisher._slots if slot.suspended)
            dropped = sum(slot.dropped for slot in publisher._slots)
            server = start_redis(port, folder)
            back = time.monotonic()
            for _ in range(600):
                if not any(slot.buffer or slot.suspended for slot in publisher._slots):
                    break
                await asyncio.sleep(0.1)
            drained = time.monotonic() - back
        print(
            f"{seconds:.0f}-s Redis outage, {len(targets)} streams ({len(names)} x trades + "
            f"20-level book): publisher RSS {before:.1f} MiB before, peak {peak_rss:.1f} MiB; "
            f"buffered peak {peak_entries:,} entries = {peak_bytes / 2**20:.1f} MiB of "
            f"entry bytes; {suspended} trade streams suspended (backfilled after), "
            f"{dropped:,} book entries dropped; drained {drained:.1f} s after Redis came back"
        )
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,10000,0", help="trades/s, 0 = max")
    parser.add_argument(
        "--publisher-seconds", type=float, default=10.0, help="simulator run (0 = skip)"
    )
    parser.add_argument("--symbols", type=int, default=20, help="simulated symbols")
    parser.add_argument("--outage", type=float, default=0.0, help="Redis outage seconds (0: skip)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per paced rate")
    parser.add_argument("--max-count", type=int, default=200_000, help="trades at max rate")
    parser.add_argument("--stages", action="store_true", help="per-stage us/entry first")
    parser.add_argument(
        "--split-seconds", type=float, default=0.0, help="whole path latency split (0 = skip)"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at start")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="bench-bus-")
    server = start_redis(port, folder)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        if args.stages:
            stages(url)
        first = 1
        if args.rates:
            print(f"{'offered':>10} {'delivered/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for text in filter(None, args.rates.split(",")):
            rate = float(text)
            count = args.max_count if rate == 0 else int(rate * args.seconds)
            result = asyncio.run(measure(url, rate, count, first))
            first += count
            offered = "max" if rate == 0 else f"{rate:,.0f}/s"
            print(
                f"{offered:>10} {result['rate']:>12,.0f} {result['p50']:>8.2f} "
                f"{result['p99']:>8.2f} {result['max']:>8.2f}   (n={result['n']:,.0f}; "
                f"{result['gc']})"
            )
        if args.publisher_seconds > 0:
            names = tuple(f"S{i}USDT" for i in range(args.symbols))
            sim, rest_url, ws_url = start_simulator(names, tick=0.002)
            try:
                result = asyncio.run(
                    through_publisher(url, args.publisher_seconds, names, rest_url, ws_url)
                )
                local = asyncio.run(local_trades(args.publisher_seconds, names, rest_url, ws_url))
            finally:
                sim.terminate()
                sim.wait()
            for label, figures in (
                ("simulator -> rxconnector publish -> Redis -> RemoteConnector", result),
                ("the same simulator read by a local Connector.trades", local),
            ):
                print(
                    f"{label} ({args.symbols} symbols): {figures['rate']:,.0f} trades/s, p50 "
                    f"{figures['p50']:.2f} ms, p99 {figures['p99']:.2f} ms, max "
                    f"{figures['max']:.2f} ms (n={figures['n']:,.0f})"
                    + (f"; {figures['gc']}" if "gc" in figures else "")
                )
        if args.split_seconds > 0:
            names = tuple(f"S{i}USDT" for i in range(args.symbols))
            sim, rest_url, ws_url = start_simulator(names, tick=0.002)
            try:
                pids = {"redis": server.pid, "simulator": sim.pid}
                asyncio.run(split(url, args.split_seconds, names, rest_url, ws_url, pids))
            finally:
                sim.terminate()
                sim.wait()
        if args.outage > 0:
            names = tuple(f"S{i}USDT" for i in range(4))
            sim, rest_url, ws_url = start_simulator(names)
            try:
                asyncio.run(outage(args.outage, names, rest_url, ws_url))
            finally:
                sim.terminate()
                sim.wait()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"consumer peak RSS {rss:.1f} MiB")
        print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
