"""Live-feed throughput: how many exchange frames per second reach a subscriber as models.

Run::

    .venv/bin/python benchmarks/bench_feeds.py                  # everything (~2-3 min)
    .venv/bin/python benchmarks/bench_feeds.py --frames 50000 --runs 3 --symbols 200
    .venv/bin/python benchmarks/bench_feeds.py --profile trades # cProfile of one run

No network: a loopback aiohttp WebSocket server on 127.0.0.1, in its own process,
speaks enough of Binance's combined-stream protocol for the hub (``/stream``, answers
``SUBSCRIBE``/``UNSUBSCRIBE`` with ``{"result":null,"id":n}``) and then pushes N
pre-encoded frames of each subscribed stream (``{"stream":"btcusdt@trade","data":{...}}``,
ids increasing by 1). The frames are pre-framed WebSocket bytes written straight to the
transport, so the server is never what limits the measurement: the client is.

Every measured run is a fresh client process (so peak RSS belongs to one
configuration); configurations are interleaved run by run and the median is reported.
A rate is ``(N - 1) / (time of the last message - time of the first)`` on the
subscriber's side: connecting and subscribing are not counted.

Configurations (the letters match RESULTS.md):

(a)  ``aiohttp``       plain aiohttp + orjson: ``ws_connect``, ``async for msg``,
                       ``orjson.loads`` -- the baseline.
(a') ``aiohttp-raw``   the same loop as the library reads: ``decode_text=False``,
                       ``await ws.receive()``.
     ``read-loop``     (in process only) the transport's read loop alone, over a fake
                       socket whose ``receive()`` returns ready messages: our loop's cost.
     ``ws-source``     :func:`rxconnector.transport.ws.websocket` (reconnecting source,
                       stale watchdog, paced writes) + ``orjson.loads`` in the subscriber.
     ``hub``           :class:`~rxconnector.streams.hub.SubscriptionHub` ``feed(topic)``:
                       decode + route + fan-out, raw payloads.
(c)  ``book-ticker``   ``conn.book_ticker("BTCUSDT")``: hub → parse → share, no continuity.
     ``trades-plain``  the connector's parsed trade feed *without* the gapless operator
                       (an internal layer, reached through ``Connector._public``).
(b)  ``trades``        ``conn.trades("BTCUSDT")``: hub → parse → gapless continuity → share,
                       the full product path; every id is checked to arrive once, in order.
(d)  peak RSS per configuration (``resource.getrusage``) and a tracemalloc peak from a
     separate, shorter run (tracemalloc slows everything down, so it is never timed).
(e)  ``symbols``       1,000 symbols x ``conn.ticker`` against the
                       :class:`~rxconnector.testing.ExchangeSimulator` (its own process):
                       time until the exchange acknowledged every stream, until every feed
                       delivered, memory, connections used and the most frames any
                       connection sent in one second (the simulator records it; Binance
                       allows 5).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRADE_STREAM = "btcusdt@trade"
BOOK_TICKER_STREAM = "btcusdt@bookTicker"
FIRST_ID = 1_000_001
#: Configurations in the order they run within each round.
MODES = (
    "aiohttp",
    "aiohttp-raw",
    "ws-source",
    "hub",
    "book-ticker",
    "trades-plain",
    "trades",
)
LABELS = {
    "aiohttp": "(a)  plain aiohttp + orjson (baseline)",
    "aiohttp-raw": "(a') aiohttp bytes + receive() + orjson",
    "ws-source": "     transport.ws.websocket (in band) + orjson",
    "hub": "     SubscriptionHub.feed (decode+route)",
    "book-ticker": "(c)  conn.book_ticker (no continuity)",
    "trades-plain": "     parsed trades, no gapless operator",
    "trades": "(b)  conn.trades (full product path)",
}


# =====================================================================================
# Frames
# =====================================================================================


def trade_payloads(n: int) -> list[bytes]:
    """``n`` combined-stream Binance ``trade`` events with ids ``FIRST_ID...``."""
    out = []
    base_time = 1_700_000_000_000
    for i in range(n):
        tid = FIRST_ID + i
        cents = 6_000_000 + (i * 7919) % 20_000
        data = {
            "e": "trade",
            "E": base_time + i,
            "s": "BTCUSDT",
            "t": tid,
            "p": f"{cents // 100}.{cents % 100:02d}000000",
            "q": f"0.{(i * 104729) % 100_000_000:08d}",
            "T": base_time + i,
            "m": bool(i & 1),
            "M": True,
        }
        out.append(orjson.dumps({"stream": TRADE_STREAM, "data": data}))
    return out


def book_ticker_payloads(n: int) -> list[bytes]:
    """``n`` combined-stream Spot ``bookTicker`` events (no ``E``), ``u`` increasing."""
    out = []
    for i in range(n):
        cents = 6_000_000 + (i * 7919) % 20_000
        data = {
            "u": 400_900_217 + i,
            "s": "BTCUSDT",
            "b": f"{cents // 100}.{cents % 100:02d}000000",
            "B": f"{1 + i % 9}.{(i * 31) % 100_000_000:08d}",
            "a": f"{(cents + 1) // 100}.{(cents + 1) % 100:02d}000000",
            "A": f"{1 + i % 7}.{(i * 17) % 100_000_000:08d}",
        }
        out.append(orjson.dumps({"stream": BOOK_TICKER_STREAM, "data": data}))
    return out


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked server→client text frame (RFC 6455 §5.2), FIN set."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def framed_chunks(payloads: list[bytes], per_chunk: int = 512) -> list[bytes]:
    """The payloads as WebSocket frames, joined ``per_chunk`` frames per write."""
    frames = [ws_text_frame(p) for p in payloads]
    return [b"".join(frames[i : i + per_chunk]) for i in range(0, len(frames), per_chunk)]


# =====================================================================================
# Loopback server (child process)
# =====================================================================================


def serve(frames: int) -> None:
    """Child process: print ``PORT <n>``, then serve until stdin closes."""
    from aiohttp import web

    blobs = {
        TRADE_STREAM: framed_chunks(trade_payloads(frames)),
        BOOK_TICKER_STREAM: framed_chunks(book_ticker_payloads(frames)),
    }

    async def push(transport: asyncio.Transport, chunks: list[bytes]) -> None:
        high = 1 << 20
        for chunk in chunks:
            transport.write(chunk)
            while transport.get_write_buffer_size() > high:
                if transport.is_closing():
                    return
                await asyncio.sleep(0.0005)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        async for msg in ws:
            try:
                req = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            method = req.get("method")
            await ws.send_str(orjson.dumps({"result": None, "id": req.get("id")}).decode())
            if method == "SUBSCRIBE":
                for stream in req.get("params", ()):
                    chunks = blobs.get(stream)
                    if chunks is not None:
                        await push(transport, chunks)
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/stream", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes it
        await runner.cleanup()

    asyncio.run(main())


# =====================================================================================
# Clients (one per process)
# =====================================================================================


class Meter:
    """Counts deliveries; stamps the first and the last; resolves ``done`` at ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first_wall = self.first_cpu = 0.0
        self.last_wall = self.last_cpu = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def tick(self) -> None:
        count = self.count = self.count + 1
        if count == 1:
            self.first_wall, self.first_cpu = time.perf_counter(), time.process_time()
        elif count == self.n:
            self.last_wall, self.last_cpu = time.perf_counter(), time.process_time()
            if not self.done.done():
                self.done.set_result(None)

    def fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)

    def result(self) -> dict[str, float]:
        wall = self.last_wall - self.first_wall
        cpu = self.last_cpu - self.first_cpu
        return {
            "count": self.count,
            "rate": (self.n - 1) / wall if wall > 0 else 0.0,
            "cpu_us": cpu / (self.n - 1) * 1e6,
            "wall_s": wall,
        }


