"""Validated, frozen configuration.

Every value is checked when the object is built, so a bad setting fails at the line that
made it, with a :class:`~rxconnector.errors.ConfigError` naming the field and the rule,
instead of as a confusing exchange error minutes later. All classes are frozen attrs
classes: ``attrs.evolve(cfg, testnet=True)`` makes a changed copy.

Secrets are held in :class:`Secret`, whose ``repr``/``str`` are redacted and which
refuses to be pickled, so an API secret cannot leak through logs, tracebacks or pickles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn

import attrs

from rxconnector.errors import ConfigError

__all__ = [
    "VENUE_CATEGORIES",
    "BreakerConfig",
    "ClockSyncConfig",
    "Config",
    "ConnectionConfig",
    "RateLimitConfig",
    "Secret",
    "ENV_VARS",
]

ExchangeName = Literal["binance", "binance_futures", "bybit"]
Category = Literal["spot", "linear", "inverse"]

#: The venue vocabulary a Config is written in: each venue (``Config.exchange``) with
#: the categories it speaks, its default first. Everything else about a venue - URLs,
#: feeds, REST, book rules, CLI names - is the registry's (:mod:`rxconnector.venues`),
#: which sits above this module in the layering and reads this table.
VENUE_CATEGORIES: Final[Mapping[ExchangeName, tuple[Category, ...]]] = MappingProxyType(
    {
        "binance": ("spot",),
        "binance_futures": ("linear",),
        # option and spread are out of scope
        "bybit": ("spot", "linear", "inverse"),
    }
)

#: Binance documents recvWindow up to 60000 ms (PROTOCOL.md A3).
MAX_RECV_WINDOW_MS: Final = 60_000


class Secret:
    """A string that never shows itself: redacted ``repr``/``str``, refuses pickling.

    Call :meth:`reveal` at the single place that needs the value (signing).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value. Only signing code should call this."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "rxconnector.Secret cannot be pickled: secrets must not leave the process. "
            "Rebuild the Config from the environment (Config.from_env) in the other process."
        )


def _to_secret(value: str | Secret | None) -> Secret:
    if isinstance(value, Secret):
        return value
    if value is not None and not isinstance(value, str):
        # Name the type only: the value may be (part of) a secret.
        raise ConfigError("api_secret", "must be a string", type(value).__name__)
    return Secret(value or "")


#: Largest duration (s) any setting may have: a week. Timers turn durations into
#: ``timedelta``s and loop deadlines; ``1e300`` overflows them and ``inf``/NaN corrupt
#: them (NaN passes every ``<=`` check, so it needs its own test: ``math.isfinite``).
MAX_SECONDS: Final = 7 * 24 * 3600.0
#: Largest integer setting (counts, weights): beyond it nothing is meaningful.
MAX_COUNT: Final = 10**9
_MAXIMUM_BY_UNIT: Final = {"s": MAX_SECONDS, "ms": MAX_SECONDS * 1000.0}


