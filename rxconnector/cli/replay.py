"""``rxconnector replay``: what a recording holds, through the normal parsers."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rxconnector.arguments import FeedRequest, UsageError, parse_feed, positive_float
from rxconnector.cli.common import EXIT_OK, ModelPrinter, examples, out
from rxconnector.errors import RecordingError

if TYPE_CHECKING:
    from rxconnector.replay import ReplayConnector

__all__ = ["add_parser", "prepare"]


def add_parser(commands: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """The ``replay`` sub-command."""
    replay = commands.add_parser(
        "replay",
        help="print what a recording holds, through the normal parsers",
        description=(
            "Replay a recording through the same parsers and order-book code as live data "
            "and print the models. As fast as possible unless --speed is given."
        ),
        epilog=examples(
            "rxconnector replay btc.jsonl.gz",
            "rxconnector replay btc.jsonl.gz --feed order_book --as-fast-as-possible",
            "rxconnector replay btc.jsonl.gz --speed 1   # real time",
        ),
        formatter_class=fmt,
    )
    replay.set_defaults(command_parser=replay)
    replay.add_argument("file", metavar="FILE", help="a recording made by 'rxconnector record'")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=positive_float, help="X times real time (1 = real time)")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing (the default)")
    replay.add_argument("--feed", metavar="F", help="only this recorded feed (e.g. trades)")


def prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Check that the file exists; the coroutine factory that replays it."""
    if not os.path.exists(args.file):
        raise UsageError(f"no such file: {args.file}")
    return lambda: _replay(args)


async def _replay(args: argparse.Namespace) -> int:
    from rxconnector.replay import ReplayConnector

    try:
        replay = ReplayConnector(args.file)
    except RecordingError as exc:
        raise UsageError(f"cannot replay: {exc}") from None
    header = replay.header
    try:
        chosen = _chosen_feeds(args, replay)
    except UsageError:
        replay.close()
        raise
    stdout = sys.stdout
    show = ModelPrinter(stdout)

    def problem(error: Exception) -> None:
        out(sys.stderr, f"! {type(error).__name__}: {error}")

    try:
        for feed in chosen:
            for symbol in header.symbols:
                feed.open(replay, symbol).subscribe(show, problem)
        replay.errors.subscribe(problem)
        speed = None if args.as_fast_as_possible else args.speed
        stats = await replay.play(speed=speed)
    finally:
        replay.close()
        stdout.flush()
    when = datetime.fromtimestamp(header.started_at / 1000, tz=UTC).isoformat(timespec="seconds")
    # a file cut short is not repeated here: the reader said so once (a warning with the line)
    out(
        sys.stderr,
        f"replayed {header.exchange} recording of {when}: {stats.frames} frames, {show.count} "
        f"model(s) printed, {stats.recorded_ms / 1000:.1f}s of recording in "
        f"{stats.wall_seconds:.2f}s ({stats.speedup:.0f}x)",
    )
    return EXIT_OK


def _chosen_feeds(args: argparse.Namespace, replay: ReplayConnector) -> list[FeedRequest]:
    """The recorded feeds to print (``--feed`` narrows them); UsageError if none."""
    header = replay.header
    try:
        recorded = [parse_feed(label) for label in header.feeds]
    except UsageError as exc:
        raise UsageError(
            f"{args.file}: the header lists a feed this version cannot open ({exc})"
        ) from None
    chosen = recorded
    if args.feed:
        wanted = parse_feed(args.feed)
        chosen = [f for f in recorded if f == wanted or (not wanted.args and f.name == wanted.name)]
        if not chosen:
            available = ", ".join(f.label for f in recorded) or "none"
            raise UsageError(
                f"--feed {args.feed!r} is not in this recording; it holds: {available}"
            )
    if not chosen or not header.symbols:
        raise UsageError(f"{args.file}: the header names no feeds/symbols to replay")
    return chosen
