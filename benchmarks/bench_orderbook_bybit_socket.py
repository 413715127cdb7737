"""A maintained Bybit order book through a real loopback socket: ``conn.order_book`` on
the typed wire path and on the dict path, against plain aiohttp + ``orjson.loads``.

Run::

    .venv/bin/python benchmarks/bench_orderbook_bybit_socket.py --frames 50000 --runs 5
    LOOP=uvloop .venv/bin/python benchmarks/bench_orderbook_bybit_socket.py ...  # clients on uvloop

A child process serves Bybit's public WebSocket on 127.0.0.1 (``/v5/public/spot``: it
acknowledges ``subscribe``/``unsubscribe`` as Bybit Spot does, answers pings, and on a
subscription to ``orderbook.50.BTCUSDT`` writes the whole stream as pre-framed
WebSocket text frames straight to the transport, so the server never limits the
client). The stream is simulator-shaped (``bench_decode_bybit_book.stream``: a 50-level
snapshot, then deltas of 5-20 changed levels per side, ``u`` + 1 each).

Clients, alternated run by run in fresh processes (median of ``--runs``):

* ``aiohttp``: plain ``aiohttp`` ``ws_connect`` + ``async for`` + ``orjson.loads`` of
  every frame (the baseline);
* ``typed`` / ``dict``: ``rxc.Connector`` (``Config.bybit("spot")``, clock sync off)
  ``order_book("BTCUSDT", 20)``, with ``wire_book.TYPED_IS_FASTER`` forced on or off;
  done when a book at the last ``u`` arrives (``order_book`` conflates for a slow
  subscriber, so not every frame is shown, but every frame is applied).

Rate = frames / (wall time from the first frame, or first book, to the last); CPU =
process CPU seconds over the same span, per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SYMBOL = "BTCUSDT"
TOPIC = f"orderbook.50.{SYMBOL}"
MODES = ("aiohttp", "dict", "typed")


def _frame(payload: bytes) -> bytes:
    """One unmasked server → client text frame (RFC 6455 §5.2), FIN set."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def serve(frames: int) -> None:
    """Child process: print ``PORT <n>``, then serve until stdin closes."""
    from aiohttp import web
    from bench_decode_bybit_book import stream

    payloads = stream((5, 20), frames - 1, depth=50)
    chunks = [
        b"".join(_frame(p) for p in payloads[i : i + 512]) for i in range(0, len(payloads), 512)
    ]

    async def push(transport: asyncio.Transport) -> None:
        for chunk in chunks:
            transport.write(chunk)
            while transport.get_write_buffer_size() > 1 << 20:
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
            op = req.get("op")
            if op == "ping":
                answer = {"success": True, "ret_msg": "pong", "conn_id": "b", "op": "ping"}
                await ws.send_str(orjson.dumps(answer).decode())
                continue
            ack = {
                "success": True,
                "ret_msg": op,
                "conn_id": "b",
                "req_id": req.get("req_id", ""),
                "op": op,
            }
            await ws.send_str(orjson.dumps(ack).decode())
            if op == "subscribe" and TOPIC in req.get("args", ()):
                await push(transport)
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v5/public/spot", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


async def client_aiohttp(port: int, frames: int) -> tuple[float, float]:
    import aiohttp

    loads = orjson.loads
    url = f"ws://127.0.0.1:{port}/v5/public/spot"
    subscribe = orjson.dumps({"req_id": "1", "op": "subscribe", "args": [TOPIC]}).decode()
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(subscribe)
        seen = 0
        start = cpu = 0.0
        async for msg in ws:
            message = loads(msg.data)
            if "topic" not in message:
                continue
            if seen == 0:
                start, cpu = time.perf_counter(), time.process_time()
            seen += 1
            if seen == frames:
                break
        return time.perf_counter() - start, time.process_time() - cpu


async def client_connector(port: int, frames: int, typed: bool) -> tuple[float, float]:
    import rxconnector as rxc
    from rxconnector.exchanges.bybit import wire_book

    wire_book.TYPED_IS_FASTER = typed
    last_u = 1_000_000 + frames - 1  # stream(): the snapshot's u is 1,000,000
    done = asyncio.get_running_loop().create_future()
    errors: list[Exception] = []
    marks: list[float] = []

    def on_book(book: Any) -> None:
        if not marks:
            marks.extend((time.perf_counter(), time.process_time()))
        if book.update_id == last_u and not done.done():
            done.set_result((time.perf_counter() - marks[0], time.process_time() - marks[1]))

    config = rxc.Config.bybit(
        "spot",
        rest_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        clock_sync={"enabled": False},
    )
    async with rxc.Connector(config) as conn:
        conn.errors.subscribe(errors.append)
        sub = conn.order_book(SYMBOL, 20).subscribe(on_book)
        try:
            result: tuple[float, float] = await asyncio.wait_for(done, 300)
        finally:
            sub.dispose()
    if errors:
        raise AssertionError(f"connector reported {errors[:3]}")
    return result


def _run_loop(coro: Any) -> Any:
    """``asyncio.run``, or ``uvloop.run`` with ``LOOP=uvloop`` (the clients only)."""
    if os.environ.get("LOOP") == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def client(mode: str, port: int, frames: int) -> None:
    if mode == "aiohttp":
        wall, cpu = _run_loop(client_aiohttp(port, frames))
    else:
        wall, cpu = _run_loop(client_connector(port, frames, mode == "typed"))
    print(json.dumps({"wall": wall, "cpu": cpu}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.client:
        client(args.client[0], int(args.client[1]), args.frames)
        return
    me = [sys.executable, __file__, "--frames", str(args.frames)]
    server = subprocess.Popen([*me, "--serve", str(args.frames)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    port = server.stdout.readline().split()[1]
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        for _ in range(args.runs):
            for mode in MODES:
                out = subprocess.run([*me, "--client", mode, port], capture_output=True,
                                     text=True, check=True)  # fmt: skip
                results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.stdin.close()
        server.wait(30)
    print(
        f"Bybit {TOPIC} -> order_book({20}) through a loopback socket, {args.frames:,} frames "
        f"(5-20 changed levels per side), median of {args.runs}, LOOP="
        f"{os.environ.get('LOOP', 'asyncio')}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    base = statistics.median(args.frames / r["wall"] for r in results["aiohttp"])
    for mode in MODES:
        rate = statistics.median(args.frames / r["wall"] for r in results[mode])
        cpu = statistics.median(r["cpu"] / args.frames * 1e6 for r in results[mode])
        print(
            f"  {mode:8s} {rate:>10,.0f} frames/s  {cpu:6.2f} CPU µs/frame  "
            f"{rate / base:5.2f}x of plain aiohttp + orjson"
        )


if __name__ == "__main__":
    main()
