"""Terminal output for the CLI: in-place live views, progress lines, one-line models.

A live view is only worth drawing when a person watches it: on a TTY the block of
lines is redrawn in place with ANSI cursor movement; when stdout is a pipe or a file
(CI logs, ``| grep``) the same content is written as plain lines, at most once per
``plain_interval`` seconds, so logs stay readable and greppable. Nothing here knows
about connectors; the CLI feeds it strings.
"""

from __future__ import annotations

import math
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
    "describe",
    "estimate_eta",
    "format_bytes",
    "format_duration",
    "progress_bar",
]

_CLEAR_LINE = "\x1b[2K"
_CLEAR_BELOW = "\x1b[J"


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # closed stream
        return False


class LiveView:
    """A block of lines redrawn in place (TTY) or printed as plain lines (otherwise).

    ``render(lines)`` replaces the previous block. On a TTY the cursor moves up over the
    previous block, each line is cleared and rewritten, and anything left below from a
    taller block is erased. Otherwise the block is printed (lines joined with ``sep``)
    only if ``plain_interval`` seconds passed since the last print; ``force=True``
    prints regardless (the final state).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        plain_interval: float = 1.0,
        sep: str = " | ",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.tty = _is_tty(stream) if tty is None else tty
        self._plain_interval = plain_interval
        self._sep = sep
        self._clock = clock
        self._height = 0
        self._last_plain: float | None = None

    def render(self, lines: Sequence[str], *, force: bool = False) -> None:
        if self.tty:
            out = [f"\x1b[{self._height}F"] if self._height else []
            out.extend(f"{_CLEAR_LINE}{line}\n" for line in lines)
            out.append(_CLEAR_BELOW)
            self._stream.write("".join(out))
            self._stream.flush()
            self._height = len(lines)
            return
        now = self._clock()
        if (
            not force
            and self._last_plain is not None
            and now - self._last_plain < self._plain_interval
        ):
            return
        self._last_plain = now
        # column padding is for the TTY layout: one space is enough in a log line
        self._stream.write(self._sep.join(" ".join(line.split()) for line in lines) + "\n")
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


def describe(model: Any) -> str:
    """One human line for any model (falls back to ``repr``), time first (UTC)."""
    if isinstance(model, Ticker):
        return (
            f"{_clock(model.event_time)} {model.symbol} ticker last={_num(model.last)} "
            f"bid={_num(model.bid)} ask={_num(model.ask)} high={_num(model.high)} "
            f"low={_num(model.low)} vol={_num(model.volume)}"
        )
    if isinstance(model, Trade):
        kind = "aggTrade" if model.first_trade_id is not None else "trade"
        extra = " (backfilled)" if model.backfilled else ""
        return (
            f"{_clock(model.time)} {model.symbol} {kind} #{model.trade_id} {model.side} "
            f"{_num(model.quantity)} @ {_num(model.price)}{extra}"
        )
    if isinstance(model, OrderBook):
        return (
            f"{_clock(model.event_time or model.received_at)} {model.symbol} book "
            f"#{model.update_id} bid {_level(model.bids)} | ask {_level(model.asks)} "
            f"spread={_num(model.spread)} levels={len(model.bids)}/{len(model.asks)}"
        )
    if isinstance(model, BookTicker):
        return (
            f"{_clock(model.event_time or model.received_at)} {model.symbol} bookTicker "
            f"bid {_num(model.bid)} x {_num(model.bid_qty)} | "
            f"ask {_num(model.ask)} x {_num(model.ask_qty)}"
        )
    if isinstance(model, MiniTicker):
        return (
            f"{_clock(model.event_time)} {model.symbol} miniTicker close={_num(model.close)} "
            f"open={_num(model.open)} high={_num(model.high)} low={_num(model.low)} "
            f"vol={_num(model.volume)}"
        )
    if isinstance(model, Kline):
        state = "closed" if model.closed else "open"
        return (
            f"{_clock(model.event_time)} {model.symbol} kline {model.interval} "
            f"{_clock(model.open_time)} o={_num(model.open)} h={_num(model.high)} "
            f"l={_num(model.low)} c={_num(model.close)} v={_num(model.volume)} "
            f"trades={model.trades} {state}"
        )
    if isinstance(model, DepthUpdate):
        return (
            f"{_clock(model.event_time)} {model.symbol} depthUpdate "
            f"{model.first_update_id}..{model.final_update_id} "
            f"bids={len(model.bids)} asks={len(model.asks)}"
        )
    if isinstance(model, MarkPrice):
        return (
            f"{_clock(model.event_time)} {model.symbol} markPrice {_num(model.mark_price)} "
            f"index={_num(model.index_price)} funding={_num(model.funding_rate)}"
        )
    if isinstance(model, AvgPrice):
        return (
            f"{_clock(model.event_time)} {model.symbol} avgPrice {_num(model.price)} "
            f"({model.interval})"
        )
    if isinstance(model, Liquidation):
        return (
            f"{_clock(model.event_time)} {model.symbol} liquidation {model.side} "
            f"{_num(model.quantity)} @ {_num(model.price)} {model.status}"
        )
    return repr(model)
