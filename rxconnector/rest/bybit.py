"""Bybit v5 REST API as cold Observables of normalized models.

The same method names and return types as
:class:`~rxconnector.rest.binance_spot.BinanceSpotRest`, so a pipeline written
against one venue's REST object runs on the other::

    rest = BybitRest(client, Config.bybit("linear"), now_ms=clock.now)
    info = await rest.exchange_info(["BTCUSDT"])
    candles = await rest.klines_history("BTCUSDT", "1h", start, end).pipe(ops.to_list())

Every call goes: **ban gate → pacing → RestClient pipeline** (weight limiter, circuit
breaker, retry for reads, one clock re-sync on retCode 10002) **→ envelope check →
model** (:class:`~rxconnector.rest.bybit_calls.BybitCalls`). Bybit's limits, declared
as data in :mod:`rxconnector.exchanges.bybit.endpoints` and enforced by the engine's
gates (:mod:`rxconnector.rest.gates`):

* **Envelope errors.** Bybit answers errors with HTTP 200 and ``retCode != 0``;
  :func:`~rxconnector.exchanges.bybit.endpoints.bybit_dialect` teaches the pipeline
  that vocabulary (PROTOCOL.md §C3).
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

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.errors import (
    NotSupportedError,
)
from rxconnector.exchanges._args import (
    OrderArgs,
    int_in,
)
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit import rest_parsers as rp
from rxconnector.exchanges.bybit import rest_requests as rq
from rxconnector.exchanges.filters import check_order
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.exchanges.symbols import bybit_interval, normalize_symbol
from rxconnector.models import (
    Balance,
    Kline,
    Order,
    OrderBook,
    Position,
    SymbolInfo,
    Ticker,
    Trade,
)
from rxconnector.rate.limiter import Priority
from rxconnector.rest.api import DerivativesRestApi
from rxconnector.rest.bybit_calls import BybitCalls
from rxconnector.rest.paging import walk_cursors

__all__ = ["BybitRest", "RecentTradesBackfill"]

_T = TypeVar("_T")
_C = TypeVar("_C")


class RecentTradesBackfill(Protocol):
    """What :meth:`BybitRest.trade_backfill` returns: callable as ``backfill(from_id)``
    (the id-gap contract) and as ``backfill()`` (the overlap contract of
    :func:`rxconnector.streams.trade_overlap.gapless_trades_by_overlap`); ``from_id`` is
    ignored because Bybit cannot look trades up by id."""

    def __call__(self, from_id: int | None = None, /) -> Observable[list[Trade]]: ...


class BybitRest(BybitCalls):
    """Bybit v5 REST endpoints (PROTOCOL.md §C3) returning rxconnector models.

    Built as ``BybitRest(client, config, now_ms)`` (see
    :class:`~rxconnector.rest.bybit_calls.BybitCalls` for the arguments).
    """

    # -- general ------------------------------------------------------------------------

    def ping(self) -> Observable[None]:
        """``GET /v5/market/time`` (Bybit has no ping route): ``None`` when the API answers."""
        return self._call(ep.TIME, {}, lambda _reply, _result: None)

    def server_time(self) -> Observable[int]:
        """``GET /v5/market/time``: the server's clock in ms (from ``timeNano`` when present)."""
        return self._call(ep.TIME, {}, rp.server_time)

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
        names = [normalize_symbol(s, ep.VENUE) for s in symbols] if symbols is not None else None
        base: dict[str, Any] = {"category": self._category}
        if names is not None and len(names) == 1:
            base["symbol"] = names[0]
        elif self._category != "spot":  # spot has no pagination: limit/cursor invalid
            base["limit"] = ep.INSTRUMENTS_PAGE_LIMIT
        category = self._category

        def page(cursor: str) -> Observable[tuple[list[SymbolInfo], str | None]]:
            params = dict(base, cursor=cursor or None)

            def parse(_reply: RestReply, result: Any) -> tuple[list[SymbolInfo], str | None]:
                infos = [rp.symbol_info(row, category) for row in result["list"]]
                return infos, rp.next_cursor(result, cursor)

            return self._call(ep.INSTRUMENTS, params, parse)

        wanted = set(names) if names is not None else None

        def collect(infos: list[SymbolInfo]) -> dict[str, SymbolInfo]:
            found = {i.symbol: i for i in infos if wanted is None or i.symbol in wanted}
            self._rules.remember(found)
            return found

        return walk_cursors("", page).pipe(ops.to_list(), ops.map(collect))

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]:
        """``GET /v5/market/orderbook``: ``limit`` levels a side (1-1000). ``update_id`` is
        ``u`` (the 1000-level stream's update id), ``event_time`` is ``ts``."""
        sym = normalize_symbol(symbol, ep.VENUE)
        int_in("limit", limit, 1, ep.ORDERBOOK_MAX_LIMIT[self._category])
        params = {"category": self._category, "symbol": sym, "limit": limit}
        return self._call(ep.ORDERBOOK, params, rp.order_book)

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """``GET /v5/market/recent-trade``: the latest trades, oldest first.

        ``limit`` is capped at the category's maximum (spot 60, others 1000), so the
        connector's default of 500 works everywhere.
        """
        sym = normalize_symbol(symbol, ep.VENUE)
        int_in("limit", limit, 1, 10**9)
        capped = min(limit, ep.RECENT_TRADE_MAX_LIMIT[self._category])
        params = {"category": self._category, "symbol": sym, "limit": capped}
        return self._call(ep.RECENT_TRADE, params, rp.trades)

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
        sym = normalize_symbol(symbol, ep.VENUE)
        native = bybit_interval(interval)
        int_in("limit", limit, 1, ep.KLINE_MAX_LIMIT)
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
        sym = normalize_symbol(symbol, ep.VENUE)
        native = bybit_interval(interval)
        if isinstance(start, bool) or not isinstance(start, int):
            raise ValueError(f"start must be an integer (ms), got {start!r}")
        if end is not None and start > end:
            raise ValueError(f"start ({start}) must be <= end ({end})")
        span = rp.INTERVAL_MS[native] * ep.KLINE_MAX_LIMIT

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

            return walk_cursors(start, page)

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
        raise NotSupportedError(ep.VENUE, "agg_trades")

    def avg_price(self, symbol: str) -> Observable[Any]:
        """Bybit has no average-price endpoint."""
        raise NotSupportedError(ep.VENUE, "avg_price")

    def trades_between(
        self, feed: str, symbol: str, first_id: int, last_id: int
    ) -> Observable[Trade]:
        """Bybit cannot fetch trades by id range; see :meth:`trade_backfill`."""
        raise NotSupportedError(ep.VENUE, "trades_between (trades by id range)")

    def trades_after(
        self,
        symbol: str,
        from_id: int,
        since: int,
        *,
        priority: Priority = Priority.USER,
        continuation: float | None = None,
    ) -> Observable[list[Trade]]:
        """Bybit cannot fetch trades by id; see :meth:`trade_backfill`."""
        raise NotSupportedError(ep.VENUE, "trades_after (trades by id)")

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """``GET /v5/market/tickers`` for one symbol; ``open`` is ``prevPrice24h``, volumes
        are base / quote on every category (inverse's are swapped back)."""
        sym = normalize_symbol(symbol, ep.VENUE)
        inverse = self._category == "inverse"

        def parse(reply: RestReply, result: Any) -> Ticker:
            return rp.ticker(result["list"][0], reply, inverse)

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
            raise NotSupportedError(ep.VENUE, f"trade_backfill({feed!r})")
        sym = normalize_symbol(symbol, ep.VENUE)
        limit = ep.RECENT_TRADE_MAX_LIMIT[self._category]

        def backfill(_from_id: int | None = None, /) -> Observable[list[Trade]]:
            return self.recent_trades(sym, limit).pipe(ops.map(rp.mark_backfilled))

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
        return self._call(ep.WALLET_BALANCE, {"accountType": "UNIFIED"}, rp.balances, signed=True)

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
        order = rq.order_body(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._category,
            self._new_link_id,
        )
        self._require_credentials()

        def send(info: SymbolInfo | None) -> Observable[Order]:
            # the instruments-info filters (priceFilter tickSize/min/max, lotSizeFilter
            # step/min/max, minimum order value), checked before anything is sent
            if info is not None:
                check_order(
                    info, side, order.kind, order.checked_quantity, order.price, exchange=ep.VENUE
                )
            acked_price = order.price if order.kind == "Limit" else None

            def parse(reply: RestReply, result: Any) -> Order:
                return rp.acked_order(reply, result, order.body, order.quantity, acked_price)

            return self._call(
                ep.ORDER_CREATE,
                order.body,
                parse,
                signed=True,
                idempotent=False,
                client_order_id=order.link_id,
            )

        return self._rules.rules_for(order.symbol).pipe(ops.flat_map(send))

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
        raise NotSupportedError(ep.VENUE, "test_order")

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
        ref = rq.order_ref(symbol, order_id, client_order_id)
        self._require_credentials()
        body = {"category": self._category, **ref}

        def ack(_reply: RestReply, result: Any) -> dict[str, Any]:
            return {"orderId": result.get("orderId") or ref.get("orderId")}

        def lookup(acked: dict[str, Any]) -> Observable[Order]:
            acked_id = acked["orderId"]
            order_ref = (
                {"orderId": acked_id} if acked_id else {"orderLinkId": ref.get("orderLinkId")}
            )

            def lookup_failed(exc: Exception, _source: Observable[Order]) -> Observable[Order]:
                self._log.warning(
                    "rest.cancel_lookup_failed", symbol=ref["symbol"], error=type(exc).__name__
                )
                return reactivex.throw(rq.cancel_lookup_error(exc))

            return self._get_order({"symbol": ref["symbol"], **order_ref}).pipe(
                ops.map(rq.after_cancel), ops.catch(lookup_failed)
            )

        return self._call(ep.ORDER_CANCEL, body, ack, signed=True).pipe(ops.flat_map(lookup))

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``GET /v5/order/realtime`` (signed) by ``orderId`` or ``orderLinkId``; when the
        order is no longer there (older than Bybit's 500 recent closed orders),
        ``GET /v5/order/history``. An order found in neither is an ``ExchangeError``."""
        ref = rq.order_ref(symbol, order_id, client_order_id)
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
        scopes = rq.scopes(symbol, self._category)

        def walk_scope(scope: Mapping[str, Any]) -> Observable[Order]:
            def page(cursor: str) -> Observable[tuple[list[Order], str | None]]:
                params = {**base, **scope, "cursor": cursor or None}

                def parse(_reply: RestReply, result: Any) -> tuple[list[Order], str | None]:
                    return [rp.order(row) for row in result["list"]], rp.next_cursor(result, cursor)

                return self._call(ep.ORDER_REALTIME, params, parse, signed=True)

            return walk_cursors("", page)

        return reactivex.concat(*(walk_scope(s) for s in scopes)).pipe(ops.to_list())

    def positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """``GET /v5/position/list`` (signed): open positions of one symbol or all, every
        page (200 a page); flat entries are left out. Linear without a symbol asks
        USDT- then USDC-settled positions. Spot has no positions (NotSupportedError)."""
        self._require_credentials()
        if self._category == "spot":
            raise NotSupportedError(ep.VENUE, "positions on category=spot")
        base: dict[str, Any] = {"category": self._category, "limit": ep.POSITIONS_PAGE_LIMIT}
        scopes = rq.scopes(symbol, self._category)

        def walk_scope(scope: Mapping[str, Any]) -> Observable[Position]:
            def page(cursor: str) -> Observable[tuple[list[Position], str | None]]:
                params = {**base, **scope, "cursor": cursor or None}
                return self._call(
                    ep.POSITION_LIST,
                    params,
                    lambda reply, result: rp.position_page(reply, result, cursor),
                    signed=True,
                )

            return walk_cursors("", page)

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
            raise NotSupportedError(ep.VENUE, "position modes on category=spot")
        body: dict[str, Any] = {"category": self._category, "mode": 3 if hedge else 0}
        if symbol is not None:
            body["symbol"] = normalize_symbol(symbol, ep.VENUE)
        else:
            body["coin"] = coin
        return self._call(ep.POSITION_SWITCH_MODE, body, lambda _r, _x: None, signed=True)


if TYPE_CHECKING:
    # mypy proves here that the class satisfies the shared protocol.
    _SATISFIES: type[DerivativesRestApi] = BybitRest
