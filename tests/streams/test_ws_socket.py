"""The WebSocket source on real sockets (127.0.0.1): frames, pongs, pacing, faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from reactivex import Observable

try:
    from _fake_server import FakeBinanceServer
except ImportError:  # tests/streams turned into a package
    from ._fake_server import FakeBinanceServer  # type: ignore[no-redef]
from rxconnector.config import ConnectionConfig
from rxconnector.errors import (
    ConnectError,
    RateLimitError,
    TransportError,
    WebSocketClosedError,
)
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws import connect_once, websocket
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem


@pytest.fixture
async def server() -> AsyncIterator[FakeBinanceServer]:
    async with FakeBinanceServer() as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class Collector:
    """Observer that keeps items and the terminal error."""

    def __init__(self) -> None:
        self.items: list[WsItem] = []
        self.error: Exception | None = None

    def on_next(self, item: WsItem) -> None:
        self.items.append(item)

    def on_error(self, error: Exception) -> None:
        self.error = error

    @property
    def frames(self) -> list[tuple[float, Any]]:
        return [i for i in self.items if isinstance(i, tuple)]

    @property
    def link(self) -> Any:
        return next(i.link for i in self.items if isinstance(i, Connected))

    async def wait(self, predicate: Any, within: float = 3.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            assert time.monotonic() < deadline, (
                f"timed out; items={self.items} error={self.error!r}"
            )
            await asyncio.sleep(0.005)


def spec_for(url: str, **kw: Any) -> SocketSpec:
    return SocketSpec(url, "test#1", **{"max_messages": 5, "message_window": 1.2, **kw})


async def open_socket(source: Observable[WsItem], collector: Collector) -> Any:
    subscription = source.subscribe(collector.on_next, collector.on_error)
    await collector.wait(lambda: bool(collector.items) or collector.error is not None)
    return subscription


class TestConnectOnce:
    """One attempt: Connected, raw frames stamped with receive time, an error at the end."""

    async def test_emits_connected_then_stamped_raw_frames(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        sub = await open_socket(
            connect_once(spec_for(server.url + "/stream"), lambda: session, tasks), out
        )
        first = out.items[0]
        assert isinstance(first, Connected)
        assert first.event.state is ConnectionState.CONNECTED
        assert first.event.connection_id == "test#1"
        conn = server.connections[0]
        before = time.time() * 1000.0
        await server.send_raw(conn, '{"stream":"a@trade","data":{"p":"1.5"}}')
        await out.wait(lambda: bool(out.frames))
        received_at, data = out.frames[0]
        assert data == b'{"stream":"a@trade","data":{"p":"1.5"}}'  # raw bytes: no decode
        assert before - 1.0 <= received_at <= time.time() * 1000.0 + 1.0
        sub.dispose()
        await tasks.wait()
        await server.wait_until(lambda: conn.closed)
        assert out.error is None  # disposal is not an error

    async def test_a_server_close_is_an_error(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        await open_socket(
            connect_once(spec_for(server.url + "/stream"), lambda: session, tasks), out
        )
        await server.drop(server.connections[0], code=4000)
        await out.wait(lambda: out.error is not None)
        assert isinstance(out.error, WebSocketClosedError)
        assert out.error.close_code == 4000
        await tasks.wait()

    async def test_an_error_frame_is_an_error(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        await open_socket(
            connect_once(spec_for(server.url + "/stream"), lambda: session, tasks), out
        )
        with contextlib.suppress(ConnectionError):  # the client hangs up mid-frame
            await server.send_raw(server.connections[0], "x" * (4 * 1024 * 1024 + 1))
        await out.wait(lambda: out.error is not None)
        assert isinstance(out.error, WebSocketClosedError)
        assert "protocol error" in str(out.error)
        assert out.error.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await tasks.wait()

    async def test_pings_are_answered_with_their_payload(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        sub = await open_socket(
            connect_once(spec_for(server.url + "/stream"), lambda: session, tasks), out
        )
        conn = server.connections[0]
        await server.ping(conn, b"abc123")
        await server.ping(conn, b"")
        await server.wait_until(lambda: len(conn.pongs) == 2)
        assert conn.pongs == [b"abc123", b""]
        sub.dispose()
        await tasks.wait()

    async def test_the_link_liveness_moves_with_data_frames_and_pings(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        """``Connected.heard()`` (what the link watchdog compares) changes with every
        frame, data or protocol ping; for data it is that frame's own receive stamp."""
        tasks = OwnedTasks()
        out = Collector()
        sub = await open_socket(
            connect_once(spec_for(server.url + "/stream"), lambda: session, tasks), out
        )
        connected = out.items[0]
        assert isinstance(connected, Connected) and connected.heard is not None
        heard = connected.heard
        assert heard() == 0.0  # nothing received yet
        conn = server.connections[0]
        await server.send_raw(conn, '{"stream":"a@trade","data":{}}')
        await out.wait(lambda: bool(out.frames))
        assert heard() == out.frames[0][0]
        after_data = heard()
        await asyncio.sleep(0.002)  # the wall clock moves on before the ping
        await server.ping(conn, b"p")
        await server.wait_until(lambda: len(conn.pongs) == 1)
        assert heard() > after_data
        assert len(out.frames) == 1  # a ping is not a frame
        sub.dispose()
        await tasks.wait()

    async def test_writes_are_paced_by_the_window(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        spec = spec_for(server.url + "/stream", max_messages=2, message_window=0.3)
        sub = await open_socket(connect_once(spec, lambda: session, tasks), out)
        conn = server.connections[0]
        for n in range(5):
            out.link.send(lambda n=n: f'{{"method":"LIST_SUBSCRIPTIONS","id":{n}}}')
        await server.wait_until(lambda: len(conn.requests) == 5)
        times = conn.frame_times
        assert [r["id"] for r in conn.requests] == [0, 1, 2, 3, 4]
        assert times[2] - times[0] >= 0.29 and times[4] - times[2] >= 0.29
        sub.dispose()
        await tasks.wait()

    async def test_application_pings_are_sent_periodically(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        spec = spec_for(server.url + "/stream", ping_message='{"op":"ping"}', ping_interval=0.05)
        sub = await open_socket(connect_once(spec, lambda: session, tasks), out)
        conn = server.connections[0]
        await server.wait_until(lambda: len(conn.requests) >= 3)
        assert conn.requests[:3] == [{"op": "ping"}] * 3
        sub.dispose()
        await tasks.wait()

    async def test_handshake_refusals_are_translated(self, session: aiohttp.ClientSession) -> None:
        async with FakeBinanceServer(refuse_with=429) as limited:
            out = Collector()
            tasks = OwnedTasks()
            await open_socket(
                connect_once(spec_for(limited.url + "/stream"), lambda: session, tasks), out
            )
            await out.wait(lambda: out.error is not None)
            assert isinstance(out.error, RateLimitError)
            assert out.error.retry_after == 7.0 and out.error.status == 429
        async with FakeBinanceServer() as server:
            out = Collector()
            await open_socket(
                connect_once(spec_for(server.url + "/nope"), lambda: session, tasks), out
            )
            await out.wait(lambda: out.error is not None)
            assert isinstance(out.error, TransportError)
            assert isinstance(out.error.__cause__, aiohttp.WSServerHandshakeError)
        await tasks.wait()

    async def test_connection_refused_is_a_connect_error(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with FakeBinanceServer() as server:
            url = server.url
        out = Collector()  # the server is gone: nothing listens on that port any more
        tasks = OwnedTasks()
        await open_socket(connect_once(spec_for(url + "/stream"), lambda: session, tasks), out)
        await out.wait(lambda: out.error is not None)
        assert isinstance(out.error, ConnectError)
        await tasks.wait()


class TestFrameSink:
    """SocketSpec.frame_sink: frames skip the Observable, and stop at dispose as in band."""

    async def test_frames_go_to_the_sink_events_stay_in_band(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        got: list[tuple[float, Any]] = []
        spec = spec_for(server.url + "/stream", frame_sink=lambda at, data: got.append((at, data)))
        sub = await open_socket(connect_once(spec, lambda: session, tasks), out)
        assert isinstance(out.items[0], Connected)
        conn = server.connections[0]
        for n in range(20):
            await server.send_raw(conn, f'{{"n":{n}}}')
        await out.wait(lambda: len(got) == 20)
        assert [data for _, data in got] == [f'{{"n":{n}}}'.encode() for n in range(20)]
        assert all(isinstance(received_at, float) for received_at, _ in got)
        assert not out.frames  # nothing in band
        sub.dispose()
        await tasks.wait()
        assert out.error is None

    async def test_no_frame_reaches_the_sink_after_dispose(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        # The 20 frames arrive in one read; receive() hands out buffered frames without
        # suspending, so the cancelled task keeps reading them for a moment.
        tasks = OwnedTasks()
        out = Collector()
        got: list[tuple[float, Any]] = []
        subscription: list[Any] = []

        def sink(received_at: float, data: Any) -> None:
            got.append((received_at, data))
            subscription[0].dispose()

        spec = spec_for(server.url + "/stream", frame_sink=sink)
        subscription.append(await open_socket(connect_once(spec, lambda: session, tasks), out))
        conn = server.connections[0]
        for n in range(20):
            await server.send_raw(conn, f'{{"n":{n}}}')
        await out.wait(lambda: bool(got))
        await tasks.wait()
        assert [data for _, data in got] == [b'{"n":0}']
        assert out.error is None

    def test_a_sink_with_a_self_counting_watchdog_is_refused(self) -> None:
        spec = spec_for("ws://127.0.0.1:1/stream", frame_sink=lambda _at, _data: None)
        with pytest.raises(ValueError, match="data_count"):
            websocket(spec, lambda: None, ConnectionConfig(), tasks=OwnedTasks(), stale_after=5)  # type: ignore[arg-type,return-value]
        websocket(  # fine with a data_count, or without a watchdog
            spec,
            lambda: None,  # type: ignore[arg-type,return-value]
            ConnectionConfig(),
            tasks=OwnedTasks(),
            stale_after=5,
            data_count=lambda: 0,
        )
        websocket(spec, lambda: None, ConnectionConfig(), tasks=OwnedTasks())  # type: ignore[arg-type,return-value]


class TestReconnectingSource:
    """websocket(): the real source reconnects after a server close and reports it."""

    async def test_reconnects_after_a_drop(
        self, server: FakeBinanceServer, session: aiohttp.ClientSession
    ) -> None:
        tasks = OwnedTasks()
        out = Collector()
        config = ConnectionConfig(reconnect_delay=0.02, reconnect_jitter=0.0)
        source = websocket(spec_for(server.url + "/stream"), lambda: session, config, tasks=tasks)
        sub = source.subscribe(out.on_next, out.on_error)
        await server.wait_until(lambda: len(server.open_connections) == 1)
        await server.drop(server.connections[0])
        await server.wait_until(
            lambda: len(server.connections) == 2 and not server.connections[1].closed
        )
        await out.wait(lambda: sum(isinstance(i, Connected) for i in out.items) == 2)
        events = [
            i.event.state if isinstance(i, Connected) else i.state
            for i in out.items
            if isinstance(i, Connected | ConnectionEvent)
        ]
        assert events == [
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
            ConnectionState.RECONNECTING,
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
        ]
        sub.dispose()
        await tasks.wait()
        await server.wait_until(lambda: not server.open_connections)
        assert out.error is None and len(tasks) == 0


class SlowCloser:
    """A server that answers a client's close frame only after ``delay`` seconds and
    records the close code its own side ends with (1006 when the reply cannot be sent
    because the client dropped the connection without waiting for it)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.url = ""
        self.close_codes: list[int | None] = []
        self.client_codes: list[Any] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> SlowCloser:
        app = web.Application()
        app.router.add_get("/stream", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/stream"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoclose=False, autoping=False)
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await ws.send_str(msg.data)
            # the async iterator stops at the client's CLOSE frame
            self.client_codes.append(ws.close_code)
            await asyncio.sleep(self.delay)
            await ws.close()
        finally:
            self.close_codes.append(ws.close_code)
        return ws


class TestCleanClose:
    """Disposing a connected socket closes it with a full close handshake (code 1000 on
    both sides), bounded by the spec's close timeout."""

    @pytest.mark.parametrize("sink", [False, True])
    async def test_dispose_waits_for_the_servers_close_reply(
        self, session: aiohttp.ClientSession, sink: bool
    ) -> None:
        async with SlowCloser(delay=0.1) as server:
            tasks = OwnedTasks()
            out = Collector()
            got: list[Any] = []
            spec = spec_for(
                server.url, frame_sink=(lambda at, data: got.append(data)) if sink else None
            )
            sub = await open_socket(connect_once(spec, lambda: session, tasks), out)
            out.link.send(lambda: "hello")
            await out.wait(lambda: bool(got or out.frames))
            sub.dispose()
            await tasks.wait()
            assert server.client_codes == [aiohttp.WSCloseCode.OK]  # the client sent 1000
            assert server.close_codes == [aiohttp.WSCloseCode.OK]  # and took the reply
            assert out.error is None and len(tasks) == 0

    async def test_a_server_that_never_replies_is_cut_off_after_the_close_timeout(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with SlowCloser(delay=5.0) as server:
            tasks = OwnedTasks()
            out = Collector()
            spec = spec_for(server.url, close_timeout=0.2)
            sub = await open_socket(connect_once(spec, lambda: session, tasks), out)
            started = time.monotonic()
            sub.dispose()
            await tasks.wait()
            assert 0.15 <= time.monotonic() - started < 1.0
            assert out.error is None and len(tasks) == 0

    async def test_dispose_during_the_handshake_cancels_the_attempt(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with SlowCloser(delay=0.0) as server:
            tasks = OwnedTasks()
            out = Collector()
            sub = connect_once(spec_for(server.url), lambda: session, tasks).subscribe(
                out.on_next, out.on_error
            )
            sub.dispose()  # before the task even started
            await tasks.wait()
            assert out.items == [] and out.error is None
            assert server.close_codes == []
