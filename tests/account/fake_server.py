"""A loopback aiohttp server speaking the two private protocols, for real-socket tests.

``/ws-api/v3``  Binance WebSocket API: ``userDataStream.subscribe.signature`` (HMAC
                checked with the known secret, timestamp checked against recvWindow),
                ``ping``; pushes ``{"subscriptionId", "event"}`` frames.
``/v5/private`` Bybit private: ``auth`` (HMAC of ``GET/realtime{expires}``, expiry in the
                future), ``subscribe`` (only after auth), ``ping`` → pong; pushes topics.

It records every frame it receives, so a test can check on the server side what the
client did (and that no secret was ever sent). REST answers come from the tests'
``ScriptedRest``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from .helpers import API_KEY, SECRET, binance_ws_payload, hmac_hex


def now_ms() -> int:
    return int(time.time() * 1000)


class ServerConn:
    """One client connection as the server sees it."""

    def __init__(self, number: int, path: str, ws: web.WebSocketResponse) -> None:
        self.number = number
        self.path = path
        self.ws = ws
        self.frames: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.subscription_id: int | None = None
        self.authed = False
        self.topics: list[str] = []
        self.pings = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"<ServerConn #{self.number} {self.path} closed={self.closed}>"


class FakePrivateServer:
    """``async with FakePrivateServer() as server``; ``server.url`` is ``ws://127.0.0.1:port``."""

    def __init__(self, *, secret: str = SECRET) -> None:
        self.secret = secret
        self.connections: list[ServerConn] = []
        self._next_sid = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakePrivateServer:
        app = web.Application()
        app.router.add_get("/ws-api/v3", self._handle)
        app.router.add_get("/v5/private", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{sockets[0].getsockname()[1]}"
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

    def subscribed(self) -> list[ServerConn]:
        return [c for c in self.open_connections if c.subscription_id is not None or c.topics]

    def all_frames(self) -> list[str]:
        return [f for c in self.connections for f in c.frames]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 3.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {within} s: {self.connections}")
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ actions

    async def push_binance(self, event: dict[str, Any]) -> int:
        """Send ``event`` to every subscribed Binance connection."""
        sent = 0
        for conn in self.subscribed():
            if conn.path == "/ws-api/v3":
                frame = {"subscriptionId": conn.subscription_id, "event": event}
                await conn.ws.send_str(orjson.dumps(frame).decode())
                sent += 1
        return sent

    async def push_bybit(self, topic: str, data: list[dict[str, Any]]) -> int:
        sent = 0
        message = {"id": "m", "topic": topic, "creationTime": now_ms(), "data": data}
        for conn in self.subscribed():
            if conn.path == "/v5/private" and topic in conn.topics:
                await conn.ws.send_str(orjson.dumps(message).decode())
                sent += 1
        return sent

    async def terminate(self, conn: ServerConn) -> None:
        """End ``conn``'s Binance subscription as the exchange does (socket stays)."""
        sid, conn.subscription_id = conn.subscription_id, None
        event = {"e": "eventStreamTerminated", "E": now_ms()}
        await conn.ws.send_str(orjson.dumps({"subscriptionId": sid, "event": event}).decode())

    async def drop(self, conn: ServerConn) -> None:
        conn.subscription_id = None
        conn.topics = []
        await conn.ws.close()

    # ------------------------------------------------------------------ protocol

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = ServerConn(len(self.connections) + 1, request.path, ws)
        self.connections.append(conn)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                conn.frames.append(msg.data)
                frame = orjson.loads(msg.data)
                conn.requests.append(frame)
                if conn.path == "/ws-api/v3":
                    answer = self._binance(conn, frame)
                else:
                    answer = self._bybit(conn, frame)
                if answer is not None:
                    await ws.send_str(orjson.dumps(answer).decode())
        finally:
            conn.closed = True
            conn.subscription_id = None
        return ws

    def _binance(self, conn: ServerConn, request: dict[str, Any]) -> dict[str, Any]:
        request_id = request.get("id")
        method = request.get("method")
        if method == "ping":
            conn.pings += 1
            return {"id": request_id, "status": 200, "result": {}}
        if method != "userDataStream.subscribe.signature":
            error = {"code": -1102, "msg": f"unknown method {method}"}
            return {"id": request_id, "status": 400, "error": error}
        params = request.get("params") or {}
        if params.get("apiKey") != API_KEY:
            error = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
            return {"id": request_id, "status": 401, "error": error}
        if params.get("signature") != hmac_hex(self.secret, binance_ws_payload(params)):
            error = {"code": -1022, "msg": "Signature for this request is not valid."}
            return {"id": request_id, "status": 400, "error": error}
        window = params.get("recvWindow", 5000)
        timestamp = params.get("timestamp", 0)
        server = now_ms()
        if not (timestamp < server + 1000 and server - timestamp <= window):
            error = {
                "code": -1021,
                "msg": "Timestamp for this request is outside of the recvWindow.",
            }
            return {"id": request_id, "status": 400, "error": error}
        conn.subscription_id = self._next_sid
        self._next_sid += 1
        return {"id": request_id, "status": 200, "result": {"subscriptionId": conn.subscription_id}}

    def _bybit(self, conn: ServerConn, request: dict[str, Any]) -> dict[str, Any] | None:
        op = request.get("op")
        conn_id = f"conn-{conn.number}"
        if op == "ping":
            conn.pings += 1
            return {
                "req_id": request.get("req_id"),
                "op": "pong",
                "args": [str(now_ms())],
                "conn_id": conn_id,
            }
        if op == "auth":
            key, expires, signature = request.get("args") or [None, 0, None]
            ok = (
                key == API_KEY
                and isinstance(expires, int)
                and expires > now_ms()
                and signature == hmac_hex(self.secret, f"GET/realtime{expires}")
            )
            conn.authed = ok
            reason = "" if ok else "Request not authorized"
            return {"success": ok, "ret_msg": reason, "op": "auth", "conn_id": conn_id}
        if op == "subscribe":
            if not conn.authed:
                return {"success": False, "ret_msg": "not authorized", "op": "subscribe"}
            conn.topics = list(request.get("args") or [])
            return {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": conn_id}
        return {"success": False, "ret_msg": f"unknown op {op}", "op": op}
