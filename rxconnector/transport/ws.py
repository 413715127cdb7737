"""The reconnecting WebSocket source: one cold Observable per logical connection.

Subscribing opens an aiohttp WebSocket on the running loop in an owned task; disposing
cancels the task, which closes the socket. The source emits, in band:

* :class:`~rxconnector.models.ConnectionEvent` - connecting, reconnecting (attempt,
  delay, reason), stale, closed;
* :class:`Connected` - the socket is open: its CONNECTED event plus the
  :class:`ControlSender` to write control frames on *this* socket;
* frames - ``(received_at_ms, data)`` tuples, ``data`` as the raw ``bytes`` of a text
  frame (``decode_text=False``: orjson parses bytes, no UTF-8 decode in between) - unless
  :attr:`SocketSpec.frame_sink` is set: then frames go straight to that callable, as
  ``sink(received_at_ms, data)``, and only the events travel through the Observable (the
  hub does this: a frame would otherwise pass five Rx layers, about a tenth of the whole
  per-message cost).

It is built from three pieces so each can be tested on its own, the timing ones in
virtual time:

``connect_once``    one attempt: a real socket; a server close, an ERROR frame or a
                    failed handshake is an *error* (never a completion), so retry logic
                    sees every way a socket can end.
``stale_watchdog``  no data for ``stale_after`` seconds while topics that should be busy
                    are subscribed, or no frame at all (pings included) for
                    ``link_stale_after`` → emit STALE, then fail with
                    :class:`~rxconnector.errors.StaleConnectionError`
                    (:mod:`~rxconnector.transport.ws_watchdog`).
``websocket``       the two above behind the shared connection-attempt limiter and
                    :func:`rxconnector.operators.retry_with_backoff` with the tenacity
                    policy of :class:`~rxconnector.config.ConnectionConfig` (1 s → 60 s,
                    jittered, forever by default, reset after ``healthy_after``).

Writes are paced by :class:`~rxconnector.transport.ws_link.WsLink` (every frame we
send, pongs and pings included, passes one rolling-window limiter).

This module is the transport's public face: the vocabulary
(:mod:`~rxconnector.transport.ws_types`), the owned tasks
(:mod:`~rxconnector.transport.tasks`) and the watchdog
(:mod:`~rxconnector.transport.ws_watchdog`) live in their own modules; what a user of
the transport needs is listed in ``__all__`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any, TypeAlias

import aiohttp
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxconnector._scheduling import resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.errors import RateLimitError, WebSocketClosedError
from rxconnector.log import get_logger
from rxconnector.models import ConnectionState
from rxconnector.operators import RetryEvent, backoff_policy_from_config, retry_with_backoff
from rxconnector.rate.attempts import AttemptLimiter
from rxconnector.rate.pacing import scheduler_seconds
from rxconnector.transport.errors import translate_aiohttp_errors
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_link import WsLink
from rxconnector.transport.ws_types import (
    Connected,
    FrameSink,
    SessionFactory,
    SocketSpec,
    WsItem,
    describe_error,
    socket_event,
)
from rxconnector.transport.ws_watchdog import stale_watchdog

__all__ = ["ConnectFn", "connect_once", "websocket"]

_log = get_logger(component="ws")

#: Server 429/418 at the handshake without a Retry-After header: wait this long.
_DEFAULT_HANDSHAKE_RETRY_AFTER = 60.0


def _retry_after(headers: Any) -> float:
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else _DEFAULT_HANDSHAKE_RETRY_AFTER
    except ValueError:
        return _DEFAULT_HANDSHAKE_RETRY_AFTER


class _Attempt:
    """Whether the subscription of one attempt is still live, and its open socket.

    Disposing stops the socket task, but that lands only at the task's next real
    suspension, and ``ws.receive()`` returns buffered frames without suspending: frames
    read in between are dropped here (in band, the ``AutoDetachObserver`` would drop
    them; a frame sink has no such layer).
    """

    __slots__ = ("heard_at", "live", "ws")

    def __init__(self) -> None:
        self.live = True
        self.ws: aiohttp.ClientWebSocketResponse[Any] | None = None
        #: when the last frame of any kind arrived (pings included; epoch ms, the data
        #: frames' own receive stamp): the link's liveness. A stamp, not a counter: the
        #: read loop stores the time it computes anyway instead of counting (one store
        #: per frame, no read-add-write).
        self.heard_at = 0.0

    def heard(self) -> float:
        return self.heard_at


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _close_from_outside(
    ws: aiohttp.ClientWebSocketResponse[Any], reader: asyncio.Task[Any], limit: float
) -> None:
    """Close a disposed attempt's socket with a full close handshake.

    Cancelling the reader while it waits in ``ws.receive()`` would make aiohttp mark the
    socket abnormally closed (1006): it would then send its close frame and drop the
    connection without waiting for the server's reply, and the server, whose reply
    fails, records 1006 too. aiohttp lets another task call ``close()``: that wakes the
    reader (it ends by itself and finishes the handshake). The reader is cancelled only
    if the whole close takes longer than ``limit`` seconds.
    """
    try:
        async with asyncio.timeout(limit):
            await ws.close()
            await asyncio.wait({reader})
    except TimeoutError:
        _log.debug("close_handshake_timed_out", limit=limit)
    finally:
        reader.cancel()


async def _run_socket(
    spec: SocketSpec,
    session: SessionFactory,
    tasks: OwnedTasks,
    observer: abc.ObserverBase[WsItem],
    scheduler: abc.SchedulerBase,
    attempt: _Attempt,
) -> None:
    """One attempt's task: handshake, then read until the socket ends; however it ends
    (and unless the attempt was disposed), the observer gets the error."""
    try:
        with translate_aiohttp_errors(f"WebSocket {spec.public_url}"):
            ws = await _handshake(spec, session)
            attempt.ws = ws
            link = WsLink(ws, spec, scheduler, tasks)
            try:
                connected = socket_event(scheduler, spec, ConnectionState.CONNECTED)
                observer.on_next(Connected(connected, link, heard=attempt.heard))
                deliver = spec.frame_sink or _in_band(observer)
                await _read_frames(ws, link, spec, deliver, attempt)
            finally:
                link.close()
                await ws.close()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if attempt.live:  # after a dispose, the end of the socket is nobody's error
            observer.on_error(exc)


def _in_band(observer: abc.ObserverBase[WsItem]) -> FrameSink:
    """Frames for the source's own observer (no frame sink): ``(received_at, data)``."""
    on_next = observer.on_next

    def deliver(received_at: float, data: bytes | str) -> None:
        on_next((received_at, data))

    return deliver


