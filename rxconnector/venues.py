"""THE venue registry: every fact about a venue that the rest of the code needs.

:data:`REGISTRY` holds one :class:`VenueSpec` per venue (``Config.exchange``): its
default and derived endpoints, CLI names, Config factory, and how to assemble the
:class:`Venue` - the protocol, feed catalog, REST API, book rule and private-stream
protocol - for one :class:`~rxconnector.config.Config`. The CLI's venue names and the
connector read it; nothing outside ``exchanges/`` and this module branches on a venue's
name. The one venue fact below it is the vocabulary a Config is written in (names and
categories, :data:`rxconnector.config.VENUE_CATEGORIES`): Config validates against it
and sits under this module in the layering, so it cannot read the registry.
Adding a venue: see the checklist in :mod:`rxconnector.exchanges`.

A venue's modules are imported when its :class:`Venue` is assembled, not when this
module is: the CLI reads the registry for its venue names without loading every venue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import attrs

from rxconnector.config import VENUE_CATEGORIES, Config
from rxconnector.errors import ConfigError

if TYPE_CHECKING:
    from reactivex import abc

    from rxconnector.exchanges.account_protocol import PrivateProtocol
    from rxconnector.exchanges.base import FeedCatalog, WsProtocol
    from rxconnector.exchanges.book_sync import BookSyncRule
    from rxconnector.exchanges.rest_plan import PlanSigner
    from rxconnector.exchanges.venue_plans import VenuePlans

__all__ = [
    "REGISTRY",
    "Endpoints",
    "Venue",
    "VenueSpec",
    "cli_venues",
    "key_name",
    "resolve_endpoints",
    "trade_ids_consecutive",
    "venue_for",
    "venue_spec",
]

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


#: ``make_account(rest, now, scheduler)``: the venue's private-stream protocol (it holds
#: the credentials) and the URL its sockets open (or show in logs, for a listen key).
AccountFactory = Callable[
    [Any, Callable[[], int], "abc.SchedulerBase"], "tuple[PrivateProtocol, str]"
]


@attrs.frozen
class Venue:
    """Everything venue-specific the connector needs, resolved from a :class:`Config`."""

    name: str
    rest_url: str
    ws_url: str
    protocol: WsProtocol
    feeds: FeedCatalog
    #: ``make_dialect()`` returns the REST error dialect (how error bodies look).
    make_dialect: Callable[[], Any]
    #: The documented order-book procedure (``exchanges.book_rules.BookRule``, or any
    #: ``exchanges.book_sync.BookSyncRule``).
    book_rule: BookSyncRule
    #: How trade gaps are closed: ``"ids"`` (REST lookup by id range, Binance) or
    #: ``"overlap"`` (recent trades matched against what was delivered, Bybit).
    trade_continuity: str
    supported_feeds: frozenset[str]
    #: The private-stream protocol of an account with keys (see :data:`AccountFactory`).
    make_account: AccountFactory
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
    #: Whether ``exchangeInfo`` carries the account's current request-weight limits
    #: (Binance); the connector then asks for them at start.
    rate_limits_in_exchange_info: bool = False
    #: Whether positions can be listed over REST (derivatives), to reconcile the
    #: private stream's positions after a reconnect.
    positions_over_rest: bool = False
    #: The documented request-weight budget per minute (the venue's endpoints module
    #: cites it): the limiter's default until ``exchangeInfo`` or the used-weight
    #: headers say otherwise; ``Config.rate_limit.max_weight_per_minute`` caps it.
    weight_per_minute: int = attrs.field(kw_only=True)
    #: ``make_plans(config)``: the venue's REST plan functions
    #: (:class:`~rxconnector.exchanges.venue_plans.VenuePlans`, pure), which the one
    #: generic client (:class:`~rxconnector.rest.planned.PlannedRest`) runs.
    make_plans: Callable[[Config], VenuePlans] = attrs.field(kw_only=True)
    #: ``make_signer(config)``: how the venue signs REST requests
    #: (:class:`~rxconnector.exchanges.rest_plan.PlanSigner`, pure); ``None``: the
    #: venue has no signed calls.
    make_signer: Callable[[Config], PlanSigner] | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class VenueSpec:
    """One venue's entry in :data:`REGISTRY`: what is known before any Config exists."""

    #: ``Config.exchange``.
    name: str
    #: Default endpoints ``(rest_url, ws_url, ws_api_url, private_ws_url)`` by
    #: ``testnet``; ``None`` where the venue has no such endpoint the library uses.
    default_urls: Mapping[bool, Endpoints]
    #: Where one server that speaks the venue (the simulator, a gateway) serves the
    #: WebSocket API and the private stream, relative to its origin.
    derived_paths: tuple[str | None, str | None]
    #: The Config URL field of the private endpoint (a signed login goes there).
    account_url_field: str
    #: CLI venue name -> the category it means (``bybit-linear`` -> ``linear``).
    cli_names: Mapping[str, str]
    #: The public Config factory (``Config.binance``...): ``make_config(**overrides)``,
    #: with the category first for a venue of several categories.
    make_config: Callable[..., Config]
    #: Assembles the :class:`Venue` of a Config from its resolved endpoints.
    assemble: Callable[[Config, Endpoints], Venue]

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories a Config of this venue may name, the default first (the
        vocabulary is Config's: :data:`rxconnector.config.VENUE_CATEGORIES`)."""
        for name, categories in VENUE_CATEGORIES.items():
            if name == self.name:
                return categories
        raise ConfigError("exchange", "has no categories in VENUE_CATEGORIES", self.name)

    def config(self, category: str | None = None, **overrides: Any) -> Config:
        """A Config of this venue: ``category`` (default: the venue's first) and
        ``overrides``; a venue of one category ignores ``category``."""
        if len(self.categories) > 1:
            return self.make_config(category or self.categories[0], **overrides)
        return self.make_config(**overrides)


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
    spec = venue_spec(config.exchange)
    defaults = spec.default_urls[config.testnet]
    given = {f: getattr(config, f) for f in _URL_FIELDS if getattr(config, f) is not None}
    if not given:
        return defaults
    origins = {_origin(url)[1:] for url in given.values()}
    one_server = len(origins) == 1
    # The override that decides the scheme family (TLS or not) of derived URLs.
    first_field = next(f for f in _URL_FIELDS if f in given)
    scheme, host, port = _origin(given[first_field])
    netloc = host if ":" not in host else f"[{host}]"
    netloc = f"{netloc}:{port}" if port else netloc
    ws_base = f"{_WS_OF.get(scheme, 'wss')}://{netloc}"
    api_path, private_path = spec.derived_paths
    derived: dict[str, str | None] = {
        "rest_url": f"{_HTTP_OF.get(scheme, 'https')}://{netloc}",
        "ws_url": ws_base,
        "ws_api_url": ws_base + api_path if api_path else None,
        "private_ws_url": ws_base + private_path if private_path else None,
    }
    needed = {"rest_url", "ws_url"}
    if config.has_credentials:
        needed.add(spec.account_url_field)
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
                f"from them, and its default ({getattr(defaults, field)}) "
                "is not one you chose; set it (ExchangeSimulator.connector_config does "
                "this for the simulator)",
            )
        else:
            resolved[field] = None
    rest_url, ws_url = resolved["rest_url"], resolved["ws_url"]
    assert rest_url is not None and ws_url is not None
    return Endpoints(rest_url, ws_url, resolved["ws_api_url"], resolved["private_ws_url"])


