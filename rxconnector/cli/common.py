"""What every ``rxconnector`` command shares: exit statuses, the run loop of live views,
``async with`` for a connector that may be cancelled while starting, and the report of
connections that never came up."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, TextIO, TypeVar

from rxconnector.arguments import UsageError
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.terminal import describe

if TYPE_CHECKING:
    from rxconnector.connector import Connector

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ConnectionReport",
    "ModelPrinter",
    "add_urls",
    "check_output",
    "examples",
    "out",
    "report_task",
    "run_for",
    "running",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, what shells report for Ctrl-C

REFRESH: Final = 0.25  # seconds between redraws of live views (~4/s)


def report_task(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("rxconnector.cli").error(
            "background task failed: %r", task.exception(), exc_info=task.exception()
        )


async def run_for(
    seconds: float | None, tick: Callable[[], None], done: asyncio.Future[Any] | None = None
) -> None:
    """Call ``tick`` every ~0.25 s until ``seconds`` passed (forever if None) or ``done``."""
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    while True:
        tick()
        if done is not None and done.done():
            return
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                return
            wait = min(REFRESH, left)
        else:
            wait = REFRESH
        if done is not None:
            await asyncio.wait([done], timeout=wait)
        else:
            await asyncio.sleep(wait)


_C = TypeVar("_C", bound="Connector")


@contextlib.asynccontextmanager
async def running(conn: _C) -> AsyncIterator[_C]:
    """``async with conn`` that also stops ``conn`` when ``start()`` itself is cancelled
    or fails: Ctrl-C while start() waits for the first clock sync must not leave the
    HTTP session and the clock-sync task open (``__aexit__`` is never reached then)."""
    try:
        await conn.start()
        yield conn
    finally:
        await conn.stop()


def out(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")


class ConnectionReport:
    """Watches ``connection_state`` for a command: prints every reconnect attempt at
    ``-v`` (the first failure always, so an unreachable stream is never a silent
    hang) and says afterwards why nothing arrived."""

    def __init__(self, verbose: int, command: str) -> None:
        self._verbose = verbose
        self._command = command
        self.attempts = 0
        self.last_failure: ConnectionEvent | None = None
        self.connected = False

    def on_event(self, event: ConnectionEvent) -> None:
        if event.state is ConnectionState.CONNECTED:
            self.connected = True
        if event.state is not ConnectionState.RECONNECTING:
            return
        self.attempts += 1
        self.last_failure = event
        if self._verbose:
            out(
                sys.stderr,
                f"  {event.url} reconnecting (attempt {event.attempt} in {event.delay:.1f} s): "
                f"{event.reason}",
            )
        elif self.attempts == 1 and not self.connected:
            out(
                sys.stderr,
                f"! cannot connect to {event.url}: {event.reason}; retrying "
                f"(-v shows every attempt)",
            )
        sys.stderr.flush()

    def why_nothing(self) -> str | None:
        """Why nothing was received, when it is because no connection worked."""
        failure = self.last_failure
        if failure is None or self.connected:
            return None
        return (
            f"received nothing: {failure.url} could not be reached after "
            f"{self.attempts} attempt(s): {failure.reason}"
        )


class ModelPrinter:
    """An observer's ``on_next`` that prints each model on its own line (``describe``)
    and counts them; ``stream`` None: ``sys.stdout`` at each print."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.count = 0
        self._stream = stream

    def __call__(self, model: Any) -> None:
        self.count += 1
        (self._stream or sys.stdout).write(describe(model) + "\n")


def examples(*lines: str) -> str:
    """A sub-command's epilog: its example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_urls(parser: argparse.ArgumentParser) -> None:
    """``--rest-url``/``--ws-url``: point a command at another server (the simulator)."""
    parser.add_argument("--rest-url", metavar="URL", help="REST base URL (e.g. the simulator)")
    parser.add_argument("--ws-url", metavar="URL", help="WebSocket base URL")


def check_output(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a folder")
