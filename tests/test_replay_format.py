"""The recording file format: header, entries, value encoding, damaged files."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxconnector.config import Config
from rxconnector.errors import RateLimitError, RecordingError
from rxconnector.models import (
    ClockOffset,
    ConnectionEvent,
    ConnectionState,
    OrderBook,
    Trade,
)
from rxconnector.recording import (
    FORMAT,
    FORMAT_VERSION,
    Kind,
    RecordingHeader,
    config_from_dict,
    config_to_dict,
    decode_value,
    encode_value,
)
from rxconnector.replay.reader import RecordingReader, peek_header
from rxconnector.replay.writer import RecordingWriter

T0 = 1_700_000_000_000.0


def _header(config: Config | None = None) -> RecordingHeader:
    return RecordingHeader.for_config(
        config or Config.binance(), ["ticker", "order_book:10"], ["BTCUSDT"], T0
    )


def _book() -> OrderBook:
    return OrderBook(
        symbol="BTCUSDT",
        bids=((Decimal("100.10"), Decimal("1.5")), (Decimal("100.00"), Decimal("2"))),
        asks=((Decimal("100.20"), Decimal("0.001")),),
        update_id=42,
        event_time=1_700_000_000_001,
        received_at=T0 + 0.25,
    )


class TestValueEncoding:
    """Models, decimals, enums, tuples, maps and exceptions survive the JSON round trip."""

    @pytest.mark.parametrize(
        "value",
        [
            None,
            True,
            7,
            1.25,
            "text",
            Decimal("0.00000001"),
            Decimal("1.10"),
            (1, "a", (2,)),
            [1, [2, 3]],
            {"a": 1, 2: Decimal("3")},
            ConnectionState.STALE,
            b"\x00\xffraw",
            2**64,
            -(2**63) - 1,
            249219812206925761040144914275522389451,  # a Bybit trade id
        ],
    )
    def test_plain_values_round_trip(self, value: object) -> None:
        encoded = orjson.loads(orjson.dumps(encode_value(value)))
        decoded = decode_value(encoded)
        assert decoded == value
        assert type(decoded) is type(value)

    def test_decimal_keeps_its_exponent(self) -> None:
        decoded = decode_value(orjson.loads(orjson.dumps(encode_value(Decimal("1.10")))))
        assert str(decoded) == "1.10"

    def test_models_round_trip_exactly(self) -> None:
        trade = Trade(
            symbol="BTCUSDT",
            trade_id=9,
            price=Decimal("60000.01"),
            quantity=Decimal("0.5"),
            side="sell",
            time=1,
            event_time=2,
            received_at=T0 + 0.123456,
            backfilled=True,
        )
        event = ConnectionEvent(ConnectionState.RECONNECTING, "c1", "ws://x", T0, 2, 1.5, "eof")
        offset = ClockOffset(offset_ms=-3.5, rtt_ms=1.0, server_time=5, measured_at=T0)
        for model in (_book(), trade, event, offset, [trade, trade]):
            assert decode_value(orjson.loads(orjson.dumps(encode_value(model)))) == model

    def test_exceptions_keep_class_message_and_attributes(self) -> None:
        original = RateLimitError("slow down", retry_after=12.5, status=429, code=-1003)
        rebuilt = decode_value(orjson.loads(orjson.dumps(encode_value(original))))
        assert type(rebuilt) is RateLimitError
        assert str(rebuilt) == str(original)
        assert rebuilt.retry_after == 12.5
        assert rebuilt.code == -1003
        builtin = decode_value(encode_value(TimeoutError("late")))
        assert type(builtin) is TimeoutError
        assert str(builtin) == "late"

    def test_unknown_exception_class_becomes_a_library_error(self) -> None:
        class Weird(Exception):
            pass

        rebuilt = decode_value(encode_value(Weird("odd")))
        assert "Weird: odd" in str(rebuilt)

    def test_foreign_objects_are_refused(self) -> None:
        with pytest.raises(TypeError, match="cannot record"):
            encode_value(object())

    def test_unknown_tags_are_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown model"):
            decode_value({"$model": "Nope", "f": {}})
        with pytest.raises(ValueError, match="unknown tagged"):
            decode_value({"$what": 1})


class TestConfigWithoutSecrets:
    """The header's config never holds the API key or secret and rebuilds the same Config."""

    def test_secrets_are_left_out_and_the_rest_round_trips(self) -> None:
        config = Config.binance(
            api_key="KEY-abcdef-123",
            api_secret="SECRET-zyxwvu-987",
            rest_url="http://127.0.0.1:1",
            recv_window=6000,
            connection={"reconnect_delay": 0.5},
        )
        data = config_to_dict(config)
        assert "api_key" not in data
        assert "api_secret" not in data
        rebuilt = config_from_dict(orjson.loads(orjson.dumps(data)))
        assert rebuilt == Config.binance(
            rest_url="http://127.0.0.1:1", recv_window=6000, connection={"reconnect_delay": 0.5}
        )

    def test_secret_strings_never_reach_the_file(self, tmp_path: Path) -> None:
        config = Config.binance(api_key="KEY-abcdef-123", api_secret="SECRET-zyxwvu-987")
        path = tmp_path / "r.jsonl.gz"
        with RecordingWriter(path, _header(config)) as writer:
            writer.frame("c1", T0, '{"x":1}')
        raw = gzip.decompress(path.read_bytes())
        assert b"KEY-abcdef" not in raw
        assert b"SECRET-zyxwvu" not in raw


