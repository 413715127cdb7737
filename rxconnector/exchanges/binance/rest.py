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

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SerialDisposable,
    SingleAssignmentDisposable,
)

from rxconnector.config import Config
from rxconnector.errors import ExchangeError, ParseError
from rxconnector.exchanges._parsing import MALFORMED, json_str, to_decimal
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance.filters import check_order
from rxconnector.exchanges.binance.signing import BinanceSigner
from rxconnector.models import (
    AvgPrice,
    Balance,
    Kline,
    Order,
    OrderBook,
    Side,
    SymbolInfo,
    Ticker,
    Trade,
)
from rxconnector.nonce import NonceGenerator
from rxconnector.rate.limiter import Priority, documented_limiter
from rxconnector.rest.client import Operator, RestClient, RestReply, SignedRequest, Signer
from rxconnector.rest.query import encode_query
from rxconnector.rest.symbol_rules import SymbolRules
from rxconnector.transport.http import Transport

__all__ = ["BinanceSpotRest", "binance_spot_client"]

_T = TypeVar("_T")

#: Binance's rule for ``newClientOrderId`` (BS ``rest-api.md`` "New order").
_CLIENT_ORDER_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_SIDES = {"buy": "BUY", "sell": "SELL"}
#: Order types that need a price / a time in force (BS ``rest-api.md`` "New order").
_PRICED = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"})
_TIMED = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_DEFAULT_TIME_IN_FORCE = "GTC"
#: ``newOrderRespType`` we ask for unless told otherwise: enough for a full Order.
_DEFAULT_RESPONSE_TYPE = "RESULT"
#: Status given to an order whose answer was only an ACK (``newOrderRespType=ACK``).
ACK_STATUS = "ACK"
#: BS ``errors.md``: filter failures ("Filter failure: PRICE_FILTER" ...) come as -1013.
FILTER_FAILURE_CODE = -1013
#: Wire names an order's ``extra`` may not carry: the client order id has its own
#: argument (and must be the one an ``OrderStatusUnknownError`` reports), the rest are
#: added by signing (a second copy would be a duplicate parameter).
_RESERVED_EXTRA = frozenset({"newClientOrderId", "recvWindow", "timestamp", "signature"})


