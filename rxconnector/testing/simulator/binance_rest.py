"""Binance Spot REST dialect: ``/api/v3/...`` market data plus signed ``/account``.

Every endpoint goes through one wrapper that applies, in order: the ``rest_latency``
fault, parameter parsing (duplicates → -1101), an injected ``fail_rest`` failure, the
request-weight limiter (429 / 418 with ``Retry-After`` and the -1003 body, §A2.3),
unknown-parameter rejection (-1104, so a client sending a misspelled parameter finds out
in tests), signature and timestamp checks for signed endpoints (§A3, §A4), and finally
the ``X-MBX-USED-WEIGHT-1M`` header on every answer, errors included.
Weights and limits are the documented ones (PROTOCOL.md §A2.4).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import orjson
from aiohttp import web

from rxconnector.testing.simulator.accounts import Account, Accounts
from rxconnector.testing.simulator.binance_http import (
    ApiError,
    RestRecord,
    depth_weight,
    int_param,
    mandatory,
)
from rxconnector.testing.simulator.binance_info import (
    ORDER_TYPES,
    STP_MODES,
    SYMBOL_PERMISSIONS,
    symbol_filters,
)
from rxconnector.testing.simulator.binance_payloads import SpotPayloads, ticker_stats
from rxconnector.testing.simulator.faults import RestFailure
from rxconnector.testing.simulator.klines import INTERVALS
from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.numbers import scaled
from rxconnector.testing.simulator.state import SimState
from rxconnector.testing.simulator.tape import SimTrade
from rxconnector.testing.simulator.weights import WeightLimiter

__all__ = [
    "BinanceSpotRest",
    "Endpoint",
]

_HOUR_MS = 3_600_000
_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_FAILURE_BODIES = {
    500: (-1000, "An unknown error occurred while processing the request."),
    502: (-1000, "An unknown error occurred while processing the request."),
    503: (-1008, "Server is currently overloaded with other requests. Please try again."),
    504: (-1007, "Timeout waiting for response from backend server. "
          "Send status unknown; execution status unknown."),
}  # fmt: skip


def _symbols_weight(params: dict[str, str], single: int, few: int, many: int, all_: int) -> int:
    if "symbol" in params:
        return single
    if "symbols" in params:
        try:
            n = len(json.loads(params["symbols"]))
        except (ValueError, TypeError):
            return single
        return single if n <= 20 else few if n <= 100 else many
    return all_


Handler = Callable[[dict[str, str], int, Account | None], Awaitable[Any] | Any]


@attrs.frozen
class Endpoint:
    method: str
    path: str
    handler: Handler
    weight: Callable[[dict[str, str]], int]
    params: frozenset[str]
    signed: bool = False


class BinanceSpotRest:
    """The ``/api/v3`` endpoints of one simulator."""

    def __init__(
        self,
        state: SimState,
        accounts: Accounts,
        payloads: SpotPayloads | None = None,
        *,
        prefix: str = "/api/v3",
        weight_limit: int | None = None,
    ) -> None:
        self._state = state
        self._accounts = accounts
        self._payloads = payloads or SpotPayloads()
        self._prefix = prefix
        cfg = state.config
        self.limiter = WeightLimiter(
            weight_limit or cfg.weight_limit,
            ban_after_429s=cfg.ban_after_429s,
            ban_ms=int(cfg.ban_seconds * 1000),
        )
        #: every request answered, oldest first (bounded)
        self.log: list[RestRecord] = []

    # -- plumbing ---------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        return [*self._market_endpoints(), *self._ticker_endpoints(), self._account_endpoint()]

    def _market_endpoints(self) -> list[Endpoint]:
        sym = frozenset({"symbol"})
        klines = sym | {"interval", "startTime", "endTime", "timeZone", "limit"}
        info_params = {"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"}
        return [
            Endpoint("GET", "/ping", self._ping, lambda p: 1, frozenset()),
            Endpoint("GET", "/time", self._time, lambda p: 1, frozenset()),
            Endpoint(
                "GET", "/exchangeInfo", self._exchange_info, lambda p: 20, frozenset(info_params)
            ),
            Endpoint(
                "GET",
                "/depth",
                self._depth,
                lambda p: depth_weight(min(5000, int_param(p, "limit", 100) or 100)),
                sym | {"limit", "symbolStatus"},
            ),
            Endpoint("GET", "/trades", self._trades, lambda p: 25, sym | {"limit"}),
            Endpoint(
                "GET",
                "/historicalTrades",
                self._historical,
                lambda p: 25,
                sym | {"limit", "fromId"},
            ),
            Endpoint(
                "GET",
                "/aggTrades",
                self._agg_trades,
                lambda p: 4,
                sym | {"fromId", "startTime", "endTime", "limit"},
            ),
            Endpoint("GET", "/klines", self._klines, lambda p: 2, klines),
            Endpoint("GET", "/uiKlines", self._klines, lambda p: 2, klines),
            Endpoint("GET", "/avgPrice", self._avg_price, lambda p: 2, sym),
        ]

    def _ticker_endpoints(self) -> list[Endpoint]:
        tickers = frozenset({"symbol", "symbols", "symbolStatus"})
        return [
            Endpoint(
                "GET",
                "/ticker/24hr",
                self._ticker_24hr,
                lambda p: _symbols_weight(p, 2, 40, 80, 80),
                tickers | {"type"},
            ),
            Endpoint(
                "GET",
                "/ticker/price",
                self._ticker_price,
                lambda p: _symbols_weight(p, 2, 4, 4, 4),
                tickers,
            ),
            Endpoint(
                "GET",
                "/ticker/bookTicker",
                self._book_ticker,
                lambda p: _symbols_weight(p, 2, 4, 4, 4),
                tickers,
            ),
        ]

    def _account_endpoint(self) -> Endpoint:
        signed = frozenset({"recvWindow", "timestamp", "signature"})
        return Endpoint(
            "GET",
            "/account",
            self._account,
            lambda p: 20,
            signed | {"omitZeroBalances"},
            signed=True,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(e.method, self._prefix + e.path, self._wrap(e)) for e in self._endpoints()
        ]

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")

    def _error(self, err: ApiError) -> web.Response:
        resp = self._json({"code": err.code, "msg": err.msg}, err.status)
        if err.retry_after is not None:
            resp.headers["Retry-After"] = str(err.retry_after)
        return resp

    def _failure(self, failure: RestFailure) -> web.Response:
        if failure.status in (429, 418):
            return self._error(self._limit_error(failure.status, failure.retry_after or 1))
        code, msg = _FAILURE_BODIES.get(failure.status, _FAILURE_BODIES[500])
        return self._error(ApiError(failure.status, code, msg))

    def _limit_error(self, status: int, retry_after: int) -> ApiError:
        if status == 418:
            until = self._state.server_time_ms() + retry_after * 1000
            msg = (
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            msg = (
                f"Too much request weight used; current limit is {self.limiter.limit} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API."
            )
        return ApiError(status, -1003, msg, retry_after)

    async def _params(self, request: web.Request) -> dict[str, str]:
        params: dict[str, str] = {}
        sources: list[Any] = [request.query]
        if request.method != "GET" and request.can_read_body:
            sources.append(await request.post())
        for source in reversed(sources):  # the query string wins on duplicates (§A2.1)
            for key in source:
                if len(source.getall(key)) > 1:
                    raise ApiError(400, -1101, f"Duplicate values for parameter '{key}'.")
                params[key] = str(source[key])
        return params

    def _wrap(self, endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = self._state
            faults = state.faults
            if faults.rest_latency > 0:
                await asyncio.sleep(faults.rest_latency)
            now = state.server_time_ms()
            weight = 0
            params: dict[str, str] = {}
            try:
                params = await self._params(request)
                failure = faults.take_rest_failure()
                if failure is not None:
                    resp = self._failure(failure)
                else:
                    weight = endpoint.weight(params)
                    verdict = self.limiter.charge(weight, now)
                    if verdict.status != 200:
                        raise self._limit_error(verdict.status, verdict.retry_after)
                    unread = sorted(set(params) - endpoint.params)
                    if unread:
                        raise ApiError(
                            400,
                            -1104,
                            f"Not all sent parameters were read; read "
                            f"'{len(params) - len(unread)}' parameter(s) but was sent "
                            f"'{len(params)}'.",
                        )
                    account = await self._verify(request, params, now) if endpoint.signed else None
                    body = endpoint.handler(params, now, account)
                    if asyncio.iscoroutine(body):
                        body = await body
                    resp = self._json(body)
            except ApiError as err:
                resp = self._error(err)
            resp.headers[_WEIGHT_HEADER] = str(self.limiter.used(now))
            self.log.append(
                RestRecord(
                    state.loop_time(), request.method, request.path, params, resp.status, weight
                )
            )
            if len(self.log) > 100_000:
                del self.log[:10_000]
            return resp

        return handle

    async def _verify(self, request: web.Request, params: dict[str, str], now: int) -> Account:
        """Binance's SIGNED checks (§A3 HMAC-SHA256, §A4 timing)."""
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
        payload = "&".join(
            part
            for part in request.rel_url.raw_query_string.split("&")
            if part and not part.startswith("signature=")
        )
        payload += "&".join(p for p in body.split("&") if p and not p.startswith("signature="))
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["signature"].lower()):
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

    # -- helpers ----------------------------------------------------------------------

    def _market(self, params: dict[str, str]) -> SymbolMarket:
        symbol = params.get("symbol")
        if not symbol:
            raise mandatory("symbol")
        return self._lookup(symbol)

    def _lookup(self, symbol: str) -> SymbolMarket:
        m = self._state.market.symbols.get(symbol)
        if m is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return m

    def _selected(self, params: dict[str, str]) -> tuple[list[SymbolMarket], bool]:
        """(markets, single) from ``symbol`` / ``symbols`` / neither (all)."""
        if "symbol" in params and "symbols" in params:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if "symbol" in params:
            return [self._market(params)], True
        if "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except ValueError:
                raise mandatory("symbols") from None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise mandatory("symbols")
            return [self._lookup(n) for n in names], False
        return list(self._state.market.symbols.values()), False

    def _limit(self, params: dict[str, str], default: int, maximum: int) -> int:
        limit = int_param(params, "limit", default) or default
        if limit < 1:
            raise mandatory("limit")
        return min(limit, maximum)

    def _trade(self, m: SymbolMarket, t: SimTrade) -> dict[str, Any]:
        pe, qe = m.price_exp, m.qty_exp
        return {
            "id": t.id,
            "price": scaled(t.price_ticks, pe),
            "qty": scaled(t.qty_steps, qe),
            "quoteQty": scaled(t.price_ticks * t.qty_steps, pe + qe),
            "time": t.time,
            "isBuyerMaker": t.buyer_is_maker,
            "isBestMatch": True,
        }

    # -- endpoints --------------------------------------------------------------------

    def _ping(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        return {}

    def _time(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        return {"serverTime": now}

    def _symbol_info(self, m: SymbolMarket) -> dict[str, Any]:
        spec = m.spec
        return {
            "symbol": spec.symbol,
            "status": "TRADING",
            "baseAsset": spec.base_asset,
            "baseAssetPrecision": 8,
            "quoteAsset": spec.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(ORDER_TYPES),
            **SYMBOL_PERMISSIONS,
            "filters": symbol_filters(m),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": list(STP_MODES),
        }

    def _exchange_info(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        markets, _ = self._selected(params)
        return {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.limit,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(m) for m in markets],
        }

    def _depth(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        m = self._market(params)
        limit = self._limit(params, 100, 5000)
        return self._payloads.partial_depth(m, limit)

    def _trades(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        m = self._market(params)
        return [self._trade(m, t) for t in m.tape.recent_trades(self._limit(params, 500, 1000))]

    def _historical(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        m = self._market(params)
        limit = self._limit(params, 500, 1000)
        from_id = int_param(params, "fromId")
        trades = (
            m.tape.recent_trades(limit) if from_id is None else m.tape.trades_from(from_id, limit)
        )
        return [self._trade(m, t) for t in trades]

    def _agg_trades(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        m = self._market(params)
        limit = self._limit(params, 500, 1000)
        from_id = int_param(params, "fromId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        if from_id is not None and (start is not None or end is not None):
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None and end - start > _HOUR_MS:
            raise ApiError(400, -1127, "More than 1 hours between startTime and endTime.")
        if from_id is not None:
            aggs = m.tape.aggs_from(from_id, limit)
        elif start is not None or end is not None:
            lo = start if start is not None else (end or 0) - _HOUR_MS
            hi = end if end is not None else lo + _HOUR_MS
            aggs = m.tape.aggs_between(lo, hi, limit)
        else:
            aggs = m.tape.recent_aggs(limit)
        payloads = self._payloads
        out = []
        for a in aggs:
            p = payloads.agg_trade(m, a, a.time)
            out.append({k: p[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")})
        return out

    def _klines(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        return self._kline_rows(params, 1000)

    def _kline_rows(self, params: dict[str, str], max_limit: int) -> list[list[Any]]:
        m = self._market(params)
        interval = params.get("interval")
        if not interval:
            raise mandatory("interval")
        if interval not in INTERVALS:
            raise ApiError(400, -1120, "Invalid interval.")
        limit = self._limit(params, 500, max_limit)
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        if start is not None and start > 10**14:
            start //= 1000
        if end is not None and end > 10**14:
            end //= 1000
        rows = m.klines(interval, start, end, limit)
        return [self._payloads.kline_row(m, k) for k in rows]

    def _ticker_24hr(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        markets, single = self._selected(params)
        kind = params.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise ApiError(400, -1139, "Invalid ticker type.")
        out = []
        for m in markets:
            st = ticker_stats(m, now)
            row: dict[str, Any] = {"symbol": m.symbol}
            if kind == "FULL":
                top = self._payloads.book_ticker(m)
                row.update(
                    priceChange=st.change,
                    priceChangePercent=st.change_pct,
                    weightedAvgPrice=st.vwap,
                    prevClosePrice=st.prev_close,
                    lastPrice=st.last,
                    lastQty=st.last_qty,
                    bidPrice=top["b"],
                    bidQty=top["B"],
                    askPrice=top["a"],
                    askQty=top["A"],
                )
            row.update(openPrice=st.open, highPrice=st.high, lowPrice=st.low)
            if kind == "MINI":
                row["lastPrice"] = st.last
            row.update(
                volume=st.volume,
                quoteVolume=st.quote_volume,
                openTime=st.open_time,
                closeTime=st.close_time,
                firstId=st.first_id,
                lastId=st.first_id + st.count - 1 if st.count else -1,
                count=st.count,
            )
            out.append(row)
        return out[0] if single else out

    def _ticker_price(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        markets, single = self._selected(params)
        out = [
            {"symbol": m.symbol, "price": scaled(m.last_price_ticks(), m.price_exp)}
            for m in markets
        ]
        return out[0] if single else out

    def _book_ticker(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        markets, single = self._selected(params)
        out = []
        for m in markets:
            top = self._payloads.book_ticker(m)
            out.append(
                {
                    "symbol": m.symbol,
                    "bidPrice": top["b"],
                    "bidQty": top["B"],
                    "askPrice": top["a"],
                    "askQty": top["A"],
                }
            )
        return out[0] if single else out

    def _avg_price(self, params: dict[str, str], now: int, _a: Account | None) -> Any:
        m = self._market(params)
        price, last_time = self._payloads.avg_price_value(m, now)
        return {"mins": 5, "price": price, "closeTime": last_time}

    def _account(self, params: dict[str, str], now: int, account: Account | None) -> Any:
        assert account is not None  # signed endpoint: _verify returned it
        omit = params.get("omitZeroBalances", "false").lower() == "true"
        balances = [
            {"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"}
            for asset, (free, locked) in account.balances.items()
            if not (omit and free == 0 and locked == 0)
        ]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": account.update_time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": account.uid,
        }