def _subscribe_text(stream: str, request_id: int = 1) -> str:
    return orjson.dumps({"method": "SUBSCRIBE", "params": [stream], "id": request_id}).decode()


async def client_aiohttp(port: int, n: int, raw: bool) -> Meter:
    """(a) / (a'): the plain receive loop every aiohttp user writes."""
    import aiohttp

    loads = orjson.loads
    meter = Meter(n)
    tick = meter.tick
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{port}/stream", decode_text=not raw) as ws,
    ):
        await ws.send_str(_subscribe_text(TRADE_STREAM))
        ack = await ws.receive()
        assert loads(ack.data) == {"result": None, "id": 1}, ack
        count = 0
        if raw:
            receive = ws.receive
            while count < n:
                msg = await receive()
                loads(msg.data)
                count += 1
                tick()
        else:
            async for msg in ws:
                loads(msg.data)
                count += 1
                tick()
                if count == n:
                    break
    return meter


async def client_ws_source(port: int, n: int) -> Meter:
    """The library's reconnecting transport with a subscriber that decodes each frame."""
    import aiohttp

    from rxconnector.config import ConnectionConfig
    from rxconnector.models import ConnectionEvent
    from rxconnector.transport.tasks import OwnedTasks
    from rxconnector.transport.ws import websocket
    from rxconnector.transport.ws_types import Connected, SocketSpec

    loads = orjson.loads
    meter = Meter(n)
    tick = meter.tick
    tasks = OwnedTasks(meter.fail)
    spec = SocketSpec(f"ws://127.0.0.1:{port}/stream", "bench#1", 5, 1.2)
    text = _subscribe_text(TRADE_STREAM)
    async with aiohttp.ClientSession() as session:

        def on_next(item: Any) -> None:
            if type(item) is tuple:
                if b'"stream"' in item[1][:12]:  # skip the ack, not counted
                    loads(item[1])
                    tick()
            elif type(item) is Connected:
                item.link.send(lambda: text)
            elif not isinstance(item, ConnectionEvent):
                raise AssertionError(item)

        source = websocket(spec, lambda: session, ConnectionConfig(), tasks=tasks)
        sub = source.subscribe(on_next, meter.fail)
        try:
            await asyncio.wait_for(meter.done, 120)
        finally:
            sub.dispose()
            await tasks.wait()
    return meter