def binance_spot_client(
    transport_factory: Callable[[], Transport],
    config: Config,
    *,
    base_url: str,
    guard: Operator | None = None,
    retry: Operator | None = None,
    on_timestamp_rejected: Callable[[], Observable[Any]] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> RestClient:
    """A :class:`RestClient` wired the Binance way: Binance's error vocabulary and, when
    ``config.rate_limit.enabled``, a weight limiter at the venue's documented limit
    capped by ``max_weight_per_minute``."""
    limiter = (
        documented_limiter(
            config.exchange, config.rate_limit.max_weight_per_minute, scheduler=scheduler
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


class BinanceSpotRest:
    """Binance Spot REST endpoints (PROTOCOL.md §A2.4) returning rxconnector models.

    ``now_ms`` is the synced exchange clock used for signed timestamps and to tell
    whether a kline is closed. ``client_order_id_factory`` makes ``newClientOrderId``
    values when the caller gives none (default: :class:`rxconnector.nonce.NonceGenerator`).
    """

    def __init__(
        self,
        client: RestClient,
        config: Config,
        now_ms: Callable[[], int | float],
        *,
        client_order_id_factory: Callable[[], str] | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._now_ms = now_ms
        self._new_client_order_id = client_order_id_factory or _default_client_order_ids()
        self._signer: BinanceSigner | None = None
        #: the trading rules orders are checked against (fetched on the first order)
        self._rules = SymbolRules(lambda sym: self.exchange_info([sym]), scheduler=client.scheduler)
        self._symbols: dict[str, SymbolInfo] = self._rules.infos
        self._request_weight_limit: int | None = None

    # -- cache and limits ---------------------------------------------------------------

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """The cached trading rules of ``symbol`` (after :meth:`exchange_info`)."""
        return self._symbols.get(symbol.upper())

    @property
    def request_weight_limit(self) -> int | None:
        """The ``REQUEST_WEIGHT`` per minute the last ``exchangeInfo`` announced."""
        return self._request_weight_limit

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
            names = [_symbol(s) for s in symbols]
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
        :class:`~rxconnector.rest.limiter.RequestWeightLimiter`)."""
        sym = _symbol(symbol)
        weight = ep.depth_weight(_int_in("limit", limit, 1, ep.DEPTH_MAX_LIMIT))
        return self._public(
            ep.DEPTH,
            {"symbol": sym, "limit": limit},
            lambda reply: _order_book(sym, reply.data, reply.received_at),
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
        sym = _symbol(symbol)
        _interval(interval)
        _int_in("limit", limit, 1, ep.KLINES_MAX_LIMIT)
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
        sym = _symbol(symbol)
        _interval(interval)
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

        return _paged(start, fetch, advance)

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
        sym = _symbol(symbol)
        if feed not in ("trades", "agg_trades"):
            raise ValueError(f"feed must be 'trades' or 'agg_trades', got {feed!r}")
        if first_id > last_id:
            raise ValueError(f"first_id ({first_id}) must be <= last_id ({last_id})")
        if feed == "trades":
            return self._trades_by_id(
                ep.HISTORICAL_TRADES, _trade, sym, first_id, last_id, priority
            )
        return self._trades_by_id(ep.AGG_TRADES, _agg_trade, sym, first_id, last_id, priority)

    def trade_backfill(self, feed: str, symbol: str) -> Callable[[int, int], Observable[Trade]]:
        """``(first_id, last_id) -> Observable[Trade]`` for one feed and symbol: the
        backfill function a gapless trade stream calls for each gap it finds."""
        sym = _symbol(symbol)
        if feed not in ("trades", "agg_trades"):
            raise ValueError(f"feed must be 'trades' or 'agg_trades', got {feed!r}")
        return lambda first_id, last_id: self.trades_between(feed, sym, first_id, last_id)

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """``GET /api/v3/ticker/24hr`` for one symbol (weight 2)."""
        sym = _symbol(symbol)
        return self._public(
            ep.TICKER_24H, {"symbol": sym}, lambda reply: _ticker(reply.data, reply.received_at)
        )

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        """``GET /api/v3/avgPrice``: the current average price and its window."""
        sym = _symbol(symbol)
        return self._public(
            ep.AVG_PRICE,
            {"symbol": sym},
            lambda reply: _avg_price(sym, reply.data, reply.received_at),
        )

    # -- account (SIGNED) ---------------------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> Observable[tuple[Balance, ...]]:
        """``GET /api/v3/account`` (signed, weight 20): the balances."""
        params = {"omitZeroBalances": True} if omit_zero_balances else {}
        return self._signed_call(ep.ACCOUNT, params, lambda reply: _balances(reply.data))

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
            _order,
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
        params = self._order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        return self._signed_call(
            ep.CANCEL_ORDER,
            params,
            lambda reply: _order(reply.data, params),
        )

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """``GET /api/v3/order`` (signed, weight 4): one order's current state."""
        params = self._order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        return self._signed_call(ep.QUERY_ORDER, params, lambda reply: _order(reply.data, params))

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """``GET /api/v3/openOrders`` (signed): open orders of one symbol (weight 6) or of
        every symbol (weight 80)."""
        params = {"symbol": _symbol(symbol)} if symbol is not None else {}
        weight = ep.OPEN_ORDERS.weight if symbol is not None else ep.OPEN_ORDERS_ALL_WEIGHT
        return self._signed_call(
            ep.OPEN_ORDERS, params, lambda reply: [_order(row) for row in reply.data], weight=weight
        )

    # -- plumbing -----------------------------------------------------------------------

    def _public(
        self,
        endpoint: ep.Endpoint,
        params: Mapping[str, Any] | None,
        parse: Callable[[RestReply], _T],
        *,
        weight: int | None = None,
        priority: Priority = Priority.USER,
    ) -> Observable[_T]:
        reply = self._client.request(
            endpoint.method,
            endpoint.path,
            params,
            weight=endpoint.weight if weight is None else weight,
            idempotent=True,
            priority=priority,
        )
        return reply.pipe(ops.map(_parser(parse, endpoint.path)))

    def _signed_call(
        self,
        endpoint: ep.Endpoint,
        params: Mapping[str, Any],
        parse: Callable[[RestReply], _T],
        *,
        weight: int | None = None,
        idempotent: bool = True,
        client_order_id: str | None = None,
    ) -> Observable[_T]:
        reply = self._client.request(
            endpoint.method,
            endpoint.path,
            params,
            weight=endpoint.weight if weight is None else weight,
            signer=self._signing(),
            idempotent=idempotent,
            client_order_id=client_order_id,
        )
        return reply.pipe(ops.map(_parser(parse, endpoint.path)))

    def _signing(self) -> Signer:
        if self._signer is None:
            self._signer = BinanceSigner(self._config.api_key, self._config.api_secret)
        signer = self._signer
        recv_window = self._config.recv_window
        now_ms = self._now_ms

        def sign(params: Mapping[str, Any]) -> SignedRequest:
            query = encode_query(
                [*params.items(), ("recvWindow", recv_window), ("timestamp", int(now_ms()))]
            )
            return SignedRequest(
                query=f"{query}&{signer.sign_query(query)}",
                headers={"X-MBX-APIKEY": signer.api_key},
            )

        return sign

    def _klines_route(self, limit: int) -> tuple[ep.Endpoint, int]:
        """The klines endpoint and the weight of a request for ``limit`` candles."""
        return ep.KLINES, ep.KLINES.weight

    def _klines(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> Observable[list[Kline]]:
        endpoint, weight = self._klines_route(limit)
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start,
            "endTime": end,
            "limit": limit,
        }

        def parse(reply: RestReply) -> list[Kline]:
            now = int(self._now_ms())
            return [_kline(symbol, interval, row, reply.received_at, now) for row in reply.data]

        return self._public(endpoint, params, parse, weight=weight)

    def _recent_trades(
        self, endpoint: ep.Endpoint, symbol: str, limit: int
    ) -> Observable[list[Trade]]:
        sym = _symbol(symbol)
        _int_in("limit", limit, 1, ep.TRADES_MAX_LIMIT)
        return self._public(
            endpoint,
            {"symbol": sym, "limit": limit},
            lambda reply: [_trade(sym, row, reply.received_at) for row in reply.data],
        )

    def _agg_trades(
        self,
        endpoint: ep.Endpoint,
        symbol: str,
        from_id: int | None,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> Observable[list[Trade]]:
        sym = _symbol(symbol)
        _int_in("limit", limit, 1, ep.TRADES_MAX_LIMIT)
        params = {
            "symbol": sym,
            "fromId": from_id,
            "startTime": start,
            "endTime": end,
            "limit": limit,
        }
        return self._public(
            endpoint,
            params,
            lambda reply: [_agg_trade(sym, row, reply.received_at) for row in reply.data],
        )

    def _trades_by_id(
        self,
        endpoint: ep.Endpoint,
        to_trade: Callable[[str, Mapping[str, Any], float], Trade],
        symbol: str,
        first_id: int,
        last_id: int,
        priority: Priority = Priority.USER,
    ) -> Observable[Trade]:
        """Trades ``first_id``..``last_id`` of ``endpoint``, marked ``backfilled``: pages
        of 1000 by ``fromId``, the next page only after the previous one was emitted."""

        def parse(reply: RestReply) -> list[Trade]:
            return [
                attrs.evolve(trade, backfilled=True)
                for trade in (to_trade(symbol, row, reply.received_at) for row in reply.data)
                if trade.trade_id <= last_id
            ]

        def fetch(cursor: int) -> Observable[list[Trade]]:
            params = {"symbol": symbol, "limit": ep.TRADES_MAX_LIMIT, "fromId": cursor}
            return self._public(endpoint, params, parse, priority=priority)

        def advance(page: list[Trade]) -> int | None:
            # A short page: either no newer trades exist or ids past last_id were cut.
            if len(page) < ep.TRADES_MAX_LIMIT or page[-1].trade_id >= last_id:
                return None
            return page[-1].trade_id + 1

        return _paged(first_id, fetch, advance)

    def _new_order(
        self,
        endpoint: ep.Endpoint,
        to_order: Callable[[Mapping[str, Any], Mapping[str, Any] | None], Order],
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | int | None,
        price: Decimal | str | int | None,
        time_in_force: str | None,
        client_order_id: str | None,
        extra: Mapping[str, Any],
    ) -> Observable[Order]:
        """An order placed at ``endpoint``: arguments checked and the client order id fixed
        now; filters checked and the request sent on subscription, never retried."""
        sym, request, coid = self._order_params(
            symbol, side, type, quantity, price, time_in_force, client_order_id, extra
        )
        self._signing()  # missing credentials fail here, at the call

        def send(info: SymbolInfo | None) -> Observable[Order]:
            _check_filters(info, request)
            return self._signed_call(
                endpoint,
                request,
                lambda reply: to_order(reply.data, request),
                idempotent=False,
                client_order_id=coid,
            )

        return self._rules.rules_for(sym).pipe(
            ops.flat_map(send), self._forget_rules_on_filter_failure(sym)
        )

    def _order_test(
        self,
        endpoint: ep.Endpoint,
        weight: int,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | int | None,
        price: Decimal | str | int | None,
        time_in_force: str | None,
        client_order_id: str | None,
        extra: Mapping[str, Any],
    ) -> Observable[dict[str, Any]]:
        """An order validated at ``endpoint`` (nothing is created, so reads' retry applies)."""
        sym, request, _coid = self._order_params(
            symbol, side, type, quantity, price, time_in_force, client_order_id, extra
        )
        self._signing()  # missing credentials fail here, at the call

        def send(info: SymbolInfo | None) -> Observable[dict[str, Any]]:
            _check_filters(info, request)
            return self._signed_call(
                endpoint, request, lambda reply: dict(reply.data), weight=weight
            )

        return self._rules.rules_for(sym).pipe(
            ops.flat_map(send), self._forget_rules_on_filter_failure(sym)
        )

    def _forget_rules_on_filter_failure(self, symbol: str) -> Operator:
        """The local check passed yet the exchange answered a filter failure: the cached
        rules are out of date (a tick size changed), so the next order fetches them."""

        def on_error(error: Exception) -> None:
            if isinstance(error, ExchangeError) and error.code == FILTER_FAILURE_CODE:
                self._rules.forget(symbol)

        return ops.do_action(on_error=on_error)

    def _on_exchange_info(self, reply: RestReply) -> dict[str, SymbolInfo]:
        data = reply.data
        infos = {info.symbol: info for info in (_symbol_info(s) for s in data["symbols"])}
        self._rules.remember(infos)
        for rule in data.get("rateLimits") or ():
            if (
                isinstance(rule, dict)
                and rule.get("rateLimitType") == "REQUEST_WEIGHT"
                and rule.get("interval") == "MINUTE"
                and rule.get("intervalNum") == 1
            ):
                self._request_weight_limit = int(rule["limit"])
                limiter = self._client.limiter
                if limiter is not None:
                    limiter.set_limit(self._request_weight_limit)
        return infos

    def _order_params(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | int | None,
        price: Decimal | str | int | None,
        time_in_force: str | None,
        client_order_id: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, Any], str]:
        sym = _symbol(symbol)
        wire_side = _SIDES.get(side.lower()) if isinstance(side, str) else None
        if wire_side is None:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        if not isinstance(type, str) or not type:
            raise ValueError(f"type must be a Binance order type such as 'LIMIT', got {type!r}")
        reserved = sorted(_RESERVED_EXTRA.intersection(extra))
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)} cannot be passed as extra parameters "
                "(give the client order id as client_order_id=; signing adds the rest)"
            )
        kind = type.upper()
        qty = _decimal("quantity", quantity)
        px = _decimal("price", price)
        if kind in _PRICED and px is None:
            raise ValueError(f"a {kind} order needs a price")
        if kind == "MARKET":
            if qty is None and "quoteOrderQty" not in extra:
                raise ValueError("a MARKET order needs quantity or quoteOrderQty")
        elif qty is None:
            raise ValueError(f"a {kind} order needs a quantity")
        tif = time_in_force.upper() if time_in_force else None
        if tif is None and kind in _TIMED:
            tif = _DEFAULT_TIME_IN_FORCE
        coid = client_order_id if client_order_id is not None else self._new_client_order_id()
        if not _CLIENT_ORDER_ID.match(coid):
            raise ValueError(
                f"client_order_id must match {_CLIENT_ORDER_ID.pattern} (Binance), got {coid!r}"
            )
        params: dict[str, Any] = {
            "symbol": sym,
            "side": wire_side,
            "type": kind,
            "timeInForce": tif,
            "quantity": qty,
            "price": px,
            "newClientOrderId": coid,
            "newOrderRespType": _DEFAULT_RESPONSE_TYPE,
        }
        params.update(extra)
        return sym, params, coid

    @staticmethod
    def _order_ref(
        symbol: str, order_id: int | str | None, client_order_id: str | None, name: str
    ) -> dict[str, Any]:
        if order_id is None and client_order_id is None:
            raise ValueError("give order_id or client_order_id")
        return {"symbol": _symbol(symbol), "orderId": order_id, name: client_order_id}


