"""Record live feeds to a file and replay them later, deterministically, in virtual time.

Recording::

    async with RecordingConnector(rxc.Config.binance(), "btc.jsonl.gz",
                                  feeds=["trades"], symbols=["BTCUSDT"]) as conn:
        conn.trades("BTCUSDT").subscribe(print)      # a normal Connector...
        await asyncio.sleep(60)                      # ...that writes what it receives

Replaying::

    replay = rxc.replay.open("btc.jsonl.gz")         # a Connector-like object
    replay.trades("BTCUSDT").pipe(
        ops.buffer_with_time(1.0),                   # windows in *recorded* time
    ).subscribe(print)                               # (replay.scheduler is the default)
    replay.run()                                     # as fast as the CPU allows

``run()`` is synchronous on purpose: with a virtual-time scheduler there is nothing to
wait for, so a unit test or script replays with no event loop at all. It holds the
thread until the file is done, so inside a running loop (a notebook, an async
application) use ``await replay.play()``, which yields to the loop as it goes.

:class:`ReplayConnector` *is* a :class:`~rxconnector.connector.Connector`: its feeds are
built by the very same code (feed specs, parsers, order-book maintenance, trade
continuity, sharing); only the subscription hub is replaced by a :class:`ReplayHub` fed
from the file, and the REST API by :class:`ReplayRest`, which answers with what the live
connector's REST calls returned. Time is a ``HistoricalScheduler`` (any
``VirtualTimeScheduler`` may be passed) advanced to each entry's recorded time before
the entry is applied.

**Reproduced exactly**

* Every frame the live hub delivered, in order, with its original receive time (the
  ``received_at`` of every model), decoded, routed and parsed by the live code; frames
  the live hub dropped (control messages, a rotation's duplicates, a topic just
  unsubscribed) are skipped, as live.
* The hub's ``StreamRestart`` markers, right before the same message as live.
* REST answers the connector's machinery asked for (order-book snapshots, trade
  back-fill; any call through the venue REST object), delivered between the same two
  frames as live, so books resync and trades back-fill exactly as they did.
* Event-loop steps: frames handled in one loop step live (one socket read) are
  delivered back to back with nothing scheduled running between them, so a
  ``conflate``d order book skips the same intermediate states it skipped live.
* The clock: replay time starts where the live feeds were first subscribed and is the
  recorded time of each entry, so operators on :attr:`ReplayConnector.scheduler`
  (``buffer_with_time``, ``debounce``...) see the recorded clock; ``connection_state``
  events, ``clock`` offsets and ``now()`` are the recorded ones.

**Not reproduced**

* What the recording does not hold: topics nobody subscribed live, REST calls the live
  connector never made (they get :class:`~rxconnector.errors.RecordingError` when the
  recording ends), account feeds (private streams are not recorded: ``orders()`` and
  the like fail with :class:`~rxconnector.errors.NotSupportedError`). Subscribe to the
  recorded feeds before :meth:`~ReplayConnector.run`.
* Timer jitter: live timers fire slightly late and drift; replay timers fire exactly on
  time, so a message that arrived within that jitter of a window boundary may fall in
  the neighbouring window on replay.
* Problems only the live hub saw (garbage frames, rejected subscriptions, unanswered
  requests) are not re-reported on :attr:`errors`; problems the pipeline itself finds
  (resyncs, gaps, unparseable payloads) are.
* The network: rate limits, circuit-breaker timing, clock-sync requests. Recorded REST
  failures come back as the same exception class with the same message and attributes,
  without the traceback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import orjson
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.scheduler import HistoricalScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler
from reactivex.subject import Subject

from rxconnector._scheduling import now_ms
from rxconnector.config import Config
from rxconnector.connector import SNAPSHOTS_IN_FLIGHT, Connector
from rxconnector.errors import NotSupportedError, ParseError, RecordingError, RxConnectorError
from rxconnector.exchanges.base import WsProtocol
from rxconnector.market_data import ConnectorFeeds
from rxconnector.models import ClockOffset, ConnectionEvent, OrderBook, Trade
from rxconnector.recording import (
    Kind,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    decode_value,
    encode_value,
)
from rxconnector.streams.messages import StreamRestart, TopicMessage
from rxconnector.streams.orderbook import SnapshotGate

__all__ = [
    "RecordingConnector",
    "ReplayConnector",
    "ReplayHub",
    "ReplayObservable",
    "ReplayRest",
    "ReplayStats",
    "open",
]

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
#: Seconds between two syncs of a recording to the file (and then to the disk): what a
#: killed recorder, or a machine that loses power, can lose at most.
SYNC_INTERVAL: Final = 1.0
#: Start-up lines read ahead while looking for the first subscription mark.
_MAX_LOOKAHEAD: Final = 10_000
#: Frames delivered between two yields to the event loop in :meth:`ReplayConnector.play`.
_YIELD_EVERY: Final = 2000


def _to_datetime(ms: float) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _wall_ms() -> float:
    """The clock the hub stamps frames with (epoch ms), for lines the hub does not stamp."""
    return time.time() * 1000.0


# -- call keys ------------------------------------------------------------------------------


def _key_part(value: Any) -> Any:
    try:
        return encode_value(value)
    except TypeError:
        return {"$repr": repr(value)}


def _segment(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    return [name, [_key_part(a) for a in args], {k: _key_part(kwargs[k]) for k in sorted(kwargs)}]


def _key_id(key: Sequence[Any]) -> bytes:
    """A hashable, order-independent identity of a call key."""
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)


# -- recording ------------------------------------------------------------------------------


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
        key = (*path, _segment(name, args, kwargs))
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
        hub: Any,
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

    async def close(self) -> None:
        await self._hub.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hub, name)  # resubscribe() and whatever else the hub offers


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
        super().__init__(config, scheduler=scheduler, session=session, on_frame=self._frame)
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
            self._report(exc)
        except Exception as exc:
            self._report(RecordingError(self.path, f"could not record a line: {exc!r}"))

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
            self._report(exc)
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
                self._report(
                    RecordingError(self.path, f"cannot sync to disk ({future.exception()})")
                )

        fsync.add_done_callback(done)

    def _frame(self, connection_id: str, received_at: float, frame: str | bytes) -> None:
        writer = self.writer
        if writer is not None:
            same_step = self._steps.frame(received_at)
            writer.frame(connection_id, received_at, frame, same_step=same_step)

    async def start(self) -> None:
        if self.writer is None and not self._stopped:
            header = RecordingHeader.for_config(
                self.config, self._header_feeds, self._header_symbols, _wall_ms()
            )
            self.writer = RecordingWriter(self.path, header, track_delivery=True)
            writer = self.writer
            self._taps.append(
                self._states.subscribe(
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
        if self.writer is not None and self._sync_timer is None and not self._stopped:
            self._sync_timer = self._every(self.sync_interval, self._sync)
        if self._clock is not None and self.writer is not None and not self._clock_tapped:
            # once: a second start() (idempotent) would record each offset twice
            self._clock_tapped = True
            writer = self.writer
            self._taps.append(
                self._clock.offsets.subscribe(
                    lambda o: self._safely(writer.clock, self._steps.now(), o), lambda _e: None
                )
            )

    async def stop(self) -> None:
        ended_at = _wall_ms()
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

    def _build_rest(self) -> Any:
        rest = super()._build_rest()
        if self.writer is None:
            return rest
        return _RecordingRest(rest, self.writer, self._steps.now, self._report)

    def _hub_for(self, topic: str) -> Any:
        # Called when a topic's shared feed connects, i.e. at its first subscription.
        hub = super()._hub_for(topic)
        if self.writer is None:
            return hub
        self._safely(self.writer.subscribed, self._steps.now(), topic)
        return _DeliveryTap(hub, self.writer, self._last_restart, self._steps.now, self._safely)


# -- replay: the hub ------------------------------------------------------------------------


class ReplayHub:
    """Stands in for the subscription hub: routes recorded frames to topic feeds.

    Frames are decoded and routed with the venue's own :class:`WsProtocol`, as the live
    hub does; a frame whose topic has no subscriber is skipped. Only frames the live hub
    delivered are dispatched (the recording marks the others), so its de-duplication
    during connection rotations is reproduced without being re-implemented. A recorded
    restart marker is emitted right before the next message of its topic, which is
    where the live hub emitted it.
    """

    def __init__(self, protocol: WsProtocol, *, report_error: Callable[[Exception], None]) -> None:
        self._route = protocol.route
        self._report = report_error
        self._observers: dict[str, tuple[abc.ObserverBase[TopicMessage], ...]] = {}
        self._restarts: dict[str, str] = {}
        self.closed = False
        self.frames = 0
        self.delivered = 0

    def feed(self, topic: str) -> Observable[TopicMessage]:
        """The recorded messages of ``topic``: ``(received_at, payload)`` and restart markers."""

        def subscribe(
            observer: abc.ObserverBase[TopicMessage], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if self.closed:
                observer.on_completed()
                return Disposable()
            self._observers[topic] = (*self._observers.get(topic, ()), observer)
            return Disposable(lambda: self._detach(topic, observer))

        return Observable(subscribe)

    def _detach(self, topic: str, observer: abc.ObserverBase[TopicMessage]) -> None:
        remaining = tuple(o for o in self._observers.get(topic, ()) if o is not observer)
        if remaining:
            self._observers[topic] = remaining
        else:
            self._observers.pop(topic, None)

    @property
    def topics(self) -> frozenset[str]:
        """Topics with at least one subscriber."""
        return frozenset(self._observers)

    def dispatch_frame(self, received_at: float, frame: str | bytes) -> None:
        """Hot path: decode, route and deliver one recorded frame."""
        self.frames += 1
        if not self._observers:
            return
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            self._report(ParseError("replayed frame is not JSON", frame))
            return
        try:
            routed = self._route(message)
        except Exception as exc:
            self._report(ParseError(f"cannot route replayed frame ({exc!r})", frame))
            return
        if routed is None:
            return  # a control message the live hub delivered to nobody either
        topic, payload = routed
        observers = self._observers.get(topic)
        if observers is None:
            return
        if self._restarts:
            reason = self._restarts.pop(topic, None)
            if reason is not None:
                self._deliver(topic, observers, StreamRestart(topic, reason))
                observers = self._observers.get(topic, ())
        self.delivered += 1
        self._deliver(topic, observers, (received_at, payload))

    def resubscribe(self, topic: str) -> None:
        """Nothing to do: what the live resubscription brought (a restart marker, a fresh
        snapshot) is in the recording and is replayed where it happened."""

    def dispatch_restart(self, topic: str, reason: str) -> None:
        """A recorded restart marker: emitted before ``topic``'s next message."""
        if topic in self._observers:
            self._restarts[topic] = reason

    def _deliver(
        self,
        topic: str,
        observers: tuple[abc.ObserverBase[TopicMessage], ...],
        message: TopicMessage,
    ) -> None:
        for observer in observers:
            try:
                observer.on_next(message)
            except Exception as exc:  # one broken pipeline must not stop the replay
                self._report(exc)
                self._detach(topic, observer)

    def complete(self) -> None:
        """End every topic feed (the recording is over)."""
        if self.closed:
            return
        self.closed = True
        observers = [o for group in self._observers.values() for o in group]
        self._observers.clear()
        for observer in observers:
            try:
                observer.on_completed()
            except Exception as exc:
                self._report(exc)

    async def close(self) -> None:
        self.complete()


