"""``rxconnector watch``: print one feed of one venue live."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from rxconnector.arguments import (
    FeedRequest,
    check_feed,
    make_config,
    parse_feed,
    positive_float,
)
from rxconnector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    ConnectionReport,
    ModelPrinter,
    add_urls,
    examples,
    out,
    run_for,
    running,
)
from rxconnector.config import Config
from rxconnector.errors import SubscriptionError

__all__ = ["add_parser", "prepare", "watch"]


def add_parser(commands: Any, fmt: type[argparse.HelpFormatter], venues: str, feeds: str) -> None:
    """The ``watch`` sub-command."""
    watch = commands.add_parser(
        "watch",
        help="print one feed of one venue live",
        description=f"Print a feed live. Venues: {venues}. Feeds: {feeds}.",
        epilog=examples(
            "rxconnector watch binance ticker BTCUSDT",
            "rxconnector watch binance klines BTCUSDT 1m --seconds 30",
            "rxconnector watch binance order_book BTCUSDT 10",
            "rxconnector watch binance_futures mark_price BTCUSDT",
            "rxconnector watch bybit-linear trades BTCUSDT",
            "rxconnector watch binance trades BTCUSDT --rest-url http://127.0.0.1:8765 "
            "--ws-url ws://127.0.0.1:8765",
        ),
        formatter_class=fmt,
    )
    watch.set_defaults(command_parser=watch)
    watch.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    watch.add_argument("feed", metavar="FEED", help=f"one of: {feeds}")
    watch.add_argument("symbol", metavar="SYMBOL", help="e.g. BTCUSDT")
    watch.add_argument("args", metavar="ARGS", nargs="*", help="feed arguments (klines: 1m)")
    add_urls(watch)
    watch.add_argument("--seconds", type=positive_float, help="stop after N seconds")


def prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Check venue, feed and symbol; the coroutine factory that watches."""
    config = make_config(args.venue, args.rest_url, args.ws_url)
    feed = parse_feed(args.feed, args.args)
    symbol = check_feed(config, feed, args.symbol)
    return lambda: watch(args, config, feed, symbol)


async def watch(args: argparse.Namespace, config: Config, feed: FeedRequest, symbol: str) -> int:
    from rxconnector.connector import Connector

    printed = ModelPrinter()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[BaseException | None] = loop.create_future()

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_result(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(None)

    def on_problem(error: Exception) -> None:
        # A rejected subscription also fails the feed, which says so below: once.
        if not isinstance(error, SubscriptionError):
            out(sys.stderr, f"! {type(error).__name__}: {error}")

    report = ConnectionReport(getattr(args, "verbose", 0), "watch")
    async with running(Connector(config)) as conn:
        errors = conn.errors.subscribe(on_problem)
        states = conn.connection_state.subscribe(report.on_event)
        subscription = feed.open(conn, symbol).subscribe(printed, on_error, on_completed)
        try:
            await run_for(args.seconds, sys.stdout.flush, done)
        finally:
            subscription.dispose()
            errors.dispose()
            states.dispose()
            sys.stdout.flush()
    error = done.result() if done.done() else None
    if error is not None:
        out(sys.stderr, f"rxconnector watch: {feed.label} {symbol} failed: {error}")
        return EXIT_FAILURE
    why = report.why_nothing() if printed.count == 0 else None
    if why is not None:
        out(sys.stderr, f"rxconnector watch: {feed.label} {symbol}: {why}")
        return EXIT_FAILURE
    out(sys.stderr, f"{printed.count} {feed.label} message(s) from {config.exchange} {symbol}")
    return EXIT_OK
