"""Models <-> Redis stream entries (the wire format other languages read).

An entry is a flat field/value list::

    type   "trade" | "order_book" | "ticker" | ... | "gap"      what ``data`` holds
    v      "1"                                                  entry format version
    seq    "123456" | ""          trade id (trades, agg trades) or book update id; "" else
    data   JSON object            the model's fields; Decimals as strings, levels as
                                  [["price", "qty"], ...], times as integer ms
    ts     "1712345678901.25"     publisher's wall clock (ms) when the entry was encoded

A ``gap`` entry is a marker, not a model: ``data`` = ``{"reason": str, "first_missing":
int | null, "last_missing": int | null}``. The consumer reports it as
:class:`~rxconnector.errors.FeedGapError` on ``errors``, as a local connector would.
"""

from __future__ import annotations

import operator
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import orjson

from rxconnector.errors import FeedGapError, ParseError, excerpt
from rxconnector.exchanges._parsing import model_builder
from rxconnector.models import (
    AvgPrice,
    BookTicker,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Ticker,
    Trade,
)

__all__ = [
    "ENTRY_VERSION",
    "FEED_TYPES",
    "GAP",
    "MODEL_TYPES",
    "EntryParts",
    "Record",
    "decode_entry",
    "decode_fields",
    "encode_gap",
    "encode_model",
    "encode_record",
    "entry_timestamp",
    "pack_batch",
    "record_of",
]

#: (type, seq, data, ts): what the publisher hands its write script per entry; the
#: script writes them as the fields ``type``, ``v``, ``seq``, ``data``, ``ts``.
EntryParts = tuple[str, str, bytes, str]

#: What the publisher buffers per entry: ``(packed, seq, ts)``. ``packed`` is the entry's
#: four values joined by newlines (``type\nseq\ndata\nts``), ready to be joined into one
#: write-script argument per batch (:func:`pack_batch`); ``seq`` and ``ts`` are kept
#: apart for the publisher's bookkeeping (exactly-once chaining, lag).
Record = tuple[bytes, str, float]

#: Bumped when a field changes meaning; consumers refuse versions they do not know.
ENTRY_VERSION = "1"
GAP = "gap"

#: entry ``type`` -> model class
MODEL_TYPES: dict[str, type[Any]] = {
    "trade": Trade,
    "order_book": OrderBook,
    "ticker": Ticker,
    "mini_ticker": MiniTicker,
    "book_ticker": BookTicker,
    "kline": Kline,
    "avg_price": AvgPrice,
    "mark_price": MarkPrice,
    "liquidation": Liquidation,
}

#: feed (Connector method) -> entry type it publishes
FEED_TYPES: dict[str, str] = {
    "trades": "trade",
    "agg_trades": "trade",
    "order_book": "order_book",
    "depth": "order_book",
    "ticker": "ticker",
    "mini_ticker": "mini_ticker",
    "book_ticker": "book_ticker",
    "klines": "kline",
    "avg_price": "avg_price",
    "mark_price": "mark_price",
    "liquidations": "liquidation",
}

_TYPE_OF: dict[type[Any], str] = {cls: name for name, cls in MODEL_TYPES.items()}
#: entry ``type`` -> the models' cheaper constructor, the one the exchange parsers use:
#: the very same frozen object for ~0.3 instead of ~1.8 µs a trade (a fifth of what a
#: RemoteConnector spends per entry); the class itself for a model with validators
_BUILDERS: dict[str, Callable[..., Any]] = {
    name: model_builder(cls) for name, cls in MODEL_TYPES.items()
}


def _decimal_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _seq_of(model: object) -> str:
    if type(model) is Trade:
        return str(model.trade_id)
    if type(model) is OrderBook or type(model) is BookTicker:
        return str(model.update_id)
    return ""


def _encode_data(model: object) -> tuple[str, str, bytes]:
    """(type, seq, data) of one model: the part of an entry that does not depend on time."""
    kind = _TYPE_OF.get(type(model))
    if kind is None:
        raise TypeError(f"{type(model).__name__} is not a publishable model")
    # One attrgetter call and one zip instead of a getattr per field; top-level Decimals
    # become strings here, so orjson calls back into Python only for book levels.
    values = dict(zip(_FIELD_NAMES[kind], _GETTERS[kind](model)))  # noqa: B905 (same names)
    for name in _DECIMAL_FIELDS[kind]:
        value = values[name]
        if value is not None:
            values[name] = str(value)
    try:
        data = orjson.dumps(values, default=_decimal_default)
    except orjson.JSONEncodeError:
        # An id wider than 64 bits (Bybit linear trade ids are UUIDs, as 128-bit ints):
        # JSON numbers cannot carry it safely, so it travels as a string.
        for name in _ID_FIELDS:
            value = values.get(name)
            if isinstance(value, int) and not -(2**63) <= value < 2**64:
                values[name] = str(value)
        data = orjson.dumps(values, default=_decimal_default)
    return kind, _seq_of(model), data


