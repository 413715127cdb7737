"""Binance Spot signed order endpoints on the simulator's matching engine (§A2.4).

``POST /api/v3/order``, ``POST /api/v3/order/test``, ``DELETE /api/v3/order``,
``GET /api/v3/order``, ``GET /api/v3/openOrders``, ``DELETE /api/v3/openOrders`` and
``GET /api/v3/myTrades``, added to the Spot REST dialect by subclassing it, so they go
through the same wrapper (latency and failure faults, request weight, unread
parameters, signature and timestamp checks) as ``/account``.

Answer shapes follow ``binance.spot.rest.order.{ack,result,full}`` and
``binance.spot.rest.cancel_order``; amounts are written with 8 decimals (more when the
exact value needs them: the simulator never rounds). Error codes (§A2.6):

========================================  =============================================
unknown symbol                            -1121 ``Invalid symbol.``
missing parameter                         -1102
parameter not allowed for the type        -1106 ``Parameter 'x' sent when not required.``
bad side / type / timeInForce             -1117 / -1116 / -1115
more than 8 decimals                      -1111 ``Parameter 'x' has too much precision.``
trading rule broken                       -1013 ``Filter failure: <FILTER>``
not enough free balance                   -2010 ``Account has insufficient balance ...``
client order id of an open order          -2010 ``Duplicate order sent.``
LIMIT_MAKER that would take               -2010 ``Order would immediately match and take.``
cancel of an unknown / closed order       -2011 ``Unknown order sent.``
query of an unknown order                 -2013 ``Order does not exist.``
========================================  =============================================

Order types the simulator cannot execute (stop and take-profit orders, iceberg and
trailing parameters, quoteOrderQty on a SELL) are refused with -1013 and a message
that says so, rather than accepted and silently treated as something else.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from rxconnector.testing.simulator.accounts import Account, Accounts
from rxconnector.testing.simulator.binance_http import ApiError, int_param, mandatory
from rxconnector.testing.simulator.binance_payloads import SpotPayloads
from rxconnector.testing.simulator.binance_rest import BinanceSpotRest, Endpoint
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import OrderRequest, Rejection, SimOrder
from rxconnector.testing.simulator.state import SimState

__all__ = [
    "BinanceSpotTradingRest",
    "binance_amount",
    "binance_order",
    "binance_rejection",
]

_CLIENT_ORDER_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_SIGNED = frozenset({"recvWindow", "timestamp", "signature"})
_ORDER_PARAMS = frozenset(
    {
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "quoteOrderQty",
        "price",
        "newClientOrderId",
        "strategyId",
        "strategyType",
        "stopPrice",
        "trailingDelta",
        "icebergQty",
        "newOrderRespType",
        "selfTradePreventionMode",
        "pegPriceType",
        "pegOffsetValue",
        "pegOffsetType",
    }
)
_REF = frozenset({"symbol", "orderId", "origClientOrderId"})
_UNSUPPORTED_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_UNSUPPORTED_PARAMS = ("stopPrice", "trailingDelta", "icebergQty", "pegPriceType")
_BALANCE_MSG = "Account has insufficient balance for requested action."


def binance_amount(value: Decimal) -> str:
    """Binance's 8-decimal amount string; more decimals only when exactness needs them."""
    exponent = value.normalize().as_tuple().exponent
    places = max(8, -exponent if isinstance(exponent, int) else 0)
    return f"{value:.{places}f}"


def binance_rejection(rejection: Rejection) -> ApiError:
    """The Binance error answer for an engine refusal (table in the module docstring)."""
    reason, detail = rejection.reason, rejection.detail
    if reason == "unknown_symbol":
        return ApiError(400, -1121, "Invalid symbol.")
    if reason == "precision":
        return ApiError(400, -1111, f"Parameter '{detail}' has too much precision.")
    if reason == "filter":
        return ApiError(400, -1013, f"Filter failure: {detail}")
    if reason == "insufficient_balance":
        return ApiError(400, -2010, _BALANCE_MSG)
    if reason == "duplicate_client_id":
        return ApiError(400, -2010, "Duplicate order sent.")
    if reason == "would_take":
        return ApiError(400, -2010, "Order would immediately match and take.")
    if reason == "unknown_order":
        return ApiError(400, -2011, "Unknown order sent.")
    return ApiError(400, -1013, f"The simulator does not support {detail or reason}.")


