"""Bybit v5 REST routes, limits and error vocabulary, as named constants.

Pure data plus one pure function (:func:`bybit_error`). Facts are from PROTOCOL.md §C3
(BY ``docs/v5/guide.mdx``, ``rate-limit/rate-limit.mdx``, ``error.mdx``) and the
per-endpoint pages under BY ``docs/v5/market``, ``docs/v5/order`` and
``docs/v5/account``; each constant names its page.

Bybit has no request *weights*: its IP budget counts requests (600 per 5 s across all
endpoints), so every route weighs 1 in the weight limiter, and the 5-second rule, the
per-endpoint budgets and the 403 ban are declared below as data (:data:`IP_WINDOW`,
:data:`ENDPOINT_LIMITS`, :data:`IP_BAN`), which the REST engine's gates enforce
(:mod:`rxconnector.rest.gates`, given them by
:attr:`BybitPlans.limits <rxconnector.exchanges.bybit.rest_plans.BybitMarketPlans.limits>`).
"""

from __future__ import annotations

from typing import Any, Final

from rxconnector.exchanges.dialect import (
    EndpointLimitRule,
    ErrorDialect,
    IpBanRule,
    RequestWindow,
)
from rxconnector.exchanges.rest_spec import Endpoint

__all__ = [
    "BYBIT_ERRORS",
    "CATEGORIES",
    "ENDPOINT_LIMITS",
    "IP_BAN",
    "IP_BAN_SECONDS",
    "IP_REQUEST_LIMIT",
    "IP_WINDOW",
    "IP_WINDOW_SECONDS",
    "MAX_ENDPOINT_WAIT_SECONDS",
    "INSTRUMENTS_PAGE_LIMIT",
    "KLINE",
    "KLINE_MAX_LIMIT",
    "LIMIT_HEADER",
    "LIMIT_RESET_HEADER",
    "LIMIT_STATUS_HEADER",
    "ORDERBOOK",
    "ORDERBOOK_MAX_LIMIT",
    "ORDER_CANCEL",
    "ORDER_CREATE",
    "ORDER_HISTORY",
    "ORDER_LINK_ID_RULE",
    "ORDER_REALTIME",
    "OPEN_ORDERS_PAGE_LIMIT",
    "RATE_LIMIT_CODE",
    "RATE_LIMIT_RETRY_SECONDS",
    "RECENT_TRADE",
    "RECENT_TRADE_MAX_LIMIT",
    "RETRYABLE_CODES",
    "INSTRUMENTS",
    "STATUS_UNKNOWN_CODES",
    "TICKERS",
    "TIME",
    "TIMESTAMP_CODES",
    "VENUE",
    "WALLET_BALANCE",
    "POSITION_LIST",
    "POSITIONS_PAGE_LIMIT",
    "POSITION_SWITCH_MODE",
    "bybit_dialect",
    "bybit_error",
]

#: The venue name models and errors carry.
VENUE: Final = "bybit"
#: The categories this library trades (``option`` is out of scope).
CATEGORIES: Final = ("spot", "linear", "inverse")

# -- Market (public) -----------------------------------------------------------------------
#: BY ``market/time.mdx``: ``{"timeSecond", "timeNano"}`` as strings.
TIME: Final = Endpoint("GET", "/v5/market/time", 1, doc="BY market/time.mdx")
#: BY ``market/instrument.mdx``: spot is one page; linear/inverse page with ``cursor``.
INSTRUMENTS: Final = Endpoint(
    "GET", "/v5/market/instruments-info", 1, doc="BY market/instrument.mdx"
)
INSTRUMENTS_PAGE_LIMIT: Final = 1000
#: BY ``market/orderbook.mdx`` (PROTOCOL.md §C3): ``limit`` 1..1000 on spot/linear/inverse.
ORDERBOOK: Final = Endpoint("GET", "/v5/market/orderbook", 1, doc="BY market/orderbook.mdx")
ORDERBOOK_MAX_LIMIT: Final = {"spot": 1000, "linear": 1000, "inverse": 1000}
#: BY ``market/recent-trade.mdx``: spot 1..60, others 1..1000.
RECENT_TRADE: Final = Endpoint(
    "GET", "/v5/market/recent-trade", 1, doc="BY market/recent-trade.mdx"
)
RECENT_TRADE_MAX_LIMIT: Final = {"spot": 60, "linear": 1000, "inverse": 1000}
#: BY ``market/kline.mdx`` (PROTOCOL.md §C3): ``limit`` 1..1000, candles newest first.
KLINE: Final = Endpoint("GET", "/v5/market/kline", 1, doc="BY market/kline.mdx")
KLINE_MAX_LIMIT: Final = 1000
#: BY ``market/tickers.mdx``.
TICKERS: Final = Endpoint("GET", "/v5/market/tickers", 1, doc="BY market/tickers.mdx")

