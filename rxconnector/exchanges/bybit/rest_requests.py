"""Bybit v5 REST requests, built and checked before anything is sent: pure functions.

Order bodies (BY ``order/create-order.mdx``), order references, the account scopes a
listing walks, and the signed request the engine sends at send time: GET signs the
exact query string, POST the exact JSON body (PROTOCOL.md §C3 "Signing").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, NoReturn

import attrs
import orjson

from rxconnector.config import Config, Secret
from rxconnector.errors import ExchangeError, RateLimitError
from rxconnector.exchanges._args import OrderArgs, positive_decimal
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit.signing import rest_headers
from rxconnector.exchanges.query import encode_query, format_param
from rxconnector.exchanges.rest_spec import Endpoint, SignedRequest
from rxconnector.exchanges.symbols import normalize_symbol
from rxconnector.models import Order

__all__ = [
    "PENDING_CANCEL",
    "BybitOrder",
    "after_cancel",
    "cancel_lookup_error",
    "order_body",
    "order_ref",
    "BybitRestSigner",
    "rest_signer",
    "scopes",
    "signed_request",
]

_SIDES: Final[dict[str, str]] = {"buy": "Buy", "sell": "Sell"}
_ORDER_TYPES: Final = {"LIMIT": "Limit", "MARKET": "Market"}
_TIME_IN_FORCE: Final = {
    "GTC": "GTC",
    "IOC": "IOC",
    "FOK": "FOK",
    "POSTONLY": "PostOnly",
    "POST_ONLY": "PostOnly",
    "RPI": "RPI",
}
_OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})
#: Reported by ``cancel_order`` when the order still looks open right after Bybit
#: acknowledged the cancel (Bybit cancels asynchronously).
PENDING_CANCEL: Final = "PENDING_CANCEL"
_ORDER_LINK_ID: Final = re.compile(ep.ORDER_LINK_ID_RULE)
#: Wire names an order's ``extra`` may not carry: each is set from a checked argument
#: (an ``orderLinkId`` there would differ from the id an ``OrderStatusUnknownError``
#: reports; a ``qty`` or ``orderType`` would skip the checks and the filters).
_RESERVED_EXTRA: Final = frozenset({"category", "orderType", "qty", "orderLinkId"})


@attrs.frozen
class BybitOrder:
    """An order ready to send: the JSON body plus what the filter check and the ack's
    Order need (``checked_quantity`` is ``None`` when ``qty`` is not in the base coin,
    so lot-size rules cannot apply)."""

    symbol: str
    body: dict[str, Any]
    kind: str
    quantity: Decimal
    price: Decimal | None
    link_id: str
    checked_quantity: Decimal | None


def order_body(order: OrderArgs, category: str, new_link_id: Callable[[], str]) -> BybitOrder:
    """A Limit or Market order's ``POST /v5/order/create`` body; the ``orderLinkId`` is
    generated when the caller gave none."""
    sym = normalize_symbol(order.symbol, ep.VENUE)
    side = order.side
    wire_side = _SIDES.get(side.lower()) if isinstance(side, str) else None
    if wire_side is None:
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    reserved = sorted(_RESERVED_EXTRA.intersection(order.extra))
    if reserved:
        raise ValueError(
            f"{', '.join(reserved)} cannot be passed as extra parameters "
            "(they come from the category, type, quantity and client_order_id arguments)"
        )
    kind = _ORDER_TYPES.get(order.type.upper()) if isinstance(order.type, str) else None
    if kind is None:
        raise ValueError(f"Bybit order type must be 'LIMIT' or 'MARKET', got {order.type!r}")
    qty = positive_decimal("quantity", order.quantity)
    if qty is None:
        raise ValueError(f"a {kind} order needs a quantity")
    px = positive_decimal("price", order.price)
    if kind == "Limit" and px is None:
        raise ValueError("a Limit order needs a price")
    tif = _time_in_force(order.time_in_force, kind)
    link_id = _link_id(order.client_order_id, new_link_id)
    body: dict[str, Any] = {
        "category": category,
        "symbol": sym,
        "side": wire_side,
        "orderType": kind,
        "qty": format_param(qty),
        "price": format_param(px) if px is not None and kind == "Limit" else None,
        "timeInForce": tif,
        "orderLinkId": link_id,
    }
    body.update(
        {k: format_param(v) if isinstance(v, Decimal) else v for k, v in order.extra.items()}
    )
    checked = qty if _quantity_in_base(kind, body, category) else None
    return BybitOrder(sym, body, kind, qty, px, link_id, checked)


def order_ref(
    symbol: str, order_id: int | str | None, client_order_id: str | None
) -> dict[str, Any]:
    """The parameters naming one order: ``orderId``, else ``orderLinkId``."""
    if order_id is None and client_order_id is None:
        raise ValueError("give order_id or client_order_id")
    ref: dict[str, Any] = {"symbol": normalize_symbol(symbol, ep.VENUE)}
    if order_id is not None:
        ref["orderId"] = str(order_id)
    else:
        ref["orderLinkId"] = client_order_id
    return ref


def scopes(symbol: str | None, category: str) -> list[dict[str, Any]]:
    """What one listing (open orders, positions) walks: the symbol, or, on linear
    without a symbol, USDT- then USDC-settled (linear requires a symbol or a settle
    coin), else everything."""
    if symbol is not None:
        return [{"symbol": normalize_symbol(symbol, ep.VENUE)}]
    if category == "linear":
        return [{"settleCoin": "USDT"}, {"settleCoin": "USDC"}]
    return [{}]


def signed_request(
    method: str,
    params: Mapping[str, Any],
    api_key: str,
    secret: Secret,
    timestamp: int,
    recv_window: int,
) -> SignedRequest:
    """GET: signed over the exact query string; POST: over the exact JSON body sent."""
    if method == "GET":
        query = encode_query(params)
        return SignedRequest(
            query=query, headers=rest_headers(api_key, secret, timestamp, query, recv_window)
        )
    body = orjson.dumps({k: v for k, v in params.items() if v is not None}).decode()
    headers = rest_headers(api_key, secret, timestamp, body, recv_window)
    headers["Content-Type"] = "application/json"
    return SignedRequest(query="", headers=headers, body=body)


class BybitRestSigner:
    """How Bybit REST requests are signed (PROTOCOL.md §C3 "Signing"), as the engine
    calls it when a request leaves: GET over the exact query string, POST over the
    exact JSON body, ``timestamp`` being the synced exchange clock at that moment."""

    __slots__ = ("_api_key", "_api_secret", "_recv_window")

    def __init__(self, api_key: str, api_secret: Secret, recv_window: int) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._recv_window = recv_window

    def sign(self, endpoint: Endpoint, params: Mapping[str, Any], timestamp: int) -> SignedRequest:
        return signed_request(
            endpoint.method, params, self._api_key, self._api_secret, timestamp, self._recv_window
        )

    def key_only(self, endpoint: Endpoint, params: Mapping[str, Any]) -> SignedRequest:
        """Bybit has no route sent with the key but unsigned: every private route is
        signed."""
        raise ValueError(f"{endpoint.method} {endpoint.path}: Bybit signs every keyed request")

    def __repr__(self) -> str:
        shown = f"{self._api_key[:4]}…" if self._api_key else ""
        return f"BybitRestSigner(api_key={shown!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("BybitRestSigner holds a secret and cannot be pickled")


def rest_signer(config: Config) -> BybitRestSigner:
    """The REST signer of ``config``'s keys and ``recv_window``."""
    return BybitRestSigner(config.api_key, config.api_secret, config.recv_window)


