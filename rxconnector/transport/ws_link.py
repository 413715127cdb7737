"""The write side of one open WebSocket: every frame we send passes one paced queue.

Writes are paced: every frame we send on a socket - control messages, pongs and
application pings - passes one strict rolling-window :class:`~rxconnector.rate.pacing.Pacer`
(Binance counts pings and pongs in its 5 messages/s, PROTOCOL.md §A1.1). That is why
aiohttp's ``autoping`` and ``heartbeat`` are off: aiohttp would answer pings (and send
its own) behind the limiter's back. We answer each server ping ourselves with a pong
carrying the ping's payload, ahead of queued control messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from reactivex import abc
from reactivex.disposable import SerialDisposable

from rxconnector.rate.pacing import Pacer, RollingWindow, scheduler_seconds
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws_types import SocketSpec

__all__ = ["WsLink"]


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
