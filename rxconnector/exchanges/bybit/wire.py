"""Bybit v5 public frames decoded in one pass into typed wire schemas (issue #12).

For ``publicTrade``, ``kline`` and ``allLiquidation`` (``tickers``: :mod:`.wire_tickers`) a
per-topic :class:`msgspec.json.Decoder` takes the raw frame
``{"topic": ..., "ts": ..., "data": ...}`` straight to typed fields (the numbers to
``Decimal`` in C); the models are built from those fields. That is cheaper than
``orjson.loads`` + the dict parsers of :mod:`.parsers` (figures: benchmarks/RESULTS.md,
"Typed decoding on Bybit trades, klines, liquidations and tickers"). The hub hands such
a topic's frames over undecoded (by the bytes they start with,
:meth:`~rxconnector.exchanges.bybit.ws_protocol.BybitWsProtocol.data_frame_head`) and the
feed's ``parse_frame`` (built here) reads them.

Why the typed path can never disagree with the dict parsers: it is a fast path for the
frames Bybit actually sends, not a second set of rules. Each schema is strict (the
frame's ``topic`` a ``Literal`` of the feed's topic, integers JSON integers, numbers JSON
strings, every number finite and within 1e±:data:`~rxconnector.exchanges._parsing.
MAX_DECIMAL_EXPONENT`); a frame it does not take whole - anything unusual, from a JSON
number where Bybit sends a string to a broken frame - is handed to the dict parser,
which accepts it or refuses it with its own :class:`~rxconnector.errors.ParseError`
exactly as it does today (after checking the frame's ``topic``, so a hostile frame
cannot smuggle one topic's data into another's feed). So both paths accept the same
frames and give equal models, and a malformed frame is one bounded ``ParseError``
(never a dead feed); only such frames pay for two decodes.

A JSON number is refused by the typed path on purpose: msgspec reads ``0.1`` as
``Decimal("0.1")`` while the dict parser reads the float (``Decimal(0.1)``), so the
number fields are ``Decimal | float`` and a float sends the frame to the dict parser
(the finite check raises ``TypeError`` on it, which costs nothing on the fast path).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, cast

import msgspec
import orjson

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT, model_builder
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.symbols import canonical_interval
from rxconnector.models import Kline, Liquidation, Side, Trade

__all__ = [
    "KlineEntry",
    "LiquidationEntry",
    "TradeEntry",
    "frame_ts",
    "kline_frame_parser",
    "liquidations_frame_parser",
    "trades_frame_parser",
]

FrameParser = Callable[[Any, float], Any]

#: A number field: a JSON string decodes to ``Decimal``; a JSON number to ``float``,
#: which the finite check below refuses (``TypeError``), so the dict parser reads it.
Number = Decimal | float
#: An integer field, within int64: ``orjson`` reads a larger one as a float, whose
#: ``int()`` in the dict parser is not the number sent, so such a frame goes there
#: (msgspec bounds must fit int64, so 2^63..2^64-1 go there too and read as sent).
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

# ``gc=False``: these hold only strings, numbers and each other, never a cycle.


class TradeEntry(msgspec.Struct, gc=False):
    """One element of a ``publicTrade`` frame's ``data`` (the fields the model needs)."""

    T: Int
    s: str
    S: str
    v: Number
    p: Number
    i: str


class KlineEntry(msgspec.Struct, gc=False):
    """One candle of a ``kline.{interval}.{symbol}`` frame."""

    start: Int
    end: int
    interval: str
    open: Number
    close: Number
    high: Number
    low: Number
    volume: Number
    turnover: Number
    confirm: bool


class LiquidationEntry(msgspec.Struct, gc=False):
    """One element of an ``allLiquidation`` frame's ``data``."""

    T: Int
    s: str
    S: str
    v: Number
    p: Number


#: Per-topic frame decoders kept (a feed built again for a topic reuses its schema);
#: bounded, as a long-lived process may see many symbols come and go.
DECODERS_KEPT: Final = 4096


@functools.lru_cache(maxsize=DECODERS_KEPT)
def _frame_decoder(data: Any, topic: str) -> Callable[[Any], Any]:
    """``decode`` of ``{"topic": <topic>, "ts": int, "data": <data>}`` frames: ``topic``
    is the ``Literal`` ``topic``, so a frame of any other topic (or a repeated
    ``topic`` key whose last value differs) fails in the decoder."""
    topic_type = cast(Any, Literal)[topic]
    name = f"_{getattr(data, '__name__', 'Data')}Frame"
    frame = msgspec.defstruct(name, [("topic", topic_type), ("ts", Int), ("data", data)], gc=False)
    return msgspec.json.Decoder(frame).decode


_is_finite = Decimal.is_finite
_adjusted = Decimal.adjusted
#: The allowed ``Decimal.adjusted()`` values: one set lookup per number.
_EXPONENTS: Final = frozenset(range(-MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT + 1))
#: What the fast path raises for a frame it does not take whole (the dict parser then
#: decides): a decode or schema failure, a float number (``TypeError`` in the finite
#: check), an unknown side or interval (``KeyError``), a bad trade id (``ValueError``).
NOT_TYPED: Final = (msgspec.DecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError)


class _NotANumber(ValueError):
    """A decoded number outside the rule (non-finite or beyond 1e±50)."""


