"""Scheduler resolution and time helpers shared by every time-dependent component.

Rule (DESIGN.md §4.2): a component takes ``scheduler=`` and resolves
``scheduler or scheduler_ or default`` so that a ``TestScheduler`` passed at subscribe
time drives it in virtual time. The default is the running loop's ``AsyncIOScheduler``,
never a thread-based scheduler (those would call aiohttp from another thread).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

__all__ = ["loop_scheduler", "now_ms", "resolve_scheduler"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_cache: dict[asyncio.AbstractEventLoop, AsyncIOScheduler] = {}


def loop_scheduler() -> AsyncIOScheduler:
    """The ``AsyncIOScheduler`` of the running loop (one per loop, created on first use)."""
    loop = asyncio.get_running_loop()
    scheduler = _cache.get(loop)
    if scheduler is None:
        if len(_cache) > 16:  # forget closed loops (tests create many)
            for old in [lp for lp in _cache if lp.is_closed()]:
                del _cache[old]
        scheduler = _cache[loop] = AsyncIOScheduler(loop)
    return scheduler


def resolve_scheduler(
    scheduler: abc.SchedulerBase | None, scheduler_: abc.SchedulerBase | None = None
) -> abc.SchedulerBase:
    """``scheduler or scheduler_ or`` the running loop's scheduler."""
    return scheduler or scheduler_ or loop_scheduler()


def now_ms(scheduler: abc.SchedulerBase) -> float:
    """The scheduler's clock in epoch milliseconds (virtual time under a TestScheduler)."""
    now = scheduler.now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (now - _EPOCH).total_seconds() * 1000.0
