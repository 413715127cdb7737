"""A small loopback WebSocket server speaking enough Binance market-stream protocol.

It serves ``/stream`` (Spot) and ``/public/stream`` / ``/market/stream`` (USD-M) on
127.0.0.1, answers ``SUBSCRIBE``/``UNSUBSCRIBE`` like Binance (``{"result":null,"id":n}``
or ``{"code":..,"msg":..,"id":n}``), enforces the per-connection stream cap and - like
Binance - disconnects a client that sends more than ``max_messages`` frames (text, ping
and pong frames all count) within any ``window`` seconds. It records everything it
receives so tests can check the client's behaviour *on the server side*.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import orjson
from aiohttp import web


class ServerConn:
    """One client connection as the server sees it."""

    def __init__(self, number: int, path: str, ws: web.WebSocketResponse) -> None:
        self.number = number
        self.path = path
        self.ws = ws
        self.subscriptions: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.frame_times: list[float] = []  # monotonic receive time of every frame
        self.pongs: list[bytes] = []
        self.muted = False  # a stalled server: no data to this connection
        self.closed = False
        self.violation: str | None = None

    def __repr__(self) -> str:
        return f"<ServerConn #{self.number} {self.path} subs={len(self.subscriptions)}>"

    def max_frames_in(self, window: float = 1.0) -> int:
        """The most frames this client sent within any ``window`` seconds."""
        times = self.frame_times
        best = 0
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def methods(self) -> list[str]:
        return [str(r.get("method")) for r in self.requests]


class FakeBinanceServer:
    """Start with ``async with FakeBinanceServer() as server``; ``server.url`` is the base."""

    def __init__(
        self,
        *,
        max_streams: int = 1024,
        max_messages: int = 5,
        window: float = 1.0,
        reject: Iterable[str] = (),
        acknowledge: bool = True,
        refuse_with: int | None = None,
    ) -> None:
        self.max_streams = max_streams
        self.max_messages = max_messages
        self.window = window
        self.reject = set(reject)
        self.acknowledge = acknowledge
        self.refuse_with = refuse_with  # HTTP status for every handshake (429, 418 ...)
        self.refused = 0
        self.connections: list[ServerConn] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeBinanceServer:
        app = web.Application()
        for path in ("/stream", "/public/stream", "/market/stream"):
            app.router.add_get(path, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            if not conn.closed:
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ views

    @property
    def open_connections(self) -> list[ServerConn]:
        return [c for c in self.connections if not c.closed]

    def subscribers_of(self, topic: str) -> list[ServerConn]:
        return [c for c in self.open_connections if topic in c.subscriptions]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 3.0) -> None:
        """Poll ``predicate`` (real time, loopback) until it holds; fail after ``within`` s."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {within} s: {self.connections}")
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ actions

    async def publish(self, topic: str, data: Any) -> int:
        """Send ``data`` on ``topic`` to every connection subscribed to it."""
        frame = orjson.dumps({"stream": topic, "data": data}).decode()
        sent = 0
        for conn in self.subscribers_of(topic):
            if not conn.muted:
                await conn.ws.send_str(frame)
                sent += 1
        return sent

    async def send_raw(self, conn: ServerConn, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await conn.ws.send_bytes(frame)
        else:
            await conn.ws.send_str(frame)

    async def shutdown_notice(self, conn: ServerConn) -> None:
        notice = {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}}
        await conn.ws.send_str(orjson.dumps(notice).decode())

    async def drop(self, conn: ServerConn, code: int = aiohttp.WSCloseCode.GOING_AWAY) -> None:
        await conn.ws.close(code=code)

    async def ping(self, conn: ServerConn, payload: bytes) -> None:
        await conn.ws.ping(payload)

    # ------------------------------------------------------------------ protocol

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_with is not None:
            self.refused += 1
            return web.Response(status=self.refuse_with, headers={"Retry-After": "7"})
        ws = web.WebSocketResponse(autoping=False)  # see (and count) pings and pongs
        await ws.prepare(request)
        conn = ServerConn(len(self.connections) + 1, request.path, ws)
        self.connections.append(conn)
        try:
            async for msg in ws:
                conn.frame_times.append(time.monotonic())
                if conn.max_frames_in(self.window) > self.max_messages:
                    conn.violation = f"more than {self.max_messages} frames in {self.window} s"
                    await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION)
                    break
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await self._on_request(conn, msg.data)
                elif msg.type is aiohttp.WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is aiohttp.WSMsgType.PONG:
                    conn.pongs.append(msg.data)
        finally:
            conn.closed = True
        return ws

    async def _on_request(self, conn: ServerConn, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            await conn.ws.send_str('{"code":3,"msg":"Invalid JSON"}')
            return
        conn.requests.append(request)
        method, params, rid = request.get("method"), request.get("params", []), request.get("id")
        if method == "SUBSCRIBE":
            bad = [p for p in params if p in self.reject]
            if bad:
                reply = {"code": 2, "msg": f"Invalid request: bad stream {bad[0]}", "id": rid}
                await conn.ws.send_str(orjson.dumps(reply).decode())
                return
            if len(conn.subscriptions | set(params)) > self.max_streams:
                reply = {"code": 2, "msg": "too many streams", "id": rid}
                await conn.ws.send_str(orjson.dumps(reply).decode())
                return
            conn.subscriptions.update(params)
        elif method == "UNSUBSCRIBE":
            conn.subscriptions.difference_update(params)
        if self.acknowledge:
            await conn.ws.send_str(orjson.dumps({"result": None, "id": rid}).decode())