def after_cancel(order: Order) -> Order:
    """The order looked up right after a cancel ack: still open means the cancel is
    pending (Bybit applies it asynchronously)."""
    if order.status in _OPEN_STATUSES:
        return attrs.evolve(order, status=PENDING_CANCEL)
    return order


def cancel_lookup_error(exc: Exception) -> Exception:
    """The lookup after an accepted cancel failed: say that the cancel was accepted."""
    note = "the cancel was accepted by Bybit, but looking the order up afterwards failed"
    if isinstance(exc, ExchangeError) and not isinstance(exc, RateLimitError):
        error = ExchangeError(
            f"{note}: {exc.message}",
            exchange=ep.VENUE,
            status=exc.status,
            code=exc.code,
            retryable=exc.retryable,
        )
        error.__cause__ = exc
        return error
    exc.add_note(note)
    return exc


def _time_in_force(value: str | None, kind: str) -> str | None:
    if value is None:
        return "GTC" if kind == "Limit" else None
    wire = _TIME_IN_FORCE.get(value.upper()) if isinstance(value, str) else None
    if wire is None:
        raise ValueError(
            f"time_in_force must be one of GTC, IOC, FOK, PostOnly, RPI; got {value!r}"
        )
    return wire


def _link_id(given: str | None, new_link_id: Callable[[], str]) -> str:
    link_id = given if given is not None else new_link_id()
    if not isinstance(link_id, str) or not _ORDER_LINK_ID.match(link_id):
        raise ValueError(
            f"client_order_id must match {ep.ORDER_LINK_ID_RULE} (Bybit orderLinkId), "
            f"got {link_id!r}"
        )
    return link_id


def _quantity_in_base(kind: str, body: Mapping[str, Any], category: str) -> bool:
    """Whether ``qty`` is in the base coin (only then can lot-size rules apply): not
    for a spot Market Buy, which is in the quote coin unless ``marketUnit=baseCoin``."""
    if kind != "Market" or category != "spot":
        return True
    unit = body.get("marketUnit")
    return unit == "baseCoin" or (unit is None and body["side"] == "Sell")
