"""The recording file format: what ``rxconnector record`` writes and ``replay`` reads.

A recording is a compressed JSON-lines file (zstd; gzip when its name ends in ``.gz``,
and old gzip files are read as before). The first line is a JSON object, the header;
every other line is a JSON array whose first element says what it is and whose
second is the local receive time in epoch milliseconds (the same clock as the models'
``received_at``). Lines are written in the order things happened on the event loop, so
reading the file top to bottom *is* the live order of events::

    {"format": "rxconnector-recording", "version": 1, "exchange": "binance", ...}
    ["f", 1700000000123.4, "binance-1", "{\"stream\":\"btcusdt@trade\",\"data\":{...}}"]
    ["g", t, connection_id, frame]              a frame handled in the same event-loop step
                                                as the previous one (see below)
    ["b", t, connection_id, "<base64>"]         a frame that is not UTF-8 text
    ["d", t, connection_id, frame]              a frame the live hub did not deliver
    ["D", t, connection_id, "<base64>"]         ... binary
    ["x", t, topic, reason]                     the next message of ``topic`` was preceded
                                                by a StreamRestart marker
    ["u", t, topic]                             the first subscriber of ``topic`` arrived
    ["s", t, <ConnectionEvent>]                 a connection-state event
    ["o", t, <ClockOffset>]                     a clock measurement
    ["q", t, call_id, key]                      a REST call was subscribed
    ["n", t, call_id, <item>]                   ... it emitted ``item``
    ["c", t, call_id]                           ... it completed
    ["e", t, call_id, <exception>]              ... it failed
    ["end", t]                                  the recorder stopped cleanly

Why raw frames and not models: replay must go through the *same* decoding, routing,
parsing and order-book code as live data, so the recording keeps what the exchange
sent, byte for byte (text frames verbatim; binary frames base64). REST answers are kept
one level higher, as the models the venue REST object produced (``q``/``n``/``c``/``e``),
because they are consumed by the connector's own machinery (order-book snapshots, trade
back-fill) whose *timing* matters more than their wire shape: the replayed snapshot
arrives exactly between the same two frames as it did live.

Why ``d`` lines: the live hub drops some frames it receives (control messages, the
old connection's copies during a make-before-break rotation, frames of a topic just
unsubscribed). A recording connector notes which frames the hub actually delivered, so
replay delivers exactly those, without re-deriving the hub's connection bookkeeping.
A writer used without that tracking (``track_delivery=False``) writes every frame as
delivered. Likewise the ``x`` line is written *before* the frame whose message the
marker preceded, so replay emits it at the same place.

Why ``g`` lines: frames that arrive in one socket read are handled in one event-loop
step, with no timer or ``call_soon`` callback running between them; a ``conflate``d
order book then emits only the state after the last of them. Replay delivers a ``g``
frame right after the previous frame without advancing virtual time (so nothing
scheduled runs in between), reproducing that coalescing exactly.

Why gzip JSON lines: appendable while recording, streamable while replaying (memory
stays flat for any file size), readable with ``zcat | jq``, and a recording cut short
by a crash is still readable up to its last complete line. Compressed data only reaches
the file when the compressor emits a block, so ``RecordingWriter.sync``
(:mod:`rxconnector.replay.writer`, called every second by the recording connector) ends
the current deflate block with a sync flush: everything written before it is then
decodable from the file alone, by any gzip reader, even if the process is killed
(SIGKILL) before the trailer is written. A sync
costs a few bytes and nothing per line. (A sync flush, not a full one: a cut file is
read from its start, so the dictionary need not restart at each sync point, which only
helps to resume decoding after damage in the middle, at a cost in compression.)

Why zstd by default: the same properties (``zstdcat | jq``; a stream of blocks) at a
fraction of gzip's CPU per line on the event loop and a better ratio (measured in
benchmarks/RESULTS.md, "Recording"). The sync is a ``FLUSH_BLOCK``: the blocks so far
are complete and decodable, the frame stays open. A killed recorder leaves a frame
without its end; the reader returns every complete block and marks the file
``truncated``, like a gzip file without its trailer.

Secrets never enter a recording: the header's config omits ``api_key`` and
``api_secret``, and a REST call is written as its method and arguments (symbol, order
id...) and what it returned, never as the signed query, headers or signature.

Values inside lines (models, decimals, enums, exceptions) use a small tagged encoding
(:func:`encode_value` / :func:`decode_value`) that round-trips every model exactly.
"""

