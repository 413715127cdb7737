"""Reconnect backoff, attempt limiting and the stale watchdog, in virtual time.

The socket is replaced by cold test observables: ``websocket(connect=...)`` runs the
real retry/limiter/watchdog machinery on a ``TestScheduler`` (1 tick = 1 second).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxconnector.config import ConnectionConfig
from rxconnector.errors import RateLimitError, StaleConnectionError, WebSocketClosedError
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.rate.attempts import AttemptLimiter
from rxconnector.transport.tasks import OwnedTasks
from rxconnector.transport.ws import websocket
from rxconnector.transport.ws_types import Connected, SocketSpec, WsItem
from rxconnector.transport.ws_watchdog import stale_watchdog

on_next, on_error = ReactiveTest.on_next, ReactiveTest.on_error

SPEC = SocketSpec("ws://fake/stream", "fake#1", max_messages=5, message_window=1.2)
NO_JITTER = ConnectionConfig(
    reconnect_delay=1.0, reconnect_max_delay=8.0, reconnect_jitter=0.0, healthy_after=30.0
)


class NullLink:
    """A ControlSender that sends nowhere."""

    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        build()


def connected(at_ms: float = 0.0) -> Connected:
    event = ConnectionEvent(ConnectionState.CONNECTED, SPEC.connection_id, SPEC.url, at_ms)
    return Connected(event, NullLink())


def states(messages: list[Any]) -> list[tuple[float, ConnectionState, int, float]]:
    """``(time, state, attempt, delay)`` of every ConnectionEvent emitted."""
    out = []
    for record in messages:
        value = record.value.value if record.value.kind == "N" else None
        if isinstance(value, ConnectionEvent):
            out.append((record.time, value.state, value.attempt, value.delay))
    return out


def scripted(*attempts: Observable[WsItem]) -> Callable[..., Observable[WsItem]]:
    """A ``connect`` that plays one cold observable per attempt, the last one forever."""
    script: Iterator[Observable[WsItem]] = iter(attempts)
    last: list[Observable[WsItem]] = []

    def connect(_spec: SocketSpec, _session: Any, _tasks: OwnedTasks) -> Observable[WsItem]:
        with contextlib.suppress(StopIteration):
            last[:] = [next(script)]
        return last[0]

    return connect


def closed() -> WebSocketClosedError:
    return WebSocketClosedError("closed by the server (code 1001)", 1001)


class TestBackoff:
    """Failed attempts are retried after capped exponential delays, forever."""

    def test_delays_double_up_to_the_cap(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(0.1, closed()))
        source = websocket(
            SPEC,
            lambda: None,
            NO_JITTER,
            tasks=OwnedTasks(),
            connect=lambda *_: failing,  # type: ignore[arg-type,return-value]
        )
        results = scheduler.start(lambda: source, created=1, subscribed=100, disposed=150)
        starts = [round(s.subscribe, 6) for s in failing.subscriptions]
        assert starts == [100.0, 101.1, 103.2, 107.3, 115.4, 123.5, 131.6, 139.7, 147.8]
        reconnecting = [
            (attempt, delay)
            for _t, state, attempt, delay in states(results.messages)
            if state is ConnectionState.RECONNECTING
        ]
        assert reconnecting == [(1, 1.0), (2, 2.0), (3, 4.0)] + [(n, 8.0) for n in range(4, 10)]
        assert not [r for r in results.messages if r.value.kind == "E"]  # never gives up

    def test_jitter_stays_within_its_bound(self) -> None:
        scheduler = TestScheduler()
        config = ConnectionConfig(
            reconnect_delay=1.0, reconnect_max_delay=4.0, reconnect_jitter=0.5
        )
        failing = scheduler.create_cold_observable(on_error(0.0, closed()))
        source = websocket(
            SPEC, lambda: None, config, tasks=OwnedTasks(), connect=lambda *_: failing
        )  # type: ignore[arg-type,return-value]
        results = scheduler.start(lambda: source, created=1, subscribed=100, disposed=200)
        delays = [
            d for _t, s, _a, d in states(results.messages) if s is ConnectionState.RECONNECTING
        ]
        bases = [1.0, 2.0, 4.0, 4.0, 4.0]
        for delay, base in zip(delays, bases, strict=False):
            assert base <= delay <= base + 0.5

    def test_a_healthy_connection_resets_the_backoff(self) -> None:
        scheduler = TestScheduler()
        quick = scheduler.create_cold_observable(on_error(0.0, closed()))
        link = connected()
        healthy = scheduler.create_cold_observable(on_next(0.0, link), on_error(40.0, closed()))
        source = websocket(
            SPEC,
            lambda: None,  # type: ignore[arg-type,return-value]
            NO_JITTER,
            tasks=OwnedTasks(),
            connect=scripted(quick, quick, quick, healthy, quick),
        )
        results = scheduler.start(lambda: source, created=1, subscribed=100, disposed=200)
        reconnecting = [
            (t, a, d)
            for t, s, a, d in states(results.messages)
            if s is ConnectionState.RECONNECTING
        ]
        # 1, 2, 4 s; then 40 s connected (> healthy_after 30 s): back to attempt 1, 1 s
        assert reconnecting[:5] == [
            (100.0, 1, 1.0),
            (101.0, 2, 2.0),
            (103.0, 3, 4.0),
            (147.0, 1, 1.0),
            (148.0, 2, 2.0),
        ]

    def test_a_rate_limit_waits_at_least_retry_after(self) -> None:
        scheduler = TestScheduler()
        refused = scheduler.create_cold_observable(
            on_error(0.0, RateLimitError("handshake refused", retry_after=30.0))
        )
        source = websocket(
            SPEC, lambda: None, NO_JITTER, tasks=OwnedTasks(), connect=lambda *_: refused
        )  # type: ignore[arg-type,return-value]
        scheduler.start(lambda: source, created=1, subscribed=100, disposed=150)
        assert [s.subscribe for s in refused.subscriptions] == [100.0, 130.0]

    def test_gives_up_after_max_attempts_with_a_closed_event(self) -> None:
        scheduler = TestScheduler()
        config = ConnectionConfig(
            reconnect_delay=1.0, reconnect_jitter=0.0, max_reconnect_attempts=2
        )
        failing = scheduler.create_cold_observable(on_error(0.0, closed()))
        source = websocket(
            SPEC, lambda: None, config, tasks=OwnedTasks(), connect=lambda *_: failing
        )  # type: ignore[arg-type,return-value]
        results = scheduler.start(lambda: source, created=1, subscribed=100, disposed=200)
        assert [s.subscribe for s in failing.subscriptions] == [100.0, 101.0, 103.0]
        assert [(t, s) for t, s, _a, _d in states(results.messages)][-2:] == [
            (103.0, ConnectionState.CONNECTING),
            (103.0, ConnectionState.CLOSED),
        ]
        assert results.messages[-1].value.kind == "E"
        assert isinstance(results.messages[-1].value.exception, WebSocketClosedError)

    def test_disposal_stops_retrying(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(0.0, closed()))
        source = websocket(
            SPEC, lambda: None, NO_JITTER, tasks=OwnedTasks(), connect=lambda *_: failing
        )  # type: ignore[arg-type,return-value]
        scheduler.start(lambda: source, created=1, subscribed=100, disposed=102)
        scheduler.advance_to(500)
        assert [s.subscribe for s in failing.subscriptions] == [100.0, 101.0]


class TestAttemptLimit:
    """Attempts beyond the venue's budget wait on the scheduler for a free slot."""

    def test_third_attempt_waits_for_the_window(self) -> None:
        scheduler = TestScheduler()
        failing = scheduler.create_cold_observable(on_error(0.0, closed()))
        source = websocket(
            SPEC,
            lambda: None,  # type: ignore[arg-type,return-value]
            NO_JITTER,
            tasks=OwnedTasks(),
            attempt_limiter=AttemptLimiter(2, 60.0),
            connect=lambda *_: failing,
        )
        results = scheduler.start(lambda: source, created=1, subscribed=100, disposed=200)
        # attempts at 100 and 101; the third is due at 103 but the window allows it at 160
        assert [s.subscribe for s in failing.subscriptions][:3] == [100.0, 101.0, 160.0]
        waiting = [
            (t, d)
            for t, s, _a, d in states(results.messages)
            if s is ConnectionState.CONNECTING and d
        ]
        assert waiting[0] == (103.0, 57.0)


