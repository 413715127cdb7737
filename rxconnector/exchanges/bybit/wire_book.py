"""Bybit v5 order-book frames decoded in one pass into typed wire schemas (issue #12).

Every feed of ``orderbook.{1|50|200|1000}.{S}`` and ``orderbook.full.{S}`` reads its
frames here once the topic is *raw* (the hub hands a topic's frames over undecoded as
soon as one of its feeds has a ``parse_frame``, found by
:meth:`~rxconnector.exchanges.bybit.ws_protocol.BybitWsProtocol.data_frame_head`; then
every feed of that topic gets bytes). A :class:`msgspec.Struct` decoder per topic reads
``{"topic", "type", "ts", "data": {"s", "b", "a", "u", "seq"}}`` in C: ``topic`` is a
``Literal`` of the feed's topic (a frame of another topic, or one repeating the key with
a foreign last value, fails in the decoder), ``type`` is ``"snapshot"`` or ``"delta"``,
the ids are integers in 0..2^63-1, and the two level arrays are kept as raw JSON text
(``msgspec.Raw``: validated and sliced, not built), then packed by
:func:`~rxconnector.exchanges.wire_levels.pack_levels`, which checks every number as
:func:`~rxconnector.exchanges._parsing.parse_levels` does (finite, within
1e±:data:`~rxconnector.exchanges._parsing.MAX_DECIMAL_EXPONENT`, arrays of two).

What each feed gets (figures: ``benchmarks/bench_decode_bybit_book.py``, RESULTS.md
"Typed decoding on Bybit order books"):

* the maintained book (``book_diffs``): :func:`book_frame_parser` → a
  :class:`~rxconnector.exchanges.depth_events.PackedDepthUpdate` whose levels only the
  local book reads (no ``Decimal`` per level on this path);
* ``diff_depth`` / ``full_depth``: :func:`depth_update_frame_parser` →
  :class:`~rxconnector.models.DepthUpdate`, equal to
  :func:`~rxconnector.exchanges.bybit.parsers.parse_depth` of the decoded message;
* ``depth`` / ``book_ticker``: :func:`merged_book_frame_parser` /
  :func:`book_ticker_frame_parser` feed the topic's
  :class:`~rxconnector.exchanges.bybit.parsers.BybitBookMerger`, as the dict parsers do.

Stricter than the dict parsers where those are lax (a hostile frame is refused, never
half-read): ``u``, ``seq`` and ``ts`` must be JSON integers (``int("5")`` and
``int(True)`` pass the dict parsers), ``s`` a string, ``type`` one of the two documented
values. Everything malformed is one :class:`~rxconnector.errors.ParseError` with a
bounded excerpt of the frame.

The feeds give these readers to their specs only where they are the faster path: with
the compiled core's packer (:data:`TYPED_IS_FASTER`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal, cast

import msgspec

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MALFORMED, bounded_reason, model_builder
from rxconnector.exchanges.bybit.parsers import BybitBookMerger, _top_of_book
from rxconnector.exchanges.bybit.wire import DECODERS_KEPT
from rxconnector.exchanges.depth_events import PackedDepthUpdate
from rxconnector.exchanges.wire_levels import PackedLevels, pack_levels, pack_levels_py
from rxconnector.models import BookTicker, DepthUpdate, Level, OrderBook

__all__ = [
    "MAX_ID",
    "TYPED_IS_FASTER",
    "BookData",
    "book_frame_parser",
    "book_ticker_frame_parser",
    "depth_update_frame_parser",
    "frame_seq",
    "merged_book_frame_parser",
]

FrameParser = Callable[[Any, float], Any]

#: Whether the feeds use these readers (``exchanges/bybit/feeds.py``): only with the
#: compiled core's packer. With it, every order-book feed reads a frame 2.2-17x faster
#: than ``orjson`` + the dict parser; with the pure-Python packer (``RXC_PURE_PYTHON``,
#: or no compiler at install time), which is ``orjson.loads`` + ``parse_levels`` of each
#: side, the extra decoder pass makes them up to 17 % slower, so the dict parsers stay
#: (benchmarks/RESULTS.md, "Typed decoding on Bybit order books (seventh session)").
TYPED_IS_FASTER: bool = pack_levels is not pack_levels_py

#: The largest ``u``/``seq``/``ts`` a frame may carry (64-bit signed, as everywhere).
MAX_ID: Final = 2**63 - 1

_UInt63 = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]


class BookData(msgspec.Struct, gc=False):
    """``data`` of an ``orderbook.*`` message (PROTOCOL.md §C1): ids typed, each side
    the raw JSON text of its ``[[price, size], ...]`` array. ``seq`` is optional here
    because the merged feeds (``depth``, ``book_ticker``) never read it (nor does their
    dict parser); the diff parsers require it, as :func:`parse_depth` does."""

    s: str
    b: msgspec.Raw
    a: msgspec.Raw
    u: _UInt63
    seq: _UInt63 | None = None


_Kind = Literal["snapshot", "delta"]


@functools.lru_cache(maxsize=DECODERS_KEPT)
def _frame_decoder(topic: str) -> Callable[[Any], Any]:
    """``decode`` of ``{"topic": <topic>, "type": ..., "ts": ..., "data": BookData}``."""
    topic_type = cast(Any, Literal)[topic]
    frame = msgspec.defstruct(
        "_BybitBookFrame",
        [("topic", topic_type), ("type", _Kind), ("ts", _UInt63), ("data", BookData)],
        gc=False,
    )
    return msgspec.json.Decoder(frame).decode


def _malformed(kind: str, frame: Any, reason: str) -> ParseError:
    return ParseError(f"malformed bybit {kind} frame ({bounded_reason(reason)})", frame)


def _undecodable(kind: str, frame: Any, error: Exception) -> ParseError:
    reason = str(error)
    if reason.endswith("`$.topic`"):
        reason = f"the topic is not this feed's: {bounded_reason(reason)}"
    return _malformed(kind, frame, reason)


def _decoded(decode: Callable[[Any], Any], kind: str, frame: Any) -> Any:
    try:
        return decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _undecodable(kind, frame, exc) from exc


def _packed(kind: str, frame: Any, data: BookData) -> tuple[PackedLevels, PackedLevels]:
    try:
        return pack_levels(data.b), pack_levels(data.a)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise _malformed(kind, frame, f"bad level: {exc}") from exc


def _as_tuple(levels: PackedLevels) -> tuple[Level, ...]:
    """Packed levels as the models' ``((Decimal, Decimal), ...)``: the pure-Python
    packer's result already is one; the compiled one builds it in C."""
    if type(levels) is tuple:
        return cast(tuple[Level, ...], levels)
    return cast(tuple[Level, ...], levels.as_tuple())


