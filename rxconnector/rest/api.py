"""The REST calls every venue's client answers, declared once as a typed protocol.

:class:`~rxconnector.rest.planned.PlannedRest`, the one client of every venue (Binance
Spot and USD-M, Bybit: each written as plans), satisfies :class:`RestApi` (mypy checks
it where it is defined), and :attr:`rxconnector.Connector.rest` is typed by it, so
code written against ``conn.rest`` runs on any venue. A venue may take more than the
protocol names (``priority=`` on snapshots and backfills, Spot's
``compute_commission_rates=``, Bybit's ``set_position_mode(symbol=, coin=)``): those
extras are reached on :class:`~rxconnector.rest.planned.PlannedRest`. A call a venue
cannot make raises :class:`~rxconnector.errors.NotSupportedError` at the call (Bybit's
``agg_trades``, USD-M's ``avg_price``).

:class:`DerivativesRestApi` adds what the derivatives clients (USD-M, Bybit) have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from reactivex import Observable

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
from rxconnector.rate.limiter import RequestWeightLimiter

__all__ = ["Amount", "DerivativesRestApi", "RestApi"]

#: A quantity or price as callers give it (a ``Decimal``, or text / an int it parses from).
Amount = Decimal | str | int | None


class RestApi(Protocol):
    """One venue's REST API: cold Observables of models, awaitable, cancelled by
    disposal; arguments are checked at the call (``ValueError``)."""

    @property
    def request_weight_limit(self) -> int | None:
        """The request weight per minute the venue announced (``None``: not weighed)."""

    @property
    def limiter(self) -> RequestWeightLimiter | None:
        """The weight limiter the calls go through (``None``: not limited)."""

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        """The cached trading rules of ``symbol`` (after :meth:`exchange_info`)."""

    # -- general and market data ------------------------------------------------------

    def ping(self) -> Observable[None]: ...

    def server_time(self) -> Observable[int]: ...

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]: ...

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]: ...

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]: ...

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Trade]]: ...

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> Observable[list[Kline]]: ...

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> Observable[Kline]: ...

    def ticker_24h(self, symbol: str) -> Observable[Ticker]: ...

    def avg_price(self, symbol: str) -> Observable[AvgPrice]: ...

    def trades_between(
        self, feed: str, symbol: str, first_id: int, last_id: int
    ) -> Observable[Trade]: ...

    def trade_backfill(self, feed: str, symbol: str) -> Callable[..., Observable[Any]]:
        """What a gapless trade feed calls to close a gap (by ids, or the recent
        trades where a venue cannot look trades up by id)."""

    # -- account and trading ----------------------------------------------------------

    def account(self) -> Observable[tuple[Balance, ...]]: ...

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Amount = None,
        price: Amount = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[Order]:
        """Never retried; a lost answer is ``OrderStatusUnknownError`` carrying the
        client order id, fixed at the call."""

    def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Amount = None,
        price: Amount = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        **extra: Any,
    ) -> Observable[dict[str, Any]]: ...

    def cancel_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]: ...

    def get_order(
        self, symbol: str, order_id: int | str | None = None, client_order_id: str | None = None
    ) -> Observable[Order]: ...

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]: ...


class DerivativesRestApi(RestApi, Protocol):
    """A derivatives venue's REST API: positions on top of :class:`RestApi`."""

    def positions(self, symbol: str | None = None) -> Observable[list[Position]]: ...