def encode_model(model: object, now_ms: float | None = None) -> EntryParts:
    """The entry parts of one model (``TypeError`` for a model that is not published)."""
    kind, seq, data = _encode_data(model)
    # orjson hands back its 4 KiB working buffer as the bytes object (measured with
    # tracemalloc: ~4,100 bytes held per 230-byte trade); a compact copy keeps a held
    # entry at its real size.
    data = memoryview(data).tobytes()
    stamp = time.time() * 1000.0 if now_ms is None else now_ms
    return (kind, seq, data, repr(stamp))


def _trade_data(trade: Trade) -> bytes:
    """A trade's ``data``: the same JSON as :func:`_encode_data` builds (a test pins it),
    from one literal dict instead of the per-field loop (trades are most of the
    entries; this halves their encoding). ``JSONEncodeError`` for ids over 64 bits."""
    return orjson.dumps(
        {
            "symbol": trade.symbol,
            "trade_id": trade.trade_id,
            "price": str(trade.price),
            "quantity": str(trade.quantity),
            "side": trade.side,
            "time": trade.time,
            "event_time": trade.event_time,
            "received_at": trade.received_at,
            "first_trade_id": trade.first_trade_id,
            "last_trade_id": trade.last_trade_id,
            "backfilled": trade.backfilled,
        }
    )


def encode_record(model: object, now_ms: float | None = None) -> Record:
    """The publisher's buffered form of one model (see :data:`Record`).

    Same fields as :func:`encode_model`, packed once here instead of once per argument
    in the Redis client: the formatting also makes the compact copy of orjson's buffer.
    """
    if type(model) is Trade:
        try:
            kind, seq, data = "trade", str(model.trade_id), _trade_data(model)
        except orjson.JSONEncodeError:  # an id wider than 64 bits: the general path
            kind, seq, data = _encode_data(model)
    else:
        kind, seq, data = _encode_data(model)
    stamp = time.time() * 1000.0 if now_ms is None else now_ms
    return (b"%s\n%s\n%s\n%r" % (_KIND_BYTES[kind], seq.encode(), data, stamp), seq, stamp)


def record_of(parts: EntryParts) -> Record:
    """The :data:`Record` of entry parts (gap markers are built as parts)."""
    kind, seq, data, ts = parts
    return (b"\n".join((kind.encode(), seq.encode(), data, ts.encode())), seq, float(ts))


def pack_batch(packed: Iterable[bytes]) -> bytes:
    """Packed entries as the write script's one batch argument (newline separated).

    A newline never occurs inside a value: ``type``, ``seq`` and ``ts`` are names and
    numbers, and ``data`` is compact JSON (orjson escapes control characters in strings
    and adds no whitespace). The script refuses a batch whose value count is not a
    multiple of four.
    """
    return b"\n".join(packed)


def encode_gap(
    reason: str,
    first_missing: int | None = None,
    last_missing: int | None = None,
    now_ms: float | None = None,
) -> EntryParts:
    """A gap marker entry."""
    data = orjson.dumps(
        {"reason": reason, "first_missing": first_missing, "last_missing": last_missing}
    )
    stamp = time.time() * 1000.0 if now_ms is None else now_ms
    return (GAP, "", data, repr(stamp))


#: Integer fields that may exceed 64 bits (sent as strings then).
_ID_FIELDS = ("trade_id", "first_trade_id", "last_trade_id")


def _to_id(value: Any) -> Any:
    return int(value) if isinstance(value, str) else value


def _to_decimal(value: Any) -> Decimal:
    return Decimal(value)


def _to_optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _to_levels(value: Any) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(p), Decimal(q)) for p, q in value)


def _converters(cls: type[Any]) -> dict[str, Callable[[Any], Any]]:
    """Per-field converters from JSON values back to the model's types."""
    hints = typing.get_type_hints(cls)
    found: dict[str, Callable[[Any], Any]] = {}
    for field in attrs.fields(cls):
        hint = hints[field.name]
        if hint is Decimal:
            found[field.name] = _to_decimal
        elif hint == (Decimal | None):
            found[field.name] = _to_optional_decimal
        elif typing.get_origin(hint) is tuple:
            found[field.name] = _to_levels
        elif field.name in _ID_FIELDS:
            found[field.name] = _to_id
    return found


