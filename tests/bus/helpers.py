"""Running ``rxconnector publish`` as a real subprocess and checking what reached Redis."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from redis import asyncio as aioredis

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTCUSDT"
TRADES_KEY = f"rxc:binance:trades:{SYMBOL}"
BOOK_DEPTH = 10
BOOK_KEY = f"rxc:binance:order_book:{SYMBOL}:{BOOK_DEPTH}"


class PublishProcess:
    """``python -m rxconnector publish ...`` with its output collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process, holder: str) -> None:
        self.proc = proc
        self.holder = holder
        self.out: list[str] = []
        self.err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.ensure_future(self._pump(proc.stdout, self.out)),
            asyncio.ensure_future(self._pump(proc.stderr, self.err)),
        ]

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.out) + "\n--- stderr ---\n" + "".join(self.err)

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, sig)

    async def wait(self) -> int:
        """The exit status (a test that hangs here fails after 30 s)."""
        code = await asyncio.wait_for(self.proc.wait(), 30.0)
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.signal(signal.SIGKILL)
            await self.wait()


async def start_publisher(
    sim: ExchangeSimulator,
    redis_url: str,
    holder: str,
    *,
    feeds: str = "trades,order_book",
    lease_ms: int = 1500,
    extra: tuple[str, ...] = (),
) -> PublishProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxconnector", "publish", "binance",
        "--feeds", feeds, "--symbols", SYMBOL, "--redis", redis_url,
        "--rest-url", sim.rest_url, "--ws-url", sim.ws_url,
        "--depth", str(BOOK_DEPTH), "--lease-ms", str(lease_ms), "--holder", holder,
        "--status-every", "1", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    return PublishProcess(proc, holder)


async def until(predicate: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.02)


async def stream_trades(redis_url: str, key: str = TRADES_KEY) -> list[rxc.Trade]:
    """Every trade entry in the stream, oldest first (gap markers left out)."""
    from rxconnector.bus.codec import decode_entry

    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(key)
    finally:
        await client.aclose()
    trades = []
    for _id, fields in entries:
        item = decode_entry(key, fields)
        if isinstance(item, rxc.Trade):
            trades.append(item)
    return trades


async def lease_holder(redis_url: str, key: str = TRADES_KEY) -> str | None:
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        raw = await client.get(f"{key}:lease")
    finally:
        await client.aclose()
    return raw.decode() if raw is not None else None


async def heartbeats(redis_url: str) -> dict[str, Any]:
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        raw = await client.hgetall("rxc:binance:heartbeats")
    finally:
        await client.aclose()
    return {k.decode(): orjson.loads(v) for k, v in raw.items()}


def assert_tape(sim: ExchangeSimulator, trades: list[rxc.Trade]) -> None:
    """Consecutive entries of the simulator's tape: nothing missing, nothing twice, each
    equal (id, price, quantity, taker side) to the simulator's trade."""
    assert trades, "no trades"
    tape = {t.id: (t.price, t.qty, t.taker_side.lower()) for t in sim.trades(SYMBOL)}
    ids = [t.trade_id for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids))), _holes(ids)
    for trade in trades:
        assert (trade.price, trade.quantity, trade.side) == tape[trade.trade_id]


def _holes(ids: list[int]) -> str:
    found = [(a, b) for a, b in itertools.pairwise(ids) if b != a + 1]
    return f"{len(ids)} ids, breaks at {found[:10]}"


def assert_true_books(sim: ExchangeSimulator, books: list[rxc.OrderBook]) -> None:
    """Every remote book equals the simulator's true book at its update id."""
    assert books, "no books"
    for book in books:
        bids, asks = sim.book_at(book.symbol, book.update_id, BOOK_DEPTH)
        assert (list(book.bids), list(book.asks)) == (bids, asks), book.update_id


async def stream_last_seq(redis_url: str, key: str = TRADES_KEY) -> int | None:
    """The trade id of the stream's newest entry (None when empty or unreachable)."""
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        newest = await client.xrevrange(key, count=1)
    finally:
        await client.aclose()
    return int(newest[0][1][b"seq"]) if newest and newest[0][1].get(b"seq") else None


class PausableProxy:
    """A TCP proxy on 127.0.0.1 in front of redis-server that a test can pause (bytes
    stop flowing both ways, nothing is lost yet) and cut (every connection closed, what
    was held back thrown away): a consumer that certainly did not read what Redis has."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        for pair in list(self._pairs):
            self._close(pair)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _close(self, pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        self._pairs.discard(pair)
        for writer in pair:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    await self._flowing.wait()
                    if pair not in self._pairs:
                        return  # cut while held back: these bytes are lost
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                self._close(pair)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
