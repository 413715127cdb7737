"""Binance stream names (PROTOCOL.md §A1.3) parsed into keys the publisher dispatches on.

Strictness is deliberate, so that client bugs show up in tests: stream names must be
lower-case, and a name for a symbol the simulator does not list is rejected (Binance
accepts such a SUBSCRIBE silently; see ``binance_ws`` for how the rejection looks).
"""

from __future__ import annotations

from collections.abc import Container

import attrs

from rxconnector.testing.simulator.klines import INTERVALS

__all__ = ["StreamKey", "StreamNameError", "UnknownSymbolError", "parse_stream"]

_SIMPLE = {"trade", "aggTrade", "ticker", "miniTicker", "bookTicker", "avgPrice"}
_PARTIAL_LEVELS = {"5", "10", "20"}


class StreamNameError(ValueError):
    """Not a stream name the simulator serves; ``str(err)`` is the answer's ``msg``."""


class UnknownSymbolError(StreamNameError):
    """A well-formed stream name for a symbol the simulator does not list."""


@attrs.frozen(slots=True)
class StreamKey:
    """A parsed stream name.

    ``kind`` is one of trade, aggTrade, ticker, miniTicker, bookTicker, avgPrice, kline
    (``param`` = interval), depth (diff stream) or partialDepth (``param`` = levels);
    ``fast`` marks the ``@100ms`` variants, which update every tick instead of every
    period.
    """

    name: str
    symbol: str
    kind: str
    param: str = ""
    fast: bool = False


def parse_stream(name: str, symbols: Container[str]) -> StreamKey:
    """Parse ``name``; raise :class:`StreamNameError` / :class:`UnknownSymbolError`."""
    if not isinstance(name, str):
        raise StreamNameError(f"Invalid request: invalid stream name {name!r}")
    sym, sep, rest = name.partition("@")
    if not sep or not sym or not sym.isalnum():
        raise StreamNameError(f"Invalid request: invalid stream name {name}")
    if sym != sym.lower():
        raise StreamNameError(f"Invalid request: stream names must be lower-case: {name}")
    fast = False
    if rest.endswith("@100ms"):
        fast, rest = True, rest[: -len("@100ms")]
    key: StreamKey | None = None
    if rest in _SIMPLE and not fast:
        key = StreamKey(name, sym.upper(), rest)
    elif rest.startswith("kline_") and rest[6:] in INTERVALS and not fast:
        key = StreamKey(name, sym.upper(), "kline", rest[6:])
    elif rest == "depth":
        key = StreamKey(name, sym.upper(), "depth", "", fast)
    elif rest.startswith("depth") and rest[5:] in _PARTIAL_LEVELS:
        key = StreamKey(name, sym.upper(), "partialDepth", rest[5:], fast)
    if key is None:
        raise StreamNameError(f"Invalid request: invalid stream name {name}")
    if key.symbol not in symbols:
        raise UnknownSymbolError(f"Invalid request: unknown symbol {sym}")
    return key
