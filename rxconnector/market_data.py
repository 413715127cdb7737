"""The feed surface, declared once: what a strategy may ask any connector for.

:class:`MarketData` is the public market data every connector serves - the live
:class:`~rxconnector.Connector`, :class:`~rxconnector.testing.FakeConnector`,
:class:`~rxconnector.replay.ReplayConnector` and :class:`~rxconnector.bus.RemoteConnector`
- so a strategy typed against it runs unchanged on each::

    def spreads(conn: rxc.MarketData) -> Observable[Decimal]:
        return conn.book_ticker("BTCUSDT").pipe(ops.map(lambda b: b.ask - b.bid))

:class:`AccountFeeds` are the private streams (an API key needed) and
:class:`ConnectorFeeds` everything a local connector has (both, plus the raw
``diff_depth``). mypy checks each connector against these protocols (see the
``_satisfies`` checks next to each class); ``tests/test_market_data.py`` also compares
the signatures at run time. :data:`FEED_METHODS` lists the feed methods in this order,
for code that wraps every feed (``SyncConnector``, ``FakeConnector``).

The bodies raise :func:`_declared` instead of being ``...``: a class that derives its
feeds from a protocol (``SyncConnector`` installs one wrapper per name) subclasses it
explicitly, and mypy would call such a class abstract if the bodies were empty.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, NoReturn, Protocol

from reactivex import Observable

from rxconnector.models import (
    AccountEvent,
    AvgPrice,
    Balance,
    BookTicker,
    ConnectionEvent,
    DepthUpdate,
    Execution,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    Order,
    OrderBook,
    OrderUpdate,
    Position,
    SymbolInfo,
    Ticker,
    Trade,
)

__all__ = [
    "FEED_METHODS",
    "TRADING_METHODS",
    "AccountFeeds",
    "ConnectorFeeds",
    "MarketData",
    "Trading",
    "feed_methods",
]


def _declared(method: str) -> NoReturn:
    raise TypeError(f"{method} is declared by a protocol; the connector class defines it")


class MarketData(Protocol):
    """Public market-data feeds and the health streams that explain them.

    Feeds are cold and lazy: subscribing subscribes at the source, subscribers of one
    feed share it, the last dispose lets it go.
    """

    @property
    def errors(self) -> Observable[Exception]:
        """Non-fatal problems (gaps, resyncs, unparseable data); hot."""
        _declared("errors")

    @property
    def connection_state(self) -> Observable[ConnectionEvent]:
        """Connection events; a new subscriber first gets the latest of each."""
        _declared("connection_state")

    def ticker(self, symbol: str) -> Observable[Ticker]:
        """24 h rolling ticker of ``symbol``."""
        _declared("ticker")

    def mini_ticker(self, symbol: str) -> Observable[MiniTicker]:
        """24 h rolling OHLC and volume of ``symbol``."""
        _declared("mini_ticker")

    def book_ticker(self, symbol: str) -> Observable[BookTicker]:
        """Best bid/ask of ``symbol`` on every change."""
        _declared("book_ticker")

    def trades(self, symbol: str) -> Observable[Trade]:
        """Every trade of ``symbol``, once, in id order."""
        _declared("trades")

    def agg_trades(self, symbol: str) -> Observable[Trade]:
        """Every aggregate trade of ``symbol``, once, in id order."""
        _declared("agg_trades")

    def klines(self, symbol: str, interval: str) -> Observable[Kline]:
        """Candles of ``symbol`` for ``interval``."""
        _declared("klines")

    def depth(self, symbol: str, levels: int = 20) -> Observable[OrderBook]:
        """The exchange's partial book (top ``levels``) as pushed by the venue."""
        _declared("depth")

    def order_book(self, symbol: str, depth: int = 20) -> Observable[OrderBook]:
        """A locally maintained book, emitted only while consistent with the exchange."""
        _declared("order_book")

    def avg_price(self, symbol: str) -> Observable[AvgPrice]:
        """Binance's rolling average price."""
        _declared("avg_price")

    def mark_price(self, symbol: str) -> Observable[MarkPrice]:
        """Futures mark price with funding rate and next funding time."""
        _declared("mark_price")

    def liquidations(self, symbol: str) -> Observable[Liquidation]:
        """Futures forced liquidations of ``symbol``."""
        _declared("liquidations")