async def _handshake(
    spec: SocketSpec, session: SessionFactory
) -> aiohttp.ClientWebSocketResponse[Any]:
    """Open the socket (no autoping, no heartbeat: pings and pongs go through the
    link's limiter); a 429/418 at the handshake becomes a :class:`RateLimitError`."""
    try:
        async with asyncio.timeout(spec.connect_timeout):
            return await session().ws_connect(
                spec.url,
                autoping=False,
                heartbeat=None,
                decode_text=False,
                max_msg_size=spec.max_frame_bytes,
                timeout=aiohttp.ClientWSTimeout(ws_close=spec.close_timeout),
            )
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (418, 429):
            raise RateLimitError(
                f"WebSocket {spec.public_url}: handshake refused with HTTP {exc.status}",
                retry_after=_retry_after(exc.headers),
                status=exc.status,
                banned=exc.status == 418,
            ) from exc
        raise


async def _read_frames(
    ws: aiohttp.ClientWebSocketResponse[Any],
    link: WsLink,
    spec: SocketSpec,
    deliver: FrameSink,
    attempt: _Attempt,
) -> None:
    """The read loop (the hot path: locals only): data frames go to
    ``deliver(received_at, data)``, pings are answered; anything else ends the socket.

    Per data frame: one clock read, one liveness check (the attempt may have been
    disposed while ``receive()`` returned buffered frames without suspending), one
    store of the stamp (the link's liveness, see :class:`_Attempt`), one call.
    """
    clock, receive = time.time, ws.receive
    text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
    ping, pong = aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG
    while True:
        msg = await receive()
        kind = msg.type
        if kind is text or kind is binary:
            if not attempt.live:
                return
            attempt.heard_at = now = clock() * 1000.0
            deliver(now, msg.data)
            continue
        attempt.heard_at = clock() * 1000.0
        if not attempt.live:
            return
        if kind is ping:
            link.pong(msg.data)
        elif kind is not pong:
            raise _socket_ended(ws, link, spec, msg)