def _sane(number: Number) -> Decimal:
    """``number`` when it is a finite ``Decimal`` within the bounds; else raises
    (``TypeError`` for a float, :class:`_NotANumber` otherwise)."""
    if _is_finite(number) and _adjusted(number) in _EXPONENTS:  # type: ignore[arg-type]
        return cast(Decimal, number)
    raise _NotANumber


def dict_parser_of(kind: str, topic: str, parse: FrameParser) -> FrameParser:
    """The judge of every frame the typed path does not take: ``orjson.loads``, the
    frame's ``topic`` checked, then ``parse`` (the dict parser) - which accepts it or
    raises its own :class:`ParseError`, exactly as for a decoded frame."""
    loads = orjson.loads

    def parse_by_dict(frame: Any, received_at: float) -> Any:
        try:
            message = loads(frame)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"malformed bybit {kind} frame (not JSON)", frame) from exc
        if type(message) is not dict or message.get("topic") != topic:
            raise ParseError(f"malformed bybit {kind} frame (not this feed's topic)", frame)
        return parse(message, received_at)

    return parse_by_dict


_Trade = model_builder(Trade)
_Kline = model_builder(Kline)
_Liquidation = model_builder(Liquidation)
_SIDES: Final[dict[str, Side]] = {"Buy": "buy", "Sell": "sell"}
_LIQUIDATION_ORDER_SIDE: Final[dict[str, Side]] = {"Buy": "sell", "Sell": "buy"}


def trades_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``topic`` (``publicTrade.{symbol}``): raw frame → the
    :class:`Trade` list :func:`~rxconnector.exchanges.bybit.parsers.parse_trades` gives."""
    decode = _frame_decoder(list[TradeEntry], topic)
    by_dict = dict_parser_of("publicTrade", topic, p.parse_trades)
    trade_id = p.bybit_trade_id
    sides = _SIDES

    def parse_trades_frame(frame: Any, received_at: float) -> Sequence[Trade]:
        try:
            message = decode(frame)
            event_time = message.ts
            return [
                _Trade(
                    t.s,
                    trade_id(t.i),
                    _sane(t.p),
                    _sane(t.v),
                    sides[t.S],
                    t.T,
                    event_time,
                    received_at,
                )
                for t in message.data
            ]
        except NOT_TYPED:
            pass
        result: Sequence[Trade] = by_dict(frame, received_at)
        return result

    return parse_trades_frame


def kline_frame_parser(topic: str, symbol: str, *, inverse: bool = False) -> FrameParser:
    """``parse_frame`` of ``topic`` (``kline.{interval}.{symbol}``): raw frame → the
    :class:`Kline` list of :func:`~rxconnector.exchanges.bybit.parsers.kline_parser`
    (``inverse`` swaps volume and turnover, as there)."""
    decode = _frame_decoder(list[KlineEntry], topic)
    by_dict = dict_parser_of("kline", topic, p.kline_parser(symbol, inverse=inverse))
    interval_of = canonical_interval

    def parse_kline_frame(frame: Any, received_at: float) -> Sequence[Kline]:
        try:
            message = decode(frame)
            event_time = message.ts
            out = []
            for k in message.data:
                volume, turnover = _sane(k.volume), _sane(k.turnover)
                if inverse:
                    volume, turnover = turnover, volume
                out.append(
                    _Kline(
                        symbol,
                        interval_of(k.interval),
                        k.start,
                        k.end,
                        _sane(k.open),
                        _sane(k.high),
                        _sane(k.low),
                        _sane(k.close),
                        volume,
                        turnover,
                        0,
                        k.confirm,
                        event_time,
                        received_at,
                    )
                )
            return out
        except NOT_TYPED:
            pass
        result: Sequence[Kline] = by_dict(frame, received_at)
        return result

    return parse_kline_frame


def liquidations_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``topic`` (``allLiquidation.{symbol}``): raw frame → the
    :class:`Liquidation` list of :func:`~rxconnector.exchanges.bybit.parsers.parse_liquidations`."""
    decode = _frame_decoder(list[LiquidationEntry], topic)
    by_dict = dict_parser_of("allLiquidation", topic, p.parse_liquidations)
    sides = _LIQUIDATION_ORDER_SIDE

    def parse_liquidations_frame(frame: Any, received_at: float) -> Sequence[Liquidation]:
        try:
            message = decode(frame)
            event_time = message.ts
            return [
                _Liquidation(
                    x.s,
                    sides[x.S],
                    "",
                    _sane(x.p),
                    _sane(x.v),
                    None,
                    "FILLED",
                    x.T,
                    event_time,
                    received_at,
                )
                for x in message.data
            ]
        except NOT_TYPED:
            pass
        result: Sequence[Liquidation] = by_dict(frame, received_at)
        return result

    return parse_liquidations_frame


class _Ts(msgspec.Struct):
    ts: Int | None = None


_decode_ts: Final = msgspec.json.Decoder(_Ts).decode


def frame_ts(frame: bytes | str) -> int | None:
    """The overlap-dedupe key ``ts`` of a raw frame, as ``feeds._ts_key`` reads it from
    a decoded one: the integer, else ``None`` (also for a frame that is no JSON object).
    Only the hub's slow path (rotations) calls it."""
    try:
        return _decode_ts(frame).ts
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
