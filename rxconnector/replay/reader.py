"""Reading a recording: :class:`RecordingReader` yields its lines lazily, a file cut short
included (the format is :mod:`rxconnector.recording`; the replay reads through it)."""

from __future__ import annotations

import builtins
import gzip
import io
import os
from collections.abc import Iterator
from typing import Any

import orjson
import zstandard

from rxconnector.errors import RecordingError
from rxconnector.log import get_logger
from rxconnector.recording import ZSTD_MAGIC, Kind, RecordingHeader

__all__ = ["RecordingReader", "peek_header"]

_log = get_logger(component="recording")


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
        self.compression = "zstd" if magic == ZSTD_MAGIC else "gzip"
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
