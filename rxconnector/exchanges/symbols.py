"""Symbol and kline-interval validation shared by the venues.

A bad symbol or interval must fail at the line that asked for it, with a message that
says what would have been accepted. Left to the exchange, ``BTC/USDT`` becomes a
subscription that is silently never answered (Binance) or an ``error:handler not found``
seconds later on another connection (Bybit). Everything here is pure and cheap; it runs
once per ``conn.ticker(...)`` call, never per message.

Canonical spellings: symbols are upper case (``BTCUSDT``); kline intervals are Binance's
(``1m`` ... ``1M``), also on Bybit, so a :class:`~rxconnector.models.Kline` has the same
``interval`` whichever venue produced it. Bybit's own spellings (``1`` ... ``M``) are
accepted as input and mapped.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "BINANCE_FUTURES_INTERVALS",
    "BINANCE_INTERVALS",
    "BINANCE_SYMBOL_RULE",
    "BYBIT_INTERVALS",
    "BYBIT_SYMBOL_RULE",
    "MAX_BYBIT_SYMBOL_LENGTH",
    "binance_interval",
    "bybit_interval",
    "canonical_interval",
    "normalize_symbol",
    "validate_choice",
]

Venue = Literal["binance", "binance_futures", "bybit"]

#: Binance's own rule, quoted in its -1100 error ("legal range is '^[A-Z0-9-_.]{1,20}$'").
BINANCE_SYMBOL_RULE: Final = r"^[A-Z0-9-_.]{1,20}$"
#: Not documented by Bybit. The same characters as Binance, but up to 30 long so every
#: documented shape fits: ``BTCUSDT``, ``1000PEPEUSDT``, ``BTC-26DEC25``, ``BTC-6JAN23-17500-C``.
BYBIT_SYMBOL_RULE: Final = r"^[A-Z0-9-_.]{1,30}$"
MAX_BYBIT_SYMBOL_LENGTH: Final = 30

_SYMBOL_RES: Final = {
    "binance": re.compile(BINANCE_SYMBOL_RULE),
    "binance_futures": re.compile(BINANCE_SYMBOL_RULE),
    "bybit": re.compile(BYBIT_SYMBOL_RULE),
}
_RULES: Final = {
    "binance": BINANCE_SYMBOL_RULE,
    "binance_futures": BINANCE_SYMBOL_RULE,
    "bybit": BYBIT_SYMBOL_RULE,
}

#: PROTOCOL.md A1.3 (case-sensitive: ``1m`` is a minute, ``1M`` a month).
BINANCE_INTERVALS: Final = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
    "1d", "3d", "1w", "1M",
)  # fmt: skip
#: USD-M futures have the same set without ``1s`` (Binance USD-M "Kline/Candlestick Streams").
BINANCE_FUTURES_INTERVALS: Final = BINANCE_INTERVALS[1:]
#: PROTOCOL.md C1 "Topics" (``kline.{interval}.{symbol}``).
BYBIT_INTERVALS: Final = (
    "1",
    "3",
    "5",
    "15",
    "30",
    "60",
    "120",
    "240",
    "360",
    "720",
    "D",
    "W",
    "M",
)

# Bybit native <-> canonical (Binance) spelling. Every Bybit interval has a Binance twin.
_BYBIT_TO_CANONICAL: Final = {
    "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m",
    "60": "1h", "120": "2h", "240": "4h", "360": "6h", "720": "12h",
    "D": "1d", "W": "1w", "M": "1M",
}  # fmt: skip
_CANONICAL_TO_BYBIT: Final = {v: k for k, v in _BYBIT_TO_CANONICAL.items()}


def normalize_symbol(symbol: str, venue: Venue = "binance") -> str:
    """Return ``symbol`` upper-cased, or raise :class:`ValueError` naming the venue's rule.

    Symbols are accepted in any case (``btcusdt`` == ``BTCUSDT``); separators such as
    ``/`` or spaces are rejected (with the likely intended symbol in the message) because
    they would corrupt the topic name sent to the exchange.
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, got {type(symbol).__name__}: {symbol!r}")
    upper = symbol.strip().upper()
    if _SYMBOL_RES[venue].match(upper) is not None:
        return upper
    hint = ""
    squashed = re.sub(r"[/:\s]", "", upper)  # BTC/USDT, BTC:USDT, "BTC USDT"
    if squashed != upper and _SYMBOL_RES[venue].match(squashed):
        hint = f"; did you mean {squashed!r}?"
    raise ValueError(
        f"invalid {venue} symbol {symbol!r}: after upper-casing it must match "
        f"{_RULES[venue]} (letters, digits, '-', '_', '.'; no separators like '/' or "
        f"spaces), e.g. 'BTCUSDT'{hint}"
    )


def validate_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    """Raise :class:`ValueError` unless ``value`` is one of ``allowed`` (listed in the message).

    Booleans are rejected even where ints are allowed (``True == 1`` would slip through).
    """
    if isinstance(value, bool) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def binance_interval(interval: str, *, futures: bool = False) -> str:
    """Validate a Binance kline interval (case-sensitive) and return it.

    USD-M futures have no ``1s`` candles; asking for them there names the reason.
    """
    allowed = BINANCE_FUTURES_INTERVALS if futures else BINANCE_INTERVALS
    if isinstance(interval, str) and interval in allowed:
        return interval
    venue = "Binance USD-M futures" if futures else "Binance Spot"
    extra = " (1s candles exist on Spot only)" if futures and interval == "1s" else ""
    raise ValueError(
        f"invalid {venue} kline interval {interval!r}{extra}; valid intervals "
        f"(case-sensitive: 1m is a minute, 1M a month): {' '.join(allowed)}"
    )


def bybit_interval(interval: str | int) -> str:
    """Map a kline interval to Bybit's wire spelling.

    Accepts Bybit's own spelling (``"1"``, ``"60"``, ``"D"``; an ``int`` such as ``60``
    too) and the Binance spelling of the same interval (``"1m"``, ``"1h"``, ``"1d"``,
    ``"1w"``, ``"1M"``), so one pipeline can ask both venues for ``"1h"``.
    Binance-only intervals (``1s``, ``8h``, ``3d``) are rejected with the valid list.
    """
    key = (
        str(interval) if isinstance(interval, int) and not isinstance(interval, bool) else interval
    )
    if isinstance(key, str):
        if key in _BYBIT_TO_CANONICAL:
            return key
        native = _CANONICAL_TO_BYBIT.get(key)
        if native is not None:
            return native
    raise ValueError(
        f"invalid Bybit kline interval {interval!r}; valid: {' '.join(BYBIT_INTERVALS)} "
        f"(Bybit spelling: minutes, D, W, M) or the same intervals spelled the Binance "
        f"way: {' '.join(_CANONICAL_TO_BYBIT)}"
    )


def canonical_interval(bybit_native: str) -> str:
    """Bybit wire interval (``"60"``) → canonical spelling (``"1h"``) for :class:`Kline`.

    Raises :class:`KeyError` for an unknown value (parsers turn it into ``ParseError``).
    """
    return _BYBIT_TO_CANONICAL[bybit_native]
