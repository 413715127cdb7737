"""Binance Spot REST endpoints, weights and error vocabulary, as named constants.

Pure data. Paths, weights and parameter limits are from PROTOCOL.md §A2.4 (BS
``rest-api.md``) unless a line says otherwise; error codes from §A2.6 (BS ``errors.md``).
Weights change from time to time: the server's ``X-MBX-USED-WEIGHT-1M`` header keeps
the limiter honest even when a constant here is stale.
"""

from __future__ import annotations

import re
from typing import Final

from rxconnector.exchanges.dialect import ErrorDialect, code_msg_error
from rxconnector.exchanges.rest_spec import Endpoint

__all__ = [
    "ACCOUNT",
    "AGG_TRADES",
    "AVG_PRICE",
    "BINANCE_ERRORS",
    "CANCEL_ORDER",
    "DEPTH",
    "DEPTH_MAX_LIMIT",
    "EXCHANGE_INFO",
    "HISTORICAL_TRADES",
    "KLINES",
    "KLINES_MAX_LIMIT",
    "KLINE_INTERVALS",
    "NEW_ORDER",
    "OPEN_ORDERS",
    "OPEN_ORDERS_ALL_WEIGHT",
    "PING",
    "QUERY_ORDER",
    "TEST_ORDER",
    "TEST_ORDER_COMMISSION_WEIGHT",
    "TICKER_24H",
    "TIME",
    "TRADES",
    "TRADES_MAX_LIMIT",
    "binance_dialect",
    "depth_weight",
]


# -- General (§A2.4) ------------------------------------------------------------------
PING: Final = Endpoint("GET", "/api/v3/ping", 1, doc='BS rest-api.md "Test connectivity"')
TIME: Final = Endpoint("GET", "/api/v3/time", 1, doc='BS rest-api.md "Check server time"')
EXCHANGE_INFO: Final = Endpoint(
    "GET", "/api/v3/exchangeInfo", 20, doc='BS rest-api.md "Exchange information"'
)

# -- Market data (§A2.4) --------------------------------------------------------------
#: Weight depends on ``limit``: see :func:`depth_weight`.
DEPTH: Final = Endpoint("GET", "/api/v3/depth", 5, doc='BS rest-api.md "Order book"')
DEPTH_MAX_LIMIT: Final = 5000
TRADES: Final = Endpoint("GET", "/api/v3/trades", 25, doc='BS rest-api.md "Recent trades list"')
TRADES_MAX_LIMIT: Final = 1000
AGG_TRADES: Final = Endpoint(
    "GET", "/api/v3/aggTrades", 4, doc='BS rest-api.md "Compressed/Aggregate trades list"'
)
#: Not in §A2.4; BS ``rest-api.md`` "Old trade lookup": weight 25, by ``fromId``.
HISTORICAL_TRADES: Final = Endpoint(
    "GET", "/api/v3/historicalTrades", 25, doc='BS rest-api.md "Old trade lookup"'
)
KLINES: Final = Endpoint("GET", "/api/v3/klines", 2, doc='BS rest-api.md "Kline/Candlestick data"')
KLINES_MAX_LIMIT: Final = 1000
#: ``symbol`` given: 2 (§A2.4 ``ticker/24hr`` row).
TICKER_24H: Final = Endpoint(
    "GET", "/api/v3/ticker/24hr", 2, doc='BS rest-api.md "24hr ticker price change statistics"'
)
AVG_PRICE: Final = Endpoint(
    "GET", "/api/v3/avgPrice", 2, doc='BS rest-api.md "Current average price"'
)

