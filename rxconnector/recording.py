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
the file when the compressor emits a block, so :meth:`RecordingWriter.sync` (called
every second by the recording connector) ends the current deflate block with a sync
flush: everything written before it is then decodable from the file alone, by any gzip
reader, even if the process is killed (SIGKILL) before the trailer is written. A sync
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
import contextlib
import enum
import gzip
import io
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import IO, Any, Final, NoReturn

import attrs
import orjson
import zstandard

from rxconnector import errors as _errors
from rxconnector import models as _models
from rxconnector._version import __version__
from rxconnector.config import Config
from rxconnector.errors import RecordingError
from rxconnector.log import get_logger

__all__ = [
    "COMPRESSIONS",
    "FORMAT",
    "FORMAT_VERSION",
    "Kind",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriter",
    "config_from_dict",
    "config_to_dict",
    "decode_value",
    "encode_value",
    "peek_header",
]

FORMAT: Final = "rxconnector-recording"
FORMAT_VERSION: Final = 1

#: The integer range orjson (and most JSON readers) round-trip exactly.
_I64: Final = -(2**63)
_U64: Final = 2**64 - 1

_log = get_logger(component="recording")

#: Compressions a recording can be written with. New files are zstd unless their name
#: ends in ``.gz`` (or ``compression="gzip"`` is asked for); both are read, told apart
#: by their first bytes. Why zstd: measured in benchmarks/RESULTS.md ("Recording"), it
#: costs a fraction of gzip's CPU per line on the event loop at a better ratio.
COMPRESSIONS: Final = ("zstd", "gzip")
#: zstd level for recordings: 3 is zstd's own default, the speed/ratio knee.
ZSTD_LEVEL: Final = 3
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"

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


# -- writer -------------------------------------------------------------------------------


