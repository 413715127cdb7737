"""Bybit v5 public topic names (PROTOCOL.md §C1 "Topics") parsed into dispatch keys.

``orderbook.{1|50|200|1000}.{SYMBOL}``, ``publicTrade.{SYMBOL}``, ``tickers.{SYMBOL}``
and ``kline.{interval}.{SYMBOL}`` with Bybit's interval spelling (``1 3 5 15 30 60 120
240 360 720 D W M``). Symbols are upper case on Bybit; a lower-case or unlisted symbol is
an invalid symbol, a name of any other shape has no handler. The two failures are told
apart because Bybit answers them differently (see ``bybit_ws``).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Final

import attrs

__all__ = [
    "BOOK_DEPTHS",
    "KLINE_INTERVALS",
    "TopicError",
    "TopicKey",
    "UnknownTopicError",
    "UnlistedSymbolError",
    "parse_topic",
]

#: ``orderbook.{depth}`` depths on Spot and linear (PROTOCOL.md §C1 Topics).
BOOK_DEPTHS: Final = (1, 50, 200, 1000)

#: Bybit interval → the simulator's kline bucket name (``klines.INTERVALS``).
KLINE_INTERVALS: Final[dict[str, str]] = {
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
    "W": "1w",
    "M": "1M",
}


class TopicError(ValueError):
    """Not a topic the simulator serves."""

    def __init__(self, topic: str) -> None:
        super().__init__(topic)
        self.topic = topic


class UnknownTopicError(TopicError):
    """A topic name of no known shape (Bybit: "handler not found")."""


class UnlistedSymbolError(TopicError):
    """A well-formed topic for a symbol the simulator does not list ("Invalid symbol")."""


@attrs.frozen(slots=True)
class TopicKey:
    """A parsed topic: ``kind`` is orderbook (``depth`` set), publicTrade, tickers or
    kline (``interval`` = the simulator bucket, e.g. ``"1h"``; ``native`` = ``"60"``)."""

    name: str
    kind: str
    symbol: str
    depth: int = 0
    interval: str = ""
    native: str = ""


def parse_topic(name: object, symbols: Container[str]) -> TopicKey:
    """Parse ``name``; raise :class:`UnknownTopicError` or :class:`UnlistedSymbolError`."""
    if not isinstance(name, str) or not name:
        raise UnknownTopicError(str(name))
    parts = name.split(".")
    kind = parts[0]
    key: TopicKey | None = None
    if kind == "orderbook" and len(parts) == 3 and parts[1].isdigit():
        depth = int(parts[1])
        if depth in BOOK_DEPTHS and parts[1] == str(depth):
            key = TopicKey(name, kind, parts[2], depth=depth)
    elif kind in ("publicTrade", "tickers") and len(parts) == 2:
        key = TopicKey(name, kind, parts[1])
    elif kind == "kline" and len(parts) == 3 and parts[1] in KLINE_INTERVALS:
        key = TopicKey(name, kind, parts[2], interval=KLINE_INTERVALS[parts[1]], native=parts[1])
    if key is None or not key.symbol or not key.symbol.isalnum():
        raise UnknownTopicError(name)
    if key.symbol not in symbols:  # upper case only: "btcusdt" is not listed either
        raise UnlistedSymbolError(name)
    return key
