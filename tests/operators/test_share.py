"""share(): ref-counted, resettable, isolating multicast; isolate(): per-subscriber guard."""

from __future__ import annotations

import inspect
import logging
import textwrap
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver
from reactivex.subject import BehaviorSubject, Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector.operators import isolate, share
from rxconnector.operators._share import (
    StageObserver,
    shared_deferred,
    shared_stage,
    subscribe_observer,
)

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class Boom(Exception):
    """A subscriber bug."""


def _at(scheduler: TestScheduler, time: float, action: Any) -> None:
    scheduler.schedule_absolute(time, lambda *_: action())


class TestRefCounting:
    """The first subscriber connects the source, the last dispose disconnects it."""

    def test_connect_on_first_disconnect_on_last_reconnect_later(self) -> None:
        scheduler = TestScheduler()
        ws = scheduler.create_cold_observable()  # a feed that never ends
        shared = ws.pipe(share())
        subs: list[abc.DisposableBase] = []
        _at(scheduler, 200, lambda: subs.append(shared.subscribe(scheduler=scheduler)))
        _at(scheduler, 300, lambda: subs.append(shared.subscribe(scheduler=scheduler)))
        _at(scheduler, 400, lambda: subs[0].dispose())
        _at(scheduler, 500, lambda: subs[1].dispose())
        _at(scheduler, 600, lambda: subs.append(shared.subscribe(scheduler=scheduler)))
        scheduler.start()
        assert ws.subscriptions == [Subscription(200, 500), Subscription(600)]

    def test_late_subscriber_gets_only_later_values(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_cold_observable(
            on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(40)
        )
        shared = src.pipe(share())
        first, second = scheduler.create_observer(), scheduler.create_observer()
        _at(scheduler, 200, lambda: shared.subscribe(first, scheduler=scheduler))
        _at(scheduler, 215, lambda: shared.subscribe(second, scheduler=scheduler))
        scheduler.start()
        assert first.messages == [
            on_next(210, "a"),
            on_next(220, "b"),
            on_next(230, "c"),
            on_completed(240),
        ]
        assert second.messages == [on_next(220, "b"), on_next(230, "c"), on_completed(240)]
        assert src.subscriptions == [Subscription(200, 240)]

    def test_disposing_twice_counts_once(self) -> None:
        scheduler = TestScheduler()
        ws = scheduler.create_cold_observable()
        shared = ws.pipe(share())
        subs: list[abc.DisposableBase] = []
        _at(scheduler, 200, lambda: subs.append(shared.subscribe(scheduler=scheduler)))
        _at(scheduler, 210, lambda: subs.append(shared.subscribe(scheduler=scheduler)))
        _at(scheduler, 300, lambda: (subs[0].dispose(), subs[0].dispose()))
        scheduler.start()
        assert ws.subscriptions == [Subscription(200)]  # the second one keeps it open

    def test_synchronous_source_reaches_the_first_subscriber(self) -> None:
        shared = reactivex.of(1, 2, 3).pipe(share())
        got: list[int] = []
        shared.subscribe(got.append)
        shared.subscribe(got.append)  # completed before: connects again
        assert got == [1, 2, 3, 1, 2, 3]


class TestReset:
    """After the source completes or errors the next subscriber reconnects."""

    def test_resubscribe_after_completion_reconnects(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_cold_observable(on_next(1, "a"), on_completed(3))
        shared = src.pipe(share())
        late = scheduler.create_observer()
        _at(scheduler, 200, lambda: shared.subscribe(scheduler=scheduler))
        _at(scheduler, 250, lambda: shared.subscribe(late, scheduler=scheduler))
        scheduler.start()
        assert src.subscriptions == [Subscription(200, 203), Subscription(250, 253)]
        assert late.messages == [on_next(251, "a"), on_completed(253)]

    def test_retry_after_share_reconnects_each_time(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_cold_observable(on_next(1, "a"), on_error(2, ConnectionError()))
        result = scheduler.start(lambda: src.pipe(share(), ops.retry(3)))
        assert src.subscriptions == [
            Subscription(200, 202),
            Subscription(202, 204),
            Subscription(204, 206),
        ]
        assert result.messages[:3] == [on_next(201, "a"), on_next(203, "a"), on_next(205, "a")]
        assert [on_error(206, lambda e: isinstance(e, ConnectionError))] == result.messages[3:]

    def test_error_reaches_every_subscriber(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_error(250, ValueError("down")))
        shared = src.pipe(share())
        a, b = scheduler.create_observer(), scheduler.create_observer()
        _at(scheduler, 200, lambda: shared.subscribe(a, scheduler=scheduler))
        _at(scheduler, 210, lambda: shared.subscribe(b, scheduler=scheduler))
        scheduler.start()
        assert [on_error(250, lambda e: str(e) == "down")] == a.messages
        assert [on_error(250, lambda e: str(e) == "down")] == b.messages


class TestIsolation:
    """A subscriber that raises is reported and detached; the others keep receiving."""

    def _run(self, faulty_first: bool) -> tuple[Any, Any, list[Exception], Any]:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(
            on_next(210, "a"), on_next(220, "b"), on_next(230, "c"), on_completed(240)
        )
        reported: list[Exception] = []
        shared = src.pipe(share(on_subscriber_error=reported.append))
        healthy = scheduler.create_observer()
        faulty_got: list[str] = []

        def faulty(value: str) -> None:
            faulty_got.append(value)
            if value == "b":
                raise Boom(value)

        def subscribe_both() -> None:
            if faulty_first:
                shared.subscribe(faulty, scheduler=scheduler)
            shared.subscribe(healthy, scheduler=scheduler)
            if not faulty_first:
                shared.subscribe(faulty, scheduler=scheduler)

        _at(scheduler, 200, subscribe_both)
        scheduler.start()
        return healthy, faulty_got, reported, src

    @pytest.mark.parametrize("faulty_first", [True, False])
    def test_faulty_subscriber_is_detached_others_get_every_value(self, faulty_first: bool) -> None:
        healthy, faulty_got, reported, src = self._run(faulty_first)
        assert healthy.messages == [
            on_next(210, "a"),
            on_next(220, "b"),  # the same value the faulty one choked on
            on_next(230, "c"),
            on_completed(240),
        ]
        assert faulty_got == ["a", "b"]  # nothing after its exception
        assert len(reported) == 1 and isinstance(reported[0], Boom)
        assert src.subscriptions == [Subscription(200, 240)]  # connection unaffected

    def test_pipeline_error_without_on_error_is_isolated(self) -> None:
        subject: Subject[int] = Subject()
        reported: list[Exception] = []
        shared = subject.pipe(share(on_subscriber_error=reported.append))
        got: list[int] = []
        shared.pipe(ops.map(lambda x: 10 // x)).subscribe(lambda _: None)  # no on_error
        shared.subscribe(got.append)
        subject.on_next(1)
        subject.on_next(0)  # ZeroDivisionError in the first pipeline
        subject.on_next(2)
        assert got == [1, 0, 2]
        assert [type(e) for e in reported] == [ZeroDivisionError]

    def test_detaching_the_last_subscriber_disconnects(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 2))
        shared = src.pipe(share(on_subscriber_error=lambda _: None))

        def bad(_: int) -> None:
            raise Boom()

        _at(scheduler, 200, lambda: shared.subscribe(bad, scheduler=scheduler))
        scheduler.start()
        assert src.subscriptions == [Subscription(200, 210)]

    def test_dispose_after_detach_does_not_disconnect_the_others(self) -> None:
        subject: Subject[int] = Subject()
        shared = subject.pipe(share(on_subscriber_error=lambda _: None))

        def bad(_: int) -> None:
            raise Boom()

        bad_sub = shared.subscribe(bad)
        got: list[int] = []
        shared.subscribe(got.append)
        subject.on_next(1)  # detaches `bad`
        bad_sub.dispose()  # must not count as the healthy subscriber leaving
        subject.on_next(2)
        assert got == [1, 2]
        assert len(subject.observers) == 1

    def test_default_report_logs_on_rxconnector_logger(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        subject: Subject[int] = Subject()
        shared = subject.pipe(share())

        def bad(_: int) -> None:
            raise Boom("subscriber bug")

        shared.subscribe(bad)
        with caplog.at_level(logging.ERROR, logger="rxconnector"):
            subject.on_next(1)
        assert any("detached" in r.getMessage() for r in caplog.records)

    def test_a_raising_reporter_does_not_break_delivery(self) -> None:
        subject: Subject[int] = Subject()

        def reporter(_: Exception) -> None:
            raise RuntimeError("reporter broken")

        shared = subject.pipe(share(on_subscriber_error=reporter))
        got: list[int] = []

        def bad(_: int) -> None:
            raise Boom()

        shared.subscribe(bad)
        shared.subscribe(got.append)
        subject.on_next(1)
        subject.on_next(2)
        assert got == [1, 2]

    def test_raising_completion_handler_does_not_starve_the_others(self) -> None:
        subject: Subject[int] = Subject()
        reported: list[Exception] = []
        shared = subject.pipe(share(on_subscriber_error=reported.append))

        def bad_completed() -> None:
            raise Boom("in on_completed")

        done: list[str] = []
        shared.subscribe(on_completed=bad_completed)
        shared.subscribe(on_completed=lambda: done.append("ok"))
        subject.on_completed()
        assert done == ["ok"]
        assert [type(e) for e in reported] == [Boom]

    def test_subscribing_inside_on_next_starts_with_the_next_value(self) -> None:
        subject: Subject[int] = Subject()
        shared = subject.pipe(share())
        late: list[int] = []

        def first(value: int) -> None:
            if value == 1:
                shared.subscribe(late.append)

        shared.subscribe(first)
        subject.on_next(1)
        subject.on_next(2)
        assert late == [2]


class TestIsolate:
    """isolate() guards each subscriber of a subject separately."""

    def test_raising_subscriber_ends_only_its_own_subscription(self) -> None:
        subject = BehaviorSubject(0)
        reported: list[Exception] = []
        guarded = subject.pipe(isolate(reported.append))

        bad_seen: list[int] = []

        def bad(value: int) -> None:
            bad_seen.append(value)
            if value == 1:
                raise Boom()

        guarded.subscribe(bad)
        good: list[int] = []
        guarded.subscribe(good.append)
        subject.on_next(1)  # must not raise here, at the producer
        subject.on_next(2)
        assert good == [0, 1, 2]
        assert bad_seen == [0, 1]
        assert [type(e) for e in reported] == [Boom]
        assert len(subject.observers) == 1

    def test_raising_on_the_replayed_value_detaches_at_subscribe(self) -> None:
        subject = BehaviorSubject(5)
        reported: list[Exception] = []

        def bad(_: int) -> None:
            raise Boom()

        subject.pipe(isolate(reported.append)).subscribe(bad)
        assert len(reported) == 1
        assert subject.observers == []


class TestReactivexInternalsPinned:
    """The reactivex 6.1 behaviour share() and isolate() rely on, or exist because of."""

    def test_autodetach_observer_reraises_from_on_next(self) -> None:
        def bad(_: int) -> None:
            raise Boom()

        observer = AutoDetachObserver(bad)
        with pytest.raises(Boom):
            observer.on_next(1)

    def test_subscribe_wraps_observers_in_a_fresh_autodetach_observer(self) -> None:
        seen: list[abc.ObserverBase[int]] = []

        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
            seen.append(observer)
            return reactivex.disposable.Disposable()

        source = reactivex.create(subscribe)
        target = AutoDetachObserver(lambda _: None)
        source.subscribe(target)
        source.subscribe(target)
        assert all(isinstance(o, AutoDetachObserver) for o in seen)
        assert seen[0] is not seen[1]  # identity removal in the hub is safe

    def test_autodetach_on_next_is_what_the_multicast_inlines(self) -> None:
        """``_Hub.on_next`` inlines this body for speed; a reactivex that changes it
        must fail here (then the inlined copy must change with it)."""
        source = textwrap.dedent(inspect.getsource(AutoDetachObserver.on_next))
        body = [line.strip() for line in source.splitlines()[1:] if line.strip()]
        assert body == ["if self.is_stopped:", "return", "self._on_next(value)"]

    def test_disposed_autodetach_observer_ignores_values(self) -> None:
        got: list[int] = []
        observer = AutoDetachObserver(got.append)
        observer.dispose()
        observer.on_next(1)
        assert got == []

    def test_builtin_share_broadcasts_one_subscribers_bug(self) -> None:
        """Why share() exists: with ops.share() B receives A's exception and the feed ends."""
        subject: Subject[int] = Subject()
        shared = subject.pipe(ops.share())
        b_errors: list[Exception] = []

        def a(_: int) -> None:
            raise Boom()

        shared.subscribe(a)
        shared.subscribe(on_error=b_errors.append)
        with pytest.raises(Boom):
            subject.on_next(1)
        assert b_errors == []  # B never even got the value: the exception escaped

    def test_builtin_share_replays_the_old_error_and_never_reconnects(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_cold_observable(on_next(1, "a"), on_error(2, ConnectionError()))
        shared = src.pipe(ops.share())
        late = scheduler.create_observer()
        _at(scheduler, 200, lambda: shared.subscribe(on_error=lambda _: None))
        _at(scheduler, 300, lambda: shared.subscribe(late, scheduler=scheduler))
        scheduler.start()
        # The late subscriber gets the stale error at once and never a value.
        assert [on_error(300, lambda e: isinstance(e, ConnectionError))] == late.messages
        assert src.subscriptions[-1] == Subscription(300, 300)  # connected, dropped at once


class TestSharedDeferred:
    """shared_deferred(factory, report, step) = defer(factory).pipe(step, share()), fewer hops."""

    @staticmethod
    def _doubling(emit: Any) -> Any:
        def on_next(value: Any) -> None:
            emit(value)
            emit(value)

        return on_next

    def test_factory_runs_at_first_subscribe_with_its_scheduler_and_again_after_the_end(
        self,
    ) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_cold_observable(on_next(1, "a"), on_completed(3))
        calls: list[Any] = []

        def factory(s: abc.SchedulerBase | None) -> Any:
            calls.append(s)
            return src

        shared = shared_deferred(factory)
        assert calls == []  # lazy, like defer
        late = scheduler.create_observer()
        _at(scheduler, 200, lambda: shared.subscribe(scheduler=scheduler))
        _at(scheduler, 201, lambda: shared.subscribe(scheduler=scheduler))  # same connection
        _at(scheduler, 250, lambda: shared.subscribe(late, scheduler=scheduler))
        scheduler.start()
        assert calls == [scheduler, scheduler]
        assert src.subscriptions == [Subscription(200, 203), Subscription(250, 253)]
        assert late.messages == [on_next(251, "a"), on_completed(253)]

    def test_step_runs_once_per_value_for_every_subscriber(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 2), on_completed(230))
        seen: list[int] = []

        def step(emit: Any) -> Any:
            def on_next_(value: int) -> None:
                seen.append(value)
                emit(value * 10)

            return on_next_

        shared = shared_deferred(lambda _s: src, step=step)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        _at(scheduler, 200, lambda: shared.subscribe(a, scheduler=scheduler))
        _at(scheduler, 200, lambda: shared.subscribe(b, scheduler=scheduler))
        scheduler.start()
        assert seen == [1, 2]
        expected = [on_next(210, 10), on_next(220, 20), on_completed(230)]
        assert a.messages == expected
        assert b.messages == expected

    def test_a_step_may_emit_several_values(self) -> None:
        got: list[int] = []
        shared_deferred(lambda _s: reactivex.of(1, 2), step=self._doubling).subscribe(got.append)
        assert got == [1, 1, 2, 2]

    def test_a_raising_factory_errors_the_subscriber_and_a_later_one_retries(self) -> None:
        attempts: list[int] = []

        def factory(_s: abc.SchedulerBase | None) -> Any:
            attempts.append(1)
            if len(attempts) == 1:
                raise ConnectionError("not running")
            return reactivex.of("ok")

        shared = shared_deferred(factory)
        errors: list[Exception] = []
        shared.subscribe(on_error=errors.append)
        got: list[str] = []
        shared.subscribe(got.append)
        assert [type(e) for e in errors] == [ConnectionError]
        assert got == ["ok"]

    def test_last_dispose_disconnects_and_nothing_arrives_after_it(self) -> None:
        subject: Subject[int] = Subject()
        shared = shared_deferred(lambda _s: subject)
        got: list[int] = []
        sub = shared.subscribe(got.append)
        subject.on_next(1)
        sub.dispose()
        subject.on_next(2)
        assert got == [1]
        assert not subject.observers  # the upstream subscription is gone

    def test_a_faulty_subscriber_is_detached_and_reported_the_others_go_on(self) -> None:
        subject: Subject[int] = Subject()
        reported: list[Exception] = []
        shared = shared_deferred(lambda _s: subject, reported.append, step=self._doubling)
        good: list[int] = []

        def bad(value: int) -> None:
            raise Boom(value)

        shared.subscribe(bad)
        shared.subscribe(good.append)
        subject.on_next(1)
        subject.on_next(2)
        assert good == [1, 1, 2, 2]
        assert [type(e) for e in reported] == [Boom]
        assert len(subject.observers) == 1  # still connected for the good one

    def test_error_reaches_every_subscriber_and_disconnects(self) -> None:
        subject: Subject[int] = Subject()
        shared = shared_deferred(lambda _s: subject)
        errors: list[Exception] = []
        shared.subscribe(on_error=errors.append)
        shared.subscribe(on_error=errors.append)
        subject.on_error(ValueError("down"))
        subject.on_next(3)  # a misbehaving source after its error: ignored
        assert [str(e) for e in errors] == ["down", "down"]


class _Counting:
    """A stage that emits every value twice and counts what it owns being disposed."""

    def __init__(self) -> None:
        self.built: list[abc.SchedulerBase | None] = []
        self.disposed = 0

    def __call__(
        self, downstream: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None
    ) -> tuple[StageObserver[Any], abc.DisposableBase]:
        self.built.append(scheduler)

        def on_next_(value: Any) -> None:
            downstream.on_next(value)
            downstream.on_next(value)

        def on_disposed() -> None:
            self.disposed += 1

        return (
            StageObserver(on_next_, downstream.on_error, downstream.on_completed),
            Disposable(on_disposed),
        )


class TestSharedStage:
    """shared_stage(factory, stage): a per-connection stage between upstream and multicast."""

    def test_the_stage_is_built_per_connection_and_its_disposable_goes_with_it(self) -> None:
        subject: Subject[int] = Subject()
        stage = _Counting()
        shared = shared_stage(lambda _s: subject, stage)
        got: list[int] = []
        first = shared.subscribe(got.append)
        second = shared.subscribe(got.append)
        subject.on_next(1)
        first.dispose()
        assert stage.disposed == 0  # one subscriber is left
        subject.on_next(2)
        second.dispose()
        subject.on_next(3)
        assert got == [1, 1, 1, 1, 2, 2]
        assert stage.built == [None] and stage.disposed == 1
        assert not subject.observers
        shared.subscribe(got.append)  # a new connection, a new stage
        assert len(stage.built) == 2

    def test_the_subscribers_scheduler_reaches_factory_and_stage(self) -> None:
        scheduler = TestScheduler()
        stage = _Counting()
        seen: list[Any] = []

        def factory(s: abc.SchedulerBase | None) -> Any:
            seen.append(s)
            return reactivex.never()

        shared_stage(factory, stage).subscribe(scheduler=scheduler)
        assert seen == [scheduler] and stage.built == [scheduler]

    def test_a_stage_that_raises_while_built_errors_the_subscriber(self) -> None:
        def stage(_d: Any, _s: Any) -> Any:
            raise RuntimeError("no REST client")

        errors: list[Exception] = []
        shared_stage(lambda _s: reactivex.never(), stage).subscribe(on_error=errors.append)
        assert [str(e) for e in errors] == ["no REST client"]

    def test_a_faulty_subscriber_is_isolated(self) -> None:
        subject: Subject[int] = Subject()
        reported: list[Exception] = []
        shared = shared_stage(lambda _s: subject, _Counting(), reported.append)
        good: list[int] = []

        def bad(value: int) -> None:
            raise Boom(value)

        shared.subscribe(bad)
        shared.subscribe(good.append)
        subject.on_next(1)
        assert good == [1, 1]
        assert [type(e) for e in reported] == [Boom]

    def test_an_ordinary_upstream_keeps_its_auto_detach_observer(self) -> None:
        subject: Subject[int] = Subject()
        shared_stage(lambda _s: subject, _Counting()).subscribe()
        (observer,) = subject.observers
        assert isinstance(observer, AutoDetachObserver)

    def test_an_upstream_offering_unwrapped_subscribe_gets_the_stage_observer(self) -> None:
        attached: list[Any] = []

        class Unwrapping(reactivex.Observable[int]):
            def subscribe_unwrapped(self, observer: Any, scheduler: Any = None) -> Any:
                attached.append(observer)
                return Disposable()

        shared_stage(lambda _s: Unwrapping(), _Counting()).subscribe()
        (observer,) = attached
        assert isinstance(observer, StageObserver)

    def test_subscribe_observer_without_the_hook_subscribes_normally(self) -> None:
        got: list[int] = []
        subscribe_observer(
            reactivex.of(1, 2), StageObserver(got.append, lambda e: None, lambda: None), None
        )
        assert got == [1, 2]


class TestMulticastDelivery:
    """The isolating multicast calls subscribers' AutoDetachObservers' bodies directly:
    their guarantees must hold exactly."""

    def test_a_subscriber_disposed_by_an_earlier_one_gets_nothing_more(self) -> None:
        subject: Subject[int] = Subject()
        shared = subject.pipe(share())
        later: list[int] = []
        subs: list[Any] = []

        def first(value: int) -> None:
            if value == 2:
                subs[0].dispose()

        shared.subscribe(first)
        subs.append(shared.subscribe(later.append))
        for value in (1, 2, 3):
            subject.on_next(value)
        assert later == [1]

    def test_a_stopped_autodetach_observer_gets_nothing(self) -> None:
        subject: Subject[int] = Subject()
        shared = subject.pipe(share())
        got: list[int] = []
        sub = shared.subscribe(got.append)
        subject.on_next(1)
        sub.dispose()
        subject.on_next(2)
        assert got == [1]

    def test_take_completes_inside_delivery_and_is_told_once(self) -> None:
        subject: Subject[int] = Subject()
        shared = subject.pipe(share())
        events: list[Any] = []
        shared.pipe(ops.take(2)).subscribe(events.append, events.append, lambda: events.append("|"))
        other: list[int] = []
        shared.subscribe(other.append)
        for value in (1, 2, 3):
            subject.on_next(value)
        assert events == [1, 2, "|"] and other == [1, 2, 3]
