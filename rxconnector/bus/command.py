"""``rxconnector publish``: the feed-handler command (a thin layer over :class:`Publisher`).

Importable without the redis client (the CLI builds its parser from here); the publisher
itself is imported when the command runs. Its argument checks come from
:mod:`rxconnector.arguments`, shared with the CLI (the bus never imports the CLI).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from rxconnector.arguments import positive_float  # the other commands' check: > 0, finite

__all__ = ["add_publish_parser", "prepare_publish"]

EXAMPLES = (
    "rxconnector publish binance --feeds trades,order_book,ticker --symbols BTCUSDT,ETHUSDT "
    "--redis redis://127.0.0.1:6379/0",
    "rxconnector publish binance --feeds trades --symbols BTCUSDT --redis redis://10.0.0.5:6379/0"
    "   # again on a second host: hot standby",
    "rxconnector publish binance-futures --feeds agg_trades,order_book --symbols BTCUSDT "
    "--depth 10 --metrics-port 9108",
    "rxconnector publish binance --feeds trades --symbols BTCUSDT "
    "--rest-url http://127.0.0.1:8765 --ws-url ws://127.0.0.1:8765",
)


def add_publish_parser(commands: Any, examples: Callable[..., str], venues: str) -> None:
    """Add the ``publish`` sub-command to the CLI's sub-parsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    publish = commands.add_parser(
        "publish",
        help="publish normalized feeds to Redis Streams (feed handler for RemoteConnector)",
        description=(
            "Publish FEEDS x SYMBOLS of one venue to Redis Streams rxc:{venue}:{feed}:{SYMBOL} "
            "until stopped (SIGTERM: flush, exit 0; Ctrl-C: flush, exit 130). Run the same "
            "command on a second host for a hot standby: a lease per stream decides who "
            f"writes. Venues: {venues}. Needs pip install 'rxconnector[redis]'."
        ),
        epilog=examples(*EXAMPLES),
        formatter_class=fmt,
    )
    publish.set_defaults(command_parser=publish)
    publish.add_argument("venue", metavar="VENUE", help=f"one of: {venues}")
    publish.add_argument(
        "--feeds", required=True, help="comma-separated, e.g. trades,order_book,ticker,klines:1m"
    )
    publish.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    publish.add_argument(
        "--redis", default="redis://127.0.0.1:6379/0", metavar="URL", help="Redis URL"
    )
    publish.add_argument("--rest-url", metavar="URL", help="REST base URL (e.g. the simulator)")
    publish.add_argument("--ws-url", metavar="URL", help="WebSocket base URL")
    publish.add_argument(
        "--depth", type=_positive_int, default=20, help="order_book depth (default 20)"
    )
    publish.add_argument(
        "--maxlen",
        type=_positive_int,
        default=1_000_000,
        help="approximate entries kept per stream (default 1000000)",
    )
    publish.add_argument(
        "--metrics-port", type=int, metavar="P", help="serve Prometheus metrics on port P"
    )
    _add_daemon_options(publish)