_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in attrs.fields(cls)) for name, cls in MODEL_TYPES.items()
}
_GETTERS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    name: operator.attrgetter(*fields) for name, fields in _FIELD_NAMES.items()
}
_CONVERTERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    name: _converters(cls) for name, cls in MODEL_TYPES.items()
}
_KIND_BYTES: dict[str, bytes] = {kind: kind.encode() for kind in (*MODEL_TYPES, GAP)}
#: fields holding a Decimal (or None): written as strings before orjson sees them
_DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(f for f, c in found.items() if c in (_to_decimal, _to_optional_decimal))
    for name, found in _CONVERTERS.items()
}
#: the same converters by position, for data whose keys are the fields in order (ids
#: apart: they need converting only in the rare case they travelled as strings)
_CONVERT_AT: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {
    name: tuple(
        (_FIELD_NAMES[name].index(f), Decimal if c is _to_decimal else c)  # no wrapper frame
        for f, c in found.items()
        if c is not _to_id
    )
    for name, found in _CONVERTERS.items()
}
_IDS_AT: dict[str, tuple[int, ...]] = {
    name: tuple(_FIELD_NAMES[name].index(f) for f, c in found.items() if c is _to_id)
    for name, found in _CONVERTERS.items()
}
_KIND_OF: dict[bytes | str, str] = {
    **{kind: kind for kind in (*MODEL_TYPES, GAP)},
    **{kind.encode(): kind for kind in (*MODEL_TYPES, GAP)},
}
_VERSIONS = (ENTRY_VERSION, ENTRY_VERSION.encode())


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: Mapping[Any, Any], name: str, raw_name: bytes) -> Any:
    value = fields.get(raw_name)
    return fields.get(name) if value is None else value


def decode_entry(topic: str, fields: Mapping[Any, Any]) -> object:
    """A model, or a :class:`FeedGapError` for a gap marker; ``ParseError`` if malformed.

    ``fields`` is the entry as redis-py returns it (bytes or str keys and values).
    """
    kind = _field(fields, "type", b"type")
    version = _field(fields, "v", b"v")
    raw = _field(fields, "data", b"data")
    if version not in _VERSIONS:
        raise ParseError(f"{topic}: entry format version {_text(version)!r} is not {ENTRY_VERSION}")
    if raw is None:
        raise ParseError(f"{topic}: entry without data", repr(dict(fields))[:200])
    return _decode_data(topic, _KIND_OF.get(kind) or _text(kind), raw)


def decode_fields(topic: str, fields: Sequence[Any]) -> object:
    """:func:`decode_entry` of an entry as the flat ``[name, value, ...]`` list Redis
    sends (what a reader gets without redis-py building a dict per entry).

    Entries in the layout the publisher writes take the direct path; any other layout
    (fields reordered or added by another writer) is decoded as a mapping.
    """
    if (
        len(fields) == 10
        and fields[0] == b"type"
        and fields[2] == b"v"
        and fields[6] == b"data"
        and fields[3] in _VERSIONS
    ):
        kind = _KIND_OF.get(fields[1])
        if kind is not None:
            return _decode_data(topic, kind, fields[7])
    return decode_entry(topic, dict(zip(fields[::2], fields[1::2], strict=False)))


def _decode_data(topic: str, kind: str, raw: Any) -> object:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"{topic}: entry data is not JSON: {exc}", _text(raw)) from exc
    if kind == GAP:
        if not isinstance(data, dict):  # a hostile entry: this entry's ParseError only
            raise ParseError(f"{topic}: gap entry data is not an object", _text(raw))
        reason = data.get("reason", "gap")
        return FeedGapError(
            topic,
            reason if isinstance(reason, str) else excerpt(reason),
            first_missing=data.get("first_missing"),
            last_missing=data.get("last_missing"),
        )
    build = _BUILDERS.get(kind)
    if build is None:
        raise ParseError(f"{topic}: unknown entry type {kind!r}", _text(raw))
    try:
        if isinstance(data, dict) and tuple(data) == _FIELD_NAMES[kind]:
            # every field, in the order the publisher writes them: positional
            # construction (half the cost of keyword arguments for a frozen attrs class)
            values = list(data.values())
            for index, convert in _CONVERT_AT[kind]:
                values[index] = convert(values[index])
            for index in _IDS_AT[kind]:
                if type(values[index]) is str:
                    values[index] = int(values[index])
            return build(*values)
        for name, convert in _CONVERTERS[kind].items():
            if name in data:
                data[name] = convert(data[name])
        return build(**data)
    except Exception as exc:
        raise ParseError(f"{topic}: bad {kind} entry: {exc!r}", _text(raw)) from exc


def entry_timestamp(fields: Mapping[Any, Any]) -> float | None:
    """The publisher's encode time of an entry (ms), for latency measurement."""
    raw = fields.get("ts", fields.get(b"ts"))
    try:
        return float(_text(raw)) if raw is not None else None
    except ValueError:
        return None
