"""Binance USD-M futures REST (``/fapi``) as pure plans, run by the one REST engine
(:class:`~rxconnector.rest.planned.PlannedRest`).

USD-M speaks Spot's dialect (``{"code", "msg"}`` errors, weights, the same query
signing, the same trade / aggregate / kline / ticker layouts), so the shared parts are
:mod:`~rxconnector.exchanges.binance.rest_plans`'; the routes are its own, and it does
not inherit Spot's plans, so no call can reach a Spot route on the futures host.

What differs from Spot (PROTOCOL.md §B; BPY ``market_data_api.py``, ``trade_api.py``,
``account_api.py`` docstrings for weights):

* ``GET /fapi/v1/depth`` takes only ``limit`` ∈ {5, 10, 20, 50, 100, 500, 1000}, weighs
  2/2/2/2/5/10/20 and its answer carries ``E`` (used as ``event_time``) and ``T``;
* ``GET /fapi/v1/exchangeInfo`` (weight 1) has no ``symbol`` filter: every symbol is
  fetched (and cached) and the answer keeps the ones asked for; USD-M's extra filters
  (``MARKET_LOT_SIZE``, ``PERCENT_PRICE``) are kept here for the order checks;
* klines weigh by ``limit`` (1 / 2 / 5 / 10) and go up to 1500; no ``1s`` interval;
* ``aggTrades`` weighs 20 and ``trades`` 5; there is no trade stream on USD-M, so trade
  backfill exists for ``agg_trades`` only (exact, by ``fromId``);
* balances come from ``GET /fapi/v3/balance``; orders live under ``/fapi/v1/order``
  and answer with ``avgPrice`` and ``updateTime``; there is no ``avgPrice`` endpoint
  and no ``trades_after`` (no trade stream): both are refused at the call, as every
  call a venue does not offer (:class:`~rxconnector.exchanges.venue_plans.VenuePlans`);
* a LIMIT order on a symbol with ``PERCENT_PRICE`` is checked against the mark price
  (``GET /fapi/v1/premiumIndex``), fetched just before sending;
* derivatives calls: positions (``GET /fapi/v3/positionRisk``), leverage, margin type,
  position mode, and the listenKey (``POST/PUT/DELETE /fapi/v1/listenKey``, API key
  only, weight 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

import attrs

from rxconnector.config import Config
from rxconnector.errors import NotSupportedError
from rxconnector.exchanges._args import Amount, OrderArgs
from rxconnector.exchanges._parsing import to_decimal
from rxconnector.exchanges.binance import futures_endpoints as fep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance import rest_requests as rq
from rxconnector.exchanges.binance.endpoints import KLINES_MAX_LIMIT as WALK_PAGE
from rxconnector.exchanges.binance.futures_account import futures_balance, position_risk
from rxconnector.exchanges.binance.futures_rules import (
    MARGIN_TYPES,
    FuturesRules,
    check_percent_price,
    futures_rules,
)
from rxconnector.exchanges.binance.rest_plans import (
    BinancePlans,
    ExchangeInfo,
    call,
    exchange_info_plan,
    forgetting_rules,
    kline_page,
    kline_walk,
    order_call,
    parse_exchange_info,
    trade_walk,
)
from rxconnector.exchanges.binance.spot_plans import agg_trades, recent_trades
from rxconnector.exchanges.rest_plan import Call, Plan, PlanFactory, RulesFor, single
from rxconnector.exchanges.rest_spec import Endpoint, RestReply
from rxconnector.exchanges.symbols import binance_interval
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

__all__ = ["BinanceFuturesPlans"]


class BinanceFuturesPlans(BinancePlans):
    """Binance USD-M's REST calls as plans: ``BinanceFuturesPlans(config)``."""

    venue = fep.VENUE

    def __init__(
        self, config: Config, *, client_order_id_factory: Callable[[], str] | None = None
    ) -> None:
        super().__init__(config, client_order_id_factory=client_order_id_factory)
        #: MARKET_LOT_SIZE and PERCENT_PRICE by symbol, from exchange_info
        self._futures_rules: dict[str, FuturesRules] = {}

    def futures_rules(self, symbol: str) -> FuturesRules | None:
        """The USD-M-only rules of ``symbol`` the last ``exchangeInfo`` gave."""
        return self._futures_rules.get(symbol.upper())

    # -- general ------------------------------------------------------------------------

    def ping(self) -> PlanFactory[None]:
        """``GET /fapi/v1/ping``: ``None`` when the API answers."""
        return partial(single, call(fep.PING, {}, lambda _reply: None))

    def server_time(self) -> PlanFactory[int]:
        """``GET /fapi/v1/time``: the server's clock in ms."""
        return partial(single, call(fep.TIME, {}, lambda reply: int(reply.data["serverTime"])))

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> PlanFactory[dict[str, SymbolInfo]]:
        """``GET /fapi/v1/exchangeInfo`` (weight 1): every symbol is fetched, cached (and
        the ``REQUEST_WEIGHT`` limit applied), and the ones asked for are returned."""
        if isinstance(symbols, str):
            symbols = [symbols]
        wanted = frozenset(rq.symbol(s) for s in symbols) if symbols is not None else None
        return partial(self._exchange_info, wanted)

    def _exchange_info(self, wanted: frozenset[str] | None) -> Plan[dict[str, SymbolInfo]]:
        answer = yield from exchange_info_plan(fep.EXCHANGE_INFO, {}, _parse_exchange_info)
        self._futures_rules.update(answer.extra)
        if wanted is None:
            return answer.infos
        return {name: info for name, info in answer.infos.items() if name in wanted}

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(
        self, symbol: str, limit: int = 100, urgency: str = "user"
    ) -> PlanFactory[OrderBook]:
        """``GET /fapi/v1/depth``: ``limit`` ∈ {5, 10, 20, 50, 100, 500, 1000} levels a side,
        weight 2/2/2/2/5/10/20; ``event_time`` is the answer's ``E``."""
        sym = rq.symbol(symbol)
        weight = fep.depth_weight(limit)

        def parse(reply: RestReply) -> OrderBook:
            book = rp.order_book(sym, reply.data, reply.received_at)
            return attrs.evolve(book, event_time=int(reply.data["E"]))

        snapshot = call(
            fep.DEPTH,
            {"symbol": sym, "limit": limit},
            parse,
            weight=weight,
            urgency=urgency,
        )
        return partial(single, snapshot)

    def recent_trades(self, symbol: str, limit: int = 500) -> PlanFactory[list[Trade]]:
        """``GET /fapi/v1/trades`` (weight 5): the latest ``limit`` (1-1000) trades, oldest
        first (market trades only: no insurance-fund or ADL trades)."""
        return recent_trades(fep.TRADES, symbol, limit)

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Trade]]:
        """``GET /fapi/v1/aggTrades`` (weight 20): aggregate trades from id ``from_id`` or
        in ``start``..``end`` (ms, less than one hour apart), at most ``limit`` (1-1000)."""
        return agg_trades(fep.AGG_TRADES, symbol, from_id, start, end, limit)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Kline]]:
        """``GET /fapi/v1/klines``: up to ``limit`` (1-1500) candles, oldest first; weight
        1 / 2 / 5 / 10 by ``limit``. No ``1s`` candles."""
        sym = rq.symbol(symbol)
        binance_interval(interval, futures=True)
        weight = fep.klines_weight(limit)
        return partial(kline_page, fep.KLINES, weight, sym, interval, start, end, limit)

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> PlanFactory[None]:
        """Every candle opening in ``start``..``end`` (ms; ``None``: now), in pages of 1000
        (weight 5 each, the cheapest per candle), each after the previous was delivered."""
        sym = rq.symbol(symbol)
        binance_interval(interval, futures=True)
        if end is not None and start > end:
            raise ValueError(f"start ({start}) must be <= end ({end})")
        weight = fep.klines_weight(WALK_PAGE)  # 5, the cheapest per candle
        return partial(kline_walk, fep.KLINES, weight, sym, interval, start, end)

    def ticker_24h(self, symbol: str) -> PlanFactory[Ticker]:
        """``GET /fapi/v1/ticker/24hr`` for one symbol (weight 1). USD-M's ticker has no
        best bid/ask: those are ``None``."""
        sym = rq.symbol(symbol)
        ticker = call(
            fep.TICKER_24H, {"symbol": sym}, lambda reply: rp.ticker(reply.data, reply.received_at)
        )
        return partial(single, ticker)

    def mark_price_now(self, symbol: str) -> PlanFactory[Decimal]:
        """``GET /fapi/v1/premiumIndex`` (weight 1): the mark price of ``symbol`` now."""
        return partial(single, _mark_price(rq.symbol(symbol)))

    # -- trade gaps ---------------------------------------------------------------------

    def trades_between(
        self, feed: str, symbol: str, first_id: int, last_id: int, urgency: str = "user"
    ) -> PlanFactory[None]:
        """Aggregate trades with ids ``first_id``..``last_id``, in order, marked
        ``backfilled``: pages of 1000 by ``fromId`` (``GET /fapi/v1/aggTrades``, weight
        20). USD-M has no trade stream, so ``feed`` must be ``"agg_trades"``."""
        sym = rq.symbol(symbol)
        if feed != "agg_trades":
            raise NotSupportedError(fep.VENUE, f"trade backfill of {feed!r} (only 'agg_trades')")
        if first_id > last_id:
            raise ValueError(f"first_id ({first_id}) must be <= last_id ({last_id})")
        return partial(trade_walk, fep.AGG_TRADES, rp.agg_trade, sym, first_id, last_id, urgency)

    def trade_backfill(self, feed: str, symbol: str) -> Callable[[int, int], PlanFactory[None]]:
        """``(first_id, last_id) -> plan``: exact aggregate-trade backfill by ``fromId``
        (see :meth:`trades_between`); ``feed`` must be ``"agg_trades"``."""
        sym = rq.symbol(symbol)
        if feed != "agg_trades":
            raise NotSupportedError(fep.VENUE, f"trade backfill of {feed!r} (only 'agg_trades')")
        return lambda first_id, last_id: self.trades_between(feed, sym, first_id, last_id)

    # -- account and trading (SIGNED) ---------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> PlanFactory[tuple[Balance, ...]]:
        """``GET /fapi/v3/balance`` (signed, weight 5): one Balance per margin asset.

        Mapped as the user data stream's ``ACCOUNT_UPDATE`` is (so reconciliation
        compares like with like): ``free`` = ``crossWalletBalance``, ``locked`` = the
        rest of the wallet ``balance`` (isolated margin), never negative, so ``total`` is
        the wallet balance; ``equity`` = ``balance + crossUnPnl``.
        """
        self._require_keys()

        def parse(reply: RestReply) -> tuple[Balance, ...]:
            balances = (futures_balance(row) for row in reply.data)
            return tuple(b for b in balances if not (omit_zero_balances and b.total == 0))

        return partial(single, call(fep.BALANCE, {}, parse))

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Amount,
        price: Amount,
        time_in_force: str | None,
        client_order_id: str | None,
        extra: Mapping[str, Any],
    ) -> PlanFactory[Order]:
        """``POST /fapi/v1/order`` (signed; 0 IP weight, 1 order count): ``extra`` passes
        USD-M parameters by their Binance names (``positionSide``, ``reduceOnly``,
        ``closePosition``... checked now). The symbol's filters are checked before
        sending (``PRICE_FILTER``, ``LOT_SIZE``, ``MARKET_LOT_SIZE``, ``MIN_NOTIONAL``'s
        ``notional``, and ``PERCENT_PRICE`` against the mark price fetched just before).
        The client order id is fixed now; never retried."""
        sym, request, coid = rq.futures_order_params(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._new_client_order_id,
        )
        self._require_keys()
        send = order_call(fep.NEW_ORDER, request, rp.futures_order, coid)
        return partial(self._place_order, sym, request, send)

    def _place_order(
        self, symbol: str, request: Mapping[str, Any], send: Call[Order]
    ) -> Plan[Order]:
        return forgetting_rules(symbol, self._checked_order(symbol, request, send))

    def _checked_order(
        self, symbol: str, request: Mapping[str, Any], send: Call[Order]
    ) -> Plan[Order]:
        info: SymbolInfo | None = yield RulesFor(symbol)
        rules = self._futures_rules.get(symbol)
        rq.check_futures_filters(info, rules, request)
        price = request.get("price")
        if (
            info is not None
            and rules is not None
            and price is not None
            and request["type"] == "LIMIT"
            and (rules.multiplier_up is not None or rules.multiplier_down is not None)
        ):
            mark: Decimal = yield _mark_price(symbol)
            check_percent_price(info, rules, request["side"], price, mark)
        order: Order = yield send
        return order

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Amount,
        price: Amount,
        time_in_force: str | None,
        client_order_id: str | None,
        extra: Mapping[str, Any],
        compute_commission_rates: bool = False,
    ) -> PlanFactory[dict[str, Any]]:
        """``POST /fapi/v1/order/test`` (signed): validate an order without placing it.
        USD-M does not compute commissions here."""
        if compute_commission_rates:
            raise NotSupportedError(fep.VENUE, "test_order(compute_commission_rates=True)")
        sym, request, _coid = rq.order_params(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._new_client_order_id,
        )
        self._require_keys()
        send = call(fep.TEST_ORDER, request, lambda reply: dict(reply.data))
        check = partial(rq.check_filters, params=request)
        return partial(self._new_order, sym, request, check, send)

    def cancel_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        """``DELETE /fapi/v1/order`` (signed, weight 1): cancel by id or client order id.
        Safe to retry (a retry after a lost success gets ``-2011``)."""
        return self._order_by_ref(
            fep.CANCEL_ORDER, rp.futures_order, symbol, order_id, client_order_id
        )

    def get_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        """``GET /fapi/v1/order`` (signed, weight 1): one order's current state."""
        return self._order_by_ref(
            fep.QUERY_ORDER, rp.futures_order, symbol, order_id, client_order_id
        )

    def open_orders(self, symbol: str | None = None) -> PlanFactory[list[Order]]:
        """``GET /fapi/v1/openOrders`` (signed): open orders of one symbol (weight 1) or of
        every symbol (weight 40)."""
        return self._open_orders(
            fep.OPEN_ORDERS, fep.OPEN_ORDERS_ALL_WEIGHT, rp.futures_order, symbol
        )

    # -- derivatives (SIGNED) -----------------------------------------------------------

    def positions(self, symbol: str | None = None) -> PlanFactory[list[Position]]:
        """``GET /fapi/v3/positionRisk`` (signed, weight 5): open positions (V3 lists only
        symbols with a position or an open order; flat ones are left out here)."""
        params = {"symbol": rq.symbol(symbol)} if symbol is not None else {}
        self._require_keys()

        def parse(reply: RestReply) -> list[Position]:
            rows = (position_risk(row, reply.received_at) for row in reply.data)
            return [p for p in rows if p.size != 0]

        return partial(single, call(fep.POSITION_RISK, params, parse))

    def set_leverage(self, symbol: str, leverage: int) -> PlanFactory[dict[str, Any]]:
        """``POST /fapi/v1/leverage`` (signed): the initial leverage of ``symbol`` (1-125);
        the answer ``{"leverage", "maxNotionalValue", "symbol"}``. Safe to repeat."""
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= 125:
            raise ValueError(f"leverage must be an integer in 1..125, got {leverage!r}")
        params = {"symbol": rq.symbol(symbol), "leverage": leverage}
        return self._signed_dict(fep.LEVERAGE, params)

    def set_margin_type(self, symbol: str, margin_type: str) -> PlanFactory[dict[str, Any]]:
        """``POST /fapi/v1/marginType`` (signed): ``ISOLATED`` or ``CROSSED``. Binance
        refuses a change while a position or order is open (-4048) and answers -4046 when
        nothing changes."""
        kind = margin_type.upper() if isinstance(margin_type, str) else ""
        if kind not in MARGIN_TYPES:
            raise ValueError(f"margin_type must be ISOLATED or CROSSED, got {margin_type!r}")
        return self._signed_dict(fep.MARGIN_TYPE, {"symbol": rq.symbol(symbol), "marginType": kind})

    def set_position_mode(self, hedge: bool, **options: Any) -> PlanFactory[dict[str, Any]]:
        """``POST /fapi/v1/positionSide/dual`` (signed): hedge mode (``True``: LONG and
        SHORT positions per symbol) or one-way mode (``False``, positionSide BOTH); the
        mode is per account, so it takes no other argument."""
        if options:
            raise TypeError(f"set_position_mode() got unexpected arguments {sorted(options)}")
        params = {"dualSidePosition": "true" if hedge else "false"}
        return self._signed_dict(fep.POSITION_MODE, params)

    def _signed_dict(self, endpoint: Endpoint, params: Mapping[str, Any]) -> PlanFactory[Any]:
        self._require_keys()
        return partial(single, call(endpoint, params, lambda reply: dict(reply.data)))

    # -- the listenKey (API key only) ---------------------------------------------------

    def create_listen_key(self) -> PlanFactory[str]:
        """``POST /fapi/v1/listenKey`` (weight 1): a key valid for 60 minutes; the active
        key (extended) when there is one."""
        return self._keyed(fep.LISTEN_KEY_CREATE, lambda reply: str(reply.data["listenKey"]))

    def keepalive_listen_key(self, listen_key: str | None = None) -> PlanFactory[None]:
        """``PUT /fapi/v1/listenKey`` (weight 1): 60 more minutes (the key is per account;
        ``listen_key`` is accepted for symmetry and not sent)."""
        return self._keyed(fep.LISTEN_KEY_KEEPALIVE, lambda _reply: None)

    def close_listen_key(self) -> PlanFactory[None]:
        """``DELETE /fapi/v1/listenKey`` (weight 1): close the user data stream."""
        return self._keyed(fep.LISTEN_KEY_CLOSE, lambda _reply: None)

    def _keyed(self, endpoint: Endpoint, parse: Callable[[RestReply], Any]) -> PlanFactory[Any]:
        self._require_keys()
        keyed = call(endpoint, {}, parse, idempotent=endpoint.method != "POST", keyed=True)
        return partial(single, keyed)


def _parse_exchange_info(reply: RestReply) -> ExchangeInfo:
    """Spot's reading (it already takes USD-M's ``MIN_NOTIONAL`` ``notional``) plus what
    only USD-M has, by symbol (``MARKET_LOT_SIZE``, ``PERCENT_PRICE``)."""
    answer = parse_exchange_info(reply)
    extra = {row["symbol"]: futures_rules(row) for row in reply.data["symbols"]}
    return attrs.evolve(answer, extra=extra)


def _mark_price(symbol: str) -> Call[Decimal]:
    return call(
        fep.PREMIUM_INDEX, {"symbol": symbol}, lambda reply: to_decimal(reply.data["markPrice"])
    )