async def client_hub(port: int, n: int) -> Meter:
    """The subscription hub's topic feed: decode, route, fan out raw payloads."""
    import aiohttp

    from rxconnector.config import ConnectionConfig
    from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol
    from rxconnector.streams.hub import SubscriptionHub

    meter = Meter(n)
    tick = meter.tick
    errors: list[Exception] = []
    async with aiohttp.ClientSession() as session:
        hub = SubscriptionHub(
            BinanceSpotWsProtocol(),
            f"ws://127.0.0.1:{port}",
            lambda: session,
            ConnectionConfig(),
            report_error=errors.append,
            report_state=lambda _e: None,
        )

        def on_next(_message: Any) -> None:
            tick()

        sub = hub.feed(TRADE_STREAM).subscribe(on_next, meter.fail)
        try:
            await asyncio.wait_for(meter.done, 120)
        finally:
            sub.dispose()
            await hub.close()
    if errors:
        raise AssertionError(f"hub reported {errors[:3]}")
    return meter


async def client_connector(port: int, n: int, mode: str) -> Meter:
    """(b), (c) and the parsed trades without continuity, through ``rxc.Connector``."""
    import rxconnector as rxc
    from rxconnector.config import Config

    meter = Meter(n)
    tick = meter.tick
    errors: list[Exception] = []
    config = Config.binance(
        rest_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        clock_sync={"enabled": False},
    )
    async with rxc.Connector(config) as conn:
        conn.errors.subscribe(errors.append)
        expected = FIRST_ID
        on_next: Callable[[Any], None]
        feed: Any
        if mode == "book-ticker":
            feed = conn.book_ticker("BTCUSDT")

            def on_next(_model: Any) -> None:
                tick()

        else:
            feed = (
                conn.trades("BTCUSDT")
                if mode == "trades"
                else conn._public("trades", lambda f: f.trades("BTCUSDT"))
            )

            def on_next(trade: Any) -> None:
                nonlocal expected
                if trade.trade_id != expected:
                    raise AssertionError(f"trade {trade.trade_id}, expected {expected}")
                expected += 1
                tick()

        sub = feed.subscribe(on_next, meter.fail)
        try:
            await asyncio.wait_for(meter.done, 120)
        finally:
            sub.dispose()
    if errors:
        raise AssertionError(f"connector reported {errors[:3]}")
    return meter


async def run_client(mode: str, port: int, n: int) -> Meter:
    if mode in ("aiohttp", "aiohttp-raw"):
        return await client_aiohttp(port, n, raw=mode == "aiohttp-raw")
    if mode == "ws-source":
        return await client_ws_source(port, n)
    if mode == "hub":
        return await client_hub(port, n)
    return await client_connector(port, n, mode)


def client_main(mode: str, port: int, n: int, trace: bool, profile: str | None) -> None:
    """Child process: one measured run; prints one JSON line."""
    # Import everything first: tracemalloc should see the run, not the module imports
    # (and the plain-aiohttp baseline does not pay for importing the library).
    import aiohttp  # noqa: F401

    if not mode.startswith("aiohttp"):
        import rxconnector
        import rxconnector.streams.hub
        import rxconnector.transport.ws  # noqa: F401

    rss_before = peak_rss_kib()
    if trace:
        tracemalloc.start()
    gc.collect()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    meter = _run_loop(run_client(mode, port, n))
    if profiler is not None:
        profiler.disable()
    result: dict[str, Any] = meter.result()
    result["maxrss_kib"] = peak_rss_kib()
    result["rss_start_kib"] = rss_before
    if trace:
        _current, peak = tracemalloc.get_traced_memory()
        result["trace_peak_kib"] = peak / 1024
        tracemalloc.stop()
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    print(json.dumps(result))


# =====================================================================================
# In-process pipeline: the same stages with a fake socket, to see where the time goes
# =====================================================================================


