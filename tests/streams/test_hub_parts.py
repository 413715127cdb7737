"""The hub's shared core and socket limits, tested on their own (no socket, no hub).

The behaviour of the composed hub is covered by the other ``test_hub_*`` modules; these
pin the two pieces every part relies on: the per-socket limits taken from the venue
spec (with the config's overrides), and the core's once-per-tick reconciliation and
its callback isolation.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from reactivex.testing import TestScheduler

from rxconnector.config import ConnectionConfig
from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol
from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams._hub_state import Shard
from rxconnector.streams.hub import PACING_MARGIN, socket_limits
from rxconnector.streams.hub_core import HubCore


class TestSocketLimits:
    def test_the_venue_rate_plus_the_margin(self) -> None:
        limits = socket_limits(BinanceSpotWsProtocol(), ConnectionConfig())
        assert limits.max_messages == 5
        assert limits.message_window == pytest.approx(1.0 + PACING_MARGIN)

    def test_a_fractional_rate_rounds_the_count_down_and_stretches_the_window(self) -> None:
        protocol = BybitWsProtocol("spot")
        protocol.max_messages_per_second = 2.5  # instance attribute shadows the class's
        limits = socket_limits(protocol, ConnectionConfig())
        assert limits.max_messages == 2
        assert limits.message_window == pytest.approx(2 / 2.5 + PACING_MARGIN)

    def test_a_rate_below_one_still_allows_one_frame(self) -> None:
        protocol = BybitWsProtocol("spot")
        protocol.max_messages_per_second = 0.5
        limits = socket_limits(protocol, ConnectionConfig())
        assert limits.max_messages == 1
        assert limits.message_window == pytest.approx(1 / 0.5 + PACING_MARGIN)

    def test_stall_thresholds_come_from_the_venue_unless_configured(self) -> None:
        protocol = BybitWsProtocol("linear")
        default = socket_limits(protocol, ConnectionConfig())
        assert default.stale_after == protocol.stale_after
        assert default.link_stale_after == protocol.link_stale_after
        configured = socket_limits(
            protocol, attrs.evolve(ConnectionConfig(), stale_after=7.0, link_stale_after=9.0)
        )
        assert (configured.stale_after, configured.link_stale_after) == (7.0, 9.0)


class _CountingConn:
    """Stands in for a Conn: counts the reconciliations it is asked for."""

    def __init__(self) -> None:
        self.pumps = 0

    def pump(self) -> None:
        self.pumps += 1


def _core(
    scheduler: TestScheduler,
    errors: list[Exception] | None = None,
    report_error: Any = None,
    report_state: Any = None,
) -> HubCore:
    sink = errors if errors is not None else []
    return HubCore(
        BinanceSpotWsProtocol(),
        ConnectionConfig(),
        scheduler,
        report_error or sink.append,
        report_state or (lambda _event: None),
    )


def _shard_with(*conns: _CountingConn) -> Shard:
    shard = Shard("", "wss://example.invalid/stream")
    shard.primary = conns[0]  # type: ignore[assignment]
    if len(conns) > 1:
        shard.replacement = conns[1]  # type: ignore[assignment]
    return shard


class TestHubCore:
    def test_touches_in_one_tick_reconcile_each_shard_once(self) -> None:
        scheduler = TestScheduler()
        core = _core(scheduler)
        first, second, replacement = _CountingConn(), _CountingConn(), _CountingConn()
        a, b = _shard_with(first), _shard_with(second, replacement)
        core.touch(a)
        core.touch(b)
        core.touch(a)
        assert (first.pumps, second.pumps) == (0, 0)  # nothing before the tick
        scheduler.advance_by(0)
        scheduler.start()
        assert (first.pumps, second.pumps, replacement.pumps) == (1, 1, 1)
        core.touch(a)
        scheduler.start()
        assert (first.pumps, second.pumps) == (2, 1)

    def test_a_forgotten_shard_is_not_reconciled(self) -> None:
        scheduler = TestScheduler()
        core = _core(scheduler)
        conn = _CountingConn()
        shard = _shard_with(conn)
        core.touch(shard)
        core.forget(shard)
        scheduler.start()
        assert conn.pumps == 0

    def test_close_empties_the_registries_and_stops_reconciling(self) -> None:
        scheduler = TestScheduler()
        core = _core(scheduler)
        conn = _CountingConn()
        shard = _shard_with(conn)
        core.shards[""] = [shard]
        core.touch(shard)
        shards, topics = core.close()
        assert (shards, topics) == ([shard], [])
        assert core.closed and core.shards == {} and core.topics == {}
        scheduler.start()
        core.touch(shard)
        scheduler.start()
        assert conn.pumps == 0

    def test_a_raising_callback_is_logged_not_raised(self) -> None:
        def boom(_arg: object) -> None:
            raise RuntimeError("callback bug")

        core = _core(TestScheduler(), report_error=boom, report_state=boom)
        core.report_error(ValueError("x"))  # must not raise
        core.report_state(ConnectionEvent(ConnectionState.CLOSED, "c#1", "wss://x", 0.0))
