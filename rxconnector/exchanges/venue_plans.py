"""Every REST call a venue may answer, as plan functions: the one shape the generic
REST client (:class:`~rxconnector.rest.planned.PlannedRest`) drives for any venue.

A venue subclasses :class:`VenuePlans` in ``exchanges/<venue>/`` and overrides what it
offers; each method checks its arguments at once (``ValueError``, or ``ConfigError``
for a signed call without credentials) and returns a
:data:`~rxconnector.exchanges.rest_plan.PlanFactory`. What a venue does not override
raises :class:`~rxconnector.errors.NotSupportedError` at the call, naming the venue, so
the client has one surface and a missing call is never a silent ``AttributeError``.

``urgency`` (``"user"``, ``"recovery"``, ``"backfill"``) is what the caller asked for
(see :class:`~rxconnector.exchanges.rest_plan.Call`); a plan passes it to its calls.
Pure: no I/O, no reactivex; state a venue keeps between calls (rules only an
exchange-info answer carries, how backfills have been going) lives in the subclass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rxconnector.errors import NotSupportedError
from rxconnector.exchanges._args import Amount
from rxconnector.exchanges.dialect import RestLimits
from rxconnector.exchanges.rest_plan import PlanFactory
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

__all__ = ["VenuePlans"]

_NO_LIMITS = RestLimits()


class VenuePlans:
    """The plan functions of one venue; every one raises ``NotSupportedError`` here."""

    #: The venue's name, as errors report it (``Config.exchange``).
    venue: str = "?"

    @property
    def limits(self) -> RestLimits:
        """The venue's REST limits beyond request weight (an IP ban status, per-endpoint
        budgets, an IP request window), which the client applies around every request
        (:class:`~rxconnector.rest.gates.RequestGates`); none here."""
        return _NO_LIMITS

    def _unsupported(self, feature: str, instead: str = "") -> NotSupportedError:
        return NotSupportedError(self.venue, feature, instead)

    def offers(self, call: str) -> bool:
        """Whether this venue answers ``call`` (its class overrides the refusal here),
        so a caller can choose another way before calling instead of catching."""
        own = getattr(type(self), call, None)
        return callable(own) and own is not getattr(VenuePlans, call, None)

    # -- general and market data -----------------------------------------------------

    def ping(self) -> PlanFactory[None]:
        raise self._unsupported("ping")

    def server_time(self) -> PlanFactory[int]:
        raise self._unsupported("server_time")

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> PlanFactory[dict[str, SymbolInfo]]:
        """Trading rules by symbol; the plan yields ``Remember`` with what it got (the
        engine's rules cache fetches a symbol's rules through this plan)."""
        raise self._unsupported("exchange_info")

    def depth_snapshot(
        self, symbol: str, limit: int = 100, urgency: str = "user"
    ) -> PlanFactory[OrderBook]:
        raise self._unsupported("depth_snapshot")

    def recent_trades(self, symbol: str, limit: int = 500) -> PlanFactory[list[Trade]]:
        raise self._unsupported("recent_trades")

    def agg_trades(
        self,
        symbol: str,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Trade]]:
        raise self._unsupported("agg_trades")

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> PlanFactory[list[Kline]]:
        raise self._unsupported("klines")

    def klines_history(
        self, symbol: str, interval: str, start: int, end: int | None = None
    ) -> PlanFactory[None]:
        """A walk: ``Emit`` of each page of candles."""
        raise self._unsupported("klines_history")

    def ticker_24h(self, symbol: str) -> PlanFactory[Ticker]:
        raise self._unsupported("ticker_24h")

    def avg_price(self, symbol: str) -> PlanFactory[AvgPrice]:
        raise self._unsupported("avg_price")

    def mark_price_now(self, symbol: str) -> PlanFactory[Any]:
        raise self._unsupported("mark_price_now")

    # -- trade gaps --------------------------------------------------------------------

    def trades_between(
        self, feed: str, symbol: str, first_id: int, last_id: int, urgency: str = "user"
    ) -> PlanFactory[None]:
        """A walk: ``Emit`` of each page of trades ``first_id``..``last_id``."""
        raise self._unsupported("trades_between")

    def trade_backfill(self, feed: str, symbol: str) -> Callable[..., PlanFactory[Any]]:
        """Checked now; returns what a gapless trade feed calls for each gap (its
        arguments -> the plan of that gap's trades)."""
        raise self._unsupported("trade_backfill")

    def trades_after(
        self,
        symbol: str,
        from_id: int,
        since: int,
        urgency: str = "user",
        continuation: float | None = None,
    ) -> PlanFactory[list[Trade]]:
        raise self._unsupported("trades_after", "trades_between")

    # -- account and trading -----------------------------------------------------------

    def account(self, omit_zero_balances: bool = False) -> PlanFactory[tuple[Balance, ...]]:
        raise self._unsupported("account")

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
        raise self._unsupported("place_order")

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
        raise self._unsupported("test_order")

    def cancel_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        raise self._unsupported("cancel_order")

    def get_order(
        self, symbol: str, order_id: int | str | None, client_order_id: str | None
    ) -> PlanFactory[Order]:
        raise self._unsupported("get_order")

    def open_orders(self, symbol: str | None = None) -> PlanFactory[list[Order]]:
        raise self._unsupported("open_orders")

    # -- derivatives -------------------------------------------------------------------

    def positions(self, symbol: str | None = None) -> PlanFactory[list[Position]]:
        raise self._unsupported("positions")

    def set_leverage(self, symbol: str, leverage: int) -> PlanFactory[dict[str, Any]]:
        raise self._unsupported("set_leverage")

    def set_margin_type(self, symbol: str, margin_type: str) -> PlanFactory[dict[str, Any]]:
        raise self._unsupported("set_margin_type")

    def set_position_mode(self, hedge: bool, **options: Any) -> PlanFactory[Any]:
        raise self._unsupported("set_position_mode")

    def create_listen_key(self) -> PlanFactory[str]:
        raise self._unsupported("create_listen_key")

    def keepalive_listen_key(self, listen_key: str | None = None) -> PlanFactory[None]:
        raise self._unsupported("keepalive_listen_key")

    def close_listen_key(self) -> PlanFactory[None]:
        raise self._unsupported("close_listen_key")
