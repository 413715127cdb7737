"""Which wire reader ``order_book()`` uses for a venue's diff-depth parser.

``order_book()`` subscribes the same topic as ``diff_depth()`` but reads it with the
venue's :func:`parse_book_diff` (levels as exact keys and strings, no Decimals; see
``exchanges/_levels.py``). A parser without an entry here is used as it is: the local
book also accepts ``DepthUpdate`` levels, only more slowly.
"""

from __future__ import annotations

from typing import Any

from rxconnector.exchanges.base import Parser
from rxconnector.exchanges.binance import parsers as binance_parsers
from rxconnector.exchanges.binance import wire as binance_wire
from rxconnector.exchanges.bybit import parsers as bybit_parsers
from rxconnector.exchanges.bybit import wire as bybit_wire

__all__ = ["book_reader_for"]

_READERS: dict[Any, Parser] = {
    binance_parsers.parse_depth_update: binance_wire.parse_book_diff,
    bybit_parsers.parse_depth: bybit_wire.parse_book_diff,
}


def book_reader_for(parse: Parser) -> Parser:
    """The order-book reader of the topic ``parse`` reads (``parse`` itself if none)."""
    return _READERS.get(parse, parse)