# -- Account / trading, SIGNED (§A2.4, §A3) ------------------------------------------
ACCOUNT: Final = Endpoint(
    "GET",
    "/api/v3/account",
    20,
    signed=True,
    doc='BS rest-api.md "Account information (USER_DATA)"',
)
NEW_ORDER: Final = Endpoint(
    "POST", "/api/v3/order", 1, signed=True, doc='BS rest-api.md "New order (TRADE)"'
)
TEST_ORDER: Final = Endpoint(
    "POST", "/api/v3/order/test", 1, signed=True, doc='BS rest-api.md "Test new order (TRADE)"'
)
#: ``order/test`` with ``computeCommissionRates=true`` weighs 20 (§A2.4).
TEST_ORDER_COMMISSION_WEIGHT: Final = 20
CANCEL_ORDER: Final = Endpoint(
    "DELETE", "/api/v3/order", 1, signed=True, doc='BS rest-api.md "Cancel order (TRADE)"'
)
#: Not in §A2.4; BS ``rest-api.md`` "Query order (USER_DATA)": weight 4.
QUERY_ORDER: Final = Endpoint(
    "GET", "/api/v3/order", 4, signed=True, doc='BS rest-api.md "Query order (USER_DATA)"'
)
#: Not in §A2.4; BS ``rest-api.md`` "Current open orders (USER_DATA)": 6 for a single
#: symbol, 80 when ``symbol`` is omitted.
OPEN_ORDERS: Final = Endpoint(
    "GET",
    "/api/v3/openOrders",
    6,
    signed=True,
    doc='BS rest-api.md "Current open orders (USER_DATA)"',
)
OPEN_ORDERS_ALL_WEIGHT: Final = 80

#: Kline intervals (BS ``enums.md`` "Kline/Candlestick chart intervals"; ``1s`` is Spot only).
KLINE_INTERVALS: Final = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)

#: ``GET /api/v3/depth`` weight by ``limit`` (§A2.4): (highest limit, weight).
_DEPTH_WEIGHTS: Final = ((100, 5), (500, 25), (1000, 50), (5000, 250))


#: The documented request-weight budget per minute (PROTOCOL.md §A2.3: ``REQUEST_WEIGHT``
#: 6,000 per minute since 2023), the default until ``exchangeInfo`` says otherwise.
WEIGHT_PER_MINUTE: Final = 6000


def depth_weight(limit: int) -> int:
    """Request weight of a depth snapshot of ``limit`` levels (1-100: 5, 101-500: 25,
    501-1000: 50, 1001-5000: 250)."""
    if limit < 1 or limit > DEPTH_MAX_LIMIT:
        raise ValueError(f"depth limit must be 1..{DEPTH_MAX_LIMIT}, got {limit}")
    for highest, weight in _DEPTH_WEIGHTS:
        if limit <= highest:
            return weight
    raise AssertionError("unreachable")  # pragma: no cover


#: Binance's ``{"code", "msg"}`` error vocabulary (§A2.6); shared by Spot and USD-M.
#: -1003 TOO_MANY_REQUESTS, -1007 TIMEOUT (backend; "execution status unknown"),
#: -1008 SERVER_BUSY are worth retrying; -1007 on a write means the outcome is unknown;
#: -1021 INVALID_TIMESTAMP calls for a clock re-sync; -1015 TOO_MANY_ORDERS is the
#: account's order-count limit.
BINANCE_ERRORS: Final = ErrorDialect(
    extract=code_msg_error,
    retryable_codes=frozenset({-1003, -1007, -1008}),
    status_unknown_codes=frozenset({-1007}),
    timestamp_codes=frozenset({-1021}),
    order_rate_codes=frozenset({-1015}),
    used_weight_header="x-mbx-used-weight-1m",
    # §A2.3: the shortest ban is 2 minutes; the weight window is one minute.
    ban_seconds=120.0,
    retry_after_seconds=60.0,
    # Order-count 429s come without Retry-After (BS rest-api.md "Order Rate Limits"):
    # the shortest order window is 10 seconds (X-MBX-ORDER-COUNT-10S).
    order_rate_retry_seconds=10.0,
    banned_until=re.compile(r"banned until (\d{10,16})"),
)


def binance_dialect() -> ErrorDialect:
    """Binance's REST error vocabulary (Spot and USD-M) for the REST engine."""
    return BINANCE_ERRORS
