"""In-process fake exchanges for AccountStreams in virtual time.

They replace one connection attempt (``AccountStreams(connect=exchange.connect)``), so
the real reconnect/backoff/watchdog machinery of ``transport.ws`` runs on a
``TestScheduler`` while these objects play the server: they check the login frames with
their own signature code, answer after ``latency`` virtual seconds, push events and
drop connections on demand.
"""

from __future__ import annotations

from typing import Any

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxconnector._scheduling import now_ms
from rxconnector.errors import ConnectError, WebSocketClosedError
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem

from .helpers import API_KEY, SECRET, binance_ws_payload, hmac_hex


class FakeConn:
    """One accepted connection as the fake server sees it."""

    def __init__(self, number: int, observer: abc.ObserverBase[WsItem], opened_at: float):
        self.number = number
        self.observer = observer
        self.opened_at = opened_at
        self.closed = False
        self.requests: list[dict[str, Any]] = []
        self.subscription_id: int | None = None
        self.authed = False
        self.topics: list[str] = []

    def __repr__(self) -> str:
        return f"<FakeConn #{self.number} closed={self.closed}>"


class _Link:
    """The client's ControlSender for one fake connection: frames go straight to the
    fake server (pacing is tested with the real transport)."""

    def __init__(self, exchange: _ScriptedExchange, conn: FakeConn) -> None:
        self._exchange = exchange
        self._conn = conn

    def send(self, build: Any, *, urgent: bool = False) -> None:
        text = build()
        if text is None or self._conn.closed:
            return
        self._exchange.frames.append(text)
        request = orjson.loads(text)
        self._conn.requests.append(request)
        self._exchange.on_request(self._conn, request)


class _ScriptedExchange:
    def __init__(self, scheduler: Any, *, secret: str = SECRET, latency: float = 0.01) -> None:
        self.scheduler = scheduler
        self.secret = secret
        self.latency = latency
        self.connections: list[FakeConn] = []
        self.specs: list[SocketSpec] = []
        self.attempt_times: list[float] = []
        self.frames: list[str] = []
        #: Connection attempts to refuse before accepting again.
        self.refuse = 0

    def now(self) -> float:
        return now_ms(self.scheduler)

    @property
    def live(self) -> FakeConn:
        open_ = [c for c in self.connections if not c.closed]
        assert open_, f"no open connection: {self.connections}"
        return open_[-1]

    def connect(self, spec: SocketSpec, _session: Any, _tasks: OwnedTasks) -> Observable[WsItem]:
        def subscribe(
            observer: abc.ObserverBase[WsItem], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.specs.append(spec)
            self.attempt_times.append(self.now() / 1000.0)
            if self.refuse > 0:
                self.refuse -= 1
                observer.on_error(ConnectError("connection refused"))
                return Disposable()
            conn = FakeConn(len(self.connections) + 1, observer, self.now())
            self.connections.append(conn)
            event = ConnectionEvent(ConnectionState.CONNECTED, spec.connection_id, spec.url, 0)
            observer.on_next(Connected(event, _Link(self, conn)))

            def close() -> None:
                conn.closed = True

            return Disposable(close)

        return Observable(subscribe)

    def on_request(self, conn: FakeConn, request: dict[str, Any]) -> None:
        raise NotImplementedError

    def later(self, conn: FakeConn, message: Any) -> None:
        """Send ``message`` to ``conn`` after the latency, if it is still open."""

        def deliver(_s: Any = None, _state: Any = None) -> None:
            self.deliver(conn, message)

        self.scheduler.schedule_relative(self.latency, deliver)

    def deliver(self, conn: FakeConn, message: Any) -> None:
        if not conn.closed:
            conn.observer.on_next((self.now(), orjson.dumps(message)))

    def drop(self) -> None:
        """The server closes the live connection."""
        conn = self.live
        conn.closed = True
        conn.observer.on_error(WebSocketClosedError("closed by the server (code 1001)", 1001))

    def subscribe_requests(self) -> list[dict[str, Any]]:
        raise NotImplementedError


class ScriptedBinance(_ScriptedExchange):
    """The Binance WebSocket API's user-data subscription."""

    def __init__(self, scheduler: Any, **kw: Any) -> None:
        super().__init__(scheduler, **kw)
        #: Error answers to give to the next subscribe requests, in order.
        self.rejections: list[tuple[int, int, str]] = []
        self._next_sid = 0

    def on_request(self, conn: FakeConn, request: dict[str, Any]) -> None:
        request_id = request.get("id")
        if request.get("method") == "ping":
            self.later(conn, {"id": request_id, "status": 200, "result": {}})
            return
        assert request.get("method") == "userDataStream.subscribe.signature", request
        params = request["params"]
        if params.get("apiKey") != API_KEY:
            answer = {"id": request_id, "status": 401, "error": {"code": -2015, "msg": "bad key"}}
        elif params.get("signature") != hmac_hex(self.secret, binance_ws_payload(params)):
            error = {"code": -1022, "msg": "Signature for this request is not valid."}
            answer = {"id": request_id, "status": 400, "error": error}
        elif self.rejections:
            status, code, msg = self.rejections.pop(0)
            answer = {"id": request_id, "status": status, "error": {"code": code, "msg": msg}}
        else:
            conn.subscription_id = self._next_sid
            self._next_sid += 1
            result = {"subscriptionId": conn.subscription_id}
            answer = {"id": request_id, "status": 200, "result": result}
        self.later(conn, answer)

    def subscribe_requests(self) -> list[dict[str, Any]]:
        return [r for c in self.connections for r in c.requests if r.get("method") != "ping"]

    def push(self, event: dict[str, Any]) -> None:
        """An account event on the live subscribed connection, now."""
        conn = self.live
        assert conn.subscription_id is not None, "not subscribed"
        self.deliver(conn, {"subscriptionId": conn.subscription_id, "event": event})

    def terminate(self) -> None:
        """The exchange ends the live subscription (the socket stays open)."""
        conn = self.live
        sid, conn.subscription_id = conn.subscription_id, None
        self.deliver(conn, {"subscriptionId": sid, "event": {"e": "eventStreamTerminated"}})


class ScriptedBybit(_ScriptedExchange):
    """Bybit's private endpoint: auth, subscribe, pushes."""

    def on_request(self, conn: FakeConn, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "auth":
            key, expires, signature = request["args"]
            ok = key == API_KEY and signature == hmac_hex(self.secret, f"GET/realtime{expires}")
            ok = ok and expires > self.now()
            conn.authed = ok
            answer: dict[str, Any] = {
                "success": ok,
                "ret_msg": "" if ok else "Request not authorized",
            }
            self.later(conn, {**answer, "op": "auth", "conn_id": f"c{conn.number}"})
        elif op == "subscribe":
            ok = conn.authed
            if ok:
                conn.topics = list(request["args"])
            answer = {"success": ok, "ret_msg": "" if ok else "not authorized", "op": "subscribe"}
            self.later(conn, answer)
        elif op == "ping":
            self.later(conn, {"op": "pong", "args": [str(int(self.now()))]})

    def subscribe_requests(self) -> list[dict[str, Any]]:
        return [r for c in self.connections for r in c.requests if r.get("op") == "subscribe"]

    def push(self, topic: str, data: list[dict[str, Any]]) -> None:
        conn = self.live
        assert conn.topics, "not subscribed"
        message = {"id": "x", "topic": topic, "creationTime": int(self.now()), "data": data}
        self.deliver(conn, message)
