"""Waiting on a scheduler, so time-based bus behaviour runs in virtual time in tests."""

from __future__ import annotations

import asyncio
from typing import Any

from reactivex import abc

__all__ = ["backoff_delay", "sleep_on"]


async def sleep_on(scheduler: abc.SchedulerBase, seconds: float) -> None:
    """``asyncio.sleep`` whose timer is the scheduler's (a TestScheduler's virtual clock
    in tests, the loop's ``call_later`` with the default AsyncIOScheduler)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def fire(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        if not done.done():
            done.set_result(None)

    timer = scheduler.schedule_relative(max(seconds, 0.0), fire)
    try:
        await done
    finally:
        timer.dispose()


def backoff_delay(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Seconds before reconnect attempt ``attempt`` (1-based): 0.1, 0.2, 0.4 ... max 5."""
    return float(min(base * 2.0 ** max(attempt - 1, 0), cap))
