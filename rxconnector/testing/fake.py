"""FakeConnector: the Connector's surface in virtual time, for testing strategies.

A strategy is a function of a connector that returns an Observable. To unit-test it
without a socket, hand it a :class:`FakeConnector` instead: the test says what each
feed emits and when (a marble diagram, a list of timed values, or any Observable),
what each REST call answers (a value, an error, a function of the arguments, after
a virtual delay), then runs the strategy and compares what it emitted with a
diagram::

    fake = FakeConnector()
    fake.set_feed("book_ticker", "BTCUSDT", book_tickers("-a-b-|", {"a": (100, 101), ...}))
    assert fake.run(spread_alerts(fake)) == expected("-----x|", {"x": Decimal(7)})

Time model (the one of ``reactivex.testing``): everything runs on one
``TestScheduler``; :meth:`FakeConnector.run` subscribes the strategy at ``origin``
(t=200) with that scheduler, so ``debounce(2)`` and friends in the strategy wait two
*virtual* seconds. Feed diagrams start at ``origin``; numeric times (``at=``, timed
lists) are absolute virtual times, like ``ReactiveTest.on_next(210, x)``. ``now()`` is
the virtual clock in epoch milliseconds (tick 210 is 210000) plus the last clock offset.

Feeds behave like the real ones: live and shared. A feed is started once at
``origin`` whoever subscribes, every subscriber sees the same events from the moment
it subscribes, and all feeds complete when the connector stops. REST calls are cold,
like the real ones: nothing is "sent" (recorded) until the Observable is subscribed,
and each subscription is one call.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.notification import Notification, OnNext
from reactivex.subject import BehaviorSubject, Subject
from reactivex.testing import Recorded, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector._scheduling import now_ms
from rxconnector.errors import NotScriptedError, RxConnectorError
from rxconnector.market_data import FEED_METHODS, ConnectorFeeds, Trading
from rxconnector.models import (
    BreakerState,
    ClockOffset,
    ConnectionEvent,
    ConnectionState,
)
from rxconnector.testing.factories import make_clock_offset, make_connection_event
from rxconnector.testing.fake_rest import ScriptedRest
from rxconnector.testing.marbles import (
    CREATED,
    DISPOSED,
    SUBSCRIBED,
    HotStream,
    at_time,
    hot,
)

__all__ = ["FEEDS", "FakeConnector"]

_T = TypeVar("_T")

#: Feed methods of the Connector surface, in the order of the contract
#: (:data:`rxconnector.market_data.FEED_METHODS`).
FEEDS = FEED_METHODS

_FAKE_ID = "fake-1"
_FAKE_URL = "wss://fake.invalid/ws"
_FeedKey = tuple[str, tuple[Any, ...]]


def _replaying(subject: Subject[_T], latest: Callable[[], list[_T]]) -> Observable[_T]:
    """``subject``, with ``latest()`` delivered first and synchronously to each new
    subscriber (no scheduler hop, so nothing pushed meanwhile can slip between)."""

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if not subject.is_stopped:
            for value in latest():
                observer.on_next(value)
        return subject.subscribe(observer)

    return Observable(subscribe)


def _describe(key: _FeedKey) -> str:
    feed, args = key
    return f"{feed}({', '.join(map(repr, args))})"


def _hint_args(args: tuple[Any, ...]) -> str:
    return "".join(f", {arg!r}" for arg in args)


class FakeConnector(ScriptedRest, ConnectorFeeds):
    """The Connector's feeds, REST calls and health streams, scripted by a test.

    Args:
        scheduler: The ``TestScheduler`` everything runs on (a new one by default).
        strict: If True (default), asking for a feed that was not set raises
            :class:`~rxconnector.errors.NotScriptedError` naming the ``set_feed`` call
            to add, and an unscripted REST call fails the same way. If False, unset
            feeds are ``never()`` (a quiet market) and unscripted calls never answer.
        timespan: Virtual seconds per marble character in feed diagrams.
        origin: Virtual time at which :meth:`run` subscribes and feeds start.
    """

    def __init__(
        self,
        scheduler: TestScheduler | None = None,
        *,
        strict: bool = True,
        timespan: float = 1.0,
        origin: float = SUBSCRIBED,
    ) -> None:
        if origin <= 0:
            raise ValueError("origin must be a positive virtual time")
        ScriptedRest.__init__(
            self, scheduler if scheduler is not None else TestScheduler(), strict=strict
        )
        self.timespan = timespan
        self.origin = origin
        self._feeds: dict[_FeedKey, Observable[Any]] = {}
        self._feed_subscriptions: dict[_FeedKey, list[Subscription]] = {}
        self._connections: list[abc.DisposableBase] = []
        self._connection_state: Subject[ConnectionEvent] = Subject()
        self._latest_states: dict[str, ConnectionEvent] = {}
        self._errors: Subject[Exception] = Subject()
        self._clock: Subject[ClockOffset] = Subject()
        self._last_clock: ClockOffset | None = None
        self._breaker: BehaviorSubject[BreakerState] = BehaviorSubject(BreakerState.CLOSED)
        self._stopped_flag: BehaviorSubject[bool] = BehaviorSubject(False)
        self._stop_signal = self._stopped_flag.pipe(ops.filter(bool))
        self._started = False
        self._stopped = False
        self._ran = False

    # --------------------------------------------------------------------------------
    # time
    # --------------------------------------------------------------------------------
    @property
    def scheduler(self) -> TestScheduler:
        """The scheduler feeds run on; pass it to time operators or subscribe with it."""
        return self._scheduler

    def now(self) -> int:
        """Exchange time in ms: the virtual clock plus the last offset set by :meth:`set_clock`."""
        offset = self._last_clock.offset_ms if self._last_clock is not None else 0.0
        return int(now_ms(self._scheduler) + offset)

    def advance_to(self, time: float) -> None:
        """Run everything scheduled up to virtual ``time`` (for tests that subscribe by hand)."""
        self._scheduler.advance_to(time)

    def run(
        self,
        pipeline: Observable[_T] | Callable[[], Observable[_T]],
        *,
        until: float = DISPOSED,
    ) -> list[Recorded[_T]]:
        """Subscribe ``pipeline`` at ``origin`` on the scheduler, run until ``until``,
        dispose it and return its records (compare with ``marbles.expected``).

        A fake runs once: virtual time only moves forward.
        """
        if self._ran:
            raise RuntimeError("FakeConnector.run can be called once; make a new fake")
        if until <= self.origin:
            raise ValueError(f"until ({until}) must be after origin ({self.origin})")
        self._ran = True
        factory = pipeline if callable(pipeline) else (lambda: pipeline)
        observer = self._scheduler.start(
            factory,
            created=min(CREATED, self.origin / 2),
            subscribed=self.origin,
            disposed=until,
        )
        return observer.messages

    # --------------------------------------------------------------------------------
    # setting feeds up
    # --------------------------------------------------------------------------------
    def set_feed(
        self,
        feed: str,
        *args: Any,
        values: Mapping[str, Any] | None = None,
        error: Exception | None = None,
        live: bool = True,
        **feed_kwargs: Any,
    ) -> None:
        """Say what ``feed(*args)`` emits; the LAST positional argument is the source.

        The source is one of:

        * a marble diagram (``str``) with ``values`` and ``error``, first column at
          ``origin``: ``set_feed("ticker", "BTCUSDT", "-a-b-|", values={...})``;
        * a list of ``(time, value)`` pairs or ``Recorded`` (``on_next(210, x)``), at
          absolute virtual times;
        * any Observable, e.g. ``marbles.ticks(...)``. With ``live=True`` (default)
          it is started once at ``origin`` and shared, like a real feed; with
          ``live=False`` it is handed to each subscriber as it is (a cold source then
          plays again for every subscriber, from its subscription on). Sources that
          are already hot should use ``live=False``.

        Feed arguments with defaults may be given by keyword (``levels=5``); omitted
        ones take the method's default, so ``set_feed("depth", "BTCUSDT", ...)`` is
        what ``depth("BTCUSDT")`` (20 levels) returns.
        """
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}; feeds are {', '.join(FEEDS)}")
        if not args:
            raise TypeError(
                f"set_feed({feed!r}, ...) needs a source after the feed's arguments, "
                f"e.g. set_feed({feed!r}, 'BTCUSDT', '-a-b-|', values={{...}})"
            )
        *feed_args, source = args
        key = self._key(feed, tuple(feed_args), feed_kwargs)
        self._feeds[key] = self._as_source(source, values, error, live)

    def feed_subscriptions(self, feed: str, *args: Any, **kwargs: Any) -> list[Subscription]:
        """When the strategy subscribed to ``feed(*args)`` and when it let go.

        Compare with ``ReactiveTest.subscribe(start, end)``; an open subscription ends
        at ``sys.maxsize`` ("Infinite").
        """
        return list(self._feed_subscriptions.get(self._key(feed, args, kwargs), []))

    def _key(self, feed: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _FeedKey:
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}; feeds are {', '.join(FEEDS)}")
        signature = inspect.signature(getattr(self, feed))
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            params = ", ".join(
                str(p.replace(annotation=p.empty)) for p in signature.parameters.values()
            )
            raise TypeError(f"{feed}({params}): {exc}") from None
        bound.apply_defaults()
        return feed, tuple(bound.arguments.values())

    def _as_source(
        self,
        source: object,
        values: Mapping[str, Any] | None,
        error: Exception | None,
        live: bool,
    ) -> Observable[Any]:
        if isinstance(source, str):
            return hot(
                source,
                values,
                error,
                scheduler=self._scheduler,
                timespan=self.timespan,
                origin=self.origin,
            )
        if values is not None or error is not None:
            raise TypeError("values= and error= only go with a marble diagram source")
        if isinstance(source, Observable):
            if not live or isinstance(source, HotStream):
                return source
            return self._start_live(source)
        if isinstance(source, Sequence):
            return HotStream(self._scheduler, [self._timed(item) for item in source])
        raise TypeError(
            "a feed source is a marble diagram, a list of (time, value) or an Observable, "
            f"not {type(source).__name__}"
        )

    @staticmethod
    def _timed(item: object) -> tuple[float, Notification[Any]]:
        if isinstance(item, Recorded):
            if not isinstance(item.value, Notification):
                raise TypeError("a predicate record cannot be emitted by a feed")
            return float(item.time), item.value
        if isinstance(item, tuple) and len(item) == 2:
            time, value = item
            return float(time), OnNext(value)
        raise TypeError(f"expected (time, value) or a Recorded, got {item!r}")

    def _start_live(self, source: Observable[Any]) -> Observable[Any]:
        """Publish ``source`` and connect it at ``origin``: one shared run, like a feed."""
        connectable = source.pipe(ops.publish())

        def connect(_: abc.SchedulerBase, __: Any = None) -> None:
            if not self._stopped:
                connection = connectable.connect(scheduler=self._scheduler)
                if connection is not None:
                    self._connections.append(connection)

        self._scheduler.schedule_absolute(max(self.origin, self._scheduler.clock), connect)
        return connectable

    # --------------------------------------------------------------------------------
    # feeds (the Connector surface)
    # --------------------------------------------------------------------------------
    def _feed(self, feed: str, *args: Any) -> Observable[Any]:
        key: _FeedKey = (feed, args)
        source = self._feeds.get(key)
        if source is None:
            if self.strict:
                known = ", ".join(_describe(k) for k in self._feeds) or "none"
                raise NotScriptedError(
                    feed,
                    f"FakeConnector has no feed {_describe(key)} (feeds set: {known})",
                    f"fake.set_feed({feed!r}{_hint_args(args)}, <diagram or Observable>)",
                )
            source = reactivex.never()
        return self._tracked(key, source)

    def _tracked(self, key: _FeedKey, source: Observable[Any]) -> Observable[Any]:
        records = self._feed_subscriptions.setdefault(key, [])
        until_stopped = source.pipe(ops.take_until(self._stop_signal))

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            record = Subscription(cast(int, self._scheduler.clock))
            records.append(record)
            inner = until_stopped.subscribe(observer, scheduler=scheduler_ or self._scheduler)

            def dispose() -> None:
                inner.dispose()
                if record.unsubscribe == sys.maxsize:
                    record.unsubscribe = cast(int, self._scheduler.clock)

            return Disposable(dispose)

        return Observable(subscribe)

    # The feed methods themselves (ticker ... account_events) are not written here:
    # one per name in FEED_METHODS is made from its declaration below the class, so the
    # fake's signatures are the Connector's by construction.

    # --------------------------------------------------------------------------------
    # health
    # --------------------------------------------------------------------------------
    @property
    def connection_state(self) -> Observable[ConnectionEvent]:
        """Connection events pushed with :meth:`set_connection_state`; like the real
        connector, a new subscriber first gets the latest event of each connection."""
        return _replaying(self._connection_state, lambda: list(self._latest_states.values()))

    @property
    def errors(self) -> Observable[Exception]:
        """Non-fatal problems pushed with :meth:`emit_error` (hot, no replay)."""
        return self._errors

    @property
    def clock(self) -> Observable[ClockOffset]:
        """Clock measurements pushed with :meth:`set_clock`; a subscriber gets the latest."""

        return _replaying(
            self._clock, lambda: [self._last_clock] if self._last_clock is not None else []
        )

    @property
    def breaker_state(self) -> Observable[BreakerState]:
        """Breaker state: ``CLOSED`` at first, then what :meth:`set_breaker_state` pushes."""
        return self._breaker

    def _push(self, at: float | None, action: Callable[[], None]) -> None:
        if at is None:
            action()
        else:
            at_time(self._scheduler, at, action)

    def set_connection_state(
        self,
        state: ConnectionState | ConnectionEvent,
        *,
        at: float | None = None,
        attempt: int = 0,
        delay: float = 0.0,
        reason: str = "",
    ) -> None:
        """Emit a connection event now or at virtual time ``at``."""

        def emit() -> None:
            event = (
                state
                if isinstance(state, ConnectionEvent)
                else make_connection_event(
                    state,
                    connection_id=_FAKE_ID,
                    url=_FAKE_URL,
                    time=now_ms(self._scheduler),
                    attempt=attempt,
                    delay=delay,
                    reason=reason,
                )
            )
            self._on_state(event)

        self._push(at, emit)

    def _on_state(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.CLOSED:
            self._latest_states.pop(event.connection_id, None)
        else:
            self._latest_states[event.connection_id] = event
        self._connection_state.on_next(event)

    def simulate_reconnect(
        self, at: float, *, downtime: float = 1.0, reason: str = "connection lost"
    ) -> None:
        """``RECONNECTING`` (attempt 1) at ``at`` and ``CONNECTED`` ``downtime`` later.

        Only the health stream changes: what the feeds do around it (a silent gap,
        re-delivered or backfilled data) is whatever their diagrams say.
        """
        self.set_connection_state(
            ConnectionState.RECONNECTING, at=at, attempt=1, delay=downtime, reason=reason
        )
        self.set_connection_state(ConnectionState.CONNECTED, at=at + downtime)

    def emit_error(self, error: Exception, *, at: float | None = None) -> None:
        """Report a non-fatal problem on ``errors`` now or at virtual time ``at``."""
        self._push(at, lambda: self._errors.on_next(error))

    def set_clock(self, offset: float | ClockOffset, *, at: float | None = None) -> None:
        """Publish a clock measurement (``offset_ms`` or a ``ClockOffset``); :meth:`now`
        follows it from then on."""

        def emit() -> None:
            local = now_ms(self._scheduler)
            measured = (
                offset
                if isinstance(offset, ClockOffset)
                else make_clock_offset(
                    float(offset), server_time=int(local + offset), measured_at=local
                )
            )
            self._last_clock = measured
            self._clock.on_next(measured)

        self._push(at, emit)

    def set_breaker_state(self, state: BreakerState, *, at: float | None = None) -> None:
        """Publish a circuit-breaker state now or at virtual time ``at``."""
        self._push(at, lambda: self._breaker.on_next(state))

    # --------------------------------------------------------------------------------
    # lifecycle
    # --------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._started and not self._stopped

    async def start(self) -> None:
        """Mark the fake started (feeds work without it: there is nothing to connect)."""
        if self._stopped:
            raise RxConnectorError("this FakeConnector was stopped; create a new one")
        self._started = True

    async def stop(self) -> None:
        """Complete every feed and health stream, like the real connector's stop."""
        self._shutdown()

    def stop_at(self, at: float) -> None:
        """Stop at virtual time ``at`` (to test what a strategy does when feeds end)."""
        at_time(self._scheduler, at, self._shutdown)

    async def __aenter__(self) -> FakeConnector:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._on_state(
            make_connection_event(
                ConnectionState.CLOSED,
                connection_id=_FAKE_ID,
                url=_FAKE_URL,
                time=now_ms(self._scheduler),
                reason="stopped",
            )
        )
        self._stopped_flag.on_next(True)
        for connection in self._connections:
            connection.dispose()
        self._connections.clear()
        for subject in (self._connection_state, self._errors, self._clock, self._breaker):
            subject.on_completed()


def _scripted_feed(name: str) -> Callable[..., Observable[Any]]:
    """``FakeConnector.<name>``: the scripted source of ``name(*args)`` (what
    :meth:`FakeConnector.set_feed` said), with the declared signature and doc."""
    declared = getattr(ConnectorFeeds, name)
    signature = inspect.signature(declared)

    def feed(self: FakeConnector, *args: Any, **kwargs: Any) -> Observable[Any]:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        return self._feed(name, *tuple(bound.arguments.values())[1:])

    feed.__name__ = name
    feed.__qualname__ = f"FakeConnector.{name}"
    feed.__doc__ = declared.__doc__
    setattr(feed, "__signature__", signature)  # noqa: B010 - help() and binding read it
    return feed


for _name in FEED_METHODS:
    setattr(FakeConnector, _name, _scripted_feed(_name))
del _name


if TYPE_CHECKING:

    def _satisfies(conn: FakeConnector) -> ConnectorFeeds:
        """mypy checks here that the fake serves every feed a Connector declares."""
        return conn

    def _trades(conn: FakeConnector) -> Trading:
        """mypy checks here that the fake answers every REST call a Connector declares."""
        return conn