def venue_for(config: Config) -> Venue:
    """Assemble the :class:`Venue` for ``config`` (imports venue modules lazily)."""
    return venue_spec(config.exchange).assemble(config, resolve_endpoints(config))


def venue_spec(exchange: str) -> VenueSpec:
    """The registry entry of ``exchange`` (``Config.exchange``); ConfigError if unknown."""
    spec = REGISTRY.get(exchange)
    if spec is None:
        raise ConfigError("exchange", f"must be one of {', '.join(REGISTRY)}", exchange)
    return spec


def cli_venues() -> dict[str, Callable[..., Config]]:
    """CLI venue name -> Config factory taking the overrides, in registry order."""
    return {
        alias: _cli_factory(spec, category)
        for spec in REGISTRY.values()
        for alias, category in spec.cli_names.items()
    }


def _hyphenated(alias: str) -> str:
    return alias.lower().replace("_", "-")


def key_name(config: Config) -> str:
    """The venue's name in Redis stream keys and on the command line (``binance``,
    ``binance-futures``, ``bybit``, ``bybit-linear``): the first CLI name of the
    Config's exchange and category, hyphenated."""
    spec = venue_spec(config.exchange)
    for alias, category in spec.cli_names.items():
        if category == config.category or len(spec.categories) == 1:
            return _hyphenated(alias)
    raise ConfigError("category", f"has no name for {config.exchange}", config.category)


