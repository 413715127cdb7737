"""Bybit v5 signed REST on the simulator's matching engine (PROTOCOL.md §C3).

Endpoints (``category=spot`` and ``category=linear``; see "Not simulated" below):

=================================  ====================================================
``POST /v5/order/create``          JSON body; answers ``{"orderId", "orderLinkId"}``
``POST /v5/order/cancel``          JSON body, ``orderId`` or ``orderLinkId``; the same
``GET /v5/order/realtime``         open orders (newest first, ``limit`` 1..50,
                                   ``cursor``); by ``orderId``/``orderLinkId`` also a
                                   closed one; ``openOnly=1`` the recent closed ones
``GET /v5/order/history``          orders that ended, newest first
``GET /v5/account/wallet-balance`` ``accountType=UNIFIED``, optional ``coin=A,B``
``GET /v5/position/list``          linear positions (``symbol`` or ``settleCoin``)
``POST /v5/position/switch-mode``  ``mode`` 0 one-way / 3 hedge (``positionIdx`` 1 buy
                                   side, 2 sell side); per account in the simulator
=================================  ====================================================

Every answer is Bybit's envelope ``{"retCode", "retMsg", "result", "retExtInfo",
"time"}`` with HTTP 200, errors included (as Bybit does for business errors).
Authentication: ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-SIGN`` and optional
``X-BAPI-RECV-WINDOW`` (default 5000); the signature is lowercase hex HMAC-SHA256 of
``timestamp + api_key + recv_window + payload`` where payload is the raw query string
(GET) or the raw JSON body (POST). Unknown or missing key: 10003; bad signature: 10004
(``error sign! origin_string[...]``, as Bybit shows it: the string signed, never the
secret); ``timestamp`` outside ``[server - recv_window, server + 1000)`` of the
simulator's shifted clock, or the ``reject_timestamp_once`` fault: 10002.

Per-UID, per-endpoint limits in a rolling 1 s window (spot: create and cancel 20/s,
queries 50/s); every answer carries ``X-Bapi-Limit``, ``X-Bapi-Limit-Status`` and
``X-Bapi-Limit-Reset-Timestamp``; over the limit the answer is retCode 10006
``Too many visits!``. The ``rest_latency`` and ``fail_rest`` faults apply (5xx with
retCode 10016; 429; 418 is Bybit's IP ban, HTTP 403 ``access too frequent``).

Linear orders trade the matching engine's linear model (USDT margin, one-way mode,
leverage 10; see :mod:`~rxconnector.testing.simulator.matching`); linear queries need
``symbol``, ``settleCoin`` or ``baseCoin`` (10001 otherwise). Engine refusals of linear
orders: 10001 invalid symbol / price / quantity, 110094 order value below the minimum,
110007 ``ab not enough for new order``, 110072 duplicate ``orderLinkId``, 110001 unknown
order on cancel, 110017 a ``reduceOnly`` order that would not only reduce the position.
Engine refusals of spot orders use Bybit's spot codes: 170121
invalid symbol, 170131 insufficient balance, 170141 duplicate ``orderLinkId`` (unique
among ALL orders of the account), 170132/170133/170134 price too high / too low / too
many decimals, 170135/170136/170137 quantity too large / too small / too many decimals,
170140 order value below the minimum, 170213 unknown order on cancel. A ``PostOnly``
order that would take is accepted and then cancelled (``rejectReason``
``EC_PostOnlyWillTakeLiquidity``), as Bybit does. A spot Market Buy's ``qty`` is in the
quote coin unless ``marketUnit=baseCoin``.

Not simulated: ``inverse`` and ``option`` (retCode 10001 saying so); conditional,
TP/SL and spot margin orders likewise, and reduce-only on spot.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs
import orjson
from aiohttp import web

from rxconnector.testing.simulator.accounts import Account, Accounts
from rxconnector.testing.simulator.binance_http import RestRecord
from rxconnector.testing.simulator.bybit_rows import (
    BybitApiError,
    bybit_order_row,
    bybit_rejection,
    position_row,
    usdt_prices,
    wallet_account,
)
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import (
    OrderRequest,
    Rejection,
    SimOrder,
)
from rxconnector.testing.simulator.state import SimState

__all__ = [
    "BybitTradingRest",
]

#: Per-UID requests per rolling second, by path (BY ``rate-limit.mdx``, spot).
ENDPOINT_LIMITS: Final = {
    "/v5/order/create": 20,
    "/v5/order/cancel": 20,
    "/v5/order/realtime": 50,
    "/v5/order/history": 50,
    "/v5/account/wallet-balance": 50,
    "/v5/position/list": 50,
    "/v5/position/switch-mode": 10,
}
DEFAULT_RECV_WINDOW: Final = 5000
MAX_PAGE: Final = 50
#: realtime lists at most this many recently closed orders (BY ``open-order.mdx``).
RECENT_CLOSED: Final = 500
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_SIDES: Final = {"Buy": "BUY", "Sell": "SELL"}
_TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK", "PostOnly")
_FAILURES: Final = {
    500: (10016, "Server error."),
    502: (10016, "Server error."),
    503: (10016, "Server error."),
    504: (10016, "Server error."),
}
#: Bybit ``positionIdx`` → the engine's position side (0 one-way, 1/2 hedge sides).
_POSITION_IDX: Final = {"0": "BOTH", "1": "LONG", "2": "SHORT"}


def _refuse_unsupported(params: dict[str, Any]) -> None:
    """Conditional, TP/SL and margin parameters: a clear 10001, not silently ignored."""
    for name in ("triggerPrice", "takeProfit", "stopLoss", "orderFilter", "isLeverage"):
        value = params.get(name)
        if value not in (None, "", "0", 0, False, "Order"):
            raise BybitApiError(10001, f"The simulator does not support '{name}'.")


def _position_side(params: dict[str, Any], category: str) -> tuple[str, bool]:
    """The engine's position side (``positionIdx``) and ``reduceOnly`` of an order."""
    position_side = _POSITION_IDX.get(str(params.get("positionIdx") or 0))
    if position_side is None:
        raise BybitApiError(10001, "params error: positionIdx invalid")
    if position_side != "BOTH" and category != "linear":
        raise BybitApiError(10001, "params error: positionIdx is for derivatives")
    reduce_only = params.get("reduceOnly") in (True, "true")
    if reduce_only and category != "linear":
        raise BybitApiError(10001, "The simulator supports 'reduceOnly' on linear only.")
    return position_side, reduce_only