def _check_filters(info: SymbolInfo | None, params: Mapping[str, Any]) -> None:
    """Raise ``OrderRejectedError`` for an order the symbol's rules refuse (nothing to
    check when the exchange did not list the symbol: it will answer for itself)."""
    if info is not None:
        check_order(info, params["side"], params["type"], params["quantity"], params["price"])


def _paged(
    first: int,
    fetch: Callable[[int], Observable[list[_T]]],
    advance: Callable[[list[_T]], int | None],
) -> Observable[_T]:
    """Items of page after page, in order: ``fetch(cursor)`` gives a page, ``advance(page)``
    the next cursor or ``None`` when the walk is over. The next page is requested only
    after the previous one completed (pages never overlap in flight); disposal stops the
    walk and cancels the page in flight."""

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        current = SerialDisposable()
        stopped = False

        def load(cursor: int) -> None:
            if stopped:
                return
            page: list[_T] = []

            def on_page(items: list[_T]) -> None:
                page.extend(items)
                for item in items:
                    observer.on_next(item)

            def on_page_done() -> None:
                following = advance(page)
                if following is None:
                    observer.on_completed()
                else:
                    load(following)

            holder = SingleAssignmentDisposable()
            current.disposable = holder
            holder.disposable = fetch(cursor).subscribe(
                on_page, observer.on_error, on_page_done, scheduler=scheduler_
            )

        def stop() -> None:
            nonlocal stopped
            stopped = True

        load(first)
        return CompositeDisposable(Disposable(stop), current)

    return reactivex.create(subscribe)


