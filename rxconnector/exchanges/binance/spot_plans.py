"""Binance Spot REST (PROTOCOL.md §A2.4) as pure plans, run by the one REST engine
(:class:`~rxconnector.rest.planned.PlannedRest`).

Each method checks its arguments at once (``ValueError`` names what is wrong; a signed
call without usable keys is ``ConfigError``) and returns the factory of its plan.
Signed calls add ``recvWindow`` and ``timestamp`` when they leave
(:class:`~rxconnector.exchanges.binance.signing.BinanceRestSigner`).

Orders are checked against the symbol's filters before sending: the plan asks for the
symbol's rules (``RulesFor``), which the engine serves from its cache or fetches
through :meth:`BinanceSpotPlans.exchange_info`, so a bad tick size fails locally with
``OrderRejectedError`` instead of spending an order request, also on a fresh connector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final

import attrs

from rxconnector.config import Config
from rxconnector.exchanges._args import Amount, OrderArgs, int_in
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance import rest_requests as rq
from rxconnector.exchanges.binance.aggregates import FillHistory, trades_from_aggregates
from rxconnector.exchanges.binance.rest_plans import (
    BinancePlans,
    call,
    exchange_info_plan,
    kline_page,
    kline_walk,
    order_call,
    trade_walk,
)
from rxconnector.exchanges.rest_plan import Now, Plan, PlanFactory, single
from rxconnector.exchanges.rest_spec import Endpoint, RestReply
from rxconnector.models import (
    AvgPrice,
    Balance,
    Kline,
    Order,
    OrderBook,
    SymbolInfo,
    Ticker,
    Trade,
)

__all__ = ["LIKELY_MULTI_FILL", "BinanceSpotPlans", "agg_trades", "recent_trades"]

#: Share of live trades continuing their predecessor's order above which a gap almost
#: surely holds a multi-fill aggregate (recorded Binance sessions: Spot 0.00-0.20, USD-M 0.49,
#: COIN-M 0.69; the simulator ≈ 0.5): ``trades_after`` then goes by id at once.
LIKELY_MULTI_FILL: Final = 0.25

#: ``aggTrades`` takes a time window shorter than an hour (PROTOCOL.md §A2.4).
_AGG_WINDOW_MS: Final = 3_599_999

_TRADE_FEEDS: Final = ("trades", "agg_trades")


class BinanceSpotPlans(BinancePlans):
    """Binance Spot's REST calls as plans: ``BinanceSpotPlans(config)``."""

    venue = "binance"

    def __init__(
        self, config: Config, *, client_order_id_factory: Callable[[], str] | None = None
    ) -> None:
        super().__init__(config, client_order_id_factory=client_order_id_factory)
        self._fill_history: dict[str, FillHistory] = {}  # one per symbol backfilled

    # -- general ------------------------------------------------------------------------

    def ping(self) -> PlanFactory[None]:
        """``GET /api/v3/ping``: ``None`` when the API answers."""
        return partial(single, call(ep.PING, {}, lambda _reply: None))

    def server_time(self) -> PlanFactory[int]:
        """``GET /api/v3/time``: the server's clock in ms."""
        return partial(single, call(ep.TIME, {}, lambda reply: int(reply.data["serverTime"])))

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> PlanFactory[dict[str, SymbolInfo]]:
        """``GET /api/v3/exchangeInfo``: trading rules by symbol (cached for the orders'
        filter checks; a ``REQUEST_WEIGHT`` per minute in ``rateLimits`` sets the limiter)."""
        params: dict[str, Any] = {}
        if symbols is not None:
            if isinstance(symbols, str):
                symbols = [symbols]
            names = [rq.symbol(s) for s in symbols]
            if len(names) == 1:
                params["symbol"] = names[0]
            elif names:
                params["symbols"] = names
        return partial(self._exchange_info, params)

    @staticmethod
    def _exchange_info(params: Mapping[str, Any]) -> Plan[dict[str, SymbolInfo]]:
        answer = yield from exchange_info_plan(ep.EXCHANGE_INFO, params)
        return answer.infos

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(
        self, symbol: str, limit: int = 100, urgency: str = "user"
    ) -> PlanFactory[OrderBook]:
        """``GET /api/v3/depth``: ``limit`` levels (1-5000); the weight follows the limit
        (5 / 25 / 50 / 250). ``event_time`` is 0: the answer has none."""
        sym = rq.symbol(symbol)
        weight = ep.depth_weight(int_in("limit", limit, 1, ep.DEPTH_MAX_LIMIT))
        snapshot = call(
            ep.DEPTH,
            {"symbol": sym, "limit": limit},
            lambda reply: rp.order_book(sym, reply.data, reply.received_at),
            weight=weight,
            urgency=urgency,
        )
        return partial(single, snapshot)

    def recent_trades(self, symbol: str, limit: int = 500) -> PlanFactory[list[Trade]]:
        """``GET /api/v3/trades``: the latest ``limit`` (1-1000) trades, oldest first."""
        return recent_trades(ep.TRADES, symbol, limit)

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Trade]]:
        """``GET /api/v3/aggTrades``: aggregate trades from id ``from_id`` or in the time
        range ``start``..``end`` (ms), at most ``limit`` (1-1000)."""
        return agg_trades(ep.AGG_TRADES, symbol, from_id, start, end, limit)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Kline]]:
        """``GET /api/v3/klines``: up to ``limit`` (1-1000) candles, oldest first; without
        ``start``/``end`` the most recent ones. ``closed`` is False for the running candle."""
        sym = rq.symbol(symbol)
        rq.check_interval(interval)
        int_in("limit", limit, 1, ep.KLINES_MAX_LIMIT)
        return partial(kline_page, ep.KLINES, ep.KLINES.weight, sym, interval, start, end, limit)

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> PlanFactory[None]:
        """Every candle opening in ``start``..``end`` (ms; ``None``: now), in pages of
        1000 (weight 2 each), each asked for after the previous one was delivered."""
        sym = rq.symbol(symbol)
        rq.check_interval(interval)
        if end is not None and start > end:
            raise ValueError(f"start ({start}) must be <= end ({end})")
        return partial(kline_walk, ep.KLINES, ep.KLINES.weight, sym, interval, start, end)

    def ticker_24h(self, symbol: str) -> PlanFactory[Ticker]:
        """``GET /api/v3/ticker/24hr`` for one symbol (weight 2)."""
        sym = rq.symbol(symbol)
        ticker = call(
            ep.TICKER_24H, {"symbol": sym}, lambda reply: rp.ticker(reply.data, reply.received_at)
        )
        return partial(single, ticker)

    def avg_price(self, symbol: str) -> PlanFactory[AvgPrice]:
        """``GET /api/v3/avgPrice``: the current average price and its window."""
        sym = rq.symbol(symbol)
        price = call(
            ep.AVG_PRICE,
            {"symbol": sym},
            lambda reply: rp.avg_price(sym, reply.data, reply.received_at),
        )
        return partial(single, price)

    # -- trade gaps ---------------------------------------------------------------------

    def trades_between(
        self, feed: str, symbol: str, first_id: int, last_id: int, urgency: str = "user"
    ) -> PlanFactory[None]:
        """Trades (``feed="trades"``, ``GET /api/v3/historicalTrades``, weight 25) or
        aggregate trades (``"agg_trades"``, ``GET /api/v3/aggTrades``, weight 4) with ids
        ``first_id``..``last_id``, in order, marked ``backfilled``: pages of 1000 by
        ``fromId``, the next after the previous one was delivered."""
        sym = rq.symbol(symbol)
        if feed not in _TRADE_FEEDS:
            raise ValueError(f"feed must be 'trades' or 'agg_trades', got {feed!r}")
        if first_id > last_id:
            raise ValueError(f"first_id ({first_id}) must be <= last_id ({last_id})")
        if feed == "trades":
            return partial(
                trade_walk, ep.HISTORICAL_TRADES, rp.trade, sym, first_id, last_id, urgency
            )
        return partial(trade_walk, ep.AGG_TRADES, rp.agg_trade, sym, first_id, last_id, urgency)

    def trade_backfill(self, feed: str, symbol: str) -> Callable[[int, int], PlanFactory[None]]:
        """``(first_id, last_id) -> plan`` for one feed and symbol: what a gapless trade
        stream calls for each gap it finds (see :meth:`trades_between`)."""
        sym = rq.symbol(symbol)
        if feed not in _TRADE_FEEDS:
            raise ValueError(f"feed must be 'trades' or 'agg_trades', got {feed!r}")
        return lambda first_id, last_id: self.trades_between(feed, sym, first_id, last_id)

    def trades_after(
        self,
        symbol: str,
        from_id: int,
        since: int,
        urgency: str = "user",
        continuation: float | None = None,
    ) -> PlanFactory[list[Trade]]:
        """One page of plain trades from id ``from_id`` on (``since``: the time, ms, of
        a trade at or before it), exact, at the lowest weight the venue allows.

        ``aggTrades`` from ``since`` (weight 4) gives every single-fill aggregate's trade
        exactly (:func:`~rxconnector.exchanges.binance.aggregates.trades_from_aggregates`);
        only from the first multi-fill aggregate on is ``historicalTrades`` by id
        (weight 25) added to the page: a gap without multi-fill aggregates costs 4
        instead of 25, one with them 29. Marked ``backfilled``, ascending, consecutive.
        The aggregates are skipped when the live trades show that most orders fill
        several makers (``continuation``, the share of live trades continuing their
        predecessor's order, above :data:`LIKELY_MULTI_FILL`), and per symbol while
        they keep meeting multi-fill ones (:class:`FillHistory`).
        """
        sym = rq.symbol(symbol)
        history = self._fill_history.get(sym)
        if history is None:
            history = self._fill_history[sym] = FillHistory()
        likely_multi = continuation is not None and continuation > LIKELY_MULTI_FILL
        if likely_multi or not history.aggregates_first():
            return partial(_by_id, sym, from_id, [], urgency)
        return partial(_aggregates_first, sym, from_id, since, history, urgency)

    # -- account and trading (SIGNED) ---------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> PlanFactory[tuple[Balance, ...]]:
        """``GET /api/v3/account`` (signed, weight 20): the balances."""
        self._require_keys()
        params = {"omitZeroBalances": True} if omit_zero_balances else {}
        return partial(single, call(ep.ACCOUNT, params, lambda reply: rp.balances(reply.data)))

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
        """``POST /api/v3/order`` (signed): ``extra`` passes any other Binance parameter
        by its name (``stopPrice``, ``quoteOrderQty``, ``icebergQty``...). The client
        order id is fixed now (generated if not given); never retried."""
        sym, request, coid = rq.order_params(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._new_client_order_id,
        )
        self._require_keys()
        send = order_call(ep.NEW_ORDER, request, rp.order, coid)
        return partial(
            self._new_order, sym, request, partial(rq.check_filters, params=request), send
        )

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
        """``POST /api/v3/order/test`` (signed): validate an order without placing it;
        ``{}``, or the commission rates when ``compute_commission_rates`` (weight 20
        instead of 1). Nothing is created, so it is safe to retry."""
        weight = ep.TEST_ORDER.weight
        if compute_commission_rates:
            extra = {**extra, "computeCommissionRates": True}
            weight = ep.TEST_ORDER_COMMISSION_WEIGHT
        return self._order_test(
            ep.TEST_ORDER,
            weight,
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
        )

    def _order_test(
        self, endpoint: Endpoint, weight: int, order: OrderArgs
    ) -> PlanFactory[dict[str, Any]]:
        sym, request, _coid = rq.order_params(order, self._new_client_order_id)
        self._require_keys()
        send = call(endpoint, request, lambda reply: dict(reply.data), weight=weight)
        return partial(
            self._new_order, sym, request, partial(rq.check_filters, params=request), send
        )

    def cancel_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        """``DELETE /api/v3/order`` (signed): cancel by exchange id or client order id.
        Safe to repeat, so retried; a retry after a lost success gets -2011."""
        return self._order_by_ref(ep.CANCEL_ORDER, rp.order, symbol, order_id, client_order_id)

    def get_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        """``GET /api/v3/order`` (signed, weight 4): one order's current state."""
        return self._order_by_ref(ep.QUERY_ORDER, rp.order, symbol, order_id, client_order_id)

    def open_orders(self, symbol: str | None = None) -> PlanFactory[list[Order]]:
        """``GET /api/v3/openOrders`` (signed): open orders of one symbol (weight 6) or of
        every symbol (weight 80)."""
        return self._open_orders(ep.OPEN_ORDERS, ep.OPEN_ORDERS_ALL_WEIGHT, rp.order, symbol)


