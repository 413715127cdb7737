"""Replay: a :class:`~rxconnector.connector.Connector` whose feeds come from a recording.

See :mod:`rxconnector.replay` for what is reproduced exactly and what is not.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import HistoricalScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler
from reactivex.subject import Subject

from rxconnector._scheduling import now_ms
from rxconnector.connector import Connector
from rxconnector.errors import NotSupportedError, RecordingError, RxConnectorError
from rxconnector.market_data import ConnectorFeeds
from rxconnector.models import (
    AccountEvent,
    Balance,
    ClockOffset,
    ConnectionEvent,
    Execution,
    OrderUpdate,
    Position,
)
from rxconnector.recording import Kind, RecordingHeader, decode_value
from rxconnector.replay.calls import key_id
from rxconnector.replay.hub import ReplayHub
from rxconnector.replay.reader import RecordingReader
from rxconnector.replay.rest import ReplayRest, RestLedger
from rxconnector.seams import TopicHub

__all__ = ["ReplayConnector", "ReplayObservable", "ReplayStats", "open"]

_T = TypeVar("_T")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FRAME_KINDS: Final = frozenset(
    {
        Kind.FRAME,
        Kind.FRAME_SAME_STEP,
        Kind.BINARY_FRAME,
        Kind.DROPPED_FRAME,
        Kind.DROPPED_BINARY_FRAME,
    }
)
#: Start-up lines read ahead while looking for the first subscription mark.
_MAX_LOOKAHEAD: Final = 10_000
#: Frames delivered between two yields to the event loop in :meth:`ReplayConnector.play`.
_YIELD_EVERY: Final = 2000


def _to_datetime(ms: float) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@attrs.frozen
class ReplayStats:
    """What a replay went through: entries read, frames read, messages delivered to
    feeds, the recorded duration (ms), the wall-clock seconds it took, and whether the
    file was cut short."""

    entries: int
    frames: int
    delivered: int
    recorded_ms: float
    wall_seconds: float
    truncated: bool

    @property
    def speedup(self) -> float:
        """Recorded time / wall time: how many times faster than real time."""
        if self.wall_seconds <= 0:
            return float("inf")
        return self.recorded_ms / 1000.0 / self.wall_seconds


class ReplayObservable(Observable[_T]):
    """A feed of a replay, or anything piped from one: subscribing without ``scheduler=``
    subscribes on the replay's virtual-time scheduler.

    Time-based operators (``buffer_with_time``, ``debounce``, ``sample``...) take the
    scheduler given to ``subscribe`` when they were given none; on a live feed that is
    the loop's clock, on a replay it must be the recorded clock, or windows would be cut
    by the wall clock while the file is read at CPU speed - wrong, and silently so. So
    ``replay.trades(s).pipe(ops.buffer_with_time(1.0)).subscribe(print)`` is right as
    written. An explicit ``scheduler=`` still wins. Combining a feed with other
    Observables (``reactivex.merge(...)``) gives a plain Observable: subscribe that one
    with ``scheduler=replay.scheduler``.
    """

    def __init__(self, source: Observable[_T], scheduler: abc.SchedulerBase) -> None:
        self._replay_scheduler = scheduler

        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return source.subscribe(observer, scheduler=scheduler_)

        super().__init__(subscribe)

    def subscribe(
        self,
        on_next: Any = None,
        on_error: Any = None,
        on_completed: Any = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        return super().subscribe(
            on_next, on_error, on_completed, scheduler=scheduler or self._replay_scheduler
        )

    def pipe(self, *operators: Callable[[Any], Any]) -> Any:
        result = super().pipe(*operators)
        if isinstance(result, Observable) and not isinstance(result, ReplayObservable):
            return ReplayObservable(result, self._replay_scheduler)
        return result


def _on_scheduler(source: Observable[Any], scheduler: abc.SchedulerBase) -> Observable[Any]:
    """Subscribe ``source`` with the replay's scheduler whatever the subscriber passes,
    so the connector's own operators (``conflate``...) run in recorded time; what is
    piped from it defaults to that scheduler too (:class:`ReplayObservable`)."""

    def subscribe(
        observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return source.subscribe(observer, scheduler=scheduler)

    return ReplayObservable(Observable(subscribe), scheduler)


def _start_of_feeds(reader: RecordingReader) -> tuple[Iterator[list[Any]], float]:
    """Where replay time starts: when the live feeds were first subscribed.

    A user subscribes before :meth:`ReplayConnector.run`, i.e. at the replay's initial
    clock; starting that clock at the first recorded subscription (not at the header's
    start, which precedes the connector's start-up) puts the windows of time-based
    operators where they were live. Reads ahead only up to that line (a handful of
    start-up lines), then hands back an iterator over every entry, those included.
    """
    entries = iter(reader)
    ahead: list[list[Any]] = []
    start = reader.header.started_at
    for entry in entries:
        ahead.append(entry)
        kind = entry[0]
        if kind == Kind.SUBSCRIBED:
            start = max(start, entry[1])
            break
        if kind in _FRAME_KINDS or len(ahead) >= _MAX_LOOKAHEAD:
            break  # a recording made without subscription marks
    return itertools.chain(ahead, entries), start


class ReplayConnector(Connector):
    """A Connector whose feeds come from a recording (see the module docstring).

    Subscribe to feeds first (same methods as :class:`Connector`), then drive the replay
    with :meth:`run` (synchronous, as fast as possible) or ``await`` :meth:`play`
    (yields to the event loop, optionally paced at ``speed`` x real time). When the
    recording ends, every feed completes. Feeds, and whatever is piped from them, are
    :class:`ReplayObservable` objects: subscribed without ``scheduler=`` they run on
    :attr:`scheduler`, so time-based operators see the recorded clock; pass
    ``scheduler=replay.scheduler`` only to Observables built otherwise
    (``reactivex.merge(...)`` of two feeds).
    A replay runs once; open the file again to replay it again.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scheduler: VirtualTimeScheduler | None = None,
    ) -> None:
        if scheduler is not None and not isinstance(scheduler, VirtualTimeScheduler):
            raise TypeError(
                "a replay needs a virtual-time scheduler (HistoricalScheduler, "
                f"TestScheduler...), got {type(scheduler).__name__}"
            )
        self._reader = reader = RecordingReader(path)
        self.header: RecordingHeader = reader.header
        try:
            self._source, start_ms = _start_of_feeds(reader)
            try:
                config = attrs.evolve(self.header.make_config(), clock_sync={"enabled": False})
            except (TypeError, ValueError) as exc:
                raise RecordingError(
                    reader.path, f"the header's config is unusable: {exc}", 1
                ) from exc
            start = _to_datetime(start_ms)
            sched = scheduler if scheduler is not None else HistoricalScheduler(start)
            if sched.now < start:
                sched.advance_to(start)
            super().__init__(
                config,
                scheduler=sched,
                rest_factory=self._replay_rest,
                hub_factory=self._replay_hub,
                feed_view=lambda feed: _on_scheduler(feed, sched),
            )
        except BaseException:
            reader.close()
            raise
        self._vscheduler = sched
        self.hub = ReplayHub(self.venue.protocol, report_error=self.health.report)
        self._ledger = RestLedger(sched)
        self._offsets: Subject[ClockOffset] = Subject()
        self._latest_offset: ClockOffset | None = None
        self._closed = False
        self._clock_ms = self._start_ms = start_ms
        self._entries = 0
        self._ran = False
        self._wall = 0.0
        # what start() would set up, minus the network: the REST stand-in, the same
        # snapshot pacing as live
        self.start_offline()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def scheduler(self) -> VirtualTimeScheduler:
        """The virtual-time scheduler the replay advances (use it in your pipelines)."""
        return self._vscheduler

    async def start(self) -> None:
        """Nothing to connect: a replay is ready as soon as it is opened."""
        if self._closed:
            raise RxConnectorError("this replay was stopped; open the recording again")

    async def stop(self) -> None:
        """End every feed without replaying the rest of the recording."""
        self.close()

    def close(self) -> None:
        """Synchronous :meth:`stop`: complete every feed and close the file."""
        if self._closed:
            return
        self._closed = True
        self.health.close()  # what ending the feeds raises is not news
        self.hub.complete()
        self._ledger.close()
        self._reader.close()
        self.stop_offline()
        self._offsets.on_completed()

    def __enter__(self) -> ReplayConnector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- health ---------------------------------------------------------------------------

    @property
    def clock(self) -> Observable[ClockOffset]:
        """The recorded clock offsets, at their recorded times (latest replayed first)."""

        def build(_: abc.SchedulerBase | None) -> Observable[ClockOffset]:
            latest = [self._latest_offset] if self._latest_offset is not None else []
            return reactivex.from_iterable(latest).pipe(ops.concat(self._offsets))

        return reactivex.defer(build)

    def now(self) -> int:
        """Exchange time as it was at this point of the recording (virtual local time
        corrected by the latest recorded clock offset)."""
        local = now_ms(self._vscheduler)
        offset = self._latest_offset.offset_ms if self._latest_offset is not None else 0.0
        return int(local + offset)

    # -- driving --------------------------------------------------------------------------

    def run(self) -> ReplayStats:
        """Replay the whole recording now, as fast as possible, then complete every feed.

        Synchronous: meant for tests and scripts without a running loop. It does not
        yield until the file is done; in a notebook or an async program ``await``
        :meth:`play` instead.
        """
        self._begin()
        started = time.perf_counter()
        step = self._step
        for entry in self._source:
            step(entry)
            if self._closed:
                break  # a subscriber called close(): the rest is not wanted
        self._wall += time.perf_counter() - started
        return self._end()

    async def play(self, speed: float | None = None) -> ReplayStats:
        """Replay the whole recording, yielding to the event loop as it goes.

        ``speed=None`` goes as fast as possible (yielding every few thousand frames so
        the loop stays responsive); ``speed=2.0`` paces the replay at twice the
        recorded pace, ``1.0`` in real time. Cancelling it ends the replay: every feed
        completes and the file is closed.
        """
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self._begin()
        loop = asyncio.get_running_loop()
        wall_start = loop.time()
        origin = self._start_ms
        step = self._step
        started = time.perf_counter()
        try:
            for count, entry in enumerate(self._source, 1):
                if speed is not None:
                    ahead = (entry[1] - origin) / 1000.0 / speed - (loop.time() - wall_start)
                    if ahead > 0.002:
                        await asyncio.sleep(ahead)
                step(entry)
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                if self._closed:
                    break
        except BaseException:
            self.close()
            raise
        self._wall += time.perf_counter() - started
        return self._end()

    def _begin(self) -> None:
        if self._ran:
            raise RxConnectorError("a replay runs once; open the recording again to replay it")
        if self._closed:
            raise RxConnectorError("this replay was stopped; open the recording again")
        self._ran = True

    def _step(self, entry: list[Any]) -> None:
        """Advance virtual time to the entry's receive time, then apply the entry."""
        self._entries += 1
        kind = entry[0]
        at = entry[1]
        if kind == "g":
            self.hub.dispatch_frame(at, entry[3])  # same loop step: nothing runs between
            return
        if at > self._clock_ms:
            self._clock_ms = at
            self._vscheduler.advance_to(_EPOCH + timedelta(milliseconds=at))
        if kind == "f":
            self.hub.dispatch_frame(at, entry[3])
        elif kind == Kind.DROPPED_FRAME or kind == Kind.DROPPED_BINARY_FRAME:
            self.hub.frames += 1
        elif kind == Kind.BINARY_FRAME:
            self.hub.dispatch_frame(at, base64.b64decode(entry[3]))
        elif kind == Kind.RESTART:
            self.hub.dispatch_restart(entry[2], entry[3])
        elif kind == Kind.REST_REQUEST:
            self._ledger.request(entry[2], key_id(entry[3]))
        elif kind in (Kind.REST_ITEM, Kind.REST_ERROR):
            self._ledger.event(entry[2], kind, decode_value(entry[3]))
        elif kind == Kind.REST_COMPLETE:
            self._ledger.event(entry[2], kind, None)
        elif kind == Kind.STATE:
            event = decode_value(entry[2])
            if isinstance(event, ConnectionEvent):
                self.health.on_state(event)
        elif kind == Kind.CLOCK:
            offset = decode_value(entry[2])
            if isinstance(offset, ClockOffset):
                self._latest_offset = offset
                self._offsets.on_next(offset)
        # Kind.END and unknown kinds (from a newer minor writer) carry nothing to apply

    def _end(self) -> ReplayStats:
        if not self._closed:
            end = self._reader.ended_at
            if end is not None and end > self._clock_ms:
                self._clock_ms = end
                self._vscheduler.advance_to(_to_datetime(end))
            # Run what the last frame scheduled "now" (a conflated book...) before the end.
            self._vscheduler.advance_by(timedelta(microseconds=1))
        stats = ReplayStats(
            entries=self._entries,
            frames=self.hub.frames,
            delivered=self.hub.delivered,
            recorded_ms=self._clock_ms - self._start_ms,
            wall_seconds=self._wall,
            truncated=self._reader.truncated,
        )
        self.close()
        return stats

    # -- the Connector seams ----------------------------------------------------------

    def _replay_rest(self, _build: Callable[[], Any]) -> ReplayRest:
        """``rest_factory``: every call is answered from the recording (the live REST
        object is never built)."""
        return ReplayRest(self._ledger)

    def _replay_hub(self, _topic: str, _live: Callable[[str], TopicHub]) -> TopicHub:
        """``hub_factory``: every topic is served from the recording."""
        if self._closed:
            raise RxConnectorError("this replay is over: subscribe to feeds before run()/play()")
        return self.hub

    # -- account feeds: private streams are not recorded ------------------------------

    def orders(self) -> Observable[OrderUpdate]:
        return _not_recorded()

    def balances(self) -> Observable[Balance]:
        return _not_recorded()

    def executions(self) -> Observable[Execution]:
        return _not_recorded()

    def positions(self) -> Observable[Position]:
        return _not_recorded()

    def account_events(self) -> Observable[AccountEvent]:
        return _not_recorded()


def _not_recorded() -> Observable[Any]:
    """An account feed of a replay: fails at subscription, like a live one that cannot
    start."""
    return reactivex.throw(
        NotSupportedError("replay", "account feeds (private streams are not recorded)")
    )


def open(
    path: str | os.PathLike[str], scheduler: VirtualTimeScheduler | None = None
) -> ReplayConnector:
    """Open a recording for replay (see :class:`ReplayConnector`)."""
    return ReplayConnector(path, scheduler=scheduler)


if TYPE_CHECKING:

    def _satisfies(conn: ReplayConnector) -> ConnectorFeeds:
        """mypy checks here that a replay serves every feed a Connector declares."""
        return conn
