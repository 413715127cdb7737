"""``rxconnector history``: klines over a date range to a CSV file."""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Final

from reactivex import Observable
from reactivex import operators as ops

from rxconnector.arguments import FeedRequest, UsageError, check_feed, make_config, parse_time
from rxconnector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    add_urls,
    check_output,
    examples,
    out,
    running,
)
from rxconnector.config import Config
from rxconnector.errors import RxConnectorError
from rxconnector.models import Kline
from rxconnector.terminal import ProgressLine, estimate_eta, format_duration, progress_bar

__all__ = ["add_parser", "prepare"]


def add_parser(commands: Any, fmt: type[argparse.HelpFormatter], venues: str) -> None:
    """The ``history`` sub-command."""
    history = commands.add_parser(
        "history",
        help="download klines over a date range to CSV",
        description="Download every candle between --start and --end (UTC) to a CSV file.",
        epilog=examples(
            "rxconnector history binance BTCUSDT 1h --start 2024-01-01 --end 2024-02-01 "
            "-o btc-1h.csv",
            "rxconnector history bybit ETHUSDT 1d --start 2023-01-01 --end 2024-01-01 -o eth.csv",
        ),
        formatter_class=fmt,
    )
    history.set_defaults(command_parser=history)
    history.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    history.add_argument("symbol", metavar="SYMBOL")
    history.add_argument("interval", metavar="INTERVAL", help="kline interval, e.g. 1m, 1h, 1d")
    history.add_argument("--start", required=True, help="ISO date/time (UTC), inclusive")
    history.add_argument("--end", required=True, help="ISO date/time (UTC), exclusive")
    history.add_argument("-o", "--output", required=True, metavar="FILE.csv")
    add_urls(history)


def prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Check venue, symbol, interval, range and output; the coroutine factory that downloads."""
    config = make_config(args.venue, args.rest_url, args.ws_url)
    symbol = check_feed(config, FeedRequest("klines", (args.interval,)), args.symbol)
    start = parse_time(args.start, "--start")
    end = parse_time(args.end, "--end")
    if end <= start:
        raise UsageError(f"--end ({args.end}) must be after --start ({args.start})")
    check_output(args.output)
    return lambda: _history(args, config, symbol, start, end)


_CSV_COLUMNS: Final = (
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
)


async def _history(
    args: argparse.Namespace, config: Config, symbol: str, start: int, end: int
) -> int:
    try:
        return await _download_history(args, config, symbol, start, end)
    except _EmptyHistory as exc:
        out(sys.stderr, f"rxconnector history: {exc}")
        return EXIT_FAILURE


async def _download_history(
    args: argparse.Namespace, config: Config, symbol: str, start: int, end: int
) -> int:
    from rxconnector.connector import Connector

    progress = ProgressLine(sys.stdout)
    started = time.monotonic()
    partial = args.output + ".part"  # renamed on success: no half file under the real name

    with _csv_file(partial) as writer:
        writer.writerow(_CSV_COLUMNS)
        on_kline = _CsvRows(writer, progress, start, end, started)
        async with running(Connector(config)) as conn:
            # --end is exclusive; the REST walk includes a candle opening at its end
            candles: Observable[Kline] = conn.kline_history(symbol, args.interval, start, end - 1)
            tapped: Observable[Kline] = candles.pipe(ops.do_action(on_kline))
            counted: Observable[int] = tapped.pipe(ops.count())
            total = await counted
        if total == 0:
            # an empty CSV under the real name would look like a finished download
            raise _EmptyHistory(
                f"no {args.interval} candles of {symbol} between {args.start} and {args.end} "
                f"on {config.exchange} (not listed or not trading then?); nothing written"
            )
    os.replace(partial, args.output)
    progress.finish(
        f"wrote {args.output}: {total} {args.interval} candles of {symbol} in "
        f"{format_duration(time.monotonic() - started)}"
    )
    return EXIT_OK


class _CsvRows:
    """Writes each candle as a CSV row and redraws the progress line (share of the
    range done, rows written, ETA)."""

    def __init__(
        self, writer: Any, progress: ProgressLine, start: int, end: int, started: float
    ) -> None:
        self._writer = writer
        self._progress = progress
        self._start = start
        self._span = end - start
        self._started = started
        self.rows = 0

    def __call__(self, kline: Kline) -> None:
        self.rows += 1
        self._writer.writerow(
            (
                kline.open_time,
                kline.close_time,
                kline.open,
                kline.high,
                kline.low,
                kline.close,
                kline.volume,
                kline.quote_volume,
                kline.trades,
            )
        )
        span = self._span
        done = min(span, max(0, kline.close_time + 1 - self._start))
        eta = estimate_eta(done, span, time.monotonic() - self._started)
        self._progress.update(
            f"{progress_bar(done / span)} {100 * done / span:5.1f}%  {self.rows} candles  "
            f"ETA {format_duration(eta)}"
        )


class _EmptyHistory(RxConnectorError):
    """``history`` found no candles in the range (exit 1, the CSV is not written)."""


@contextlib.contextmanager
def _csv_file(path: str) -> Iterator[Any]:
    """A csv writer on ``path``; the file is removed again if the download fails."""
    handle = open(path, "w", newline="")  # noqa: SIM115 - closed below
    try:
        yield csv.writer(handle)
    except BaseException:
        handle.close()
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    handle.close()