class AccountFeeds(Protocol):
    """Your account's private streams (API key and secret needed)."""

    def orders(self) -> Observable[OrderUpdate]:
        """Your order updates (new, fills, cancels), reconciled after reconnects."""
        _declared("orders")

    def balances(self) -> Observable[Balance]:
        """Balance changes, reconciled after reconnects."""
        _declared("balances")

    def executions(self) -> Observable[Execution]:
        """Your fills, one per execution."""
        _declared("executions")

    def positions(self) -> Observable[Position]:
        """Derivatives positions, reconciled after reconnects."""
        _declared("positions")

    def account_events(self) -> Observable[AccountEvent]:
        """Margin calls and leverage / account-setting changes."""
        _declared("account_events")


class ConnectorFeeds(MarketData, AccountFeeds, Protocol):
    """Every feed of a local connector: market data, the raw diff-depth stream the
    local book is built from, and the account streams."""

    def diff_depth(self, symbol: str) -> Observable[DepthUpdate]:
        """The raw diff-depth stream (``DepthUpdate``), as used by ``order_book``."""
        _declared("diff_depth")


class Trading(Protocol):
    """The connector's REST calls - market data on request and trading - declared once.

    :class:`~rxconnector.Connector` (and so :class:`~rxconnector.replay.ReplayConnector`)
    and :class:`~rxconnector.testing.FakeConnector` satisfy it (mypy checks, see the
    ``_trades`` checks next to each class), so a strategy that places orders, typed
    against ``MarketData`` and ``Trading``, runs unchanged on a live, replayed or scripted
    connector. Every call is a cold Observable: subscribing sends the request.
    """

    def ping(self) -> Observable[None]:
        """Round trip to the REST API."""
        _declared("ping")

    def server_time(self) -> Observable[int]:
        """The exchange's clock, ms."""
        _declared("server_time")

    def exchange_info(
        self, symbols: Sequence[str] | None = None
    ) -> Observable[dict[str, SymbolInfo]]:
        """Trading rules per symbol (tick size, step size, min notional...)."""
        _declared("exchange_info")

    def depth_snapshot(self, symbol: str, limit: int = 100) -> Observable[OrderBook]:
        """A REST order-book snapshot."""
        _declared("depth_snapshot")

    def recent_trades(self, symbol: str, limit: int = 500) -> Observable[list[Trade]]:
        """The most recent trades over REST."""
        _declared("recent_trades")

    def kline_history(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        *,
        limit: int | None = None,
    ) -> Observable[Kline]:
        """Candles, oldest first, from ``start`` (ms) or the last ``limit``."""
        _declared("kline_history")

    def ticker_24h(self, symbol: str) -> Observable[Ticker]:
        """The 24 h ticker over REST."""
        _declared("ticker_24h")

    def account(self) -> Observable[Any]:
        """Balances and permissions (signed)."""
        _declared("account")

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
        """Place an order (signed, never retried blindly)."""
        _declared("place_order")

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
        _declared("test_order")

    def cancel_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Cancel one order by exchange id or client order id."""
        _declared("cancel_order")

    def get_order(
        self, symbol: str, order_id: str | int | None = None, client_order_id: str | None = None
    ) -> Observable[Order]:
        """Look an order up (resolves an OrderStatusUnknownError)."""
        _declared("get_order")

    def open_orders(self, symbol: str | None = None) -> Observable[list[Order]]:
        """Open orders, of one symbol or all."""
        _declared("open_orders")

    def open_positions(self, symbol: str | None = None) -> Observable[list[Position]]:
        """Derivatives positions over REST, of one symbol or all."""
        _declared("open_positions")


def feed_methods(protocol: type) -> tuple[str, ...]:
    """The feed methods ``protocol`` itself declares (not inherited ones, not the health
    properties), in declaration order."""
    return tuple(
        name
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    )


#: Every feed method of a local connector, in the order of the contract: market data,
#: the raw diff stream, the account streams.
FEED_METHODS: Final = (
    feed_methods(MarketData) + feed_methods(ConnectorFeeds) + feed_methods(AccountFeeds)
)

#: The REST calls every connector answers, in the order of the contract.
TRADING_METHODS: Final = feed_methods(Trading)