class RecordingWriter:
    """Appends entries to a recording; one method per entry kind.

    Writes are synchronous but cheap: gzip compresses incrementally into a buffered
    file, so a call costs microseconds and never waits on the disk for long. Counters
    (``frames``, ``frame_bytes``, ``file_bytes``) feed the CLI's progress line.
    Close it (or use ``with``) to write the ``end`` line and the gzip trailer; a file
    that was not closed is still readable up to its last complete line.

    With ``track_delivery=True`` the newest frame is held back, with every line written
    after it, until the hub is done with it: until the next frame, :meth:`flush` (the
    recording connector calls it when the event-loop step ends) or :meth:`close`.
    :meth:`delivered` marks it as delivered by the hub (else it is written as a ``d``
    line), and a :meth:`restart` marker is written before it. Lines the frame's own
    processing caused (a REST call after a restart marker, say) thus stay after it, and
    its delivery is known before it is written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: RecordingHeader,
        *,
        track_delivery: bool = False,
        compression: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.header = header
        self._track = track_delivery
        if compression is None:
            compression = "gzip" if self.path.endswith(".gz") else "zstd"
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        #: "zstd" (the default) or "gzip" (chosen by a ``.gz`` file name, or explicitly).
        self.compression = compression
        self._raw: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._gz: Any
        if compression == "zstd":
            self._gz = zstandard.ZstdCompressor(
                level=ZSTD_LEVEL, write_checksum=True
            ).stream_writer(self._raw, closefd=False)
            self._sync_mode = zstandard.FLUSH_BLOCK
        else:
            self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=5, mtime=0)
            self._sync_mode = zlib.Z_SYNC_FLUSH
        self.frames = 0
        self.frame_bytes = 0
        self.entries = 0
        self.closed = False
        #: the held frame (track_delivery): [kind, t, connection id, data], whether the hub
        #: delivered it, and the lines written since (they follow it in the file)
        self._held: list[Any] | None = None
        self._held_delivered = False
        self._after: list[list[Any]] = []
        self._synced_entries = -1  # the header is not on disk yet
        self._gz.write(header.to_json() + b"\n")

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def file_bytes(self) -> int:
        """Compressed bytes on disk so far (grows in steps as gzip flushes blocks)."""
        return self._raw.tell() if not self._raw.closed else os.path.getsize(self.path)

    def _write(self, entry: list[Any]) -> None:
        try:
            self._gz.write(orjson.dumps(entry) + b"\n")
        except OSError as exc:
            self._fail(exc)
        self.entries += 1

    def _fail(self, exc: OSError) -> NoReturn:
        """The file cannot be written (disk full...): stop recording for good.

        A recording with a hole in it would replay into different books and tapes, so
        the writer closes (later lines are ignored) and the file stays readable up to
        what reached the disk. Raised once, as a RecordingError, for the caller to report.
        """
        self.closed = True
        self._held = None
        self._after = []
        with contextlib.suppress(OSError):
            self._gz.close()
        with contextlib.suppress(OSError):
            self._raw.close()
        raise RecordingError(self.path, f"recording stopped: cannot write ({exc})") from exc

    def flush(self) -> None:
        """Write the held frame (now that its delivery is known) and the lines after it."""
        held = self._held
        if held is None:
            return
        self._held = None
        if not self._held_delivered:
            kind = held[0]
            text = kind == Kind.FRAME or kind == Kind.FRAME_SAME_STEP
            held[0] = Kind.DROPPED_FRAME if text else Kind.DROPPED_BINARY_FRAME
        self._write(held)
        after, self._after = self._after, []
        for entry in after:
            self._write(entry)

    def sync(self) -> int | None:
        """Push every line written so far to the operating system, decodable on its own.

        Ends the current deflate block with ``Z_SYNC_FLUSH`` and flushes the file
        buffer: a process killed after this (SIGKILL, OOM) leaves a file whose lines up
        to here any gzip reader can decode; only the held frame (``track_delivery``),
        written when its event-loop step ends, is not yet included. Does nothing when
        nothing was written since the last sync. Returns the file descriptor to
        ``os.fsync`` for durability against power loss (slow: the caller should run it
        off the event loop), or ``None`` when there was nothing to sync.
        """
        if self.closed or self._synced_entries == self.entries:
            return None
        try:
            self._gz.flush(self._sync_mode)
        except OSError as exc:
            self._fail(exc)
        self._synced_entries = self.entries
        return self._raw.fileno()

    def _line(self, entry: list[Any]) -> None:
        if self.closed:
            return  # late events after stop (a socket closing) are not part of the recording
        if self._held is not None:
            self._after.append(entry)
        else:
            self._write(entry)

    def frame(
        self,
        connection_id: str,
        received_at: float,
        frame: str | bytes,
        *,
        same_step: bool = False,
    ) -> None:
        """A raw WebSocket frame exactly as received (the ``Connector(on_frame=)`` hook).

        ``same_step``: it was handled in the same event-loop step as the previous frame.
        """
        if self.closed:
            return
        kind = Kind.FRAME_SAME_STEP if same_step else Kind.FRAME
        if isinstance(frame, str):
            entry = [kind, received_at, connection_id, frame]
        else:
            # The transport hands text frames over as their raw UTF-8 bytes: keep them
            # readable (and smaller than base64); only bytes that are not UTF-8 stay binary.
            try:
                entry = [kind, received_at, connection_id, frame.decode("utf-8")]
            except UnicodeDecodeError:
                data = base64.b64encode(frame).decode("ascii")
                entry = [Kind.BINARY_FRAME, received_at, connection_id, data]
        self.frames += 1
        self.frame_bytes += len(frame)
        if self._track:
            self.flush()
            self._held = entry
            self._held_delivered = False
        else:
            self._write(entry)

    def delivered(self) -> None:
        """The hub delivered (a message of) the newest frame to a feed."""
        self._held_delivered = True

    def restart(self, at: float, topic: str, reason: str) -> None:
        """The hub resubscribed ``topic``: messages before this point may be missing.

        Written before a held frame: the marker precedes that frame's message."""
        if not self.closed:
            self._write([Kind.RESTART, at, topic, reason])

    def subscribed(self, at: float, topic: str) -> None:
        """A feed of ``topic`` got its first subscriber (replay starts its clock at the
        first of these, so windows of time-based operators line up with live)."""
        self._line([Kind.SUBSCRIBED, at, topic])

    def state(self, at: float, event: Any) -> None:
        """A :class:`~rxconnector.models.ConnectionEvent`."""
        self._line([Kind.STATE, at, encode_value(event)])

    def clock(self, at: float, offset: Any) -> None:
        """A :class:`~rxconnector.models.ClockOffset`."""
        self._line([Kind.CLOCK, at, encode_value(offset)])

    def rest_request(self, at: float, call_id: int, key: Sequence[Any]) -> None:
        """REST call ``call_id`` started; ``key`` (its method path and arguments, already
        JSON-ready) is written as is, so replay can compare it byte for byte."""
        self._line([Kind.REST_REQUEST, at, call_id, list(key)])

    def rest_item(self, at: float, call_id: int, item: Any) -> None:
        self._line([Kind.REST_ITEM, at, call_id, encode_value(item)])

    def rest_complete(self, at: float, call_id: int) -> None:
        self._line([Kind.REST_COMPLETE, at, call_id])

    def rest_error(self, at: float, call_id: int, error: BaseException) -> None:
        self._line([Kind.REST_ERROR, at, call_id, encode_value(error)])

    def close(self, ended_at: float | None = None) -> None:
        """Write the ``end`` line (when ``ended_at`` is given) and finish the file."""
        if self.closed:
            return
        self.flush()
        if ended_at is not None:
            self._line([Kind.END, ended_at])
        self.closed = True
        try:
            self._gz.close()  # zstd: ends the frame (closefd=False: the file stays open)
            self._raw.close()
        except OSError as exc:
            self._fail(exc)


