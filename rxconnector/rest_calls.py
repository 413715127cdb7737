"""The connector's REST calls: each a cold Observable deferred to the venue REST object.

:class:`RestCalls` is the part of :class:`~rxconnector.connector.Connector` that
forwards ``ping()``, ``exchange_info()``, ``kline_history()``, ``place_order()`` and
the other REST calls to the venue REST object of a started connector (limiter,
breaker, retry and signing live there). Deferring means a call on a connector that is
not started fails at subscription, as ``on_error``, like every other failure. Its two
hooks, :meth:`RestCalls._require_rest` and :meth:`RestCalls._announce_placed`, are
implemented by the connector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from rxconnector.errors import NotSupportedError
from rxconnector.models import Kline, Order, OrderBook, Position, SymbolInfo, Ticker, Trade

if TYPE_CHECKING:
    from rxconnector.venues import Venue

__all__ = ["DERIVATIVES", "KLINE_PAGE", "RestCalls"]

#: Candles asked for per page when walking back for the last N (every venue allows 1000).
KLINE_PAGE = 1000
#: Where derivatives calls and feeds are: what a user of another venue should use.
DERIVATIVES = "a derivatives venue: Config.binance_futures() or Config.bybit('linear')"

_T = TypeVar("_T")


class RestCalls:
    """REST calls of a connector, forwarded to its venue REST object."""

    venue: Venue

    def _require_rest(self) -> Any:
        """The started connector's venue REST object; raises if it is not started."""
        raise NotImplementedError

    def _announce_placed(self, order: Order) -> None:
        """An order this connector placed (the account streams reconcile with it)."""

    def _call(self, make: Callable[[Any], Observable[_T]]) -> Observable[_T]:
        """Defer to the venue REST object so errors of a not-started connector are
        delivered as ``on_error`` at subscription, like every other failure."""
        return reactivex.defer(lambda _: make(self._require_rest()))

    def _call_once(self, make: Callable[[Any], Observable[_T]]) -> Observable[_T]:
        """:meth:`_call`, except that the venue's Observable is made once, by the first
        subscription that finds the connector started, and every later subscription
        subscribes to that same one. For an order: its client order id is fixed when the
        venue's ``place_order`` is called, so one Observable must not call it again (a
        retried or re-awaited order would go out under a new id: a second order)."""
        made: list[Observable[_T]] = []

        def once(_: Any) -> Observable[_T]:
            if not made:
                made.append(make(self._require_rest()))
            return made[0]

        return reactivex.defer(once)

    def ping(self) -> Observable[None]:
        """Round trip to the REST API."""
        return self._call(lambda rest: rest.ping())

    def server_time(self) -> Observable[int]:
        """The exchange's clock, ms."""
        return self._call(lambda rest: rest.server_time())

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules per symbol (tick size, step size, min notional...)."""
        return self._call(lambda rest: rest.exchange_info(symbols))

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]:
        """A REST order-book snapshot (weight grows with ``limit``)."""
        return self._call(lambda rest: rest.depth_snapshot(symbol, limit))

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """The most recent trades over REST."""
        return self._call(lambda rest: rest.recent_trades(symbol, limit))

    def kline_history(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        *,
        limit: int | None = None,
    ) -> Observable[Kline]:
        """Candles, oldest first, walked page by page through the limiter.

        ``kline_history(sym, "1m", start)``: every candle opening from ``start`` (ms)
        until now (``end`` ms, inclusive, when given). ``kline_history(sym, "1m",
        limit=N)``: the last ``N`` candles up to now (or up to ``end``), the running one
        included (``closed=False``). ``start`` and ``limit`` together: the first ``N``
        from ``start``.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit must be a positive number of candles, got {limit!r}")
        if start is None:
            if limit is None:
                raise ValueError(
                    "kline_history needs start (ms) or limit (the last N candles), e.g. "
                    "kline_history(symbol, interval, limit=100)"
                )
            count = limit
            return self._call(lambda rest: _last_klines(rest, symbol, interval, end, count))
        history: Observable[Kline] = self._call(
            lambda rest: rest.klines_history(symbol, interval, start, end)
        )
        return history if limit is None else history.pipe(ops.take(limit))

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """The 24 h ticker over REST."""
        return self._call(lambda rest: rest.ticker_24h(symbol))

    def account(self) -> Observable[Any]:
        """Balances and permissions (signed)."""
        return self._call(lambda rest: rest.account())

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[Order]:
        """Place an order (signed, never retried blindly; see OrderStatusUnknownError).

        The placed order is announced to the account streams, so that if the private
        stream is down and the order ends before it is back, reconciliation still looks
        it up and :meth:`orders` emits its outcome. Every subscription sends the same
        client order id (generated once when not given), so resubscribing cannot place
        a second order.
        """
        return self._call_once(
            lambda rest: rest.place_order(
                symbol,
                side,
                type,
                quantity=quantity,
                price=price,
                time_in_force=time_in_force,
                client_order_id=client_order_id,
                **extra,
            )
        ).pipe(ops.do_action(on_next=self._announce_placed))

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        **extra: Any,
    ) -> Observable[Any]:
        """Validate an order at the exchange without placing it."""
        return self._call(
            lambda rest: rest.test_order(
                symbol,
                side,
                type,
                quantity=quantity,
                price=price,
                time_in_force=time_in_force,
                **extra,
            )
        )

    def cancel_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Cancel one order by exchange id or client order id."""
        return self._call(
            lambda rest: rest.cancel_order(
                symbol, order_id=order_id, client_order_id=client_order_id
            )
        )

    def get_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Look an order up (resolves an OrderStatusUnknownError)."""
        return self._call(
            lambda rest: rest.get_order(symbol, order_id=order_id, client_order_id=client_order_id)
        )

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """Open orders, of one symbol or all."""
        return self._call(lambda rest: rest.open_orders(symbol))

    def open_positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """Derivatives positions over REST (Binance USD-M ``positionRisk``, Bybit
        ``position/list``), of one symbol or all; flat ones are left out. Binance Spot
        has no positions: :class:`~rxconnector.NotSupportedError`."""

        def make(rest: Any) -> Observable[list[Position]]:
            positions = getattr(rest, "positions", None)
            if positions is None:  # not an AttributeError from inside the library
                raise NotSupportedError(self.venue.name, "positions", DERIVATIVES)
            try:
                listed: Observable[list[Position]] = positions(symbol)
            except NotSupportedError as error:  # the generic client has every call
                if error.instead:
                    raise
                raise NotSupportedError(self.venue.name, "positions", DERIVATIVES) from None
            return listed

        return self._call(make)


