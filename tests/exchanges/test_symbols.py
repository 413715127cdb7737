"""Symbol and kline-interval validation: accepted spellings and the error messages."""

from __future__ import annotations

import pytest

from rxconnector.exchanges import symbols as s


class TestNormalizeSymbol:
    """Any case in, upper case out; anything that would corrupt a topic is refused."""

    @pytest.mark.parametrize("raw", ["btcusdt", "BTCUSDT", "BtcUsdt", " btcusdt "])
    def test_any_case(self, raw: str) -> None:
        assert s.normalize_symbol(raw) == "BTCUSDT"

    @pytest.mark.parametrize("raw", ["BTC-26DEC25", "BTC-6JAN23-17500-C", "1000PEPEUSDT", "A_B.C"])
    def test_bybit_shapes(self, raw: str) -> None:
        assert s.normalize_symbol(raw.lower(), "bybit") == raw

    def test_separator_is_refused_with_a_hint(self) -> None:
        with pytest.raises(ValueError) as info:
            s.normalize_symbol("BTC/USDT")
        message = str(info.value)
        assert "^[A-Z0-9-_.]{1,20}$" in message
        assert "did you mean 'BTCUSDT'?" in message

    @pytest.mark.parametrize("raw", ["BTC:USDT", "btc usdt"])
    def test_other_separators_hint(self, raw: str) -> None:
        with pytest.raises(ValueError, match=r"did you mean 'BTCUSDT'\?"):
            s.normalize_symbol(raw)

    @pytest.mark.parametrize("raw", ["", "btc@usdt", "btc usdt", "A" * 21, "BTCUSDT\n@trade"])
    def test_binance_rule(self, raw: str) -> None:
        with pytest.raises(ValueError, match=r"invalid binance symbol .*must match"):
            s.normalize_symbol(raw)

    def test_bybit_allows_longer_symbols(self) -> None:
        assert s.normalize_symbol("A" * 30, "bybit") == "A" * 30
        with pytest.raises(ValueError, match=r"\^\[A-Z0-9-_\.\]\{1,30\}\$"):
            s.normalize_symbol("A" * 31, "bybit")

    def test_not_a_string(self) -> None:
        with pytest.raises(TypeError, match="symbol must be a str"):
            s.normalize_symbol(123)  # type: ignore[arg-type]


class TestIntervals:
    """Binance intervals are checked case-sensitively; Bybit accepts both spellings."""

    @pytest.mark.parametrize("interval", s.BINANCE_INTERVALS)
    def test_binance_valid(self, interval: str) -> None:
        assert s.binance_interval(interval) == interval

    @pytest.mark.parametrize("interval", ["1H", "2m", "60", "1D", "", "1 m"])
    def test_binance_invalid_lists_valid_ones(self, interval: str) -> None:
        with pytest.raises(ValueError) as info:
            s.binance_interval(interval)
        assert "1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M" in str(info.value)

    def test_futures_have_no_1s(self) -> None:
        assert s.binance_interval("1m", futures=True) == "1m"
        with pytest.raises(ValueError, match=r"1s candles exist on Spot only"):
            s.binance_interval("1s", futures=True)

    @pytest.mark.parametrize(
        ("given", "wire"),
        [
            ("1", "1"),
            ("1m", "1"),
            ("60", "60"),
            (60, "60"),
            ("1h", "60"),
            ("2h", "120"),
            ("4h", "240"),
            ("6h", "360"),
            ("12h", "720"),
            ("1d", "D"),
            ("D", "D"),
            ("1w", "W"),
            ("1M", "M"),
            ("M", "M"),
        ],
    )
    def test_bybit_mapping(self, given: str | int, wire: str) -> None:
        assert s.bybit_interval(given) == wire

    @pytest.mark.parametrize("interval", ["1s", "8h", "3d", "2", "d", True, None])
    def test_bybit_invalid(self, interval: object) -> None:
        with pytest.raises(ValueError) as info:
            s.bybit_interval(interval)  # type: ignore[arg-type]
        assert "1 3 5 15 30 60 120 240 360 720 D W M" in str(info.value)
        assert "1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w 1M" in str(info.value)

    def test_canonical_round_trip(self) -> None:
        for native in s.BYBIT_INTERVALS:
            canonical = s.canonical_interval(native)
            assert canonical in s.BINANCE_INTERVALS
            assert s.bybit_interval(canonical) == native


class TestValidateChoice:
    """One helper for enumerated arguments; booleans never pass as ints."""

    def test_lists_choices(self) -> None:
        with pytest.raises(ValueError, match=r"levels must be one of 5, 10, 20; got 15"):
            s.validate_choice("levels", 15, (5, 10, 20))

    def test_bool_is_not_one(self) -> None:
        with pytest.raises(ValueError):
            s.validate_choice("levels", True, (1, 50))
        s.validate_choice("levels", 1, (1, 50))