# -- reader -------------------------------------------------------------------------------


class RecordingReader:
    """Reads a recording lazily: :attr:`header` at once, entries as you iterate.

    Iterating yields each entry as the decoded JSON array (``entry[0]`` is the
    :class:`Kind`, ``entry[1]`` the time); values inside are still encoded (use
    :func:`decode_value`). A file cut short (the recorder was killed) ends the
    iteration at the last complete line, sets :attr:`truncated` and logs one warning;
    anything else unreadable raises :class:`~rxconnector.errors.RecordingError` with the
    line number.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.truncated = False
        self._told = False
        self.ended_at: float | None = None
        self._zstd: _ZstdLines | None = None
        try:
            with open(self.path, "rb") as probe:
                magic = probe.read(4)
        except FileNotFoundError:
            raise RecordingError(self.path, "no such file") from None
        except OSError as exc:
            raise RecordingError(self.path, f"not a gzip recording ({exc})") from None
        #: "zstd" or "gzip", told by the file's first bytes (not its name).
        self.compression = "zstd" if magic == _ZSTD_MAGIC else "gzip"
        self._file: Any
        try:
            if self.compression == "zstd":
                self._zstd = _ZstdLines(self.path)
                self._file = io.BufferedReader(self._zstd, buffer_size=1 << 16)
            else:
                self._file = gzip.GzipFile(self.path, "rb")
        except OSError as exc:
            raise RecordingError(self.path, f"not a gzip recording ({exc})") from None
        try:
            first = self._file.readline()
        except (gzip.BadGzipFile, EOFError, OSError, zstandard.ZstdError) as exc:
            self._file.close()
            raise RecordingError(self.path, f"not a gzip recording ({exc})") from None
        try:
            self.header = RecordingHeader.from_json(first, self.path)
        except RecordingError:
            self._file.close()  # the caller never gets a reader to close
            raise

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[list[Any]]:
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        number = 1
        lines = self._lines()
        pending: bytes | None = None
        for line in lines:
            number += 1
            if pending is not None:
                # the previous line did not parse and was not the last one: corrupt
                raise RecordingError(self.path, "corrupt line", number - 1)
            try:
                entry = loads(line)
            except decode_error:
                pending = line
                continue
            if type(entry) is not list or not entry:
                raise RecordingError(self.path, "an entry must be a non-empty JSON array", number)
            if entry[0] == Kind.END:
                self.ended_at = entry[1]
            yield entry
        if pending is not None:
            self._cut_short(number - 1)  # a half-written last line: the recorder died mid-write
        elif self.truncated:
            self._cut_short(number)

    def _cut_short(self, lines: int) -> None:
        """Note the cut, and say so once (a reader may be iterated more than once)."""
        if not self._told:
            self._told = True
            _log.warning(
                f"recording {self.path} was cut short (the recorder stopped without "
                f"finishing it): read up to line {lines}",
                path=self.path,
                lines=lines,
            )
        self.truncated = True

    def _lines(self) -> Iterator[bytes]:
        try:
            yield from self._file
        except EOFError:
            self.truncated = True  # the gzip stream has no trailer: recorder was killed
        except (gzip.BadGzipFile, OSError, zstandard.ZstdError) as exc:
            raise RecordingError(self.path, f"the compressed data is damaged ({exc})") from None
        if self._zstd is not None and self._zstd.cut_short:
            self.truncated = True  # the zstd frame never ended: the recorder was killed


class _ZstdLines(io.RawIOBase):
    """A zstd file as a readable raw stream (wrap it in ``io.BufferedReader`` for lines).

    Reads across frames (a file may hold several) and, unlike
    ``ZstdDecompressor().stream_reader``, notices a file that ends inside a frame: what
    a recorder killed after a ``FLUSH_BLOCK`` leaves. Every complete block is still
    returned; :attr:`cut_short` says the end was missing.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._raw = builtins.open(path, "rb")  # noqa: SIM115 - closed in close()
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._started = False  # the current frame has had input
        self.cut_short = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                self.cut_short = self._started and not self._obj.eof
                return 0
            while chunk:
                if self._obj.eof:  # the frame ended: the rest is the next frame
                    self._obj = zstandard.ZstdDecompressor().decompressobj()
                self._started = True
                self._pending += self._obj.decompress(chunk)
                chunk = self._obj.unused_data if self._obj.eof else b""
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def peek_header(path: str | os.PathLike[str]) -> RecordingHeader:
    """Read only the header of a recording."""
    with RecordingReader(path) as reader:
        return reader.header
