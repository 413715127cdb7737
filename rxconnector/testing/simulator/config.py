"""Settings of the exchange simulator and of the symbols it lists.

The defaults are Binance Spot's documented limits (PROTOCOL.md §A1.1, §A2.3) so that a
client tested against the simulator with defaults meets the real limits; tests shrink
the timings (``tick_interval``, ``ping_interval``) to stay fast. Prices and quantities
are kept as integer multiples of a power-of-ten tick/step inside the simulator, which
is why ``tick_size`` and ``step_size`` must be powers of ten: the book is then exact
integer arithmetic and every wire string is formatted, never rounded.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from rxconnector.testing.simulator.fills import FillModel, fill_model

__all__ = ["SimulatorConfig", "SymbolSpec", "symbol_spec"]

#: Quote assets recognised when splitting a bare symbol such as ``"ETHBTC"``.
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")

#: Realistic starting points for well-known symbols; others are derived from the seed.
_KNOWN: dict[str, tuple[str, str, str]] = {
    # symbol: (initial price, tick size, step size)
    "BTCUSDT": ("60000", "0.01", "0.00001"),
    "ETHUSDT": ("3000", "0.01", "0.0001"),
    "BNBUSDT": ("600", "0.01", "0.001"),
    "SOLUSDT": ("150", "0.01", "0.001"),
    "ETHBTC": ("0.05", "0.00001", "0.0001"),
}


def _exponent(value: Decimal, field: str) -> int:
    """``k`` such that ``value == 10**-k`` with 0 <= k <= 8, else ValueError."""
    if value <= 0:
        raise ValueError(f"{field} must be positive, got {value}")
    k = -value.normalize().as_tuple().exponent  # type: ignore[operator]
    if not (0 <= k <= 8) or value != Decimal(1).scaleb(-k):
        raise ValueError(f"{field} must be a power of ten between 1 and 1e-8, got {value}")
    return int(k)


@attrs.frozen
class SymbolSpec:
    """One listed symbol: its assets and the grid its prices and quantities live on."""

    symbol: str
    base_asset: str
    quote_asset: str
    initial_price: Decimal = attrs.field(converter=Decimal)
    tick_size: Decimal = attrs.field(converter=Decimal)
    step_size: Decimal = attrs.field(converter=Decimal)
    #: share of market ticks with taker orders (1.0: about 17 aggregate trades per
    #: second, as busy as BTCUSDT; 0.03: about 0.5 per second, a quiet altcoin)
    activity: float = 1.0
    #: this symbol's fill model by name (``fills.FILL_MODELS``), instead of the
    #: simulator's ``SimulatorConfig.fill_model``
    fill_model: str | None = None

    def __attrs_post_init__(self) -> None:
        if not 0 < self.activity <= 1:
            raise ValueError(f"activity must be in (0, 1], got {self.activity!r}")
        if self.fill_model is not None:
            fill_model(self.fill_model)  # a clear error for an unknown name, now
        if self.symbol != self.symbol.upper() or not self.symbol.isalnum():
            raise ValueError(f"symbol must be upper-case alphanumeric, got {self.symbol!r}")
        _exponent(self.tick_size, "tick_size")
        _exponent(self.step_size, "step_size")
        if self.initial_price < self.tick_size * 200:
            raise ValueError("initial_price must be at least 200 ticks (the book needs room)")

    @property
    def price_exp(self) -> int:
        """Decimals of the tick size (price = ticks * 10**-price_exp)."""
        return _exponent(self.tick_size, "tick_size")

    @property
    def qty_exp(self) -> int:
        """Decimals of the step size (quantity = steps * 10**-qty_exp)."""
        return _exponent(self.step_size, "step_size")


def _split(symbol: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]


def symbol_spec(symbol: str, seed: int = 0) -> SymbolSpec:
    """A plausible spec for ``symbol``: known majors get real-looking prices, others a
    seed-derived price with a tick of about 1e-5 of it."""
    symbol = symbol.upper()
    base, quote = _split(symbol)
    if symbol in _KNOWN:
        price, tick, step = (Decimal(v) for v in _KNOWN[symbol])
        return SymbolSpec(symbol, base, quote, price, tick, step)
    rng = random.Random(f"spec:{seed}:{symbol}")
    magnitude = rng.randint(0, 3)  # 1 .. 9999
    price = Decimal(rng.randint(100, 999)).scaleb(magnitude - 2)
    tick_exp = min(8, max(0, 5 - magnitude - 1))
    step_exp = min(8, max(0, magnitude + 1))
    return SymbolSpec(
        symbol, base, quote, price, Decimal(1).scaleb(-tick_exp), Decimal(1).scaleb(-step_exp)
    )


def _to_specs(value: Iterable[str | SymbolSpec]) -> tuple[SymbolSpec | str, ...]:
    if isinstance(value, str):
        value = (value,)
    return tuple(value)


def _positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{attribute.name} must be a positive finite number, got {value!r}")


@attrs.frozen
class SimulatorConfig:
    """Everything that shapes one simulator instance (see the module docstring).

    Timings are real seconds. ``periodic_ticks`` is how many market ticks make one
    "1000 ms" stream period (ticker, miniTicker, avgPrice, kline, ``@depth``,
    ``@depthN``): the simulator compresses time, so with ``tick_interval=0.02`` and
    ``periodic_ticks=5`` those streams update every 0.1 s.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    symbols: tuple[SymbolSpec | str, ...] = attrs.field(
        default=("BTCUSDT", "ETHUSDT"), converter=_to_specs
    )
    tick_interval: float = attrs.field(default=0.1, validator=_positive)
    periodic_ticks: int = attrs.field(default=10, validator=_positive)
    autostart_market: bool = True
    # WebSocket limits (PROTOCOL.md §A1.1)
    ping_interval: float = attrs.field(default=20.0, validator=_positive)
    pong_timeout: float = attrs.field(default=60.0, validator=_positive)
    max_messages_per_second: int = attrs.field(default=5, validator=_positive)
    max_streams_per_connection: int = attrs.field(default=1024, validator=_positive)
    max_connections_per_window: int = attrs.field(default=300, validator=_positive)
    connection_window: float = attrs.field(default=300.0, validator=_positive)
    connection_lifetime: float = attrs.field(default=86400.0, validator=_positive)
    max_pending_frames: int = attrs.field(default=10_000, validator=_positive)
    ws_close_timeout: float = attrs.field(default=1.0, validator=_positive)
    shutdown_grace: float = attrs.field(default=2.0, validator=_positive)
    # USD-M futures WebSocket limits (PROTOCOL.md §B)
    futures_ping_interval: float = attrs.field(default=180.0, validator=_positive)
    futures_pong_timeout: float = attrs.field(default=600.0, validator=_positive)
    futures_max_messages_per_second: int = attrs.field(default=10, validator=_positive)
    futures_weight_limit: int = attrs.field(default=2400, validator=_positive)
    # Bybit v5 (PROTOCOL.md §C1, §C3): idle cut without ping or data; REST requests per
    # IP per 5 s (HTTP 403 beyond); requests per endpoint per second (retCode 10006
    # beyond; Bybit documents these per UID for private routes only, the simulator
    # applies one to its market routes so clients meet the X-Bapi-Limit* headers)
    bybit_idle_timeout: float = attrs.field(default=600.0, validator=_positive)
    bybit_ip_limit: int = attrs.field(default=600, validator=_positive)
    bybit_endpoint_limit: int = attrs.field(default=100, validator=_positive)
    # REST limits (PROTOCOL.md §A2.3)
    weight_limit: int = attrs.field(default=6000, validator=_positive)
    ban_after_429s: int = attrs.field(default=5, validator=_positive)
    ban_seconds: float = attrs.field(default=120.0, validator=_positive)
    api_keys: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    # market shape and memory bounds
    book_levels: int = attrs.field(default=50, validator=_positive)
    book_history: int = attrs.field(default=100_000, validator=_positive)
    trade_history: int = attrs.field(default=1_000_000, validator=_positive)
    #: fills per aggregate trade: a name from ``fills.FILL_MODELS`` ("binance_spot",
    #: recorded on Binance Spot, the default; "binance_usdm"; "stress", the original
    #: uniform 1..3) or a :class:`~rxconnector.testing.simulator.fills.FillModel`
    fill_model: FillModel = attrs.field(default=fill_model("binance_spot"), converter=fill_model)

    def symbol_specs(self) -> tuple[SymbolSpec, ...]:
        """The listed symbols as specs (bare names resolved with :func:`symbol_spec`)."""
        specs = tuple(
            s if isinstance(s, SymbolSpec) else symbol_spec(s, self.seed) for s in self.symbols
        )
        names = [s.symbol for s in specs]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"symbols must be non-empty and unique, got {names}")
        return specs