class TestWriterAndReader:
    """What the writer writes, the reader yields in the same order with the same values."""

    def test_header_comes_back(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.gz"
        RecordingWriter(path, _header()).close(T0 + 5)
        header = peek_header(path)
        assert header == _header()
        assert header.format == FORMAT
        assert header.version == FORMAT_VERSION
        assert header.make_config() == Config.binance()
        first_line = gzip.decompress(path.read_bytes()).split(b"\n", 1)[0]
        assert first_line.startswith(b'{"format":"rxconnector-recording","version":1')

    def test_entries_come_back_in_order(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.gz"
        event = ConnectionEvent(ConnectionState.CONNECTED, "c1", "ws://x", T0)
        with RecordingWriter(path, _header()) as writer:
            writer.state(T0, event)
            writer.frame("c1", T0 + 1, '{"stream":"a","data":{"p":"1.0"}}')
            writer.frame("c1", T0 + 2, b"\xff\xfe")
            writer.restart(T0 + 3, "a", "reconnected")
            writer.rest_request(T0 + 4, 1, [["depth_snapshot", ["BTCUSDT", 100], {}]])
            writer.rest_item(T0 + 5, 1, _book())
            writer.rest_complete(T0 + 5, 1)
            writer.rest_error(T0 + 6, 2, TimeoutError("late"))
            writer.clock(T0 + 7, ClockOffset(1.0, 2.0, 3, T0))
            assert writer.frames == 2
            assert writer.frame_bytes == len('{"stream":"a","data":{"p":"1.0"}}') + 2
        # closing without ``ended_at`` writes no end line
        with RecordingReader(path) as reader:
            entries = list(reader)
            assert reader.ended_at is None
            assert not reader.truncated
        kinds = [e[0] for e in entries]
        assert kinds == ["s", "f", "b", "x", "q", "n", "c", "e", "o"]
        assert [e[1] for e in entries] == [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 5, T0 + 5,
                                           T0 + 6, T0 + 7]  # fmt: skip
        assert decode_value(entries[0][2]) == event
        assert entries[1][3] == '{"stream":"a","data":{"p":"1.0"}}'
        assert entries[4][3] == [["depth_snapshot", ["BTCUSDT", 100], {}]]
        assert decode_value(entries[5][3]) == _book()

    def test_end_line_sets_ended_at(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.gz"
        with RecordingWriter(path, _header()) as writer:
            writer.frame("c1", T0 + 1, "{}")
            writer.close(T0 + 9)
            writer.frame("c1", T0 + 10, "{}")  # after close: ignored, not an error
        with RecordingReader(path) as reader:
            entries = list(reader)
        assert entries[-1] == [Kind.END, T0 + 9]
        assert reader.ended_at == T0 + 9
        assert len(entries) == 2

    def test_file_bytes_grows(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl.gz"
        writer = RecordingWriter(path, _header())
        for i in range(20_000):
            writer.frame("c1", T0 + i, f'{{"i":{i},"pad":"{i * 7919 % 100003}"}}')
        assert writer.file_bytes > 0
        writer.close(T0)
        assert writer.file_bytes == path.stat().st_size


class TestDamagedFiles:
    """Bad files fail with a RecordingError naming the file and line; cut files still read."""

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(RecordingError, match="no such file"):
            RecordingReader(tmp_path / "nope.gz")

    def test_not_gzip(self, tmp_path: Path) -> None:
        path = tmp_path / "plain.jsonl"
        path.write_text('{"format": "rxconnector-recording"}\n')
        with pytest.raises(RecordingError, match="not a gzip recording"):
            RecordingReader(path)

    def test_not_a_recording(self, tmp_path: Path) -> None:
        path = tmp_path / "other.gz"
        path.write_bytes(gzip.compress(b'{"hello": 1}\n'))
        with pytest.raises(RecordingError, match="not an rxconnector recording") as info:
            RecordingReader(path)
        assert info.value.line == 1
        assert str(path) in str(info.value)

    def test_newer_version_is_refused_clearly(self, tmp_path: Path) -> None:
        path = tmp_path / "v9.gz"
        header = orjson.loads(_header().to_json())
        header["version"] = 9
        path.write_bytes(gzip.compress(orjson.dumps(header) + b"\n"))
        with pytest.raises(RecordingError, match="version 9 is not supported"):
            RecordingReader(path)

    def test_incomplete_header(self, tmp_path: Path) -> None:
        path = tmp_path / "h.gz"
        path.write_bytes(gzip.compress(b'{"format":"rxconnector-recording","version":1}\n'))
        with pytest.raises(RecordingError, match="header is incomplete"):
            RecordingReader(path)

    def test_corrupt_line_in_the_middle(self, tmp_path: Path) -> None:
        path = tmp_path / "c.gz"
        body = _header().to_json() + b'\n["f",1,"c","{}"]\n["f",2,"c\n["f",3,"c","{}"]\n'
        path.write_bytes(gzip.compress(body))
        with RecordingReader(path) as reader, pytest.raises(RecordingError) as info:
            list(reader)
        assert info.value.line == 3

    def test_entry_that_is_not_an_array(self, tmp_path: Path) -> None:
        path = tmp_path / "o.gz"
        path.write_bytes(gzip.compress(_header().to_json() + b'\n{"f": 1}\n'))
        with RecordingReader(path) as reader, pytest.raises(RecordingError, match="array"):
            list(reader)

    @pytest.mark.parametrize(
        "content",
        [b"plain text, not gzip", gzip.compress(b'{"hello": 1}\n'), gzip.compress(b"")],
        ids=["not gzip", "not a recording", "empty"],
    )
    def test_a_refused_file_is_closed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
    ) -> None:
        opened: list[gzip.GzipFile] = []
        real = gzip.GzipFile

        class Tracked(real):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                opened.append(self)

        monkeypatch.setattr(gzip, "GzipFile", Tracked)
        path = tmp_path / "refused.gz"
        path.write_bytes(content)
        with pytest.raises(RecordingError):
            RecordingReader(path)
        assert len(opened) == 1
        assert opened[0].closed  # no reader came back to close it: the refusal did

    def test_recording_cut_short_reads_up_to_the_last_complete_line(self, tmp_path: Path) -> None:
        full = tmp_path / "full.gz"
        with RecordingWriter(full, _header()) as writer:
            for i in range(5000):
                writer.frame("c1", T0 + i, f'{{"i":{i},"noise":"{(i * 2654435761) % 2**32}"}}')
        data = full.read_bytes()
        cut = tmp_path / "cut.gz"
        cut.write_bytes(data[: len(data) // 2])
        with RecordingReader(cut) as reader:
            entries = list(reader)
        assert reader.truncated
        assert 0 < len(entries) < 5000
        assert [e[1] for e in entries] == [T0 + i for i in range(len(entries))]
        assert all(orjson.loads(e[3])["i"] == i for i, e in enumerate(entries))


class TestWriteFailures:
    """A file that cannot be written stops the recording once, with a RecordingError, and
    leaves what reached the disk readable."""

    def test_first_failure_raises_then_the_writer_is_closed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "full.gz"
        writer = RecordingWriter(path, _header())
        writer.frame("c1", T0, '{"i":0}')

        def full(_data: bytes) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(writer._gz, "write", full)
        with pytest.raises(RecordingError, match="recording stopped: cannot write") as info:
            writer.frame("c1", T0 + 1, '{"i":1}')
        assert isinstance(info.value.__cause__, OSError)
        assert writer.closed
        writer.frame("c1", T0 + 2, '{"i":2}')  # ignored, no second error
        writer.state(T0 + 2, None)
        writer.close(T0 + 3)
        with RecordingReader(path) as reader:
            entries = list(reader)
        assert [e[1] for e in entries] == [T0]

    def test_a_failure_while_finishing_the_file_is_a_recording_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        writer = RecordingWriter(tmp_path / "end.gz", _header())

        def full() -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(writer._gz, "close", full)
        with pytest.raises(RecordingError, match="cannot write"):
            writer.close(T0)
        assert writer.closed
        assert writer._raw.closed


class TestDeliveryTracking:
    """With track_delivery the writer marks frames the hub did not deliver and puts
    restart markers before the frame whose message they preceded."""

    def _entries(self, path: Path) -> list[list[object]]:
        with RecordingReader(path) as reader:
            return list(reader)

    def test_undelivered_frames_become_d_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        with RecordingWriter(path, _header(), track_delivery=True) as writer:
            writer.frame("c1", T0 + 1, '{"a":1}')
            writer.delivered()
            writer.frame("c1", T0 + 2, '{"result":null,"id":1}')
            writer.frame("c2", T0 + 3, b"\xff")
            writer.frame("c2", T0 + 4, b"\xfe")
            writer.delivered()
            writer.frame("c1", T0 + 5, '{"a":2}')
        kinds = [(e[0], e[1]) for e in self._entries(path)]
        assert kinds == [("f", T0 + 1), ("d", T0 + 2), ("D", T0 + 3), ("b", T0 + 4), ("d", T0 + 5)]

    def test_restart_goes_before_the_held_frame(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        with RecordingWriter(path, _header(), track_delivery=True) as writer:
            writer.frame("c1", T0 + 1, '{"a":1}')
            writer.delivered()
            writer.frame("c1", T0 + 2, '{"a":2}')
            writer.restart(T0 + 2.5, "a", "reconnected")
            writer.delivered()
            writer.rest_request(T0 + 3, 1, [["depth_snapshot", ["X", 5], {}]])
            writer.close(T0 + 4)
        kinds = [e[0] for e in self._entries(path)]
        assert kinds == ["f", "x", "f", "q", "end"]

    def test_lines_caused_by_the_held_frame_stay_after_it(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        with RecordingWriter(path, _header(), track_delivery=True) as writer:
            writer.frame("c1", T0 + 1, '{"a":1}')
            writer.restart(T0 + 1, "a", "reconnected")  # the marker before its message...
            writer.rest_request(T0 + 1, 1, [["recent", [], {}]])  # ...a call it caused...
            writer.delivered()  # ...and only then the message itself
            writer.frame("c1", T0 + 3, '{"a":2}')
            writer.state(T0 + 4, ConnectionEvent(ConnectionState.STALE, "c1", "ws://x", T0))
            writer.flush()  # the loop step ended: undelivered
            writer.delivered()  # nothing held any more: no effect
        kinds = [e[0] for e in self._entries(path)]
        assert kinds == ["x", "f", "q", "d", "s"]

    def test_without_tracking_every_frame_is_delivered(self, tmp_path: Path) -> None:
        path = tmp_path / "r.gz"
        with RecordingWriter(path, _header()) as writer:
            writer.frame("c1", T0 + 1, '{"a":1}')
            writer.restart(T0 + 2, "a", "why")
            writer.frame("c1", T0 + 3, '{"a":2}')
        assert [e[0] for e in self._entries(path)] == ["f", "x", "f"]
