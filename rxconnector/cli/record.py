"""``rxconnector record``: raw feeds to a recording file, for ``replay``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from rxconnector.arguments import (
    FeedRequest,
    UsageError,
    check_feed,
    make_config,
    parse_feed,
    parse_list,
    positive_float,
)
from rxconnector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    ConnectionReport,
    add_urls,
    check_output,
    examples,
    out,
    run_for,
    running,
)
from rxconnector.config import Config
from rxconnector.terminal import ProgressLine, format_bytes, format_duration

if TYPE_CHECKING:
    from rxconnector.replay import RecordingConnector

__all__ = ["add_parser", "prepare"]


def add_parser(commands: Any, fmt: type[argparse.HelpFormatter], venues: str) -> None:
    """The ``record`` sub-command."""
    record = commands.add_parser(
        "record",
        help="record raw feeds to a zstd JSON-lines file (gzip if the name ends in .gz)",
        description=(
            "Subscribe FEEDS x SYMBOLS and write every raw frame with its receive time (and "
            "the REST snapshots the order book needed) to FILE, for 'rxconnector replay' "
            "and rxconnector.replay.open(). API keys are never written."
        ),
        epilog=examples(
            "rxconnector record binance trades,ticker BTCUSDT,ETHUSDT -o md.jsonl.gz",
            "rxconnector record binance order_book:10,klines:1m BTCUSDT -o btc.jsonl.gz "
            "--seconds 300",
        ),
        formatter_class=fmt,
    )
    record.set_defaults(command_parser=record)
    record.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    record.add_argument("feeds", metavar="FEEDS", help="comma-separated, e.g. trades,klines:1m")
    record.add_argument("symbols", metavar="SYMBOLS", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    record.add_argument(
        "--force", action="store_true", help="overwrite FILE if it exists (refused otherwise)"
    )
    record.add_argument("--seconds", type=positive_float, help="stop after N seconds")
    add_urls(record)


def prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Check venue, feeds, symbols and the output file; the coroutine factory that records."""
    config = make_config(args.venue, args.rest_url, args.ws_url)
    feeds = [parse_feed(text) for text in parse_list(args.feeds, "FEEDS")]
    symbols = tuple(
        check_feed(config, feed, symbol)
        for symbol in parse_list(args.symbols, "SYMBOLS")
        for feed in feeds
    )
    symbols = tuple(dict.fromkeys(symbols))
    check_output(args.output)
    if os.path.exists(args.output) and not args.force:
        # a recording cannot be made again: never replace one by accident
        raise UsageError(f"{args.output} already exists; pass --force to overwrite it")
    return lambda: _record(args, config, feeds, symbols)


async def _record(
    args: argparse.Namespace,
    config: Config,
    feeds: list[FeedRequest],
    symbols: tuple[str, ...],
) -> int:
    from rxconnector.replay import RecordingConnector

    progress = ProgressLine(sys.stdout)
    failures: list[str] = []
    started = time.monotonic()
    conn = RecordingConnector(config, args.output, feeds=[f.label for f in feeds], symbols=symbols)
    report = ConnectionReport(getattr(args, "verbose", 0), "record")
    all_failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    wanted = len(feeds) * len(symbols)
    try:
        async with running(conn):
            subscriptions = [conn.connection_state.subscribe(report.on_event)]
            for feed in feeds:
                for symbol in symbols:

                    def failed(error: Exception, label: str = f"{feed.label} {symbol}") -> None:
                        failures.append(f"{label}: {error}")
                        # nothing left to record: stop now, not after --seconds
                        if len(failures) >= wanted and not all_failed.done():
                            all_failed.set_result(None)

                    subscriptions.append(feed.open(conn, symbol).subscribe(on_error=failed))

            def show() -> None:
                progress.update(_status(conn, started))

            try:
                await run_for(args.seconds, show, all_failed)
            finally:
                for subscription in subscriptions:
                    subscription.dispose()
    finally:
        _finish(conn, args.output, progress, started, failures)
    writer = conn.writer
    why = report.why_nothing() if writer is None or writer.frames == 0 else None
    if why is not None and not failures:
        out(sys.stderr, f"rxconnector record: {why}")
        return EXIT_FAILURE
    return EXIT_FAILURE if failures else EXIT_OK


def _status(conn: RecordingConnector, started: float) -> str:
    """The progress line: frames, bytes received and written, rate, time."""
    writer = conn.writer
    if writer is None:
        return "starting..."
    elapsed = max(time.monotonic() - started, 1e-9)
    return (
        f"recording {writer.frames} frames  {format_bytes(writer.frame_bytes)} received  "
        f"{format_bytes(writer.file_bytes)} written  "
        f"{writer.frames / elapsed:.1f} frames/s  {format_duration(elapsed)}"
    )


def _finish(
    conn: RecordingConnector,
    output: str,
    progress: ProgressLine,
    started: float,
    failures: list[str],
) -> None:
    """The last progress line (what was written) and every feed that failed."""
    writer = conn.writer
    if writer is not None:
        progress.finish(
            f"wrote {output}: {writer.frames} frames, {format_bytes(writer.file_bytes)} "
            f"in {format_duration(time.monotonic() - started)}"
        )
    else:
        progress.finish()
    for failure in failures:
        out(sys.stderr, f"! {failure}")