def _fake_connect(
    frames: list[bytes],
    timings: list[tuple[float, float]],
    finished: asyncio.Event,
    read_loop: bool = False,
) -> Any:
    """A ``ConnectFn`` for the hub/transport: a socket that answers every request at
    once and, after a SUBSCRIBE, pushes ``frames`` synchronously as
    ``(received_at_ms, data)`` items -- exactly as ``_run_socket`` delivers them -- and
    records the CPU and wall time the push took (everything downstream runs inside it).
    ``read_loop``: the frames go through the transport's read loop instead
    (:func:`_through_read_loop`)."""
    from reactivex import Observable
    from reactivex.disposable import Disposable

    from rxconnector.models import ConnectionEvent, ConnectionState
    from rxconnector.transport import ws_types
    from rxconnector.transport.ws_types import Connected

    # A frame sink takes (received_at, data) as two arguments since FrameSink exists
    # (this file also runs against older trees, whose sink takes the tuple).
    two_argument_sink = hasattr(ws_types, "FrameSink")

    def connect(spec: Any, _session: Any, _tasks: Any) -> Observable[Any]:
        def subscribe(observer: Any, _scheduler: Any = None) -> Any:
            loop = asyncio.get_running_loop()
            alive = [True]

            def push(request: dict[str, Any]) -> None:
                if not alive[0]:
                    return
                ack = orjson.dumps({"result": None, "id": request["id"]})
                observer.on_next((time.time() * 1000.0, ack))
                if request["method"] != "SUBSCRIBE":
                    return
                if read_loop:
                    task = loop.create_task(_through_read_loop(spec, frames, timings, alive))
                    task.add_done_callback(lambda _task: finished.set())
                    return
                # as _run_socket: the spec's frame sink if any, and a liveness check
                sink = getattr(spec, "frame_sink", None)
                clock = time.time
                cpu, wall = time.process_time(), time.perf_counter()
                if sink is not None and two_argument_sink:
                    for frame in frames:
                        if alive[0]:
                            sink(clock() * 1000.0, frame)
                else:  # in band, or a tree whose sink takes the (received_at, data) tuple
                    deliver = sink or observer.on_next
                    for frame in frames:
                        if alive[0]:
                            deliver((clock() * 1000.0, frame))
                timings.append((time.process_time() - cpu, time.perf_counter() - wall))
                finished.set()

            class Link:
                def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
                    text = build()
                    if text is not None:
                        loop.call_soon(push, orjson.loads(text))

            event = ConnectionEvent(ConnectionState.CONNECTED, spec.connection_id, spec.url, 0.0)
            observer.on_next(Connected(event, Link()))

            def dispose() -> None:
                alive[0] = False

            return Disposable(dispose)

        return Observable(subscribe)

    return connect


async def _through_read_loop(
    spec: Any, frames: list[bytes], timings: list[tuple[float, float]], alive: list[bool]
) -> None:
    """``frames`` through the transport's read loop (``transport.ws._read_frames``:
    liveness, receive stamp, hand-off to ``spec.frame_sink``) from a fake socket whose
    ``receive()`` returns ready aiohttp messages (what aiohttp does for frames already
    buffered); records CPU and wall time. The socket reads only what aiohttp's own
    receive and frame parsing would add."""
    import aiohttp

    from rxconnector.errors import WebSocketClosedError
    from rxconnector.transport import ws as ws_module

    binary = aiohttp.WSMsgType.BINARY
    messages = [aiohttp.WSMessage(binary, frame, None) for frame in frames]
    messages.append(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))
    following = iter(messages).__next__

    class FakeSocket:
        close_code = 1000

        async def receive(self) -> Any:
            return following()

    class FakeLink:
        write_error = None

        def pong(self, _data: Any) -> None:
            raise AssertionError("no pings here")

    attempt = ws_module._Attempt()
    attempt.live = alive[0]
    cpu, wall = time.process_time(), time.perf_counter()
    with contextlib.suppress(WebSocketClosedError):  # the CLOSED message ends the loop
        await ws_module._read_frames(
            FakeSocket(),  # type: ignore[arg-type]
            FakeLink(),  # type: ignore[arg-type]
            spec,
            spec.frame_sink,
            attempt,
        )
    timings.append((time.process_time() - cpu, time.perf_counter() - wall))