def trade_ids_consecutive(name: str) -> bool:
    """Whether the venue called ``name`` (a :func:`key_name`; a custom name such as
    ``binance-eu`` counts as its first part) numbers its trades with consecutive
    integers, so a reader can tell a hole in a trade tape from its ids alone. False
    for a name the registry does not know."""
    for candidate in (_hyphenated(name), _hyphenated(name).split("-", 1)[0]):
        for spec in REGISTRY.values():
            for alias, category in spec.cli_names.items():
                if _hyphenated(alias) == candidate:
                    venue = venue_for(spec.config(category))
                    return venue.trade_continuity == "ids"
    return False


def _cli_factory(spec: VenueSpec, category: str) -> Callable[..., Config]:
    def make(**overrides: Any) -> Config:
        return spec.config(category, **overrides)

    return make


def _required_url(url: str | None, field: str) -> str:
    """``url``, or a ConfigError naming the Config field that would set it."""
    if url is None:
        raise ConfigError(field, "must be set to use account feeds with these URL overrides")
    return url


# -- the venues -----------------------------------------------------------------------------
# Each assembler imports its venue's modules when a Venue is built.


def _binance_spot(config: Config, urls: Endpoints) -> Venue:
    from rxconnector.exchanges.binance import endpoints as bep
    from rxconnector.exchanges.binance import feeds as bfeeds
    from rxconnector.exchanges.binance.signing import rest_signer
    from rxconnector.exchanges.binance.spot_plans import BinanceSpotPlans
    from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol
    from rxconnector.exchanges.book_rules import BookRule

    def make_account(
        _rest: Any, now: Callable[[], int], _scheduler: abc.SchedulerBase
    ) -> tuple[PrivateProtocol, str]:
        from rxconnector.exchanges.binance.user_stream import BinanceUserStream

        protocol = BinanceUserStream(
            config.api_key, config.api_secret, now, recv_window=config.recv_window
        )
        return protocol, _required_url(urls.ws_api_url, "ws_api_url")

    return Venue(
        name="binance",
        rest_url=urls.rest_url,
        ws_url=urls.ws_url,
        protocol=BinanceSpotWsProtocol(),
        feeds=bfeeds.BinanceSpotFeeds(),
        make_plans=BinanceSpotPlans,
        make_signer=rest_signer,
        make_dialect=bep.binance_dialect,
        book_rule=BookRule.BINANCE_SPOT,
        trade_continuity="ids",
        supported_feeds=frozenset(bfeeds.SUPPORTED_FEEDS["binance"]),
        make_account=make_account,
        ws_api_url=urls.ws_api_url,
        private_ws_url=urls.private_ws_url,
        weight_per_minute=bep.WEIGHT_PER_MINUTE,
        time_path=bep.TIME.path,
        rate_limits_in_exchange_info=True,
    )


def _binance_futures(config: Config, urls: Endpoints) -> Venue:
    from rxconnector.exchanges.binance import endpoints as bep
    from rxconnector.exchanges.binance import feeds as bfeeds
    from rxconnector.exchanges.binance.futures_endpoints import TIME as FUTURES_TIME
    from rxconnector.exchanges.binance.futures_endpoints import WEIGHT_PER_MINUTE
    from rxconnector.exchanges.binance.futures_plans import BinanceFuturesPlans
    from rxconnector.exchanges.binance.signing import rest_signer
    from rxconnector.exchanges.binance.ws_protocol import BinanceFuturesWsProtocol
    from rxconnector.exchanges.book_rules import BookRule

    def make_account(
        rest: Any, _now: Callable[[], int], scheduler: abc.SchedulerBase
    ) -> tuple[PrivateProtocol, str]:
        from rxconnector.streams.accounts.listen_key import futures_user_stream

        private = _required_url(urls.private_ws_url, "private_ws_url")
        return futures_user_stream(rest, private, scheduler, fast_executions=config.fast_executions)

    return Venue(
        name="binance_futures",
        rest_url=urls.rest_url,
        ws_url=urls.ws_url,
        protocol=BinanceFuturesWsProtocol(),
        feeds=bfeeds.BinanceFuturesFeeds(),
        make_plans=BinanceFuturesPlans,
        make_signer=rest_signer,
        make_dialect=bep.binance_dialect,
        book_rule=BookRule.BINANCE_USDM,
        trade_continuity="ids",
        supported_feeds=frozenset(bfeeds.SUPPORTED_FEEDS["binance_futures"]),
        make_account=make_account,
        ws_api_url=urls.ws_api_url,
        private_ws_url=urls.private_ws_url,
        weight_per_minute=WEIGHT_PER_MINUTE,
        time_path=FUTURES_TIME.path,
        rate_limits_in_exchange_info=True,
        positions_over_rest=True,
    )


