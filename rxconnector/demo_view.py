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
    Ticker,
    Trade,
)
from rxconnector.terminal import describe

__all__ = ["DemoState", "inject_faults"]


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
        sym = self.symbol
        t = self.ticker
        ticker = (
            f"last {t.last:f}  high {t.high:f}  low {t.low:f}  vol {t.volume:f}"
            if t is not None
            else "waiting..."
        )
        vwap = f"{self.vwap:f}" if self.vwap is not None else "-"
        book = self.book
        if book is not None and book.bids and book.asks:
            shown = (
                f"bid {book.bids[0][0]:f} x {book.bids[0][1]:f} | ask {book.asks[0][0]:f} x "
                f"{book.asks[0][1]:f}  spread {book.spread:f}"
            )
        else:
            shown = "waiting for a consistent book..."
        states = ", ".join(s.value for s in self.states.values()) or "none"
        breaker = self.breaker.value if self.breaker is not None else "?"
        offset = f"{self.offset.offset_ms:+.1f} ms" if self.offset is not None else "?"
        return [
            header,
            f"{sym} ticker     {ticker}   ticks {self.ticks}",
            f"trades (1 s)      vwap {vwap}  count {self.window_count}   total {self.trades}",
            f"book (depth 10)   {shown}   books {self.books}",
            f"health            ws {states}  breaker {breaker}  clock {offset}  "
            f"errors {self.errors}  reconnects {self.reconnects}",
            f"last event        {self.last_event or '-'}",
            f"last error        {self.last_error or '-'}",
            f"faults            {', '.join(self.faults[-3:]) or '-'}",
        ]

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
                f"last book: {self.symbol} #{book.update_id} bid {book.bids[0][0]:f} "
                f"ask {book.asks[0][0]:f} spread {book.spread:f} "
                f"({len(book.bids)} bids / {len(book.asks)} asks, crossed={book.is_crossed})"
            )
        if self.ticker is not None:
            lines.append(f"last ticker: {describe(self.ticker)}")
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
