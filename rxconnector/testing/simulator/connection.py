"""One server-side WebSocket: ordered sending, keepalive, and the per-connection limits.

Venue-agnostic. Each connection owns two tasks: a writer (one ordered queue for data,
control answers and pings, so an error answer is always delivered before the close
that follows it) and a keepalive (server pings, the pong deadline, the connection
lifetime). The handler coroutine that aiohttp runs for the request,
:meth:`SimConnection.serve`, runs the reader and performs every close once the reader
has stopped: aiohttp skips waiting for the client's close reply when ``close()`` runs
concurrently with ``receive()``, and a client would then see 1006 instead of the code
the simulator chose. The socket is
created with ``autoping=False`` so that PING and PONG frames reach the reader, are
counted against the message-rate limit like Binance counts them, and pongs can be
matched to the pings they answer.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import WSMsgType, web

from rxconnector.log import get_logger

__all__ = ["ConnectionPolicy", "Received", "SimConnection"]

_log = get_logger("rxconnector.testing.simulator")

#: WebSocket close codes used by the simulator (RFC 6455 §7.4.1).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008

_KINDS = {
    WSMsgType.TEXT: "text",
    WSMsgType.BINARY: "binary",
    WSMsgType.PING: "ping",
    WSMsgType.PONG: "pong",
}


@attrs.frozen(slots=True)
class Received:
    """One frame a client sent: loop time, kind (text/binary/ping/pong) and payload."""

    at: float
    kind: str
    data: str | bytes


@attrs.frozen
class ConnectionPolicy:
    """The limits one connection enforces (PROTOCOL.md §A1.1 for Binance Spot)."""

    ping_interval: float
    pong_timeout: float
    max_messages_per_second: int
    lifetime: float
    max_pending_frames: int
    close_timeout: float


def _text_frame(text: str | bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2), as a server sends it."""
    payload = text.encode() if isinstance(text, str) else text
    size = len(payload)
    if size < 126:
        return _HEADER_SHORT(0x81, size) + payload
    if size < 65536:
        return _HEADER_16(0x81, 126, size) + payload
    return _HEADER_64(0x81, 127, size) + payload


_HEADER_SHORT = struct.Struct("!BB").pack
_HEADER_16 = struct.Struct("!BBH").pack
_HEADER_64 = struct.Struct("!BBQ").pack


def _report(task: asyncio.Task[Any]) -> None:
    """Done-callback: a connection task must never die silently."""
    if not task.cancelled() and task.exception() is not None:
        _log.error(
            "simulator connection task failed", task=task.get_name(), exc_info=task.exception()
        )


