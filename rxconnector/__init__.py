"""rxconnector: crypto exchange feeds and REST calls as composable ReactiveX Observables.

Layout: ``config``/``errors``/``models`` are the vocabulary; ``transport`` is the only
place that touches aiohttp's client; ``rate`` holds the rate limits both transport and
REST obey (frame pacing, connection attempts, request weights); ``streams`` holds the
subscription hub, the order-book and trade-continuity logic and the private account
streams (``streams/accounts``); ``exchanges/<venue>`` holds pure venue knowledge;
``operators`` holds the public Rx building blocks; ``connector`` is the facade.
Only the names in ``__all__`` are public API (pinned by tests/test_public_api.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rxconnector import operators, sync
from rxconnector._version import __version__
from rxconnector.config import (
    BreakerConfig,
    ClockSyncConfig,
    Config,
    ConnectionConfig,
    RateLimitConfig,
    Secret,
)
from rxconnector.connector import Connector
from rxconnector.errors import (
    CircuitOpenError,
    ClockSyncError,
    ConfigError,
    ConnectError,
    ConnectorStoppedError,
    ExchangeError,
    FeedGapError,
    NotSupportedError,
    OrderRejectedError,
    OrderStatusUnknownError,
    ParseError,
    RateLimitError,
    RecordingError,
    RequestTimeoutError,
    RxConnectorError,
    StaleConnectionError,
    SubscriptionError,
    TransportError,
    WebSocketClosedError,
)
from rxconnector.market_data import MarketData, Trading
from rxconnector.models import (
    AccountEvent,
    AvgPrice,
    Balance,
    BalanceDelta,
    BookTicker,
    BreakerState,
    BreakerStats,
    ClockOffset,
    ConnectionEvent,
    ConnectionState,
    DepthUpdate,
    Execution,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    Order,
    OrderBook,
    OrderUpdate,
    Position,
    SymbolInfo,
    Ticker,
    Trade,
)
from rxconnector.sync import SyncConnector, connect

__all__ = [
    "AccountEvent",
    "AvgPrice",
    "Balance",
    "BalanceDelta",
    "BookTicker",
    "BreakerConfig",
    "BreakerState",
    "BreakerStats",
    "CircuitOpenError",
    "ClockOffset",
    "ClockSyncConfig",
    "ClockSyncError",
    "Config",
    "ConfigError",
    "Connector",
    "ConnectError",
    "ConnectorStoppedError",
    "ConnectionConfig",
    "ConnectionEvent",
    "ConnectionState",
    "DepthUpdate",
    "ExchangeError",
    "Execution",
    "FeedGapError",
    "Kline",
    "Liquidation",
    "MarkPrice",
    "MarketData",
    "Trading",
    "MiniTicker",
    "NotSupportedError",
    "Order",
    "OrderBook",
    "OrderRejectedError",
    "OrderStatusUnknownError",
    "OrderUpdate",
    "ParseError",
    "Position",
    "RateLimitConfig",
    "RateLimitError",
    "RecordingError",
    "RequestTimeoutError",
    "RxConnectorError",
    "Secret",
    "StaleConnectionError",
    "SubscriptionError",
    "SymbolInfo",
    "SyncConnector",
    "Ticker",
    "Trade",
    "TransportError",
    "WebSocketClosedError",
    "__version__",
    "bus",
    "connect",
    "notebook",
    "operators",
    "replay",
    "sync",
    "testing",
]

#: Sub-modules loaded on first attribute access: the simulator (aiohttp.web), replay and
#: notebook helpers are not needed by a plain connector, so ``import rxconnector`` stays cheap.
#: ``bus`` (Redis Streams scale-out) also needs the optional ``redis`` extra.
_LAZY_SUBMODULES = frozenset({"bus", "notebook", "replay", "testing"})

if TYPE_CHECKING:
    from rxconnector import bus, notebook, replay, testing


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"rxconnector.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'rxconnector' has no attribute {name!r}")