def binance_order(order: SimOrder, *, full: bool = False) -> dict[str, Any]:
    """The RESULT (or, with ``full``, query-order) fields of an order."""
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": binance_amount(order.price),
        "origQty": binance_amount(order.quantity),
        "executedQty": binance_amount(order.filled),
        "cummulativeQuoteQty": binance_amount(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.label,
        "side": order.side,
    }
    if full:
        body.update(
            stopPrice=binance_amount(Decimal(0)),
            icebergQty=binance_amount(Decimal(0)),
            time=order.created,
            updateTime=order.updated,
            isWorking=True,
        )
    body.update(
        workingTime=order.created,
        origQuoteOrderQty=binance_amount(order.quote_quantity or Decimal(0)),
        selfTradePreventionMode="NONE",
    )
    return body


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or "e" in raw.lower():
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return value


def _not_required(name: str) -> ApiError:
    return ApiError(400, -1106, f"Parameter '{name}' sent when not required.")


def _side_and_type(params: dict[str, str]) -> tuple[str, str]:
    """``side`` and ``type`` of an order request, checked as Binance checks them."""
    side = params.get("side")
    if not side:
        raise mandatory("side")
    if side not in ("BUY", "SELL"):
        raise ApiError(400, -1117, "Invalid side.")
    kind = params.get("type")
    if not kind:
        raise mandatory("type")
    if kind in _UNSUPPORTED_TYPES:
        raise ApiError(400, -1013, f"The simulator does not support {kind} orders.")
    if kind not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
        raise ApiError(400, -1116, "Invalid orderType.")
    for name in _UNSUPPORTED_PARAMS:
        if params.get(name):
            raise ApiError(400, -1013, f"The simulator does not support '{name}'.")
    return side, kind


def _market_time_in_force(
    params: dict[str, str],
    side: str,
    quantity: Decimal | None,
    quote: Decimal | None,
    price: Decimal | None,
) -> str:
    """A MARKET order's parameters checked; its time in force is always GTC."""
    if params.get("timeInForce") is not None:
        raise _not_required("timeInForce")
    if price is not None:
        raise _not_required("price")
    if quantity is None and quote is None:
        raise ApiError(
            400,
            -1102,
            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        )
    if quantity is not None and quote is not None:
        raise _not_required("quoteOrderQty")
    if quote is not None and side == "SELL":
        raise ApiError(400, -1013, "The simulator does not support quoteOrderQty on SELL orders.")
    return "GTC"


def _limit_time_in_force(
    params: dict[str, str],
    kind: str,
    quantity: Decimal | None,
    quote: Decimal | None,
    price: Decimal | None,
) -> str:
    """A LIMIT or LIMIT_MAKER order's parameters checked; its time in force."""
    tif = params.get("timeInForce")
    if quote is not None:
        raise _not_required("quoteOrderQty")
    if quantity is None:
        raise mandatory("quantity")
    if price is None:
        raise mandatory("price")
    if kind == "LIMIT_MAKER":
        if tif is not None:
            raise _not_required("timeInForce")
        return "GTC"
    if not tif:
        raise mandatory("timeInForce")
    if tif not in ("GTC", "IOC", "FOK"):
        raise ApiError(400, -1115, "Invalid timeInForce.")
    return tif


