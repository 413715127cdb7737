"""The connection-attempt limiter shared by every connection to one venue.

Binance allows 300 connection attempts per 5 minutes per IP (PROTOCOL.md §A1.1), Bybit
500 per 5 minutes per domain (§C1). A reconnect storm (many shards failing together, a
flapping network) must wait for a free slot instead of getting the IP banned, so every
attempt of every connection to a venue books its slot in one shared
:class:`AttemptLimiter` and waits on the scheduler until that slot comes.
"""

from __future__ import annotations

import weakref

from reactivex import abc

from rxconnector.rate.pacing import RollingWindow

__all__ = ["AttemptLimiter", "shared_attempt_limiter"]


class AttemptLimiter:
    """At most ``limit`` connection attempts in any ``window`` seconds."""

    __slots__ = ("_window",)

    def __init__(self, limit: int, window: float) -> None:
        self._window = RollingWindow(limit, window)

    @property
    def limit(self) -> int:
        """Attempts allowed per window."""
        return self._window.limit

    @property
    def window(self) -> float:
        """Window length in seconds."""
        return self._window.window

    def reserve(self, now: float) -> float:
        """Book the next attempt slot at or after ``now`` (seconds); returns the wait."""
        return self._window.reserve(now)

    def __repr__(self) -> str:
        return f"AttemptLimiter({self.limit} per {self.window:g} s)"


# One registry per scheduler: limiters compare times of one clock only, and a
# TestScheduler's virtual clock must not share bookings with the real loop's.
_registry: weakref.WeakKeyDictionary[abc.SchedulerBase, dict[str, AttemptLimiter]] = (
    weakref.WeakKeyDictionary()
)


def shared_attempt_limiter(
    key: str, limit: int, window: float, scheduler: abc.SchedulerBase
) -> AttemptLimiter:
    """The process-wide limiter for ``key`` (a venue's name) on ``scheduler``'s clock.

    Every hub of a venue asks for the same key and gets the same object, so their
    connections share one budget. The first caller's ``limit``/``window`` win.
    """
    per_clock = _registry.setdefault(scheduler, {})
    limiter = per_clock.get(key)
    if limiter is None:
        limiter = per_clock[key] = AttemptLimiter(limit, window)
    return limiter