# -- replay: REST ---------------------------------------------------------------------------


@attrs.define
class _RecordedCall:
    """One REST call found in the recording and the replayed subscriber it answers."""

    key: bytes
    events: list[tuple[str, Any]] = attrs.field(factory=list)
    observer: abc.ObserverBase[Any] | None = None
    done: bool = False


class _RestLedger:
    """Matches REST calls made during replay with the calls recorded live.

    A replayed call (a subscription) waits for the next recorded call with the same key;
    recorded events (items, completion, error) are delivered when the replay reaches
    them, i.e. between the same two frames as live. If the replay asks only after the
    recorded answer was read, the buffered answer is delivered on the scheduler at once.
    """

    def __init__(self, scheduler: abc.SchedulerBase) -> None:
        self._scheduler = scheduler
        self._waiting: dict[bytes, deque[abc.ObserverBase[Any]]] = {}
        self._unclaimed: dict[bytes, deque[_RecordedCall]] = {}
        self._calls: dict[int, _RecordedCall] = {}
        self.closed = False

    # replayed side
    def subscribe(self, key: bytes, observer: abc.ObserverBase[Any]) -> abc.DisposableBase:
        if self.closed:
            observer.on_error(
                RecordingError("replay", "the recording has ended; no REST answer is left")
            )
            return Disposable()
        unclaimed = self._unclaimed.get(key)
        if unclaimed:
            call = unclaimed.popleft()
            call.observer = observer
            if call.events:

                def flush(_s: abc.SchedulerBase, _state: Any = None) -> None:
                    self._flush(call)

                self._scheduler.schedule(flush)
            return Disposable(lambda: self._abandon(call))
        queue = self._waiting.setdefault(key, deque())
        queue.append(observer)

        def dispose() -> None:
            waiting = self._waiting.get(key)
            if waiting is not None and observer in waiting:
                waiting.remove(observer)
            for call in self._calls.values():
                if call.observer is observer:
                    self._abandon(call)

        return Disposable(dispose)

    def _abandon(self, call: _RecordedCall) -> None:
        call.observer = None
        call.done = True

    def _flush(self, call: _RecordedCall) -> None:
        events, call.events = call.events, []
        for kind, value in events:
            self._emit(call, kind, value)

    def _emit(self, call: _RecordedCall, kind: str, value: Any) -> None:
        observer = call.observer
        if observer is None or call.done:
            return
        if kind == Kind.REST_ITEM:
            observer.on_next(value)
            return
        call.done = True
        call.observer = None
        if kind == Kind.REST_COMPLETE:
            observer.on_completed()
        else:
            observer.on_error(value)

    # recorded side
    def request(self, call_id: int, key: bytes) -> None:
        call = _RecordedCall(key)
        self._calls[call_id] = call
        waiting = self._waiting.get(key)
        if waiting:
            call.observer = waiting.popleft()
        else:
            self._unclaimed.setdefault(key, deque()).append(call)

    def event(self, call_id: int, kind: str, value: Any) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        if kind != Kind.REST_ITEM:
            del self._calls[call_id]
        if call.observer is None:
            if not call.done:
                call.events.append((kind, value))
            return
        self._emit(call, kind, value)

    def close(self) -> None:
        """The recording is over: calls still waiting will never be answered."""
        self.closed = True
        waiting = [o for queue in self._waiting.values() for o in queue]
        self._waiting.clear()
        for observer in waiting:
            observer.on_error(
                RecordingError("replay", "the recording ended before this REST call was answered")
            )