class BinanceSpotTradingRest(BinanceSpotRest):
    """The Spot REST dialect plus the signed order endpoints on ``engine``."""

    def __init__(
        self,
        state: SimState,
        accounts: Accounts,
        engine: MatchingEngine,
        payloads: SpotPayloads | None = None,
    ) -> None:
        super().__init__(state, accounts, payloads)
        self._engine = engine
        self._generated_ids = 0

    async def _verify(self, request: web.Request, params: dict[str, str], now: int) -> Account:
        """Binance's SIGNED checks (§A3, §A4) for every endpoint of the dialect.

        Replaces the Spot dialect's check so that signatures are verified with any key
        type the account holds (HMAC hex, Ed25519 or RSA base64, :meth:`Account.verify`).
        """
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        account = self._accounts.get(key)
        if account is None:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        for name in ("timestamp", "signature"):
            if not params.get(name):
                raise mandatory(name)
        body = (await request.text()) if request.can_read_body else ""
        unsigned = [
            "&".join(p for p in part.split("&") if p and not p.startswith("signature="))
            for part in (request.rel_url.raw_query_string, body)
        ]
        if not account.verify("".join(unsigned), params["signature"]):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        try:
            recv_window = float(params.get("recvWindow", "5000"))
        except ValueError:
            raise mandatory("recvWindow") from None
        if recv_window > 60_000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        timestamp = int_param(params, "timestamp") or 0
        if timestamp > 10**14:  # microseconds (§A2.1)
            timestamp //= 1000
        if self._state.faults.take_timestamp_rejection() or now - timestamp > recv_window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if timestamp >= now + 1000:
            raise ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        return account

    def _endpoints(self) -> list[Endpoint]:
        order = _ORDER_PARAMS | _SIGNED
        ref = _REF | _SIGNED
        return [
            *super()._endpoints(),
            Endpoint("POST", "/order", self._new_order, lambda p: 1, order, signed=True),
            Endpoint(
                "POST",
                "/order/test",
                self._test_order,
                lambda p: 20 if p.get("computeCommissionRates") == "true" else 1,
                order | {"computeCommissionRates"},
                signed=True,
            ),
            Endpoint(
                "DELETE",
                "/order",
                self._cancel_order,
                lambda p: 1,
                ref | {"newClientOrderId", "cancelRestrictions"},
                signed=True,
            ),
            Endpoint("GET", "/order", self._query_order, lambda p: 4, ref, signed=True),
            Endpoint(
                "GET",
                "/openOrders",
                self._open_orders,
                lambda p: 6 if "symbol" in p else 80,
                frozenset({"symbol"}) | _SIGNED,
                signed=True,
            ),
            Endpoint(
                "DELETE",
                "/openOrders",
                self._cancel_open_orders,
                lambda p: 1,
                frozenset({"symbol"}) | _SIGNED,
                signed=True,
            ),
            Endpoint(
                "GET",
                "/myTrades",
                self._my_trades,
                lambda p: 20,
                frozenset({"symbol", "orderId", "startTime", "endTime", "fromId", "limit"})
                | _SIGNED,
                signed=True,
            ),
        ]

    # -- parameters -----------------------------------------------------------------------

    def _symbol(self, params: dict[str, str]) -> str:
        symbol = params.get("symbol")
        if not symbol:
            raise mandatory("symbol")
        self._lookup(symbol)  # -1121
        return symbol

    def _client_id(self, params: dict[str, str], name: str) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        if not _CLIENT_ORDER_ID.match(value):
            raise ApiError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                f"legal range is '{_CLIENT_ORDER_ID.pattern}'.",
            )
        return value

    def _new_client_id(self) -> str:
        self._generated_ids += 1
        return f"sim-{self._generated_ids:012d}"

    def _request(self, params: dict[str, str]) -> OrderRequest:
        """Binance order parameters → an engine request (or the Binance error)."""
        symbol = self._symbol(params)
        side, kind = _side_and_type(params)
        quantity = _decimal(params, "quantity")
        quote = _decimal(params, "quoteOrderQty")
        price = _decimal(params, "price")
        if kind == "MARKET":
            tif = _market_time_in_force(params, side, quantity, quote, price)
        else:
            tif = _limit_time_in_force(params, kind, quantity, quote, price)
        client_id = self._client_id(params, "newClientOrderId") or self._new_client_id()
        return OrderRequest(
            venue="binance",
            symbol=symbol,
            side="BUY" if side == "BUY" else "SELL",
            type="MARKET" if kind == "MARKET" else "LIMIT",
            quantity=quantity,
            price=price,
            quote_quantity=quote,
            time_in_force=tif,
            post_only=kind == "LIMIT_MAKER",
            client_order_id=client_id,
            label=kind,
        )

    def _response_type(self, params: dict[str, str], kind: str) -> str:
        default = "FULL" if kind in ("LIMIT", "MARKET") else "ACK"
        value = params.get("newOrderRespType", default)
        if value not in ("ACK", "RESULT", "FULL"):
            raise ApiError(400, -1100, "Invalid newOrderRespType.")
        return value

    def _ref(self, params: dict[str, str]) -> tuple[str, int | None, str | None]:
        symbol = self._symbol(params)
        order_id = int_param(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise ApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return symbol, order_id, client_id

    # -- endpoints ------------------------------------------------------------------------

    def _new_order(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None  # signed endpoint
        req = self._request(params)
        resp_type = self._response_type(params, req.label)
        try:
            order = self._engine.place(account, req, now)
        except Rejection as exc:
            raise binance_rejection(exc) from None
        ack = {
            "symbol": order.symbol,
            "orderId": order.id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": now,
        }
        if resp_type == "ACK":
            return ack
        body = {**ack, **binance_order(order)}
        if resp_type == "FULL":
            body["fills"] = [
                {
                    "price": binance_amount(f.price),
                    "qty": binance_amount(f.qty),
                    "commission": binance_amount(f.fee),
                    "commissionAsset": f.fee_asset,
                    "tradeId": f.trade_id,
                }
                for f in order.fills  # a new order's fills are all from placing it
            ]
        return body

    def _test_order(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        params = dict(params)
        compute = params.pop("computeCommissionRates", "false") == "true"
        req = self._request(params)
        self._response_type(params, req.label)
        try:
            self._engine.validate(account, req)
        except Rejection as exc:
            raise binance_rejection(exc) from None
        if not compute:
            return {}
        rate = binance_amount(self._engine.fee_rate)
        zero = binance_amount(Decimal(0))
        return {
            "standardCommissionForOrder": {"maker": rate, "taker": rate},
            "specialCommissionForOrder": {"maker": zero, "taker": zero},
            "taxCommissionForOrder": {"maker": zero, "taker": zero},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": zero,
            },
        }

    def _cancel_order(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol, order_id, client_id = self._ref(params)
        new_id = self._client_id(params, "newClientOrderId") or self._new_client_id()
        restriction = params.get("cancelRestrictions")
        if restriction not in (None, "ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise ApiError(400, -1145, "Invalid cancelRestrictions")
        found = self._engine.find(account.api_key, "binance", symbol, order_id, client_id)
        if found is not None and found.is_open and restriction is not None:
            wanted = "NEW" if restriction == "ONLY_NEW" else "PARTIALLY_FILLED"
            if found.status != wanted:
                raise ApiError(400, -2011, "Order was not canceled due to cancel restrictions.")
        try:
            order = self._engine.cancel(
                account,
                "binance",
                symbol,
                order_id,
                client_id,
                now=now,
                cancel_client_order_id=new_id,
            )
        except Rejection as exc:
            raise binance_rejection(exc) from None
        return self._cancel_answer(order, new_id, now)

    @staticmethod
    def _cancel_answer(order: SimOrder, new_id: str, now: int) -> dict[str, Any]:
        body = binance_order(order)
        del body["workingTime"]
        return {
            "symbol": order.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.id,
            "orderListId": -1,
            "clientOrderId": new_id,
            "transactTime": now,
            **{
                k: v
                for k, v in body.items()
                if k not in ("symbol", "orderId", "orderListId", "clientOrderId")
            },
        }

    def _query_order(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol, order_id, client_id = self._ref(params)
        order = self._engine.find(account.api_key, "binance", symbol, order_id, client_id)
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return binance_order(order, full=True)

    def _open_orders(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params) if "symbol" in params else None
        orders = self._engine.open_orders(account.api_key, "binance", symbol)
        return [binance_order(o, full=True) for o in orders]

    def _cancel_open_orders(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params)
        orders = self._engine.open_orders(account.api_key, "binance", symbol)
        if not orders:
            raise ApiError(400, -2011, "Unknown order sent.")
        answers = []
        for order in orders:
            new_id = self._new_client_id()
            self._engine.cancel(
                account, "binance", symbol, order.id, now=now, cancel_client_order_id=new_id
            )
            answers.append(self._cancel_answer(order, new_id, now))
        return answers

    def _my_trades(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params)
        order_id = int_param(params, "orderId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        from_id = int_param(params, "fromId")
        limit = self._limit(params, 500, 1000)
        rows: list[dict[str, Any]] = []
        for order in self._engine.orders_of(account.api_key, "binance"):
            if order.symbol != symbol or order_id not in (None, order.id):
                continue
            for f in order.fills:
                if (start is not None and f.time < start) or (end is not None and f.time > end):
                    continue
                if from_id is not None and f.trade_id < from_id:
                    continue
                rows.append(
                    {
                        "symbol": symbol,
                        "id": f.trade_id,
                        "orderId": order.id,
                        "orderListId": -1,
                        "price": binance_amount(f.price),
                        "qty": binance_amount(f.qty),
                        "quoteQty": binance_amount(f.quote_qty),
                        "commission": binance_amount(f.fee),
                        "commissionAsset": f.fee_asset,
                        "time": f.time,
                        "isBuyer": order.side == "BUY",
                        "isMaker": f.maker,
                        "isBestMatch": True,
                    }
                )
        rows.sort(key=lambda r: r["id"])
        return rows[:limit]
