"""The ``rxconnector`` command line: demo, watch, sim, record, replay, history (and the
bus's publish).

One module per command (its sub-parser, its argument checks, its run), the shared
pieces in :mod:`rxconnector.cli.common`, the parser in :mod:`rxconnector.cli.parser`,
the entry point in :mod:`rxconnector.cli.main`; what the command line accepts (venues,
feeds, lists, dates) is :mod:`rxconnector.arguments`, which the bus's ``publish``
command uses too.

:func:`main` and ``__main__`` are the only places allowed to own an event loop
(``asyncio.run`` in :func:`main`); everything they run is ordinary library code. Every
argument is validated before anything connects, with the same checks the connector
applies (venue, feed, symbol spelling, kline interval, depth), so a typo fails at once
with exit status 2 and a message that lists what is valid. Ctrl-C stops cleanly: the
connector is stopped, files are finished, a summary is printed, and the exit status
is 130 without a traceback. Other failures print one line and exit with 1.
"""

from __future__ import annotations

from rxconnector.arguments import FEEDS, VENUES, FeedRequest, UsageError, parse_feed
from rxconnector.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from rxconnector.cli.main import main
from rxconnector.cli.parser import build_parser

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FEEDS",
    "VENUES",
    "FeedRequest",
    "UsageError",
    "build_parser",
    "main",
    "parse_feed",
]
