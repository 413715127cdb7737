"""Terminal output for the CLI: in-place live views, progress lines, one-line models.

A live view is only worth drawing when a person watches it: on a TTY the block of
lines is redrawn in place, row by row at absolute screen positions, each line clipped
to the terminal's width (read again at every redraw, so a resize is followed); when
stdout is a pipe or a file (CI logs, ``| grep``) one short plain line is written at
most once per ``plain_interval`` seconds, so logs stay readable and greppable.
Nothing here knows about connectors; the CLI feeds it strings.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

from rxconnector.models import (
    AvgPrice,
    BookTicker,
    DepthUpdate,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Ticker,
    Trade,
)

__all__ = [
    "LiveView",
    "ProgressLine",
    "clip",
    "describe",
    "estimate_eta",
    "format_bytes",
    "format_duration",
    "progress_bar",
    "terminal_size",
]

_CLEAR_LINE = "\x1b[2K"
_CLEAR_TO_END = "\x1b[K"
_CLEAR_BELOW = "\x1b[J"
_CLEAR_SCREEN = "\x1b[H\x1b[2J"
#: control characters (a newline in an error message...) would move the cursor
_PRINTABLE = {code: " " for code in (*range(32), 127)}


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """``(columns, rows)`` of the terminal ``stream`` writes to; if unknown, ``COLUMNS``
    and ``LINES`` or 80x24."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        size = shutil.get_terminal_size()
    if size.columns <= 0 or size.lines <= 0:  # a pty nobody sized says 0x0
        size = shutil.get_terminal_size()
    return max(size.columns, 2), max(size.lines, 2)


def clip(line: str, width: int, ellipsis: str = "…") -> str:
    """``line`` with control characters blanked, cut to ``width`` columns (the last one
    an ellipsis when something was cut)."""
    line = line.translate(_PRINTABLE)
    if len(line) <= width:
        return line
    return line[: max(0, width - len(ellipsis))] + ellipsis[:width]


def _ellipsis(stream: TextIO) -> str:
    encoding = (getattr(stream, "encoding", None) or "ascii").lower().replace("-", "")
    return "…" if encoding in ("utf8", "utf_8") else "~"


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # closed stream
        return False


