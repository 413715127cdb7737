"""Writing a recording: :class:`RecordingWriter` appends one line per event (the format is
:mod:`rxconnector.recording`; :class:`~rxconnector.replay.recorder.RecordingConnector`
drives it)."""

from __future__ import annotations

import base64
import contextlib
import gzip
import os
import zlib
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, NoReturn

import orjson
import zstandard

from rxconnector.errors import RecordingError
from rxconnector.recording import (
    COMPRESSIONS,
    ZSTD_LEVEL,
    Kind,
    RecordingHeader,
    encode_value,
)

__all__ = ["RecordingWriter"]


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
