"""Binance combined-stream frames decoded in one pass into typed wire schemas.

For the small, hot payloads (``trade``, ``aggTrade``, ``bookTicker``) a
:class:`msgspec.Struct` decoder takes the raw frame ``{"stream": ..., "data": {...}}``
straight to typed fields (the numbers to ``Decimal`` in C), which is cheaper than
``orjson.loads`` + dict reads + ``Decimal(str)`` (benchmarks/bench_decode.py: trade
1.71 vs 2.46 µs, bookTicker 1.94 vs 2.49 µs). Depth levels decoded to ``Decimal`` this
way are slower than the dict parser; the maintained order book's depth frames are read
differently instead (the levels kept as raw text and packed for the book: see
:func:`depth_frame_parser` at the end). The hub hands such a topic's frames over undecoded
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
from typing import Annotated, Any, Final, Literal, cast

import msgspec
import orjson

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, bounded_reason, model_builder
from rxconnector.exchanges.binance.parsers import parse_depth_update
from rxconnector.exchanges.depth_events import PackedDepthUpdate
from rxconnector.exchanges.wire_levels import pack_levels
from rxconnector.models import BookTicker, DepthUpdate, Trade

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


class _EventTime(msgspec.Struct):
    E: int | None = None


class _LastUpdateId(msgspec.Struct):
    lastUpdateId: int | None = None


# Only what overlap dedupe needs (the slow path): one id field per schema, because the
# same letter means another thing elsewhere (``a`` is bookTicker's ask price).
_SEQUENCE_SCHEMAS: Final[dict[str, type[msgspec.Struct]]] = {
    "t": _TradeId,
    "a": _AggregateId,
    "u": _UpdateId,
    "E": _EventTime,
    "lastUpdateId": _LastUpdateId,
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


def _undecodable(kind: str, frame: Any, error: Exception) -> ParseError:
    reason = str(error)
    wrong_stream = reason.endswith("`$.stream`")
    reason = bounded_reason(reason)
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
    """The overlap-dedupe key ``field`` (``t``, ``a``, ``u``, ``E`` or ``lastUpdateId``)
    of a raw frame; ``None`` when it cannot be read. Only the hub's slow path
    (rotations) calls it."""
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


# =====================================================================================
# Diff depth for the maintained order book (issue #12): ids typed, levels packed
# =====================================================================================
#
# Kept apart from the trade parsers above (and below them, so the two evolve without
# touching each other). A ``depthUpdate`` frame of the book's topic is decoded in one
# pass; its two level arrays are kept as raw JSON text (``msgspec.Raw``: the decoder
# only validates and slices them) and packed for the book by
# :func:`~rxconnector.exchanges.wire_levels.pack_levels`, so no ``Decimal`` is built per
# level here; the book builds them only for the levels a shown ``OrderBook`` holds.

__all__ += [  # the depth names, kept here so the trade part above stays untouched
    "DepthUpdateData",
    "MAX_UPDATE_ID",
    "depth_frame_parser",
    "depth_update_frame_parser",
]

#: The largest update id a frame may carry: Binance's ids are 64-bit signed; anything
#: beyond is no id (and a negative one neither: ``Meta(ge=0)`` below).
MAX_UPDATE_ID: Final = 2**63 - 1

_UInt63 = Annotated[int, msgspec.Meta(ge=0, le=MAX_UPDATE_ID)]


class DepthUpdateData(msgspec.Struct, gc=False):
    """``<symbol>@depth[@100ms]`` payload (Spot §A1.4; USD-M adds ``pu``, §B): ids and
    times typed, the levels as the raw JSON text of each side."""

    E: _UInt63
    s: str
    U: _UInt63
    u: _UInt63
    b: msgspec.Raw
    a: msgspec.Raw
    pu: int | None = None


_PackedDepthUpdate = PackedDepthUpdate


def _levels_reason(exc: Exception) -> str:
    return bounded_reason(f"bad level: {exc}")


def depth_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of the maintained book's ``topic`` (``<symbol>@depth[@100ms]``):
    raw frame → :class:`~rxconnector.exchanges.depth_events.PackedDepthUpdate`.

    Refused as one :class:`ParseError` (the frame is skipped; the book notices the
    missing update ids at the next event and resyncs, as for any lost event): a frame
    of another stream, a missing key, a field of the wrong type, an id that is not an
    integer in 0..2^63-1 or a first id ``U`` after the final id ``u``, a side that is
    not a JSON array, and any level :func:`~rxconnector.exchanges._parsing.parse_levels`
    refuses.
    """
    decode = _frame_decoder(DepthUpdateData, topic)

    def parse_depth_frame(frame: Any, received_at: float) -> PackedDepthUpdate:
        try:
            d = decode(frame).data
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _undecodable("depthUpdate", frame, exc) from exc
        first, final = d.U, d.u
        if first > final:
            raise _malformed("depthUpdate", frame, f"first update id {first} > final {final}")
        try:
            bids, asks = pack_levels(d.b), pack_levels(d.a)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise _malformed("depthUpdate", frame, _levels_reason(exc)) from exc
        return _PackedDepthUpdate(d.s, first, final, bids, asks, d.E, received_at, d.pu)

    return parse_depth_frame


def depth_update_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of the public ``diff_depth`` feed on ``topic``: raw frame →
    :class:`~rxconnector.models.DepthUpdate` by the dict parser
    (:func:`~rxconnector.exchanges.binance.parsers.parse_depth_update`, unchanged).

    The book's topic is handed over undecoded (see :func:`depth_frame_parser`); a
    ``diff_depth`` subscriber of the same topic then gets raw frames too, and reads them
    here: the frame is decoded, its ``stream`` checked, and its ``data`` parsed as before.
    """

    def parse_depth_update_frame(frame: Any, received_at: float) -> DepthUpdate:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise _malformed("depthUpdate", frame, "not JSON") from exc
        if type(message) is not dict or "data" not in message:
            raise _malformed("depthUpdate", frame, "not a combined-stream frame")
        if message.get("stream") != topic:
            raise _malformed("depthUpdate", frame, "the stream is not this feed's topic")
        return parse_depth_update(message["data"], received_at)

    return parse_depth_update_frame