class LiveView:
    """A block of lines redrawn in place (TTY) or printed as plain lines (otherwise).

    ``render(lines)`` replaces the previous block. On a TTY the block owns the top of
    the screen: the first frame (and the first after a resize) clears the screen, then
    every line is written at its own row with absolute cursor addressing, clipped to one
    column less than the width (a full-width line would wrap on some terminals) and
    at most ``rows - 1`` lines are shown, so nothing ever wraps or scrolls; the cursor
    is left on the row below the block, where later output (a summary) goes. Relative
    cursor movement is not used on purpose: it miscounts as soon as one line wrapped
    or the terminal was resized. Otherwise ``plain`` (or, without it, the lines joined
    with ``sep``) is printed only if ``plain_interval`` seconds passed since the last
    print; ``force=True`` prints regardless (the final state).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        plain_interval: float = 1.0,
        sep: str = " | ",
        clock: Callable[[], float] = time.monotonic,
        size: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self._stream = stream
        self.tty = _is_tty(stream) if tty is None else tty
        self._plain_interval = plain_interval
        self._sep = sep
        self._clock = clock
        self._size = size or (lambda: terminal_size(stream))
        self._drawn_size: tuple[int, int] | None = None
        self._ellipsis = _ellipsis(stream)
        self._last_plain: float | None = None

    def render(
        self, lines: Sequence[str], *, force: bool = False, plain: str | None = None
    ) -> None:
        if self.tty:
            self._draw(lines)
            return
        now = self._clock()
        if (
            not force
            and self._last_plain is not None
            and now - self._last_plain < self._plain_interval
        ):
            return
        self._last_plain = now
        if plain is None:
            # column padding is for the TTY layout: one space is enough in a log line
            plain = self._sep.join(" ".join(line.split()) for line in lines)
        self._stream.write(plain.translate(_PRINTABLE) + "\n")
        self._stream.flush()

    def _draw(self, lines: Sequence[str]) -> None:
        size = self._size()
        columns, rows = size
        out = [] if size == self._drawn_size else [_CLEAR_SCREEN]
        self._drawn_size = size
        shown = lines[: rows - 1]
        for row, line in enumerate(shown, start=1):
            out.append(f"\x1b[{row};1H{clip(line, columns - 1, self._ellipsis)}{_CLEAR_TO_END}")
        out.append(f"\x1b[{len(shown) + 1};1H{_CLEAR_BELOW}")
        self._stream.write("".join(out))
        self._stream.flush()


class ProgressLine:
    """One status line updated in place on a TTY (``\\r``), or printed every
    ``plain_interval`` seconds otherwise; :meth:`finish` ends it with a newline."""

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        plain_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.tty = _is_tty(stream) if tty is None else tty
        self._plain_interval = plain_interval
        self._clock = clock
        self._last_plain: float | None = None
        self._open = False

    def update(self, text: str) -> None:
        if self.tty:
            # \r and erase-line only reach the cursor's row: a wrapped line would stay
            columns = terminal_size(self._stream)[0]
            text = clip(text, columns - 1, _ellipsis(self._stream))
            self._stream.write(f"\r{_CLEAR_LINE}{text}")
            self._stream.flush()
            self._open = True
            return
        now = self._clock()
        if self._last_plain is not None and now - self._last_plain < self._plain_interval:
            return
        self._last_plain = now
        self._stream.write(text + "\n")
        self._stream.flush()

    def finish(self, text: str | None = None) -> None:
        if self.tty:
            if text is not None:
                columns = terminal_size(self._stream)[0]
                text = clip(text, columns - 1, _ellipsis(self._stream))
                self._stream.write(f"\r{_CLEAR_LINE}{text}")
            if self._open or text is not None:
                self._stream.write("\n")
        elif text is not None:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._open = False


# -- numbers --------------------------------------------------------------------------------


def progress_bar(fraction: float, width: int = 30) -> str:
    """``[#########-----------]`` for ``fraction`` in 0..1 (clamped)."""
    if math.isnan(fraction):
        fraction = 0.0
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def format_duration(seconds: float | None) -> str:
    """``"4.2s"``, ``"3m05s"``, ``"2h03m"``; ``"?"`` when unknown."""
    if seconds is None or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_bytes(count: float) -> str:
    """``"512 B"``, ``"1.5 KiB"``, ``"12.0 MiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def estimate_eta(done: float, total: float, elapsed: float) -> float | None:
    """Seconds left at the average rate so far; ``None`` until there is a rate."""
    if done <= 0 or elapsed <= 0 or total <= 0:
        return None
    remaining = max(0.0, total - done)
    return remaining / (done / elapsed)


# -- models ---------------------------------------------------------------------------------


def _clock(ms: float) -> str:
    if not ms:
        return "--:--:--.---"
    moment = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _num(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:f}"


def _level(levels: Sequence[tuple[Decimal, Decimal]]) -> str:
    if not levels:
        return "-"
    price, qty = levels[0]
    return f"{price:f} x {qty:f}"


def _describe_ticker(model: Ticker) -> str:
    return (
        f"{_clock(model.event_time)} {model.symbol} ticker last={_num(model.last)} "
        f"bid={_num(model.bid)} ask={_num(model.ask)} high={_num(model.high)} "
        f"low={_num(model.low)} vol={_num(model.volume)}"
    )


def _describe_trade(model: Trade) -> str:
    kind = "aggTrade" if model.first_trade_id is not None else "trade"
    extra = " (backfilled)" if model.backfilled else ""
    return (
        f"{_clock(model.time)} {model.symbol} {kind} #{model.trade_id} {model.side} "
        f"{_num(model.quantity)} @ {_num(model.price)}{extra}"
    )


def _describe_book(model: OrderBook) -> str:
    return (
        f"{_clock(model.event_time or model.received_at)} {model.symbol} book "
        f"#{model.update_id} bid {_level(model.bids)} | ask {_level(model.asks)} "
        f"spread={_num(model.spread)} levels={len(model.bids)}/{len(model.asks)}"
    )


def _describe_book_ticker(model: BookTicker) -> str:
    return (
        f"{_clock(model.event_time or model.received_at)} {model.symbol} bookTicker "
        f"bid {_num(model.bid)} x {_num(model.bid_qty)} | "
        f"ask {_num(model.ask)} x {_num(model.ask_qty)}"
    )


def _describe_mini_ticker(model: MiniTicker) -> str:
    return (
        f"{_clock(model.event_time)} {model.symbol} miniTicker close={_num(model.close)} "
        f"open={_num(model.open)} high={_num(model.high)} low={_num(model.low)} "
        f"vol={_num(model.volume)}"
    )


def _describe_kline(model: Kline) -> str:
    state = "closed" if model.closed else "open"
    return (
        f"{_clock(model.event_time)} {model.symbol} kline {model.interval} "
        f"{_clock(model.open_time)} o={_num(model.open)} h={_num(model.high)} "
        f"l={_num(model.low)} c={_num(model.close)} v={_num(model.volume)} "
        f"trades={model.trades} {state}"
    )


def _describe_depth(model: DepthUpdate) -> str:
    return (
        f"{_clock(model.event_time)} {model.symbol} depthUpdate "
        f"{model.first_update_id}..{model.final_update_id} "
        f"bids={len(model.bids)} asks={len(model.asks)}"
    )


def _describe_mark_price(model: MarkPrice) -> str:
    return (
        f"{_clock(model.event_time)} {model.symbol} markPrice {_num(model.mark_price)} "
        f"index={_num(model.index_price)} funding={_num(model.funding_rate)}"
    )


def _describe_avg_price(model: AvgPrice) -> str:
    return (
        f"{_clock(model.event_time)} {model.symbol} avgPrice {_num(model.price)} ({model.interval})"
    )


def _describe_liquidation(model: Liquidation) -> str:
    return (
        f"{_clock(model.event_time)} {model.symbol} liquidation {model.side} "
        f"{_num(model.quantity)} @ {_num(model.price)} {model.status}"
    )


#: One line per model type, checked in this order (``isinstance``, so subclasses match).
_DESCRIBERS: tuple[tuple[type[Any], Callable[[Any], str]], ...] = (
    (Ticker, _describe_ticker),
    (Trade, _describe_trade),
    (OrderBook, _describe_book),
    (BookTicker, _describe_book_ticker),
    (MiniTicker, _describe_mini_ticker),
    (Kline, _describe_kline),
    (DepthUpdate, _describe_depth),
    (MarkPrice, _describe_mark_price),
    (AvgPrice, _describe_avg_price),
    (Liquidation, _describe_liquidation),
)


def describe(model: Any) -> str:
    """One human line for any model (falls back to ``repr``), time first (UTC)."""
    for model_type, describer in _DESCRIBERS:
        if isinstance(model, model_type):
            return describer(model)
    return repr(model)