class _ReplayCall(Observable[Any]):
    """A replayed REST call: an Observable of the recorded answer, and callable in case
    the live call returned a function (the call path then grows by one segment)."""

    def __init__(self, ledger: _RestLedger, key: tuple[Any, ...]) -> None:
        self._ledger = ledger
        self._key = key
        key_id = _key_id(key)

        def subscribe(
            observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return ledger.subscribe(key_id, observer)

        super().__init__(subscribe)

    def __call__(self, *args: Any, **kwargs: Any) -> _ReplayCall:
        return _ReplayCall(self._ledger, (*self._key, _segment("()", args, kwargs)))


class ReplayRest:
    """Stands in for the venue REST object: ``rest.depth_snapshot("BTCUSDT", 1000)``
    returns the answer recorded for that same call (same method, same arguments)."""

    def __init__(self, ledger: _RestLedger) -> None:
        self._ledger = ledger

    def __getattr__(self, name: str) -> Callable[..., _ReplayCall]:
        if name.startswith("__"):
            raise AttributeError(name)
        ledger = self._ledger

        def call(*args: Any, **kwargs: Any) -> _ReplayCall:
            return _ReplayCall(ledger, (_segment(name, args, kwargs),))

        return call


# -- replay: the connector ------------------------------------------------------------------


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
            super().__init__(config, scheduler=sched)
        except BaseException:
            reader.close()
            raise
        self._vscheduler = sched
        self._scheduler = sched
        self.hub = ReplayHub(self.venue.protocol, report_error=self._report)
        # what start() would set up, minus the network: the same snapshot pacing as live
        self._snapshot_gate = SnapshotGate(SNAPSHOTS_IN_FLIGHT, scheduler=sched)
        self._ledger = _RestLedger(sched)
        self._rest = ReplayRest(self._ledger)
        self._offsets: Subject[ClockOffset] = Subject()
        self._latest_offset: ClockOffset | None = None
        self._started = True
        self._clock_ms = self._start_ms = start_ms
        self._entries = 0
        self._ran = False
        self._wall = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def scheduler(self) -> VirtualTimeScheduler:
        """The virtual-time scheduler the replay advances (use it in your pipelines)."""
        return self._vscheduler

    async def start(self) -> None:
        """Nothing to connect: a replay is ready as soon as it is opened."""
        if self._stopped:
            raise RxConnectorError("this replay was stopped; open the recording again")

    async def stop(self) -> None:
        """End every feed without replaying the rest of the recording."""
        self.close()

    def close(self) -> None:
        """Synchronous :meth:`stop`: complete every feed and close the file."""
        if self._stopped:
            return
        self._stopped = True
        self.hub.complete()
        self._ledger.close()
        self._reader.close()
        self._states.on_completed()
        self._errors.on_completed()
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
            if self._stopped:
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
                if self._stopped:
                    break
        except BaseException:
            self.close()
            raise
        self._wall += time.perf_counter() - started
        return self._end()

    def _begin(self) -> None:
        if self._ran:
            raise RxConnectorError("a replay runs once; open the recording again to replay it")
        if self._stopped:
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
            self._ledger.request(entry[2], _key_id(entry[3]))
        elif kind in (Kind.REST_ITEM, Kind.REST_ERROR):
            self._ledger.event(entry[2], kind, decode_value(entry[3]))
        elif kind == Kind.REST_COMPLETE:
            self._ledger.event(entry[2], kind, None)
        elif kind == Kind.STATE:
            event = decode_value(entry[2])
            if isinstance(event, ConnectionEvent):
                self._on_state(event)
        elif kind == Kind.CLOCK:
            offset = decode_value(entry[2])
            if isinstance(offset, ClockOffset):
                self._latest_offset = offset
                self._offsets.on_next(offset)
        # Kind.END and unknown kinds (from a newer minor writer) carry nothing to apply

    def _end(self) -> ReplayStats:
        if not self._stopped:
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

    # -- Connector seams ------------------------------------------------------------------

    def _hub_for(self, topic: str) -> Any:
        if self._stopped:
            raise RxConnectorError("this replay is over: subscribe to feeds before run()/play()")
        return self.hub

    def _require_rest(self) -> Any:
        return self._rest

    def _account_streams(self) -> Any:
        raise NotSupportedError("replay", "account feeds (private streams are not recorded)")

    def _public(self, feed: str, *args: Any) -> Observable[Any]:
        return _on_scheduler(super()._public(feed, *args), self._vscheduler)

    def _gapless(self, feed: str, symbol: str) -> Observable[Trade]:
        return _on_scheduler(super()._gapless(feed, symbol), self._vscheduler)

    def order_book(self, symbol: str, depth: int = 20) -> Observable[OrderBook]:
        return _on_scheduler(super().order_book(symbol, depth), self._vscheduler)


def open(
    path: str | os.PathLike[str], scheduler: VirtualTimeScheduler | None = None
) -> ReplayConnector:
    """Open a recording for replay (see :class:`ReplayConnector`)."""
    return ReplayConnector(path, scheduler=scheduler)


if TYPE_CHECKING:

    def _satisfies(conn: ReplayConnector) -> ConnectorFeeds:
        """mypy checks here that a replay serves every feed a Connector declares."""
        return conn
