"""Bybit v5 market REST: ``/v5/market/{time,orderbook,recent-trade,kline,
instruments-info,tickers}`` on the simulator's market (PROTOCOL.md §C3).

Every answer is Bybit's envelope ``{"retCode","retMsg","result","retExtInfo","time"}``;
errors are HTTP 200 with ``retCode != 0`` (``10001`` for parameters). Every answer
carries ``X-Bapi-Limit``, ``X-Bapi-Limit-Status`` and ``X-Bapi-Limit-Reset-Timestamp``.
One wrapper applies, in order: the ``rest_latency`` fault; the IP limit
(``bybit_ip_limit`` requests per 5 s; beyond it HTTP 403 "access too frequent" and a
10-minute ban); an injected ``fail_rest`` failure; the per-endpoint limit
(``bybit_endpoint_limit`` per second, fixed windows; beyond it retCode 10006 "Too many
visits!" with ``X-Bapi-Limit-Status: 0`` and the window's end as reset time);
unknown-parameter rejection (retCode 10001, so a misspelled parameter shows up in
tests); then the endpoint.

``fail_rest`` on Bybit: 5xx → that status with a plain-text body (what a gateway in
front of Bybit answers); 429 → HTTP 429 "system-level frequency protection" with
``X-Bapi-Limit-Reset-Timestamp`` ``retry_after`` seconds ahead (Bybit sends no
``Retry-After``); 418 (Binance's ban) → Bybit's ban, HTTP 403 for ``retry_after`` s.

Categories ``spot`` and ``linear`` list every simulator symbol; ``inverse``/``option``
are refused with retCode 10001. Candles come newest first; recent trades too; the
order-book snapshot's ``u`` is the ``orderbook.1000`` stream's (Bybit documents that
they match) and ``seq`` the market's book update id.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import orjson
from aiohttp import web

from rxconnector.testing.simulator import bybit_payloads as bp
from rxconnector.testing.simulator.binance_http import RestRecord
from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.bybit_books import BookWindows
from rxconnector.testing.simulator.bybit_market import TickDirections
from rxconnector.testing.simulator.bybit_topics import KLINE_INTERVALS
from rxconnector.testing.simulator.faults import RestFailure
from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.state import SimState

__all__ = ["BybitMarketRest", "RetError"]

#: §C3 Rate limits: an IP over its budget is refused for at least 10 minutes.
IP_BAN_SECONDS: Final = 600.0
IP_WINDOW_SECONDS: Final = 5.0
_CATEGORIES: Final = ("spot", "linear")
_LIMIT_HEADER: Final = "X-Bapi-Limit"
_STATUS_HEADER: Final = "X-Bapi-Limit-Status"
_RESET_HEADER: Final = "X-Bapi-Limit-Reset-Timestamp"
#: (max, default) of ``limit`` by endpoint and category (BY ``market/*.mdx``).
_ORDERBOOK_LIMITS: Final = {"spot": (1000, 1), "linear": (1000, 25)}
_TRADE_LIMITS: Final = {"spot": (60, 60), "linear": (1000, 500)}
_KLINE_LIMIT: Final = (1000, 200)
_INSTRUMENTS_LIMIT: Final = (1000, 500)
_CURSOR_PREFIX: Final = "page_args="
_REASONS: Final = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class RetError(Exception):
    """An error answer: Bybit's ``retCode`` and ``retMsg`` (HTTP 200)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _params_error(detail: str) -> RetError:
    return RetError(10001, f"params error: {detail}")


Handler = Callable[[dict[str, str], int], Any]


@attrs.frozen
class _Route:
    path: str
    handler: Handler
    params: frozenset[str]


