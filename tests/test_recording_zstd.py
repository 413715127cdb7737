"""zstd recordings: the default for new files, old gzip files still read, a killed
recorder's file readable up to its last sync, several frames read as one stream."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import zstandard

from rxconnector.config import Config
from rxconnector.errors import RecordingError
from rxconnector.recording import RecordingHeader
from rxconnector.replay.reader import RecordingReader
from rxconnector.replay.writer import RecordingWriter

T0 = 1_700_000_000_000.0


def _header() -> RecordingHeader:
    return RecordingHeader.for_config(Config.binance(), ["trades"], ["BTCUSDT"], T0)


def _write(path: Path, n: int, **kwargs: object) -> None:
    with RecordingWriter(path, _header(), **kwargs) as writer:  # type: ignore[arg-type]
        for i in range(n):
            writer.frame("c1", T0 + i, f'{{"i":{i}}}')
        writer.close(T0 + n)


def _times(path: Path) -> tuple[list[float], RecordingReader]:
    with RecordingReader(path) as reader:
        return [e[1] for e in reader if e[0] == "f"], reader


class TestCompressionChoice:
    @pytest.mark.parametrize(
        ("name", "kwargs", "magic", "compression"),
        [
            ("r.jsonl.zst", {}, b"\x28\xb5\x2f\xfd", "zstd"),
            ("r.jsonl", {}, b"\x28\xb5\x2f\xfd", "zstd"),
            ("r.jsonl.gz", {}, b"\x1f\x8b", "gzip"),
            ("r.jsonl", {"compression": "gzip"}, b"\x1f\x8b", "gzip"),
            ("r.jsonl.gz", {"compression": "zstd"}, b"\x28\xb5\x2f\xfd", "zstd"),
        ],
    )
    def test_by_name_or_asked_for_and_read_back_either_way(
        self, tmp_path: Path, name: str, kwargs: dict[str, str], magic: bytes, compression: str
    ) -> None:
        path = tmp_path / name
        _write(path, 100, **kwargs)
        assert path.read_bytes().startswith(magic)
        times, reader = _times(path)
        assert times == [T0 + i for i in range(100)]
        assert reader.compression == compression
        assert reader.ended_at == T0 + 100 and not reader.truncated

    def test_an_unknown_compression_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="compression must be one of"):
            RecordingWriter(tmp_path / "r", _header(), compression="lz4")

    def test_a_zstd_file_is_a_standard_zstd_stream(self, tmp_path: Path) -> None:
        """Readable by any zstd tool (``zstdcat file | jq``)."""
        path = tmp_path / "r.jsonl.zst"
        _write(path, 3)
        with zstandard.ZstdDecompressor().stream_reader(path.open("rb")) as stream:
            text = stream.read()
        assert text.startswith(b'{"format":"rxconnector-recording"')
        assert text.count(b"\n") == 1 + 3 + 1  # header, frames, end

    def test_an_old_gzip_recording_written_by_hand_is_read(self, tmp_path: Path) -> None:
        path = tmp_path / "old.jsonl.gz"
        path.write_bytes(gzip.compress(_header().to_json() + b'\n["f",1.0,"c1","{}"]\n'))
        times, _ = _times(path)
        assert times == [1.0]


class TestCrashes:
    def test_synced_blocks_survive_a_kill_and_the_cut_is_noticed(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.zst"
        writer = RecordingWriter(path, _header())
        for i in range(500):
            writer.frame("c1", T0 + i, f'{{"i":{i}}}')
        writer.sync()
        for i in range(500, 600):  # written after the last sync: may be lost
            writer.frame("c1", T0 + i, f'{{"i":{i}}}')
        left = tmp_path / "left.jsonl.zst"  # the bytes a SIGKILL now would leave
        left.write_bytes(path.read_bytes())
        writer.close(T0 + 600)
        times, reader = _times(left)
        assert times[:500] == [T0 + i for i in range(500)]
        assert reader.truncated and reader.ended_at is None

    def test_several_frames_are_one_recording(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.zst"
        lines = [_header().to_json() + b"\n"] + [
            f'["f",{i}.0,"c1","{{}}"]\n'.encode() for i in range(10)
        ]
        compressor = zstandard.ZstdCompressor()
        path.write_bytes(b"".join(compressor.compress(line) for line in lines))
        times, reader = _times(path)
        assert times == [float(i) for i in range(10)] and not reader.truncated

    def test_damaged_data_is_an_error_not_a_silent_end(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.zst"
        _write(path, 2000)
        data = bytearray(path.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 4] = b"\x00\x01\x02\x03"
        path.write_bytes(bytes(data))
        with pytest.raises(RecordingError), RecordingReader(path) as reader:
            list(reader)
