"""Typed marble diagrams and virtual-time runs for testing Rx pipelines.

reactivex ships the machinery (``TestScheduler``, ``marbles_testing``) but three things
make it awkward for users of a trading library, and this module fixes each of them:

* **Typing.** ``marbles_testing``'s ``cold``/``hot``/``exp`` are typed as if every
  argument were required, so ``cold("-a-|")`` does not type-check. Here ``cold(diagram,
  values)`` returns ``Observable[T]`` where ``T`` is the type of ``values``.
* **Traps.** reactivex's ``hot`` silently drops a marble in the first column, an
  unknown token in a diagram silently becomes a string, and an expected error matches
  any exception with the same message. Here the first column of ``hot`` is delivered,
  a token missing from ``values`` is an error at once, and :func:`expected` compares
  errors by type *and* message.
* **Models.** Strategies consume ``Ticker``/``Trade``/``BookTicker``/``OrderBook``
  objects, not letters. ``ticks``, ``trades_from``, ``book_tickers`` and ``books`` (in
  :mod:`rxconnector.testing.model_marbles`) turn a diagram plus a compact table into
  models whose ``event_time`` and ``received_at`` are the virtual time at which each one
  is emitted.

The time frame is reactivex's: one marble character is ``timespan`` (default 1.0)
virtual seconds, the subscription happens at t=200, and a ``cold`` diagram, a ``hot``
diagram and an :func:`expected` diagram all put their first column at t=200, so they
line up when written under each other::

    run = MarbleRun()
    prices = run.cold("-a-b-c-|", {"a": 1, "b": 5, "c": 9})
    result = run.start(prices.pipe(ops.filter(lambda p: p > 2)))
    assert result == run.expected("---b-c-|", {"b": 5, "c": 9})

Virtual time is ``TestScheduler`` time: ``debounce(2)`` waits two ticks, and
``now_ms(scheduler)`` is ``clock * 1000`` (tick 210 is epoch millisecond 210000).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from reactivex import Notification, Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.notification import OnError, OnNext
from reactivex.observable.marbles import parse
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.subject import Subject
from reactivex.testing import Recorded, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector._scheduling import now_ms, resolve_scheduler

__all__ = [
    "CREATED",
    "DISPOSED",
    "SUBSCRIBED",
    "ExpectedRecord",
    "HotStream",
    "MarbleRun",
    "Make",
    "Message",
    "TOKEN_PATTERN",
    "at_time",
    "cold",
    "emitted",
    "exp",
    "expected",
    "hot",
    "parse_diagram",
    "timed_cold",
]

_T = TypeVar("_T")
_V = TypeVar("_V")

#: reactivex.testing's conventional virtual times: the pipeline is built at 100,
#: subscribed at 200 and disposed at 1000.
CREATED = 100.0
SUBSCRIBED = 200.0
DISPOSED = 1000.0

#: An element token of a diagram: anything that is not structure (``-()|#,`` or space).
TOKEN_PATTERN = re.compile(r"[^\s\-()|#,]+")

#: Builds one model from a table entry and the virtual time of emission (epoch ms).
Make = Callable[[Any, float], Any]
Message = tuple[float, Notification[Any]]


# ------------------------------------------------------------------------------------
# diagrams
# ------------------------------------------------------------------------------------
def _as_number(token: str) -> int | float | None:
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return None


def _seconds(time: float | timedelta) -> float:
    return time.total_seconds() if isinstance(time, timedelta) else float(time)


def parse_diagram(
    diagram: str,
    values: Mapping[str, Any] | None,
    error: Exception | None,
    *,
    timespan: float,
    origin: float = 0.0,
    numbers_allowed: bool = True,
) -> list[Message]:
    """Diagram -> ``[(time, notification)]``, refusing tokens that ``values`` lacks.

    A numeric token may stand for itself unless ``numbers_allowed`` is False (tables of
    trades or quotes, where a bare number cannot mean anything). reactivex's parser
    casts numeric tokens before the lookup, so a key ``"1"`` would never match; both
    spellings are put in the lookup to make ``{"1": x}`` work.
    """
    lookup: dict[str | float, Any] = {}
    if values is not None:
        for key, value in values.items():
            lookup[key] = value
            number = _as_number(key)
            if number is not None:
                lookup[number] = value
        unknown = sorted(
            {
                t
                for t in TOKEN_PATTERN.findall(diagram)
                if t not in values and not (numbers_allowed and _as_number(t) is not None)
            }
        )
        if unknown:
            raise ValueError(
                f"marble diagram {diagram!r} uses {', '.join(map(repr, unknown))}, "
                f"which values does not define (it defines {sorted(values)!r})"
            )
    messages = parse(
        diagram,
        timespan=timespan,
        time_shift=origin,
        lookup=lookup,
        error=error,
        raise_stopped=True,
    )
    return [(_seconds(time), notification) for time, notification in messages]


def _emit(
    notification: Notification[Any],
    observer: abc.ObserverBase[Any],
    make: Make | None,
    scheduler: abc.SchedulerBase,
) -> None:
    if make is None or not isinstance(notification, OnNext):
        notification.accept(observer)
        return
    try:
        value = make(notification.value, now_ms(scheduler))
    except Exception as exc:  # a builder bug surfaces on the stream, not in the scheduler
        observer.on_error(exc)
        return
    observer.on_next(value)


def timed_cold(
    messages: Sequence[Message],
    make_factory: Callable[[], Make] | None,
    scheduler: abc.SchedulerBase | None,
) -> Observable[Any]:
    """A cold Observable emitting ``messages`` relative to each subscription.

    ``make_factory`` is called once per subscription, so builders with running state
    (a ticker's open/high/low, trade ids) start afresh for every subscriber.
    """

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        try:
            sched = resolve_scheduler(scheduler, scheduler_)
        except RuntimeError:
            raise RuntimeError(
                "a marble Observable needs a scheduler: subscribe with "
                "scheduler=TestScheduler() (MarbleRun.start and FakeConnector.run do)"
            ) from None
        make = make_factory() if make_factory is not None else None
        disposables = CompositeDisposable()
        for due, notification in messages:

            def action(
                sch: abc.SchedulerBase, _: Any = None, n: Notification[Any] = notification
            ) -> None:
                _emit(n, observer, make, sch)

            disposables.add(sched.schedule_relative(due, action))
        return disposables

    return Observable(subscribe)


def at_time(
    scheduler: VirtualTimeScheduler, time: float, action: Callable[[], None]
) -> abc.DisposableBase:
    """Run ``action`` at virtual ``time``, after everything already due at that instant.

    Why the extra hop: a ``TestScheduler`` runs actions due at the same time in the
    order they were scheduled. A test builds its sources first and subscribes later, so
    an event at t=200 would otherwise fire before a subscription made at t=200 and be
    lost (reactivex's ``hot`` drops its first column for exactly this reason). Hopping
    once more at ``time`` puts the event behind everything scheduled for that instant.
    It cannot overtake a subscription that is itself deferred at that instant (``merge``
    schedules its inner subscriptions): when in doubt, start diagrams with ``-``.
    """

    def run(_: abc.SchedulerBase, __: Any = None) -> None:
        action()

    def hop(sch: abc.SchedulerBase, _: Any = None) -> abc.DisposableBase:
        return sch.schedule(run)

    return scheduler.schedule_absolute(time, hop)


def _subscription(start: float) -> Subscription:
    # Subscription is annotated with int but compares with ==, and virtual time is a
    # float clock; reactivex's own Cold/HotObservable store the float the same way.
    return Subscription(cast(int, start))


class HotStream(Observable[_T]):
    """A hot Observable whose notifications happen at absolute virtual times.

    Every subscriber sees what is emitted while it is subscribed, nothing earlier; a
    subscriber arriving after the end gets the terminal notification at once (like a
    live feed that has closed). ``subscriptions`` records ``Subscription(start, end)``
    in virtual time, comparable with ``ReactiveTest.subscribe(start, end)``.
    """

    def __init__(
        self,
        scheduler: VirtualTimeScheduler,
        messages: Sequence[Message],
        make_factory: Callable[[], Make] | None = None,
    ) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.subscriptions: list[Subscription] = []
        self._subject: Subject[_T] = Subject()
        make = make_factory() if make_factory is not None else None
        for time, notification in messages:

            def action(n: Notification[Any] = notification) -> None:
                _emit(n, self._subject, make, scheduler)

            at_time(scheduler, time, action)

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        record = _subscription(self.scheduler.clock)
        self.subscriptions.append(record)
        inner = self._subject.subscribe(observer)

        def dispose() -> None:
            inner.dispose()
            if record.unsubscribe == sys.maxsize:
                record.unsubscribe = cast(int, self.scheduler.clock)

        return Disposable(dispose)


class ExpectedRecord(Recorded[_T]):
    """A ``Recorded`` that compares errors by type (``isinstance``) and message, from
    either side of ``==``.

    reactivex's ``OnError`` equality compares ``str(exception)`` only, so an expected
    ``ValueError("x")`` matches an actual ``KeyError("x")``... and a predicate record
    works only on the left of ``==``. Python tries a subclass's ``__eq__`` first, so an
    ``ExpectedRecord`` decides the comparison wherever it stands.
    """

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recorded):
            return NotImplemented
        if self.time != other.time:
            return False
        mine, theirs = self.value, other.value
        if isinstance(mine, OnError) and isinstance(theirs, OnError):
            return isinstance(theirs.exception, type(mine.exception)) and str(
                theirs.exception
            ) == str(mine.exception)
        return bool(mine == theirs)

    __hash__ = None  # type: ignore[assignment]  # mutable record, like Recorded


def _records(messages: Sequence[Message]) -> list[Recorded[Any]]:
    return [ExpectedRecord(cast(int, time), notification) for time, notification in messages]


# ------------------------------------------------------------------------------------
# generic helpers
# ------------------------------------------------------------------------------------
@overload
def cold(
    diagram: str,
    values: None = None,
    error: Exception | None = None,
    *,
    timespan: float = 1.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Any]: ...


@overload
def cold(
    diagram: str,
    values: Mapping[str, _T],
    error: Exception | None = None,
    *,
    timespan: float = 1.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[_T]: ...


def cold(
    diagram: str,
    values: Mapping[str, Any] | None = None,
    error: Exception | None = None,
    *,
    timespan: float = 1.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Any]:
    """A cold Observable that plays ``diagram`` from each subscription on.

    ``-`` is one ``timespan`` of silence, a token is looked up in ``values`` (numbers
    may stand for themselves), ``(a,b)`` emits together, ``|`` completes and ``#``
    fails with ``error``. Time comes from ``scheduler`` or the subscriber's scheduler.

    .. code-block:: text

        cold("-a--b-|")     subscribed at 200:  201: a, 204: b, 206: completed
    """
    return timed_cold(parse_diagram(diagram, values, error, timespan=timespan), None, scheduler)


@overload
def hot(
    diagram: str,
    values: None = None,
    error: Exception | None = None,
    *,
    scheduler: VirtualTimeScheduler,
    timespan: float = 1.0,
    origin: float = SUBSCRIBED,
) -> HotStream[Any]: ...


@overload
def hot(
    diagram: str,
    values: Mapping[str, _T],
    error: Exception | None = None,
    *,
    scheduler: VirtualTimeScheduler,
    timespan: float = 1.0,
    origin: float = SUBSCRIBED,
) -> HotStream[_T]: ...


def hot(
    diagram: str,
    values: Mapping[str, Any] | None = None,
    error: Exception | None = None,
    *,
    scheduler: VirtualTimeScheduler,
    timespan: float = 1.0,
    origin: float = SUBSCRIBED,
) -> HotStream[Any]:
    """A hot Observable on ``scheduler`` whose first column is virtual time ``origin``.

    Unlike ``reactivex.testing``'s ``hot``, a marble in the first column is delivered to
    a subscriber that subscribes at ``origin`` (see :func:`at_time`).

    .. code-block:: text

        hot("a-b-|")        any subscriber:     200: a, 202: b, 204: completed
    """
    messages = parse_diagram(diagram, values, error, timespan=timespan, origin=origin)
    return HotStream(scheduler, messages)


@overload
def expected(
    diagram: str,
    values: None = None,
    error: Exception | None = None,
    *,
    timespan: float = 1.0,
    origin: float = SUBSCRIBED,
) -> list[Recorded[Any]]: ...


@overload
def expected(
    diagram: str,
    values: Mapping[str, _T],
    error: Exception | None = None,
    *,
    timespan: float = 1.0,
    origin: float = SUBSCRIBED,
) -> list[Recorded[_T]]: ...


def expected(
    diagram: str,
    values: Mapping[str, Any] | None = None,
    error: Exception | None = None,
    *,
    timespan: float = 1.0,
    origin: float = SUBSCRIBED,
) -> list[Recorded[Any]]:
    """The records a pipeline should produce, as a diagram whose first column is ``origin``.

    Compare with ``==`` against ``MarbleRun.start`` / ``FakeConnector.run`` results
    (either side). ``#`` expects ``error`` by type and message.
    """
    return _records(parse_diagram(diagram, values, error, timespan=timespan, origin=origin))


#: Short alias of :func:`expected`, as in ``reactivex.testing.marbles``.
exp = expected


def emitted(records: Sequence[Recorded[_T]]) -> list[_T]:
    """Just the values of the ``on_next`` records, when the times do not matter."""
    return [cast(_T, r.value.value) for r in records if isinstance(r.value, OnNext)]


class MarbleRun:
    """One virtual-time test: a ``TestScheduler`` and diagram helpers in its time frame.

    Use it directly or as a context manager; ``start`` runs the scheduler once and
    returns what the pipeline emitted, ready to compare with ``expected``::

        with MarbleRun() as run:
            src = run.hot("-a-b-|", {"a": 1, "b": 2})
            assert run.start(src.pipe(ops.map(lambda x: x * 10))) == run.expected(
                "-x-y-|", {"x": 10, "y": 20}
            )
    """

    def __init__(
        self,
        scheduler: TestScheduler | None = None,
        *,
        timespan: float = 1.0,
        created: float = CREATED,
        subscribed: float = SUBSCRIBED,
        disposed: float = DISPOSED,
    ) -> None:
        if not 0 < created < subscribed < disposed:
            raise ValueError("need 0 < created < subscribed < disposed")
        self.scheduler = scheduler if scheduler is not None else TestScheduler()
        self.timespan = timespan
        self.created = created
        self.subscribed = subscribed
        self.disposed = disposed
        self._started = False

    def __enter__(self) -> MarbleRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    @overload
    def cold(
        self, diagram: str, values: None = None, error: Exception | None = None
    ) -> Observable[Any]: ...

    @overload
    def cold(
        self, diagram: str, values: Mapping[str, _T], error: Exception | None = None
    ) -> Observable[_T]: ...

    def cold(
        self, diagram: str, values: Mapping[str, Any] | None = None, error: Exception | None = None
    ) -> Observable[Any]:
        """:func:`cold` with this run's timespan."""
        return cold(diagram, values, error, timespan=self.timespan)

    @overload
    def hot(
        self, diagram: str, values: None = None, error: Exception | None = None
    ) -> HotStream[Any]: ...

    @overload
    def hot(
        self, diagram: str, values: Mapping[str, _T], error: Exception | None = None
    ) -> HotStream[_T]: ...

    def hot(
        self, diagram: str, values: Mapping[str, Any] | None = None, error: Exception | None = None
    ) -> HotStream[Any]:
        """:func:`hot` on this run's scheduler, first column at the subscription time."""
        return hot(
            diagram,
            values,
            error,
            scheduler=self.scheduler,
            timespan=self.timespan,
            origin=self.subscribed,
        )

    @overload
    def expected(
        self, diagram: str, values: None = None, error: Exception | None = None
    ) -> list[Recorded[Any]]: ...

    @overload
    def expected(
        self, diagram: str, values: Mapping[str, _T], error: Exception | None = None
    ) -> list[Recorded[_T]]: ...

    def expected(
        self, diagram: str, values: Mapping[str, Any] | None = None, error: Exception | None = None
    ) -> list[Recorded[Any]]:
        """:func:`expected` in this run's time frame."""
        return expected(diagram, values, error, timespan=self.timespan, origin=self.subscribed)

    exp = expected

    def start(self, pipeline: Observable[_T] | Callable[[], Observable[_T]]) -> list[Recorded[_T]]:
        """Build (at ``created``), subscribe (at ``subscribed``, with this scheduler as the
        subscribe-time scheduler), dispose (at ``disposed``) and return the records.

        A run starts once: virtual time only moves forward.
        """
        if self._started:
            raise RuntimeError("a MarbleRun can start only once; make a new one")
        self._started = True
        factory = pipeline if callable(pipeline) else (lambda: pipeline)
        observer = self.scheduler.start(
            factory, created=self.created, subscribed=self.subscribed, disposed=self.disposed
        )
        return observer.messages