def _seq_of(kind: str, frame: Any, data: BookData) -> int:
    seq = data.seq
    if seq is None:
        raise _malformed(kind, frame, "missing key 'seq'")
    return seq


_Packed = PackedDepthUpdate
_DepthUpdate = model_builder(DepthUpdate)


def book_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of the maintained book's ``topic``: raw frame →
    :class:`~rxconnector.exchanges.depth_events.PackedDepthUpdate` (``first`` and
    ``final_update_id`` both ``u``, ``sequence`` = ``seq``, ``event_time`` = ``ts``,
    ``is_snapshot`` for a snapshot or ``u == 1``, levels packed for the local book).

    A refused frame is skipped (one ``ParseError``); the sync rule then meets the
    missing ``u`` like any lost message (a gap once the topic is known to be
    sequenced: a resync from the next snapshot).
    """
    decode = _frame_decoder(topic)

    def parse_book_frame(frame: Any, received_at: float) -> PackedDepthUpdate:
        message = _decoded(decode, "orderbook", frame)
        d = message.data
        seq = _seq_of("orderbook", frame, d)
        bids, asks = _packed("orderbook", frame, d)
        u = d.u
        snapshot = message.type == "snapshot" or u == 1
        return _Packed(d.s, u, u, bids, asks, message.ts, received_at, None, seq, snapshot)

    return parse_book_frame


def depth_update_frame_parser(topic: str) -> FrameParser:
    """``parse_frame`` of ``diff_depth`` / ``full_depth`` on ``topic``: raw frame →
    :class:`~rxconnector.models.DepthUpdate`, equal to
    :func:`~rxconnector.exchanges.bybit.parsers.parse_depth` of the decoded message."""
    decode = _frame_decoder(topic)

    def parse_depth_update_frame(frame: Any, received_at: float) -> DepthUpdate:
        message = _decoded(decode, "orderbook", frame)
        d = message.data
        seq = _seq_of("orderbook", frame, d)
        bids, asks = _packed("orderbook", frame, d)
        u = d.u
        return _DepthUpdate(
            d.s,
            u,
            u,
            _as_tuple(bids),
            _as_tuple(asks),
            message.ts,
            received_at,
            None,
            seq,
            message.type == "snapshot" or u == 1,
        )

    return parse_depth_update_frame


def _merge(
    merger: BybitBookMerger, kind: str, message: Any, frame: Any, received_at: float, levels: int
) -> OrderBook:
    d = message.data
    bids, asks = _packed(kind, frame, d)
    u = d.u
    snapshot = message.type == "snapshot" or u == 1
    try:
        return merger.apply_levels(d.s, u, message.ts, snapshot, bids, asks, received_at, levels)
    except MALFORMED as exc:  # a delta before any snapshot
        raise _malformed(kind, frame, f"{type(exc).__name__}: {exc}") from exc


def merged_book_frame_parser(topic: str, merger: BybitBookMerger, levels: int) -> FrameParser:
    """``parse_frame`` of ``depth(symbol, levels)`` on ``topic``: the frame merged into
    the topic's ``merger``, the top ``levels`` as :class:`~rxconnector.models.OrderBook`
    (as :meth:`BybitBookMerger.parser` does with the decoded message)."""
    decode = _frame_decoder(topic)

    def parse_merged_frame(frame: Any, received_at: float) -> OrderBook:
        message = _decoded(decode, "orderbook", frame)
        return _merge(merger, "orderbook", message, frame, received_at, levels)

    return parse_merged_frame


def book_ticker_frame_parser(topic: str, merger: BybitBookMerger) -> FrameParser:
    """``parse_frame`` of ``book_ticker`` (``orderbook.1``): the frame merged into the
    topic's ``merger``, its top of book as one :class:`~rxconnector.models.BookTicker`
    (none while a side is empty), as
    :func:`~rxconnector.exchanges.bybit.parsers.book_ticker_parser` does."""
    decode = _frame_decoder(topic)

    def parse_book_ticker_frame(frame: Any, received_at: float) -> Sequence[BookTicker]:
        message = _decoded(decode, "orderbook.1", frame)
        book = _merge(merger, "orderbook.1", message, frame, received_at, 1)
        return _top_of_book(
            book.symbol, book.bids, book.asks, book.update_id, book.event_time, received_at
        )

    return parse_book_ticker_frame


class _SeqData(msgspec.Struct):
    seq: int | None = None


class _SeqFrame(msgspec.Struct):
    data: _SeqData


_decode_seq = msgspec.json.Decoder(_SeqFrame).decode


def frame_seq(frame: Any) -> int | None:
    """``data.seq`` of a raw frame (the overlap-dedupe key of the hub's slow path);
    ``None`` when it cannot be read."""
    try:
        seq: int | None = _decode_seq(frame).data.seq
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return seq
