"""A safe, resettable, isolating multicast (the implementation behind ``operators.share``).

``reactivex.operators.share()`` is the wrong tool for a shared exchange connection
(REACTIVEX.md §2.4/§2.5): its single ``Subject`` is created once, so after the upstream
errors or completes every later subscriber gets the stale terminal event and nothing
reconnects; and an exception raised in one subscriber's ``on_next`` climbs back into the
producer, which then broadcasts that subscriber's bug to everybody and ends the feed.

Here every connection gets its own :class:`_Hub`, created when the first subscriber
arrives while there is no live connection, and each observer is called inside its own
``try`` so that a faulty one is detached and reported while the others keep receiving.

We do not subclass ``reactivex.subject.Subject``: the hub owns its observer list, so the
only reactivex behaviour relied on is that ``Observable.subscribe`` wraps observers in an
``AutoDetachObserver`` that re-raises from ``on_next`` and goes quiet once disposed. That
is pinned by ``tests/operators/test_share.py::TestReactivexInternalsPinned``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable
from reactivex.observer.autodetachobserver import AutoDetachObserver as _AutoDetachObserver

from rxconnector.log import get_logger

__all__ = [
    "UNWRAPPED_SUBSCRIBE",
    "Stage",
    "StageObserver",
    "isolate_",
    "share_",
    "shared_deferred",
    "shared_stage",
    "subscribe_observer",
]

_T = TypeVar("_T")
_S = TypeVar("_S")

_log = get_logger(component="share")


def _log_subscriber_error(error: Exception) -> None:
    _log.error("subscriber raised; it was detached from the shared stream", exc_info=error)


def _safe_report(report: Callable[[Exception], None], error: Exception) -> None:
    try:
        report(error)
    except Exception:  # a broken reporter must not break the stream
        _log.exception("on_subscriber_error raised", original=repr(error))


class _Hub(abc.ObserverBase[_T]):
    """One upstream connection and the observers currently attached to it.

    ``observers`` is a tuple replaced on every change (copy-on-write), so delivery
    iterates without holding the lock and a subscriber may (un)subscribe from inside
    ``on_next``. ``len(observers)`` is the reference count.
    """

    __slots__ = ("_lock", "_on_idle", "_report", "done", "observers", "upstream")

    def __init__(
        self,
        report: Callable[[Exception], None],
        on_idle: Callable[[_Hub[_T]], None],
    ) -> None:
        self._lock = threading.RLock()
        self._report = report
        self._on_idle = on_idle
        self.observers: tuple[abc.ObserverBase[_T], ...] = ()
        self.upstream = SingleAssignmentDisposable()
        #: True once the upstream terminated or was disconnected: the hub is never reused.
        self.done = False

    # -- membership ----------------------------------------------------------------
    def add(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            self.observers = (*self.observers, observer)

    def remove(self, observer: abc.ObserverBase[_T]) -> None:
        """Detach ``observer``; disconnect the upstream when it was the last one."""
        with self._lock:
            before = self.observers
            after = tuple(o for o in before if o is not observer)
            if len(after) == len(before):
                return  # already gone (disposed twice, or detached after an error)
            self.observers = after
            idle = not after and not self.done
            if idle:
                self.done = True
        if idle:
            self._on_idle(self)
            self.upstream.dispose()

    def _detach_faulty(self, observer: abc.ObserverBase[_T], error: Exception) -> None:
        _safe_report(self._report, error)
        # Stop the observer too (AutoDetachObserver.dispose), so it ignores anything a
        # snapshot taken before the detach might still hand it; this also removes it.
        dispose = getattr(observer, "dispose", None)
        if callable(dispose):
            try:
                dispose()
            except Exception as exc:
                _safe_report(self._report, exc)
        self.remove(observer)

    # -- upstream observer ---------------------------------------------------------
    def on_next(self, value: _T) -> None:
        for observer in self.observers:
            try:
                if type(observer) is _AutoDetachObserver:
                    # ``AutoDetachObserver.on_next`` inlined (one Python call less per
                    # value and subscriber): exactly its body, pinned by
                    # tests/operators/test_share.py::TestReactivexInternalsPinned. Its
                    # ``is_stopped`` is what keeps a subscriber disposed meanwhile (by
                    # an earlier one, during this value) from getting it.
                    if not observer.is_stopped:
                        observer._on_next(value)
                else:
                    observer.on_next(value)
            except Exception as exc:
                self._detach_faulty(observer, exc)

    def _terminate(self) -> tuple[abc.ObserverBase[_T], ...]:
        with self._lock:
            observers, self.observers = self.observers, ()
            self.done = True
        self._on_idle(self)
        return observers

    def on_error(self, error: Exception) -> None:
        for observer in self._terminate():
            try:
                observer.on_error(error)
            except Exception as exc:
                _safe_report(self._report, exc)

    def on_completed(self) -> None:
        for observer in self._terminate():
            try:
                observer.on_completed()
            except Exception as exc:
                _safe_report(self._report, exc)


#: Connects a fresh :class:`_Hub` to its upstream; returns the upstream subscription.
_Connect = Callable[[_Hub[_T], abc.SchedulerBase | None], abc.DisposableBase]


class _SharedSource(Generic[_T]):
    """Ref-counted access to an upstream through at most one live :class:`_Hub`."""

    __slots__ = ("_connect", "_hub", "_lock", "_report")

    def __init__(self, connect: _Connect[_T], report: Callable[[Exception], None]) -> None:
        self._connect = connect
        self._report = report
        self._lock = threading.RLock()
        self._hub: _Hub[_T] | None = None

    def _forget(self, hub: _Hub[_T]) -> None:
        with self._lock:
            if self._hub is hub:
                self._hub = None

    def subscribe(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        with self._lock:
            hub = self._hub
            connect = hub is None or hub.done
            if connect:
                hub = self._hub = _Hub(self._report, self._forget)
            assert hub is not None
            # Attach before connecting so values a synchronous source emits during
            # connect reach the first subscriber.
            hub.add(observer)
        if connect:
            hub.upstream.disposable = self._connect(hub, scheduler)
        return Disposable(lambda: hub.remove(observer))


def share_(
    on_subscriber_error: Callable[[Exception], None] | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    report = on_subscriber_error or _log_subscriber_error

    def _share(source: Observable[_T]) -> Observable[_T]:
        def connect(hub: _Hub[_T], scheduler: abc.SchedulerBase | None) -> abc.DisposableBase:
            return source.subscribe(
                hub.on_next, hub.on_error, hub.on_completed, scheduler=scheduler
            )

        return Observable(_SharedSource(connect, report).subscribe)

    return _share


#: The method name by which an Observable vouches for ``AutoDetachObserver``'s guarantees
#: itself (see :func:`subscribe_observer`): ``source.<name>(observer, scheduler)``.
UNWRAPPED_SUBSCRIBE = "subscribe_unwrapped"


class StageObserver(Generic[_T]):
    """An observer made of three callables, called directly (no wrapper, no checks).

    Only for upstreams that keep the observer contract themselves (values serialised,
    nothing after a terminal event or after disposal): see :func:`subscribe_observer`.
    ``on_message`` (optional): the same as ``on_next`` for a ``(received_at, payload)``
    message, taking it as two arguments; an upstream that knows it (the subscription
    hub's topic feeds) may call it instead of building the tuple.
    """

    __slots__ = ("on_completed", "on_error", "on_message", "on_next")

    def __init__(
        self,
        on_next: Callable[[_T], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        on_message: Callable[[float, Any], None] | None = None,
    ) -> None:
        self.on_next = on_next
        self.on_error = on_error
        self.on_completed = on_completed
        self.on_message = on_message


def subscribe_observer(
    source: Observable[_T], observer: StageObserver[_T], scheduler: abc.SchedulerBase | None
) -> abc.DisposableBase:
    """Subscribe ``observer`` to ``source``, without an ``AutoDetachObserver`` when the
    source vouches for its guarantees.

    ``Observable.subscribe`` wraps every observer in an ``AutoDetachObserver``: one more
    Python call per value, to make sure nothing arrives after a terminal event or after
    disposal and that a failing subscribe becomes ``on_error``. A source that already
    guarantees all of that (the subscription hub's topic feeds: they take an observer
    out before telling it about a terminal event, never deliver to a detached observer,
    and route a failing attach to ``on_error``) offers :data:`UNWRAPPED_SUBSCRIBE`; any
    other source is subscribed the ordinary way.
    """
    unwrapped = getattr(source, UNWRAPPED_SUBSCRIBE, None)
    if unwrapped is not None:
        subscription: abc.DisposableBase = unwrapped(observer, scheduler)
        return subscription
    return source.subscribe(
        observer.on_next, observer.on_error, observer.on_completed, scheduler=scheduler
    )


#: ``stage(multicast, scheduler) -> (upstream observer, extra disposable or None)``: builds,
#: per connection, the synchronous processing between the upstream and the multicast.
Stage = Callable[
    [abc.ObserverBase[_T], "abc.SchedulerBase | None"],
    "tuple[StageObserver[Any], abc.DisposableBase | None]",
]


def shared_deferred(
    factory: Callable[[abc.SchedulerBase | None], Observable[_S]],
    on_subscriber_error: Callable[[Exception], None] | None = None,
    step: Callable[[Callable[[_T], None]], Callable[[_S], None]] | None = None,
) -> Observable[_T]:
    """``defer(factory).pipe(<step>, share())`` with up to three Rx hops fewer per value.

    .. marble::
        :alt: shared_deferred

        factory() ->  --a--b--c--|
        [ shared_deferred(factory, step=x -> x, x) ]
        sub 1:        --a-a-b-b-c-c--|

    ``factory`` is called when the first subscriber connects (again after a terminal
    event, like :func:`share_`), with that subscriber's scheduler; if it raises, the
    subscribers get ``on_error``. ``step`` (optional) receives the multicast's own
    ``on_next`` and returns the ``on_next`` given to the upstream: a synchronous
    transformation emitting zero or more values per upstream value (a parser), run
    once per value for all subscribers. It must not raise (report and drop instead):
    an exception escapes into the upstream, whose contract then ends the stream.

    Why it is faster: ``defer`` and every ``pipe`` step subscribe through
    ``Observable.subscribe``, which wraps the observer in an ``AutoDetachObserver``
    (one extra call per value each). Here the upstream is subscribed once, through
    :func:`subscribe_observer` (its own ``Observable.subscribe``, keeping that wrapper
    and its guarantees, unless the upstream keeps them itself), and ``step`` feeds the
    multicast directly. Serialisation is unchanged: values arrive on the upstream's
    thread, one at a time, and the multicast isolates each subscriber as :func:`share_`.
    """

    def stage(
        hub: abc.ObserverBase[_T], _scheduler: abc.SchedulerBase | None
    ) -> tuple[StageObserver[Any], abc.DisposableBase | None]:
        on_next: Callable[[Any], None] = hub.on_next if step is None else step(hub.on_next)
        return StageObserver(on_next, hub.on_error, hub.on_completed), None

    return shared_stage(factory, stage, on_subscriber_error)


def shared_stage(
    factory: Callable[[abc.SchedulerBase | None], Observable[_S]],
    stage: Stage[_T],
    on_subscriber_error: Callable[[Exception], None] | None = None,
) -> Observable[_T]:
    """:func:`shared_deferred` with a whole synchronous stage between the upstream and
    the multicast: ``stage(multicast, scheduler)`` is called per connection and returns
    the observer to subscribe to ``factory(scheduler)`` (its ``on_next``,
    ``on_error``, ``on_completed`` are called directly) and a disposable to dispose with
    the connection (timers or requests the stage owns), or ``None``.

    .. marble::
        :alt: shared_stage

        factory() ->  --a--b--R--c--|
        [ shared_stage(factory, stage: a stateful operator, e.g. gap filling) ]
        sub 1:        --a--b--(xy)--c--|

    This is how a stateful operator (the trade feeds' gap filling) runs inside the
    connection's fan-out instead of as another subscribed Observable with its own
    multicast: the values pass the stage once, for every subscriber, and reach them
    through one isolating multicast. A stage must not raise from ``on_next`` (report
    and drop instead); an exception raised while building it goes to the subscribers'
    ``on_error``, like a raising ``factory``.
    """
    report = on_subscriber_error or _log_subscriber_error

    def connect(hub: _Hub[_T], scheduler: abc.SchedulerBase | None) -> abc.DisposableBase:
        try:
            source = factory(scheduler)
            upstream, owned = stage(hub, scheduler)
        except Exception as exc:  # like ``reactivex.defer``: the error goes downstream
            hub.on_error(exc)
            return Disposable()
        subscription = subscribe_observer(source, upstream, scheduler)
        return subscription if owned is None else CompositeDisposable(subscription, owned)

    return Observable(_SharedSource(connect, report).subscribe)


class _IsolatedObserver(Generic[_T]):
    """Forwards values until the subscriber raises; then reports that once and unsubscribes
    this subscriber only (the source and its other subscribers go on)."""

    def __init__(self, observer: abc.ObserverBase[_T], report: Callable[[Exception], None]) -> None:
        self._observer = observer
        self._report = report
        self._stopped = False
        self.subscription = SingleAssignmentDisposable()

    def on_next(self, value: _T) -> None:
        if self._stopped:
            return
        try:
            self._observer.on_next(value)
        except Exception as exc:
            self._stopped = True
            _safe_report(self._report, exc)
            self.subscription.dispose()


def isolate_(
    on_subscriber_error: Callable[[Exception], None] | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    report = on_subscriber_error or _log_subscriber_error

    def _isolate(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            guard = _IsolatedObserver(observer, report)
            guard.subscription.disposable = source.subscribe(
                guard.on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return guard.subscription

        return Observable(subscribe)

    return _isolate