def _socket_ended(
    ws: aiohttp.ClientWebSocketResponse[Any],
    link: WsLink,
    spec: SocketSpec,
    msg: aiohttp.WSMessage,
) -> Exception:
    """The error that ends the attempt for an ERROR or CLOSE/CLOSING/CLOSED message."""
    if msg.type is aiohttp.WSMsgType.ERROR:
        error = msg.data
        if _too_big(error):
            return _frame_too_big(spec, error)
        if isinstance(error, aiohttp.ClientError | TimeoutError):
            return error
        return WebSocketClosedError(
            f"WebSocket {spec.public_url}: protocol error ({describe_error(error)})",
            ws.close_code,
        )
    why = (
        f"write failed ({describe_error(link.write_error)})"
        if link.write_error is not None
        else f"closed by the server (code {ws.close_code})"
    )
    return WebSocketClosedError(f"WebSocket {spec.public_url}: {why}", ws.close_code)


def _too_big(error: object) -> bool:
    return (
        isinstance(error, aiohttp.WebSocketError)
        and error.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    )


def _frame_too_big(spec: SocketSpec, error: Exception) -> WebSocketClosedError:
    """The oversized-frame error, also handed to ``spec.report`` (reconnecting alone
    would leave the user guessing why a feed restarted)."""
    failure = WebSocketClosedError(
        f"WebSocket {spec.public_url}: protocol error: a frame larger than "
        f"connection.max_frame_bytes="
        f"{spec.max_frame_bytes} bytes arrived ({describe_error(error)}); the socket is "
        "closed (1009) and reconnected. Raise connection.max_frame_bytes if the venue "
        "really sends frames this large.",
        int(aiohttp.WSCloseCode.MESSAGE_TOO_BIG),
    )
    failure.__cause__ = error
    if spec.report is not None:
        try:
            spec.report(failure)
        except Exception:
            _log.exception("frame-size report failed", connection=spec.connection_id)
    return failure


