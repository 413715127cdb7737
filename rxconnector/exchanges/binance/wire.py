"""Binance combined-stream frames decoded in one pass into typed wire schemas.

For the small, hot payloads (``trade``, ``aggTrade``, ``bookTicker``) a
:class:`msgspec.Struct` decoder takes the raw frame ``{"stream": ..., "data": {...}}``
straight to typed fields (the numbers to ``Decimal`` in C), which is cheaper than
``orjson.loads`` + dict reads + ``Decimal(str)`` (benchmarks/bench_decode.py: trade
1.71 vs 2.46 µs, bookTicker 1.94 vs 2.49 µs; slower for depth, which keeps the dict
parsers). The hub hands such a topic's frames over undecoded
(by the bytes its frames start with, :meth:`~rxconnector.exchanges.binance.ws_protocol.
BinanceSpotWsProtocol.data_frame_head`) and
the feed's ``parse_frame`` (built here) decodes them.

The same rules as the dict parsers of :mod:`.parsers`: every number finite and within
1e±:data:`~rxconnector.exchanges._parsing.MAX_DECIMAL_EXPONENT`, booleans strictly
JSON booleans, anything malformed one :class:`~rxconnector.errors.ParseError` with a
bounded excerpt of the frame. In addition the frame's ``stream`` must be the topic the
parser was built for (a hostile frame repeating the key cannot smuggle one topic's data
into another's feed): each topic decodes with its own frame schema whose ``stream`` is a
``Literal`` of the topic, so the decoder checks it in C (no string compare in Python).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Literal, cast

import msgspec

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, model_builder
from rxconnector.models import BookTicker, Trade

__all__ = [
    "AggTradeData",
    "BookTickerData",
    "TradeData",
    "agg_trade_frame_parser",
    "book_ticker_frame_parser",
    "frame_sequence",
    "trade_frame_parser",
]

FrameParser = Callable[[Any, float], Any]


# ``gc=False``: these hold only strings, numbers and each other, so they can never be
# part of a reference cycle; untracked, they cost the collector nothing (one trade
# allocates two of them).


class TradeData(msgspec.Struct, gc=False):
    """``<symbol>@trade`` payload (PROTOCOL.md §A1.3): the fields the model needs."""

    E: int
    s: str
    t: int
    p: Decimal
    q: Decimal
    T: int
    m: bool


class AggTradeData(msgspec.Struct, gc=False):
    """``<symbol>@aggTrade`` payload (Spot and USD-M)."""

    E: int
    s: str
    a: int
    p: Decimal
    q: Decimal
    f: int
    l: int  # noqa: E741 - the wire's name
    T: int
    m: bool


class BookTickerData(msgspec.Struct, gc=False):
    """``<symbol>@bookTicker`` payload (Spot; USD-M adds ``E``/``T``, read when present)."""

    u: int
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    E: int = 0


class _TradeId(msgspec.Struct):
    t: int | None = None


class _AggregateId(msgspec.Struct):
    a: int | None = None


class _UpdateId(msgspec.Struct):
    u: int | None = None


# Only what overlap dedupe needs (the slow path): one id field per schema, because the
# same letter means another thing elsewhere (``a`` is bookTicker's ask price).
_SEQUENCE_SCHEMAS: Final[dict[str, type[msgspec.Struct]]] = {
    "t": _TradeId,
    "a": _AggregateId,
    "u": _UpdateId,
}


#: Per-topic frame decoders kept (a feed built again for a topic reuses its schema);
#: bounded, as a long-lived process may see many symbols come and go.
_DECODERS_KEPT: Final = 4096


@functools.lru_cache(maxsize=_DECODERS_KEPT)
def _frame_decoder(data: type[msgspec.Struct], topic: str) -> Callable[[Any], Any]:
    """``decode`` of ``{"stream": <topic>, "data": <data>}`` frames: ``stream`` is the
    ``Literal`` ``topic``, so a frame of any other stream (or a repeated ``stream`` key
    whose last value differs) fails in the decoder."""
    stream_type = cast(Any, Literal)[topic]
    frame = msgspec.defstruct(
        f"_{data.__name__}Frame", [("stream", stream_type), ("data", data)], gc=False
    )
    return msgspec.json.Decoder(frame).decode


_Trade = model_builder(Trade)
_BookTicker = model_builder(BookTicker)
_is_finite = Decimal.is_finite
_adjusted = Decimal.adjusted
#: The allowed ``Decimal.adjusted()`` values, as a set: one membership test per number
#: is cheaper than a chained ``low <= e <= high`` compare (≈10 ns a number, per trade).
_EXPONENTS: Final = frozenset(range(-MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT + 1))


def _sane(number: Decimal) -> bool:
    return _is_finite(number) and _adjusted(number) in _EXPONENTS


def _malformed(kind: str, frame: Any, reason: str) -> ParseError:
    return ParseError(f"malformed binance {kind} frame ({reason})", frame)


#: The decoder's reason is cut to this many characters: msgspec quotes a refused
#: ``Literal`` value whole, and a hostile frame's ``stream`` may be megabytes.
_MAX_REASON = 160


def _undecodable(kind: str, frame: Any, error: Exception) -> ParseError:
    reason = str(error)
    wrong_stream = reason.endswith("`$.stream`")
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    if wrong_stream:
        return _malformed(kind, frame, f"the stream is not this feed's topic: {reason}")
    return _malformed(kind, frame, reason)


def _not_a_number(kind: str, frame: Any) -> ParseError:
    return _malformed(kind, frame, f"not a finite number within 1e±{MAX_DECIMAL_EXPONENT}")


def trade_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``topic`` (``<symbol>@trade``): raw frame → :class:`Trade`,
    equal to :func:`~rxconnector.exchanges.binance.parsers.parse_trade` of its data."""
    decode = _frame_decoder(TradeData, topic)

    def parse_trade_frame(frame: Any, received_at: float) -> Trade:
        try:
            decoded = decode(frame)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _undecodable("trade", frame, exc) from exc
        d = decoded.data
        price, quantity = d.p, d.q
        if not (
            _is_finite(price)
            and _is_finite(quantity)
            and _adjusted(price) in _EXPONENTS
            and _adjusted(quantity) in _EXPONENTS
        ):
            raise _not_a_number("trade", frame)
        return _Trade(d.s, d.t, price, quantity, "sell" if d.m else "buy", d.T, d.E, received_at)

    return parse_trade_frame


