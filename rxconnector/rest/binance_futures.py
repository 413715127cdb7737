"""Binance USD-M futures REST API (``/fapi``) as cold Observables of normalized models.

USD-M speaks the same REST dialect as Spot: ``{"code", "msg"}`` errors, request weights
with ``X-MBX-USED-WEIGHT-1M``, HMAC query signing with ``recvWindow``/``timestamp`` and
``X-MBX-APIKEY``, the same trade, aggregate-trade, kline and ticker layouts. So
:class:`BinanceFuturesRest` *is* a :class:`~rxconnector.rest.binance_spot.BinanceSpotRest`
with other routes, weights and limits; the plumbing (signing, pipeline, parsers, filter
checks, paging) is inherited, not copied.

What differs from Spot (PROTOCOL.md §B; BPY ``market_data_api.py``, ``trade_api.py``,
``account_api.py`` docstrings for weights):

* ``GET /fapi/v1/depth`` takes only ``limit`` ∈ {5, 10, 20, 50, 100, 500, 1000}, weighs
  2/2/2/2/5/10/20 and its answer carries ``E`` (used as ``event_time``) and ``T``;
* ``GET /fapi/v1/exchangeInfo`` (weight 1) has no ``symbol`` filter: it is filtered
  here; USD-M's ``MIN_NOTIONAL`` filter names its value ``notional``;
* klines weigh by ``limit`` (1 / 2 / 5 / 10) and go up to 1500; no ``1s`` interval;
* ``aggTrades`` weighs 20 and ``trades`` 5; there is no trade stream on USD-M, so trade
  backfill exists for ``agg_trades`` only (exact, by ``fromId``);
* account balances come from ``GET /fapi/v3/balance``; orders live under
  ``/fapi/v1/order`` and answer with ``avgPrice`` and ``updateTime``;
* there is no ``avgPrice`` endpoint;
* derivatives calls (:mod:`~rxconnector.exchanges.binance.futures_account`): positions
  (``GET /fapi/v3/positionRisk``, weight 5), leverage (``POST /fapi/v1/leverage``),
  margin type (``POST /fapi/v1/marginType``), position mode (``POST
  /fapi/v1/positionSide/dual``), the listenKey (``POST/PUT/DELETE /fapi/v1/listenKey``,
  API key only, weight 1); orders take ``reduceOnly``, ``positionSide`` and
  ``closePosition`` (checked before sending) and the futures filters
  (``MARKET_LOT_SIZE``, ``PERCENT_PRICE``) are checked too once ``exchange_info`` was
  fetched through this object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.errors import NotSupportedError
from rxconnector.exchanges._args import OrderArgs
from rxconnector.exchanges._parsing import to_decimal
from rxconnector.exchanges.binance import futures_endpoints as fep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance import rest_requests as rq
from rxconnector.exchanges.binance.futures_account import futures_balance, position_risk
from rxconnector.exchanges.binance.futures_rules import (
    MARGIN_TYPES,
    FuturesRules,
    check_percent_price,
    futures_rules,
)
from rxconnector.exchanges.rest_spec import Endpoint, RestReply, SignedRequest
from rxconnector.exchanges.symbols import binance_interval
from rxconnector.models import (
    AvgPrice,
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
from rxconnector.rest.binance_spot import BinanceSpotRest

__all__ = ["BinanceFuturesRest"]


class BinanceFuturesRest(BinanceSpotRest):
    """Binance USD-M futures REST endpoints returning rxconnector models.

    Built like the Spot class: ``BinanceFuturesRest(client, config, now_ms)``, where the
    client uses Binance's error dialect (the default) and ``now_ms`` is the synced clock.
    Every public method of the Spot class is overridden here (a test keeps it so), so
    no call can reach a Spot route on the futures host.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: MARKET_LOT_SIZE and PERCENT_PRICE by symbol, from exchange_info
        self._futures_rules: dict[str, FuturesRules] = {}

    # -- general ------------------------------------------------------------------------

    def ping(self) -> Observable[None]:
        """``GET /fapi/v1/ping``: emits ``None`` when the API answers."""
        return self._public(fep.PING, None, lambda _reply: None)

    def server_time(self) -> Observable[int]:
        """``GET /fapi/v1/time``: the server's clock in ms."""
        return self._public(fep.TIME, None, lambda reply: int(reply.data["serverTime"]))

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """``GET /fapi/v1/exchangeInfo`` (weight 1): trading rules by symbol.

        USD-M cannot filter by symbol, so every symbol is fetched (and cached, and the
        ``REQUEST_WEIGHT`` limit applied to the limiter) and the answer keeps the ones
        asked for.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        wanted = {rq.symbol(s) for s in symbols} if symbols is not None else None

        def parse(reply: RestReply) -> dict[str, SymbolInfo]:
            infos = self._on_exchange_info(reply)
            if wanted is None:
                return infos
            return {name: info for name, info in infos.items() if name in wanted}

        return self._public(fep.EXCHANGE_INFO, None, parse)

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(
        self, symbol: str, limit: int = 100, *, priority: Priority = Priority.USER
    ) -> Observable[OrderBook]:
        """``GET /fapi/v1/depth``: ``limit`` ∈ {5, 10, 20, 50, 100, 500, 1000} levels a side,
        weight 2/2/2/2/5/10/20; ``event_time`` is the answer's ``E``."""
        sym = rq.symbol(symbol)
        weight = fep.depth_weight(limit)

        def parse(reply: RestReply) -> OrderBook:
            book = rp.order_book(sym, reply.data, reply.received_at)
            return attrs.evolve(book, event_time=int(reply.data["E"]))

        return self._public(
            fep.DEPTH, {"symbol": sym, "limit": limit}, parse, weight=weight, priority=priority
        )

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """``GET /fapi/v1/trades`` (weight 5): the latest ``limit`` (1-1000) trades, oldest
        first (market trades only: no insurance-fund or ADL trades)."""
        return self._recent_trades(fep.TRADES, symbol, limit)

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Trade]]:
        """``GET /fapi/v1/aggTrades`` (weight 20): aggregate trades from id ``from_id`` or
        in ``start``..``end`` (ms, less than one hour apart), at most ``limit`` (1-1000).
        Binance advises against sending ``from_id`` together with a time range."""
        return self._agg_trades(fep.AGG_TRADES, symbol, from_id, start, end, limit)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Kline]]:
        """``GET /fapi/v1/klines``: up to ``limit`` (1-1500) candles, oldest first; weight
        1 / 2 / 5 / 10 by ``limit`` (see
        :func:`~rxconnector.exchanges.binance.futures_endpoints.klines_weight`). No ``1s``
        candles."""
        sym = rq.symbol(symbol)
        binance_interval(interval, futures=True)
        fep.klines_weight(limit)
        return self._klines(sym, interval, start, end, limit)

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> Observable[Kline]:
        """Every candle opening in ``start``..``end`` (ms; ``end=None``: now), in order.

        .. marble::

            pages:   --[k1..k1000]----[k1001..k2000]----[k2001..k2345]|
            result:  --k1,k2,...k1000--k1001,...k2000---k2001,...k2345|

        Pages of 1000 candles (weight 5 each, the cheapest per candle), each requested
        after the previous one was emitted, through the weight limiter.
        """
        sym = rq.symbol(symbol)
        binance_interval(interval, futures=True)
        if end is not None:
            return BinanceSpotRest.klines_history(self, sym, interval, start, end)

        def until_now(_scheduler: abc.SchedulerBase) -> Observable[Kline]:
            return BinanceSpotRest.klines_history(self, sym, interval, start, int(self._now_ms()))

        return reactivex.defer(until_now)

    def trades_between(
        self,
        feed: str,
        symbol: str,
        first_id: int,
        last_id: int,
        *,
        priority: Priority = Priority.USER,
    ) -> Observable[Trade]:
        """Aggregate trades with ids ``first_id``..``last_id``, in order, marked
        ``backfilled``: pages of 1000 by ``fromId`` (``GET /fapi/v1/aggTrades``, weight
        20), the next page only after the previous one was emitted. USD-M has no trade
        stream, so ``feed`` must be ``"agg_trades"``."""
        sym = rq.symbol(symbol)
        if feed != "agg_trades":
            raise NotSupportedError(fep.VENUE, f"trade backfill of {feed!r} (only 'agg_trades')")
        if first_id > last_id:
            raise ValueError(f"first_id ({first_id}) must be <= last_id ({last_id})")
        return self._trades_by_id(fep.AGG_TRADES, rp.agg_trade, sym, first_id, last_id, priority)

    def trade_backfill(self, feed: str, symbol: str) -> Callable[[int, int], Observable[Trade]]:
        """``(first_id, last_id) -> Observable[Trade]``: exact aggregate-trade backfill by
        ``fromId`` (see :meth:`trades_between`); ``feed`` must be ``"agg_trades"``."""
        sym = rq.symbol(symbol)
        if feed != "agg_trades":
            raise NotSupportedError(fep.VENUE, f"trade backfill of {feed!r} (only 'agg_trades')")
        return lambda first_id, last_id: self.trades_between(feed, sym, first_id, last_id)

    def trades_after(
        self,
        symbol: str,
        from_id: int,
        since: int,
        *,
        priority: Priority = Priority.USER,
        continuation: float | None = None,
    ) -> Observable[list[Trade]]:
        """USD-M has no trade stream to backfill (Spot's ``trades_after`` would call
        Spot routes on the futures host): use :meth:`trades_between` with
        ``"agg_trades"``."""
        raise NotSupportedError(fep.VENUE, "trades_after (only agg_trades backfill)")

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """``GET /fapi/v1/ticker/24hr`` for one symbol (weight 1). USD-M's ticker has no
        best bid/ask: those are ``None``."""
        sym = rq.symbol(symbol)
        return self._public(
            fep.TICKER_24H, {"symbol": sym}, lambda reply: rp.ticker(reply.data, reply.received_at)
        )

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        """USD-M has no average-price endpoint."""
        raise NotSupportedError(fep.VENUE, "avg_price")

    # -- account and trading (SIGNED) ---------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> Observable[tuple[Balance, ...]]:
        """``GET /fapi/v3/balance`` (signed, weight 5): one Balance per margin asset.

        Mapped as the user data stream's ``ACCOUNT_UPDATE`` is (so reconciliation
        compares like with like): ``free`` = ``crossWalletBalance``, ``locked`` = the
        rest of the wallet ``balance`` (isolated margin), never negative, so ``total`` is
        the wallet balance; ``equity`` = ``balance + crossUnPnl``. What new orders may
        still use (``availableBalance``) is not a balance: ask the REST row for it.
        """

        def parse(reply: RestReply) -> tuple[Balance, ...]:
            balances = (futures_balance(row) for row in reply.data)
            return tuple(b for b in balances if not (omit_zero_balances and b.total == 0))

        return self._signed_call(fep.BALANCE, {}, parse)

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
        """``POST /fapi/v1/order`` (signed; 0 IP weight, 1 order count): place an order.

        ``extra`` passes USD-M parameters by their Binance names (``positionSide``,
        ``reduceOnly``, ``stopPrice``, ``closePosition``, ``workingType`` ...);
        ``positionSide`` / ``reduceOnly`` / ``closePosition`` are checked now (see
        :func:`~rxconnector.exchanges.binance.futures_rules.validate_futures_params`).
        The symbol's filters are checked before sending, its rules fetched first when not
        cached (as for Spot: :mod:`rxconnector.rest.symbol_rules`): ``PRICE_FILTER``,
        ``LOT_SIZE``, ``MARKET_LOT_SIZE``, ``MIN_NOTIONAL``'s ``notional``, and
        ``PERCENT_PRICE`` against the mark price (fetched just before). Like Spot: the
        client order id is fixed now, the call is never retried, and a lost answer is
        :class:`~rxconnector.errors.OrderStatusUnknownError` carrying that id (reconcile
        with :meth:`get_order`).
        """
        sym, request, coid = rq.futures_order_params(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._new_client_order_id,
        )
        self._signing()  # missing credentials fail here, at the call

        def send(_: object = None) -> Observable[Order]:
            return self._signed_call(
                fep.NEW_ORDER,
                request,
                lambda reply: rp.futures_order(reply.data, request),
                idempotent=False,
                client_order_id=coid,
            )

        def start(info: SymbolInfo | None) -> Observable[Order]:
            rq.check_futures_filters(info, self._futures_rules.get(sym), request)
            rules = self._futures_rules.get(sym)
            price_ = request.get("price")
            if (
                info is None
                or rules is None
                or price_ is None
                or request["type"] != "LIMIT"
                or (rules.multiplier_up is None and rules.multiplier_down is None)
            ):
                return send()

            def checked(mark: Decimal) -> Observable[Order]:
                assert info is not None and rules is not None
                check_percent_price(info, rules, request["side"], price_, mark)
                return send()

            return self.mark_price_now(sym).pipe(ops.flat_map(checked))

        return self._rules.rules_for(sym).pipe(
            ops.flat_map(start), self._forget_rules_on_filter_failure(sym)
        )

    def mark_price_now(self, symbol: str) -> Observable[Decimal]:
        """``GET /fapi/v1/premiumIndex`` (weight 1): the mark price of ``symbol`` now."""
        sym = rq.symbol(symbol)
        return self._public(
            fep.PREMIUM_INDEX, {"symbol": sym}, lambda reply: to_decimal(reply.data["markPrice"])
        )

    def positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """``GET /fapi/v3/positionRisk`` (signed, weight 5): open positions (V3 lists
        only symbols with a position or an open order; flat ones are left out here)."""
        params = {"symbol": rq.symbol(symbol)} if symbol is not None else {}

        def parse(reply: RestReply) -> list[Position]:
            rows = (position_risk(row, reply.received_at) for row in reply.data)
            return [p for p in rows if p.size != 0]

        return self._signed_call(fep.POSITION_RISK, params, parse)

    def set_leverage(self, symbol: str, leverage: int) -> Observable[dict[str, Any]]:
        """``POST /fapi/v1/leverage`` (signed): the initial leverage of ``symbol`` (1-125);
        the answer ``{"leverage", "maxNotionalValue", "symbol"}``. Safe to repeat."""
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= 125:
            raise ValueError(f"leverage must be an integer in 1..125, got {leverage!r}")
        params = {"symbol": rq.symbol(symbol), "leverage": leverage}
        return self._signed_call(fep.LEVERAGE, params, lambda reply: dict(reply.data))

    def set_margin_type(self, symbol: str, margin_type: str) -> Observable[dict[str, Any]]:
        """``POST /fapi/v1/marginType`` (signed): ``ISOLATED`` or ``CROSSED`` for
        ``symbol``. Binance refuses a change while a position or order is open (-4048) and
        answers -4046 when nothing changes."""
        kind = margin_type.upper() if isinstance(margin_type, str) else ""
        if kind not in MARGIN_TYPES:
            raise ValueError(f"margin_type must be ISOLATED or CROSSED, got {margin_type!r}")
        params = {"symbol": rq.symbol(symbol), "marginType": kind}
        return self._signed_call(fep.MARGIN_TYPE, params, lambda reply: dict(reply.data))

    def set_position_mode(self, hedge: bool) -> Observable[dict[str, Any]]:
        """``POST /fapi/v1/positionSide/dual`` (signed): hedge mode (``True``: LONG and
        SHORT positions per symbol) or one-way mode (``False``, positionSide BOTH)."""
        params = {"dualSidePosition": "true" if hedge else "false"}
        return self._signed_call(fep.POSITION_MODE, params, lambda reply: dict(reply.data))

    def create_listen_key(self) -> Observable[str]:
        """``POST /fapi/v1/listenKey`` (API key, weight 1): a key valid for 60 minutes;
        the active key (extended) when there is one."""
        return self._keyed_call(fep.LISTEN_KEY_CREATE, lambda reply: str(reply.data["listenKey"]))

    def keepalive_listen_key(self, listen_key: str | None = None) -> Observable[None]:
        """``PUT /fapi/v1/listenKey`` (API key, weight 1): 60 more minutes (the key is
        per account; ``listen_key`` is accepted for symmetry and not sent)."""
        return self._keyed_call(fep.LISTEN_KEY_KEEPALIVE, lambda _reply: None)

    def close_listen_key(self) -> Observable[None]:
        """``DELETE /fapi/v1/listenKey`` (API key, weight 1): close the user data stream."""
        return self._keyed_call(fep.LISTEN_KEY_CLOSE, lambda _reply: None)

    def _keyed_call(self, endpoint: Endpoint, parse: Any) -> Observable[Any]:
        self._signing()  # missing credentials fail here, at the call
        api_key = self._config.api_key

        def keyed(params: Mapping[str, Any]) -> SignedRequest:
            return rq.keyed_request(api_key, params)

        reply = self._client.request(
            endpoint.method,
            endpoint.path,
            {},
            weight=endpoint.weight,
            signer=keyed,
            idempotent=endpoint.method != "POST",
        )
        return reply.pipe(ops.map(rp.reply_parser(parse, endpoint.path)))

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        compute_commission_rates: bool = False,
        **extra: Any,
    ) -> Observable[dict[str, Any]]:
        """``POST /fapi/v1/order/test`` (signed): validate an order without placing it.
        USD-M does not compute commissions here (``compute_commission_rates`` is not
        supported)."""
        if compute_commission_rates:
            raise NotSupportedError(fep.VENUE, "test_order(compute_commission_rates=True)")
        return self._order_test(
            fep.TEST_ORDER,
            fep.TEST_ORDER.weight,
            symbol,
            side,
            type,
            quantity,
            price,
            time_in_force,
            client_order_id,
            extra,
        )

    def cancel_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``DELETE /fapi/v1/order`` (signed, weight 1): cancel by id or client order id;
        emits the cancelled order. Safe to retry (a retry after a lost success gets
        ``-2011``: confirm with :meth:`get_order`)."""
        params = rq.order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        return self._signed_call(
            fep.CANCEL_ORDER, params, lambda reply: rp.futures_order(reply.data, params)
        )

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``GET /fapi/v1/order`` (signed, weight 1): one order's current state."""
        params = rq.order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        return self._signed_call(
            fep.QUERY_ORDER, params, lambda reply: rp.futures_order(reply.data, params)
        )

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """``GET /fapi/v1/openOrders`` (signed): open orders of one symbol (weight 1) or of
        every symbol (weight 40)."""
        params = {"symbol": rq.symbol(symbol)} if symbol is not None else {}
        weight = fep.OPEN_ORDERS.weight if symbol is not None else fep.OPEN_ORDERS_ALL_WEIGHT
        return self._signed_call(
            fep.OPEN_ORDERS,
            params,
            lambda reply: [rp.futures_order(row) for row in reply.data],
            weight=weight,
        )

    # -- plumbing -----------------------------------------------------------------------

    def _klines_route(self, limit: int) -> tuple[Endpoint, int]:
        return fep.KLINES, fep.klines_weight(limit)

    def _on_exchange_info(self, reply: RestReply) -> dict[str, SymbolInfo]:
        # Spot's mapping already reads USD-M's MIN_NOTIONAL ``notional`` field and
        # caches the rules; what it cannot carry is kept here.
        infos = super()._on_exchange_info(reply)
        for row in reply.data["symbols"]:
            self._futures_rules[row["symbol"]] = futures_rules(row)
        return infos


if TYPE_CHECKING:
    # mypy proves here that the class satisfies the shared protocol.
    _SATISFIES: type[DerivativesRestApi] = BinanceFuturesRest