def _bybit(config: Config, urls: Endpoints) -> Venue:
    from rxconnector.exchanges.book_rules import BookRule
    from rxconnector.exchanges.bybit import endpoints as yep
    from rxconnector.exchanges.bybit import feeds as yfeeds
    from rxconnector.exchanges.bybit.rest_requests import rest_signer
    from rxconnector.exchanges.bybit.trade_plans import BybitPlans
    from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol

    def make_account(
        _rest: Any, now: Callable[[], int], _scheduler: abc.SchedulerBase
    ) -> tuple[PrivateProtocol, str]:
        from rxconnector.exchanges.bybit.private import BybitPrivateStream

        protocol = BybitPrivateStream(config.api_key, config.api_secret, now)
        return protocol, _required_url(urls.private_ws_url, "private_ws_url")

    return Venue(
        name="bybit",
        rest_url=urls.rest_url,
        ws_url=urls.ws_url,
        protocol=BybitWsProtocol(config.category),
        feeds=yfeeds.BybitFeeds(config.category),
        make_plans=BybitPlans,
        make_signer=rest_signer,
        make_dialect=yep.bybit_dialect,
        weight_per_minute=yep.WEIGHT_PER_MINUTE,
        book_rule=BookRule.BYBIT_DEPTH,
        trade_continuity="overlap",
        supported_feeds=frozenset(yfeeds.SUPPORTED_FEEDS[config.category]),
        make_account=make_account,
        book_window=yfeeds.topic_depth,
        ws_api_url=urls.ws_api_url,
        private_ws_url=urls.private_ws_url,
        time_path=yep.TIME.path,
        # Bybit's instruments-info has no rate limits; its spot REST has no positions.
        positions_over_rest=config.category != "spot",
    )


#: Every venue, by ``Config.exchange``, in the order help texts list them. Default
#: endpoints: PROTOCOL.md §A1/A2.1/A5.1 Binance Spot, §B USD-M, §C1/C2/C3 Bybit. USD-M
#: market streams live under ``ws_url`` on the routes ``/public`` and ``/market``; its
#: user data on the route ``/private`` of the same host.
REGISTRY: Final[Mapping[str, VenueSpec]] = MappingProxyType(
    {
        "binance": VenueSpec(
            name="binance",
            default_urls={
                False: Endpoints(
                    "https://api.binance.com",
                    "wss://stream.binance.com:9443",
                    "wss://ws-api.binance.com:443/ws-api/v3",
                    None,
                ),
                True: Endpoints(
                    "https://testnet.binance.vision",
                    "wss://stream.testnet.binance.vision",
                    "wss://ws-api.testnet.binance.vision/ws-api/v3",
                    None,
                ),
            },
            derived_paths=("/ws-api/v3", None),
            account_url_field="ws_api_url",
            cli_names={"binance": "spot"},
            make_config=Config.binance,
            assemble=_binance_spot,
        ),
        "binance_futures": VenueSpec(
            name="binance_futures",
            default_urls={
                False: Endpoints(
                    "https://fapi.binance.com",
                    "wss://fstream.binance.com",
                    "wss://ws-fapi.binance.com/ws-fapi/v1",
                    "wss://fstream.binance.com/private",
                ),
                True: Endpoints(
                    "https://testnet.binancefuture.com",
                    "wss://fstream.binancefuture.com",
                    "wss://testnet.binancefuture.com/ws-fapi/v1",
                    "wss://fstream.binancefuture.com/private",
                ),
            },
            derived_paths=("/ws-fapi/v1", "/private"),
            account_url_field="private_ws_url",
            cli_names={"binance_futures": "linear", "binance-futures": "linear"},
            make_config=Config.binance_futures,
            assemble=_binance_futures,
        ),
        "bybit": VenueSpec(
            name="bybit",
            default_urls={
                False: Endpoints(
                    "https://api.bybit.com",
                    "wss://stream.bybit.com",
                    None,
                    "wss://stream.bybit.com/v5/private",
                ),
                True: Endpoints(
                    "https://api-testnet.bybit.com",
                    "wss://stream-testnet.bybit.com",
                    None,
                    "wss://stream-testnet.bybit.com/v5/private",
                ),
            },
            derived_paths=(None, "/v5/private"),
            account_url_field="private_ws_url",
            cli_names={
                "bybit": "spot",
                "bybit-spot": "spot",
                "bybit-linear": "linear",
                "bybit-inverse": "inverse",
            },
            make_config=Config.bybit,
            assemble=_bybit,
        ),
    }
)
