"""Which pieces make up each venue: protocol, feed specs, REST API, URLs, book rule.

This is the only module that knows the list of venues; the connector asks it for a
:class:`Venue` and from then on talks to the generic seams in ``exchanges/base.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from rxconnector.config import Config
from rxconnector.errors import ConfigError
from rxconnector.exchanges.base import FeedCatalog, WsProtocol
from rxconnector.streams.orderbook import BookRule

__all__ = ["Endpoints", "Venue", "resolve_endpoints", "venue_for"]

#: Default endpoints (PROTOCOL.md §A1/A2.1/A5.1 Binance Spot, §B USD-M, §C1/C2/C3 Bybit):
#: ``(rest_url, ws_url, ws_api_url, private_ws_url)``; ``None`` where the venue has no such
#: endpoint the library uses. USD-M market streams live under ``ws_url`` on the routes
#: ``/public`` and ``/market``; its user data on the route ``/private`` of the same host.
_URLS: Final[dict[tuple[str, bool], tuple[str, str, str | None, str | None]]] = {
    ("binance", False): (
        "https://api.binance.com",
        "wss://stream.binance.com:9443",
        "wss://ws-api.binance.com:443/ws-api/v3",
        None,
    ),
    ("binance", True): (
        "https://testnet.binance.vision",
        "wss://stream.testnet.binance.vision",
        "wss://ws-api.testnet.binance.vision/ws-api/v3",
        None,
    ),
    ("binance_futures", False): (
        "https://fapi.binance.com",
        "wss://fstream.binance.com",
        "wss://ws-fapi.binance.com/ws-fapi/v1",
        "wss://fstream.binance.com/private",
    ),
    ("binance_futures", True): (
        "https://testnet.binancefuture.com",
        "wss://fstream.binancefuture.com",
        "wss://testnet.binancefuture.com/ws-fapi/v1",
        "wss://fstream.binancefuture.com/private",
    ),
    ("bybit", False): (
        "https://api.bybit.com",
        "wss://stream.bybit.com",
        None,
        "wss://stream.bybit.com/v5/private",
    ),
    ("bybit", True): (
        "https://api-testnet.bybit.com",
        "wss://stream-testnet.bybit.com",
        None,
        "wss://stream-testnet.bybit.com/v5/private",
    ),
}

#: Where one server that speaks the venue (the simulator, a gateway) serves the
#: WebSocket API and the private stream, relative to its origin.
_DERIVED_PATHS: Final[dict[str, tuple[str | None, str | None]]] = {
    "binance": ("/ws-api/v3", None),
    "binance_futures": ("/ws-fapi/v1", "/private"),
    "bybit": (None, "/v5/private"),
}

#: The private endpoint each venue's account streams use (a signed login goes there).
_ACCOUNT_FIELD: Final[dict[str, str]] = {
    "binance": "ws_api_url",
    "binance_futures": "private_ws_url",
    "bybit": "private_ws_url",
}

_URL_FIELDS: Final = ("rest_url", "ws_url", "ws_api_url", "private_ws_url")
_HTTP_OF: Final = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_WS_OF: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_DEFAULT_PORTS: Final = {"http": 80, "ws": 80, "https": 443, "wss": 443}


@attrs.frozen
class Endpoints:
    """Every URL one venue account talks to, resolved from a :class:`Config`."""

    rest_url: str
    ws_url: str
    ws_api_url: str | None
    private_ws_url: str | None


def _origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    return scheme, (parts.hostname or "").lower(), port


def resolve_endpoints(config: Config) -> Endpoints:
    """The URLs ``config`` reaches; a signed request never leaves the servers it names.

    No URL set: the venue's defaults (production, or testnet with ``testnet=True``).
    Any URL set: every endpoint comes from the overrides. An unset one is derived from
    the server they name when they all name one (same host and port - how the simulator
    and single-origin gateways serve a venue): REST at ``http(s)://host:port``, streams
    at ``ws(s)://host:port``, the WebSocket API and private stream at their paths on it.
    When the overrides name different servers, an endpoint the connector needs cannot be
    derived: :class:`ConfigError` names the field to set instead of falling back to a
    production host that would receive the signed login.
    """
    defaults = _URLS[(config.exchange, config.testnet)]
    given = {f: getattr(config, f) for f in _URL_FIELDS if getattr(config, f) is not None}
    if not given:
        return Endpoints(*defaults)
    origins = {_origin(url)[1:] for url in given.values()}
    one_server = len(origins) == 1
    # The override that decides the scheme family (TLS or not) of derived URLs.
    first_field = next(f for f in _URL_FIELDS if f in given)
    scheme, host, port = _origin(given[first_field])
    netloc = host if ":" not in host else f"[{host}]"
    netloc = f"{netloc}:{port}" if port else netloc
    ws_base = f"{_WS_OF.get(scheme, 'wss')}://{netloc}"
    api_path, private_path = _DERIVED_PATHS[config.exchange]
    derived: dict[str, str | None] = {
        "rest_url": f"{_HTTP_OF.get(scheme, 'https')}://{netloc}",
        "ws_url": ws_base,
        "ws_api_url": ws_base + api_path if api_path else None,
        "private_ws_url": ws_base + private_path if private_path else None,
    }
    account_field = _ACCOUNT_FIELD[config.exchange]
    needed = {"rest_url", "ws_url"}
    if config.has_credentials:
        needed.add(account_field)
    resolved: dict[str, str | None] = {}
    for field in _URL_FIELDS:
        if field in given:
            resolved[field] = given[field]
        elif one_server and derived[field] is not None:
            resolved[field] = derived[field]
        elif field in needed:
            servers = ", ".join(f"{f}={given[f]}" for f in given)
            raise ConfigError(
                field,
                f"must be set: the other URLs are overridden ({servers}) and name "
                f"different servers, so the {config.exchange} {field} cannot be derived "
                f"from them, and its default ({defaults[_URL_FIELDS.index(field)]}) "
                "is not one you chose; set it (ExchangeSimulator.connector_config does "
                "this for the simulator)",
            )
        else:
            resolved[field] = None
    rest_url, ws_url = resolved["rest_url"], resolved["ws_url"]
    assert rest_url is not None and ws_url is not None
    return Endpoints(rest_url, ws_url, resolved["ws_api_url"], resolved["private_ws_url"])


@attrs.frozen
class Venue:
    """Everything venue-specific the connector needs, resolved from a :class:`Config`."""

    name: str
    rest_url: str
    ws_url: str
    protocol: WsProtocol
    feeds: FeedCatalog
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
    #: The WebSocket API (Binance Spot's user data stream); ``None`` when not used.
    ws_api_url: str | None = None
    #: The private (account) stream endpoint (Bybit, USD-M); ``None`` when not used.
    private_ws_url: str | None = None
    #: The REST route of the server time (the clock sync, and ``start``'s reachability
    #: check, ask it first).
    time_path: str = ""


def venue_for(config: Config) -> Venue:
    """Assemble the :class:`Venue` for ``config`` (imports venue modules lazily)."""
    urls = resolve_endpoints(config)
    rest_url, ws_url = urls.rest_url, urls.ws_url
    if config.exchange == "binance":
        from rxconnector.exchanges.binance import endpoints as bep
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
            ws_api_url=urls.ws_api_url,
            private_ws_url=urls.private_ws_url,
            time_path=bep.TIME.path,
        )
    if config.exchange == "binance_futures":
        from rxconnector.exchanges.binance import feeds as bfeeds
        from rxconnector.exchanges.binance.futures_rest import TIME as FUTURES_TIME
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
            ws_api_url=urls.ws_api_url,
            private_ws_url=urls.private_ws_url,
            time_path=FUTURES_TIME.path,
        )
    from rxconnector.exchanges.bybit import endpoints as yep
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
        ws_api_url=urls.ws_api_url,
        private_ws_url=urls.private_ws_url,
        time_path=yep.TIME.path,
    )