def _positive(section: str, unit: str = "s") -> Any:
    maximum = _MAXIMUM_BY_UNIT[unit]

    def check(_inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is None:
            return
        name = f"{section}.{attribute.name}"
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(name, f"must be > 0 {unit}", value)
        if not math.isfinite(value) or value > maximum:
            raise ConfigError(name, f"must be a finite number <= {maximum:g} {unit}", value)

    return check


def _int_at_least(section: str, minimum: int, maximum: int = MAX_COUNT) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is None:
            return
        name = f"{section}.{attribute.name}"
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(name, f"must be an integer >= {minimum}", value)
        if value > maximum:
            raise ConfigError(name, f"must be an integer <= {maximum}", value)

    return check


def _bool(section: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, bool):
            # A top-level flag names itself, not "flag.flag".
            top = section in ("", attribute.name)
            name = attribute.name if top else f"{section}.{attribute.name}"
            raise ConfigError(name, "must be True or False", value)

    return check


@attrs.frozen
class RateLimitConfig:
    """REST request-weight budget. ``max_weight_per_minute=None`` (default): the venue's
    documented limit (Binance Spot 6,000, USD-M 2,400, Bybit 600 requests per 5 s =
    7,200 per minute), replaced at start by what ``exchangeInfo`` ``rateLimits`` says; a
    number caps whatever the venue allows (e.g. to leave room for other processes)."""

    enabled: bool = attrs.field(default=True, validator=_bool("rate_limit"))
    max_weight_per_minute: int | None = attrs.field(
        default=None, validator=_int_at_least("rate_limit", 1)
    )


@attrs.frozen
class BreakerConfig:
    """Circuit breaker: opens after ``max_failures`` consecutive failures for ``open_timeout`` s,
    then lets ``half_open_max_calls`` trial calls through and closes after
    ``success_threshold`` successes."""

    enabled: bool = attrs.field(default=True, validator=_bool("breaker"))
    max_failures: int = attrs.field(default=5, validator=_int_at_least("breaker", 1))
    success_threshold: int = attrs.field(default=3, validator=_int_at_least("breaker", 1))
    open_timeout: float = attrs.field(default=30.0, validator=_positive("breaker"))
    half_open_max_calls: int = attrs.field(default=3, validator=_int_at_least("breaker", 1))


@attrs.frozen
class ClockSyncConfig:
    """Clock sync: offset = server time - RTT midpoint, best of ``samples``, every
    ``sync_interval`` s; an offset above ``max_offset`` ms is reported."""

    enabled: bool = attrs.field(default=True, validator=_bool("clock_sync"))
    max_offset: float = attrs.field(default=500.0, validator=_positive("clock_sync", "ms"))
    sync_interval: float = attrs.field(default=300.0, validator=_positive("clock_sync"))
    samples: int = attrs.field(default=3, validator=_int_at_least("clock_sync", 1))


@attrs.frozen
class ConnectionConfig:
    """Timeouts and reconnect policy. ``max_reconnect_attempts=None`` retries forever.

    ``stale_after=None`` uses the exchange's default; ``healthy_after`` is how long a
    connection must stay up before the backoff starts again from ``reconnect_delay``.
    ``link_stale_after`` is how long a connection may receive nothing at all (not even
    a ping) before it is called dead, which is what guards connections carrying only
    quiet streams such as liquidations; ``None`` uses the exchange's (from its ping
    cadence: Spot 60 s, USD-M 400 s, Bybit 60 s).
    """

    rest_timeout: float = attrs.field(default=10.0, validator=_positive("connection"))
    ping_interval: float = attrs.field(default=20.0, validator=_positive("connection"))
    reconnect_delay: float = attrs.field(default=1.0, validator=_positive("connection"))
    reconnect_max_delay: float = attrs.field(default=60.0, validator=_positive("connection"))
    reconnect_jitter: float = attrs.field(default=1.0)
    max_reconnect_attempts: int | None = attrs.field(
        default=None, validator=_int_at_least("connection", 1)
    )
    stale_after: float | None = attrs.field(default=None, validator=_positive("connection"))
    link_stale_after: float | None = attrs.field(default=None, validator=_positive("connection"))
    #: 5 s, not 30 s: with faults every 5-15 s a 30-s rule never reset the backoff, so
    #: reconnects drifted to 60 s and books were dark 70 % of the chaos soak (issue 16,
    #: benchmarks/RESULTS.md). A socket that worked for 5 s is evidence the venue is up;
    #: the venue's connection budget is still enforced by the attempt limiter.
    healthy_after: float = attrs.field(default=5.0, validator=_positive("connection"))
    #: Seconds without any data on a connection after which its trade feeds check for
    #: missed trades as soon as data resumes, as after a reconnect (a stall shorter than
    #: ``stale_after`` reconnects nothing; issue 16). 3 s: the streams that push on a
    #: clock (ticker and depth every 1 s, klines every 2 s) and busy trade streams are
    #: never that silent on a working socket, and a 3-s pause is short enough that a
    #: quiet symbol's missed trades come within about a second of the resumption, not
    #: at its next trade. A false alarm (a connection carrying only quiet trade streams)
    #: costs one cheap REST page per trade feed (Binance Spot ``aggTrades``, weight 4).
    #: ``None``: never (missed trades then wait for each feed's next trade).
    stall_heal_after: float | None = attrs.field(default=3.0, validator=_positive("connection"))
    connection_lifetime: float = attrs.field(default=23.5 * 3600, validator=_positive("connection"))
    #: Largest WebSocket frame accepted (bytes). A bigger one cannot be skipped (the
    #: socket is closed with code 1009 and reconnected) and is reported on ``errors``.
    #: aiohttp's default, 4 MiB, is ~100x the largest documented market-data frame
    #: (a 5000-level depth snapshot is ~200 KB); raise it for venues that send more.
    max_frame_bytes: int = attrs.field(
        default=4 * 1024 * 1024, validator=_int_at_least("connection", 1024, 2**30)
    )

    @max_frame_bytes.validator
    def _check_frame_limit(self, _attribute: attrs.Attribute[int], value: int) -> None:
        if value is None:  # the shared integer rule lets None through (optional fields)
            raise ConfigError("connection.max_frame_bytes", "must be an integer >= 1024", value)

    @reconnect_jitter.validator
    def _check_jitter(self, _attribute: attrs.Attribute[float], value: float) -> None:
        name = "connection.reconnect_jitter"
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(name, "must be >= 0 s", value)
        if not math.isfinite(value) or value > MAX_SECONDS:
            raise ConfigError(name, f"must be a finite number <= {MAX_SECONDS:g} s", value)

    def __attrs_post_init__(self) -> None:
        if self.reconnect_max_delay < self.reconnect_delay:
            raise ConfigError(
                "connection.reconnect_max_delay",
                f"must be >= connection.reconnect_delay ({self.reconnect_delay})",
                self.reconnect_max_delay,
            )


_SECTIONS: Final[dict[str, type[Any]]] = {
    "rate_limit": RateLimitConfig,
    "breaker": BreakerConfig,
    "clock_sync": ClockSyncConfig,
    "connection": ConnectionConfig,
}


def _section(name: str, value: Any) -> Any:
    cls = _SECTIONS[name]
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        try:
            return cls(**value)
        except TypeError as exc:
            raise ConfigError(name, f"has no such setting ({exc})", dict(value)) from None
    raise ConfigError(name, f"must be a {cls.__name__} or a dict", value)


def _to_rate_limit(value: RateLimitConfig | Mapping[str, Any]) -> RateLimitConfig:
    result: RateLimitConfig = _section("rate_limit", value)
    return result


def _to_breaker(value: BreakerConfig | Mapping[str, Any]) -> BreakerConfig:
    result: BreakerConfig = _section("breaker", value)
    return result


def _to_clock_sync(value: ClockSyncConfig | Mapping[str, Any]) -> ClockSyncConfig:
    result: ClockSyncConfig = _section("clock_sync", value)
    return result


def _to_connection(value: ConnectionConfig | Mapping[str, Any]) -> ConnectionConfig:
    result: ConnectionConfig = _section("connection", value)
    return result


def _url_validator(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(attribute.name, "must be an absolute URL such as https://host", value)


@attrs.frozen
class Config:
    """Everything a :class:`~rxconnector.Connector` needs; build it with
    :meth:`binance`, :meth:`binance_futures`, :meth:`bybit` or :meth:`from_env`.

    ``rest_url``/``ws_url``/``ws_api_url``/``private_ws_url`` override the venue's
    default endpoints (for instance to talk to the simulator on 127.0.0.1). Setting any
    of them moves *every* endpoint: the unset ones are derived from the one server the
    set ones name, and when they name different servers a connector with keys refuses
    to start (``ConfigError`` naming the URL to set) rather than send a signed login to
    a production default (``venues.resolve_endpoints``). ``testnet=True`` with no URL
    set uses the testnet host of every endpoint.
    """

    exchange: ExchangeName = attrs.field(default="binance")
    category: Category = attrs.field(default="spot")
    api_key: str = attrs.field(default="", repr=lambda k: f"'{k[:4]}…'" if k else "''")
    api_secret: Secret = attrs.field(default=Secret(""), converter=_to_secret)
    testnet: bool = attrs.field(default=False, validator=_bool(""))
    rest_url: str | None = attrs.field(default=None, validator=_url_validator)
    ws_url: str | None = attrs.field(default=None, validator=_url_validator)
    ws_api_url: str | None = attrs.field(default=None, validator=_url_validator)
    private_ws_url: str | None = attrs.field(default=None, validator=_url_validator)
    recv_window: int = attrs.field(default=5000)
    rate_limit: RateLimitConfig = attrs.field(factory=RateLimitConfig, converter=_to_rate_limit)
    breaker: BreakerConfig = attrs.field(factory=BreakerConfig, converter=_to_breaker)
    clock_sync: ClockSyncConfig = attrs.field(factory=ClockSyncConfig, converter=_to_clock_sync)
    connection: ConnectionConfig = attrs.field(factory=ConnectionConfig, converter=_to_connection)
    #: Binance USD-M: report fills from ``TRADE_LITE`` as soon as it arrives (before
    #: ``ORDER_TRADE_UPDATE``; ``fee`` / ``fee_asset`` None there: unknown, the fee is on the
    #: order update); the later duplicate is dropped. Other venues ignore it.
    fast_executions: bool = attrs.field(default=False, validator=_bool("fast_executions"))

    @exchange.validator
    def _check_exchange(self, _a: attrs.Attribute[str], value: str) -> None:
        _categories_of(value)

    @category.validator
    def _check_category(self, _a: attrs.Attribute[str], value: str) -> None:
        everywhere = tuple(dict.fromkeys(c for cs in VENUE_CATEGORIES.values() for c in cs))
        if value not in everywhere:
            raise ConfigError("category", f"must be one of {', '.join(everywhere)}", value)
        own = _categories_of(self.exchange)
        if value not in own:
            raise ConfigError("category", f"must be {_one_of(own)} for {self.exchange}", value)

    @api_key.validator
    def _check_key(self, _a: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str):
            raise ConfigError("api_key", "must be a string", type(value).__name__)

    @recv_window.validator
    def _check_recv_window(self, _a: attrs.Attribute[int], value: int) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (0 < value <= MAX_RECV_WINDOW_MS)
        ):
            raise ConfigError("recv_window", f"must be 1..{MAX_RECV_WINDOW_MS} ms", value)

    @property
    def has_credentials(self) -> bool:
        """True when both an API key and a secret are set (needed for account calls)."""
        return bool(self.api_key) and bool(self.api_secret)

    @classmethod
    def binance(cls, **overrides: Any) -> Config:
        """Binance Spot with the seed-plan defaults; keyword overrides replace any field."""
        return cls._build("binance", "spot", overrides)

    @classmethod
    def binance_futures(cls, **overrides: Any) -> Config:
        """Binance USD-M futures (category ``linear``)."""
        return cls._build("binance_futures", "linear", overrides)

    @classmethod
    def bybit(cls, category: Category = "spot", **overrides: Any) -> Config:
        """Bybit v5 for ``category`` spot, linear or inverse."""
        return cls._build("bybit", category, overrides)

    @classmethod
    def _build(cls, exchange: str, category: str, overrides: dict[str, Any]) -> Config:
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(unknown[0], f"is not a setting (known: {', '.join(sorted(known))})")
        if "exchange" in overrides:
            raise ConfigError("exchange", "is chosen by the constructor, not an override")
        if "category" in overrides:  # Config.binance(category=...): only its own category
            given = overrides.pop("category")
            if given != category:
                raise ConfigError("category", f"must be {category!r} for {exchange}", given)
        return cls(exchange=exchange, category=category, **overrides)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, exchange: ExchangeName = "binance", environ: Mapping[str, str] | None = None
    ) -> Config:
        """Read settings from environment variables (see :data:`ENV_VARS`).

        Variables are prefixed by the exchange, e.g. ``RXC_BINANCE_API_KEY``; the
        generic ``RXC_API_KEY`` is used when the prefixed one is absent.
        """
        env = os.environ if environ is None else environ
        categories = _categories_of(exchange)
        prefix = f"RXC_{exchange.upper()}_"
        values: dict[str, Any] = {}
        for field, suffix in ENV_VARS.items():
            raw = env.get(prefix + suffix, env.get("RXC_" + suffix))
            if raw is None:
                continue
            if field == "testnet":
                values[field] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif field == "recv_window":
                try:
                    values[field] = int(raw)
                except ValueError:
                    raise ConfigError("recv_window", "must be an integer (ms)", raw) from None
            else:
                values[field] = raw
        requested = values.pop("category", None)
        # a venue of one category ignores RXC_CATEGORY
        category = requested if requested and len(categories) > 1 else categories[0]
        return cls._build(exchange, category, values)


def _categories_of(exchange: str) -> tuple[Category, ...]:
    """The categories of ``exchange``; ConfigError naming the venues if unknown."""
    for name, categories in VENUE_CATEGORIES.items():
        if name == exchange:
            return categories
    raise ConfigError("exchange", f"must be one of {', '.join(VENUE_CATEGORIES)}", exchange)


def _one_of(choices: tuple[str, ...]) -> str:
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"one of {', '.join(quoted)}"


#: Config field → environment-variable suffix read by :meth:`Config.from_env`.
ENV_VARS: Final[dict[str, str]] = {
    "api_key": "API_KEY",
    "api_secret": "API_SECRET",
    "testnet": "TESTNET",
    "rest_url": "REST_URL",
    "ws_url": "WS_URL",
    "ws_api_url": "WS_API_URL",
    "private_ws_url": "PRIVATE_WS_URL",
    "recv_window": "RECV_WINDOW",
    "category": "CATEGORY",
}
