"""conflate(): a one-value slot, delivered on the scheduler, for slow consumers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxconnector.operators import conflate
from rxconnector.operators._conflate import _loop_of

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class TestBursts:
    """Values arriving at the same instant collapse into the newest one."""

    def test_same_tick_values_collapse_to_the_latest(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(
            on_next(210, "a"),
            on_next(210, "b"),
            on_next(210, "c"),
            on_next(220, "d"),
            on_next(230, "e"),
            on_next(230, "f"),
            on_completed(240),
        )
        result = scheduler.start(lambda: src.pipe(conflate()))
        assert result.messages == [
            on_next(210, "c"),
            on_next(220, "d"),
            on_next(230, "f"),
            on_completed(240),
        ]

    def test_completion_follows_the_pending_value(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_next(210, 1), on_next(210, 2), on_completed(210))
        result = scheduler.start(lambda: src.pipe(conflate()))
        assert result.messages == [on_next(210, 2), on_completed(210)]

    def test_error_follows_the_pending_value(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(
            on_next(210, 1), on_next(210, 2), on_error(210, ConnectionError("gone"))
        )
        result = scheduler.start(lambda: src.pipe(conflate()))
        assert result.messages[0] == on_next(210, 2)
        assert [on_error(210, lambda e: isinstance(e, ConnectionError))] == result.messages[1:]

    def test_terminal_without_pending_value_is_immediate(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_next(210, 1), on_completed(250))
        result = scheduler.start(lambda: src.pipe(conflate()))
        assert result.messages == [on_next(210, 1), on_completed(250)]

    def test_explicit_scheduler_is_used(self) -> None:
        deliveries = TestScheduler()
        subject: Subject[int] = Subject()
        got: list[int] = []
        subject.pipe(conflate(deliveries)).subscribe(got.append)
        for i in range(5):
            subject.on_next(i)
        assert got == []  # nothing until the delivery scheduler runs
        deliveries.start()
        assert got == [4]


class TestBusyConsumer:
    """Values arriving while the consumer is busy are coalesced, never queued."""

    def test_values_pushed_during_delivery_are_coalesced(self) -> None:
        scheduler = TestScheduler()
        subject: Subject[int] = Subject()
        got: list[int] = []

        def slow(value: int) -> None:
            got.append(value)
            if value == 1:  # while "busy" with 1, three more arrive
                for more in (2, 3, 4):
                    subject.on_next(more)

        subject.pipe(conflate()).subscribe(slow, scheduler=scheduler)
        subject.on_next(1)
        scheduler.start()
        assert got == [1, 4]

    def test_consumer_on_another_thread_sees_first_then_newest(self) -> None:
        worker = EventLoopScheduler()
        subject: Subject[int] = Subject()
        started, release, finished = threading.Event(), threading.Event(), threading.Event()
        got: list[int] = []
        threads: set[int] = set()

        def slow(value: int) -> None:
            threads.add(threading.get_ident())
            got.append(value)
            started.set()
            assert release.wait(5)

        try:
            subject.pipe(conflate(worker)).subscribe(slow, on_completed=finished.set)
            subject.on_next(0)
            assert started.wait(5)  # the consumer is now stuck on value 0
            for i in range(1, 1001):
                subject.on_next(i)
            subject.on_completed()
            release.set()
            assert finished.wait(5)
        finally:
            worker.dispose()
        assert got == [0, 1000]
        assert threading.get_ident() not in threads


class TestDisposal:
    """Disposal cancels a pending delivery and the upstream."""

    def test_dispose_before_delivery_delivers_nothing(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_next(210, "a"), on_next(220, "b"))
        result = scheduler.start(lambda: src.pipe(conflate()), disposed=210)
        assert result.messages == []
        assert src.subscriptions == [Subscription(200, 210)]

    def test_raising_consumer_ends_its_subscription(self) -> None:
        scheduler = TestScheduler()
        src = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 2))

        def bad(_: int) -> None:
            raise RuntimeError("consumer bug")

        src.pipe(conflate()).subscribe(bad, scheduler=scheduler)
        with pytest.raises(RuntimeError, match="consumer bug"):
            scheduler.start()
        assert src.subscriptions == [Subscription(0, 210)]


class TestOnTheLoop:
    """Without a scheduler it delivers on the running loop: one delivery per loop tick."""

    async def test_burst_within_one_tick_collapses(self) -> None:
        subject: Subject[int] = Subject()
        got: list[int] = []
        subject.pipe(conflate(), ops.take(2)).subscribe(got.append)
        for i in range(100):
            subject.on_next(i)
        assert got == []
        await asyncio.sleep(0)
        assert got == [99]
        subject.on_next(100)
        await asyncio.sleep(0)
        assert got == [99, 100]

    async def test_dispose_cancels_the_pending_delivery(self) -> None:
        subject: Subject[int] = Subject()
        got: list[int] = []
        subscription = subject.pipe(conflate()).subscribe(got.append)
        subject.on_next(1)
        subscription.dispose()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert got == []
        subject.on_next(2)  # nothing is scheduled after disposal either
        await asyncio.sleep(0)
        assert got == []

    async def test_values_pushed_during_delivery_get_the_next_tick(self) -> None:
        subject: Subject[int] = Subject()
        got: list[int] = []

        def busy(value: int) -> None:
            got.append(value)
            if value == 1:
                subject.on_next(2)
                subject.on_next(3)

        subject.pipe(conflate()).subscribe(busy)
        subject.on_next(1)
        await asyncio.sleep(0)
        assert got == [1]
        await asyncio.sleep(0)
        assert got == [1, 3]

    async def test_completion_after_pending_value_on_the_loop(self) -> None:
        subject: Subject[int] = Subject()
        events: list[object] = []
        subject.pipe(conflate()).subscribe(events.append, on_completed=lambda: events.append("|"))
        subject.on_next(1)
        subject.on_completed()
        assert events == []
        await asyncio.sleep(0)
        assert events == [1, "|"]

    async def test_the_loop_scheduler_internal_is_pinned(self) -> None:
        """The direct path reads ``AsyncIOScheduler._loop`` (reactivex 6.1): it must be
        the loop that scheduler's ``schedule`` uses."""
        loop = asyncio.get_running_loop()
        assert AsyncIOScheduler(loop)._loop is loop
        assert _loop_of(AsyncIOScheduler(loop)) is loop

    async def test_a_scheduler_subclass_is_used_through_schedule(self) -> None:
        calls: list[object] = []

        class Counting(AsyncIOScheduler):
            def schedule(self, action: Any, state: Any = None) -> Any:
                calls.append(action)
                return super().schedule(action, state)

        assert _loop_of(Counting(asyncio.get_running_loop())) is None
        subject: Subject[int] = Subject()
        got: list[int] = []
        subject.pipe(conflate(Counting(asyncio.get_running_loop()))).subscribe(got.append)
        subject.on_next(7)
        await asyncio.sleep(0)
        assert got == [7] and len(calls) == 1