from __future__ import annotations

import base64
import builtins
import enum
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import attrs
import orjson

from rxconnector import errors as _errors
from rxconnector import models as _models
from rxconnector._version import __version__
from rxconnector.config import Config
from rxconnector.errors import RecordingError

__all__ = [
    "COMPRESSIONS",
    "FORMAT",
    "FORMAT_VERSION",
    "ZSTD_LEVEL",
    "ZSTD_MAGIC",
    "Kind",
    "RecordingHeader",
    "config_from_dict",
    "config_to_dict",
    "decode_value",
    "encode_value",
]

FORMAT: Final = "rxconnector-recording"
FORMAT_VERSION: Final = 1

#: The integer range orjson (and most JSON readers) round-trip exactly.
_I64: Final = -(2**63)
_U64: Final = 2**64 - 1


#: Compressions a recording can be written with. New files are zstd unless their name
#: ends in ``.gz`` (or ``compression="gzip"`` is asked for); both are read, told apart
#: by their first bytes. Why zstd: measured in benchmarks/RESULTS.md ("Recording"), it
#: costs a fraction of gzip's CPU per line on the event loop at a better ratio.
COMPRESSIONS: Final = ("zstd", "gzip")
#: zstd level for recordings: 3 is zstd's own default, the speed/ratio knee.
ZSTD_LEVEL: Final = 3
#: The first bytes of a zstd frame: how a reader tells zstd from gzip.
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"

#: Config fields that are never written to a recording.
_SECRET_FIELDS: Final = frozenset({"api_key", "api_secret"})


class Kind:
    """The first element of every entry line."""

    FRAME: Final = "f"
    FRAME_SAME_STEP: Final = "g"
    BINARY_FRAME: Final = "b"
    DROPPED_FRAME: Final = "d"
    DROPPED_BINARY_FRAME: Final = "D"
    RESTART: Final = "x"
    SUBSCRIBED: Final = "u"
    STATE: Final = "s"
    CLOCK: Final = "o"
    REST_REQUEST: Final = "q"
    REST_ITEM: Final = "n"
    REST_COMPLETE: Final = "c"
    REST_ERROR: Final = "e"
    END: Final = "end"


