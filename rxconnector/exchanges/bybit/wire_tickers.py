"""Bybit v5 ``tickers.{symbol}`` frames read in one pass for ``ticker``, ``mini_ticker``
and ``mark_price`` (issue #12; the other public feeds are in :mod:`.wire`).

The three feeds of a ``tickers`` topic share its :class:`~rxconnector.exchanges.bybit.
parsers.BybitTickerMerger` (Spot sends snapshots only; linear/inverse a snapshot, then
deltas of the changed fields). A raw topic hands every feed of it the same ``bytes``
object per frame, so the topic's :class:`TickerFrames` decodes and merges a frame once
and the other feeds read that result (the merge is idempotent: reading the result again
is what merging again would give).

The frame decodes in one msgspec pass (``topic`` a ``Literal`` of the feed's topic, ``ts``
an integer, ``data`` a ``dict`` of JSON strings), not into ``Decimal`` fields: msgspec
builds a ``Decimal`` at about twice the cost of ``Decimal(str)`` (≈0.26 µs a number) and
a ticker carries many numbers no feed reads (open interest, 24 h change...). So the
merger holds exactly what the dict parsers put there (the frame's strings), with its
rules unchanged (a snapshot replaces, a delta updates, a delta before any snapshot is
refused). Where the time goes instead:

* each feed converts only the numbers a delta carries and keeps the others from its
  previous frame (:class:`_FeedNumbers`), when that frame was the merge just before this
  one; otherwise (a snapshot, a frame it missed, a message a dict parser merged, an
  error) it reads every field again;
* the topic remembers the strings it turned into ``Decimal`` (a snapshot resends every
  field, most unchanged; the topic's other feeds read the same fields).

Numbers follow :func:`~rxconnector.exchanges._parsing.to_decimal`'s rule where a feed
reads them, so a bad one poisons only the feeds reading that field, exactly as on the
dict path. A frame the schema does not take (a ``data`` value that is not a string, a
missing ``ts``, a broken frame) goes to the dict parsers, as in :mod:`.wire`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, Literal, cast

import msgspec

from rxconnector.exchanges._parsing import (
    MALFORMED,
    MAX_DECIMAL_EXPONENT,
    model_builder,
    raise_malformed,
    to_decimal,
)
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit.wire import (
    DECODERS_KEPT,
    NOT_TYPED,
    FrameParser,
    Int,
    dict_parser_of,
)
from rxconnector.models import MarkPrice, MiniTicker, Ticker

__all__ = [
    "TickerFrames",
    "forgetting",
    "mark_price_frame_parser",
    "mini_ticker_frame_parser",
    "ticker_frame_parser",
]


@functools.lru_cache(maxsize=DECODERS_KEPT)
def _ticker_decoder(topic: str) -> Callable[[Any], Any]:
    """``decode`` of a ``tickers`` frame of ``topic`` (``type`` ``snapshot`` or
    ``delta``, as the dict parsers require; every ``data`` value a JSON string)."""
    topic_type = cast(Any, Literal)[topic]
    frame = msgspec.defstruct(
        "_TickerFrame",
        [
            ("topic", topic_type),
            ("ts", Int),
            ("data", dict[str, str]),
            ("type", Literal["snapshot", "delta"]),
        ],
        gc=False,
    )
    return msgspec.json.Decoder(frame).decode


#: (is a snapshot, ts, the frame's own ``data``, the merged ticker, the merge's number).
TickerRead = tuple[bool, int, dict[str, str], dict[str, Any], int]


class TickerFrames:
    """One ``tickers`` topic's typed reader: the topic's merger and the last frame read.

    :meth:`read` decodes a raw frame and merges it, or returns the result of the frame
    it read last when given that very frame again (the next feed of the topic). Merges
    are numbered (``version``); a message merged by a dict parser counts as one too and
    makes the reader forget its last result (:meth:`forget`): the merger's state moved
    on without it. One per topic, on the event loop's thread.
    """

    __slots__ = ("_decode", "_frame", "_read", "merger", "number", "optional", "topic", "version")

    def __init__(self, merger: p.BybitTickerMerger, topic: str) -> None:
        self.merger = merger
        self.topic = topic
        self.version = 0
        #: ``to_decimal`` / ``opt_decimal`` remembering the last strings they read
        self.number, self.optional = _remembering()
        self._decode = _ticker_decoder(topic)
        self._frame: Any = None
        self._read: TickerRead | None = None

    def read(self, frame: Any) -> TickerRead:
        """Decode and merge ``frame`` (once); raises one of the fast path's exceptions
        (``msgspec.DecodeError``, ``ValueError`` for a delta before any snapshot) when
        the dict path must judge it."""
        if frame is self._frame and self._read is not None:
            return self._read
        # from here on the merger's state is not the last read's (forget(), inlined)
        self._frame = self._read = None
        self.version += 1
        message = self._decode(frame)
        data = message.data
        kind = message.type
        merged = self.merger.merge({"type": kind, "data": data})
        read = self._read = (kind != "delta", message.ts, data, merged, self.version)
        self._frame = frame
        return read

    def forget(self) -> None:
        """Drop the last frame's result and count a merge (a dict parser merged another
        message, or a new frame is being merged)."""
        self._frame = self._read = None
        self.version += 1


_is_finite = Decimal.is_finite
_adjusted = Decimal.adjusted
#: The allowed ``Decimal.adjusted()`` values (to_decimal's rule): one set lookup.
_EXPONENTS: Final = frozenset(range(-MAX_DECIMAL_EXPONENT, MAX_DECIMAL_EXPONENT + 1))

#: Strings remembered per topic with their ``Decimal`` (then forgotten all at once): a
#: ticker frame repeats most of its numbers (a snapshot resends every field, and the
#: topic's other feeds read the same ones).
_REMEMBERED: Final = 256


def _remembering() -> tuple[Callable[[Any], Decimal], Callable[[Any], Decimal | None]]:
    """``(to_decimal, opt_decimal)`` that remember the strings they converted (only
    strings, only numbers that passed the rule: a bad one raises every time)."""
    known: dict[str, Decimal] = {}
    recall = known.get

    def number(raw: Any) -> Decimal:
        if type(raw) is not str:
            return to_decimal(raw)  # what a dict parser merged: read as it reads it
        value = recall(raw)
        if value is None:
            value = Decimal(raw)  # to_decimal's rule, without its call on the hot path
            if not (_is_finite(value) and _adjusted(value) in _EXPONENTS):
                return to_decimal(raw)  # raises its error
            if len(known) >= _REMEMBERED:
                known.clear()
            known[raw] = value
        return value

    def optional(raw: Any) -> Decimal | None:
        if raw is None or raw == "":
            return None
        return number(raw)

    return number, optional


#: How a feed reads one ticker field: (name, converter, optional). A required field
#: is ``convert(merged[name])`` (missing: ``KeyError``), an optional one
#: ``convert(merged.get(name))``, as the dict parsers read them.
FieldRead = tuple[str, Callable[[Any], Any], bool]


class _FeedNumbers:
    """One feed's numbers of the last frame it read, in its model's order, so that a
    delta converts only the fields it carries (a delta's absent field is unchanged).

    The previous numbers are used only when they belong to the merge just before this
    one (``version``), of the same symbol, and this frame is a delta; anything else
    reads every field of the merged ticker again. An error forgets them.
    """

    __slots__ = ("_convert", "_fields", "_index", "_symbol", "_values", "_version")

    def __init__(self, fields: tuple[FieldRead, ...]) -> None:
        self._fields = fields
        self._index = {name: i for i, (name, _c, _o) in enumerate(fields)}
        self._convert = tuple(convert for _n, convert, _o in fields)
        self._values: list[Any] | None = None
        self._version = -1
        self._symbol: Any = None

    def read(self, read: TickerRead) -> list[Any]:
        """The feed's numbers after ``read`` (raises what the dict parsers raise)."""
        snapshot, _ts, data, merged, version = read
        values, self._values = self._values, None
        symbol = merged["symbol"]
        if values is None or snapshot or version != self._version + 1 or symbol != self._symbol:
            get = merged.get
            values = [
                convert(get(name)) if optional else convert(merged[name])
                for name, convert, optional in self._fields
            ]
        else:  # only the feed's fields this delta carries (a set intersection, in C)
            values = values.copy()
            index, converters = self._index, self._convert
            for name in data.keys() & index.keys():
                at = index[name]
                values[at] = converters[at](data[name])
        self._values, self._version, self._symbol = values, version, symbol
        return values

    def unchanged(self, read: TickerRead) -> None:
        """``read`` is a delta that carries none of the feed's fields: its numbers stay
        valid through it (when they were valid before it)."""
        if self._version + 1 == read[4] and read[3]["symbol"] == self._symbol:
            self._version = read[4]


def _ticker_fields(frames: TickerFrames, inverse: bool) -> tuple[FieldRead, ...]:
    """:class:`~rxconnector.models.Ticker`'s numbers: last, bid/ask (optional), open,
    high, low, volume, quote volume (volume and turnover swapped on inverse)."""
    volume, quote = ("turnover24h", "volume24h") if inverse else ("volume24h", "turnover24h")
    number, optional = frames.number, frames.optional
    return (
        ("lastPrice", number, False),
        ("bid1Price", optional, True),
        ("bid1Size", optional, True),
        ("ask1Price", optional, True),
        ("ask1Size", optional, True),
        ("prevPrice24h", number, False),
        ("highPrice24h", number, False),
        ("lowPrice24h", number, False),
        (volume, number, False),
        (quote, number, False),
    )


def _mini_ticker_fields(frames: TickerFrames, inverse: bool) -> tuple[FieldRead, ...]:
    """:class:`~rxconnector.models.MiniTicker`'s numbers: close, open, high, low, volumes."""
    volume, quote = ("turnover24h", "volume24h") if inverse else ("volume24h", "turnover24h")
    number = frames.number
    return (
        ("lastPrice", number, False),
        ("prevPrice24h", number, False),
        ("highPrice24h", number, False),
        ("lowPrice24h", number, False),
        (volume, number, False),
        (quote, number, False),
    )


def _mark_price_fields(frames: TickerFrames) -> tuple[FieldRead, ...]:
    """:class:`~rxconnector.models.MarkPrice`'s fields after the symbol: mark, index,
    estimated settle price, funding rate, next funding time (an int)."""
    return (
        ("markPrice", frames.number, False),
        ("indexPrice", frames.optional, True),
        ("predictedDeliveryPrice", frames.optional, True),
        ("fundingRate", frames.optional, True),
        ("nextFundingTime", p._opt_int, True),
    )


#: The fields whose change in a delta makes ``mark_price`` emit (as the dict parser).
_MARK_FIELDS: Final = frozenset(
    {"markPrice", "indexPrice", "predictedDeliveryPrice", "fundingRate", "nextFundingTime"}
)

# built from a feed's number list (``*numbers``): typed as taking any arguments
_Ticker = cast(Callable[..., Ticker], model_builder(Ticker))
_MiniTicker = cast(Callable[..., MiniTicker], model_builder(MiniTicker))
_MarkPrice = cast(Callable[..., MarkPrice], model_builder(MarkPrice))


def forgetting(frames: TickerFrames, parse: FrameParser) -> FrameParser:
    """``parse`` (a dict parser of the topic, for decoded messages) that makes ``frames``
    forget its last read first: the message moves the merger on without it."""
    forget = frames.forget

    def parse_decoded(message: Any, received_at: float) -> Any:
        forget()
        return parse(message, received_at)

    return parse_decoded


def _by_dict(frames: TickerFrames, parse: FrameParser) -> FrameParser:
    """The dict path for a raw frame of the topic the typed path did not take."""
    return forgetting(frames, dict_parser_of("tickers", frames.topic, parse))


def _whole_ticker_parser(
    frames: TickerFrames,
    dict_parse: FrameParser,
    fields: tuple[FieldRead, ...],
    build: Callable[..., Any],
) -> FrameParser:
    """A feed that emits one model per frame from the symbol, its ``fields`` in the
    model's order and ``ts`` (``ticker``, ``mini_ticker``); ``dict_parse`` reads the
    frames the typed path does not take."""
    by_dict = _by_dict(frames, dict_parse)
    read = frames.read
    numbers = _FeedNumbers(fields).read

    def parse_frame(frame: Any, received_at: float) -> Any:
        try:
            result = read(frame)
        except NOT_TYPED:
            return by_dict(frame, received_at)
        try:
            return build(result[3]["symbol"], *numbers(result), result[1], received_at)
        except MALFORMED as exc:
            raise_malformed("bybit", "tickers", frame, exc)

    return parse_frame


def ticker_frame_parser(frames: TickerFrames, *, inverse: bool = False) -> FrameParser:
    """``parse_frame`` of ``ticker`` on ``frames.topic``: raw frame → the :class:`Ticker`
    of :func:`~rxconnector.exchanges.bybit.parsers.ticker_parser` on the same merger."""
    dict_parse = p.ticker_parser(frames.merger, inverse=inverse)
    return _whole_ticker_parser(frames, dict_parse, _ticker_fields(frames, inverse), _Ticker)


def mini_ticker_frame_parser(frames: TickerFrames, *, inverse: bool = False) -> FrameParser:
    """``parse_frame`` of ``mini_ticker`` on ``frames.topic``: raw frame → the
    :class:`MiniTicker` of :func:`~rxconnector.exchanges.bybit.parsers.mini_ticker_parser`."""
    dict_parse = p.mini_ticker_parser(frames.merger, inverse=inverse)
    fields = _mini_ticker_fields(frames, inverse)
    return _whole_ticker_parser(frames, dict_parse, fields, _MiniTicker)


def mark_price_frame_parser(frames: TickerFrames) -> FrameParser:
    """``parse_frame`` of ``mark_price`` on ``frames.topic``: raw frame → the
    :class:`MarkPrice` tuple of :func:`~rxconnector.exchanges.bybit.parsers.mark_price_parser`
    (nothing for a delta that touches none of its fields)."""
    by_dict = _by_dict(frames, p.mark_price_parser(frames.merger))
    read = frames.read
    feed_numbers = _FeedNumbers(_mark_price_fields(frames))
    numbers, unchanged = feed_numbers.read, feed_numbers.unchanged

    def parse_mark_price_frame(frame: Any, received_at: float) -> Sequence[MarkPrice]:
        try:
            result = read(frame)
        except NOT_TYPED:
            plain: Sequence[MarkPrice] = by_dict(frame, received_at)
            return plain
        if not result[0]:
            data = result[2]
            if data.keys().isdisjoint(_MARK_FIELDS):
                unchanged(result)
                return ()
        try:
            values = numbers(result)
            return (_MarkPrice(result[3]["symbol"], *values, result[1], received_at),)
        except MALFORMED as exc:
            raise_malformed("bybit", "tickers", frame, exc)

    return parse_mark_price_frame
