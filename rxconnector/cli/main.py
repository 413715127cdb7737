"""``rxconnector``'s entry point: parse, validate, then run one command on its own loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

from rxconnector.arguments import UsageError
from rxconnector.cli import demo, history, record, replay, sim, watch
from rxconnector.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, out
from rxconnector.cli.parser import build_parser
from rxconnector.errors import RxConnectorError

__all__ = ["main"]

_Prepare = Callable[[argparse.Namespace], Callable[[], Coroutine[Any, Any, int]]]

#: Each command's validation: the coroutine factory to run, or a UsageError.
_PREPARE: Final[dict[str, _Prepare]] = {
    "demo": demo.prepare,
    "watch": watch.prepare,
    "sim": sim.prepare,
    "record": record.prepare,
    "replay": replay.prepare,
    "history": history.prepare,
}


def _prepare(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    """Validate everything for ``args.command``; return the coroutine factory to run."""
    prepare = _PREPARE.get(args.command)
    if prepare is not None:
        return prepare(args)
    if args.command == "publish":
        from rxconnector.bus.command import prepare_publish

        return prepare_publish(args)
    raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover - argparse stops it


def _log_handler(verbose: int, command: str) -> logging.Handler:
    """Library logs to stderr: warnings by default (errors only under the live demo view)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    default = logging.ERROR if command == "demo" else logging.WARNING
    level = {0: default, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler.setLevel(level)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failure, 2 bad arguments, 130 Ctrl-C)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse's own errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    subparser: argparse.ArgumentParser = args.command_parser
    try:
        factory = _prepare(args)
    except UsageError as exc:
        subparser.print_usage(sys.stderr)
        out(sys.stderr, f"rxconnector {args.command}: error: {exc}")
        return EXIT_USAGE
    return _run(args, subparser, factory)


def _run(
    args: argparse.Namespace,
    subparser: argparse.ArgumentParser,
    factory: Callable[[], Coroutine[Any, Any, int]],
) -> int:
    """Run the command on a new event loop, with the library's logs on stderr."""
    logger = logging.getLogger("rxconnector")
    handler = _log_handler(args.verbose, args.command)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(handler.level, logging.WARNING))
    try:
        return asyncio.run(factory())
    except UsageError as exc:
        subparser.print_usage(sys.stderr)
        out(sys.stderr, f"rxconnector {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        out(sys.stderr, f"rxconnector {args.command}: interrupted")
        return EXIT_INTERRUPTED
    except (RxConnectorError, OSError) as exc:
        out(sys.stderr, f"rxconnector {args.command}: error: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
