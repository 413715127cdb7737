"""Owned asyncio tasks: nothing a component starts dies silently or outlives its close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from rxconnector.log import get_logger

__all__ = ["OwnedTasks"]

_log = get_logger(component="ws")


class OwnedTasks:
    """The tasks a component started; none dies silently, all can be awaited.

    Every task gets a done-callback that hands a failure to ``report`` (or logs it), so
    no "Task exception was never retrieved"; :meth:`wait` lets ``close()`` return only
    after every socket has really been closed.
    """

    def __init__(self, report: Callable[[Exception], None] | None = None) -> None:
        self._report = report
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start ``coro`` on the running loop as an owned task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def cancel_all(self) -> None:
        """Cancel every task still running."""
        for task in list(self._tasks):
            task.cancel()

    async def wait(self) -> None:
        """Return once every owned task has finished (cancelled ones included)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, Exception) and self._report is not None:
            try:
                self._report(exc)
                return
            except Exception:
                pass
        _log.error("task_failed", task=task.get_name(), error=repr(exc))
