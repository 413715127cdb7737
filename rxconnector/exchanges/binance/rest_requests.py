"""Binance REST requests (Spot and USD-M), built and checked before anything is sent.

Pure functions from a call's arguments to the exact wire parameters: argument checks
(a ``ValueError`` names what is wrong), order parameters, the symbol filter checks, and
the signed / API-keyed request the engine sends (PROTOCOL.md §A3). USD-M's order
parameters are Spot's plus what only futures have; the difference is spelled out in
:func:`futures_order_params`, not hidden in a shared builder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from rxconnector.exchanges._args import OrderArgs, positive_decimal
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance.futures_rules import (
    FuturesRules,
    check_futures_order,
    validate_futures_params,
)
from rxconnector.exchanges.binance.signing import BinanceSigner
from rxconnector.exchanges.filters import check_order
from rxconnector.exchanges.query import encode_query
from rxconnector.exchanges.rest_spec import SignedRequest
from rxconnector.models import SymbolInfo

__all__ = [
    "FILTER_FAILURE_CODE",
    "check_filters",
    "check_futures_filters",
    "check_interval",
    "futures_order_params",
    "keyed_request",
    "order_params",
    "order_ref",
    "signed_request",
    "symbol",
    "weight_limit",
]

#: Binance's rule for ``newClientOrderId`` (BS ``rest-api.md`` "New order").
_CLIENT_ORDER_ID: Final = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_SIDES: Final = {"buy": "BUY", "sell": "SELL"}
#: Order types that need a price / a time in force (BS ``rest-api.md`` "New order").
_PRICED: Final = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"})
_TIMED: Final = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_DEFAULT_TIME_IN_FORCE: Final = "GTC"
#: ``newOrderRespType`` we ask for unless told otherwise: enough for a full Order.
_DEFAULT_RESPONSE_TYPE: Final = "RESULT"
#: BS ``errors.md``: filter failures ("Filter failure: PRICE_FILTER" ...) come as -1013.
FILTER_FAILURE_CODE: Final = -1013
#: Wire names an order's ``extra`` may not carry: the client order id has its own
#: argument (and must be the one an ``OrderStatusUnknownError`` reports), the rest are
#: added by signing (a second copy would be a duplicate parameter).
_RESERVED_EXTRA: Final = frozenset({"newClientOrderId", "recvWindow", "timestamp", "signature"})


def symbol(name: str) -> str:
    """A Binance symbol: stripped, upper case, never empty."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"symbol must be a non-empty string, got {name!r}")
    return name.strip().upper()


def check_interval(interval: str) -> None:
    """ValueError unless ``interval`` is one of Binance's kline intervals."""
    if interval not in ep.KLINE_INTERVALS:
        raise ValueError(
            f"interval {interval!r} is not one of Binance's: {', '.join(ep.KLINE_INTERVALS)}"
        )


def order_params(
    order: OrderArgs, new_client_order_id: Callable[[], str]
) -> tuple[str, dict[str, Any], str]:
    """``(symbol, params, client order id)`` of a Spot order (BS ``rest-api.md`` "New
    order"); the client order id is generated when the caller gave none."""
    sym = symbol(order.symbol)
    wire_side = _SIDES.get(order.side.lower()) if isinstance(order.side, str) else None
    if wire_side is None:
        raise ValueError(f"side must be 'buy' or 'sell', got {order.side!r}")
    kind = _order_type(order.type)
    _check_extra(order.extra)
    qty = positive_decimal("quantity", order.quantity)
    px = positive_decimal("price", order.price)
    if kind in _PRICED and px is None:
        raise ValueError(f"a {kind} order needs a price")
    if kind == "MARKET":
        if qty is None and "quoteOrderQty" not in order.extra:
            raise ValueError("a MARKET order needs quantity or quoteOrderQty")
    elif qty is None:
        raise ValueError(f"a {kind} order needs a quantity")
    tif = order.time_in_force.upper() if order.time_in_force else None
    if tif is None and kind in _TIMED:
        tif = _DEFAULT_TIME_IN_FORCE
    coid = _client_order_id(order.client_order_id, new_client_order_id)
    params: dict[str, Any] = {
        "symbol": sym,
        "side": wire_side,
        "type": kind,
        "timeInForce": tif,
        "quantity": qty,
        "price": px,
        "newClientOrderId": coid,
        "newOrderRespType": _DEFAULT_RESPONSE_TYPE,
    }
    params.update(order.extra)
    return sym, params, coid