async def _pipeline_once(mode: str, frames: list[bytes]) -> tuple[float, float]:
    """CPU and wall seconds for ``frames`` through configuration ``mode`` (fake socket)."""
    import functools

    import rxconnector.connector as connector_module
    from rxconnector.config import Config, ConnectionConfig
    from rxconnector.connector import Connector
    from rxconnector.models import ConnectionEvent
    from rxconnector.streams.hub import SubscriptionHub
    from rxconnector.transport.tasks import OwnedTasks
    from rxconnector.transport.ws import websocket
    from rxconnector.transport.ws_types import Connected, SocketSpec

    timings: list[tuple[float, float]] = []
    finished = asyncio.Event()
    connect = _fake_connect(frames, timings, finished, read_loop=mode == "trades-loop")
    count = 0
    loads = orjson.loads
    if mode == "frames-only":  # the frames were made; nothing else (instruction counts)
        return 0.0, 0.0
    if mode == "decode":
        cpu, wall = time.process_time(), time.perf_counter()
        clock = time.time
        for frame in frames:
            (clock() * 1000.0, loads(frame))
        return time.process_time() - cpu, time.perf_counter() - wall

    def counted(_item: Any) -> None:
        nonlocal count
        count += 1

    if mode == "read-loop":
        return await _read_loop_once(frames)

    if mode == "ws-source":
        tasks = OwnedTasks()
        spec = SocketSpec("ws://fake/stream", "fake#1", 5, 1.2)
        text = _subscribe_text(TRADE_STREAM)

        def on_next(item: Any) -> None:
            nonlocal count
            if type(item) is tuple:
                loads(item[1])
                count += 1
            elif type(item) is Connected:
                item.link.send(lambda: text)
            elif not isinstance(item, ConnectionEvent):
                raise AssertionError(item)

        def no_session() -> Any:  # the fake socket never asks for a session
            return None

        sub = websocket(
            spec, no_session, ConnectionConfig(), tasks=tasks, connect=connect
        ).subscribe(on_next)
        await finished.wait()
        sub.dispose()
        if count != len(frames) + 1:  # + the ack
            raise AssertionError(f"{count} of {len(frames)}")
        return timings[0]

    if mode in ("hub", "hub-raw"):
        errors: list[Exception] = []
        hub = SubscriptionHub(
            _protocol(),
            "ws://fake",
            lambda: None,  # type: ignore[arg-type,return-value]
            ConnectionConfig(),
            report_error=errors.append,
            report_state=lambda _e: None,
            connect=connect,
            # hub-raw: the trade topic takes raw frames, as conn.trades' topic does
            undecoded=(lambda _topic: True) if mode == "hub-raw" else None,
        )
        sub = hub.feed(TRADE_STREAM).subscribe(counted)
        await finished.wait()
        sub.dispose()
        await hub.close()
        if count != len(frames) or errors:
            raise AssertionError(f"{count} of {len(frames)}, {errors[:3]}")
        return timings[0]

    # The connector builds its hubs itself: hand it one with the fake socket.
    original = connector_module.SubscriptionHub  # type: ignore[attr-defined]
    connector_module.SubscriptionHub = functools.partial(SubscriptionHub, connect=connect)  # type: ignore[attr-defined,assignment]
    try:
        config = Config.binance(
            rest_url="http://fake", ws_url="ws://fake", clock_sync={"enabled": False}
        )
        async with Connector(config) as conn:
            errs: list[Exception] = []
            conn.errors.subscribe(errs.append)
            feed: Any
            if mode == "book-ticker":
                feed = conn.book_ticker("BTCUSDT")
            elif mode in ("trades", "trades-loop"):
                feed = conn.trades("BTCUSDT")
            else:
                feed = conn._public("trades", lambda f: f.trades("BTCUSDT"))
            sub = feed.subscribe(counted)
            await finished.wait()
            sub.dispose()
        if count != len(frames) or errs:
            raise AssertionError(f"{count} of {len(frames)}, {errs[:3]}")
        return timings[0]
    finally:
        connector_module.SubscriptionHub = original  # type: ignore[attr-defined]


async def _read_loop_once(frames: list[bytes]) -> tuple[float, float]:
    """The transport's read loop alone (``transport.ws._read_frames``: liveness, receive
    stamp, frame tuple, hand-off) over a fake socket whose ``receive()`` is a coroutine
    returning ready aiohttp messages - what aiohttp does for frames already buffered -
    into a sink that only counts. So: our loop's per-frame cost plus one awaited call."""
    import aiohttp

    from rxconnector.errors import WebSocketClosedError
    from rxconnector.transport import ws as ws_module
    from rxconnector.transport.ws_types import SocketSpec

    binary = aiohttp.WSMsgType.BINARY
    messages = [aiohttp.WSMessage(binary, frame, None) for frame in frames]
    messages.append(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))
    following = iter(messages).__next__

    class FakeSocket:
        close_code = 1000

        async def receive(self) -> Any:
            return following()

    class FakeLink:
        write_error = None

        def pong(self, _data: Any) -> None:
            raise AssertionError("no pings here")

    count = [0]

    def sink(*_frame: Any) -> None:  # (received_at, data), or the older trees' tuple
        count[0] += 1

    spec = SocketSpec("ws://fake/stream", "fake#1", 5, 1.2)
    cpu, wall = time.process_time(), time.perf_counter()
    with contextlib.suppress(WebSocketClosedError):  # the CLOSED message ends the loop
        await ws_module._read_frames(
            FakeSocket(),  # type: ignore[arg-type]
            FakeLink(),  # type: ignore[arg-type]
            spec,
            sink,
            ws_module._Attempt(),
        )
    timing = time.process_time() - cpu, time.perf_counter() - wall
    if count[0] != len(frames):
        raise AssertionError(f"{count[0]} of {len(frames)}")
    return timing


def _protocol() -> Any:
    from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol

    return BinanceSpotWsProtocol()


PIPELINE_MODES = (
    "decode",
    "read-loop",
    "ws-source",
    "hub",
    "hub-raw",
    "book-ticker",
    "trades-plain",
    "trades",
    "trades-loop",
)
PIPELINE_LABELS = {
    "decode": "orjson.loads + receive stamp (the floor)",
    "read-loop": "transport read loop alone (fake receive)",
    "ws-source": "transport.ws.websocket, frames in band",
    "hub": "hub: frame_sink, route, fan-out",
    "hub-raw": "hub: frame_sink, raw topic lookup, fan-out",
    "book-ticker": "(c) conn.book_ticker",
    "trades-plain": "parsed trades, no gapless operator",
    "trades": "(b) conn.trades",
    "trades-loop": "(b) conn.trades fed by the read loop",
    "frames-only": "nothing (frames made only)",
}


