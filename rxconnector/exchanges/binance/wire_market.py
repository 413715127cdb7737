"""The other Binance market feeds decoded in one pass into typed wire schemas (issue #12).

:mod:`.wire` decodes trades, aggregate trades, bookTicker and the book's diff depth
this way; this module does the same for ``24hrTicker``, ``24hrMiniTicker``, ``kline``,
Spot ``avgPrice``, partial depth (Spot's ``lastUpdateId/bids/asks`` and USD-M's
``depthUpdate`` shape) and USD-M's ``markPriceUpdate`` and ``forceOrder``. Which of
them the feeds use is decided by measurement (``benchmarks/bench_decode.py``,
RESULTS.md "Typed decoding on every Binance market feed (seventh session)"): a feed
takes its typed parser only where it beat ``orjson.loads`` + the dict parser.

The typed path is a fast path; the dict parser of :mod:`.parsers` stays the authority
on what a payload means. A frame of the topic that the schema refuses (a field of a
JSON type the schema does not expect, a key missing) is read once more by the dict
parser (:func:`_read_as_dict`), so every frame is accepted or refused exactly as on the
decoded path (a :class:`~rxconnector.errors.ParseError`); only a frame of another
stream, a frame that is no JSON or no UTF-8 (also in a field no parser reads, which
the typed decoder skips unchecked but ``orjson`` refuses), and a number that is not
finite within 1e±:data:`~rxconnector.exchanges._parsing.MAX_DECIMAL_EXPONENT` (which
the dict parser refuses too) are refused at once. Valid frames, the only ones that
matter for speed, never take the second read.

Known differences, on inputs Binance never sends (pinned by the tests): a JSON
*number* where Binance sends a numeric string is read from its text here, through a
binary float by ``orjson`` (``0.1`` becomes ``Decimal(0.1)`` there, ``1e-999`` the
accepted ``0``; here ``Decimal("0.1")`` and a refusal); an integer field beyond 64 bits
is exact here, a float turned into an ``int`` there.

Schemas list only the fields the models need (the decoder skips the rest in C) and
are ``gc=False`` (strings, numbers and each other only: never part of a cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec
import orjson

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, model_builder, to_decimal
from rxconnector.exchanges.binance import parsers as p

# The frame decoder and the error helpers are the trade parsers' (one set of rules).
from rxconnector.exchanges.binance.wire import (
    FrameParser,
    _frame_decoder,
    _levels_reason,
    _malformed,
    _not_a_number,
    _undecodable,
)
from rxconnector.exchanges.wire_levels import pack_levels, pack_levels_py
from rxconnector.models import (
    AvgPrice,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Side,
    Ticker,
)

__all__ = [
    "AvgPriceData",
    "ForceOrderData",
    "FuturesPartialDepthData",
    "KlineData",
    "MarkPriceData",
    "MiniTickerData",
    "PartialDepthData",
    "TYPED_PARTIAL_DEPTH",
    "TickerData",
    "avg_price_frame_parser",
    "force_order_frame_parser",
    "futures_partial_depth_frame_parser",
    "kline_frame_parser",
    "mark_price_frame_parser",
    "mini_ticker_frame_parser",
    "partial_depth_frame_parser",
    "ticker_frame_parser",
]

_Ticker = model_builder(Ticker)
_MiniTicker = model_builder(MiniTicker)
_Kline = model_builder(Kline)
_AvgPrice = model_builder(AvgPrice)
_MarkPrice = model_builder(MarkPrice)
_Liquidation = model_builder(Liquidation)
_OrderBook = model_builder(OrderBook)
_is_finite = Decimal.is_finite
_adjusted = Decimal.adjusted
_MAX_EXPONENT = MAX_DECIMAL_EXPONENT


def _sane(*numbers: Decimal | None) -> bool:
    """Every number present finite and within 1e±50 (``to_decimal``'s rule); ``None``
    (an optional field the frame left out) passes."""
    for number in numbers:
        if number is not None and not (
            _is_finite(number) and -_MAX_EXPONENT <= _adjusted(number) <= _MAX_EXPONENT
        ):
            return False
    return True


# --------------------------------------------------------------------------- schemas


class TickerData(msgspec.Struct, gc=False):
    """``24hrTicker`` (``<symbol>@ticker``); USD-M has no ``b``/``B``/``a``/``A``."""

    E: int
    s: str
    c: Decimal
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire's name
    v: Decimal
    q: Decimal
    b: Decimal | None = None
    B: Decimal | None = None
    a: Decimal | None = None
    A: Decimal | None = None


class MiniTickerData(msgspec.Struct, gc=False):
    """``24hrMiniTicker`` (``<symbol>@miniTicker``)."""

    E: int
    s: str
    c: Decimal
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire's name
    v: Decimal
    q: Decimal


class KlineBar(msgspec.Struct, gc=False):
    """The ``k`` object of a ``kline`` event."""

    t: int
    T: int
    i: str
    o: Decimal
    c: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire's name
    v: Decimal
    n: int
    x: bool
    q: Decimal


class KlineData(msgspec.Struct, gc=False):
    """``kline`` (``<symbol>@kline_<interval>``)."""

    E: int
    s: str
    k: KlineBar


class AvgPriceData(msgspec.Struct, gc=False):
    """``avgPrice`` (``<symbol>@avgPrice``, Spot)."""

    E: int
    s: str
    i: str
    w: Decimal
    T: int


class MarkPriceData(msgspec.Struct, gc=False):
    """``markPriceUpdate`` (``<symbol>@markPrice[@1s]``, USD-M).

    A delivery contract has no funding: it sends ``"r": ""`` and ``"T": 0``. ``r`` is
    therefore read as text (``""`` → ``None``, else ``to_decimal`` in Python) and ``T``
    as an integer or ``""``, so both kinds of contract take this one schema (measured
    against a ``Decimal`` ``r`` with a fallback for delivery frames: RESULTS.md).
    """

    E: int
    s: str
    p: Decimal
    i: Decimal | None = None
    P: Decimal | None = None
    r: str | None = None
    T: int | Literal[""] | None = None


class ForceOrderBody(msgspec.Struct, gc=False):
    """The ``o`` object of a ``forceOrder`` event."""

    s: str
    S: Literal["BUY", "SELL"]
    o: str
    p: Decimal
    q: Decimal
    X: str
    T: int
    ap: Decimal | None = None


class ForceOrderData(msgspec.Struct, gc=False):
    """``forceOrder`` (``<symbol>@forceOrder``, USD-M)."""

    E: int
    o: ForceOrderBody


class PartialDepthData(msgspec.Struct, gc=False):
    """Spot partial depth (``<symbol>@depth<N>[@100ms]``): no symbol, no event time;
    the level arrays kept as raw JSON text for :func:`~rxconnector.exchanges.wire_levels.
    pack_levels`."""

    lastUpdateId: int
    bids: msgspec.Raw
    asks: msgspec.Raw


class FuturesPartialDepthData(msgspec.Struct, gc=False):
    """USD-M partial depth: the ``depthUpdate`` shape, ``u`` the book's update id."""

    E: int
    s: str
    u: int
    b: msgspec.Raw
    a: msgspec.Raw


# --------------------------------------------------------------------------- the slow read


def _valid_utf8(kind: str, frame: Any) -> None:
    """Refuse a bytes frame that is not UTF-8 as orjson (the decoded path) does: the
    typed decoder checks only the strings it reads, not those of the fields it skips.
    Called only for a frame that is not ASCII (``isascii`` is one fast C scan; Binance
    sends ASCII)."""
    if type(frame) is not str:
        try:
            bytes(frame).decode()
        except UnicodeDecodeError as exc:
            raise _undecodable(kind, frame, exc) from exc


def _read_as_dict(
    kind: str, topic: str, parse: Callable[[Any, float], Any]
) -> Callable[[Any, float, msgspec.DecodeError], Any]:
    """What a frame the schema refused becomes: a frame of another stream or no JSON
    at all is refused at once; any other is decoded and given to the dict parser
    ``parse``, which accepts or refuses it exactly as on the decoded path."""

    def read(frame: Any, received_at: float, error: msgspec.DecodeError) -> Any:
        if not isinstance(error, msgspec.ValidationError) or str(error).endswith("`$.stream`"):
            raise _undecodable(kind, frame, error) from error
        try:
            message = orjson.loads(frame)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise _undecodable(kind, frame, error) from exc
        if type(message) is not dict or "data" not in message:
            raise _undecodable(kind, frame, error)
        if message.get("stream") != topic:
            raise _malformed(kind, frame, "the stream is not this feed's topic")
        return parse(message["data"], received_at)

    return read


# --------------------------------------------------------------------------- tickers


def ticker_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``<symbol>@ticker``: raw frame → :class:`Ticker`, equal to
    :func:`~rxconnector.exchanges.binance.parsers.parse_ticker` of its data."""
    decode = _frame_decoder(TickerData, topic)
    slow = _read_as_dict("24hrTicker", topic, p.parse_ticker)

    def parse_ticker_frame(frame: Any, received_at: float) -> Ticker:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("24hrTicker", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("24hrTicker", frame)
        last, open_, high, low, volume, quote = d.c, d.o, d.h, d.l, d.v, d.q
        bid, bid_qty, ask, ask_qty = d.b, d.B, d.a, d.A
        if not _sane(last, open_, high, low, volume, quote, bid, bid_qty, ask, ask_qty):
            raise _not_a_number("24hrTicker", frame)
        return _Ticker(
            d.s, last, bid, bid_qty, ask, ask_qty, open_, high, low, volume, quote, d.E, received_at
        )

    return parse_ticker_frame


def mini_ticker_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``<symbol>@miniTicker``: raw frame → :class:`MiniTicker`, as
    :func:`~rxconnector.exchanges.binance.parsers.parse_mini_ticker`."""
    decode = _frame_decoder(MiniTickerData, topic)
    slow = _read_as_dict("24hrMiniTicker", topic, p.parse_mini_ticker)

    def parse_mini_ticker_frame(frame: Any, received_at: float) -> MiniTicker:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("24hrMiniTicker", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("24hrMiniTicker", frame)
        close, open_, high, low, volume, quote = d.c, d.o, d.h, d.l, d.v, d.q
        if not _sane(close, open_, high, low, volume, quote):
            raise _not_a_number("24hrMiniTicker", frame)
        return _MiniTicker(d.s, close, open_, high, low, volume, quote, d.E, received_at)

    return parse_mini_ticker_frame


def avg_price_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``<symbol>@avgPrice`` (Spot): raw frame → :class:`AvgPrice`,
    as :func:`~rxconnector.exchanges.binance.parsers.parse_avg_price`."""
    decode = _frame_decoder(AvgPriceData, topic)
    slow = _read_as_dict("avgPrice", topic, p.parse_avg_price)

    def parse_avg_price_frame(frame: Any, received_at: float) -> AvgPrice:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("avgPrice", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("avgPrice", frame)
        price = d.w
        if not (_is_finite(price) and -_MAX_EXPONENT <= _adjusted(price) <= _MAX_EXPONENT):
            raise _not_a_number("avgPrice", frame)
        return _AvgPrice(d.s, d.i, price, d.T, d.E, received_at)

    return parse_avg_price_frame


# --------------------------------------------------------------------------- klines


def kline_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``<symbol>@kline_<interval>``: raw frame → :class:`Kline`, as
    :func:`~rxconnector.exchanges.binance.parsers.parse_kline`."""
    decode = _frame_decoder(KlineData, topic)
    slow = _read_as_dict("kline", topic, p.parse_kline)

    def parse_kline_frame(frame: Any, received_at: float) -> Kline:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("kline", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("kline", frame)
        k = d.k
        open_, high, low, close, volume, quote = k.o, k.h, k.l, k.c, k.v, k.q
        if not _sane(open_, high, low, close, volume, quote):
            raise _not_a_number("kline", frame)
        return _Kline(
            d.s, k.i, k.t, k.T, open_, high, low, close, volume, quote, k.n, k.x, d.E, received_at
        )

    return parse_kline_frame


# --------------------------------------------------------------------------- USD-M only


def mark_price_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``<symbol>@markPrice[@1s]``: raw frame → :class:`MarkPrice`,
    as :func:`~rxconnector.exchanges.binance.parsers.parse_mark_price` (a delivery
    contract's ``"r": ""`` and ``"T": 0`` become ``None``)."""
    decode = _frame_decoder(MarkPriceData, topic)
    slow = _read_as_dict("markPriceUpdate", topic, p.parse_mark_price)

    def parse_mark_price_frame(frame: Any, received_at: float) -> MarkPrice:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("markPriceUpdate", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("markPriceUpdate", frame)
        mark, index, settle, rate = d.p, d.i, d.P, d.r
        funding = None
        if rate:
            try:
                funding = to_decimal(rate)
            except (ValueError, ArithmeticError) as exc:
                raise _not_a_number("markPriceUpdate", frame) from exc
        if not _sane(mark, index, settle):
            raise _not_a_number("markPriceUpdate", frame)
        return _MarkPrice(d.s, mark, index, settle, funding, d.T or None, d.E, received_at)

    return parse_mark_price_frame


def force_order_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``<symbol>@forceOrder``: raw frame → :class:`Liquidation`, as
    :func:`~rxconnector.exchanges.binance.parsers.parse_force_order`."""
    decode = _frame_decoder(ForceOrderData, topic)
    slow = _read_as_dict("forceOrder", topic, p.parse_force_order)

    def parse_force_order_frame(frame: Any, received_at: float) -> Liquidation:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("forceOrder", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("forceOrder", frame)
        o = d.o
        price, quantity, average = o.p, o.q, o.ap
        if not _sane(price, quantity, average):
            raise _not_a_number("forceOrder", frame)
        side: Side = "buy" if o.S == "BUY" else "sell"
        return _Liquidation(o.s, side, o.o, price, quantity, average, o.X, o.T, d.E, received_at)

    return parse_force_order_frame


# --------------------------------------------------------------------------- partial depth


def _best_first(levels: tuple[Any, ...], descending: bool) -> tuple[Any, ...]:
    """The best level first, as :func:`~rxconnector.exchanges.binance.parsers._best_first`."""
    if len(levels) > 1 and (levels[0][0] < levels[-1][0]) == descending:
        return levels[::-1]
    return levels


def _levels(raw: msgspec.Raw) -> tuple[Any, ...]:
    """One side's raw JSON text → ``((Decimal, Decimal), ...)``: packed (which refuses
    exactly what ``parse_levels`` refuses), then the ``Decimal`` pairs read out."""
    return tuple(pack_levels(raw))


#: Whether the partial-depth feeds read frames typed: only with the compiled core's
#: level packer (typed 2.7-4x faster than the dict path from 1 to 20 levels a side);
#: with the pure-Python packer the typed read is 3-12 % slower (RESULTS.md), so those
#: feeds keep the dict path.
TYPED_PARTIAL_DEPTH: Final = pack_levels is not pack_levels_py


def _bad_level(kind: str, frame: Any, error: Exception) -> ParseError:
    return _malformed(kind, frame, _levels_reason(error))


def partial_depth_frame_parser(topic: str, symbol: str) -> FrameParser:
    """``parse_frame`` of Spot ``<symbol>@depth<N>[@100ms]``: raw frame →
    :class:`OrderBook` of ``symbol`` (the payload does not name it), as
    :func:`~rxconnector.exchanges.binance.parsers.parse_partial_depth`."""
    decode = _frame_decoder(PartialDepthData, topic)
    slow = _read_as_dict("partial depth", topic, p.partial_depth_parser(symbol))

    def parse_partial_depth_frame(frame: Any, received_at: float) -> OrderBook:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("partial depth", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("partial depth", frame)
        try:
            bids, asks = _levels(d.bids), _levels(d.asks)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise _bad_level("partial depth", frame, exc) from exc
        return _OrderBook(
            symbol,
            _best_first(bids, descending=True),
            _best_first(asks, descending=False),
            d.lastUpdateId,
            0,
            received_at,
        )

    return parse_partial_depth_frame


def futures_partial_depth_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of USD-M ``<symbol>@depth<N>[@100ms|@500ms]``: raw frame →
    :class:`OrderBook`, as :func:`~rxconnector.exchanges.binance.parsers.
    parse_futures_partial_depth`."""
    decode = _frame_decoder(FuturesPartialDepthData, topic)
    slow = _read_as_dict("futures partial depth", topic, p.parse_futures_partial_depth)

    def parse_futures_partial_depth_frame(frame: Any, received_at: float) -> OrderBook:
        try:
            d = decode(frame).data
        except msgspec.DecodeError as exc:
            return slow(frame, received_at, exc)  # type: ignore[no-any-return]
        except UnicodeDecodeError as exc:
            raise _undecodable("futures partial depth", frame, exc) from exc
        if not frame.isascii():
            _valid_utf8("futures partial depth", frame)
        try:
            bids, asks = _levels(d.b), _levels(d.a)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise _bad_level("futures partial depth", frame, exc) from exc
        return _OrderBook(
            d.s,
            _best_first(bids, descending=True),
            _best_first(asks, descending=False),
            d.u,
            d.E,
            received_at,
        )

    return parse_futures_partial_depth_frame