def futures_order_params(
    order: OrderArgs, new_client_order_id: Callable[[], str]
) -> tuple[str, dict[str, Any], str]:
    """A USD-M order's parameters: Spot's, except that a ``closePosition=true`` order
    may come without a quantity (it closes whatever is open), plus the futures-only
    checks of ``positionSide`` / ``reduceOnly`` / ``closePosition``
    (:func:`~rxconnector.exchanges.binance.futures_rules.validate_futures_params`)."""
    extra = order.extra
    closing = (
        str(extra.get("closePosition", "")).lower() == "true" or extra.get("closePosition") is True
    )
    if closing and order.quantity is None:
        # Spot's checks want a quantity; a close-all order has none by design.
        sym, request, coid = order_params(
            OrderArgs(
                order.symbol,
                order.side,
                order.type,
                "1",
                order.price,
                order.time_in_force,
                order.client_order_id,
                order.extra,
            ),
            new_client_order_id,
        )
        request["quantity"] = None
    else:
        sym, request, coid = order_params(order, new_client_order_id)
    validate_futures_params(request, quantity_given=order.quantity is not None)
    return sym, request, coid


def order_ref(
    name: str, order_id: int | str | None, client_order_id: str | None, client_id_param: str
) -> dict[str, Any]:
    """The parameters naming one order: ``orderId`` or the client order id (sent as
    ``client_id_param``, e.g. ``origClientOrderId``)."""
    if order_id is None and client_order_id is None:
        raise ValueError("give order_id or client_order_id")
    return {"symbol": symbol(name), "orderId": order_id, client_id_param: client_order_id}


def check_filters(info: SymbolInfo | None, params: Mapping[str, Any]) -> None:
    """Raise ``OrderRejectedError`` for an order the symbol's rules refuse (nothing to
    check when the exchange did not list the symbol: it will answer for itself)."""
    if info is not None:
        check_order(info, params["side"], params["type"], params["quantity"], params["price"])


def check_futures_filters(
    info: SymbolInfo | None, rules: FuturesRules | None, params: Mapping[str, Any]
) -> None:
    """Spot's price / lot / notional checks (skipped for a close-all order without a
    quantity), then USD-M's MARKET_LOT_SIZE."""
    if info is None:
        return
    quantity = params.get("quantity")
    if quantity is not None:
        check_order(info, params["side"], params["type"], quantity, params.get("price"))
    if rules is not None:
        check_futures_order(info, rules, params["side"], params["type"], quantity)


def weight_limit(exchange_info: Mapping[str, Any]) -> int | None:
    """The ``REQUEST_WEIGHT`` per 1 minute an ``exchangeInfo`` answer announces (a limit
    below 1 is a malformed answer, not a budget to apply)."""
    limit: int | None = None
    for rule in exchange_info.get("rateLimits") or ():
        if (
            isinstance(rule, dict)
            and rule.get("rateLimitType") == "REQUEST_WEIGHT"
            and rule.get("interval") == "MINUTE"
            and rule.get("intervalNum") == 1
        ):
            limit = int(rule["limit"])
            if limit < 1:  # malformed (ValueError: ParseError in the reply parser)
                raise ValueError(f"REQUEST_WEIGHT limit must be >= 1, got {limit}")
    return limit


def signed_request(
    signer: BinanceSigner, params: Mapping[str, Any], recv_window: int, timestamp: int
) -> SignedRequest:
    """A SIGNED request (PROTOCOL.md §A3): ``recvWindow`` and ``timestamp`` appended, the
    exact query string signed, the key in ``X-MBX-APIKEY``."""
    query = encode_query([*params.items(), ("recvWindow", recv_window), ("timestamp", timestamp)])
    return SignedRequest(
        query=f"{query}&{signer.sign_query(query)}",
        headers={"X-MBX-APIKEY": signer.api_key},
    )


def keyed_request(api_key: str, params: Mapping[str, Any]) -> SignedRequest:
    """A USER_STREAM request: the API key header, no signature."""
    return SignedRequest(
        query=encode_query(list(params.items())), headers={"X-MBX-APIKEY": api_key}
    )


def _order_type(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"type must be a Binance order type such as 'LIMIT', got {value!r}")
    return value.upper()


def _check_extra(extra: Mapping[str, Any]) -> None:
    reserved = sorted(_RESERVED_EXTRA.intersection(extra))
    if reserved:
        raise ValueError(
            f"{', '.join(reserved)} cannot be passed as extra parameters "
            "(give the client order id as client_order_id=; signing adds the rest)"
        )


def _client_order_id(given: str | None, new_client_order_id: Callable[[], str]) -> str:
    coid = given if given is not None else new_client_order_id()
    if not _CLIENT_ORDER_ID.match(coid):
        raise ValueError(
            f"client_order_id must match {_CLIENT_ORDER_ID.pattern} (Binance), got {coid!r}"
        )
    return coid