# -- Account and trading (signed) ----------------------------------------------------------
#: BY ``account/wallet-balance.mdx``: ``accountType=UNIFIED``.
WALLET_BALANCE: Final = Endpoint(
    "GET", "/v5/account/wallet-balance", 1, signed=True, doc="BY account/wallet-balance.mdx"
)
#: BY ``position/position.mdx``: positions of ``symbol`` or ``settleCoin``; pages of 200.
POSITION_LIST: Final = Endpoint(
    "GET", "/v5/position/list", 1, signed=True, doc="BY position/position.mdx"
)
POSITIONS_PAGE_LIMIT: Final = 200
#: BY ``position/position-mode.mdx``: ``mode`` 0 one-way, 3 both sides (hedge).
POSITION_SWITCH_MODE: Final = Endpoint(
    "POST", "/v5/position/switch-mode", 1, signed=True, doc="BY position/position-mode.mdx"
)
#: BY ``order/create-order.mdx``: JSON body; the answer is an ack ``{orderId, orderLinkId}``.
ORDER_CREATE: Final = Endpoint(
    "POST", "/v5/order/create", 1, signed=True, doc="BY order/create-order.mdx"
)
#: BY ``order/cancel-order.mdx``: JSON body; the answer is an ack ``{orderId, orderLinkId}``.
ORDER_CANCEL: Final = Endpoint(
    "POST", "/v5/order/cancel", 1, signed=True, doc="BY order/cancel-order.mdx"
)
#: BY ``order/open-order.mdx``: open orders, plus the 500 most recent closed ones when
#: queried by ``orderId``/``orderLinkId``; pages of at most 50.
ORDER_REALTIME: Final = Endpoint(
    "GET", "/v5/order/realtime", 1, signed=True, doc="BY order/open-order.mdx"
)
OPEN_ORDERS_PAGE_LIMIT: Final = 50
#: BY ``order/order-list.mdx``: same rows as realtime, for orders no longer listed there.
ORDER_HISTORY: Final = Endpoint(
    "GET", "/v5/order/history", 1, signed=True, doc="BY order/order-list.mdx"
)
#: BY ``order/create-order.mdx`` "orderLinkId": at most 36 of letters, digits, ``-``, ``_``.
ORDER_LINK_ID_RULE: Final = r"^[A-Za-z0-9_-]{1,36}$"

# -- Rate limits (PROTOCOL.md §C3 "Rate limits", BY rate-limit.mdx) -------------------------
#: HTTP requests per IP per window, all endpoints and hosts together.
IP_REQUEST_LIMIT: Final = 600
IP_WINDOW_SECONDS: Final = 5.0
#: Breaking the IP limit answers HTTP 403 "access too frequent": wait at least 10 minutes.
IP_BAN_SECONDS: Final = 600.0
#: The IP budget as a weight per minute: 600 requests per 5 s, every route weighing 1
#: (PROTOCOL.md §C3), i.e. 7,200 per minute; the 5-second rule is paced separately.
WEIGHT_PER_MINUTE: Final = 7200