class TestStaleWatchdog:
    """No data for stale_after while subscribed: STALE, then a StaleConnectionError."""

    def test_marble_silence_after_data_goes_stale(self) -> None:
        link = connected()
        frame = (0.0, b"{}")
        with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
            source = cold("-C-f-f------------", {"C": link, "f": frame})
            results = start(source.pipe(stale_watchdog(4.0, SPEC)))
        stale = ConnectionEvent(
            ConnectionState.STALE, SPEC.connection_id, SPEC.url, 209_000.0, reason="no data for 4 s"
        )
        expected = exp(
            "-C-f-f---(S,#)",
            {"C": link, "f": frame, "S": stale},
            error=StaleConnectionError("WebSocket ws://fake/stream: no data for 4 s", 4.0),
        )
        assert results == expected

    def test_steady_data_never_goes_stale(self) -> None:
        link = connected()
        lookup = {"C": link, "f": (0.0, b"{}")}
        with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
            source = cold("-C-f-f-f-f-f-f-f-f-f-f-|", lookup)
            results = start(source.pipe(stale_watchdog(3.0, SPEC)))
        assert results == exp("-C-f-f-f-f-f-f-f-f-f-f-|", lookup)

    def test_nothing_is_measured_while_no_topic_is_subscribed(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_cold_observable(on_next(1.0, connected()))
        results = scheduler.start(
            lambda: source.pipe(stale_watchdog(4.0, SPEC, active=lambda: False)),
            created=1,
            subscribed=100,
            disposed=1000,
        )
        assert len(results.messages) == 1

    def test_only_data_counted_by_the_probe_keeps_it_alive(self) -> None:
        scheduler = TestScheduler()
        # frames arrive (acks, application pongs) but the probe counts no data
        records = [on_next(1.0, connected())] + [
            on_next(float(t), (0.0, b"{}")) for t in range(2, 30)
        ]
        source = scheduler.create_cold_observable(*records)
        results = scheduler.start(
            lambda: source.pipe(stale_watchdog(8.0, SPEC, data_count=lambda: 0)),
            created=1,
            subscribed=100,
            disposed=1000,
        )
        errors = [r for r in results.messages if r.value.kind == "E"]
        assert [e.time for e in errors] == [109.0]

    def test_disposal_stops_the_checks(self) -> None:
        scheduler = TestScheduler()
        source = scheduler.create_cold_observable(on_next(1.0, connected()))
        results = scheduler.start(
            lambda: source.pipe(stale_watchdog(4.0, SPEC)), created=1, subscribed=100, disposed=102
        )
        scheduler.advance_to(500)
        assert len(results.messages) == 1
        assert not scheduler._queue  # no timer left behind


@pytest.mark.parametrize("stale_after", [2.0, 10.0])
def test_detection_is_within_a_quarter_period_of_stale_after(stale_after: float) -> None:
    """The watchdog's documented accuracy: between stale_after and 1.25 * stale_after."""
    scheduler = TestScheduler()
    last_data = 1.0 + stale_after * 0.37
    source = scheduler.create_cold_observable(
        on_next(1.0, connected()), on_next(last_data, (0.0, b"{}"))
    )
    results = scheduler.start(
        lambda: source.pipe(stale_watchdog(stale_after, SPEC)),
        created=1,
        subscribed=100,
        disposed=1000,
    )
    error_at = next(r.time for r in results.messages if r.value.kind == "E") - 100.0
    assert stale_after <= error_at - last_data <= 1.25 * stale_after + 1e-9