# -- argument checks -----------------------------------------------------------------------


def _symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
    return symbol.strip().upper()


def _interval(interval: str) -> None:
    if interval not in ep.KLINE_INTERVALS:
        raise ValueError(
            f"interval {interval!r} is not one of Binance's: {', '.join(ep.KLINE_INTERVALS)}"
        )


def _int_in(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def _decimal(name: str, value: Decimal | str | int | None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def _default_client_order_ids() -> Callable[[], str]:
    """Unique, increasing ids from :class:`rxconnector.nonce.NonceGenerator` (``rxc...``)."""
    return NonceGenerator().next_str


# -- body parsers (REST answers → models) ----------------------------------------------


def _parser(parse: Callable[[RestReply], _T], path: str) -> Callable[[RestReply], _T]:
    def run(reply: RestReply) -> _T:
        try:
            return parse(reply)
        except ParseError:
            raise
        except MALFORMED as exc:  # AttributeError too: ``null``/an array for an object
            # reply.data itself, not orjson.dumps(reply.data): dumping raised on 900-deep
            # JSON; ParseError takes a bounded, non-recursive excerpt of anything.
            raise ParseError(
                f"unexpected {path} answer ({type(exc).__name__}: {exc})", reply.data
            ) from exc

    return run


def _nonzero(value: Any) -> Decimal | None:
    """A filter value; Binance disables a rule by setting it to 0 (§A2.5)."""
    if value is None:
        return None
    number = to_decimal(value)
    return number if number != 0 else None


def _symbol_info(data: Mapping[str, Any]) -> SymbolInfo:
    rules: dict[str, Decimal | None] = {}
    for rule in data.get("filters") or ():
        kind = rule.get("filterType")
        if kind == "PRICE_FILTER":
            rules["tick_size"] = _nonzero(rule.get("tickSize"))
            rules["min_price"] = _nonzero(rule.get("minPrice"))
            rules["max_price"] = _nonzero(rule.get("maxPrice"))
        elif kind == "LOT_SIZE":
            rules["step_size"] = _nonzero(rule.get("stepSize"))
            rules["min_qty"] = _nonzero(rule.get("minQty"))
            rules["max_qty"] = _nonzero(rule.get("maxQty"))
        elif kind == "MIN_NOTIONAL":
            # Spot writes "minNotional", USD-M futures "notional" (its exchangeInfo example)
            minimum = rule.get("minNotional", rule.get("notional"))
            rules.setdefault("min_notional", _nonzero(minimum))
        elif kind == "NOTIONAL":
            rules["min_notional"] = _nonzero(rule.get("minNotional"))
            rules["max_notional"] = _nonzero(rule.get("maxNotional"))
    return SymbolInfo(
        symbol=json_str(data["symbol"]),
        status=json_str(data["status"]),
        base_asset=json_str(data["baseAsset"]),
        quote_asset=json_str(data["quoteAsset"]),
        **rules,
    )


def _levels(rows: Iterable[Sequence[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((to_decimal(price), to_decimal(qty)) for price, qty, *_ in rows)


def _order_book(symbol: str, data: Mapping[str, Any], received_at: float) -> OrderBook:
    return OrderBook(
        symbol=symbol,
        bids=_levels(data["bids"]),
        asks=_levels(data["asks"]),
        update_id=int(data["lastUpdateId"]),
        event_time=0,
        received_at=received_at,
    )


def _taker_side(buyer_is_maker: bool) -> Side:
    return "sell" if buyer_is_maker else "buy"


def _trade(symbol: str, row: Mapping[str, Any], received_at: float) -> Trade:
    time = int(row["time"])
    return Trade(
        symbol=symbol,
        trade_id=int(row["id"]),
        price=to_decimal(row["price"]),
        quantity=to_decimal(row["qty"]),
        side=_taker_side(bool(row["isBuyerMaker"])),
        time=time,
        event_time=time,
        received_at=received_at,
    )


def _agg_trade(symbol: str, row: Mapping[str, Any], received_at: float) -> Trade:
    time = int(row["T"])
    return Trade(
        symbol=symbol,
        trade_id=int(row["a"]),
        price=to_decimal(row["p"]),
        quantity=to_decimal(row["q"]),
        side=_taker_side(bool(row["m"])),
        time=time,
        event_time=time,
        received_at=received_at,
        first_trade_id=int(row["f"]),
        last_trade_id=int(row["l"]),
    )


def _kline(symbol: str, interval: str, row: Sequence[Any], received_at: float, now: int) -> Kline:
    close_time = int(row[6])
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time=int(row[0]),
        close_time=close_time,
        open=to_decimal(row[1]),
        high=to_decimal(row[2]),
        low=to_decimal(row[3]),
        close=to_decimal(row[4]),
        volume=to_decimal(row[5]),
        quote_volume=to_decimal(row[7]),
        trades=int(row[8]),
        closed=close_time < now,
        event_time=min(close_time, now),
        received_at=received_at,
    )


def _optional(data: Mapping[str, Any], key: str) -> Decimal | None:
    value = data.get(key)
    return to_decimal(value) if value is not None else None


def _ticker(data: Mapping[str, Any], received_at: float) -> Ticker:
    return Ticker(
        symbol=data["symbol"],
        last=to_decimal(data["lastPrice"]),
        bid=_optional(data, "bidPrice"),
        bid_qty=_optional(data, "bidQty"),
        ask=_optional(data, "askPrice"),
        ask_qty=_optional(data, "askQty"),
        open=to_decimal(data["openPrice"]),
        high=to_decimal(data["highPrice"]),
        low=to_decimal(data["lowPrice"]),
        volume=to_decimal(data["volume"]),
        quote_volume=to_decimal(data["quoteVolume"]),
        event_time=int(data["closeTime"]),
        received_at=received_at,
    )


def _avg_price(symbol: str, data: Mapping[str, Any], received_at: float) -> AvgPrice:
    close_time = int(data["closeTime"])
    return AvgPrice(
        symbol=symbol,
        interval=f"{int(data['mins'])}m",
        price=to_decimal(data["price"]),
        last_trade_time=close_time,
        event_time=close_time,
        received_at=received_at,
    )


def _balances(data: Mapping[str, Any]) -> tuple[Balance, ...]:
    update_time = int(data.get("updateTime") or 0)
    return tuple(
        Balance(
            asset=row["asset"],
            free=to_decimal(row["free"]),
            locked=to_decimal(row["locked"]),
            event_time=update_time,
        )
        for row in data["balances"]
    )


def _order(data: Mapping[str, Any], sent: Mapping[str, Any] | None = None) -> Order:
    """An Order from a RESULT/FULL/ACK order answer, a query or a cancel answer.

    A cancel answer's ``clientOrderId`` is the cancel request's own id; the order's is
    ``origClientOrderId``. ACK answers lack most fields: they are taken from ``sent``.
    """
    sent = sent or {}
    executed = to_decimal(data.get("executedQty", "0"))
    average: Decimal | None = None
    quote = data.get("cummulativeQuoteQty")
    if quote is not None and executed > 0:
        spent = to_decimal(quote)
        average = spent / executed if spent >= 0 else None  # negative: pre-2018 orders
    transact = int(data.get("transactTime") or 0)
    side = data.get("side", sent.get("side"))
    price = data.get("price", sent.get("price"))
    quantity = data.get("origQty", sent.get("quantity"))
    return Order(
        symbol=data["symbol"],
        order_id=str(data["orderId"]),
        client_order_id=data.get("origClientOrderId") or data["clientOrderId"],
        side="buy" if str(side).upper() == "BUY" else "sell",
        type=str(data.get("type", sent.get("type", ""))),
        status=str(data.get("status", ACK_STATUS)),
        price=to_decimal(str(price)) if price is not None else Decimal(0),
        quantity=to_decimal(str(quantity)) if quantity is not None else Decimal(0),
        filled_quantity=executed,
        average_price=average,
        time_in_force=data.get("timeInForce", sent.get("timeInForce")),
        time=int(data.get("time") or transact),
        update_time=int(data.get("updateTime") or data.get("workingTime") or transact),
    )
