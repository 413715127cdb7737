"""The reconnecting WebSocket source: one cold Observable per logical connection.

Subscribing opens an aiohttp WebSocket on the running loop in an owned task; disposing
cancels the task, which closes the socket. The source emits, in band:

* :class:`~rxconnector.models.ConnectionEvent` - connecting, reconnecting (attempt,
  delay, reason), stale, closed;
* :class:`Connected` - the socket is open: its CONNECTED event plus the
  :class:`ControlSender` to write control frames on *this* socket;
* frames - ``(received_at_ms, data)`` tuples, ``data`` as the raw ``bytes`` of a text
  frame (``decode_text=False``: orjson parses bytes, no UTF-8 decode in between) - unless
  :attr:`SocketSpec.frame_sink` is set: then frames go straight to that callable and only
  the events travel through the Observable (the hub does this: a frame would otherwise
  pass five Rx layers, about a tenth of the whole per-message cost).

It is built from three pieces so each can be tested on its own, the timing ones in
virtual time:

``connect_once``    one attempt: a real socket; a server close, an ERROR frame or a
                    failed handshake is an *error* (never a completion), so retry logic
                    sees every way a socket can end.
``stale_watchdog``  no data for ``stale_after`` seconds while topics that should be busy
                    are subscribed, or no frame at all (pings included) for
                    ``link_stale_after`` → emit STALE, then fail with
                    :class:`~rxconnector.errors.StaleConnectionError`.
``websocket``       the two above behind the shared connection-attempt limiter and
                    :func:`rxconnector.operators.retry_with_backoff` with the tenacity
                    policy of :class:`~rxconnector.config.ConnectionConfig` (1 s → 60 s,
                    jittered, forever by default, reset after ``healthy_after``).

Writes are paced: every frame we send on a socket - control messages, pongs and
application pings - passes one strict rolling-window :class:`~rxconnector.streams.pacing.Pacer`
(Binance counts pings and pongs in its 5 messages/s, PROTOCOL.md §A1.1). That is why
aiohttp's ``autoping`` and ``heartbeat`` are off: aiohttp would answer pings (and send
its own) behind the limiter's back. We answer each server ping ourselves with a pong
carrying the ping's payload, ahead of queued control messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeAlias

import aiohttp
import attrs
from reactivex import Observable, abc
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SerialDisposable,
    SingleAssignmentDisposable,
)

from rxconnector._scheduling import now_ms, resolve_scheduler
from rxconnector.config import ConnectionConfig
from rxconnector.errors import RateLimitError, StaleConnectionError, WebSocketClosedError
from rxconnector.log import get_logger
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.operators import RetryEvent, backoff_policy_from_config, retry_with_backoff
from rxconnector.rate.attempts import AttemptLimiter
from rxconnector.rate.pacing import Pacer, RollingWindow, scheduler_seconds
from rxconnector.transport.errors import translate_aiohttp_errors

__all__ = [
    "ConnectFn",
    "Connected",
    "ControlSender",
    "Frame",
    "OwnedTasks",
    "SessionFactory",
    "SocketSpec",
    "WsItem",
    "WsLink",
    "connect_once",
    "describe_error",
    "stale_watchdog",
    "websocket",
]

_log = get_logger(component="ws")

#: ``(received_at_ms, data)``: one data frame, stamped with the local epoch time (ms).
Frame: TypeAlias = tuple[float, bytes | str]
SessionFactory: TypeAlias = Callable[[], aiohttp.ClientSession]

#: Server 429/418 at the handshake without a Retry-After header: wait this long.
_DEFAULT_HANDSHAKE_RETRY_AFTER = 60.0
#: The stale watchdog looks this many times per ``stale_after`` period.
_STALE_CHECKS_PER_PERIOD = 4


class ControlSender(Protocol):
    """Writes control frames on one open socket, paced by its message limiter."""

    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        """Queue ``build``; it is called when the limiter grants a slot and returns the
        text frame to send then, or ``None`` to give the slot back unused."""
        ...


@attrs.frozen(eq=False)
class Connected:
    """A socket opened: report ``event``; write on this socket through ``link``.

    ``heard()`` counts every frame received on the socket so far - data, control
    messages, and protocol pings and pongs, which never travel as items - so the stale
    watchdog can tell a quiet but alive link from a dead one (``None``: not counted).
    """

    event: ConnectionEvent
    link: ControlSender
    heard: Callable[[], int] | None = None


#: What the source emits: a data frame, a state change, or an opened socket.
WsItem: TypeAlias = Frame | ConnectionEvent | Connected


@attrs.frozen
class SocketSpec:
    """What one socket needs: where to connect and the venue's write limits.

    ``max_messages`` frames per ``message_window`` seconds (pings and pongs included);
    ``ping_message`` every ``ping_interval`` s for venues that want application pings.
    """

    url: str
    connection_id: str
    max_messages: int
    message_window: float
    ping_message: str | None = None
    ping_interval: float | None = None
    connect_timeout: float = 10.0
    close_timeout: float = 2.0
    #: Largest frame accepted (``ConnectionConfig.max_frame_bytes``): aiohttp's
    #: ``max_msg_size``. A bigger frame closes the socket (1009); it is reported.
    max_frame_bytes: int = 4 * 1024 * 1024
    #: Receives non-fatal problems the socket itself notices (an oversized frame)
    #: before the attempt ends, so they reach ``Connector.errors``.
    report: Callable[[Exception], None] | None = attrs.field(default=None, eq=False, repr=False)
    #: Receives every data frame instead of the source's ``on_next`` (the hot path: no
    #: Rx layer per frame). Frames stop when the attempt is disposed, exactly as they
    #: would in band. A stale watchdog then cannot count frames itself: give
    #: :func:`websocket` a ``data_count``.
    frame_sink: Callable[[Frame], None] | None = attrs.field(default=None, eq=False, repr=False)
    #: What connection events, logs and error messages show instead of ``url``, when
    #: ``url`` carries a credential (Binance USD-M's ``?listenKey=``, which lets anyone
    #: read the account's stream); ``None``: ``url`` itself.
    shown_url: str | None = None

    @property
    def public_url(self) -> str:
        """The URL to show (``shown_url``, else ``url``)."""
        return self.shown_url if self.shown_url is not None else self.url


class OwnedTasks:
    """The tasks a component started; none dies silently, all can be awaited.

    Every task gets a done-callback that hands a failure to ``report`` (or logs it), so
    no "Task exception was never retrieved"; :meth:`wait` lets ``close()`` return only
    after every socket has really been closed.
    """

    def __init__(self, report: Callable[[Exception], None] | None = None) -> None:
        self._report = report
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start ``coro`` on the running loop as an owned task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def cancel_all(self) -> None:
        """Cancel every task still running."""
        for task in list(self._tasks):
            task.cancel()

    async def wait(self) -> None:
        """Return once every owned task has finished (cancelled ones included)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, Exception) and self._report is not None:
            try:
                self._report(exc)
                return
            except Exception:
                pass
        _log.error("task_failed", task=task.get_name(), error=repr(exc))


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` - the reason text of RECONNECTING events and markers."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _event(
    scheduler: abc.SchedulerBase, spec: SocketSpec, state: ConnectionState, **extra: Any
) -> ConnectionEvent:
    return ConnectionEvent(state, spec.connection_id, spec.public_url, now_ms(scheduler), **extra)


class WsLink:
    """The write side of one open socket: paced frames written in order by one task.

    The pacer decides *when* (on the scheduler); the writer task keeps the order of the
    asynchronous writes and tells the pacer when each frame really left, so a writer
    that lags on a busy loop cannot squeeze frames closer together than the venue allows
    (the pacer holds the next ones until it knows). Text frames are ``str``, pong
    payloads ``bytes``.
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse[Any],
        spec: SocketSpec,
        scheduler: abc.SchedulerBase,
        tasks: OwnedTasks,
    ) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._pacer: Pacer[str | bytes] = Pacer(
            RollingWindow(spec.max_messages, spec.message_window),
            self._queue.put_nowait,
            scheduler,
            confirm_writes=True,
        )
        self._scheduler = scheduler
        self.write_error: Exception | None = None
        self._writer = tasks.spawn(
            self._write(), name=f"rxconnector-ws-writer:{spec.connection_id}"
        )
        self._ping = SerialDisposable()
        ping, interval = spec.ping_message, spec.ping_interval
        if ping is not None and interval:

            def send_ping(_s: abc.SchedulerBase | None = None, _state: Any = None) -> None:
                self._pacer.submit(lambda: ping, urgent=True)
                self._ping.disposable = scheduler.schedule_relative(interval, send_ping)

            self._ping.disposable = scheduler.schedule_relative(interval, send_ping)

    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        """See :class:`ControlSender`."""
        self._pacer.submit(build, urgent=urgent)

    def pong(self, payload: bytes) -> None:
        """Answer a server ping with a pong carrying its payload, ahead of other frames."""
        self._pacer.submit(lambda: payload, urgent=True)

    @property
    def pending(self) -> int:
        """Frames waiting for the limiter or the writer."""
        return self._pacer.pending + self._queue.qsize()

    def close(self) -> None:
        """Stop writing: drop queued frames, stop pinging, cancel the writer."""
        self._pacer.dispose()
        self._ping.dispose()
        self._writer.cancel()

    async def _write(self) -> None:
        ws, queue, pacer, scheduler = self._ws, self._queue, self._pacer, self._scheduler
        try:
            while True:
                item = await queue.get()
                if isinstance(item, bytes):
                    await ws.pong(item)
                else:
                    await ws.send_str(item)
                # the limit counts frames when they leave, not when the pacer let them go
                pacer.written(scheduler_seconds(scheduler))
        except Exception as exc:
            # A failed write means a dead socket; close it so the reader notices now
            # (and reports why) instead of waiting for the stale watchdog.
            self.write_error = exc
            await ws.close()


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

    __slots__ = ("heard", "live", "ws")

    def __init__(self) -> None:
        self.live = True
        self.ws: aiohttp.ClientWebSocketResponse[Any] | None = None
        #: frames of any kind received (pings included): the link's liveness
        self.heard = 0

    def heard_count(self) -> int:
        return self.heard


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
    try:
        with translate_aiohttp_errors(f"WebSocket {spec.public_url}"):
            try:
                async with asyncio.timeout(spec.connect_timeout):
                    ws = await session().ws_connect(
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
            attempt.ws = ws
            link = WsLink(ws, spec, scheduler, tasks)
            try:
                connected = _event(scheduler, spec, ConnectionState.CONNECTED)
                observer.on_next(Connected(connected, link, heard=attempt.heard_count))
                deliver = spec.frame_sink or observer.on_next
                clock, receive = time.time, ws.receive
                text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
                while attempt.live:
                    msg = await receive()
                    attempt.heard += 1
                    kind = msg.type
                    if kind is text or kind is binary:
                        if attempt.live:
                            deliver((clock() * 1000.0, msg.data))
                    elif kind is aiohttp.WSMsgType.PING:
                        link.pong(msg.data)
                    elif kind is aiohttp.WSMsgType.PONG:
                        continue
                    elif kind is aiohttp.WSMsgType.ERROR:
                        error = msg.data
                        if _too_big(error):
                            raise _frame_too_big(spec, error)
                        if isinstance(error, aiohttp.ClientError | TimeoutError):
                            raise error
                        raise WebSocketClosedError(
                            f"WebSocket {spec.public_url}: "
                            f"protocol error ({describe_error(error)})",
                            ws.close_code,
                        )
                    else:  # CLOSE / CLOSING / CLOSED
                        why = (
                            f"write failed ({describe_error(link.write_error)})"
                            if link.write_error is not None
                            else f"closed by the server (code {ws.close_code})"
                        )
                        raise WebSocketClosedError(
                            f"WebSocket {spec.public_url}: {why}", ws.close_code
                        )
            finally:
                link.close()
                await ws.close()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if attempt.live:  # after a dispose, the end of the socket is nobody's error
            observer.on_error(exc)


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


def stale_watchdog(
    stale_after: float,
    spec: SocketSpec,
    *,
    data_count: Callable[[], int] | None = None,
    active: Callable[[], bool] | None = None,
    link_stale_after: float | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[WsItem]], Observable[WsItem]]:
    """Fail a connection that delivers no data for ``stale_after`` seconds.

    .. marble::
        :alt: stale_watchdog(4), checks every 1 s

        -C-f-f---------
        [ stale_watchdog(4) ]
        -C-f-f---(S,#)         S: STALE event, #: StaleConnectionError

    Watching starts at :class:`Connected`. ``data_count()`` is the number of data
    messages so far (default: frames seen here; the hub counts routed data only, so acks
    and application pongs cannot keep a dead feed "alive"); while ``active()`` is false
    (no topic subscribed, or only topics that may rightly stay silent for minutes, such
    as liquidations) data silence is normal and not measured.

    ``link_stale_after`` guards the link itself, whatever it carries: when
    :class:`Connected` brings a ``heard()`` count (every frame, protocol pings and pongs
    included) and it does not move for that long, the connection is dead too. So a
    connection with only quiet streams stays up as long as the server pings it (USD-M:
    every 3 minutes) or answers our pings (Bybit), and still fails when it goes silent.

    Checks run a quarter of the shorter threshold apart on the scheduler - no timer per
    message - so a stall is detected between ``stale_after`` and ``1.25 * stale_after``
    after the last data (likewise for the link).
    """
    shortest = min(stale_after, link_stale_after or stale_after)
    period = shortest / _STALE_CHECKS_PER_PERIOD

    def _operator(source: Observable[WsItem]) -> Observable[WsItem]:
        def subscribe(
            observer: abc.ObserverBase[WsItem], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(scheduler, scheduler_)
            upstream = SingleAssignmentDisposable()
            timer = SerialDisposable()
            seen = 0
            count: Callable[[], int] = data_count if data_count is not None else (lambda: seen)
            is_active: Callable[[], bool] = active if active is not None else (lambda: True)
            last_count = 0
            quiet_since = 0.0
            heard: Callable[[], int] | None = None
            last_heard = 0
            unheard_since = 0.0
            watching = False

            def stale(message: str, threshold: float) -> None:
                upstream.dispose()
                observer.on_next(_event(sched, spec, ConnectionState.STALE, reason=message))
                observer.on_error(
                    StaleConnectionError(f"WebSocket {spec.public_url}: {message}", threshold)
                )

            def check(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
                nonlocal last_count, quiet_since, last_heard, unheard_since
                now = scheduler_seconds(sched)
                current = count()
                if current != last_count or not is_active():
                    last_count, quiet_since = current, now
                elif now - quiet_since >= stale_after - 1e-9:
                    stale(f"no data for {stale_after:g} s", stale_after)
                    return
                if heard is not None and link_stale_after is not None:
                    frames = heard()
                    if frames != last_heard:
                        last_heard, unheard_since = frames, now
                    elif now - unheard_since >= link_stale_after - 1e-9:
                        stale(
                            f"nothing received, not even a ping, for {link_stale_after:g} s",
                            link_stale_after,
                        )
                        return
                timer.disposable = sched.schedule_relative(period, check)

            def on_next(item: WsItem) -> None:
                nonlocal seen, watching, last_count, quiet_since, heard, last_heard
                nonlocal unheard_since
                if type(item) is tuple:
                    seen += 1
                elif type(item) is Connected and not watching:
                    watching = True
                    last_count, quiet_since = count(), scheduler_seconds(sched)
                    heard = item.heard
                    last_heard, unheard_since = (heard() if heard else 0), quiet_since
                    timer.disposable = sched.schedule_relative(period, check)
                observer.on_next(item)

            upstream.disposable = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=sched
            )
            return CompositeDisposable(upstream, timer)

        return Observable(subscribe)

    return _operator


def _always(_error: Exception) -> bool:
    return True


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

    Each attempt first books a slot in ``attempt_limiter`` (waiting on the scheduler if
    the venue's budget is spent), emits CONNECTING, then runs ``connect`` (guarded by
    :func:`stale_watchdog` when ``stale_after`` is set). Whatever error ends an attempt -
    handshake failure, server close, ERROR frame, stall - is followed by RECONNECTING
    ``(attempt, delay, reason)`` and a new attempt after the backoff of ``config``:
    ``min(reconnect_delay * 2**(n-1), reconnect_max_delay)`` plus up to
    ``reconnect_jitter`` s, at least a rate-limit error's ``retry_after``, starting again
    at 1 s once an attempt lasted ``healthy_after`` s. Forever unless
    ``max_reconnect_attempts`` is set; then the last error is emitted after a CLOSED event.

    With ``spec.frame_sink`` set, frames bypass this Observable; ``stale_after`` then
    needs ``data_count`` (the watchdog would see no frames and call every socket stale).
    ``link_stale_after`` also fails an attempt that receives no frame at all, pings
    included, for that long (see :func:`stale_watchdog`).

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

    def subscribe(
        observer: abc.ObserverBase[WsItem], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sched = resolve_scheduler(scheduler, scheduler_)
        failures = 0

        def one_attempt(
            obs: abc.ObserverBase[WsItem], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            wait = 0.0
            if attempt_limiter is not None:
                wait = attempt_limiter.reserve(scheduler_seconds(sched))
            if wait > 0.0:
                obs.on_next(
                    _event(
                        sched,
                        spec,
                        ConnectionState.CONNECTING,
                        attempt=failures,
                        delay=wait,
                        reason=f"waiting for a connection-attempt slot ({attempt_limiter})",
                    )
                )
            inner = connect(spec, session, tasks)
            if stale_after is not None:
                inner = inner.pipe(
                    stale_watchdog(
                        stale_after,
                        spec,
                        data_count=data_count,
                        active=active,
                        link_stale_after=link_stale_after,
                        scheduler=sched,
                    )
                )
            current = SerialDisposable()

            def start(_s: abc.SchedulerBase | None = None, _state: Any = None) -> None:
                obs.on_next(_event(sched, spec, ConnectionState.CONNECTING, attempt=failures))
                current.disposable = inner.subscribe(obs, scheduler=sched)

            if wait > 0.0:
                current.disposable = sched.schedule_relative(wait, start)
            else:
                start()
            return current

        def on_retry(event: RetryEvent) -> None:
            nonlocal failures
            failures = event.attempt
            observer.on_next(
                _event(
                    sched,
                    spec,
                    ConnectionState.RECONNECTING,
                    attempt=event.attempt,
                    delay=event.delay,
                    reason=describe_error(event.error),
                )
            )

        def on_error(error: Exception) -> None:
            observer.on_next(
                _event(sched, spec, ConnectionState.CLOSED, reason=describe_error(error))
            )
            observer.on_error(error)

        wait, stop = backoff_policy_from_config(config)
        retrying = Observable(one_attempt).pipe(
            retry_with_backoff(
                wait,
                stop,
                retry_if=_always,
                scheduler=sched,
                on_retry=on_retry,
                reset_after=config.healthy_after,
            )
        )
        return retrying.subscribe(
            observer.on_next, on_error, observer.on_completed, scheduler=sched
        )

    return Observable(subscribe)
