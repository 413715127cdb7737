"""Binance stream names (PROTOCOL.md §A1.3) parsed into keys the publisher dispatches on.

Strictness is deliberate, so that client bugs show up in tests: stream names must be
lower-case, and a name for a symbol the simulator does not list is rejected (Binance
accepts such a SUBSCRIBE silently; see ``binance_ws`` for how the rejection looks).
"""

from __future__ import annotations

from collections.abc import Container, Mapping

import attrs

from rxconnector.testing.simulator.klines import INTERVALS

__all__ = [
    "FUTURES_KINDS",
    "SPOT_KINDS",
    "StreamKey",
    "StreamNameError",
    "UnknownSymbolError",
    "parse_stream",
]

#: Spot stream kinds (PROTOCOL.md §A1.3) -> the speed suffixes each accepts.
SPOT_KINDS: dict[str, tuple[str, ...]] = {
    "trade": (),
    "aggTrade": (),
    "ticker": (),
    "miniTicker": (),
    "bookTicker": (),
    "avgPrice": (),
    "kline": (),
    "depth": ("@100ms",),
    "partialDepth": ("@100ms",),
}
#: USD-M futures stream kinds (PROTOCOL.md §B).
FUTURES_KINDS: dict[str, tuple[str, ...]] = {
    "aggTrade": (),
    "ticker": (),
    "miniTicker": (),
    "bookTicker": (),
    "markPrice": ("@1s",),
    "forceOrder": (),
    "kline": (),
    "depth": ("@100ms", "@250ms", "@500ms"),
    "partialDepth": ("@100ms", "@250ms", "@500ms"),
}
#: Suffixes of streams that update every tick (others: every period).
_FAST = frozenset({"@100ms"})
_PARTIAL_LEVELS = {"5", "10", "20"}


class StreamNameError(ValueError):
    """Not a stream name the simulator serves; ``str(err)`` is the answer's ``msg``."""


class UnknownSymbolError(StreamNameError):
    """A well-formed stream name for a symbol the simulator does not list."""


@attrs.frozen(slots=True)
class StreamKey:
    """A parsed stream name.

    ``kind`` is one of trade, aggTrade, ticker, miniTicker, bookTicker, avgPrice,
    markPrice, forceOrder, kline (``param`` = interval), depth (diff stream) or
    partialDepth (``param`` = levels);
    ``fast`` marks the ``@100ms`` variants, which update every tick instead of every
    period.
    """

    name: str
    symbol: str
    kind: str
    param: str = ""
    fast: bool = False


def parse_stream(
    name: str, symbols: Container[str], kinds: Mapping[str, tuple[str, ...]] = SPOT_KINDS
) -> StreamKey:
    """Parse ``name``; raise :class:`StreamNameError` / :class:`UnknownSymbolError`."""
    if not isinstance(name, str):
        raise StreamNameError(f"Invalid request: invalid stream name {name!r}")
    sym, sep, rest = name.partition("@")
    if not sep or not sym or not sym.isalnum():
        raise StreamNameError(f"Invalid request: invalid stream name {name}")
    if sym != sym.lower():
        raise StreamNameError(f"Invalid request: stream names must be lower-case: {name}")
    base, at, speed = rest.partition("@")
    speed = at + speed
    kind, param = base, ""
    if base.startswith("kline_") and base[6:] in INTERVALS:
        kind, param = "kline", base[6:]
    elif base.startswith("depth") and base[5:] in _PARTIAL_LEVELS:
        kind, param = "partialDepth", base[5:]
    if kind not in kinds or (speed and speed not in kinds[kind]):
        raise StreamNameError(f"Invalid request: invalid stream name {name}")
    key = StreamKey(name, sym.upper(), kind, param, speed in _FAST)
    if key.symbol not in symbols:
        raise UnknownSymbolError(f"Invalid request: unknown symbol {sym}")
    return key