class _Limited(BybitApiError):
    """retCode 10006 with the limit headers attached."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(10006, "Too many visits!")
        self.headers = headers


Handler = Callable[[dict[str, Any], int, Account], Any]


@attrs.frozen
class _Route:
    method: str
    path: str
    handler: Handler


class BybitTradingRest:
    """The signed Bybit endpoints of one simulator."""

    def __init__(
        self,
        state: SimState,
        accounts: Accounts,
        engine: MatchingEngine,
        *,
        log: list[RestRecord] | None = None,
    ) -> None:
        self._state = state
        self._accounts = accounts
        self._engine = engine
        #: every request answered, oldest first (bounded); may be shared with another
        #: dialect's log so the simulator's ``rest_log`` shows them in one list
        self.log: list[RestRecord] = [] if log is None else log
        self._windows: dict[tuple[str, str], deque[int]] = {}

    def routes(self) -> list[web.RouteDef]:
        table = [
            _Route("POST", "/v5/order/create", self._create),
            _Route("POST", "/v5/order/cancel", self._cancel),
            _Route("GET", "/v5/order/realtime", self._realtime),
            _Route("GET", "/v5/order/history", self._history),
            _Route("GET", "/v5/account/wallet-balance", self._wallet),
            _Route("GET", "/v5/position/list", self._position_list),
            _Route("POST", "/v5/position/switch-mode", self._switch_mode),
        ]
        return [web.route(r.method, r.path, self._wrap(r)) for r in table]

    # -- plumbing -------------------------------------------------------------------------

    def _envelope(
        self, now: int, result: Any = None, error: BybitApiError | None = None
    ) -> web.Response:
        body = {
            "retCode": error.code if error else 0,
            "retMsg": error.msg if error else "OK",
            "result": {} if result is None else result,
            "retExtInfo": {},
            "time": now,
        }
        return web.Response(
            body=orjson.dumps(body),
            status=error.status if error else 200,
            content_type="application/json",
        )

    def _wrap(self, route: _Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = self._state
            faults = state.faults
            if faults.rest_latency > 0:
                await asyncio.sleep(faults.rest_latency)
            now = state.server_time_ms()
            raw = await request.text() if request.can_read_body else ""
            params: dict[str, Any] = dict(request.query)
            limit_headers: dict[str, str] = {}
            try:
                failure = faults.take_rest_failure()
                if failure is not None:
                    raise self._failure(failure.status)
                if request.method == "POST":
                    params = self._json(raw)
                account = self._verify(request, raw, now)
                limit_headers = self._charge(account, route.path, now)
                result = route.handler(params, now, account)
                resp = self._envelope(now, result)
            except BybitApiError as err:
                resp = self._envelope(now, error=err)
                if isinstance(err, _Limited):
                    limit_headers = err.headers
            resp.headers.update(limit_headers)
            logged = {k: str(v) for k, v in params.items()}
            self.log.append(
                RestRecord(state.loop_time(), request.method, request.path, logged, resp.status, 1)
            )
            if len(self.log) > 100_000:
                del self.log[:10_000]
            return resp

        return handle

    @staticmethod
    def _failure(status: int) -> BybitApiError:
        if status == 418:
            return BybitApiError(10018, "access too frequent", 403)
        if status == 429:
            return BybitApiError(10006, "Too many visits!", 429)
        code, msg = _FAILURES.get(status, _FAILURES[500])
        return BybitApiError(code, msg, status)

    @staticmethod
    def _json(raw: str) -> dict[str, Any]:
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise BybitApiError(10001, "Request parameter error: the body is not JSON.") from None
        if not isinstance(body, dict):
            raise BybitApiError(10001, "Request parameter error: a JSON object is expected.")
        return body

    def _verify(self, request: web.Request, raw_body: str, now: int) -> Account:
        """Bybit's HMAC checks (§C3 "Signing", "Timestamp rule")."""
        headers = request.headers
        key = headers.get("X-BAPI-API-KEY", "")
        account = self._accounts.get(key) if key else None
        if account is None:
            raise BybitApiError(10003, "API key is invalid.")
        sign = headers.get("X-BAPI-SIGN", "")
        try:
            timestamp = int(headers.get("X-BAPI-TIMESTAMP", ""))
            window = int(headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW)))
        except ValueError:
            raise BybitApiError(
                10001,
                "Request parameter error: X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW "
                "must be integers.",
            ) from None
        payload = raw_body if request.method == "POST" else request.rel_url.raw_query_string
        origin = f"{timestamp}{key}{window}{payload}"
        if not sign or not account.verify(origin, sign):
            raise BybitApiError(10004, f"error sign! origin_string[{origin}]")
        late = self._state.faults.take_timestamp_rejection()
        if late or not (now - window <= timestamp < now + 1000):
            raise BybitApiError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{window}]",
            )
        return account

    def _charge(self, account: Account, path: str, now: int) -> dict[str, str]:
        """Count the request in the account's rolling second of ``path``."""
        limit = ENDPOINT_LIMITS[path]
        window = self._windows.setdefault((account.api_key, path), deque())
        while window and window[0] <= now - 1000:
            window.popleft()
        over = len(window) >= limit
        if not over:
            window.append(now)
        reset = window[0] + 1000 if over else now
        headers = {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(max(0, limit - len(window))),
            "X-Bapi-Limit-Reset-Timestamp": str(reset),
        }
        if over:
            raise _Limited(headers)
        return headers

    # -- parameters -----------------------------------------------------------------------

    @staticmethod
    def _category(params: dict[str, Any]) -> str:
        category = params.get("category")
        if category == "spot" or category == "linear":
            return str(category)
        if category in ("inverse", "option"):
            raise BybitApiError(
                10001, f"The simulator trades categories spot and linear, not {category}."
            )
        raise BybitApiError(10001, "Illegal category")

    def _symbol(self, params: dict[str, Any], *, required: bool = True) -> str | None:
        symbol = params.get("symbol")
        if symbol is None or symbol == "":
            if required:
                raise BybitApiError(10001, "params error: symbol is required")
            return None
        if not isinstance(symbol, str) or symbol not in self._state.market.symbols:
            raise BybitApiError(170121, "Invalid symbol.")
        return symbol

    @staticmethod
    def _amount(params: dict[str, Any], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0 or not isinstance(raw, str):
            raise BybitApiError(170130, f"Data sent for paramter '{name}' is not valid.")
        return value

    @staticmethod
    def _link_id(params: dict[str, Any], name: str = "orderLinkId") -> str:
        value = params.get(name)
        if value is None or value == "":
            return ""
        if not isinstance(value, str) or not _LINK_ID.match(value):
            raise BybitApiError(10001, f"params error: {name} invalid")
        return value

    def _order_id(self, params: dict[str, Any]) -> int | None:
        raw = params.get("orderId")
        if raw is None or raw == "":
            return None
        try:
            return int(str(raw))
        except ValueError:
            raise BybitApiError(170213, "Order does not exist.") from None

    def _request(self, params: dict[str, Any]) -> OrderRequest:
        category = self._category(params)
        symbol = self._symbol(params)
        assert symbol is not None
        side = _SIDES.get(params.get("side", ""))
        if side is None:
            raise BybitApiError(170117, "Invalid side.")
        kind = params.get("orderType")
        if kind not in ("Limit", "Market"):
            raise BybitApiError(170116, "Invalid orderType.")
        _refuse_unsupported(params)
        position_side, reduce_only = _position_side(params, category)
        qty = self._amount(params, "qty")
        if qty is None:
            raise BybitApiError(170130, "Data sent for paramter 'qty' is not valid.")
        price = self._amount(params, "price")
        tif = params.get("timeInForce") or ("GTC" if kind == "Limit" else "IOC")
        if tif not in _TIME_IN_FORCE:
            raise BybitApiError(170115, "Invalid timeInForce.")
        if kind == "Limit" and price is None:
            raise BybitApiError(170130, "Data sent for paramter 'price' is not valid.")
        spot_buy = category == "spot" and side == "BUY"
        unit = params.get("marketUnit") or ("quoteCoin" if spot_buy else "baseCoin")
        if unit not in ("baseCoin", "quoteCoin"):
            raise BybitApiError(10001, "params error: marketUnit invalid")
        in_quote = kind == "Market" and unit == "quoteCoin"
        if in_quote and side == "SELL":
            raise BybitApiError(10001, "The simulator does not support a Market Sell in quoteCoin.")
        return OrderRequest(
            venue="bybit",
            symbol=symbol,
            side=side,  # type: ignore[arg-type]
            type="LIMIT" if kind == "Limit" else "MARKET",
            quantity=None if in_quote else qty,
            price=price if kind == "Limit" else None,
            quote_quantity=qty if in_quote else None,
            time_in_force="GTC" if tif == "PostOnly" else ("IOC" if kind == "Market" else tif),
            post_only=tif == "PostOnly",
            post_only_rejects=False,
            client_order_id=self._link_id(params),
            client_ids_unique="all",
            category=category,
            reduce_only=reduce_only,
            position_side=position_side,
        )

    # -- endpoints ------------------------------------------------------------------------

    def _create(self, params: dict[str, Any], now: int, account: Account) -> Any:
        req = self._request(params)
        try:
            order = self._engine.place(account, req, now)
        except Rejection as exc:
            raise bybit_rejection(exc, req.category) from None
        return {"orderId": str(order.id), "orderLinkId": order.client_order_id}

    def _cancel(self, params: dict[str, Any], now: int, account: Account) -> Any:
        category = self._category(params)
        symbol = self._symbol(params)
        assert symbol is not None
        order_id, link_id = self._order_id(params), self._link_id(params)
        if order_id is None and not link_id:
            raise BybitApiError(10001, "params error: orderId or orderLinkId is required")
        try:
            found = self._engine.find(account.api_key, "bybit", symbol, order_id, link_id)
            if found is not None and found.category != category:
                raise Rejection("unknown_order")
            order = self._engine.cancel(
                account, "bybit", symbol, order_id, link_id or None, now=now
            )
        except Rejection as exc:
            raise bybit_rejection(exc, category) from None
        return {"orderId": str(order.id), "orderLinkId": order.client_order_id}

    def _select(self, params: dict[str, Any], account: Account) -> list[SimOrder]:
        """Orders of the account matching category, symbol / orderId / orderLinkId,
        baseCoin, settleCoin; newest first."""
        category = self._category(params)
        symbol = self._symbol(params, required=False)
        order_id, link_id = self._order_id(params), self._link_id(params)
        base = params.get("baseCoin")
        settle = params.get("settleCoin")
        if category == "linear" and not (symbol or base or settle):
            raise BybitApiError(10001, "params error: symbol, baseCoin or settleCoin is required")
        out = []
        for order in reversed(self._engine.orders_of(account.api_key, "bybit")):
            rules = order.rules
            if order.category != category:
                continue
            if symbol is not None and order.symbol != symbol:
                continue
            if order_id is not None and order.id != order_id:
                continue
            if link_id and order.client_order_id != link_id:
                continue
            if base and rules.base_asset != base:
                continue
            if settle and rules.quote_asset != settle:
                continue
            out.append(order)
        return out

    @staticmethod
    def _page(params: dict[str, Any], orders: list[SimOrder], category: str) -> dict[str, Any]:
        try:
            limit = int(params.get("limit") or 20)
            start = int(params.get("cursor") or 0)
        except ValueError:
            raise BybitApiError(10001, "params error: limit and cursor must be integers") from None
        if not 1 <= limit <= MAX_PAGE or start < 0:
            raise BybitApiError(10001, f"params error: limit must be 1..{MAX_PAGE}")
        page = orders[start : start + limit]
        more = start + limit < len(orders)
        return {
            "list": [bybit_order_row(o) for o in page],
            "nextPageCursor": str(start + limit) if more else "",
            "category": category,
        }

    def _realtime(self, params: dict[str, Any], now: int, account: Account) -> Any:
        orders = self._select(params, account)
        by_ref = params.get("orderId") or params.get("orderLinkId")
        open_only = str(params.get("openOnly") or "0")
        if open_only == "0":
            closed = [o for o in orders if not o.is_open][:RECENT_CLOSED] if by_ref else []
            orders = [o for o in orders if o.is_open or o in closed]
        else:
            orders = [o for o in orders if not o.is_open][:RECENT_CLOSED]
        return self._page(params, orders, self._category(params))

    def _history(self, params: dict[str, Any], now: int, account: Account) -> Any:
        orders = [o for o in self._select(params, account) if not o.is_open]
        return self._page(params, orders, self._category(params))

    def _position_list(self, params: dict[str, Any], now: int, account: Account) -> Any:
        if self._category(params) != "linear":
            raise BybitApiError(10001, "params error: positions exist for category linear")
        symbol = self._symbol(params, required=False)
        settle = params.get("settleCoin")
        if not (symbol or settle):
            raise BybitApiError(10001, "params error: symbol or settleCoin is required")
        rows = []
        for position in self._engine.positions(account.api_key):
            m = self._state.market[position.symbol]
            if symbol is not None and position.symbol != symbol:
                continue
            if settle and m.spec.quote_asset != settle:
                continue
            rows.append(position_row(position, m, 0))
        return {"list": rows, "nextPageCursor": "", "category": "linear"}

    def _switch_mode(self, params: dict[str, Any], now: int, account: Account) -> Any:
        """``mode`` 0 (one-way) or 3 (both sides, hedge). Bybit switches per symbol or
        settle coin; the simulator's engine keeps one mode per account."""
        if self._category(params) != "linear":
            raise BybitApiError(10001, "params error: switch-mode is for category linear")
        if not (params.get("symbol") or params.get("coin")):
            raise BybitApiError(10001, "params error: symbol or coin is required")
        mode = str(params.get("mode"))
        if mode not in ("0", "3"):
            raise BybitApiError(10001, "params error: mode invalid")
        hedge = mode == "3"
        if hedge == self._engine.hedge_mode(account.api_key):
            raise BybitApiError(110025, "Position mode is not modified")
        try:
            self._engine.set_hedge_mode(account.api_key, hedge)
        except Rejection:
            raise BybitApiError(110024, "You have position(s) or order(s) open") from None
        return {}

    def _wallet(self, params: dict[str, Any], now: int, account: Account) -> Any:
        if params.get("accountType") != "UNIFIED":
            raise BybitApiError(10001, "accountType only support UNIFIED.")
        coins = [c for c in str(params.get("coin") or "").split(",") if c]
        listed = coins or list(account.balances)
        return {"list": [wallet_account(account, listed, usdt_prices(self._state.market))]}