def connect_once(
    spec: SocketSpec, session: SessionFactory, tasks: OwnedTasks
) -> Observable[WsItem]:
    """One connection attempt as a cold Observable (see the module docstring).

    Emits :class:`Connected` once the handshake succeeded, then frames (or hands them
    to ``spec.frame_sink``); it never completes: however the socket ends, it ends with
    an error. Disposing an open socket closes it with a close handshake (bounded by
    twice ``spec.close_timeout``) in an owned task; disposing during the handshake
    cancels the attempt. No frame is delivered after the dispose.
    """

    def subscribe(
        observer: abc.ObserverBase[WsItem], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        scheduler = resolve_scheduler(None, scheduler_)
        attempt = _Attempt()
        task = tasks.spawn(
            _run_socket(spec, session, tasks, observer, scheduler, attempt),
            name=f"rxconnector-ws:{spec.connection_id}",
        )

        def dispose() -> None:
            attempt.live = False
            if task.done():
                return
            ws = attempt.ws
            if ws is not None and _loop_running():
                tasks.spawn(
                    _close_from_outside(ws, task, 2.0 * spec.close_timeout),
                    name=f"rxconnector-ws-close:{spec.connection_id}",
                )
                return
            # still connecting (nothing to close cleanly), or no loop runs to close on;
            # RuntimeError: the loop is closed already, nothing is left to stop
            with contextlib.suppress(RuntimeError):
                task.cancel()

        return Disposable(dispose)

    return Observable(subscribe)


#: What :func:`websocket` calls for each attempt (tests pass a fake).
ConnectFn: TypeAlias = Callable[[SocketSpec, SessionFactory, OwnedTasks], Observable[WsItem]]


def websocket(
    spec: SocketSpec,
    session: SessionFactory,
    config: ConnectionConfig,
    *,
    tasks: OwnedTasks,
    attempt_limiter: AttemptLimiter | None = None,
    stale_after: float | None = None,
    data_count: Callable[[], int] | None = None,
    active: Callable[[], bool] | None = None,
    link_stale_after: float | None = None,
    connect: ConnectFn = connect_once,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[WsItem]:
    """The reconnecting source for one logical connection (cold).

    Each attempt books a slot in ``attempt_limiter`` (waiting on the scheduler if the
    venue's budget is spent), emits CONNECTING, then runs ``connect`` (guarded by
    ``stale_watchdog`` when ``stale_after`` is set). Whatever error ends an attempt -
    handshake failure, server close, ERROR frame, stall - is followed by RECONNECTING
    ``(attempt, delay, reason)`` and a new attempt after the backoff of ``config``:
    ``min(reconnect_delay * 2**(n-1), reconnect_max_delay)`` plus up to
    ``reconnect_jitter`` s, at least a rate-limit error's ``retry_after``, starting again
    at 1 s once an attempt lasted ``healthy_after`` s. Forever unless
    ``max_reconnect_attempts`` is set; then the last error is emitted after a CLOSED event.

    With ``spec.frame_sink`` set, ``stale_after`` needs ``data_count`` (the watchdog sees
    no frames then). ``link_stale_after``: see :mod:`~rxconnector.transport.ws_watchdog`.

    .. marble::
        :alt: websocket (backoff 1 s, 2 s)

        attempts: C-f-#  C-#   C-f-f...
        [ websocket ]
        (cC)-f-(r)-(cC)-(r)--(cC)-f-f...    c: CONNECTING, r: RECONNECTING
    """
    if spec.frame_sink is not None and stale_after is not None and data_count is None:
        raise ValueError(
            "a frame_sink takes the frames away from the stale watchdog: pass data_count"
        )
    watchdog: Callable[..., Callable[[Observable[WsItem]], Observable[WsItem]]] | None = None
    if stale_after is not None:
        watchdog = functools.partial(
            stale_watchdog, stale_after, spec, data_count=data_count, active=active
        )

    def subscribe(
        observer: abc.ObserverBase[WsItem], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sched = resolve_scheduler(scheduler, scheduler_)

        def attempt() -> Observable[WsItem]:
            inner = connect(spec, session, tasks)
            if watchdog is None:
                return inner
            return inner.pipe(watchdog(link_stale_after=link_stale_after, scheduler=sched))

        return _Reconnecting(observer, sched, spec, attempt_limiter, attempt).start(config)

    return Observable(subscribe)


class _Reconnecting:
    """One subscription of :func:`websocket`: the attempts so far, and the events it
    emits around each attempt (waiting for a slot, CONNECTING, RECONNECTING, CLOSED)."""

    def __init__(
        self,
        observer: abc.ObserverBase[WsItem],
        sched: abc.SchedulerBase,
        spec: SocketSpec,
        attempt_limiter: AttemptLimiter | None,
        attempt: Callable[[], Observable[WsItem]],
    ) -> None:
        self.observer = observer
        self.sched = sched
        self.spec = spec
        self.attempt_limiter = attempt_limiter
        self.attempt = attempt
        self.failures = 0

    def start(self, config: ConnectionConfig) -> abc.DisposableBase:
        """Run attempts behind the backoff policy of ``config``."""
        wait, stop = backoff_policy_from_config(config)
        retrying = Observable(self.one_attempt).pipe(
            retry_with_backoff(
                wait,
                stop,
                retry_if=_always,
                scheduler=self.sched,
                on_retry=self.on_retry,
                reset_after=config.healthy_after,
            )
        )
        return retrying.subscribe(
            self.observer.on_next, self.on_error, self.observer.on_completed, scheduler=self.sched
        )

    def one_attempt(
        self, obs: abc.ObserverBase[WsItem], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        """Book a connection-attempt slot (waiting for one if needed), then connect."""
        sched, spec, limiter = self.sched, self.spec, self.attempt_limiter
        wait = 0.0
        if limiter is not None:
            wait = limiter.reserve(scheduler_seconds(sched))
        if wait > 0.0:
            obs.on_next(
                socket_event(
                    sched,
                    spec,
                    ConnectionState.CONNECTING,
                    attempt=self.failures,
                    delay=wait,
                    reason=f"waiting for a connection-attempt slot ({limiter})",
                )
            )
        inner = self.attempt()
        current = SerialDisposable()

        def start(_s: abc.SchedulerBase | None = None, _state: Any = None) -> None:
            obs.on_next(
                socket_event(sched, spec, ConnectionState.CONNECTING, attempt=self.failures)
            )
            current.disposable = inner.subscribe(obs, scheduler=sched)

        if wait > 0.0:
            current.disposable = sched.schedule_relative(wait, start)
        else:
            start()
        return current

    def on_retry(self, event: RetryEvent) -> None:
        """An attempt failed and another follows after ``event.delay``: RECONNECTING."""
        self.failures = event.attempt
        self.observer.on_next(
            socket_event(
                self.sched,
                self.spec,
                ConnectionState.RECONNECTING,
                attempt=event.attempt,
                delay=event.delay,
                reason=describe_error(event.error),
            )
        )

    def on_error(self, error: Exception) -> None:
        """The attempts ran out: CLOSED, then the last error."""
        self.observer.on_next(
            socket_event(
                self.sched, self.spec, ConnectionState.CLOSED, reason=describe_error(error)
            )
        )
        self.observer.on_error(error)


def _always(_error: Exception) -> bool:
    return True