def bench_pipeline(frames: int, runs: int, modes: tuple[str, ...] = PIPELINE_MODES) -> list[str]:
    """Per-message CPU cost of each stage with a fake socket: best of ``runs``."""
    trades = trade_payloads(frames)
    tickers = book_ticker_payloads(frames)
    best: dict[str, float] = {}
    gc.collect()
    for _ in range(runs):
        for mode in modes:
            data = tickers if mode == "book-ticker" else trades
            cpu, _wall = _run_loop(_pipeline_once(mode, data))
            best[mode] = min(best.get(mode, cpu), cpu)
    lines = [
        f"{'stage (fake socket, best of ' + str(runs) + ')':44s} {'us/msg':>8s} {'msgs/s':>11s}"
    ]
    for mode in modes:
        per = best[mode] / frames
        lines.append(f"{PIPELINE_LABELS[mode]:44s} {per * 1e6:8.2f} {1 / per:>11,.0f}")
    return lines


# =====================================================================================
# (e) 1,000 symbols x ticker against the ExchangeSimulator
# =====================================================================================


def symbol_names(count: int) -> list[str]:
    return [f"S{i:04d}USDT" for i in range(count)]


def sim_main(symbols: int) -> None:
    """Child process: an ExchangeSimulator listing ``symbols`` symbols.

    Prints its URLs as JSON, then answers each stdin line ``report`` with the simulator's
    own view (connections, streams, the highest per-second frame rate of any
    connection) and stops at EOF.
    """
    from rxconnector.testing import ExchangeSimulator
    from rxconnector.testing.simulator.config import SimulatorConfig

    async def main() -> None:
        config = SimulatorConfig(symbols=symbol_names(symbols), tick_interval=1.0, periodic_ticks=1)
        async with ExchangeSimulator(config) as sim:
            print(json.dumps({"rest": sim.rest_url, "ws": sim.ws_url}), flush=True)
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                rates = sim.max_message_rates()
                methods = [
                    record.message.get("method")
                    for record in sim.control_log
                    if isinstance(record.message, dict)
                ]
                report = {
                    "subscribe_requests": methods.count("SUBSCRIBE"),
                    "unsubscribe_requests": methods.count("UNSUBSCRIBE"),
                    "open_connections": len(sim.connections),
                    "connections_total": sim.connection_count_total,
                    "active_streams": len(sim.active_streams()),
                    "max_rate": max(rates.values(), default=0),
                    "rates": rates,
                }
                print(json.dumps(report), flush=True)

    asyncio.run(main())


async def symbols_client(rest: str, ws: str, count: int, trace: bool) -> dict[str, Any]:
    """Subscribe ``count`` tickers on one connector; time acks and first messages."""
    import rxconnector as rxc
    from rxconnector.config import Config

    config = Config.binance(rest_url=rest, ws_url=ws, clock_sync={"enabled": False})
    names = symbol_names(count)
    topics = {f"{name.lower()}@ticker" for name in names}
    errors: list[Exception] = []
    async with rxc.Connector(config) as conn:
        conn.errors.subscribe(errors.append)
        await asyncio.sleep(0.2)
        gc.collect()
        rss_before = _rss_kib()
        if trace:
            tracemalloc.start()
        seen: set[str] = set()
        all_seen = asyncio.get_running_loop().create_future()
        received = 0

        def on_ticker(ticker: Any) -> None:
            nonlocal received
            received += 1
            seen.add(ticker.symbol)
            if len(seen) == count and not all_seen.done():
                all_seen.set_result(time.perf_counter())

        start = time.perf_counter()
        subs = [conn.ticker(name).subscribe(on_ticker, errors.append) for name in names]
        subscribed = time.perf_counter()
        hub = conn._hubs[""]  # internal: the hub's own view of what was acknowledged
        acked_at = 0.0
        while True:  # polls the hub's own view (no event to wait for)
            acked: set[str] = set()
            for info in hub.connections:
                acked |= info.acknowledged
            if acked >= topics:
                acked_at = time.perf_counter()
                break
            await asyncio.sleep(0.005)
        first_all = await asyncio.wait_for(all_seen, 30)
        connections = len(hub.connections)
        await asyncio.sleep(2.0)  # keep receiving for a while
        gc.collect()
        held_kib = _rss_kib() - rss_before
        trace_current = trace_peak = 0.0
        if trace:
            current, peak = tracemalloc.get_traced_memory()
            trace_current, trace_peak = current / 1024, peak / 1024
            tracemalloc.stop()
        unsub_start = time.perf_counter()
        for sub in subs:
            sub.dispose()
        while any(info.requested for info in hub.connections) or hub.pending_requests:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        unsubscribed = time.perf_counter()
    return {
        "subscribe_call_s": subscribed - start,
        "acked_s": acked_at - start,
        "all_delivered_s": first_all - start,
        "unsubscribe_s": unsubscribed - unsub_start,
        "connections": connections,
        "tickers_received": received,
        "rss_growth_kib": held_kib,
        "maxrss_kib": peak_rss_kib(),
        "trace_current_kib": trace_current,
        "trace_peak_kib": trace_peak,
        "errors": [repr(e) for e in errors[:5]],
    }