#: Per-UID, per-endpoint limit headers on every answer.
LIMIT_STATUS_HEADER: Final = "x-bapi-limit-status"
LIMIT_HEADER: Final = "x-bapi-limit"
LIMIT_RESET_HEADER: Final = "x-bapi-limit-reset-timestamp"
#: retCode for a broken per-endpoint limit ("Too many visits!").
RATE_LIMIT_CODE: Final = 10006
#: The per-endpoint windows are 1 s rolling: the wait when no reset header came.
RATE_LIMIT_RETRY_SECONDS: Final = 1.0
#: Longest wait for a per-endpoint window to reset before sending anyway; the windows
#: are 1 s, so a longer reset time means the clocks disagree.
MAX_ENDPOINT_WAIT_SECONDS: Final = 5.0

#: The rules above as data for the REST engine's gates (:mod:`rxconnector.rest.gates`).
IP_BAN: Final = IpBanRule(status=403, seconds=IP_BAN_SECONDS, venue_title="Bybit")
ENDPOINT_LIMITS: Final = EndpointLimitRule(
    status_header=LIMIT_STATUS_HEADER,
    reset_header=LIMIT_RESET_HEADER,
    limit_header=LIMIT_HEADER,
    code=RATE_LIMIT_CODE,
    code_key="retCode",
    message_key="retMsg",
    retry_seconds=RATE_LIMIT_RETRY_SECONDS,
    max_wait_seconds=MAX_ENDPOINT_WAIT_SECONDS,
)
IP_WINDOW: Final = RequestWindow(limit=IP_REQUEST_LIMIT, seconds=IP_WINDOW_SECONDS)

# -- Error codes (PROTOCOL.md §C3 "Errors", BY error.mdx) ----------------------------------
#: 10002 "request time exceeds the time window": clock re-sync helps.
TIMESTAMP_CODES: Final = frozenset({10002})
#: 10016 server error, 10019 trade service restarting, 429 trading service high load
#: (a retCode, not the HTTP status): a later attempt can succeed.
RETRYABLE_CODES: Final = frozenset({10016, 10019, 429})
#: 10016 "server error" on an order: it may or may not have been placed.
STATUS_UNKNOWN_CODES: Final = frozenset({10016})


def bybit_error(status: int, data: Any) -> tuple[int, str] | None:
    """``(retCode, retMsg)`` when a Bybit envelope reports an error, else ``None``.

    Bybit answers most errors with HTTP 200 and ``retCode != 0``. One code is left to
    the caller: a 2xx answer with retCode 10006 (per-endpoint rate limit) is passed
    through as a reply, because its ``X-Bapi-Limit-Reset-Timestamp`` header says how
    long to wait and the pipeline's error path keeps no headers. The engine's gates
    (:class:`~rxconnector.rest.gates.RequestGates`, from :data:`ENDPOINT_LIMITS`) turn it
    into :class:`~rxconnector.errors.RateLimitError` (so code using this dialect without
    them must check ``retCode``).
    """
    if not isinstance(data, dict):
        return None
    code, message = data.get("retCode"), data.get("retMsg")
    if isinstance(code, bool) or not isinstance(code, int) or code == 0:
        return None
    if code == RATE_LIMIT_CODE and 200 <= status < 300:
        return None
    return code, message if isinstance(message, str) else ""


#: Bybit's error vocabulary for :class:`~rxconnector.rest.client.RestClient`.
BYBIT_ERRORS: Final = ErrorDialect(
    extract=bybit_error,
    retryable_codes=RETRYABLE_CODES,
    status_unknown_codes=STATUS_UNKNOWN_CODES,
    timestamp_codes=TIMESTAMP_CODES,
    order_rate_codes=frozenset({RATE_LIMIT_CODE}),
)


def bybit_dialect() -> ErrorDialect:
    """Bybit's REST error vocabulary for the REST engine.

    ``retCode != 0`` is an error (10002 → clock re-sync and one retry; 10016, 10019 and
    retCode 429 retryable; 10016 on an order → status unknown). 10006 on HTTP 200 is
    left to the engine's gates, which read its reset header (see :func:`bybit_error`).
    """
    return BYBIT_ERRORS
