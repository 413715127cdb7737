"""Recording: a live :class:`~rxconnector.connector.Connector` that writes what it receives.

:class:`RecordingConnector` composes the connector's construction seams
(:mod:`rxconnector.seams`): the ``on_frame`` hook sees every raw frame, ``hub_factory``
taps each topic's hub to note what was delivered and where the hub restarted a
stream, ``rest_factory`` wraps the venue REST object so every call and its answer is
written. The file format is :mod:`rxconnector.recording`; replaying it is
:mod:`rxconnector.replay.replayer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import SerialDisposable

from rxconnector.config import Config
from rxconnector.connector import Connector
from rxconnector.errors import RecordingError
from rxconnector.recording import RecordingHeader
from rxconnector.replay.calls import segment
from rxconnector.replay.writer import RecordingWriter
from rxconnector.seams import TopicHub
from rxconnector.streams.messages import StreamRestart, TopicMessage

__all__ = ["SYNC_INTERVAL", "RecordingConnector"]

_T = TypeVar("_T")
#: Seconds between two syncs of a recording to the file (and then to the disk): what a
#: killed recorder, or a machine that loses power, can lose at most.
SYNC_INTERVAL: Final = 1.0


def _wall_ms() -> float:
    """The clock the hub stamps frames with (epoch ms), for lines the hub does not stamp."""
    return time.time() * 1000.0


class _RecordingRest:
    """Wraps the venue REST object: every Observable a call returns is tapped so that its
    subscription, items, completion or error are written to the recording.

    Calls that return a function (a trade back-fill fetcher, say) return a wrapped
    function, so the calls made through it are recorded too, with the full call path
    as key. Plain attributes pass through untouched.
    """

    def __init__(
        self,
        target: Any,
        writer: RecordingWriter,
        clock: Callable[[], float] = _wall_ms,
        report: Callable[[Exception], None] | None = None,
    ) -> None:
        self._target = target
        self._log = _CallLog(writer, clock, [0], report)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        return _recording_callable(attr, self._log, (), name)


@attrs.frozen
class _CallLog:
    """Where recorded REST calls go: the writer, the line clock, the call-id counter,
    and where a failure to record is reported."""

    writer: RecordingWriter
    clock: Callable[[], float]
    ids: list[int]
    report: Callable[[Exception], None] | None

    def write(self, line: Callable[..., None], *args: Any) -> None:
        """Write one line; a failure is reported, never raised into the live call."""
        try:
            line(self.clock(), *args)
        except Exception as exc:
            if self.report is not None:
                self.report(
                    RecordingError(self.writer.path, f"could not record a REST line: {exc!r}")
                )


def _recording_callable(
    fn: Callable[..., Any], log: _CallLog, path: tuple[Any, ...], name: str
) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        key = (*path, segment(name, args, kwargs))
        if isinstance(result, Observable):
            return _recording_observable(result, log, key)
        if callable(result):
            return _recording_callable(result, log, key, "()")
        return result

    return call


def _recording_observable(
    source: Observable[Any], log: _CallLog, key: tuple[Any, ...]
) -> Observable[Any]:
    writer, write = log.writer, log.write

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        log.ids[0] += 1
        call_id = log.ids[0]
        write(writer.rest_request, call_id, key)

        def on_next(item: Any) -> None:
            write(writer.rest_item, call_id, item)
            observer.on_next(item)

        def on_error(error: Exception) -> None:
            write(writer.rest_error, call_id, error)
            observer.on_error(error)

        def on_completed() -> None:
            write(writer.rest_complete, call_id)
            observer.on_completed()

        return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

    return Observable(subscribe)


class _DeliveryTap:
    """A hub wrapper whose topic feeds tell the writer what the hub delivered: which
    frames reached a feed (the others become ``d`` lines) and restart markers."""

    def __init__(
        self,
        hub: TopicHub,
        writer: RecordingWriter,
        last: dict[str, StreamRestart],
        clock: Callable[[], float],
        safely: Callable[..., None] = lambda write, *args: write(*args),
    ) -> None:
        self._hub = hub
        self._writer = writer
        self._last = last
        self._clock = clock
        self._safely = safely  # writes without raising into the feed (RecordingConnector)

    def feed(self, topic: str) -> Observable[TopicMessage]:
        writer = self._writer
        last = self._last
        clock = self._clock
        safely = self._safely

        def tap(message: TopicMessage) -> None:
            if type(message) is StreamRestart:
                # every subscription of the topic sees the same marker object: write it once
                if last.get(message.topic) is not message:
                    last[message.topic] = message
                    safely(writer.restart, clock(), message.topic, message.reason)
            else:
                writer.delivered()

        feed: Observable[TopicMessage] = self._hub.feed(topic)
        return feed.pipe(ops.do_action(tap))

    def resubscribe(self, topic: str) -> None:
        self._hub.resubscribe(topic)

    async def close(self) -> None:
        await self._hub.close()


class _StepClock:
    """Times for recorded lines, grouped by event-loop step.

    The first line written in a loop step opens the step (a ``call_soon`` callback
    closes it: it runs after everything already queued in this loop iteration, which
    is exactly when a ``conflate`` delivery scheduled during the step runs too). Frames
    keep their own receive time and say whether they opened the step; every other line
    gets the step's opening time, so replay never advances virtual time, and never runs
    anything scheduled, between things that happened in one step live.
    """

    def __init__(self, on_close: Callable[[], None] | None = None) -> None:
        self._open = False
        self._time = 0.0
        self._on_close = on_close

    def _start(self, at: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop, no steps: every line stands alone
        self._open = True
        self._time = at
        loop.call_soon(self._close)

    def _close(self) -> None:
        self._open = False
        if self._on_close is not None:
            self._on_close()

    def frame(self, received_at: float) -> bool:
        """Note a frame; True when it belongs to the step the previous line opened."""
        if self._open:
            return True
        self._start(received_at)
        return False

    def now(self) -> float:
        """The time for a non-frame line."""
        if self._open:
            return self._time
        at = _wall_ms()
        self._start(at)
        return at


class RecordingConnector(Connector):
    """A :class:`~rxconnector.connector.Connector` that records what it receives.

    Everything a replay needs is written to ``path`` (see :mod:`rxconnector.recording`):
    every raw WebSocket frame with its receive time (through the ``on_frame`` hook), the
    hub's restart markers, connection-state events, clock offsets, and every REST call
    made through the venue REST object (order-book snapshots, trade back-fill) with
    what it returned. ``feeds``/``symbols`` only go into the header (the CLI's replay
    uses them to know what to print); what is recorded is whatever gets subscribed.

    The file is created on :meth:`start` and finished on :meth:`stop`. Every
    ``sync_interval`` seconds (on the connector's scheduler) what was written is pushed
    to the file with a gzip sync flush, then ``fsync``-ed in a worker thread (the loop
    never waits on the disk): a recorder killed with SIGKILL, or a machine that loses
    power, loses at most about the last ``sync_interval`` of the recording, and the
    reader replays everything before the cut. API keys and secrets are never written.
    If the file cannot be written (disk full), recording stops there with one
    :class:`~rxconnector.errors.RecordingError` on :attr:`errors` (or raised by
    :meth:`stop` when finishing the file fails); the live feeds go on.
    """

    def __init__(
        self,
        config: Config,
        path: str | os.PathLike[str],
        *,
        feeds: Sequence[str] = (),
        symbols: Sequence[str] = (),
        scheduler: abc.SchedulerBase | None = None,
        session: Any = None,
        sync_interval: float = SYNC_INTERVAL,
    ) -> None:
        super().__init__(
            config,
            scheduler=scheduler,
            session=session,
            on_frame=self._frame,
            rest_factory=self._recording_rest,
            hub_factory=self._tapped_hub,
        )
        if not sync_interval > 0:
            raise ValueError(f"sync_interval must be > 0 seconds, got {sync_interval!r}")
        self.path = os.fspath(path)
        self.sync_interval = sync_interval
        self._sync_timer: abc.DisposableBase | None = None
        self._fsync: asyncio.Future[None] | None = None
        self._header_feeds = tuple(feeds)
        self._header_symbols = tuple(symbols)
        self.writer: RecordingWriter | None = None
        self._last_restart: dict[str, StreamRestart] = {}
        self._taps: list[abc.DisposableBase] = []
        self._clock_tapped = False
        self._finished = False
        self._steps = _StepClock(self._step_ended)

    def _step_ended(self) -> None:
        # the hub is done with this step's frames: their delivery is known, write them
        if self.writer is not None and not self.writer.closed:
            self._safely(self.writer.flush)

    def _safely(self, write: Callable[..., None], *args: Any) -> None:
        """Write a line; a failure (disk full: the writer stops recording) is reported on
        :attr:`errors`, never raised into the hub, a feed or the event loop."""
        try:
            write(*args)
        except RecordingError as exc:
            self.health.report(exc)
        except Exception as exc:
            self.health.report(RecordingError(self.path, f"could not record a line: {exc!r}"))

    def _every(self, period: float, action: Callable[[], None]) -> abc.DisposableBase:
        """Run ``action`` every ``period`` s on the connector's scheduler until disposed."""
        timer = SerialDisposable()
        scheduler = self.scheduler

        def tick(_s: abc.SchedulerBase, _state: Any = None) -> None:
            action()
            timer.disposable = scheduler.schedule_relative(period, tick)

        timer.disposable = scheduler.schedule_relative(period, tick)
        return timer

    def _sync(self) -> None:
        """Timer: push what was written to the file, then fsync it in a worker thread."""
        writer = self.writer
        if writer is None or writer.closed:
            return
        try:
            fd = writer.sync()
        except RecordingError as exc:
            self.health.report(exc)
            return
        if fd is None or self._fsync is not None:
            return  # nothing new, or the previous fsync is still running
        try:
            fsync = asyncio.get_running_loop().run_in_executor(None, os.fsync, fd)
        except RuntimeError:  # no loop (a virtual-time test): the data is in the file
            return
        self._fsync = fsync

        def done(future: asyncio.Future[None]) -> None:
            self._fsync = None
            if not future.cancelled() and future.exception() is not None:
                self.health.report(
                    RecordingError(self.path, f"cannot sync to disk ({future.exception()})")
                )

        fsync.add_done_callback(done)

    def _frame(self, connection_id: str, received_at: float, frame: str | bytes) -> None:
        writer = self.writer
        if writer is not None:
            same_step = self._steps.frame(received_at)
            writer.frame(connection_id, received_at, frame, same_step=same_step)

    async def start(self) -> None:
        if self.writer is None and not self._finished:
            header = RecordingHeader.for_config(
                self.config, self._header_feeds, self._header_symbols, _wall_ms()
            )
            self.writer = RecordingWriter(self.path, header, track_delivery=True)
            writer = self.writer
            self._taps.append(
                self.connection_state.subscribe(
                    lambda e: self._safely(writer.state, self._steps.now(), e), lambda _e: None
                )
            )
        try:
            await super().start()
        except BaseException:
            # Cancelled (Ctrl-C) or failed while waiting for the first clock sync: ``async
            # with`` never reaches __aexit__ then, so stop here, or the session, the clock
            # sync and the file would stay open.
            await self.stop()
            raise
        if self.writer is not None and self._sync_timer is None and not self._finished:
            self._sync_timer = self._every(self.sync_interval, self._sync)
        clock_sync = self.config.clock_sync.enabled
        if clock_sync and self.writer is not None and not self._clock_tapped:
            # once: a second start() (idempotent) would record each offset twice
            self._clock_tapped = True
            writer = self.writer
            self._taps.append(
                self.clock.subscribe(
                    lambda o: self._safely(writer.clock, self._steps.now(), o), lambda _e: None
                )
            )

    async def stop(self) -> None:
        ended_at = _wall_ms()
        self._finished = True
        try:
            await super().stop()
        finally:
            for tap in self._taps:
                tap.dispose()
            self._taps.clear()
            if self._sync_timer is not None:
                self._sync_timer.dispose()
                self._sync_timer = None
            if self._fsync is not None:  # let it finish before its file is closed
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._fsync)
            if self.writer is not None:
                self.writer.close(ended_at)

    def _recording_rest(self, build: Callable[[], Any]) -> Any:
        """The ``rest_factory`` seam: the connector's REST object, every call recorded."""
        rest = build()
        if self.writer is None:
            return rest
        return _RecordingRest(rest, self.writer, self._steps.now, self.health.report)

    def _tapped_hub(self, topic: str, live: Callable[[str], TopicHub]) -> TopicHub:
        """The ``hub_factory`` seam: the live hub of ``topic``, its deliveries recorded.

        Called when a topic's shared feed connects, i.e. at its first subscription."""
        hub = live(topic)
        if self.writer is None:
            return hub
        self._safely(self.writer.subscribed, self._steps.now(), topic)
        return _DeliveryTap(hub, self.writer, self._last_restart, self._steps.now, self._safely)