def _add_daemon_options(publish: Any) -> None:
    """Leases, the rewrite ring, status lines and the run time."""
    publish.add_argument(
        "--lease-ms",
        type=_positive_int,
        default=5000,
        help="lease time per stream in ms; a standby takes over after it (default 5000)",
    )
    publish.add_argument("--holder", help="this publisher's name in leases (default host:pid)")
    publish.add_argument(
        "--rewrite-ring",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="acknowledged trades kept per trade stream to write again into a Redis that "
        "lost them (restarted empty, an older replica); beyond N they come over REST "
        "(default 10000, about 4.5 MB per trade stream)",
    )
    publish.add_argument(
        "--status-every",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="status line period",
    )
    publish.add_argument("--seconds", type=positive_float, help="stop after N seconds (exit 0)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def prepare_publish(args: argparse.Namespace) -> Callable[[], Any]:
    """Validate the arguments (UsageError) and return the coroutine factory to run."""
    from rxconnector import arguments as cli  # what the command line accepts, as the CLI

    config = cli.make_config(args.venue, args.rest_url, args.ws_url)
    targets_args: list[tuple[str, str, tuple[Any, ...]]] = []
    for text in cli.parse_list(args.feeds, "--feeds"):
        feed = cli.parse_feed(text)
        if feed.name == "order_book" and not feed.args:
            feed = cli.FeedRequest("order_book", (args.depth,))
        from rxconnector.bus.codec import FEED_TYPES

        if feed.name not in FEED_TYPES:
            raise cli.UsageError(
                f"feed {feed.name!r} cannot be published; choose from: {', '.join(FEED_TYPES)}"
            )
        for symbol in cli.parse_list(args.symbols, "--symbols"):
            targets_args.append((feed.name, cli.check_feed(config, feed, symbol), feed.args))
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise cli.UsageError(f"--metrics-port must be 0..65535, got {args.metrics_port}")
    if not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise cli.UsageError(f"--redis must be a redis:// URL, got {args.redis!r}")
    try:
        from rxconnector.bus import require_redis

        require_redis()
    except ImportError as exc:
        raise cli.UsageError(str(exc)) from None
    return lambda: run_publish(args, config, targets_args)


async def run_publish(
    args: argparse.Namespace, config: Any, targets_args: Sequence[tuple[str, str, tuple[Any, ...]]]
) -> int:
    """Run a Publisher until SIGTERM (exit 0), SIGINT (exit 130) or ``--seconds``."""
    from rxconnector.bus.publisher import Publisher
    from rxconnector.bus.slots import FeedTarget

    targets = [FeedTarget(name, symbol, feed_args) for name, symbol, feed_args in targets_args]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    status = {"code": 0}

    def on_signal(code: int) -> None:
        status["code"] = code
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_signal, 0)
    loop.add_signal_handler(signal.SIGINT, on_signal, 130)
    publisher = Publisher(
        config,
        args.redis,
        targets,
        venue=args.venue,
        maxlen=args.maxlen,
        lease_ms=args.lease_ms,
        rewrite_ring=args.rewrite_ring,
        holder=args.holder,
        report=lambda error: _say(sys.stderr, f"! {type(error).__name__}: {error}"),
    )
    metrics = None
    try:
        await publisher.start()
        # A daemon's start-up objects (modules, config, the connector) never die: keep
        # them out of the collector's full passes, which otherwise pause the feed for
        # tens of ms (measured 26 ms) while walking them.
        gc.freeze()
        if args.metrics_port is not None:
            from rxconnector.bus.metrics import PublisherMetrics

            metrics = PublisherMetrics(publisher)
            metrics.serve(args.metrics_port)
        _say(
            sys.stdout,
            f"rxconnector publish {publisher.venue} as {publisher.holder}: "
            f"{len(targets)} streams to {args.redis.split('@')[-1]}",
        )
        await _status_until(stop, publisher, args.status_every, args.seconds)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)
        await publisher.stop()
        if metrics is not None:
            metrics.close()
    _say(sys.stdout, f"rxconnector publish stopped: {status_line(publisher)}")
    if status["code"] == 130:
        _say(sys.stderr, "rxconnector publish: interrupted")
    return status["code"]


async def _status_until(
    stop: asyncio.Event, publisher: Any, every: float, seconds: float | None
) -> None:
    """A status line every ``every`` s until ``stop`` is set or ``seconds`` passed."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not stop.is_set():
        wait = every
        if deadline is not None:
            wait = min(wait, max(deadline - time.monotonic(), 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
        _say(sys.stdout, status_line(publisher))
        if deadline is not None and time.monotonic() >= deadline:
            return


def status_line(publisher: Any) -> str:
    """One line: published per stream (held streams only), max lag, Redis state."""
    stats = publisher.stats()
    held = [s for s in stats if s.holding]
    parts = [f"{s.key.split(':', 2)[2]}={s.published}" for s in held]
    lag = max((s.lag_ms for s in held), default=0.0)
    buffered = sum(s.buffered for s in stats)
    standby = len(stats) - len(held)
    return (
        f"published {' '.join(parts) or '-'}  lag={lag:.1f}ms buffered={buffered} "
        f"standby={standby} redis={'up' if publisher.redis_up else 'DOWN'}"
    )


def _say(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
