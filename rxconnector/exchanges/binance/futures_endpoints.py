"""Binance USD-M futures (``/fapi``) REST routes, weights and limits, as named constants.

Pure data plus two weight functions. Facts are from PROTOCOL.md §B and the official
SDK's docstrings (BPY ``market_data_api.py``, ``trade_api.py``, ``account_api.py``).
The error vocabulary is Spot's (:data:`~rxconnector.exchanges.binance.endpoints.BINANCE_ERRORS`).
"""

from __future__ import annotations

from typing import Final

from rxconnector.exchanges._args import int_in
from rxconnector.exchanges.rest_spec import Endpoint

__all__ = [
    "AGG_TRADES",
    "BALANCE",
    "CANCEL_ORDER",
    "DEPTH",
    "DEPTH_LIMITS",
    "EXCHANGE_INFO",
    "KLINES",
    "KLINES_MAX_LIMIT",
    "LEVERAGE",
    "LISTEN_KEY_CLOSE",
    "LISTEN_KEY_CREATE",
    "LISTEN_KEY_KEEPALIVE",
    "MARGIN_TYPE",
    "NEW_ORDER",
    "OPEN_ORDERS",
    "OPEN_ORDERS_ALL_WEIGHT",
    "PING",
    "POSITION_MODE",
    "POSITION_RISK",
    "PREMIUM_INDEX",
    "QUERY_ORDER",
    "TEST_ORDER",
    "TICKER_24H",
    "TIME",
    "TRADES",
    "VENUE",
    "depth_weight",
    "klines_weight",
]

#: The documented request-weight budget per minute (PROTOCOL.md §B: 2,400).
WEIGHT_PER_MINUTE: Final = 2400

#: The venue name errors carry.
VENUE: Final = "binance_futures"

PING: Final = Endpoint("GET", "/fapi/v1/ping", 1, doc='BPY market_data_api.py "Test Connectivity"')
TIME: Final = Endpoint("GET", "/fapi/v1/time", 1, doc='BPY market_data_api.py "Check Server Time"')
EXCHANGE_INFO: Final = Endpoint(
    "GET", "/fapi/v1/exchangeInfo", 1, doc='BPY market_data_api.py "Exchange Information"'
)
#: Weight depends on ``limit``: see :func:`depth_weight`.
DEPTH: Final = Endpoint("GET", "/fapi/v1/depth", 5, doc='BPY market_data_api.py "Order Book"')
TRADES: Final = Endpoint(
    "GET", "/fapi/v1/trades", 5, doc='BPY market_data_api.py "Recent Trades List"'
)
AGG_TRADES: Final = Endpoint(
    "GET", "/fapi/v1/aggTrades", 20, doc='BPY market_data_api.py "Compressed/Aggregate Trades List"'
)
#: Weight depends on ``limit``: see :func:`klines_weight`.
KLINES: Final = Endpoint(
    "GET", "/fapi/v1/klines", 5, doc='BPY market_data_api.py "Kline/Candlestick Data"'
)
#: ``symbol`` given: 1 (40 for every symbol).
TICKER_24H: Final = Endpoint(
    "GET",
    "/fapi/v1/ticker/24hr",
    1,
    doc='BPY market_data_api.py "24hr Ticker Price Change Statistics"',
)
BALANCE: Final = Endpoint(
    "GET", "/fapi/v3/balance", 5, signed=True, doc='BPY account_api.py "Futures Account Balance V3"'
)
#: Placing an order costs 0 IP weight (it counts against the order rate limits).
NEW_ORDER: Final = Endpoint(
    "POST", "/fapi/v1/order", 0, signed=True, doc='BPY trade_api.py "New Order"'
)
TEST_ORDER: Final = Endpoint(
    "POST", "/fapi/v1/order/test", 1, signed=True, doc='BPY trade_api.py "Test Order"'
)
CANCEL_ORDER: Final = Endpoint(
    "DELETE", "/fapi/v1/order", 1, signed=True, doc='BPY trade_api.py "Cancel Order"'
)
QUERY_ORDER: Final = Endpoint(
    "GET", "/fapi/v1/order", 1, signed=True, doc='BPY trade_api.py "Query Order"'
)
OPEN_ORDERS: Final = Endpoint(
    "GET", "/fapi/v1/openOrders", 1, signed=True, doc='BPY trade_api.py "Current All Open Orders"'
)
OPEN_ORDERS_ALL_WEIGHT: Final = 40
POSITION_RISK: Final = Endpoint(
    "GET", "/fapi/v3/positionRisk", 5, signed=True, doc='BPY trade_api.py "Position Information V3"'
)
LEVERAGE: Final = Endpoint(
    "POST", "/fapi/v1/leverage", 1, signed=True, doc='BPY trade_api.py "Change Initial Leverage"'
)
MARGIN_TYPE: Final = Endpoint(
    "POST", "/fapi/v1/marginType", 1, signed=True, doc='BPY trade_api.py "Change Margin Type"'
)
POSITION_MODE: Final = Endpoint(
    "POST",
    "/fapi/v1/positionSide/dual",
    1,
    signed=True,
    doc='BPY trade_api.py "Change Position Mode"',
)
PREMIUM_INDEX: Final = Endpoint(
    "GET", "/fapi/v1/premiumIndex", 1, doc='BPY market_data_api.py "Mark Price"'
)
#: USER_STREAM security: the API key header, no signature.
LISTEN_KEY_CREATE: Final = Endpoint(
    "POST", "/fapi/v1/listenKey", 1, doc='BPY user data streams "Start User Data Stream"'
)
LISTEN_KEY_KEEPALIVE: Final = Endpoint(
    "PUT", "/fapi/v1/listenKey", 1, doc='BPY user data streams "Keepalive User Data Stream"'
)
LISTEN_KEY_CLOSE: Final = Endpoint(
    "DELETE", "/fapi/v1/listenKey", 1, doc='BPY user data streams "Close User Data Stream"'
)
#: ``GET /fapi/v1/depth`` limits and their weights (PROTOCOL.md §B).
_DEPTH_WEIGHTS: Final = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}

DEPTH_LIMITS: Final = tuple(_DEPTH_WEIGHTS)
#: ``GET /fapi/v1/klines`` ``limit`` tiers: [1,100) → 1, [100,500) → 2, [500,1000] → 5,
#: above → 10; at most 1500 candles.
_KLINE_WEIGHTS: Final = ((99, 1), (499, 2), (1000, 5), (1500, 10))
KLINES_MAX_LIMIT: Final = 1500
#: ``klines_history`` pages by Spot's 1000 candles (weight 5 here, the cheapest per
#: candle); trade limits (1000) are Spot's too, so Spot's paging applies as is.


def depth_weight(limit: int) -> int:
    """Request weight of a USD-M depth snapshot; ``limit`` must be one of :data:`DEPTH_LIMITS`."""
    weight = _DEPTH_WEIGHTS.get(limit) if not isinstance(limit, bool) else None
    if weight is None:
        raise ValueError(
            f"USD-M depth limit must be one of {', '.join(map(str, DEPTH_LIMITS))}, got {limit!r}"
        )
    return weight


def klines_weight(limit: int) -> int:
    """Request weight of a USD-M klines request of ``limit`` (1-1500) candles."""
    int_in("limit", limit, 1, KLINES_MAX_LIMIT)
    return next(weight for highest, weight in _KLINE_WEIGHTS if limit <= highest)
