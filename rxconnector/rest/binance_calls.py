"""How every Binance REST call is made (Spot and USD-M): the plumbing under the
endpoint methods of :class:`~rxconnector.rest.binance_spot.BinanceSpotRest` and
:class:`~rxconnector.rest.binance_futures.BinanceFuturesRest`.

Public and signed calls through the engine (:class:`~rxconnector.rest.client.RestClient`),
signing at send time, kline and trade pages, and orders checked against the symbol's
filters before sending (the rules cached by :mod:`rxconnector.rest.symbol_rules`). The
routes, builders and parsers themselves are pure venue code under
:mod:`rxconnector.exchanges.binance`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from reactivex import Observable
from reactivex import operators as ops

from rxconnector.config import Config
from rxconnector.errors import ExchangeError
from rxconnector.exchanges._args import OrderArgs, default_client_order_ids, int_in
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance import rest_requests as rq
from rxconnector.exchanges.binance.aggregates import FillHistory
from rxconnector.exchanges.binance.signing import BinanceSigner
from rxconnector.exchanges.rest_spec import Endpoint, RestReply, SignedRequest, Signer
from rxconnector.models import Kline, Order, SymbolInfo, Trade
from rxconnector.rate.limiter import Priority, RequestWeightLimiter
from rxconnector.rest.client import Operator, RestClient
from rxconnector.rest.paging import paged
from rxconnector.rest.symbol_rules import SymbolRules

__all__ = ["BinanceCalls"]

_T = TypeVar("_T")


class BinanceCalls(ABC):
    """The Binance call plumbing; endpoint methods live in the subclasses.

    ``now_ms`` is the synced exchange clock used for signed timestamps and to tell
    whether a kline is closed. ``client_order_id_factory`` makes ``newClientOrderId``
    values when the caller gives none (default: :class:`rxconnector.nonce.NonceGenerator`).
    """

    @abstractmethod
    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules by symbol (each venue's subclass names its route); the orders'
        filter checks fetch a symbol's rules through it."""

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
        self._fill_history: dict[str, FillHistory] = {}  # one per symbol backfilled
        self._new_client_order_id = client_order_id_factory or default_client_order_ids()
        self._signer: BinanceSigner | None = None
        #: the trading rules orders are checked against (fetched on the first order)
        self._rules = SymbolRules(lambda sym: self.exchange_info([sym]), scheduler=client.scheduler)
        self._symbols: dict[str, SymbolInfo] = self._rules.infos
        self._request_weight_limit: int | None = None

    @property
    def limiter(self) -> RequestWeightLimiter | None:
        """The weight limiter this client's calls go through (``None``: not limited)."""
        return self._client.limiter

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """The cached trading rules of ``symbol`` (after :meth:`exchange_info`)."""
        return self._symbols.get(symbol.upper())

    @property
    def request_weight_limit(self) -> int | None:
        """The ``REQUEST_WEIGHT`` per minute the last ``exchangeInfo`` announced."""
        return self._request_weight_limit

    def _public(
        self,
        endpoint: Endpoint,
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
        return reply.pipe(ops.map(rp.reply_parser(parse, endpoint.path)))

    def _signed_call(
        self,
        endpoint: Endpoint,
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
        return reply.pipe(ops.map(rp.reply_parser(parse, endpoint.path)))

    def _signing(self) -> Signer:
        if self._signer is None:
            self._signer = BinanceSigner(self._config.api_key, self._config.api_secret)
        signer = self._signer
        recv_window = self._config.recv_window
        now_ms = self._now_ms

        def sign(params: Mapping[str, Any]) -> SignedRequest:
            return rq.signed_request(signer, params, recv_window, int(now_ms()))

        return sign

    def _klines_route(self, limit: int) -> tuple[Endpoint, int]:
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
            return [rp.kline(symbol, interval, row, reply.received_at, now) for row in reply.data]

        return self._public(endpoint, params, parse, weight=weight)

    def _recent_trades(
        self, endpoint: Endpoint, symbol: str, limit: int
    ) -> Observable[list[Trade]]:
        sym = rq.symbol(symbol)
        int_in("limit", limit, 1, ep.TRADES_MAX_LIMIT)
        return self._public(
            endpoint,
            {"symbol": sym, "limit": limit},
            lambda reply: [rp.trade(sym, row, reply.received_at) for row in reply.data],
        )

    def _agg_trades(
        self,
        endpoint: Endpoint,
        symbol: str,
        from_id: int | None,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> Observable[list[Trade]]:
        sym = rq.symbol(symbol)
        int_in("limit", limit, 1, ep.TRADES_MAX_LIMIT)
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
            lambda reply: [rp.agg_trade(sym, row, reply.received_at) for row in reply.data],
        )

    def _trades_by_id(
        self,
        endpoint: Endpoint,
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

        return paged(first_id, fetch, advance)

    def _new_order(
        self,
        endpoint: Endpoint,
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
        sym, request, coid = rq.order_params(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._new_client_order_id,
        )
        self._signing()  # missing credentials fail here, at the call

        def send(info: SymbolInfo | None) -> Observable[Order]:
            rq.check_filters(info, request)
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
        endpoint: Endpoint,
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
        sym, request, _coid = rq.order_params(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._new_client_order_id,
        )
        self._signing()  # missing credentials fail here, at the call

        def send(info: SymbolInfo | None) -> Observable[dict[str, Any]]:
            rq.check_filters(info, request)
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
            if isinstance(error, ExchangeError) and error.code == rq.FILTER_FAILURE_CODE:
                self._rules.forget(symbol)

        return ops.do_action(on_error=on_error)

    def _on_exchange_info(self, reply: RestReply) -> dict[str, SymbolInfo]:
        data = reply.data
        infos = {info.symbol: info for info in (rp.symbol_info(s) for s in data["symbols"])}
        self._rules.remember(infos)
        limit = rq.weight_limit(data)
        if limit is not None:
            self._request_weight_limit = limit
            limiter = self._client.limiter
            if limiter is not None:
                limiter.set_limit(limit)
        return infos