def recent_trades(endpoint: Endpoint, symbol: str, limit: int) -> PlanFactory[list[Trade]]:
    """The latest ``limit`` (1-1000) trades of ``endpoint`` (Spot's or USD-M's route)."""
    sym = rq.symbol(symbol)
    int_in("limit", limit, 1, ep.TRADES_MAX_LIMIT)
    trades = call(
        endpoint,
        {"symbol": sym, "limit": limit},
        lambda reply: [rp.trade(sym, row, reply.received_at) for row in reply.data],
    )
    return partial(single, trades)


def agg_trades(
    endpoint: Endpoint,
    symbol: str,
    from_id: int | None,
    start: int | None,
    end: int | None,
    limit: int,
) -> PlanFactory[list[Trade]]:
    """Aggregate trades of ``endpoint`` from id ``from_id`` or in ``start``..``end``."""
    sym = rq.symbol(symbol)
    int_in("limit", limit, 1, ep.TRADES_MAX_LIMIT)
    params = {"symbol": sym, "fromId": from_id, "startTime": start, "endTime": end, "limit": limit}
    trades = call(
        endpoint,
        params,
        lambda reply: [rp.agg_trade(sym, row, reply.received_at) for row in reply.data],
    )
    return partial(single, trades)


def _by_id(symbol: str, start: int, before: list[Trade], urgency: str) -> Plan[list[Trade]]:
    """``before`` plus one page of ``historicalTrades`` from id ``start``, backfilled."""

    def parse(reply: RestReply) -> list[Trade]:
        fetched = (rp.trade(symbol, row, reply.received_at) for row in reply.data)
        return [*before, *(attrs.evolve(trade, backfilled=True) for trade in fetched)]

    params = {"symbol": symbol, "limit": ep.TRADES_MAX_LIMIT, "fromId": start}
    page: list[Trade] = yield call(ep.HISTORICAL_TRADES, params, parse, urgency=urgency)
    return page


def _aggregates_first(
    symbol: str, from_id: int, since: int, history: FillHistory, urgency: str
) -> Plan[list[Trade]]:
    """``trades_after`` by the aggregates first, then by id from where they cannot prove
    the plain trades."""
    window = {"startTime": since, "endTime": since + _AGG_WINDOW_MS, "limit": 1000}
    page: list[Trade] = yield call(
        ep.AGG_TRADES,
        {"symbol": symbol, **window},
        lambda reply: [rp.agg_trade(symbol, row, reply.received_at) for row in reply.data],
        urgency=urgency,
    )
    cover = trades_from_aggregates(page, from_id)
    history.record(cover)
    # Aggregates alone answer when they reached the present (a short page) and either
    # gave trades or the window is recent (nothing newer exists yet).
    now: int = yield Now()
    recent = since + _AGG_WINDOW_MS > now
    done = len(page) < ep.TRADES_MAX_LIMIT and (bool(cover.trades) or recent)
    if cover.fetch_from is None and done:
        return cover.trades
    start = cover.fetch_from
    if start is None:
        start = cover.trades[-1].trade_id + 1 if cover.trades else from_id
    trades: list[Trade] = yield from _by_id(symbol, start, cover.trades, urgency)
    return trades
