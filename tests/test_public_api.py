"""The public API is exactly what ``__all__`` says: pinned so it cannot drift silently."""

from __future__ import annotations

import rxconnector as rxc
import rxconnector.operators as rxops
import rxconnector.testing as rxtesting

EXPECTED_TOP_LEVEL = {
    # lifecycle and configuration
    "Connector", "Config", "Secret", "BreakerConfig", "ClockSyncConfig", "ConnectionConfig",
    "RateLimitConfig",
    # errors
    "RxConnectorError", "ConfigError", "TransportError", "ConnectError", "RequestTimeoutError",
    "WebSocketClosedError", "ExchangeError", "RateLimitError", "OrderStatusUnknownError",
    "OrderRejectedError", "CircuitOpenError", "ClockSyncError", "SubscriptionError", "ParseError",
    "FeedGapError", "NotSupportedError", "StaleConnectionError", "RecordingError",
    "ConnectorStoppedError",
    # models
    "AvgPrice", "Balance", "BalanceDelta", "BookTicker", "BreakerState", "BreakerStats",
    "ClockOffset", "ConnectionEvent", "ConnectionState", "DepthUpdate", "Execution", "Kline",
    "Liquidation",
    "MarkPrice", "MiniTicker", "Order", "OrderBook", "OrderUpdate", "Position", "SymbolInfo",
    "Ticker", "Trade",
    # blocking facade (no asyncio needed)
    "connect", "SyncConnector",
    # derivatives account notices (margin calls, leverage changes)
    "AccountEvent",
    # the feed surface every connector satisfies (Connector, FakeConnector, ReplayConnector,
    # RemoteConnector): strategies are typed against it
    "MarketData",
    # the REST/trading calls Connector, FakeConnector and ReplayConnector answer
    "Trading",
    # sub-modules
    "bus", "notebook", "operators", "replay", "sync", "testing", "__version__",
}  # fmt: skip

#: Scale-out on Redis Streams (``rxc.bus``, the ``redis`` extra).
EXPECTED_BUS = {
    "RemoteConnector", "Publisher", "PublisherStats", "FeedTarget", "default_venue_name",
    "ENTRY_VERSION", "decode_entry", "encode_gap", "encode_model", "stream_key",
}  # fmt: skip


class TestPublicApi:
    def test_top_level_all_is_pinned(self) -> None:
        """rxconnector.__all__ is exactly the expected set, without duplicates."""
        assert set(rxc.__all__) == EXPECTED_TOP_LEVEL
        assert len(rxc.__all__) == len(set(rxc.__all__))

    def test_every_exported_name_exists(self) -> None:
        """Every name in __all__ of each public module resolves."""
        for module in (rxc, rxops, rxtesting):
            for name in module.__all__:
                assert hasattr(module, name), f"{module.__name__}.{name}"

    def test_operators_surface(self) -> None:
        """The Rx building blocks users can apply to their own streams."""
        assert {"breaker", "retry_with_backoff", "share", "conflate", "CircuitBreaker"} <= set(
            rxops.__all__
        )

    def test_testing_surface(self) -> None:
        """The testing kit exposes the simulator, FakeConnector and marble helpers."""
        assert {"ExchangeSimulator", "FakeConnector", "cold", "hot", "expected", "ticks"} <= set(
            rxtesting.__all__
        )

    def test_bus_surface(self) -> None:
        """rxc.bus is pinned too, resolves lazily, and the core does not import it."""
        import subprocess
        import sys

        assert set(rxc.bus.__all__) == EXPECTED_BUS
        for name in rxc.bus.__all__:
            assert hasattr(rxc.bus, name), f"rxconnector.bus.{name}"
        probe = (
            "import sys, rxconnector; "
            "print('redis' in sys.modules, 'rxconnector.bus' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
        assert out.split() == ["False", "False"]

    def test_errors_share_one_root(self) -> None:
        """Every exported exception derives from RxConnectorError."""
        for name in rxc.__all__:
            obj = getattr(rxc, name)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                assert issubclass(obj, rxc.RxConnectorError), name

    def test_sync_and_replay_surfaces(self) -> None:
        """The blocking facade and record/replay modules are pinned like rxc.bus: a name
        added or dropped there changes the public API and must be deliberate."""
        assert set(rxc.sync.__all__) == {"Iteration", "SyncConnector", "connect", "iterate", "take"}
        assert set(rxc.replay.__all__) == {
            "RecordingConnector", "ReplayConnector", "ReplayHub", "ReplayObservable",
            "ReplayRest", "ReplayStats", "open",
        }  # fmt: skip
        for module in (rxc.sync, rxc.replay):
            assert len(module.__all__) == len(set(module.__all__)), module.__name__
            for name in module.__all__:
                assert hasattr(module, name), f"{module.__name__}.{name}"
