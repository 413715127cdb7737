"""What ``rxconnector demo`` shows, and the faults its ``--faults`` option injects.

Kept apart from :mod:`rxconnector.cli` because it is a view, not argument handling: the
state the demo's subscribers update and the lines the live view draws from it, plus the
fault injector (``sim --faults-every`` reuses it).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from rxconnector.models import (
    BreakerState,
    ClockOffset,
    ConnectionEvent,
    ConnectionState,
    OrderBook,
    SymbolInfo,
    Ticker,
    Trade,
)

__all__ = ["DemoState", "inject_faults", "shown"]


def shown(value: Decimal | None, increment: Decimal | None = None) -> str:
    """``value`` as a person reads it: at ``increment``'s precision (a symbol's tick or
    step: ``60005.41``, not the wire's ``60005.41000000``), or without trailing zeros
    when the increment is unknown; ``-`` for ``None``."""
    if value is None:
        return "-"
    exponent = increment.as_tuple().exponent if increment is not None else None
    if increment is not None and isinstance(exponent, int) and exponent <= 0:
        return f"{value.quantize(increment):f}"
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class DemoState:
    """What the demo view shows, updated by the pipelines' subscribers."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.ticks = 0
        self.ticker: Ticker | None = None
        self.trades = 0
        self.windows = 0
        self.vwap: Decimal | None = None
        self.window_count = 0
        self.books = 0
        self.crossed_books = 0
        self.book: OrderBook | None = None
        self.states: dict[str, ConnectionState] = {}
        self.last_event = ""
        self.reconnects = 0
        self.breaker: BreakerState | None = None
        self.offset: ClockOffset | None = None
        self.errors = 0
        self.last_error = ""
        self.faults: list[str] = []
        self.tick_size: Decimal | None = None
        self.step_size: Decimal | None = None

    def on_symbol_info(self, info: SymbolInfo) -> None:
        """Show prices at the symbol's tick and quantities at its step."""
        self.tick_size = info.tick_size
        self.step_size = info.step_size

    def _p(self, value: Decimal | None) -> str:
        return shown(value, self.tick_size)

    def _q(self, value: Decimal | None) -> str:
        return shown(value, self.step_size)

    def on_ticker(self, ticker: Ticker) -> None:
        self.ticks += 1
        self.ticker = ticker

    def on_window(self, window: list[Trade]) -> None:
        self.windows += 1
        self.trades += len(window)
        self.window_count = len(window)
        volume = sum((t.quantity for t in window), Decimal(0))
        if volume:
            notional = sum((t.price * t.quantity for t in window), Decimal(0))
            self.vwap = (notional / volume).quantize(window[0].price)

    def on_book(self, book: OrderBook) -> None:
        self.books += 1
        self.book = book
        if book.is_crossed:
            self.crossed_books += 1

    def on_state(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.CLOSED:
            self.states.pop(event.connection_id, None)
        else:
            self.states[event.connection_id] = event.state
        if event.state is ConnectionState.RECONNECTING:
            self.reconnects += 1
            self.last_event = (
                f"reconnecting {event.connection_id} (attempt {event.attempt}, "
                f"in {event.delay:.1f}s): {event.reason}"
            )
        else:
            reason = f": {event.reason}" if event.reason else ""
            self.last_event = f"{event.state.value} {event.connection_id}{reason}"

    def on_error(self, error: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"[:100]

    def lines(self, header: str) -> list[str]:
        """The live view on a terminal: the header and one row per subject. Rows may be
        longer than a narrow terminal: the view clips them, so each starts with what
        matters most (the counters)."""
        sym = self.symbol
        t = self.ticker
        p, q = self._p, self._q
        ticker = (
            f"last {p(t.last)}  high {p(t.high)}  low {p(t.low)}  vol {q(t.volume)}"
            if t is not None
            else "waiting..."
        )
        vwap = p(self.vwap)
        book = self.book
        if book is not None and book.bids and book.asks:
            top = (
                f"bid {p(book.bids[0][0])} x {q(book.bids[0][1])} | ask {p(book.asks[0][0])} x "
                f"{q(book.asks[0][1])}  spread {p(book.spread)}"
            )
        else:
            top = "waiting for a consistent book..."
        states = ", ".join(s.value for s in self.states.values()) or "none"
        breaker = self.breaker.value if self.breaker is not None else "?"
        offset = f"{self.offset.offset_ms:+.1f} ms" if self.offset is not None else "?"
        # short labels and the counters first: an 80-column terminal shows them all
        return [
            header,
            f"ticker      {sym} ({self.ticks})  {ticker}",
            f"trades      {self.trades} total, {self.window_count} in 1 s  vwap {vwap}",
            f"book        ({self.books})  {top}",
            f"health      errors {self.errors}  reconnects {self.reconnects}  ws {states}  "
            f"breaker {breaker}  clock {offset}",
            f"last event  {self.last_event or '-'}",
            f"last error  {self.last_error or '-'}",
            f"faults      {', '.join(self.faults[-3:]) or '-'}",
        ]

    def status_line(self, elapsed: str) -> str:
        """The one short line written instead of the live view when stdout is not a
        terminal (a CI log, ``| grep``): every second, the essentials only."""
        t, book = self.ticker, self.book
        last = self._p(t.last) if t is not None else "-"
        if book is not None and book.bids and book.asks:
            top = f"{self._p(book.bids[0][0])}/{self._p(book.asks[0][0])}"
        else:
            top = "-"
        states = ",".join(sorted({s.value for s in self.states.values()})) or "none"
        fault = f" fault {self.faults[-1]}" if self.faults else ""
        return (
            f"rxconnector demo {elapsed} {self.symbol} last {last} trades {self.trades} "
            f"book {top} ws {states} reconnects {self.reconnects} errors {self.errors}{fault}"
        )

    def summary(self, seconds: float) -> list[str]:
        book = self.book
        consistent = (
            "all consistent" if self.crossed_books == 0 else f"{self.crossed_books} CROSSED"
        )
        lines = [
            f"summary after {seconds:.1f}s: ticks={self.ticks} trades={self.trades} "
            f"books={self.books} ({consistent}) reconnects={self.reconnects} "
            f"errors={self.errors}",
        ]
        if book is not None and book.bids and book.asks:
            lines.append(
                f"last book: {self.symbol} #{book.update_id} bid {self._p(book.bids[0][0])} "
                f"ask {self._p(book.asks[0][0])} spread {self._p(book.spread)} "
                f"({len(book.bids)} bids / {len(book.asks)} asks, crossed={book.is_crossed})"
            )
        t = self.ticker
        if t is not None:
            lines.append(
                f"last ticker: {self.symbol} last {self._p(t.last)} bid {self._p(t.bid)} "
                f"ask {self._p(t.ask)} high {self._p(t.high)} low {self._p(t.low)} "
                f"vol {self._q(t.volume)}"
            )
        return lines


async def inject_faults(sim: Any, state: DemoState, every: float) -> None:
    """Alternate an abrupt disconnect and a stall every ``every`` seconds."""
    n = 0
    while True:
        await asyncio.sleep(every)
        n += 1
        if n % 2:
            dropped = await sim.drop_connections()
            state.faults.append(f"#{n} dropped {dropped} connection(s)")
        else:
            stall = max(every * 0.6, 2.0)
            sim.stall(stall)
            state.faults.append(f"#{n} stalled {stall:.1f}s")