class SimConnection:
    """Server side of one client WebSocket, with introspection for tests."""

    def __init__(
        self,
        conn_id: int,
        request: web.Request,
        ws: web.WebSocketResponse,
        policy: ConnectionPolicy,
        *,
        loop_time: Callable[[], float],
        server_time_ms: Callable[[], int],
    ) -> None:
        self.id = conn_id
        self.path = request.path
        self.query: dict[str, str] = dict(request.query)
        self._request = request
        self._ws = ws
        self._policy = policy
        self._loop_time = loop_time
        self._server_time_ms = server_time_ms
        self.connected_at = loop_time()
        #: Binance's ``combined`` property: wrap data as {"stream":..,"data":..}
        self.combined = False
        self._streams: dict[str, None] = {}  # insertion-ordered set
        #: every frame received (bounded), oldest first
        self.received: deque[Received] = deque(maxlen=100_000)
        self._window: deque[float] = deque()
        #: the most incoming frames seen within any 1-second window
        self.max_rate = 0
        self.frames_sent = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.pongs_matched = 0
        self._outstanding: dict[bytes, float] = {}  # ping payload -> sent at, oldest first
        self._last_ping_at = self.connected_at
        self.close_code: int | None = None
        self.close_reason = ""
        self._queue: deque[tuple[str, str | bytes, int]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()
        self._close_requested = asyncio.Event()
        self._close_request: tuple[int, str] = (CLOSE_NORMAL, "")
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<SimConnection id={self.id} path={self.path} streams={len(self._streams)}>"

    # -- introspection ----------------------------------------------------------------

    @property
    def streams(self) -> frozenset[str]:
        """The streams this connection is subscribed to."""
        return frozenset(self._streams)

    @property
    def stream_list(self) -> list[str]:
        """The streams in subscription order (what LIST_SUBSCRIPTIONS answers)."""
        return list(self._streams)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def closing(self) -> bool:
        return self._closing

    def messages(self, kind: str | None = None) -> list[Received]:
        """Frames received, optionally only one kind ("text", "binary", "ping", "pong")."""
        return [m for m in self.received if kind is None or m.kind == kind]

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- streams ----------------------------------------------------------------------

    def add_streams(self, names: list[str]) -> None:
        for name in names:
            self._streams[name] = None

    def remove_streams(self, names: list[str]) -> None:
        for name in names:
            self._streams.pop(name, None)

    # -- sending ----------------------------------------------------------------------

    def _enqueue(self, item: tuple[str, str | bytes, int]) -> None:
        if self._closing:
            return
        if len(self._queue) >= self._policy.max_pending_frames:
            self.close_now(CLOSE_POLICY_VIOLATION, "Slow consumer: too many pending frames")
            return
        self._queue.append(item)
        self._wake.set()

    def send_text(self, text: str | bytes) -> None:
        """Queue a text frame (dropped once the connection is closing); ``bytes`` must
        be UTF-8 (the market's frames are encoded once and shared by subscribers)."""
        self._enqueue(("text", text, 0))

    def send_binary(self, data: bytes) -> None:
        self._enqueue(("binary", data, 0))

    def send_ping(self, payload: bytes) -> None:
        self._outstanding[payload] = self._loop_time()
        self._last_ping_at = self._loop_time()
        self.pings_sent += 1
        self._enqueue(("ping", payload, 0))

    @property
    def response(self) -> web.WebSocketResponse:
        """The aiohttp response the request handler returns."""
        return self._ws

    @property
    def pending_frames(self) -> int:
        return len(self._queue)

    def close_after_pending(self, code: int, reason: str) -> None:
        """Close once everything already queued has been sent (e.g. an error answer)."""
        if self._closing:
            return
        self._queue.append(("close", reason, code))
        self._closing = True
        self._wake.set()

    def close_now(self, code: int, reason: str) -> None:
        """Close at once, discarding queued frames (limit violations)."""
        if self._closed.is_set():
            return
        self._queue.clear()
        self._closing = True
        self._request_close(code, reason)

    def _request_close(self, code: int, reason: str) -> None:
        if not self._close_requested.is_set():
            self._close_request = (code, reason)
            self._close_requested.set()

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake (the client sees 1006)."""
        self._closing = True
        if self.close_code is None:
            self.close_code, self.close_reason = 1006, "aborted by the simulator"
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def _writer(self) -> None:
        ws = self._ws
        queue = self._queue
        while True:
            while not queue:
                self._wake.clear()
                await self._wake.wait()
            if len(queue) > 1 and queue[0][0] == "text" and not ws.compress:
                if not await self._write_texts():
                    return
                continue
            kind, data, code = queue.popleft()
            try:
                if kind == "text":
                    await ws.send_str(data if isinstance(data, str) else data.decode())
                elif kind == "binary":
                    await ws.send_bytes(data)  # type: ignore[arg-type]
                elif kind == "ping":
                    await ws.ping(data)  # type: ignore[arg-type]
                elif kind == "pong":
                    await ws.pong(data)  # type: ignore[arg-type]
                else:
                    self._request_close(code, str(data))  # the reader closes
                    return
            except (ConnectionError, RuntimeError):
                return  # the socket went away under us; the reader will notice
            self.frames_sent += 1

    async def _write_texts(self) -> bool:
        """Write the run of text frames at the head of the queue with one socket write
        (False: the socket went away).

        A market tick queues a frame per trade; written one by one that is a ``send``
        system call each (measured: 14 % of the simulator's time at 10,000 trades/s).
        The bytes are the same frames aiohttp would write (server frames are unmasked;
        never used with permessage-deflate), and the wait while the socket's buffer is
        over its limit is aiohttp's own, so a client that stops reading still sees the
        queue grow to ``max_pending_frames``.
        """
        queue = self._queue
        frames: list[bytes] = []
        while queue and queue[0][0] == "text":
            frames.append(_text_frame(queue.popleft()[1]))
        transport = self._request.transport
        if self._ws.closed or transport is None or transport.is_closing():
            return False  # as send_str would fail: nothing after a close frame
        transport.write(b"".join(frames))
        self.frames_sent += len(frames)
        protocol = self._request.protocol
        if protocol.writing_paused:
            try:
                await protocol._drain_helper()  # what aiohttp's frame writer awaits
            except (ConnectionError, RuntimeError):
                return False
        return True

    # -- receiving --------------------------------------------------------------------

    def _note_incoming(self, kind: str, data: str | bytes) -> bool:
        """Record a frame; False (and close 1008) if it broke the message-rate limit."""
        now = self._loop_time()
        self.received.append(Received(now, kind, data))
        window = self._window
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        self.max_rate = max(self.max_rate, len(window))
        if len(window) > self._policy.max_messages_per_second:
            self.close_now(CLOSE_POLICY_VIOLATION, "Too many messages")
            return False
        return True

    def _on_pong(self, payload: bytes) -> None:
        self.pongs_received += 1
        if payload in self._outstanding:
            # a pong answers its ping and every older one
            for key in list(self._outstanding):
                del self._outstanding[key]
                if key == payload:
                    break
            self.pongs_matched += 1

    def _pong_due(self) -> float | None:
        """When the oldest unanswered ping times out, if any is outstanding."""
        if not self._outstanding:
            return None
        return next(iter(self._outstanding.values())) + self._policy.pong_timeout

    async def _keepalive(self) -> None:
        policy = self._policy
        end_of_life = self.connected_at + policy.lifetime
        while not self._closing:
            deadline = min(end_of_life, self._last_ping_at + policy.ping_interval)
            pong_due = self._pong_due()
            if pong_due is not None:
                deadline = min(deadline, pong_due)
            await asyncio.sleep(max(0.0, deadline - self._loop_time()))
            now = self._loop_time()
            pong_due = self._pong_due()
            if pong_due is not None and now >= pong_due:
                self.close_now(CLOSE_POLICY_VIOLATION, "Pong timeout")
                return
            if now >= end_of_life:
                self.close_after_pending(CLOSE_GOING_AWAY, "Connection lifetime exceeded")
                return
            if now >= self._last_ping_at + policy.ping_interval:
                self.send_ping(str(self._server_time_ms()).encode())

    def _start(self) -> None:
        for coro, name in ((self._writer(), "writer"), (self._keepalive(), "keepalive")):
            task = asyncio.get_running_loop().create_task(coro, name=f"sim-conn-{self.id}-{name}")
            task.add_done_callback(_report)
            self._tasks.append(task)

    async def serve(self, on_text: Callable[[SimConnection, str], None]) -> None:
        """Read frames until the socket closes or a close is requested, then close with
        a proper handshake and stop this connection's tasks.

        Two tasks: the reader stamps every frame and applies the rate limit the moment
        it is read, and hands text frames to the handler, which answers them in order.
        Why not one: a venue's gateway stamps frames on arrival. When the reader also
        answered, a burst that arrived together was stamped one answer apart (on a
        busy 2-core machine a subscribe answer took 0.2 s), and an on-time client was
        counted with more frames in one second than it sent.
        """
        self._start()
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[str | None] = asyncio.Queue()
        reader = loop.create_task(self._read(inbox), name=f"sim-conn-{self.id}-reader")
        handler = loop.create_task(self._handle(inbox, on_text), name=f"sim-conn-{self.id}-handler")
        close_wait = asyncio.ensure_future(self._close_requested.wait())
        try:
            await asyncio.wait({reader, handler, close_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                reader.cancel()  # aiohttp keeps unread frames queued on cancellation
                await asyncio.gather(reader, return_exceptions=True)
            elif not reader.cancelled():
                reader.result()
            inbox.put_nowait(None)  # answer what was read, then stop
            await handler  # a handler bug surfaces here
            if self._close_requested.is_set() and not self._ws.closed:
                await self._close_handshake()
        finally:
            close_wait.cancel()
            for task in (reader, handler):
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            await self._finish()

    async def _read(self, inbox: asyncio.Queue[str | None]) -> None:
        """Stamp each frame as soon as it is read; pings and pongs are answered here.

        Frames already buffered come back from ``receive()`` without a suspension, so
        a burst that arrived together is stamped together.
        """
        ws = self._ws
        while True:
            msg = await ws.receive()
            kind = _KINDS.get(msg.type)
            if kind is None:  # CLOSE, CLOSING, CLOSED, ERROR
                return
            data = msg.data if isinstance(msg.data, str) else bytes(msg.data)
            if not self._note_incoming(kind, data) or self._closing:
                continue
            if msg.type is WSMsgType.PING:
                self._enqueue(("pong", data, 0))
            elif msg.type is WSMsgType.PONG:
                self._on_pong(data)  # type: ignore[arg-type]
            elif msg.type is WSMsgType.TEXT:
                inbox.put_nowait(msg.data)

    async def _handle(
        self, inbox: asyncio.Queue[str | None], on_text: Callable[[SimConnection, str], None]
    ) -> None:
        """Answer text frames in the order they were read."""
        while (text := await inbox.get()) is not None:
            on_text(self, text)

    async def _close_handshake(self) -> None:
        code, reason = self._close_request
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        writer = self._tasks[0]
        writer.cancel()  # nothing more may be written after the close frame
        await asyncio.gather(writer, return_exceptions=True)
        try:
            # waits for the client's close reply (bounded by the socket's close timeout);
            # a client that reads nothing cannot block it past twice that
            async with asyncio.timeout(self._policy.close_timeout * 2):
                await self._ws.close(code=code, message=reason.encode())
        except TimeoutError:
            self.abort()

    async def _finish(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.close_code is None:
            self.close_code = self._ws.close_code
            self.close_reason = "closed by the client"
        self._closed.set()