def peak_rss_kib() -> float:
    """This process's peak RSS.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` where it can be trusted, else ``VmHWM``: on
    Linux ``ru_maxrss`` survives ``exec``, so a child would inherit the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _rss_kib() -> float:
    """Current resident set size (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


# =====================================================================================
# Orchestration
# =====================================================================================


def _self(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def _child(args: list[str], timeout: float = 300) -> dict[str, Any]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[2:]} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def loopback_server(frames: int) -> Any:
    server = subprocess.Popen(
        _self("--serve", "--frames", str(frames)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def bench_throughput(
    frames: int, runs: int, modes: list[str], trace_frames: int, against: str | None = None
) -> list[str]:
    """Loopback-socket runs of each configuration, interleaved, medians.

    ``against``: another checkout's directory; its ``benchmarks/bench_feeds.py`` clients
    run interleaved with ours (same server), as rows marked ``[other]`` - a before/after
    comparison under the same machine load.
    """
    trees = [("", _self())]
    if against:
        trees.append(
            (" [other]", [sys.executable, str(Path(against) / "benchmarks" / "bench_feeds.py")])
        )
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    traces: dict[str, float] = {}
    with loopback_server(frames) as port:
        for n in range(runs):
            for mode in modes:
                for tag, command in trees:
                    args = ["--client", mode, "--port", str(port), "--frames", str(frames)]
                    result = _child([*command, *args])
                    if result["count"] != frames:
                        raise RuntimeError(f"{mode}: {result['count']} of {frames} delivered")
                    results.setdefault((mode, tag), []).append(result)
            print(f"  round {n + 1}/{runs} done", file=sys.stderr, flush=True)
    if trace_frames:
        with loopback_server(trace_frames) as port:
            for mode in modes:
                args = ["--client", mode, "--port", str(port), "--frames", str(trace_frames)]
                traces[mode] = _child(_self(*args, "--trace"))["trace_peak_kib"]
    base_rows = results[(modes[0], "")]
    base_rate = statistics.median(r["rate"] for r in base_rows)
    base_cpu = statistics.median(r["cpu_us"] for r in base_rows)
    base_best = min(r["cpu_us"] for r in base_rows)
    lines = [
        f"{'configuration':52s} {'msgs/s (median)':>16s} {'min..max':>19s} {'vs (a)':>7s} "
        f"{'CPU us/msg':>10s} {'CPU vs (a)':>10s} {'best CPU':>8s} {'best vs (a)':>11s} "
        f"{'peak RSS':>9s} {'tracemalloc':>11s}"
    ]
    for mode in modes:
        for tag, _command in trees:
            rows = results[(mode, tag)]
            rates = [r["rate"] for r in rows]
            rate = statistics.median(rates)
            cpu = statistics.median(r["cpu_us"] for r in rows)
            best = min(r["cpu_us"] for r in rows)
            rss = statistics.median(r["maxrss_kib"] for r in rows) / 1024
            trace = f"{traces[mode] / 1024:8.2f} MiB" if mode in traces and not tag else ""
            lines.append(
                f"{LABELS[mode] + tag:52s} {rate:>16,.0f} {min(rates):>9,.0f}..{max(rates):<9,.0f}"
                f" {rate / base_rate:>6.0%} {cpu:>10.2f} {base_cpu / cpu:>10.0%}"
                f" {best:>8.2f} {base_best / best:>11.0%}"
                f" {rss:>5.1f} MiB {trace:>11s}"
            )
    lines.append(
        "vs (a): median rate / median rate of (a); CPU vs (a): CPU per message of (a) / this "
        "one (= the throughput ratio when the client has a core to itself); best: the least "
        "CPU per message of any run (the least disturbed by other load)"
    )
    return lines


def bench_symbols(count: int, runs: int) -> list[str]:
    rows = []
    reports = []
    for n in range(runs + 1):  # the last run is the tracemalloc one (not timed)
        sim = subprocess.Popen(
            _self("--sim-serve", "--symbols", str(count)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sim.stdout is not None and sim.stdin is not None
            urls = json.loads(sim.stdout.readline())
            args = ["--symbols-client", "--symbols", str(count), "--rest", urls["rest"]]
            args += ["--ws", urls["ws"]]
            if n == runs:
                args.append("--trace")
            row = _child(_self(*args))
            sim.stdin.write("report\n")
            sim.stdin.flush()
            report = json.loads(sim.stdout.readline())
        finally:
            if sim.stdin is not None:
                sim.stdin.close()
            try:
                sim.wait(15)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
        if row["errors"]:
            raise RuntimeError(f"symbols run reported errors: {row['errors']}")
        rows.append(row)
        reports.append(report)
        print(f"  symbols run {n + 1}/{runs + 1} done", file=sys.stderr, flush=True)
    timed = rows[:runs]

    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in timed))

    acks = [r["acked_s"] for r in timed]
    worst = max(r["max_rate"] for r in reports)
    conns = sorted({r["connections_total"] for r in reports})
    return [
        f"symbols x ticker                       {count:,} (one Connector, {runs} timed runs)",
        f"subscribe() calls returned after       {med('subscribe_call_s') * 1000:8.1f} ms",
        f"all streams acknowledged after         {med('acked_s') * 1000:8.1f} ms (median; "
        f"{min(acks) * 1000:.0f}..{max(acks) * 1000:.0f})",
        f"every feed delivered a ticker after    {med('all_delivered_s') * 1000:8.1f} ms "
        "(simulator period 1 s)",
        f"all unsubscribed (acked) after         {med('unsubscribe_s') * 1000:8.1f} ms",
        f"WebSocket connections used             {conns} (simulator's count)",
        f"max frames/s any connection sent       {worst} (limit 5; simulator's record)",
        f"SUBSCRIBE / UNSUBSCRIBE requests       {reports[0]['subscribe_requests']} / "
        f"{reports[0]['unsubscribe_requests']} (first run)",
        f"RSS growth for the {count} feeds        {med('rss_growth_kib') / 1024:8.1f} MiB",
        f"tracemalloc (separate run): now {rows[-1]['trace_current_kib'] / 1024:.1f} MiB, "
        f"peak {rows[-1]['trace_peak_kib'] / 1024:.1f} MiB",
        f"peak RSS of the client process         {med('maxrss_kib') / 1024:8.1f} MiB",
    ]


def profile(mode: str, frames: int, top: int) -> None:
    path = "/tmp/bench_feeds.prof"
    with loopback_server(frames) as port:
        _child(
            _self("--client", mode, "--port", str(port), "--frames", str(frames), "--profile", path)
        )
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        stats.sort_stats(key).print_stats(top)
        print(f"== {mode}: top {top} by {key} ({frames:,} frames)")
        print(out.getvalue())


def _run_loop(coro: Any) -> Any:
    """``asyncio.run``, or ``uvloop.run`` with ``LOOP=uvloop`` in the environment (the
    benchmark's choice: the library itself never installs a loop or a policy)."""
    if os.environ.get("LOOP") == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--symbol-runs", type=int, default=3)
    parser.add_argument("--trace-frames", type=int, default=20_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--skip-symbols", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--only-pipeline", action="store_true")
    parser.add_argument(
        "--pipeline-modes",
        default=",".join(PIPELINE_MODES),
        help=f"in-process stages to run (default all: {','.join(PIPELINE_MODES)})",
    )
    parser.add_argument("--only-symbols", action="store_true")
    parser.add_argument("--profile", metavar="MODE", help="cProfile one run of MODE instead")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--against", metavar="DIR", help="also run DIR's clients, interleaved (before/after)"
    )
    # internal: child processes
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sim-serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--symbols-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rest", help=argparse.SUPPRESS)
    parser.add_argument("--ws", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.frames)
        return
    if args.client:
        client_main(args.client, args.port, args.frames, args.trace, args.profile)
        return
    if args.sim_serve:
        sim_main(args.symbols)
        return
    if args.symbols_client:
        print(json.dumps(asyncio.run(symbols_client(args.rest, args.ws, args.symbols, args.trace))))
        return
    if args.profile:
        profile(args.profile, args.frames, args.top)
        return

    import aiohttp
    import reactivex

    print(
        f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"orjson {orjson.__version__}, reactivex {reactivex.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    if not args.only_symbols and not args.skip_pipeline:
        print(f"\n== in-process pipeline: {args.frames:,} frames, fake socket, CPU time")
        stages = tuple(m for m in args.pipeline_modes.split(",") if m)
        if set(stages) - set(PIPELINE_LABELS):
            parser.error(f"unknown pipeline modes; known: {', '.join(PIPELINE_LABELS)}")
        print("\n".join(bench_pipeline(args.frames, args.runs, stages)))
    if args.only_pipeline:
        return
    if not args.only_symbols:
        modes = [m for m in args.modes.split(",") if m]
        unknown = set(modes) - set(MODES)
        if unknown:
            parser.error(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
        print(
            f"\n== throughput: {args.frames:,} frames per run, {args.runs} runs per "
            "configuration (interleaved), median; server in its own process"
        )
        table = bench_throughput(args.frames, args.runs, modes, args.trace_frames, args.against)
        print("\n".join(table))
    if not args.skip_symbols:
        print(f"\n== (e) {args.symbols:,} symbols x ticker against the ExchangeSimulator")
        print("\n".join(bench_symbols(args.symbols, args.symbol_runs)))


if __name__ == "__main__":
    main()
