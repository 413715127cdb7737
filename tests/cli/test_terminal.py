"""Terminal helpers: in-place redraw on a TTY, throttled plain lines otherwise, formatting."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from rxconnector.models import Kline, OrderBook, Ticker, Trade
from rxconnector.terminal import (
    LiveView,
    ProgressLine,
    describe,
    estimate_eta,
    format_bytes,
    format_duration,
    progress_bar,
)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestLiveView:
    """A TTY gets the block redrawn in place; a pipe gets one plain line per interval."""

    def test_tty_redraws_by_screen_rows(self) -> None:
        out = io.StringIO()
        view = LiveView(out, tty=True, size=lambda: (80, 24))
        view.render(["a", "b"])
        view.render(["c", "d", "e"])
        view.render(["f"])
        first, second, third = out.getvalue().split("\x1b[J")[:3]
        # the first frame clears the screen; every line goes to its own row, absolutely
        assert first == "\x1b[H\x1b[2J\x1b[1;1Ha\x1b[K\x1b[2;1Hb\x1b[K\x1b[3;1H"
        assert second == "\x1b[1;1Hc\x1b[K\x1b[2;1Hd\x1b[K\x1b[3;1He\x1b[K\x1b[4;1H"
        assert third == "\x1b[1;1Hf\x1b[K\x1b[2;1H"  # shorter block: the rest is erased below

    def test_tty_clips_to_the_width_and_the_height_and_follows_a_resize(self) -> None:
        out = io.StringIO()
        size = [(10, 3)]
        view = LiveView(out, tty=True, size=lambda: size[-1])
        view.render(["0123456789abc", "x\ny", "third", "fourth"])
        frame = out.getvalue()
        assert "\x1b[1;1H01234567~\x1b[K" in frame  # 9 columns: never the last one
        assert "\x1b[2;1Hx y\x1b[K" in frame  # a newline in a line does not move the cursor
        assert "third" not in frame and "fourth" not in frame  # rows - 1 lines at most
        size.append((20, 5))
        out.seek(0)
        out.truncate()
        view.render(["0123456789abc", "b", "third"])
        assert out.getvalue().startswith("\x1b[H\x1b[2J")  # a new size: a full redraw
        assert "0123456789abc" in out.getvalue() and "third" in out.getvalue()

    def test_pipe_prints_the_short_plain_text_when_given(self) -> None:
        out = io.StringIO()
        view = LiveView(out, tty=False)
        view.render(["a long", "block"], plain="short")
        assert out.getvalue() == "short\n"

    def test_pipe_gets_throttled_plain_lines(self) -> None:
        out = io.StringIO()
        clock = _Clock()
        view = LiveView(out, tty=False, plain_interval=1.0, clock=clock)
        view.render(["a ", " b"])
        clock.now = 0.5
        view.render(["skipped"])
        clock.now = 1.2
        view.render(["c"])
        clock.now = 1.3
        view.render(["final"], force=True)
        assert out.getvalue() == "a | b\nc\nfinal\n"
        assert "\x1b" not in out.getvalue()

    def test_detects_a_non_tty_stream(self) -> None:
        assert LiveView(io.StringIO()).tty is False


class TestProgressLine:
    """One line rewritten with a carriage return on a TTY; periodic lines otherwise."""

    def test_tty(self) -> None:
        out = io.StringIO()
        line = ProgressLine(out, tty=True)
        line.update("1%")
        line.update("2%")
        line.finish("done")
        assert out.getvalue() == "\r\x1b[2K1%\r\x1b[2K2%\r\x1b[2Kdone\n"

    def test_pipe(self) -> None:
        out = io.StringIO()
        clock = _Clock()
        line = ProgressLine(out, tty=False, plain_interval=5.0, clock=clock)
        line.update("1%")
        clock.now = 1
        line.update("2%")
        clock.now = 6
        line.update("3%")
        line.finish("done")
        assert out.getvalue() == "1%\n3%\ndone\n"


class TestFormatting:
    """Bars, durations, sizes and ETAs read well and survive odd inputs."""

    @pytest.mark.parametrize(
        ("fraction", "bar"),
        [(0.0, "[----]"), (0.5, "[##--]"), (1.0, "[####]"), (7.0, "[####]"), (-1, "[----]")],
    )
    def test_progress_bar(self, fraction: float, bar: str) -> None:
        assert progress_bar(fraction, width=4) == bar
        assert progress_bar(float("nan"), width=2) == "[--]"

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [(4.25, "4.2s"), (65, "1m05s"), (3 * 3600 + 125, "3h02m"), (None, "?"), (-1, "?")],
    )
    def test_format_duration(self, seconds: float | None, text: str) -> None:
        assert format_duration(seconds) == text

    def test_format_bytes(self) -> None:
        assert format_bytes(512) == "512 B"
        assert format_bytes(1536) == "1.5 KiB"
        assert format_bytes(3 * 1024**3) == "3.0 GiB"

    def test_estimate_eta(self) -> None:
        assert estimate_eta(0, 100, 5) is None
        assert estimate_eta(25, 100, 5) == pytest.approx(15.0)
        assert estimate_eta(100, 100, 5) == 0.0


class TestDescribe:
    """Every common model prints as one line with its key numbers."""

    def test_models(self) -> None:
        d = Decimal
        ticker = Ticker("BTCUSDT", d("1.5"), d("1.4"), d(1), d("1.6"), d(1), d(1), d(2), d(1),
                        d(10), d(15), 1_700_000_000_123)  # fmt: skip
        trade = Trade("BTCUSDT", 7, d("60000.10"), d("0.5"), "buy", 1_700_000_000_000, 0)
        book = OrderBook("BTCUSDT", ((d("99"), d(1)),), ((d("101"), d(2)),), 42, 0, 1.0e12)
        kline = Kline("BTCUSDT", "1m", 0, 59_999, d(1), d(2), d("0.5"), d("1.5"), d(9), d(9), 3,
                      True, 60_000)  # fmt: skip
        assert describe(ticker) == (
            "22:13:20.123 BTCUSDT ticker last=1.5 bid=1.4 ask=1.6 high=2 low=1 vol=10"
        )
        assert describe(trade) == "22:13:20.000 BTCUSDT trade #7 buy 0.5 @ 60000.10"
        assert "book #42 bid 99 x 1 | ask 101 x 2 spread=2 levels=1/1" in describe(book)
        assert "kline 1m" in describe(kline) and "closed" in describe(kline)
        assert describe(("something", 1)) == "('something', 1)"


class TestDemoFormatting:
    """The demo shows prices at the symbol's increment, never the wire's padding."""

    def test_shown_at_the_increment(self) -> None:
        from rxconnector.demo_view import shown

        assert shown(Decimal("60005.41000000"), Decimal("0.01")) == "60005.41"
        assert shown(Decimal("60005.4"), Decimal("0.01")) == "60005.40"
        assert shown(Decimal("0.05541000"), Decimal("0.00001")) == "0.05541"
        assert shown(Decimal("60005.41000000"), None) == "60005.41"  # increment unknown
        assert shown(Decimal("60000.00000000"), None) == "60000"
        assert shown(None, Decimal("0.01")) == "-"

    def test_progress_line_is_clipped_on_a_tty(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", "80")  # a StringIO has no size: the fallback is used
        out = io.StringIO()
        line = ProgressLine(out, tty=True)
        line.finish("x" * 500)
        assert out.getvalue() == "\r\x1b[2K" + "x" * 78 + "~\n"  # 79 columns, ASCII ellipsis
