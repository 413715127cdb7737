"""Which pieces make up each venue: protocol, feed specs, REST API, URLs, book rule.

This is the only module that knows the list of venues; the connector asks it for a
:class:`Venue` and from then on talks to the generic seams in ``exchanges/base.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from rxconnector.config import Config
from rxconnector.exchanges.base import WsProtocol
from rxconnector.streams.orderbook import BookRule

__all__ = ["Venue", "venue_for"]

#: Default endpoints (PROTOCOL.md §A1/A2.1 Binance Spot, §B USD-M, §C1/C3 Bybit).
_URLS: Final[dict[tuple[str, bool], tuple[str, str]]] = {
    ("binance", False): ("https://api.binance.com", "wss://stream.binance.com:9443"),
    ("binance", True): ("https://testnet.binance.vision", "wss://stream.testnet.binance.vision"),
    ("binance_futures", False): ("https://fapi.binance.com", "wss://fstream.binance.com"),
    ("binance_futures", True): (
        "https://testnet.binancefuture.com",
        "wss://fstream.binancefuture.com",
    ),
    ("bybit", False): ("https://api.bybit.com", "wss://stream.bybit.com"),
    ("bybit", True): ("https://api-testnet.bybit.com", "wss://stream-testnet.bybit.com"),
}


@attrs.frozen
class Venue:
    """Everything venue-specific the connector needs, resolved from a :class:`Config`."""

    name: str
    rest_url: str
    ws_url: str
    protocol: WsProtocol
    feeds: Any
    #: ``make_rest(client, config, now_ms)`` builds the venue's REST API object.
    make_rest: Callable[..., Any]
    #: ``make_dialect()`` returns the REST error dialect (how error bodies look).
    make_dialect: Callable[[], Any] | None
    #: The documented order-book procedure (``streams.orderbook.BookRule``).
    book_rule: BookRule
    #: How trade gaps are closed: ``"ids"`` (REST lookup by id range, Binance) or
    #: ``"overlap"`` (recent trades matched against what was delivered, Bybit).
    trade_continuity: str
    supported_feeds: frozenset[str]
    #: Levels the venue's book topic carries for a requested depth (Bybit
    #: ``orderbook.{1|50|200|1000}``); ``None`` for diff streams without a window.
    book_window: Callable[[int], int | None] = attrs.field(default=lambda _depth: None)


def venue_for(config: Config) -> Venue:
    """Assemble the :class:`Venue` for ``config`` (imports venue modules lazily)."""
    default_rest, default_ws = _URLS[(config.exchange, config.testnet)]
    rest_url = config.rest_url or default_rest
    ws_url = config.ws_url or default_ws
    if config.exchange == "binance":
        from rxconnector.exchanges.binance import feeds as bfeeds
        from rxconnector.exchanges.binance.rest import BinanceSpotRest
        from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol

        return Venue(
            name="binance",
            rest_url=rest_url,
            ws_url=ws_url,
            protocol=BinanceSpotWsProtocol(),
            feeds=bfeeds.BinanceSpotFeeds(),
            make_rest=BinanceSpotRest,
            make_dialect=None,
            book_rule=BookRule.BINANCE_SPOT,
            trade_continuity="ids",
            supported_feeds=frozenset(bfeeds.SUPPORTED_FEEDS["binance"]),
        )
    if config.exchange == "binance_futures":
        from rxconnector.exchanges.binance import feeds as bfeeds
        from rxconnector.exchanges.binance.futures_rest import BinanceFuturesRest
        from rxconnector.exchanges.binance.ws_protocol import BinanceFuturesWsProtocol

        return Venue(
            name="binance_futures",
            rest_url=rest_url,
            ws_url=ws_url,
            protocol=BinanceFuturesWsProtocol(),
            feeds=bfeeds.BinanceFuturesFeeds(),
            make_rest=BinanceFuturesRest,
            make_dialect=None,
            book_rule=BookRule.BINANCE_USDM,
            trade_continuity="ids",
            supported_feeds=frozenset(bfeeds.SUPPORTED_FEEDS["binance_futures"]),
        )
    from rxconnector.exchanges.bybit import feeds as yfeeds
    from rxconnector.exchanges.bybit.rest import BybitRest, bybit_dialect
    from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol

    return Venue(
        name="bybit",
        rest_url=rest_url,
        ws_url=ws_url,
        protocol=BybitWsProtocol(config.category),
        feeds=yfeeds.BybitFeeds(config.category),
        make_rest=BybitRest,
        make_dialect=bybit_dialect,
        book_rule=BookRule.BYBIT_DEPTH,
        trade_continuity="overlap",
        supported_feeds=frozenset(yfeeds.SUPPORTED_FEEDS[config.category]),
        book_window=yfeeds.topic_depth,
    )
