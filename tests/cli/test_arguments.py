"""Command-line arguments: help with examples, and every bad input fails with exit status 2
and a message saying what would have been valid, before anything connects."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rxconnector.cli import EXIT_USAGE, FEEDS, VENUES, FeedRequest, UsageError, main, parse_feed

COMMANDS = ("demo", "watch", "sim", "record", "replay", "history")


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    """Run ``main(argv)``, expect exit status 2 and ``needles`` in stderr; return stderr."""
    assert main(argv) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    for needle in needles:
        assert needle in captured.err, captured.err
    assert "Traceback" not in captured.err
    return captured.err


class TestHelp:
    """Every command documents itself with examples; bare ``rxconnector`` shows help."""

    @pytest.mark.parametrize("command", COMMANDS)
    def test_command_help_has_examples(
        self, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert f"usage: rxconnector {command}" in out
        assert "examples:" in out
        assert f"rxconnector {command}" in out.split("examples:")[1]

    def test_top_level_help_lists_commands(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        for command in COMMANDS:
            assert command in out

    def test_no_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main([]) == EXIT_USAGE
        assert "COMMAND" in capsys.readouterr().err

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--version"]) == 0
        assert capsys.readouterr().out.startswith("rxconnector ")


class TestFeedParsing:
    """Feed specs are ``name[:arg]``; arguments are checked for count and type."""

    def test_plain_and_with_arguments(self) -> None:
        assert parse_feed("ticker") == FeedRequest("ticker")
        assert parse_feed("klines:1m") == FeedRequest("klines", ("1m",))
        assert parse_feed("klines", ["1h"]) == FeedRequest("klines", ("1h",))
        assert parse_feed("order-book:10") == FeedRequest("order_book", (10,))
        assert parse_feed("depth") == FeedRequest("depth")
        assert parse_feed("klines:1m").label == "klines:1m"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("tickers", "unknown feed 'tickers'; choose from: ticker"),
            ("klines", "needs its interval"),
            ("ticker:5", "takes no arguments"),
            ("order_book:ten", "depth must be a whole number, got 'ten'"),
            ("klines:1m:2", "takes [interval]"),
        ],
    )
    def test_errors(self, text: str, message: str) -> None:
        with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_feed(text)

    def test_every_feed_is_a_connector_method(self) -> None:
        from rxconnector.connector import Connector

        assert {"ticker", "trades", "klines", "order_book", "mark_price"} <= set(FEEDS)
        for name in FEEDS:
            assert callable(getattr(Connector, name))
        assert set(VENUES) >= {"binance", "binance_futures", "bybit", "bybit-linear"}


class TestBadArguments:
    """Unknown venue, feed, symbol format, interval, numbers, dates, paths: exit 2."""

    def test_unknown_venue(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(
            capsys,
            ["watch", "kraken", "ticker", "BTCUSDT"],
            "usage: rxconnector watch",
            "rxconnector watch: error: unknown venue 'kraken'; choose from: binance,",
        )

    def test_unknown_feed(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["watch", "binance", "tickr", "BTCUSDT"], "unknown feed 'tickr'")

    def test_feed_the_venue_does_not_have(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(
            capsys,
            ["watch", "binance", "mark_price", "BTCUSDT"],
            "binance does not support mark_price",
            "feeds of binance:",
        )

    @pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC USDT", "ü"])
    def test_bad_symbol_format(self, capsys: pytest.CaptureFixture[str], symbol: str) -> None:
        _fails(capsys, ["watch", "binance", "ticker", symbol], "invalid binance symbol")

    def test_symbol_hint(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["watch", "binance", "trades", "btc/usdt"], "did you mean 'BTCUSDT'")

    def test_bad_interval(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(
            capsys,
            ["watch", "binance", "klines", "BTCUSDT", "7m"],
            "invalid Binance Spot kline interval '7m'",
            "1m 3m 5m",
        )

    def test_bad_bybit_interval(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(
            capsys,
            ["watch", "bybit-linear", "klines", "BTCUSDT", "7"],
            "invalid Bybit kline interval '7'",
        )

    def test_missing_interval(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["watch", "binance", "klines", "BTCUSDT"], "needs its interval")

    def test_bad_depth(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["watch", "binance", "order_book", "BTCUSDT", "0"], "depth must be")

    def test_bad_url(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(
            capsys,
            ["watch", "binance", "ticker", "BTCUSDT", "--ws-url", "localhost:1"],
            "--ws-url",
            "absolute URL",
        )

    @pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
    def test_bad_seconds(self, capsys: pytest.CaptureFixture[str], value: str) -> None:
        _fails(capsys, ["demo", "--seconds", value], "--seconds", "must be")

    def test_bad_port(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["sim", "--port", "70000"], "--port", "0..65535")

    def test_sim_symbol_the_simulator_cannot_list(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["sim", "--symbols", "BTCUSDT,BTC-USD"], "cannot list 'BTC-USD'")
        _fails(capsys, ["sim", "--symbols", "BTCUSDT,,ETHUSDT"], "without empty items")
        _fails(capsys, ["demo", "--symbol", "BTC/USDT"], "cannot list 'BTC/USDT'")

    def test_sim_symbol_listed_twice(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The same symbol in two spellings is one symbol: refused before binding."""
        _fails(capsys, ["sim", "--symbols", "BTCUSDT,btcusdt"], "--symbols", "BTCUSDT", "twice")

    @pytest.mark.parametrize(
        ("account", "needle"),
        [
            ("keyonly", "KEY:SECRET:BALANCES"),
            (":secret:USDT=1", "KEY:SECRET:BALANCES"),
            ("k:s:USDT", "ASSET=AMOUNT"),
            ("k:s:USDT=lots", "'lots' is not a number"),
            ("k:s:USDT=-5", "must be >= 0"),
            ("k:s:USDT=1,USDT=2", "USDT twice"),
        ],
    )
    def test_sim_bad_account(
        self, capsys: pytest.CaptureFixture[str], account: str, needle: str
    ) -> None:
        _fails(capsys, ["sim", "--account", account], "--account", needle)

    def test_sim_same_key_twice(self, capsys: pytest.CaptureFixture[str]) -> None:
        _fails(capsys, ["sim", "--account", "k:s", "--account", "k:t"], "key 'k' twice")

    def test_record_needs_output_and_valid_lists(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        _fails(capsys, ["record", "binance", "trades", "BTCUSDT"], "-o/--output")
        out = str(tmp_path / "r.gz")
        _fails(capsys, ["record", "binance", "trades,", "BTCUSDT", "-o", out], "FEEDS")
        _fails(capsys, ["record", "binance", "trades", "BTCUSDT,ETH/USDT", "-o", out], "ETH/USDT")
        _fails(capsys, ["record", "binance", "trades,klines:9m", "BTCUSDT", "-o", out], "'9m'")
        _fails(
            capsys,
            ["record", "binance", "trades", "BTCUSDT", "-o", str(tmp_path / "no" / "r.gz")],
            "does not exist",
        )
        _fails(capsys, ["record", "binance", "trades", "BTCUSDT", "-o", str(tmp_path)], "folder")

    def test_replay_missing_or_foreign_file(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        _fails(capsys, ["replay", str(tmp_path / "nope.gz")], "no such file")
        other = tmp_path / "other.gz"
        other.write_bytes(gzip.compress(b'{"hello": 1}\n'))
        _fails(capsys, ["replay", str(other)], "cannot replay", "not an rxconnector recording")

    def test_replay_speed_options(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        _fails(capsys, ["replay", "x.gz", "--speed", "0"], "--speed")
        _fails(
            capsys,
            ["replay", "x.gz", "--speed", "2", "--as-fast-as-possible"],
            "not allowed with argument",
        )

    def test_history_dates(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        out = str(tmp_path / "k.csv")
        base = ["history", "binance", "BTCUSDT", "1h", "-o", out]
        _fails(capsys, [*base, "--start", "yesterday", "--end", "2024-01-02"], "--start", "ISO")
        _fails(capsys, [*base, "--start", "2024-01-02", "--end", "2024-01-01"], "must be after")
        _fails(
            capsys,
            ["history", "binance", "BTCUSDT", "2x", "--start", "2024-01-01", "--end",
             "2024-01-02", "-o", out],
            "interval '2x'",
        )  # fmt: skip
        _fails(capsys, ["history", "binance", "BTCUSDT", "1h", "--end", "2024-01-02"], "--start")
