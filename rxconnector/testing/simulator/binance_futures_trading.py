"""Binance USD-M signed REST on the simulator's matching engine (``/fapi``).

=====================================  ==============================================
``POST /fapi/v1/order``                LIMIT / MARKET; ``positionSide``,
                                       ``reduceOnly``; answers RESULT (or ACK)
``GET`` / ``DELETE /fapi/v1/order``    query / cancel by ``orderId`` or
                                       ``origClientOrderId``
``GET /fapi/v1/openOrders``            open orders (of a symbol)
``GET /fapi/v3/balance``               the margin assets (``balance`` = free + locked,
                                       ``crossWalletBalance`` = ``balance``,
                                       ``availableBalance`` = free)
``GET /fapi/v3/positionRisk``          open positions with mark and liquidation price
``POST /fapi/v1/leverage``             1..125 (``ACCOUNT_CONFIG_UPDATE`` follows)
``POST /fapi/v1/marginType``           ISOLATED / CROSSED (-4046 no change, -4048 with
                                       a position or order open)
``POST`` / ``GET
/fapi/v1/positionSide/dual``           hedge mode on/off (refused with positions or
                                       orders open: -4068)
``POST/PUT/DELETE /fapi/v1/listenKey`` API key only (no signature), see
                                       :mod:`~.binance_futures_user`
=====================================  ==============================================

The engine trades USD-M orders as ``linear`` (USDT margin at the account's leverage of
the symbol). Engine refusals map to Binance's codes as for Spot, plus ``-2022``
(ReduceOnly Order is rejected), ``-4061`` (position side does not match the mode) and
``PERCENT_PRICE``: a LIMIT price above mark x 1.05 answers ``-4016``, below mark x 0.95
``-4024``. Isolated margin: the position's margin is its isolated wallet, left out of
``crossWalletBalance`` / ``cw``. Not simulated: STOP / TAKE_PROFIT / TRAILING orders and
``closePosition`` (-1013 saying so), adding or removing isolated margin, funding,
liquidation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from rxconnector.testing.simulator.accounts import Account, Accounts
from rxconnector.testing.simulator.binance_futures import FuturesPayloads
from rxconnector.testing.simulator.binance_futures_user import (
    VENUE,
    FuturesUserStreams,
    futures_order_body,
    position_risk_row,
)
from rxconnector.testing.simulator.binance_http import ApiError, int_param, mandatory
from rxconnector.testing.simulator.binance_rest import Endpoint
from rxconnector.testing.simulator.binance_trading import (
    BinanceSpotTradingRest,
    binance_amount,
    binance_rejection,
)
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import OrderRequest, Rejection
from rxconnector.testing.simulator.state import SimState

__all__ = ["PERCENT_DOWN", "PERCENT_UP", "BinanceFuturesTradingRest"]

#: PERCENT_PRICE multipliers the simulator's exchangeInfo publishes.
PERCENT_UP = Decimal("1.05")
PERCENT_DOWN = Decimal("0.95")
_SIGNED = frozenset({"recvWindow", "timestamp", "signature"})
_ORDER = frozenset(
    {
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "price",
        "newClientOrderId",
        "newOrderRespType",
        "positionSide",
        "reduceOnly",
        "closePosition",
        "stopPrice",
        "workingType",
        "priceProtect",
        "activationPrice",
        "callbackRate",
    }
)
_REF = frozenset({"symbol", "orderId", "origClientOrderId"})
_UNSUPPORTED = ("closePosition", "stopPrice", "activationPrice", "callbackRate")


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except ArithmeticError:
        raise ApiError(400, -1102, f"Parameter '{name}' is malformed.") from None


class BinanceFuturesTradingRest(BinanceSpotTradingRest):
    """``/fapi`` account and order endpoints (module docstring)."""

    def __init__(
        self,
        state: SimState,
        accounts: Accounts,
        engine: MatchingEngine,
        users: FuturesUserStreams,
    ) -> None:
        super().__init__(state, accounts, engine, FuturesPayloads())
        self._prefix = "/fapi"
        self._users = users

    async def _verify(self, request: web.Request, params: dict[str, str], now: int) -> Account:
        """USER_STREAM endpoints need the API key only; the rest are SIGNED."""
        if request.path.endswith("/listenKey"):
            account = self._accounts.get(request.headers.get("X-MBX-APIKEY", ""))
            if account is None:
                raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
            return account
        return await super()._verify(request, params, now)

    def _endpoints(self) -> list[Endpoint]:
        ref = _REF | _SIGNED
        sym = frozenset({"symbol"}) | _SIGNED
        none: frozenset[str] = frozenset()
        return [
            Endpoint("POST", "/v1/order", self._futures_order, lambda p: 0, _ORDER | _SIGNED, True),
            Endpoint("GET", "/v1/order", self._futures_query, lambda p: 1, ref, True),
            Endpoint("DELETE", "/v1/order", self._futures_cancel, lambda p: 1, ref, True),
            Endpoint(
                "GET",
                "/v1/openOrders",
                self._futures_open,
                lambda p: 1 if "symbol" in p else 40,
                sym,
                True,
            ),
            Endpoint("GET", "/v3/balance", self._balance, lambda p: 5, _SIGNED, True),
            Endpoint("GET", "/v3/positionRisk", self._position_risk, lambda p: 5, sym, True),
            Endpoint("POST", "/v1/leverage", self._leverage, lambda p: 1, sym | {"leverage"}, True),
            Endpoint(
                "POST", "/v1/marginType", self._margin_type, lambda p: 1, sym | {"marginType"}, True
            ),
            Endpoint(
                "POST",
                "/v1/positionSide/dual",
                self._set_mode,
                lambda p: 1,
                _SIGNED | {"dualSidePosition"},
                True,
            ),
            Endpoint("GET", "/v1/positionSide/dual", self._get_mode, lambda p: 30, _SIGNED, True),
            Endpoint("POST", "/v1/listenKey", self._key_create, lambda p: 1, none, True),
            Endpoint("PUT", "/v1/listenKey", self._key_keepalive, lambda p: 1, none, True),
            Endpoint("DELETE", "/v1/listenKey", self._key_close, lambda p: 1, none, True),
        ]

    # -- orders ---------------------------------------------------------------------------

    def _futures_request(self, params: dict[str, str], account: Account) -> OrderRequest:
        symbol = self._symbol(params)
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise mandatory("side") if not side else ApiError(400, -1117, "Invalid side.")
        kind = params.get("type")
        if not kind:
            raise mandatory("type")
        for name in _UNSUPPORTED:
            if params.get(name):
                raise ApiError(400, -1013, f"The simulator does not support '{name}'.")
        if kind not in ("LIMIT", "MARKET"):
            raise ApiError(400, -1013, f"The simulator does not support {kind} orders.")
        quantity = _decimal(params, "quantity")
        price = _decimal(params, "price")
        if quantity is None:
            raise mandatory("quantity")
        tif = params.get("timeInForce")
        if kind == "LIMIT":
            if price is None:
                raise mandatory("price")
            if not tif:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise ApiError(400, -1115, "Invalid timeInForce.")
            self._check_percent_price(symbol, price)
        else:
            tif = "GTC"
        position_side = params.get("positionSide", "BOTH")
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise ApiError(400, -4006, "Invalid position side.")
        reduce_only = params.get("reduceOnly", "false")
        if reduce_only not in ("true", "false"):
            raise ApiError(400, -1102, "Parameter 'reduceOnly' is malformed.")
        if reduce_only == "true" and position_side != "BOTH":
            raise ApiError(400, -1106, "Parameter 'reduceonly' sent when not required.")
        client_id = self._client_id(params, "newClientOrderId") or self._new_client_id()
        return OrderRequest(
            venue=VENUE,
            symbol=symbol,
            side="BUY" if side == "BUY" else "SELL",
            type=kind,
            quantity=quantity,
            price=price,
            time_in_force=tif,
            client_order_id=client_id,
            category="linear",
            reduce_only=reduce_only == "true",
            position_side=position_side,
            label=kind,
        )

    def _check_percent_price(self, symbol: str, price: Decimal) -> None:
        now = self._state.server_time_ms()
        mark = Decimal(self._payloads_mark(symbol, now))
        if price > mark * PERCENT_UP:
            raise ApiError(400, -4016, f"Limit price can't be higher than {mark * PERCENT_UP}.")
        if price < mark * PERCENT_DOWN:
            raise ApiError(400, -4024, f"Limit price can't be lower than {mark * PERCENT_DOWN}.")

    def _payloads_mark(self, symbol: str, now: int) -> str:
        payloads = FuturesPayloads()
        return str(payloads.mark_price(self._state.market[symbol], now)["p"])

    def _futures_order(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        req = self._futures_request(params, account)
        try:
            order = self._engine.place(account, req, now)
        except Rejection as exc:
            raise _futures_rejection(exc) from None
        if params.get("newOrderRespType") == "ACK":
            return {
                "orderId": order.id,
                "symbol": order.symbol,
                "clientOrderId": order.client_order_id,
                "status": "NEW",
                "updateTime": now,
            }
        return futures_order_body(order)

    def _futures_query(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol, order_id, client_id = self._ref(params)
        order = self._engine.find(account.api_key, VENUE, symbol, order_id, client_id)
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return futures_order_body(order)

    def _futures_cancel(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol, order_id, client_id = self._ref(params)
        try:
            order = self._engine.cancel(account, VENUE, symbol, order_id, client_id, now=now)
        except Rejection as exc:
            raise _futures_rejection(exc) from None
        return futures_order_body(order)

    def _futures_open(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params) if params.get("symbol") else None
        orders = self._engine.open_orders(account.api_key, VENUE, symbol)
        return [futures_order_body(o) for o in orders]

    # -- account --------------------------------------------------------------------------

    def _balance(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        rows = []
        quotes = sorted({m.spec.quote_asset for m in self._state.market.symbols.values()})
        for asset in quotes:
            free, locked = account.free(asset), account.locked(asset)
            wallet = free + locked
            isolated = self._engine.isolated_margin(account.api_key, asset)
            unrealised = sum(
                (
                    p.size * (Decimal(self._payloads_mark(p.symbol, now)) - p.entry_price)
                    for p in self._engine.positions(account.api_key)
                    if p.size and self._state.market[p.symbol].spec.quote_asset == asset
                ),
                Decimal(0),
            )
            rows.append(
                {
                    "accountAlias": "SimA",
                    "asset": asset,
                    "balance": binance_amount(wallet),
                    "crossWalletBalance": binance_amount(wallet - isolated),
                    "crossUnPnl": binance_amount(unrealised),
                    "availableBalance": binance_amount(free),
                    "maxWithdrawAmount": binance_amount(free),
                    "marginAvailable": True,
                    "updateTime": account.update_time or now,
                }
            )
        return rows

    def _position_risk(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params) if params.get("symbol") else None
        rows = []
        for position in self._engine.positions(account.api_key):
            if not position.size or symbol not in (None, position.symbol):
                continue
            mark = Decimal(self._payloads_mark(position.symbol, now))
            leverage = self._engine.leverage(account.api_key, position.symbol)
            isolated = self._engine.margin_type(account.api_key, position.symbol) == "isolated"
            rows.append(position_risk_row(position, mark, leverage, now, isolated=isolated))
        return rows

    def _leverage(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params)
        leverage = int_param(params, "leverage")
        if leverage is None:
            raise mandatory("leverage")
        try:
            self._engine.set_leverage(account.api_key, symbol, leverage)
        except Rejection:
            raise ApiError(400, -4028, f"Leverage {leverage} is not valid") from None
        self._users.config_changed(account.api_key, {"ac": {"s": symbol, "l": leverage}})
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol}

    def _margin_type(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        symbol = self._symbol(params)
        kind = {"ISOLATED": "isolated", "CROSSED": "cross"}.get(params.get("marginType", ""))
        if kind is None:
            raise mandatory("marginType")
        if kind == self._engine.margin_type(account.api_key, symbol):
            raise ApiError(400, -4046, "No need to change margin type.")
        try:
            self._engine.set_margin_type(account.api_key, symbol, kind)
        except Rejection:
            raise ApiError(
                400, -4048, "Margin type cannot be changed if there exists position."
            ) from None
        return {"code": 200, "msg": "success"}

    def _set_mode(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        value = params.get("dualSidePosition")
        if value not in ("true", "false"):
            raise mandatory("dualSidePosition")
        hedge = value == "true"
        if hedge == self._engine.hedge_mode(account.api_key):
            raise ApiError(400, -4059, "No need to change position side.")
        try:
            self._engine.set_hedge_mode(account.api_key, hedge)
        except Rejection:
            raise ApiError(
                400, -4068, "Position side cannot be changed if there exists position."
            ) from None
        self._users.config_changed(account.api_key, {"ai": {"j": False, "d": hedge}})
        return {"code": 200, "msg": "success"}

    def _get_mode(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        return {"dualSidePosition": self._engine.hedge_mode(account.api_key)}

    def _key_create(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        return {"listenKey": self._users.create_key(account, now)}

    def _key_keepalive(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        if not self._users.keepalive(account, now):
            raise ApiError(400, -1125, "This listenKey does not exist.")
        return {}

    def _key_close(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None
        self._users.close_key(account)
        return {}


def _futures_rejection(rejection: Rejection) -> ApiError:
    if rejection.reason == "reduce_only":
        return ApiError(400, -2022, "ReduceOnly Order is rejected.")
    if rejection.reason == "position_side":
        return ApiError(400, -4061, "Order's position side does not match user's setting.")
    if rejection.reason == "insufficient_balance":
        return ApiError(400, -2019, "Margin is insufficient.")
    return binance_rejection(rejection)