# -- values -------------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """A JSON-ready form of ``value`` that :func:`decode_value` turns back into an equal
    object: models (attrs classes of :mod:`rxconnector.models`), ``Decimal``, enums,
    tuples, dicts with any keys, integers beyond 64 bits and exceptions are tagged; JSON
    scalars pass through.
    """
    if isinstance(value, int) and not isinstance(value, bool) and not _I64 <= value <= _U64:
        return {"$int": str(value)}  # JSON numbers this large do not survive (Bybit ids)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "v": value.value}
    if attrs.has(type(value)):
        cls = type(value)
        if getattr(_models, cls.__name__, None) is not cls:
            raise TypeError(f"only rxconnector.models classes can be recorded, not {cls!r}")
        return {
            "$model": cls.__name__,
            "f": {a.name: encode_value(getattr(value, a.name)) for a in attrs.fields(cls)},
        }
    if isinstance(value, tuple):
        return {"$tup": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, Mapping):
        return {"$map": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, BaseException):
        kept: dict[str, Any] = {}
        for name, attr in vars(value).items():
            try:
                kept[name] = encode_value(attr)
            except TypeError:
                continue  # an attribute we cannot write (a response object...) is dropped
        return {"$exc": type(value).__name__, "msg": str(value), "attrs": kept}
    raise TypeError(f"cannot record a value of type {type(value).__name__}: {value!r}")


def decode_value(data: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$dec" in data:
        return Decimal(data["$dec"])
    if "$int" in data:
        return int(data["$int"])
    if "$model" in data:
        cls = getattr(_models, data["$model"], None)
        if cls is None or not attrs.has(cls):
            raise ValueError(f"unknown model {data['$model']!r}")
        return cls(**{k: decode_value(v) for k, v in data["f"].items()})
    if "$tup" in data:
        return tuple(decode_value(v) for v in data["$tup"])
    if "$enum" in data:
        enum_cls = getattr(_models, data["$enum"], None)
        if enum_cls is None or not issubclass(enum_cls, enum.Enum):
            raise ValueError(f"unknown enum {data['$enum']!r}")
        return enum_cls(data["v"])
    if "$map" in data:
        return {decode_value(k): decode_value(v) for k, v in data["$map"]}
    if "$bytes" in data:
        return base64.b64decode(data["$bytes"])
    if "$exc" in data:
        return _decode_exception(data)
    raise ValueError(f"unknown tagged value {sorted(data)!r}")


def _decode_exception(data: Mapping[str, Any]) -> BaseException:
    """Rebuild an exception of the same class with the same message and attributes.

    The constructor is bypassed (error classes take different arguments); ``str()`` of
    the result is the original message, and attributes such as ``retry_after`` or
    ``code`` are restored so code that inspects them behaves as it did live.
    """
    name = data["$exc"]
    cls = getattr(_errors, name, None) or getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return _errors.RxConnectorError(f"{name}: {data['msg']}")
    exc = cls.__new__(cls)
    BaseException.__init__(exc, data["msg"])
    for key, value in data.get("attrs", {}).items():
        try:
            setattr(exc, key, decode_value(value))
        except (AttributeError, TypeError, ValueError):
            continue
    return exc


# -- config -------------------------------------------------------------------------------


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain data, **without** ``api_key`` and ``api_secret``."""
    return attrs.asdict(config, filter=lambda a, _v: a.name not in _SECRET_FIELDS)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """A :class:`Config` equal to the recorded one (minus the secrets it never had)."""
    values = {k: v for k, v in data.items() if k not in _SECRET_FIELDS}
    return Config(**values)


# -- header -------------------------------------------------------------------------------


@attrs.frozen
class RecordingHeader:
    """The first line of a recording: what was recorded, where, when and by what.

    ``feeds`` are the feed specs as given to ``rxconnector record`` (``"ticker"``,
    ``"klines:1m"``, ``"order_book:10"``); ``started_at`` is epoch ms.
    """

    exchange: str
    category: str
    config: Mapping[str, Any]
    feeds: tuple[str, ...]
    symbols: tuple[str, ...]
    started_at: float
    library_version: str = __version__
    format: str = FORMAT
    version: int = FORMAT_VERSION

    @classmethod
    def for_config(
        cls,
        config: Config,
        feeds: Sequence[str],
        symbols: Sequence[str],
        started_at: float,
    ) -> RecordingHeader:
        """A header for a recording of ``feeds`` x ``symbols`` made with ``config``."""
        return cls(
            exchange=config.exchange,
            category=config.category,
            config=config_to_dict(config),
            feeds=tuple(feeds),
            symbols=tuple(symbols),
            started_at=started_at,
        )

    def to_json(self) -> bytes:
        data = attrs.asdict(self)
        data["feeds"] = list(self.feeds)
        data["symbols"] = list(self.symbols)
        # format first, so ``zcat file | head -c 60`` says what the file is
        ordered = {"format": data.pop("format"), "version": data.pop("version"), **data}
        return orjson.dumps(ordered)

    @classmethod
    def from_json(cls, raw: bytes, path: str) -> RecordingHeader:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RecordingError(path, "not an rxconnector recording (no JSON header)", 1) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RecordingError(
                path, f"not an rxconnector recording (format is not {FORMAT!r})", 1
            )
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise RecordingError(
                path,
                f"recording format version {version!r} is not supported by rxconnector "
                f"{__version__} (it reads version {FORMAT_VERSION})",
                1,
            )
        try:
            return cls(
                exchange=data["exchange"],
                category=data["category"],
                config=data["config"],
                feeds=tuple(data["feeds"]),
                symbols=tuple(data["symbols"]),
                started_at=float(data["started_at"]),
                library_version=data.get("library_version", "?"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(path, f"header is incomplete ({exc!r})", 1) from None

    def make_config(self) -> Config:
        """The recorded config, rebuilt (without secrets)."""
        return config_from_dict(self.config)
