"""Bybit v5 account and trading REST calls as plans (all signed), on top of the market
data plans of :mod:`rxconnector.exchanges.bybit.rest_plans`.

The flows only Bybit has are spelled out here as plain generator code:

* an order is checked against the symbol's cached trading rules (:class:`RulesFor`)
  before it is sent, and is never retried (a lost answer is
  :class:`~rxconnector.errors.OrderStatusUnknownError` carrying its ``orderLinkId``);
* a cancel is only acknowledged by Bybit, so the order is looked up right after; when
  that lookup fails, the error says the cancel was accepted;
* an order is looked up in ``/v5/order/realtime`` and, when it is no longer there, in
  ``/v5/order/history``;
* open orders and positions walk every cursor page, and on linear without a symbol,
  the USDT- then the USDC-settled scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from rxconnector.config import Config
from rxconnector.errors import ConfigError, ExchangeError, NotSupportedError
from rxconnector.exchanges._args import OrderArgs, default_client_order_ids
from rxconnector.exchanges.bybit import endpoints as ep
from rxconnector.exchanges.bybit import rest_parsers as rp
from rxconnector.exchanges.bybit import rest_requests as rq
from rxconnector.exchanges.bybit.rest_plans import BybitMarketPlans
from rxconnector.exchanges.filters import check_order
from rxconnector.exchanges.rest_plan import Call, Plan, PlanFactory, RulesFor, single
from rxconnector.exchanges.rest_spec import Endpoint, RestReply
from rxconnector.exchanges.symbols import normalize_symbol
from rxconnector.log import get_logger
from rxconnector.models import Balance, Order, Position, SymbolInfo

__all__ = ["BybitPlans"]

#: An order field's value as callers give it.
Amount = Decimal | str | int | None


class BybitPlans(BybitMarketPlans):
    """Every Bybit v5 REST call (PROTOCOL.md §C3) as a plan, for one ``category``.

    ``client_order_id_factory`` makes ``orderLinkId`` values when the caller gives none
    (default: :class:`rxconnector.nonce.NonceGenerator`). Signed calls need the
    Config's ``api_key`` and ``api_secret`` (``ConfigError`` at the call otherwise).
    """

    def __init__(
        self,
        config: Config,
        *,
        client_order_id_factory: Callable[[], str] | None = None,
        ip_requests_per_window: int = ep.IP_REQUEST_LIMIT,
    ) -> None:
        super().__init__(config, ip_requests_per_window=ip_requests_per_window)
        self._new_link_id = client_order_id_factory or default_client_order_ids()
        self._log = get_logger(component="rest", exchange=ep.VENUE, category=self._category)

    def account(self, omit_zero_balances: bool = False) -> PlanFactory[tuple[Balance, ...]]:
        """``GET /v5/account/wallet-balance?accountType=UNIFIED`` (signed): one Balance per
        coin. ``locked`` is what open spot orders hold; ``free`` is what the account owns
        (wallet net of ``borrowAmount``) minus ``locked``; ``borrowed`` / ``interest`` /
        ``equity`` as Bybit reports them (:mod:`~rxconnector.exchanges.bybit.account_rows`).
        (On a unified account, margin for derivatives is shared across coins and is not
        reflected per coin.) ``omit_zero_balances``: leave out coins with a zero total."""
        self._require_credentials()
        parse = rp.InResult(ep.WALLET_BALANCE.path, rp.balances)
        call = Call(ep.WALLET_BALANCE, {"accountType": "UNIFIED"}, parse)
        return partial(_balances, call, omit_zero_balances)

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
        """``POST /v5/order/create`` (signed, JSON body): place a Limit or Market order.

        Results in an Order built from what was sent plus Bybit's ack (``orderId``,
        ``orderLinkId``): status ``"ACK"``; follow the order on the ``orders()`` stream or
        with :meth:`get_order`. ``extra`` passes any other Bybit parameter by its Bybit
        name (``reduceOnly``, ``positionIdx``, ``marketUnit``, ``takeProfit`` ...). On spot,
        a Market **Buy** quantity is in the quote coin unless ``marketUnit="baseCoin"``.

        The ``orderLinkId`` is fixed now (generated when not given), so every run of the
        plan sends the same one. Never retried; a lost answer (timeout, 5xx, retCode
        10016) errors with :class:`~rxconnector.errors.OrderStatusUnknownError` carrying
        that id: look it up with :meth:`get_order` before trying again.
        """
        order = rq.order_body(
            OrderArgs(symbol, side, type, quantity, price, time_in_force, client_order_id, extra),
            self._category,
            self._new_link_id,
        )
        self._require_credentials()
        return partial(self._place, order, side)

    def _place(self, order: rq.BybitOrder, side: str) -> Plan[Order]:
        info: SymbolInfo | None = yield RulesFor(order.symbol)
        # the instruments-info filters (priceFilter tickSize/min/max, lotSizeFilter
        # step/min/max, minimum order value), checked before anything is sent
        if info is not None:
            check_order(
                info, side, order.kind, order.checked_quantity, order.price, exchange=ep.VENUE
            )
        acked_price = order.price if order.kind == "Limit" else None
        placed: Order = yield Call(
            ep.ORDER_CREATE,
            order.body,
            rp.InResult(ep.ORDER_CREATE.path, _Acked(order.body, order.quantity, acked_price)),
            idempotent=False,
            client_order_id=order.link_id,
        )
        return placed

    def cancel_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        """``POST /v5/order/cancel`` (signed), then the order as Bybit reports it.

        Bybit only acknowledges a cancel (``{orderId, orderLinkId}``) and applies it
        asynchronously, so the order is looked up right after the ack: the Order is
        usually CANCELED; if it still looks open it is reported as
        ``"PENDING_CANCEL"``; a fill that raced the cancel shows as FILLED. Cancelling is
        safe to repeat, so the request may be retried; a retry after a lost success gets
        Bybit's "order not exists" (``ExchangeError``): confirm with :meth:`get_order`.
        If the lookup itself fails, the cancel *was* accepted: the error says so.
        """
        ref = rq.order_ref(symbol, order_id, client_order_id)
        self._require_credentials()
        return partial(self._cancel, ref)

    def _cancel(self, ref: dict[str, Any]) -> Plan[Order]:
        body = {"category": self._category, **ref}
        acked_id = yield Call(
            ep.ORDER_CANCEL, body, rp.InResult(ep.ORDER_CANCEL.path, _AckedId(ref))
        )
        order_ref = {"orderId": acked_id} if acked_id else {"orderLinkId": ref.get("orderLinkId")}
        try:
            order = yield from self._get_order({"symbol": ref["symbol"], **order_ref})
        except Exception as exc:
            self._log.warning(
                "rest.cancel_lookup_failed", symbol=ref["symbol"], error=type(exc).__name__
            )
            raise rq.cancel_lookup_error(exc)  # noqa: B904 (its cause is set)
        return rq.after_cancel(order)

    def get_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        """``GET /v5/order/realtime`` (signed) by ``orderId`` or ``orderLinkId``; when the
        order is no longer there (older than Bybit's 500 recent closed orders),
        ``GET /v5/order/history``. An order found in neither is an ``ExchangeError``."""
        ref = rq.order_ref(symbol, order_id, client_order_id)
        self._require_credentials()
        return partial(self._get_order, ref)

    def _get_order(self, ref: Mapping[str, Any]) -> Plan[Order]:
        params = {"category": self._category, **ref}
        reply, found = yield Call(
            ep.ORDER_REALTIME, params, rp.InResult(ep.ORDER_REALTIME.path, _first_order)
        )
        if found is None:
            reply, found = yield Call(
                ep.ORDER_HISTORY, params, rp.InResult(ep.ORDER_HISTORY.path, _first_order)
            )
        if found is None:
            raise ExchangeError(
                f"order {dict(ref)} not found", exchange=ep.VENUE, status=reply.status
            )
        order: Order = found
        return order

    def open_orders(self, symbol: str | None = None) -> PlanFactory[list[Order]]:
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
        return partial(_listing, ep.ORDER_REALTIME, base, scopes, _order_page)

    def positions(self, symbol: str | None = None) -> PlanFactory[list[Position]]:
        """``GET /v5/position/list`` (signed): open positions of one symbol or all, every
        page (200 a page); flat entries are left out. Linear without a symbol asks
        USDT- then USDC-settled positions. Spot has no positions (NotSupportedError)."""
        self._require_credentials()
        if self._category == "spot":
            raise NotSupportedError(ep.VENUE, "positions on category=spot")
        base: dict[str, Any] = {"category": self._category, "limit": ep.POSITIONS_PAGE_LIMIT}
        scopes = rq.scopes(symbol, self._category)
        return partial(_listing, ep.POSITION_LIST, base, scopes, rp.position_page)

    def set_position_mode(self, hedge: bool, **options: Any) -> PlanFactory[None]:
        """``POST /v5/position/switch-mode`` (signed, linear/inverse): hedge mode (``True``:
        a buy side ``positionIdx=1`` and a sell side ``positionIdx=2`` per symbol) or
        one-way (``False``, ``positionIdx=0``), for ``symbol=`` or every symbol settled
        in ``coin=`` (default ``"USDT"``), the two options Bybit takes. Orders then name
        their side with ``positionIdx`` (an ``extra``)."""
        unknown = sorted(set(options) - {"symbol", "coin"})
        if unknown:
            raise TypeError(f"set_position_mode() got unexpected options: {', '.join(unknown)}")
        self._require_credentials()
        if self._category == "spot":
            raise NotSupportedError(ep.VENUE, "position modes on category=spot")
        body: dict[str, Any] = {"category": self._category, "mode": 3 if hedge else 0}
        symbol: str | None = options.get("symbol")
        if symbol is not None:
            body["symbol"] = normalize_symbol(symbol, ep.VENUE)
        else:
            body["coin"] = options.get("coin", "USDT")
        parse = rp.InResult(ep.POSITION_SWITCH_MODE.path, _nothing)
        return partial(single, Call(ep.POSITION_SWITCH_MODE, body, parse))

    def _require_credentials(self) -> None:
        if not self._config.has_credentials:
            raise ConfigError("api_key", "and api_secret are required for signed requests", "")


def _listing(
    endpoint: Endpoint,
    base: Mapping[str, Any],
    scopes: list[dict[str, Any]],
    page: Callable[[RestReply, Any, str], tuple[list[Any], str | None]],
) -> Plan[list[Any]]:
    """Every page of every scope, in order, collected into one list."""
    items: list[Any] = []
    for scope in scopes:
        cursor: str | None = ""
        while cursor is not None:
            params = {**base, **scope, "cursor": cursor or None}
            parse = rp.InResult(endpoint.path, _Page(page, cursor))
            found, cursor = yield Call(endpoint, params, parse)
            items.extend(found)
    return items


def _balances(call: Call[tuple[Balance, ...]], omit_zero: bool) -> Plan[tuple[Balance, ...]]:
    balances = yield call
    return tuple(b for b in balances if b.total != 0) if omit_zero else balances


class _Acked:
    """An order-create ack → the Order it stands for (what was sent plus Bybit's ids)."""

    def __init__(self, sent: Mapping[str, Any], quantity: Decimal, price: Decimal | None) -> None:
        self._sent = sent
        self._quantity = quantity
        self._price = price

    def __call__(self, reply: RestReply, result: Any) -> Order:
        return rp.acked_order(reply, result, self._sent, self._quantity, self._price)


class _AckedId:
    """A cancel ack → the cancelled order's ``orderId`` (the one asked for when the ack
    has none)."""

    def __init__(self, ref: Mapping[str, Any]) -> None:
        self._ref = ref

    def __call__(self, _reply: RestReply, result: Any) -> Any:
        return result.get("orderId") or self._ref.get("orderId")


class _Page:
    """A cursor page parser bound to the cursor it was asked with."""

    def __init__(
        self, page: Callable[[RestReply, Any, str], tuple[list[Any], str | None]], cursor: str
    ) -> None:
        self._page = page
        self._cursor = cursor

    def __call__(self, reply: RestReply, result: Any) -> tuple[list[Any], str | None]:
        return self._page(reply, result, self._cursor)


def _order_page(_reply: RestReply, result: Any, cursor: str) -> tuple[list[Order], str | None]:
    return [rp.order(row) for row in result["list"]], rp.next_cursor(result, cursor)


def _first_order(reply: RestReply, result: Any) -> tuple[RestReply, Order | None]:
    rows = result["list"]
    return reply, (rp.order(rows[0]) if rows else None)


def _nothing(_reply: RestReply, _result: Any) -> None:
    return None