class BybitMarketRest:
    """The ``/v5/market`` endpoints of one simulator.

    ``windows`` and ``directions`` are the WebSocket side's (the snapshot ``u`` and the
    ticker's tick direction must agree with the streams).
    """

    def __init__(self, state: SimState, windows: BookWindows, directions: TickDirections) -> None:
        self._state = state
        self._windows = windows
        self._directions = directions
        cfg = state.config
        self.ip_limit = cfg.bybit_ip_limit
        self.endpoint_limit = cfg.bybit_endpoint_limit
        self._ip_window: deque[float] = deque()
        self._banned_until = 0.0
        self._endpoint_used: dict[str, tuple[int, int]] = {}  # path -> (window s, used)
        #: every request answered, oldest first (bounded)
        self.log: list[RestRecord] = []

    def routes(self) -> list[web.RouteDef]:
        sym = frozenset({"category", "symbol"})
        table = [
            _Route("/time", self._time, frozenset()),
            _Route(
                "/instruments-info",
                self._instruments,
                sym | {"symbolType", "status", "baseCoin", "limit", "cursor"},
            ),
            _Route("/orderbook", self._orderbook, sym | {"limit"}),
            _Route("/recent-trade", self._recent_trades, sym | {"baseCoin", "optionType", "limit"}),
            _Route("/kline", self._kline, sym | {"interval", "start", "end", "limit"}),
            _Route("/tickers", self._tickers, sym | {"baseCoin", "expDate"}),
        ]
        return [web.get(f"/v5/market{r.path}", self._wrap(r)) for r in table]

    def reset_limits(self) -> None:
        """Forget the IP window, the ban and the per-endpoint counts (tests)."""
        self._ip_window.clear()
        self._banned_until = 0.0
        self._endpoint_used.clear()

    @property
    def banned(self) -> bool:
        return bool(self._state.loop_time() < self._banned_until)

    # -- plumbing ---------------------------------------------------------------------

    def _envelope(self, result: Any, now: int, code: int = 0, msg: str = "OK") -> web.Response:
        body = {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _ip_allows(self) -> bool:
        """Count one request against the IP window; False (and a ban) when over it."""
        now = self._state.loop_time()
        if now < self._banned_until:
            return False
        window = self._ip_window
        while window and window[0] <= now - IP_WINDOW_SECONDS:
            window.popleft()
        window.append(now)
        if len(window) > self.ip_limit:
            self._banned_until = now + IP_BAN_SECONDS
            return False
        return True

    def _endpoint_count(self, path: str, now: int) -> tuple[int, int]:
        """(requests left this second, reset time ms) after counting one request."""
        second = now // 1000
        start, used = self._endpoint_used.get(path, (second, 0))
        if start != second:
            start, used = second, 0
        used += 1
        self._endpoint_used[path] = (start, used)
        left = self.endpoint_limit - used
        return left, ((start + 1) * 1000 if left <= 0 else now)

    def _failure(self, failure: RestFailure, now: int) -> web.Response:
        if failure.status == 429:
            reset = now + (failure.retry_after or 1) * 1000
            return web.Response(
                status=429,
                text="system-level frequency protection",
                headers={_RESET_HEADER: str(reset)},
            )
        if failure.status == 418:
            ban = float(failure.retry_after or 1)
            self._banned_until = max(self._banned_until, self._state.loop_time() + ban)
            return web.Response(status=403, text="access too frequent")
        reason = _REASONS.get(failure.status, "Gateway Timeout")
        return web.Response(status=failure.status, text=f"{failure.status} {reason}")

    def _wrap(self, route: _Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = self._state
            if state.faults.rest_latency > 0:
                await asyncio.sleep(state.faults.rest_latency)
            now = state.server_time_ms()
            params = {k: request.query[k] for k in request.query}
            resp = self._answer(route, params, now)
            self.log.append(
                RestRecord(state.loop_time(), request.method, request.path, params, resp.status, 1)
            )
            if len(self.log) > 100_000:
                del self.log[:10_000]
            return resp

        return handle

    def _answer(self, route: _Route, params: dict[str, str], now: int) -> web.Response:
        if not self._ip_allows():
            return web.Response(status=403, text="access too frequent")
        failure = self._state.faults.take_rest_failure()
        if failure is not None:
            return self._failure(failure, now)
        left, reset = self._endpoint_count(route.path, now)
        if left < 0:
            resp = self._envelope({}, now, 10006, "Too many visits!")
        else:
            try:
                unknown = sorted(set(params) - route.params)
                if unknown:
                    raise _params_error(f"unknown parameter {unknown[0]}")
                resp = self._envelope(route.handler(params, now), now)
            except RetError as err:
                resp = self._envelope({}, now, err.code, err.msg)
        resp.headers[_LIMIT_HEADER] = str(self.endpoint_limit)
        resp.headers[_STATUS_HEADER] = str(max(0, left))
        resp.headers[_RESET_HEADER] = str(reset)
        return resp

    # -- parameters ---------------------------------------------------------------------

    @staticmethod
    def _category(params: dict[str, str], default: str | None = None) -> str:
        category = params.get("category") or default
        if category is None:
            raise _params_error("category is required")
        if category not in _CATEGORIES:
            raise _params_error(f"category {category!r} is not served by the simulator")
        return category

    def _market(self, params: dict[str, str]) -> SymbolMarket:
        symbol = params.get("symbol")
        if not symbol:
            raise _params_error("symbol is required")
        m = self._state.market.symbols.get(symbol)  # upper case only, as on Bybit
        if m is None:
            raise _params_error("symbol invalid")
        return m

    @staticmethod
    def _int(params: dict[str, str], name: str) -> int | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise _params_error(f"{name} must be an integer") from None

    def _limit(self, params: dict[str, str], bounds: tuple[int, int]) -> int:
        maximum, default = bounds
        limit = self._int(params, "limit")
        if limit is None:
            return default
        if not 1 <= limit <= maximum:
            raise _params_error(f"limit must be in [1, {maximum}]")
        return limit

    # -- endpoints ----------------------------------------------------------------------

    def _time(self, params: dict[str, str], now: int) -> Any:
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def _instruments(self, params: dict[str, str], now: int) -> Any:
        category = self._category(params)
        markets = list(self._state.market.symbols.values())
        symbol = params.get("symbol")
        if symbol:
            markets = [m for m in markets if m.symbol == symbol]
        if params.get("baseCoin"):
            markets = [m for m in markets if m.spec.base_asset == params["baseCoin"]]
        if params.get("status") and params["status"] != "Trading":
            markets = []
        if category == "spot":  # Spot has no pagination: limit and cursor are ignored
            return {"category": "spot", "list": [bp.instrument_row(m, "spot") for m in markets]}
        limit = self._limit(params, _INSTRUMENTS_LIMIT)
        start = 0
        cursor = params.get("cursor")
        if cursor:
            if not cursor.startswith(_CURSOR_PREFIX) or not cursor[len(_CURSOR_PREFIX) :].isdigit():
                raise _params_error("cursor invalid")
            start = int(cursor[len(_CURSOR_PREFIX) :])
        page = markets[start : start + limit]
        following = start + limit
        # handed out percent-encoded, as Bybit does ("page_args%3D...")
        next_cursor = f"page_args%3D{following}" if following < len(markets) else ""
        return {
            "category": category,
            "list": [bp.instrument_row(m, category) for m in page],
            "nextPageCursor": next_cursor,
        }

    def _orderbook(self, params: dict[str, str], now: int) -> Any:
        category = self._category(params)
        m = self._market(params)
        limit = self._limit(params, _ORDERBOOK_LIMITS[category])
        window = self._windows.window(m.symbol, 1000)
        return {
            "s": m.symbol,
            "b": bp.levels(m, m.book.levels(BID, limit)),
            "a": bp.levels(m, m.book.levels(ASK, limit)),
            "ts": now,
            "u": window.u,
            "seq": m.book.update_id,
            "cts": m.now_ms,
        }

    def _recent_trades(self, params: dict[str, str], now: int) -> Any:
        category = self._category(params)
        m = self._market(params)
        limit = self._limit(params, _TRADE_LIMITS[category])
        rows = [bp.recent_trade_row(m, category, t) for t in m.tape.recent_trades(limit)]
        rows.reverse()  # newest first
        return {"category": category, "list": rows}

    def _kline(self, params: dict[str, str], now: int) -> Any:
        category = self._category(params, "linear")
        m = self._market(params)
        native = params.get("interval")
        if not native:
            raise _params_error("interval is required")
        interval = KLINE_INTERVALS.get(native)
        if interval is None:
            raise _params_error("interval invalid")
        limit = self._limit(params, _KLINE_LIMIT)
        start, end = self._int(params, "start"), self._int(params, "end")
        if start is not None and end is not None and start > end:
            raise _params_error("start must not be after end")
        # the newest `limit` candles opening in [start, end], newest first
        candles = m.klines(interval, None, end, limit)
        if start is not None:
            candles = [k for k in candles if k.open_time >= start]
        rows = [bp.kline_row(m, k) for k in reversed(candles)]
        return {"category": category, "symbol": m.symbol, "list": rows}

    def _tickers(self, params: dict[str, str], now: int) -> Any:
        category = self._category(params)
        if params.get("symbol"):
            markets = [self._market(params)]
        else:
            markets = list(self._state.market.symbols.values())
        rows = [
            bp.rest_ticker_row(m, category, now, self._directions.current(m.symbol))
            for m in markets
        ]
        return {"category": category, "list": rows}