def agg_trade_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``topic`` (``<symbol>@aggTrade``): raw frame → :class:`Trade`
    with the aggregate id, as :func:`~rxconnector.exchanges.binance.parsers.parse_agg_trade`."""
    decode = _frame_decoder(AggTradeData, topic)

    def parse_agg_trade_frame(frame: Any, received_at: float) -> Trade:
        try:
            decoded = decode(frame)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _undecodable("aggTrade", frame, exc) from exc
        d = decoded.data
        price, quantity = d.p, d.q
        if not (
            _is_finite(price)
            and _is_finite(quantity)
            and _adjusted(price) in _EXPONENTS
            and _adjusted(quantity) in _EXPONENTS
        ):
            raise _not_a_number("aggTrade", frame)
        return _Trade(
            d.s, d.a, price, quantity, "sell" if d.m else "buy", d.T, d.E, received_at, d.f, d.l
        )

    return parse_agg_trade_frame


def book_ticker_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``topic`` (``<symbol>@bookTicker``): raw frame →
    :class:`BookTicker`, as :func:`~rxconnector.exchanges.binance.parsers.parse_book_ticker`."""
    decode = _frame_decoder(BookTickerData, topic)

    def parse_book_ticker_frame(frame: Any, received_at: float) -> BookTicker:
        try:
            decoded = decode(frame)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _undecodable("bookTicker", frame, exc) from exc
        d = decoded.data
        bid, bid_qty, ask, ask_qty = d.b, d.B, d.a, d.A
        if not (_sane(bid) and _sane(bid_qty) and _sane(ask) and _sane(ask_qty)):
            raise _not_a_number("bookTicker", frame)
        return _BookTicker(d.s, bid, bid_qty, ask, ask_qty, d.u, d.E, received_at)

    return parse_book_ticker_frame


def frame_sequence(field: str) -> Callable[[Any], int | None]:
    """The overlap-dedupe key ``field`` (``t``, ``a`` or ``u``) of a raw frame; ``None``
    when it cannot be read. Only the hub's slow path (rotations) calls it."""
    schema = _SEQUENCE_SCHEMAS.get(field)
    if schema is None:
        raise ValueError(f"no sequence field {field!r} in the typed frames")
    frame_schema = msgspec.defstruct(f"_{schema.__name__}Frame", [("data", schema)])
    decode = msgspec.json.Decoder(frame_schema).decode

    def key(frame: Any) -> int | None:
        try:
            value: int | None = getattr(getattr(decode(frame), "data"), field)  # noqa: B009
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None
        return value

    key.__name__ = f"frame_key_{field}"
    return key
