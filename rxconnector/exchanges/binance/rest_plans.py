"""What Binance Spot and USD-M REST flows share, as pure plans
(:mod:`rxconnector.exchanges.rest_plan`): calls with Binance's reply parsing, kline
pages and walks, trade walks by id, orders checked against the symbol's rules, and the
``exchangeInfo`` answer (rules cached, weight budget announced).

Both venues speak one dialect (``{"code", "msg"}`` errors, weights, HMAC/Ed25519/RSA
query signing): :class:`BinancePlans` holds what both need (the Config, the client
order ids, the credentials check); the routes are the subclasses'
(:mod:`~rxconnector.exchanges.binance.spot_plans`,
:mod:`~rxconnector.exchanges.binance.futures_plans`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import attrs

from rxconnector.config import Config
from rxconnector.errors import ExchangeError
from rxconnector.exchanges._args import default_client_order_ids
from rxconnector.exchanges.binance import endpoints as ep
from rxconnector.exchanges.binance import rest_parsers as rp
from rxconnector.exchanges.binance import rest_requests as rq
from rxconnector.exchanges.binance.signing import BinanceSigner
from rxconnector.exchanges.rest_plan import (
    Call,
    Emit,
    ForgetRules,
    Now,
    Plan,
    PlanFactory,
    Remember,
    RulesFor,
    WeightBudget,
    single,
)
from rxconnector.exchanges.rest_spec import Endpoint, RestReply
from rxconnector.exchanges.venue_plans import VenuePlans
from rxconnector.models import Kline, Order, SymbolInfo, Trade

__all__ = [
    "BinancePlans",
    "ExchangeInfo",
    "call",
    "exchange_info_plan",
    "forgetting_rules",
    "kline_page",
    "kline_walk",
    "order_call",
    "parse_exchange_info",
    "trade_walk",
]

_T = TypeVar("_T")


def call(
    endpoint: Endpoint,
    params: Mapping[str, Any],
    parse: Callable[[RestReply], _T],
    *,
    weight: int | None = None,
    urgency: str = "user",
    idempotent: bool = True,
    client_order_id: str | None = None,
    keyed: bool = False,
) -> Call[_T]:
    """A :class:`Call` whose malformed answer becomes ``ParseError`` naming the route."""
    return Call(
        endpoint,
        params,
        rp.reply_parser(parse, endpoint.path),
        weight=weight,
        urgency=urgency,
        idempotent=idempotent,
        client_order_id=client_order_id,
        keyed=keyed,
    )


def _whole(reply: RestReply) -> RestReply:
    return reply


def kline_page(
    endpoint: Endpoint,
    weight: int,
    symbol: str,
    interval: str,
    start: int | None,
    end: int | None,
    limit: int,
) -> Plan[list[Kline]]:
    """One page of candles; ``closed`` is judged by the clock read when it arrived."""
    params = {
        "symbol": symbol,
        "interval": interval,
        "startTime": start,
        "endTime": end,
        "limit": limit,
    }
    reply: RestReply = yield Call(endpoint, params, _whole, weight=weight)
    now: int = yield Now()

    def parse(answer: RestReply) -> list[Kline]:
        return [rp.kline(symbol, interval, row, answer.received_at, now) for row in answer.data]

    return rp.reply_parser(parse, endpoint.path)(reply)


def kline_walk(
    endpoint: Endpoint,
    weight: int,
    symbol: str,
    interval: str,
    start: int,
    end: int | None,
) -> Plan[None]:
    """Every candle opening in ``start``..``end`` (``None``: now, read when the walk
    starts): pages of 1000, each emitted before the next is asked for::

        pages:   --[k1..k1000]----[k1001..k2000]----[k2001..k2345]|
        result:  --k1,k2,...k1000--k1001,...k2000---k2001,...k2345|
    """
    last: int = (yield Now()) if end is None else end
    if start > last:
        raise ValueError(f"start ({start}) must be <= end ({last})")
    cursor = start
    while True:
        page = yield from kline_page(
            endpoint, weight, symbol, interval, cursor, last, ep.KLINES_MAX_LIMIT
        )
        yield Emit(page)
        if len(page) < ep.KLINES_MAX_LIMIT or page[-1].open_time >= last:
            return None
        cursor = page[-1].open_time + 1


def trade_walk(
    endpoint: Endpoint,
    to_trade: Callable[[str, Mapping[str, Any], float], Trade],
    symbol: str,
    first_id: int,
    last_id: int,
    urgency: str,
) -> Plan[None]:
    """Trades ``first_id``..``last_id`` of ``endpoint``, marked ``backfilled``: pages of
    1000 by ``fromId``, the next page only after the previous one was emitted."""

    def parse(reply: RestReply) -> list[Trade]:
        return [
            attrs.evolve(trade, backfilled=True)
            for trade in (to_trade(symbol, row, reply.received_at) for row in reply.data)
            if trade.trade_id <= last_id
        ]

    cursor = first_id
    while True:
        params = {"symbol": symbol, "limit": ep.TRADES_MAX_LIMIT, "fromId": cursor}
        page: list[Trade] = yield call(endpoint, params, parse, urgency=urgency)
        yield Emit(page)
        # A short page: either no newer trades exist or ids past last_id were cut.
        if len(page) < ep.TRADES_MAX_LIMIT or page[-1].trade_id >= last_id:
            return None
        cursor = page[-1].trade_id + 1


def forgetting_rules(symbol: str, plan: Plan[_T]) -> Plan[_T]:
    """``plan`` (an order), except that when the exchange answers a filter failure the
    local check passed, the cached rules are out of date (a tick size changed): they
    are dropped, so the next order fetches them."""
    try:
        result: _T = yield from plan
    except ExchangeError as error:
        if error.code == rq.FILTER_FAILURE_CODE:
            yield ForgetRules(symbol)
        raise
    return result


@attrs.frozen
class ExchangeInfo:
    """What one ``exchangeInfo`` answer says: rules by symbol, the weight budget, and
    what else a venue reads from it by symbol (USD-M's futures-only filters)."""

    infos: dict[str, SymbolInfo]
    weight_limit: int | None
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def parse_exchange_info(reply: RestReply) -> ExchangeInfo:
    data = reply.data
    infos = {info.symbol: info for info in (rp.symbol_info(row) for row in data["symbols"])}
    return ExchangeInfo(infos, rq.weight_limit(data))


def exchange_info_plan(
    endpoint: Endpoint,
    params: Mapping[str, Any],
    parse: Callable[[RestReply], ExchangeInfo] = parse_exchange_info,
) -> Plan[ExchangeInfo]:
    """``exchangeInfo``: the rules are cached (``Remember``) and an announced
    ``REQUEST_WEIGHT`` per minute sets the limiter (``WeightBudget``). A malformed
    answer (``parse`` included) is ``ParseError``."""
    answer: ExchangeInfo = yield call(endpoint, params, parse)
    yield Remember(answer.infos)
    if answer.weight_limit is not None:
        yield WeightBudget(answer.weight_limit)
    return answer


#: A Binance order answer (and the request it answers, if any) → :class:`Order`
#: (:func:`~rxconnector.exchanges.binance.rest_parsers.order` or ``futures_order``).
OrderParser = Callable[[Mapping[str, Any], Mapping[str, Any] | None], Order]


class BinancePlans(VenuePlans):
    """The parts of a Binance venue's plans that do not depend on its routes.

    ``client_order_id_factory`` makes ``newClientOrderId`` values when the caller gives
    none (default: :class:`rxconnector.nonce.NonceGenerator`).
    """

    def __init__(
        self, config: Config, *, client_order_id_factory: Callable[[], str] | None = None
    ) -> None:
        self._config = config
        self._new_client_order_id = client_order_id_factory or default_client_order_ids()
        self._keys_checked = False

    def _require_keys(self) -> None:
        """ConfigError now (at the call) when the Config's keys cannot sign: missing, or
        a PEM secret that is not a usable private key."""
        if not self._keys_checked:
            BinanceSigner(self._config.api_key, self._config.api_secret)
            self._keys_checked = True

    def _order_by_ref(
        self,
        endpoint: Endpoint,
        to_order: OrderParser,
        symbol: str,
        order_id: int | str | None,
        client_order_id: str | None,
    ) -> PlanFactory[Order]:
        """One signed call on one order named by exchange id or client order id (a query
        or a cancel): the same shape on Spot and USD-M, only route and parser differ."""
        params = rq.order_ref(symbol, order_id, client_order_id, "origClientOrderId")
        self._require_keys()
        return partial(single, call(endpoint, params, lambda reply: to_order(reply.data, params)))

    def _open_orders(
        self, endpoint: Endpoint, all_weight: int, to_order: OrderParser, symbol: str | None
    ) -> PlanFactory[list[Order]]:
        """Open orders of one symbol (the route's weight) or of every symbol
        (``all_weight``)."""
        params = {"symbol": rq.symbol(symbol)} if symbol is not None else {}
        weight = endpoint.weight if symbol is not None else all_weight
        self._require_keys()
        orders = call(
            endpoint,
            params,
            lambda reply: [to_order(row, None) for row in reply.data],
            weight=weight,
        )
        return partial(single, orders)

    def _new_order(
        self,
        symbol: str,
        request: Mapping[str, Any],
        check: Callable[[SymbolInfo | None], None],
        send: Call[_T],
    ) -> Plan[_T]:
        """An order: the symbol's rules fetched (when not cached) and checked, then
        ``send``; rules the exchange contradicts are forgotten."""

        def body() -> Plan[_T]:
            info: SymbolInfo | None = yield from _rules_for(symbol)
            check(info)
            result: _T = yield send
            return result

        return forgetting_rules(symbol, body())


def _rules_for(symbol: str) -> Plan[SymbolInfo | None]:
    info: SymbolInfo | None = yield RulesFor(symbol)
    return info


def order_call(
    endpoint: Endpoint,
    request: Mapping[str, Any],
    to_order: Callable[[Mapping[str, Any], Mapping[str, Any] | None], Order],
    client_order_id: str,
) -> Call[Order]:
    """Placing an order: never retried; a lost answer names ``client_order_id``."""
    return call(
        endpoint,
        request,
        lambda reply: to_order(reply.data, request),
        idempotent=False,
        client_order_id=client_order_id,
    )