def _last_klines(
    rest: Any, symbol: str, interval: str, end: int | None, count: int
) -> Observable[Kline]:
    """The last ``count`` candles opening at or before ``end`` (None: now), oldest first.

    Pages of at most :data:`KLINE_PAGE` walk backwards from ``end`` (each page's
    ``end`` is just before the oldest candle seen so far) until ``count`` candles are
    in hand or the exchange has no older ones; then they are emitted in time order.
    """

    def fetch(before: int | None, wanted: int, later: list[Kline]) -> Observable[list[Kline]]:
        size = min(KLINE_PAGE, wanted)

        def step(page: list[Kline]) -> Observable[list[Kline]]:
            if before is not None:
                page = [k for k in page if k.open_time <= before]
            if later:
                page = [k for k in page if k.open_time < later[0].open_time]
            candles = page + later
            if not page or len(page) >= wanted or len(page) < size:
                return reactivex.just(candles)
            return fetch(page[0].open_time - 1, wanted - len(page), candles)

        page: Observable[list[Kline]] = rest.klines(symbol, interval, end=before, limit=size)
        return page.pipe(ops.flat_map(step))

    def emit(candles: list[Kline]) -> Observable[Kline]:
        return reactivex.from_iterable(candles[-count:])

    return fetch(end, count, []).pipe(ops.flat_map(emit))
