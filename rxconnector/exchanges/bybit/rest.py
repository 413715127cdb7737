"""Bybit v5 REST API as cold Observables of normalized models.

The same method names and return types as
:class:`~rxconnector.exchanges.binance.rest.BinanceSpotRest`, so a pipeline written
against one venue's REST object runs on the other::

    rest = BybitRest(client, Config.bybit("linear"), now_ms=clock.now)
    info = await rest.exchange_info(["BTCUSDT"])
    candles = await rest.klines_history("BTCUSDT", "1h", start, end).pipe(ops.to_list())

Every call goes: **ban gate → pacing → RestClient pipeline** (weight limiter, circuit
breaker, retry for reads, one clock re-sync on retCode 10002) **→ envelope check →
model**. Bybit specifics handled here, because the generic pipeline cannot see them:

* **Envelope errors.** Bybit answers errors with HTTP 200 and ``retCode != 0``;
  :func:`bybit_dialect` teaches the pipeline that vocabulary (PROTOCOL.md §C3).
* **Per-endpoint limits (retCode 10006).** Every answer carries
  ``X-Bapi-Limit-Status`` (requests left on this endpoint for this UID),
  ``X-Bapi-Limit`` and ``X-Bapi-Limit-Reset-Timestamp``. When an answer says nothing
  is left, the next call to that endpoint waits (on the scheduler) until the reset
  time instead of being refused by Bybit; a 10006 answer becomes
  :class:`~rxconnector.errors.RateLimitError` with ``retry_after`` taken from the reset
  header. These are per-UID, per-endpoint budgets, so they never touch the shared
  IP-weight limiter.
* **IP limit: 600 requests per 5 s** (all endpoints). The connector's weight limiter
  counts per minute, which cannot stop a burst of 600 inside 5 s, so every request is
  also paced by a strict rolling window of 600 per 5 s on the scheduler.
* **HTTP 403 "access too frequent".** Breaking the IP limit bans the IP for at least
  ten minutes. A 403 becomes ``RateLimitError(banned=True, retry_after=600)``, puts
  the weight limiter on hold for 600 s, and every call made through this object during
  the ban fails at once without sending anything (Bybit also answers 403 to US IPs;
  waiting ten minutes before trying again is the right move there too).

Timestamps for signing, the per-endpoint reset times and the ban clock use ``now_ms``,
the clock-synced exchange time, because Bybit's reset headers are in exchange time.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import unquote

import attrs
import orjson
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector._scheduling import now_ms as scheduler_now_ms
from rxconnector._scheduling import resolve_scheduler
from rxconnector.config import Config
from rxconnector.errors import (
    ConfigError,
    ExchangeError,
    NotSupportedError,
    RateLimitError,
)
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_str,
    parse_levels,
    raise_malformed,
    to_decimal,
)
from rxconnector.exchanges.binance.endpoints import Endpoint
from rxconnector.exchanges.binance.filters import check_order
from rxconnector.exchanges.binance.rest import (
    ACK_STATUS,
    _decimal,
    _default_client_order_ids,
    _int_in,
    _paged,
)
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit.account_rows import coin_balance, position_row
from rxconnector.exchanges.bybit.parsers import bybit_trade_id
from rxconnector.exchanges.bybit.signing import rest_headers
from rxconnector.exchanges.symbols import bybit_interval, canonical_interval, normalize_symbol
from rxconnector.log import get_logger
from rxconnector.models import (
    Balance,
    Kline,
    Order,
    OrderBook,
    Position,
    Side,
    SymbolInfo,
    Ticker,
    Trade,
)
from rxconnector.rate.pacing import RollingWindow
from rxconnector.rest.client import RestClient, RestReply, SignedRequest, Signer
from rxconnector.rest.dialect import ErrorDialect
from rxconnector.rest.query import encode_query, format_param
from rxconnector.rest.symbol_rules import SymbolRules

__all__ = ["BybitRest", "RecentTradesBackfill", "bybit_dialect", "order_status"]

_T = TypeVar("_T")
_C = TypeVar("_C")

#: Longest wait for a per-endpoint window to reset before sending anyway; Bybit's
#: windows are 1 s, so a longer reset time means the clocks disagree.
MAX_ENDPOINT_WAIT_SECONDS: Final = 5.0

_SIDES: Final[dict[str, str]] = {"buy": "Buy", "sell": "Sell"}
_MODEL_SIDES: Final[dict[str, Side]] = {"Buy": "buy", "Sell": "sell"}
_ORDER_TYPES: Final = {"LIMIT": "Limit", "MARKET": "Market"}
_TIME_IN_FORCE: Final = {
    "GTC": "GTC",
    "IOC": "IOC",
    "FOK": "FOK",
    "POSTONLY": "PostOnly",
    "POST_ONLY": "PostOnly",
    "RPI": "RPI",
}
#: Bybit order status → the Binance spelling every model uses (BY ``enum.mdx``
#: "orderStatus"). Conditional orders waiting for their trigger are NEW (as on
#: Binance); a conditional order cancelled before triggering is CANCELED.
_ORDER_STATUS: Final = {
    "New": "NEW",
    "PartiallyFilled": "PARTIALLY_FILLED",
    "Filled": "FILLED",
    "Cancelled": "CANCELED",
    "PartiallyFilledCanceled": "CANCELED",
    "Rejected": "REJECTED",
    "Untriggered": "NEW",
    "Triggered": "NEW",
    "Deactivated": "CANCELED",
}
_OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})
#: Reported by :meth:`BybitRest.cancel_order` when the order still looks open right
#: after Bybit acknowledged the cancel (Bybit cancels asynchronously).
PENDING_CANCEL: Final = "PENDING_CANCEL"
_ORDER_LINK_ID: Final = re.compile(ep.ORDER_LINK_ID_RULE)
#: Wire names an order's ``extra`` may not carry: each is set from a checked argument
#: (an ``orderLinkId`` there would differ from the id an ``OrderStatusUnknownError``
#: reports; a ``qty`` or ``orderType`` would skip the checks and the filters).
_RESERVED_EXTRA: Final = frozenset({"category", "orderType", "qty", "orderLinkId"})
#: A word boundary inside CamelCase (``PostOnly`` → ``Post_Only``; ``GTC`` stays whole).
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MINUTE_MS: Final = 60_000
_DAY_MS: Final = 86_400_000
#: Fixed candle lengths by Bybit interval; months vary (see :func:`_close_time`).
_INTERVAL_MS: Final = {
    **{m: int(m) * _MINUTE_MS for m in ("1", "3", "5", "15", "30", "60", "120", "240")},
    "360": 360 * _MINUTE_MS,
    "720": 720 * _MINUTE_MS,
    "D": _DAY_MS,
    "W": 7 * _DAY_MS,
    "M": 28 * _DAY_MS,  # the SHORTEST month: a window of N of these holds <= N candles
}


class RecentTradesBackfill(Protocol):
    """What :meth:`BybitRest.trade_backfill` returns: callable as ``backfill(from_id)``
    (the id-gap contract) and as ``backfill()`` (the overlap contract of
    :func:`rxconnector.streams.continuity.gapless_trades_by_overlap`); ``from_id`` is
    ignored because Bybit cannot look trades up by id."""

    def __call__(self, from_id: int | None = None, /) -> Observable[list[Trade]]: ...


def bybit_dialect() -> ErrorDialect:
    """Bybit's REST error vocabulary for :class:`~rxconnector.rest.client.RestClient`.

    ``retCode != 0`` is an error (10002 → clock re-sync and one retry; 10016, 10019 and
    retCode 429 retryable; 10016 on an order → status unknown). 10006 on HTTP 200 is
    left to :class:`BybitRest`, which reads its reset header (see
    :func:`~rxconnector.exchanges.bybit.endpoints.bybit_error`).
    """
    return ep.BYBIT_ERRORS


def order_status(raw: str) -> str:
    """Bybit ``orderStatus`` → canonical (Binance) spelling; unknown ones upper-snake."""
    return _ORDER_STATUS.get(raw) or _upper_snake(raw)


class BybitRest:
    """Bybit v5 REST endpoints (PROTOCOL.md §C3) returning rxconnector models.

    ``config.category`` (``spot``, ``linear`` or ``inverse``) is sent with every call.
    ``now_ms`` is the synced exchange clock (signing timestamps, closed candles, reset
    headers, ban expiry). ``client_order_id_factory`` makes ``orderLinkId`` values when
    the caller gives none (default: :class:`rxconnector.nonce.NonceGenerator`).
    ``scheduler`` times the pacing waits (default: the one given at subscription, else
    the running loop's). ``ip_requests_per_window`` lowers the share of Bybit's
    600-requests-per-5-s IP budget this object may use (several processes on one IP).
    """

    def __init__(
        self,
        client: RestClient,
        config: Config,
        now_ms: Callable[[], int | float],
        *,
        client_order_id_factory: Callable[[], str] | None = None,
        scheduler: abc.SchedulerBase | None = None,
        ip_requests_per_window: int = ep.IP_REQUEST_LIMIT,
    ) -> None:
        if config.category not in ep.CATEGORIES:
            raise ConfigError("category", f"must be one of {', '.join(ep.CATEGORIES)}", config)
        self._client = client
        self._config = config
        self._category: str = config.category
        self._now_ms = now_ms
        self._new_link_id = client_order_id_factory or _default_client_order_ids()
        self._scheduler = scheduler
        #: the trading rules orders are checked against: fetched before the first order
        #: on a symbol and again after the TTL (one request shared by concurrent orders)
        self._rules = SymbolRules(
            lambda sym: self.exchange_info([sym]), scheduler=scheduler or client.scheduler
        )
        self._symbols: dict[str, SymbolInfo] = self._rules.infos
        if not 1 <= ip_requests_per_window <= ep.IP_REQUEST_LIMIT:
            raise ConfigError(
                "ip_requests_per_window",
                f"must be 1..{ep.IP_REQUEST_LIMIT} (Bybit's IP limit per 5 s)",
                ip_requests_per_window,
            )
        self._ip_window = RollingWindow(ip_requests_per_window, ep.IP_WINDOW_SECONDS)
        #: Endpoint path → exchange ms before which it has no requests left.
        self._endpoint_reset: dict[str, int] = {}
        self._banned_until_ms = 0.0
        self._log = get_logger(component="rest", exchange="bybit", category=self._category)

    def __repr__(self) -> str:
        return f"BybitRest(category={self._category!r}, base_url={self._client.base_url!r})"

    @property
    def category(self) -> str:
        return self._category

    @property
    def ip_requests_per_window(self) -> int:
        """Requests this object sends at most in any :attr:`ip_window_seconds`."""
        return self._ip_window.limit

    @property
    def ip_window_seconds(self) -> float:
        return self._ip_window.window

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """The cached trading rules of ``symbol`` (after :meth:`exchange_info`)."""
        return self._symbols.get(symbol.upper())

    @property
    def request_weight_limit(self) -> int | None:
        """Always ``None``: Bybit counts requests, not weights (see
        :attr:`ip_requests_per_window`)."""
        return None

    # -- general ------------------------------------------------------------------------

    def ping(self) -> Observable[None]:
        """``GET /v5/market/time`` (Bybit has no ping route): ``None`` when the API answers."""
        return self._call(ep.TIME, {}, lambda _reply, _result: None)

    def server_time(self) -> Observable[int]:
        """``GET /v5/market/time``: the server's clock in ms (from ``timeNano`` when present)."""
        return self._call(ep.TIME, {}, _server_time)

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """``GET /v5/market/instruments-info``: trading rules by symbol, also cached for
        order checks.

        One symbol is one request; several (or ``None``, every symbol) walk all pages
        (linear/inverse page with ``cursor``, 1000 per page) and keep the ones asked for.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        names = [normalize_symbol(s, "bybit") for s in symbols] if symbols is not None else None
        base: dict[str, Any] = {"category": self._category}
        if names is not None and len(names) == 1:
            base["symbol"] = names[0]
        elif self._category != "spot":  # spot has no pagination: limit/cursor invalid
            base["limit"] = ep.INSTRUMENTS_PAGE_LIMIT
        category = self._category

        def page(cursor: str) -> Observable[tuple[list[SymbolInfo], str | None]]:
            params = dict(base, cursor=cursor or None)

            def parse(_reply: RestReply, result: Any) -> tuple[list[SymbolInfo], str | None]:
                infos = [_symbol_info(row, category) for row in result["list"]]
                return infos, _next_cursor(result, cursor)

            return self._call(ep.INSTRUMENTS, params, parse)

        wanted = set(names) if names is not None else None

        def collect(infos: list[SymbolInfo]) -> dict[str, SymbolInfo]:
            found = {i.symbol: i for i in infos if wanted is None or i.symbol in wanted}
            self._rules.remember(found)
            return found

        return _walk("", page).pipe(ops.to_list(), ops.map(collect))

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]:
        """``GET /v5/market/orderbook``: ``limit`` levels a side (1-1000). ``update_id`` is
        ``u`` (the 1000-level stream's update id), ``event_time`` is ``ts``."""
        sym = normalize_symbol(symbol, "bybit")
        _int_in("limit", limit, 1, ep.ORDERBOOK_MAX_LIMIT[self._category])
        params = {"category": self._category, "symbol": sym, "limit": limit}
        return self._call(ep.ORDERBOOK, params, _order_book)

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """``GET /v5/market/recent-trade``: the latest trades, oldest first.

        ``limit`` is capped at the category's maximum (spot 60, others 1000), so the
        connector's default of 500 works everywhere.
        """
        sym = normalize_symbol(symbol, "bybit")
        _int_in("limit", limit, 1, 10**9)
        capped = min(limit, ep.RECENT_TRADE_MAX_LIMIT[self._category])
        params = {"category": self._category, "symbol": sym, "limit": capped}
        return self._call(ep.RECENT_TRADE, params, _trades)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Kline]]:
        """``GET /v5/market/kline``: up to ``limit`` (1-1000) candles, **oldest first**
        (Bybit sends them newest first). ``interval`` in either spelling (``"1h"`` or
        ``"60"``); ``Kline.interval`` is the canonical one. Bybit reports no trade
        count: ``trades`` is 0."""
        sym = normalize_symbol(symbol, "bybit")
        native = bybit_interval(interval)
        _int_in("limit", limit, 1, ep.KLINE_MAX_LIMIT)
        return self._klines(sym, native, start, end, limit)

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> Observable[Kline]:
        """Every candle opening in ``start``..``end`` (ms; ``end=None``: now), in order.

        .. marble::

            windows: --[w1: 1000 candles]---[w2: 1000 candles]---[w3: 345]|
            result:  --k1,...,k1000---------k1001,...,k2000------k2001..k2345|

        Bybit sends candles newest first and its ``start``/``end`` filter does not say
        which end of a longer range it keeps, so the range is cut into windows that hold
        at most 1000 candles each and the windows are fetched one after another, in time
        order, each only after the previous one was emitted (paced and limited like any
        call). A window before the symbol was listed is simply empty. Disposing stops the
        walk and cancels the request in flight.
        """
        sym = normalize_symbol(symbol, "bybit")
        native = bybit_interval(interval)
        if isinstance(start, bool) or not isinstance(start, int):
            raise ValueError(f"start must be an integer (ms), got {start!r}")
        if end is not None and start > end:
            raise ValueError(f"start ({start}) must be <= end ({end})")
        span = _INTERVAL_MS[native] * ep.KLINE_MAX_LIMIT

        def walk(_scheduler: abc.SchedulerBase) -> Observable[Kline]:
            last = int(self._now_ms()) if end is None else end
            if start > last:
                raise ValueError(f"start ({start}) must be <= end ({last})")

            def page(cursor: int) -> Observable[tuple[list[Kline], int | None]]:
                window_end = min(cursor + span - 1, last)

                def keep(candles: list[Kline]) -> tuple[list[Kline], int | None]:
                    inside = [k for k in candles if cursor <= k.open_time <= window_end]
                    return inside, (window_end + 1 if window_end < last else None)

                return self._klines(sym, native, cursor, window_end, ep.KLINE_MAX_LIMIT).pipe(
                    ops.map(keep)
                )

            return _walk(start, page)

        return reactivex.defer(walk)

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Trade]]:
        """Bybit has no aggregate trades."""
        raise NotSupportedError("bybit", "agg_trades")

    def avg_price(self, symbol: str) -> Observable[Any]:
        """Bybit has no average-price endpoint."""
        raise NotSupportedError("bybit", "avg_price")

    def trades_between(
        self, feed: str, symbol: str, first_id: int, last_id: int
    ) -> Observable[Trade]:
        """Bybit cannot fetch trades by id range; see :meth:`trade_backfill`."""
        raise NotSupportedError("bybit", "trades_between (trades by id range)")

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """``GET /v5/market/tickers`` for one symbol; ``open`` is ``prevPrice24h``, volumes
        are base / quote on every category (inverse's are swapped back)."""
        sym = normalize_symbol(symbol, "bybit")
        inverse = self._category == "inverse"

        def parse(reply: RestReply, result: Any) -> Ticker:
            return _ticker(result["list"][0], reply, inverse)

        return self._call(ep.TICKERS, {"category": self._category, "symbol": sym}, parse)

    def trade_backfill(self, feed: str, symbol: str) -> RecentTradesBackfill:
        """What the gapless trade feed calls after a reconnect: ``(from_id) → trades``.

        Bybit has no trade lookup by id, so this returns the most recent trades (60 on
        spot, 1000 on derivatives) whatever ``from_id`` is, marked ``backfilled``. The
        continuity logic drops those it already delivered and reports a *possible* gap
        when none of them overlaps what it delivered before the reconnect. Derivative
        trade ids are UUIDs (mapped to integers, not ordered), so id ranges mean nothing
        there: use it with ``gapless_trades_by_overlap``, which the returned callable
        also fits (``backfill()``).
        """
        if feed != "trades":
            raise NotSupportedError("bybit", f"trade_backfill({feed!r})")
        sym = normalize_symbol(symbol, "bybit")
        limit = ep.RECENT_TRADE_MAX_LIMIT[self._category]

        def backfill(_from_id: int | None = None, /) -> Observable[list[Trade]]:
            return self.recent_trades(sym, limit).pipe(ops.map(_mark_backfilled))

        return backfill

    # -- account and trading (signed) ---------------------------------------------------

    def account(self) -> Observable[tuple[Balance, ...]]:
        """``GET /v5/account/wallet-balance?accountType=UNIFIED`` (signed): one Balance per
        coin. ``locked`` is what open spot orders hold; ``free`` is what the account owns
        (wallet net of ``borrowAmount``) minus ``locked``; ``borrowed`` / ``interest`` /
        ``equity`` as Bybit reports them (:mod:`~rxconnector.exchanges.bybit.account_rows`).
        (On a unified account, margin for derivatives is shared across coins and is not
        reflected per coin.)"""
        self._require_credentials()
        return self._call(ep.WALLET_BALANCE, {"accountType": "UNIFIED"}, _balances, signed=True)

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[Order]:
        """``POST /v5/order/create`` (signed, JSON body): place a Limit or Market order.

        Emits an Order built from what was sent plus Bybit's ack (``orderId``,
        ``orderLinkId``): status ``"ACK"``; follow the order on the ``orders()`` stream or
        with :meth:`get_order`. ``extra`` passes any other Bybit parameter by its Bybit
        name (``reduceOnly``, ``positionIdx``, ``marketUnit``, ``takeProfit`` ...). On spot,
        a Market **Buy** quantity is in the quote coin unless ``marketUnit="baseCoin"``.

        The ``orderLinkId`` is fixed now (generated when not given), so every
        subscription sends the same one. Never retried; a lost answer (timeout, 5xx,
        retCode 10016) errors with :class:`~rxconnector.errors.OrderStatusUnknownError`
        carrying that id: look it up with :meth:`get_order` before trying again.
        """
        sym = normalize_symbol(symbol, "bybit")
        wire_side = _SIDES.get(side.lower()) if isinstance(side, str) else None
        if wire_side is None:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        reserved = sorted(_RESERVED_EXTRA.intersection(extra))
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)} cannot be passed as extra parameters "
                "(they come from the category, type, quantity and client_order_id arguments)"
            )
        kind = _ORDER_TYPES.get(type.upper()) if isinstance(type, str) else None
        if kind is None:
            raise ValueError(f"Bybit order type must be 'LIMIT' or 'MARKET', got {type!r}")
        qty = _decimal("quantity", quantity)
        if qty is None:
            raise ValueError(f"a {kind} order needs a quantity")
        px = _decimal("price", price)
        if kind == "Limit" and px is None:
            raise ValueError("a Limit order needs a price")
        tif = _time_in_force(time_in_force, kind)
        link_id = client_order_id if client_order_id is not None else self._new_link_id()
        if not isinstance(link_id, str) or not _ORDER_LINK_ID.match(link_id):
            raise ValueError(
                f"client_order_id must match {ep.ORDER_LINK_ID_RULE} (Bybit orderLinkId), "
                f"got {link_id!r}"
            )
        body: dict[str, Any] = {
            "category": self._category,
            "symbol": sym,
            "side": wire_side,
            "orderType": kind,
            "qty": format_param(qty),
            "price": format_param(px) if px is not None and kind == "Limit" else None,
            "timeInForce": tif,
            "orderLinkId": link_id,
        }
        body.update({k: format_param(v) if isinstance(v, Decimal) else v for k, v in extra.items()})
        self._require_credentials()
        checked_qty = qty if self._quantity_in_base(kind, body) else None

        def send(info: SymbolInfo | None) -> Observable[Order]:
            # the instruments-info filters (priceFilter tickSize/min/max, lotSizeFilter
            # step/min/max, minimum order value), checked before anything is sent
            if info is not None:
                check_order(info, side, kind, checked_qty, px, exchange="bybit")

            def parse(reply: RestReply, result: Any) -> Order:
                return _acked_order(reply, result, body, qty, px if kind == "Limit" else None)

            return self._call(
                ep.ORDER_CREATE,
                body,
                parse,
                signed=True,
                idempotent=False,
                client_order_id=link_id,
            )

        return self._rules.rules_for(sym).pipe(ops.flat_map(send))

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[dict[str, Any]]:
        """Bybit has no order-validation endpoint (``/v5/order/pre-check`` computes margin
        changes for unified accounts; it does not validate an order like Binance's test)."""
        raise NotSupportedError("bybit", "test_order")

    def cancel_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``POST /v5/order/cancel`` (signed), then the order as Bybit reports it.

        Bybit only acknowledges a cancel (``{orderId, orderLinkId}``) and applies it
        asynchronously, so the order is looked up right after the ack: the Order emitted
        is usually CANCELED; if it still looks open it is reported as
        ``"PENDING_CANCEL"``; a fill that raced the cancel shows as FILLED. Cancelling is
        safe to repeat, so the request may be retried; a retry after a lost success gets
        Bybit's "order not exists" (``ExchangeError``): confirm with :meth:`get_order`.
        If the lookup itself fails, the cancel *was* accepted: the error says so.
        """
        ref = self._order_ref(symbol, order_id, client_order_id)
        self._require_credentials()
        body = {"category": self._category, **ref}

        def ack(_reply: RestReply, result: Any) -> dict[str, Any]:
            return {"orderId": result.get("orderId") or ref.get("orderId")}

        def lookup(acked: dict[str, Any]) -> Observable[Order]:
            acked_id = acked["orderId"]
            order_ref = (
                {"orderId": acked_id} if acked_id else {"orderLinkId": ref.get("orderLinkId")}
            )

            def after_cancel(order: Order) -> Order:
                if order.status in _OPEN_STATUSES:
                    return _evolve_status(order, PENDING_CANCEL)
                return order

            def lookup_failed(exc: Exception, _source: Observable[Order]) -> Observable[Order]:
                self._log.warning(
                    "rest.cancel_lookup_failed", symbol=ref["symbol"], error=type(exc).__name__
                )
                return reactivex.throw(_cancel_lookup_error(exc))

            return self._get_order({"symbol": ref["symbol"], **order_ref}).pipe(
                ops.map(after_cancel), ops.catch(lookup_failed)
            )

        return self._call(ep.ORDER_CANCEL, body, ack, signed=True).pipe(ops.flat_map(lookup))

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``GET /v5/order/realtime`` (signed) by ``orderId`` or ``orderLinkId``; when the
        order is no longer there (older than Bybit's 500 recent closed orders),
        ``GET /v5/order/history``. An order found in neither is an ``ExchangeError``."""
        ref = self._order_ref(symbol, order_id, client_order_id)
        self._require_credentials()
        return self._get_order(ref)

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """``GET /v5/order/realtime`` (signed): open orders of one symbol or all, every
        page (50 a page). Linear requires a symbol or a settle coin: without a symbol,
        USDT- and USDC-settled orders are fetched one after the other."""
        self._require_credentials()
        base: dict[str, Any] = {
            "category": self._category,
            "openOnly": 0,
            "limit": ep.OPEN_ORDERS_PAGE_LIMIT,
        }
        if symbol is not None:
            scopes = [{"symbol": normalize_symbol(symbol, "bybit")}]
        elif self._category == "linear":
            scopes = [{"settleCoin": "USDT"}, {"settleCoin": "USDC"}]
        else:
            scopes = [{}]

        def walk_scope(scope: Mapping[str, Any]) -> Observable[Order]:
            def page(cursor: str) -> Observable[tuple[list[Order], str | None]]:
                params = {**base, **scope, "cursor": cursor or None}

                def parse(_reply: RestReply, result: Any) -> tuple[list[Order], str | None]:
                    return [_order(row) for row in result["list"]], _next_cursor(result, cursor)

                return self._call(ep.ORDER_REALTIME, params, parse, signed=True)

            return _walk("", page)

        return reactivex.concat(*(walk_scope(s) for s in scopes)).pipe(ops.to_list())

    def positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """``GET /v5/position/list`` (signed): open positions of one symbol or all, every
        page (200 a page); flat entries are left out. Linear without a symbol asks
        USDT- then USDC-settled positions. Spot has no positions (NotSupportedError)."""
        self._require_credentials()
        if self._category == "spot":
            raise NotSupportedError("bybit", "positions on category=spot")
        base: dict[str, Any] = {"category": self._category, "limit": ep.POSITIONS_PAGE_LIMIT}
        if symbol is not None:
            scopes: list[dict[str, Any]] = [{"symbol": normalize_symbol(symbol, "bybit")}]
        elif self._category == "linear":
            scopes = [{"settleCoin": "USDT"}, {"settleCoin": "USDC"}]
        else:
            scopes = [{}]

        def walk_scope(scope: Mapping[str, Any]) -> Observable[Position]:
            def page(cursor: str) -> Observable[tuple[list[Position], str | None]]:
                params = {**base, **scope, "cursor": cursor or None}
                return self._call(
                    ep.POSITION_LIST,
                    params,
                    lambda reply, result: _position_page(reply, result, cursor),
                    signed=True,
                )

            return _walk("", page)

        return reactivex.concat(*(walk_scope(s) for s in scopes)).pipe(ops.to_list())

    def set_position_mode(
        self, hedge: bool, symbol: str | None = None, coin: str = "USDT"
    ) -> Observable[None]:
        """``POST /v5/position/switch-mode`` (signed, linear/inverse): hedge mode (``True``:
        a buy side ``positionIdx=1`` and a sell side ``positionIdx=2`` per symbol) or
        one-way (``False``, ``positionIdx=0``), for ``symbol`` or every symbol settled in
        ``coin``. Orders then name their side with ``positionIdx`` (an ``extra``)."""
        self._require_credentials()
        if self._category == "spot":
            raise NotSupportedError("bybit", "position modes on category=spot")
        body: dict[str, Any] = {"category": self._category, "mode": 3 if hedge else 0}
        if symbol is not None:
            body["symbol"] = normalize_symbol(symbol, "bybit")
        else:
            body["coin"] = coin
        return self._call(ep.POSITION_SWITCH_MODE, body, lambda _r, _x: None, signed=True)

    # -- plumbing -----------------------------------------------------------------------

    def _call(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any],
        parse: Callable[[RestReply, Any], _T],
        *,
        signed: bool = False,
        idempotent: bool = True,
        client_order_id: str | None = None,
    ) -> Observable[_T]:
        """One call: ban gate → pacing wait → RestClient pipeline → envelope → model."""
        frozen = dict(params)

        def start(scheduler_: abc.SchedulerBase | None) -> Observable[_T]:
            refusal = self._ban_refusal()
            if refusal is not None:
                return reactivex.throw(refusal)
            request: Observable[RestReply] = self._client.request(
                endpoint.method,
                endpoint.path,
                frozen,
                weight=endpoint.weight,
                signer=self._signer(endpoint.method) if signed else None,
                idempotent=idempotent,
                client_order_id=client_order_id,
            )
            sched = resolve_scheduler(self._scheduler, scheduler_)
            wait = self._pacing_wait(endpoint.path, sched)
            sent = request
            if wait > 0:
                sent = reactivex.timer(wait, scheduler=sched).pipe(ops.flat_map(lambda _: request))

            def interpret(reply: RestReply) -> _T:
                return self._interpret(endpoint.path, reply, parse)

            return sent.pipe(ops.catch(self._on_error), ops.map(interpret))

        return reactivex.defer(start)

    def _pacing_wait(self, path: str, scheduler: abc.SchedulerBase) -> float:
        """Seconds to wait before sending: the endpoint's reset (if it has no requests
        left), then a free slot in the IP's 600-per-5-s window, which is booked now."""
        endpoint_wait = 0.0
        reset = self._endpoint_reset.get(path)
        if reset is not None:
            endpoint_wait = min((reset - float(self._now_ms())) / 1000.0, MAX_ENDPOINT_WAIT_SECONDS)
            if endpoint_wait <= 0:
                del self._endpoint_reset[path]
                endpoint_wait = 0.0
        send_at = scheduler_now_ms(scheduler) / 1000.0 + endpoint_wait
        return endpoint_wait + self._ip_window.reserve(send_at)

    def _interpret(self, path: str, reply: RestReply, parse: Callable[[RestReply, Any], _T]) -> _T:
        data = reply.data
        self._observe_limit_headers(path, reply.headers)
        if isinstance(data, dict) and data.get("retCode") == ep.RATE_LIMIT_CODE:
            raise self._endpoint_limited(path, reply, data)
        try:
            return parse(reply, data["result"])
        except MALFORMED as exc:
            raise_malformed("bybit", path, data, exc)

    def _observe_limit_headers(self, path: str, headers: Mapping[str, str]) -> None:
        """``X-Bapi-Limit-Status: 0`` means this endpoint has nothing left until
        ``X-Bapi-Limit-Reset-Timestamp``: hold the next call to it until then."""
        left = _int_header(headers, ep.LIMIT_STATUS_HEADER)
        reset = _int_header(headers, ep.LIMIT_RESET_HEADER)
        if left == 0 and reset is not None and reset > self._now_ms():
            self._endpoint_reset[path] = reset

    def _endpoint_limited(self, path: str, reply: RestReply, data: Mapping[str, Any]) -> Exception:
        now = float(self._now_ms())
        reset = _int_header(reply.headers, ep.LIMIT_RESET_HEADER)
        if reset is not None and reset > now:
            retry_after = (reset - now) / 1000.0
            self._endpoint_reset[path] = reset
        else:
            retry_after = ep.RATE_LIMIT_RETRY_SECONDS
            self._endpoint_reset[path] = int(now + retry_after * 1000.0)
        self._log.warning(
            "rest.rate_limited",
            path=path,
            code=ep.RATE_LIMIT_CODE,
            retry_after=retry_after,
            limit=reply.headers.get(ep.LIMIT_HEADER),
        )
        message = data.get("retMsg")
        return RateLimitError(
            f"{path}: {message if isinstance(message, str) else 'too many visits'}",
            retry_after=retry_after,
            exchange="bybit",
            status=reply.status,
            code=ep.RATE_LIMIT_CODE,
        )

    def _on_error(self, exc: Exception, _source: Observable[Any]) -> Observable[Any]:
        """HTTP 403 is Bybit's IP ban (≥ 10 minutes): become a banned RateLimitError,
        hold the weight limiter and refuse every call until it is over."""
        if (
            isinstance(exc, ExchangeError)
            and not isinstance(exc, RateLimitError)
            and exc.status == 403
        ):
            return reactivex.throw(self._banned(exc))
        return reactivex.throw(exc)

    def _banned(self, cause: ExchangeError) -> RateLimitError:
        seconds = ep.IP_BAN_SECONDS
        self._banned_until_ms = max(self._banned_until_ms, float(self._now_ms()) + seconds * 1000.0)
        limiter = self._client.limiter
        if limiter is not None:
            limiter.hold_for(seconds, banned=True)
        self._log.error("rest.ip_banned", status=403, retry_after=seconds, reason=cause.message)
        error = RateLimitError(
            f"HTTP 403 (IP rate limit or access denied): {cause.message}; "
            f"nothing is sent for {seconds:.0f}s",
            retry_after=seconds,
            exchange="bybit",
            status=403,
            code=cause.code,
            banned=True,
        )
        error.__cause__ = cause
        return error

    def _ban_refusal(self) -> RateLimitError | None:
        remaining = (self._banned_until_ms - float(self._now_ms())) / 1000.0
        if remaining <= 0:
            return None
        return RateLimitError(
            f"IP banned by Bybit (HTTP 403): nothing may be sent for another {remaining:.3f}s",
            retry_after=remaining,
            exchange="bybit",
            status=403,
            banned=True,
        )

    def _require_credentials(self) -> None:
        if not self._config.has_credentials:
            raise ConfigError("api_key", "and api_secret are required for signed requests", "")

    def _signer(self, method: str) -> Signer:
        """Signs at send time: GET over the exact query string, POST over the exact JSON
        body that is sent (PROTOCOL.md §C3 "Signing")."""
        api_key = self._config.api_key
        secret = self._config.api_secret
        recv_window = self._config.recv_window
        now_ms = self._now_ms

        def sign(params: Mapping[str, Any]) -> SignedRequest:
            timestamp = int(now_ms())
            if method == "GET":
                query = encode_query(params)
                return SignedRequest(
                    query=query,
                    headers=rest_headers(api_key, secret, timestamp, query, recv_window),
                )
            body = orjson.dumps({k: v for k, v in params.items() if v is not None}).decode()
            headers = rest_headers(api_key, secret, timestamp, body, recv_window)
            headers["Content-Type"] = "application/json"
            return SignedRequest(query="", headers=headers, body=body)

        return sign

    def _klines(
        self, symbol: str, native: str, start: int | None, end: int | None, limit: int
    ) -> Observable[list[Kline]]:
        params = {
            "category": self._category,
            "symbol": symbol,
            "interval": native,
            "start": start,
            "end": end,
            "limit": limit,
        }
        inverse = self._category == "inverse"

        def parse(reply: RestReply, result: Any) -> list[Kline]:
            now = int(self._now_ms())
            candles = [_kline(symbol, native, row, reply, now, inverse) for row in result["list"]]
            candles.sort(key=_open_time)  # Bybit: newest first
            return candles

        return self._call(ep.KLINE, params, parse)

    def _get_order(self, ref: Mapping[str, Any]) -> Observable[Order]:
        params = {"category": self._category, **ref}

        def first(_reply: RestReply, result: Any) -> Order | None:
            rows = result["list"]
            return _order(rows[0]) if rows else None

        def from_history(found: Order | None) -> Observable[Order]:
            if found is not None:
                return reactivex.just(found)

            def required(reply: RestReply, result: Any) -> Order:
                order = first(reply, result)
                if order is None:
                    raise ExchangeError(
                        f"order {dict(ref)} not found", exchange="bybit", status=reply.status
                    )
                return order

            return self._call(ep.ORDER_HISTORY, params, required, signed=True)

        return self._call(ep.ORDER_REALTIME, params, first, signed=True).pipe(
            ops.flat_map(from_history)
        )

    def _order_ref(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> dict[str, Any]:
        if order_id is None and client_order_id is None:
            raise ValueError("give order_id or client_order_id")
        ref: dict[str, Any] = {"symbol": normalize_symbol(symbol, "bybit")}
        if order_id is not None:
            ref["orderId"] = str(order_id)
        else:
            ref["orderLinkId"] = client_order_id
        return ref

    def _quantity_in_base(self, kind: str, body: Mapping[str, Any]) -> bool:
        """Whether ``qty`` is in the base coin (only then can lot-size rules apply): not
        for a spot Market Buy, which is in the quote coin unless ``marketUnit=baseCoin``."""
        if kind != "Market" or self._category != "spot":
            return True
        unit = body.get("marketUnit")
        return unit == "baseCoin" or (unit is None and body["side"] == "Sell")


# -- paging ----------------------------------------------------------------------------


def _walk(
    first: _C, page: Callable[[_C], Observable[tuple[Sequence[_T], _C | None]]]
) -> Observable[_T]:
    """Fetch pages one after another, emitting their items in order.

    ``page(cursor)`` emits ``(items, next_cursor)`` once; ``next_cursor=None`` ends the
    walk. Built on the Spot pager (page numbers stand for Bybit's cursors), so the next
    page is requested only after the previous one's items were emitted and disposing
    stops the walk and cancels the page in flight::

        page(c0) --(items0, c1)|
        page(c1)                --(items1, None)|
        result   --i0,i0,...----i1,i1,...|
    """

    def start(_scheduler: abc.SchedulerBase | None) -> Observable[_T]:
        cursors: list[_C] = [first]
        ended = False

        def fetch(number: int) -> Observable[list[_T]]:
            nonlocal ended
            ended = True  # until this page names a next cursor

            def unpack(got: tuple[Sequence[_T], _C | None]) -> list[_T]:
                nonlocal ended
                items, following = got
                if following is not None:
                    cursors.append(following)
                    ended = False
                return list(items)

            return page(cursors[number]).pipe(ops.map(unpack))

        def advance(_items: list[_T]) -> int | None:
            return None if ended else len(cursors) - 1

        return _paged(0, fetch, advance)

    return reactivex.defer(start)


def _next_cursor(result: Mapping[str, Any], current: str) -> str | None:
    """The next page's cursor, ready to be put in params, or ``None`` on the last page.

    Bybit hands ``nextPageCursor`` out already percent-encoded (``page_args%3D...``)
    and expects it back as is; params are percent-encoded when sent, so the cursor is
    decoded once here and goes back on the wire exactly as Bybit wrote it.
    """
    cursor = result.get("nextPageCursor")
    if not isinstance(cursor, str) or not cursor:
        return None
    decoded = unquote(cursor)
    return decoded if decoded != current else None


# -- small helpers -----------------------------------------------------------------------


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _time_in_force(value: str | None, kind: str) -> str | None:
    if value is None:
        return "GTC" if kind == "Limit" else None
    wire = _TIME_IN_FORCE.get(value.upper()) if isinstance(value, str) else None
    if wire is None:
        raise ValueError(
            f"time_in_force must be one of GTC, IOC, FOK, PostOnly, RPI; got {value!r}"
        )
    return wire


def _upper_snake(value: str) -> str:
    return _CAMEL.sub("_", value).upper()


def _rule(value: Any) -> Decimal | None:
    """A trading-rule value: absent, empty or zero means no such rule."""
    if value is None or value == "":
        return None
    number = to_decimal(value)
    return number if number != 0 else None


def _optional(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value)


def _open_time(kline: Kline) -> int:
    return kline.open_time


def _close_time(native: str, open_time: int) -> int:
    """The last ms of the candle opening at ``open_time`` (Binance's ``closeTime``)."""
    if native != "M":
        return open_time + _INTERVAL_MS[native] - 1
    opened = datetime.fromtimestamp(open_time / 1000.0, tz=UTC)
    year, month = (opened.year + 1, 1) if opened.month == 12 else (opened.year, opened.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000 - 1


def _mark_backfilled(trades: list[Trade]) -> list[Trade]:
    return [attrs.evolve(t, backfilled=True) for t in trades]


def _evolve_status(order: Order, status: str) -> Order:
    return attrs.evolve(order, status=status)


def _cancel_lookup_error(exc: Exception) -> Exception:
    note = "the cancel was accepted by Bybit, but looking the order up afterwards failed"
    if isinstance(exc, ExchangeError) and not isinstance(exc, RateLimitError):
        error = ExchangeError(
            f"{note}: {exc.message}",
            exchange="bybit",
            status=exc.status,
            code=exc.code,
            retryable=exc.retryable,
        )
        error.__cause__ = exc
        return error
    exc.add_note(note)
    return exc


# -- body parsers (the ``result`` of an envelope → models) -------------------------------


def _server_time(reply: RestReply, result: Any) -> int:
    nano = result.get("timeNano") if isinstance(result, dict) else None
    if nano:
        return int(nano) // 1_000_000
    second = result.get("timeSecond") if isinstance(result, dict) else None
    if second:
        return int(second) * 1000
    return int(reply.data["time"])


def _symbol_info(row: Mapping[str, Any], category: str) -> SymbolInfo:
    """An instruments-info row → SymbolInfo (BY ``market/instrument.mdx``).

    Spot: step is ``basePrecision``; ``minOrderQty`` is documented as no longer checked
    (``minOrderAmt`` is), so there is no minimum quantity; the maximum is the Limit
    order maximum ``maxLimitOrderQty`` (older answers: ``maxOrderQty``).
    Linear/inverse: ``qtyStep``, ``minOrderQty``/``maxOrderQty`` (Limit orders),
    ``minNotionalValue`` (linear only). Status is upper-snake (``Trading`` → ``TRADING``).
    """
    price = row.get("priceFilter") or {}
    lot = row.get("lotSizeFilter") or {}
    if category == "spot":
        step = lot.get("basePrecision")
        min_qty = None
        max_qty = lot.get("maxLimitOrderQty") or lot.get("maxOrderQty")
        min_notional = lot.get("minOrderAmt")
    else:
        step = lot.get("qtyStep")
        min_qty = lot.get("minOrderQty")
        max_qty = lot.get("maxOrderQty")
        min_notional = lot.get("minNotionalValue")
    return SymbolInfo(
        symbol=json_str(row["symbol"]),
        status=_upper_snake(row["status"]),
        base_asset=json_str(row["baseCoin"]),
        quote_asset=json_str(row["quoteCoin"]),
        tick_size=_rule(price.get("tickSize")),
        min_price=_rule(price.get("minPrice")),
        max_price=_rule(price.get("maxPrice")),
        step_size=_rule(step),
        min_qty=_rule(min_qty),
        max_qty=_rule(max_qty),
        min_notional=_rule(min_notional),
    )


def _order_book(reply: RestReply, result: Any) -> OrderBook:
    return OrderBook(
        symbol=result["s"],
        bids=parse_levels(result["b"]),
        asks=parse_levels(result["a"]),
        update_id=int(result["u"]),
        event_time=int(result["ts"]),
        received_at=reply.received_at,
    )


def _trades(reply: RestReply, result: Any) -> list[Trade]:
    received = reply.received_at
    trades = [
        Trade(
            symbol=row["symbol"],
            trade_id=bybit_trade_id(row["execId"]),
            price=to_decimal(row["price"]),
            quantity=to_decimal(row["size"]),
            side=_MODEL_SIDES[row["side"]],
            time=int(row["time"]),
            event_time=int(row["time"]),
            received_at=received,
        )
        for row in result["list"]
    ]
    if len(trades) > 1 and trades[0].time >= trades[-1].time:
        # newest first on the wire (also when every trade shares one ms, as a sweep's
        # fills do): reversed, same-ms trades come out in the order they happened
        trades.reverse()
    trades.sort(key=_trade_time)
    return trades


def _trade_time(trade: Trade) -> int:
    return trade.time


def _kline(
    symbol: str, native: str, row: Sequence[str], reply: RestReply, now: int, inverse: bool
) -> Kline:
    open_time = int(row[0])
    close_time = _close_time(native, open_time)
    volume, turnover = to_decimal(row[5]), to_decimal(row[6])
    if inverse:  # inverse: volume in contracts (USD), turnover in coin
        volume, turnover = turnover, volume
    return Kline(
        symbol=symbol,
        interval=canonical_interval(native),
        open_time=open_time,
        close_time=close_time,
        open=to_decimal(row[1]),
        high=to_decimal(row[2]),
        low=to_decimal(row[3]),
        close=to_decimal(row[4]),
        volume=volume,
        quote_volume=turnover,
        trades=0,
        closed=close_time < now,
        event_time=min(close_time, now),
        received_at=reply.received_at,
    )


def _ticker(row: Mapping[str, Any], reply: RestReply, inverse: bool) -> Ticker:
    volume, turnover = to_decimal(row["volume24h"]), to_decimal(row["turnover24h"])
    if inverse:
        volume, turnover = turnover, volume
    return Ticker(
        symbol=row["symbol"],
        last=to_decimal(row["lastPrice"]),
        bid=_optional(row.get("bid1Price")),
        bid_qty=_optional(row.get("bid1Size")),
        ask=_optional(row.get("ask1Price")),
        ask_qty=_optional(row.get("ask1Size")),
        open=to_decimal(row["prevPrice24h"]),
        high=to_decimal(row["highPrice24h"]),
        low=to_decimal(row["lowPrice24h"]),
        volume=volume,
        quote_volume=turnover,
        event_time=int(reply.data["time"]),
        received_at=reply.received_at,
    )


def _balances(reply: RestReply, result: Any) -> tuple[Balance, ...]:
    event_time = int(reply.data.get("time") or 0)
    return tuple(
        coin_balance(row, event_time, reply.received_at)
        for account in result["list"]
        for row in account.get("coin") or ()
    )


def _position_page(reply: RestReply, result: Any, cursor: str) -> tuple[list[Position], str | None]:
    event_time = int(reply.data.get("time") or 0)
    rows = (position_row(row, event_time, reply.received_at) for row in result["list"])
    return [p for p in rows if p.size != 0], _next_cursor(result, cursor)


def _order(row: Mapping[str, Any]) -> Order:
    """A realtime/history order row → Order (BY ``order/open-order.mdx``)."""
    average = _optional(row.get("avgPrice"))
    tif = row.get("timeInForce")
    return Order(
        symbol=row["symbol"],
        order_id=str(row["orderId"]),
        client_order_id=str(row.get("orderLinkId") or ""),
        side=_MODEL_SIDES[row["side"]],
        type=str(row["orderType"]).upper(),
        status=order_status(str(row["orderStatus"])),
        price=_optional(row.get("price")) or Decimal(0),
        quantity=to_decimal(row["qty"]),
        filled_quantity=_optional(row.get("cumExecQty")) or Decimal(0),
        average_price=average if average else None,
        time_in_force=_upper_snake(tif) if isinstance(tif, str) and tif else None,
        time=int(row.get("createdTime") or 0),
        update_time=int(row.get("updatedTime") or 0),
    )


def _acked_order(
    reply: RestReply,
    result: Any,
    sent: Mapping[str, Any],
    quantity: Decimal,
    price: Decimal | None,
) -> Order:
    """The Order an ack stands for: Bybit's ids plus what was sent; status ``ACK``."""
    acked_at = int(reply.data.get("time") or 0)
    tif = sent.get("timeInForce")
    return Order(
        symbol=sent["symbol"],
        order_id=str(result["orderId"]),
        client_order_id=str(result.get("orderLinkId") or sent["orderLinkId"]),
        side=_MODEL_SIDES[sent["side"]],
        type=str(sent["orderType"]).upper(),
        status=ACK_STATUS,
        price=price if price is not None else Decimal(0),
        quantity=quantity,
        filled_quantity=Decimal(0),
        average_price=None,
        time_in_force=_upper_snake(tif) if isinstance(tif, str) else None,
        time=acked_at,
        update_time=acked_at,
    )
