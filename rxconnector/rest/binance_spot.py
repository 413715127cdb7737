"""Binance Spot REST API as cold Observables of normalized models.

Each method validates its arguments at once (a ``ValueError`` names what is wrong),
then returns a cold Observable: nothing is sent until subscription, each subscription
sends through the :class:`~rxconnector.rest.client.RestClient` pipeline (weight limiter,
circuit breaker, retry for reads), and ``await`` works on every one of them::

    rest = BinanceSpotRest(client, config, now_ms=clock.now)
    info = await rest.exchange_info(["BTCUSDT"])
    order = await rest.place_order("BTCUSDT", "buy", "LIMIT", quantity="0.01", price="50000")

Signed calls add ``recvWindow`` (``config.recv_window``) and ``timestamp`` (from
``now_ms``, the synced exchange clock, read when the request actually leaves), sign the
exact query string and send the key in ``X-MBX-APIKEY`` (PROTOCOL.md §A3).

Orders are always checked against the symbol's filters before sending: the rules
come from a cache that :meth:`exchange_info` fills, and a symbol not cached (or cached
longer than :data:`~rxconnector.rest.symbol_rules.SYMBOL_RULES_TTL` ago) is fetched
first, one ``exchangeInfo`` request shared by concurrent orders
(:mod:`rxconnector.rest.symbol_rules`). A bad tick size thus fails locally with
``OrderRejectedError`` instead of spending an order request, also on a fresh connector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxconnector.config import Config
from rxconnector.exchanges._args import (
    int_in,
)
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance import rest_requests as rq
from rxconnector.exchanges.binance.aggregates import FillHistory, trades_from_aggregates
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
from rxconnector.rate.limiter import Priority, documented_limiter
from rxconnector.rest.api import RestApi
from rxconnector.rest.binance_calls import BinanceCalls
from rxconnector.rest.client import Operator, RestClient
from rxconnector.rest.paging import paged
from rxconnector.transport.http import Transport

__all__ = ["BinanceSpotRest", "binance_spot_client"]

_T = TypeVar("_T")

#: Share of live trades continuing their predecessor's order above which a gap almost
#: surely holds a multi-fill aggregate (recorded Binance sessions: Spot 0.00-0.20, USD-M 0.49,
#: COIN-M 0.69; the simulator ≈ 0.5): ``trades_after`` then goes by id at once.
LIKELY_MULTI_FILL = 0.25

#: ``aggTrades`` takes a time window shorter than an hour (PROTOCOL.md §A2.4).
_AGG_WINDOW_MS = 3_599_999


def binance_spot_client(
    transport_factory: Callable[[], Transport],
    config: Config,
    *,
    base_url: str,
    guard: Operator | None = None,
    retry: Operator | None = None,
    on_timestamp_rejected: Callable[[], Observable[Any]] | None = None,
    scheduler: abc.SchedulerBase | None = None,
    weight_per_minute: int = ep.WEIGHT_PER_MINUTE,
) -> RestClient:
    """A :class:`RestClient` wired the Binance way: Binance's error vocabulary and, when
    ``config.rate_limit.enabled``, a weight limiter at ``weight_per_minute`` (default
    Spot's documented budget) capped by ``max_weight_per_minute``."""
    limiter = (
        documented_limiter(
            weight_per_minute,
            config.rate_limit.max_weight_per_minute,
            exchange=config.exchange,
            scheduler=scheduler,
        )
        if config.rate_limit.enabled
        else None
    )
    return RestClient(
        transport_factory,
        base_url=base_url,
        exchange=config.exchange,
        limiter=limiter,
        guard=guard,
        retry=retry,
        on_timestamp_rejected=on_timestamp_rejected,
        dialect=ep.BINANCE_ERRORS,
        scheduler=scheduler,
    )


class BinanceSpotRest(BinanceCalls):
    """Binance Spot REST endpoints (PROTOCOL.md §A2.4) returning rxconnector models.

    Built as ``BinanceSpotRest(client, config, now_ms)`` (see
    :class:`~rxconnector.rest.binance_calls.BinanceCalls` for the arguments).
    """

    # -- general ------------------------------------------------------------------------

    def ping(self) -> Observable[None]:
        """``GET /api/v3/ping``: emits ``None`` when the API answers."""
        return self._public(ep.PING, None, lambda _reply: None)

    def server_time(self) -> Observable[int]:
        """``GET /api/v3/time``: the server's clock in ms."""
        return self._public(ep.TIME, None, lambda reply: int(reply.data["serverTime"]))

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """``GET /api/v3/exchangeInfo``: trading rules by symbol.

        Also caches them for order filter checks and, when ``rateLimits`` announces a
        ``REQUEST_WEIGHT`` per 1 minute, sets the limiter to it.
        """
        params: dict[str, Any] = {}
        if symbols is not None:
            if isinstance(symbols, str):
                symbols = [symbols]
            names = [rq.symbol(s) for s in symbols]
            if len(names) == 1:
                params["symbol"] = names[0]
            elif names:
                params["symbols"] = names
        return self._public(ep.EXCHANGE_INFO, params, self._on_exchange_info)

    # -- market data --------------------------------------------------------------------

    def depth_snapshot(
        self, symbol: str, limit: int = 100, *, priority: Priority = Priority.USER
    ) -> Observable[OrderBook]:
        """``GET /api/v3/depth``: a book snapshot of ``limit`` levels (1-5000); the weight
        follows the limit (5 / 25 / 50 / 250). ``event_time`` is 0: the answer has none.
        ``priority=Priority.RECOVERY`` for a book resyncing itself (see
        :class:`~rxconnector.rate.limiter.RequestWeightLimiter`)."""
        sym = rq.symbol(symbol)
        weight = ep.depth_weight(int_in("limit", limit, 1, ep.DEPTH_MAX_LIMIT))
        return self._public(
            ep.DEPTH,
            {"symbol": sym, "limit": limit},
            lambda reply: rp.order_book(sym, reply.data, reply.received_at),
            weight=weight,
            priority=priority,
        )

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """``GET /api/v3/trades``: the latest ``limit`` (1-1000) trades, oldest first."""
        return self._recent_trades(ep.TRADES, symbol, limit)

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Trade]]:
        """``GET /api/v3/aggTrades``: aggregate trades from id ``from_id`` or in the time
        range ``start``..``end`` (ms), at most ``limit`` (1-1000)."""
        return self._agg_trades(ep.AGG_TRADES, symbol, from_id, start, end, limit)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Kline]]:
        """``GET /api/v3/klines``: up to ``limit`` (1-1000) candles, oldest first; without
        ``start``/``end`` the most recent ones. ``closed`` is False for the running candle."""
        sym = rq.symbol(symbol)
        rq.check_interval(interval)
        int_in("limit", limit, 1, ep.KLINES_MAX_LIMIT)
        return self._klines(sym, interval, start, end, limit)

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> Observable[Kline]:
        """Every candle opening in ``start``..``end`` (ms; ``end=None``: now, read when
        subscribed), one by one, in order.

        .. marble::

            pages:   --[k1..k1000]----[k1001..k2000]----[k2001..k2345]|
            result:  --k1,k2,...k1000--k1001,...k2000---k2001,...k2345|

        Walks the range in pages of 1000 candles; a page is requested only after the
        previous one has been emitted, each through the weight limiter (weight 2), so a
        long history paces itself within the budget instead of bursting. Disposing
        stops the walk and cancels the request in flight.
        """
        sym = rq.symbol(symbol)
        rq.check_interval(interval)
        if end is None:

            def until_now(_scheduler: abc.SchedulerBase) -> Observable[Kline]:
                return self.klines_history(sym, interval, start, int(self._now_ms()))

            return reactivex.defer(until_now)
        if start > end:
            raise ValueError(f"start ({start}) must be <= end ({end})")
        last = end

        def fetch(cursor: int) -> Observable[list[Kline]]:
            return self._klines(sym, interval, cursor, last, ep.KLINES_MAX_LIMIT)

        def advance(page: list[Kline]) -> int | None:
            if len(page) < ep.KLINES_MAX_LIMIT or page[-1].open_time >= last:
                return None
            return page[-1].open_time + 1

        return paged(start, fetch, advance)

    def trades_between(
        self,
        feed: str,
        symbol: str,
        first_id: int,
        last_id: int,
        *,
        priority: Priority = Priority.USER,
    ) -> Observable[Trade]:
        """Trades (``feed="trades"``) or aggregate trades (``feed="agg_trades"``) with ids
        ``first_id``..``last_id``, in order, marked ``backfilled``: how a gap in a live
        trade feed is closed after a reconnect.

        Pages of 1000 by ``fromId`` (``GET /api/v3/historicalTrades``, weight 25, or
        ``GET /api/v3/aggTrades``, weight 4), each through the limiter, the next page only
        after the previous one was emitted.
        """
        sym = rq.symbol(symbol)
        if feed not in ("trades", "agg_trades"):
            raise ValueError(f"feed must be 'trades' or 'agg_trades', got {feed!r}")
        if first_id > last_id:
            raise ValueError(f"first_id ({first_id}) must be <= last_id ({last_id})")
        if feed == "trades":
            return self._trades_by_id(
                ep.HISTORICAL_TRADES, rp.trade, sym, first_id, last_id, priority
            )
        return self._trades_by_id(ep.AGG_TRADES, rp.agg_trade, sym, first_id, last_id, priority)

    def trade_backfill(self, feed: str, symbol: str) -> Callable[[int, int], Observable[Trade]]:
        """``(first_id, last_id) -> Observable[Trade]`` for one feed and symbol: the
        backfill function a gapless trade stream calls for each gap it finds."""
        sym = rq.symbol(symbol)
        if feed not in ("trades", "agg_trades"):
            raise ValueError(f"feed must be 'trades' or 'agg_trades', got {feed!r}")
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
        """One page of plain trades from id ``from_id`` on (``since``: the time, ms, of
        a trade at or before it), exact, at the lowest weight the venue allows.

        ``aggTrades`` from ``since`` (weight 4) gives every single-fill aggregate's trade
        exactly (:func:`~rxconnector.exchanges.binance.aggregates.trades_from_aggregates`);
        only from the first multi-fill aggregate on is ``historicalTrades`` by id
        (weight 25) added to the page. A gap without multi-fill aggregates costs 4
        instead of 25; one with them 29. Marked ``backfilled``, ascending, consecutive.
        The aggregates are skipped when the live trades show that most orders fill
        several makers (``continuation``: the share of live trades continuing their
        predecessor's order, above :data:`LIKELY_MULTI_FILL`), and per symbol while
        they keep meeting multi-fill ones
        (:class:`~rxconnector.exchanges.binance.aggregates.FillHistory`).
        """
        sym = rq.symbol(symbol)
        history = self._fill_history.get(sym)
        if history is None:
            history = self._fill_history[sym] = FillHistory()

        def by_id(start: int, before: list[Trade]) -> Observable[list[Trade]]:
            page = self._public(
                ep.HISTORICAL_TRADES,
                {"symbol": sym, "limit": ep.TRADES_MAX_LIMIT, "fromId": start},
                lambda reply: [
                    *before,
                    *(
                        attrs.evolve(rp.trade(sym, row, reply.received_at), backfilled=True)
                        for row in reply.data
                    ),
                ],
                priority=priority,
            )
            return page

        likely_multi = continuation is not None and continuation > LIKELY_MULTI_FILL
        if likely_multi or not history.aggregates_first():
            return by_id(from_id, [])
        window = {"startTime": since, "endTime": since + _AGG_WINDOW_MS, "limit": 1000}
        aggregates = self._public(
            ep.AGG_TRADES,
            {"symbol": sym, **window},
            lambda reply: [rp.agg_trade(sym, row, reply.received_at) for row in reply.data],
            priority=priority,
        )

        def complete(page: list[Trade]) -> Observable[list[Trade]]:
            cover = trades_from_aggregates(page, from_id)
            history.record(cover)
            # Aggregates alone answer when they reached the present (a short page) and
            # either gave trades or the window is recent (nothing newer exists yet).
            recent = since + _AGG_WINDOW_MS > self._now_ms()
            done = len(page) < ep.TRADES_MAX_LIMIT and (bool(cover.trades) or recent)
            if cover.fetch_from is None and done:
                return reactivex.just(cover.trades)
            start = cover.fetch_from
            if start is None:
                start = cover.trades[-1].trade_id + 1 if cover.trades else from_id
            return by_id(start, cover.trades)

        return aggregates.pipe(ops.concat_map(complete))

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """``GET /api/v3/ticker/24hr`` for one symbol (weight 2)."""
        sym = rq.symbol(symbol)
        return self._public(
            ep.TICKER_24H, {"symbol": sym}, lambda reply: rp.ticker(reply.data, reply.received_at)
        )

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        """``GET /api/v3/avgPrice``: the current average price and its window."""
        sym = rq.symbol(symbol)
        return self._public(
            ep.AVG_PRICE,
            {"symbol": sym},
            lambda reply: rp.avg_price(sym, reply.data, reply.received_at),
        )

    # -- account (SIGNED) ---------------------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> Observable[tuple[Balance, ...]]:
        """``GET /api/v3/account`` (signed, weight 20): the balances."""
        params = {"omitZeroBalances": True} if omit_zero_balances else {}
        return self._signed_call(ep.ACCOUNT, params, lambda reply: rp.balances(reply.data))

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
        """``POST /api/v3/order`` (signed): place an order; emits the resulting Order.

        ``extra`` passes any other Binance parameter by its Binance name (``stopPrice``,
        ``quoteOrderQty``, ``icebergQty``, ``newOrderRespType`` ...). The client order id
        is fixed now (generated if not given) so every subscription sends the same one.

        Never retried. If the answer is lost (timeout, 5xx, -1007) the Observable errors
        with :class:`~rxconnector.errors.OrderStatusUnknownError` carrying that client
        order id: look it up with :meth:`get_order` before trying again.
        """
        return self._new_order(
            ep.NEW_ORDER,
            rp.order,
            symbol,
            side,
            type,
            quantity,
            price,
            time_in_force,
            client_order_id,
            extra,
        )

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
        """``POST /api/v3/order/test`` (signed): validate an order without placing it.

        Emits ``{}``, or the commission rates when ``compute_commission_rates`` (weight
        20 instead of 1). Nothing is created, so it is safe to retry.
        """
        weight = ep.TEST_ORDER.weight
        if compute_commission_rates:
            extra = {**extra, "computeCommissionRates": True}
            weight = ep.TEST_ORDER_COMMISSION_WEIGHT
        return self._order_test(
            ep.TEST_ORDER,
            weight,
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
        """``DELETE /api/v3/order`` (signed): cancel by exchange id or client order id.

        Cancelling is safe to repeat, so it may be retried; if a retry follows a lost
        success, Binance answers -2011 (``ExchangeError``): confirm with :meth:`get_order`.
        """
        params = rq.order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        return self._signed_call(
            ep.CANCEL_ORDER,
            params,
            lambda reply: rp.order(reply.data, params),
        )

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``GET /api/v3/order`` (signed, weight 4): one order's current state."""
        params = rq.order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        return self._signed_call(ep.QUERY_ORDER, params, lambda reply: rp.order(reply.data, params))

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """``GET /api/v3/openOrders`` (signed): open orders of one symbol (weight 6) or of
        every symbol (weight 80)."""
        params = {"symbol": rq.symbol(symbol)} if symbol is not None else {}
        weight = ep.OPEN_ORDERS.weight if symbol is not None else ep.OPEN_ORDERS_ALL_WEIGHT
        return self._signed_call(
            ep.OPEN_ORDERS,
            params,
            lambda reply: [rp.order(row) for row in reply.data],
            weight=weight,
        )


if TYPE_CHECKING:
    # mypy proves here that the class satisfies the shared protocol.
    _SATISFIES: type[RestApi] = BinanceSpotRest
