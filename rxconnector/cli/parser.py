"""The ``rxconnector`` argument parser: the top level, then one sub-command per module."""

from __future__ import annotations

import argparse

from rxconnector._version import __version__
from rxconnector.arguments import FEEDS, VENUES
from rxconnector.cli import demo, history, record, replay, sim, watch
from rxconnector.cli.common import examples

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every sub-command has ``--help`` with examples)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="rxconnector",
        description="Crypto exchange feeds as ReactiveX streams: try them from the shell.",
        epilog=examples(
            "rxconnector demo --seconds 20 --faults",
            "rxconnector watch binance ticker BTCUSDT",
            "rxconnector record binance trades,order_book:10 BTCUSDT -o btc.jsonl.gz --seconds 60",
            "rxconnector replay btc.jsonl.gz --feed trades",
        ),
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"rxconnector {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    venues = ", ".join(VENUES)
    feeds = ", ".join(FEEDS)
    demo.add_parser(commands, fmt)
    watch.add_parser(commands, fmt, venues, feeds)
    sim.add_parser(commands, fmt)
    record.add_parser(commands, fmt, venues)
    replay.add_parser(commands, fmt)
    history.add_parser(commands, fmt, venues)

    from rxconnector.bus.command import add_publish_parser

    add_publish_parser(commands, examples, venues)
    return parser
