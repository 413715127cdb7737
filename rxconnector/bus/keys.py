"""Where things live in Redis: one stream per (venue, feed, symbol[, argument]).

Names are shared by the publisher and every consumer, in any language::

    rxc:{venue}:{feed}:{SYMBOL}            trades, agg_trades, ticker, book_ticker, ...
    rxc:{venue}:{feed}:{SYMBOL}:{arg}      order_book:{depth}, klines:{interval}, depth:{levels}
    {stream}:lease                         who may write the stream (SET NX PX, value = holder)
    {stream}:seq                           last trade id written (exactly-once check)
    rxc:{venue}:heartbeats                 hash: holder -> JSON health of that publisher
    rxc:{venue}:events                     stream of the publishers' exchange connection events
"""

from __future__ import annotations

__all__ = [
    "events_key",
    "heartbeats_key",
    "lease_key",
    "normalize_venue",
    "seq_key",
    "stream_key",
]


def normalize_venue(venue: str) -> str:
    """``"Binance_Futures"`` -> ``"binance-futures"``: one spelling in every key."""
    name = venue.strip().lower().replace("_", "-")
    if not name or ":" in name or " " in name:
        raise ValueError(f"venue must be a plain name like 'binance', got {venue!r}")
    return name


def stream_key(venue: str, feed: str, symbol: str, *args: object) -> str:
    """The stream of one feed: ``rxc:binance:order_book:BTCUSDT:20``."""
    parts = ["rxc", normalize_venue(venue), feed, symbol.strip().upper()]
    parts.extend(str(arg) for arg in args)
    return ":".join(parts)


def lease_key(stream: str) -> str:
    return f"{stream}:lease"


def seq_key(stream: str) -> str:
    return f"{stream}:seq"


def heartbeats_key(venue: str) -> str:
    return f"rxc:{normalize_venue(venue)}:heartbeats"


def events_key(venue: str) -> str:
    return f"rxc:{normalize_venue(venue)}:events"
