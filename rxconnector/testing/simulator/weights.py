"""Request-weight accounting with Binance's 429-then-418 escalation (PROTOCOL.md §A2.3).

Weight is counted per fixed window aligned to the server clock (1 minute by default:
``X-MBX-USED-WEIGHT-1M``). A request that takes the window past the limit is answered
429 with ``Retry-After`` = seconds to the next window. A client that keeps sending while
over the limit is banned: after ``ban_after_429s`` such requests in one window it gets
418 with ``Retry-After`` = the ban length, which doubles for repeat offenders (Binance
scales bans from 2 minutes to 3 days).
"""

from __future__ import annotations

import math

import attrs

__all__ = ["Verdict", "WeightLimiter"]

_MAX_BAN_MS = 3 * 86_400_000


@attrs.frozen
class Verdict:
    """What to answer: ``status`` 200 (go on), 429 or 418, with Retry-After seconds."""

    status: int
    used: int
    retry_after: int = 0


class WeightLimiter:
    """Used weight of the current window, over-limit strikes and the IP ban."""

    def __init__(
        self, limit: int, *, window_ms: int = 60_000, ban_after_429s: int = 5, ban_ms: int = 120_000
    ) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.ban_after_429s = ban_after_429s
        self.ban_ms = ban_ms
        self._window = -1
        self._used = 0
        self._strikes = 0
        self._bans = 0
        self.banned_until = 0

    def used(self, now_ms: int) -> int:
        """Weight used in the window containing ``now_ms``."""
        self._roll(now_ms)
        return self._used

    def _roll(self, now_ms: int) -> None:
        window = now_ms // self.window_ms
        if window != self._window:
            self._window, self._used, self._strikes = window, 0, 0

    def reset(self) -> None:
        """Forget used weight, strikes and bans (tests)."""
        self._window, self._used, self._strikes, self._bans, self.banned_until = -1, 0, 0, 0, 0

    def charge(self, weight: int, now_ms: int) -> Verdict:
        self._roll(now_ms)
        if now_ms < self.banned_until:
            return Verdict(418, self._used, math.ceil((self.banned_until - now_ms) / 1000))
        self._used += weight
        if self._used <= self.limit:
            return Verdict(200, self._used)
        self._strikes += 1
        if self._strikes > self.ban_after_429s:
            length = min(_MAX_BAN_MS, self.ban_ms * 2**self._bans)
            self._bans += 1
            self.banned_until = now_ms + length
            return Verdict(418, self._used, math.ceil(length / 1000))
        to_reset = (self._window + 1) * self.window_ms - now_ms
        return Verdict(429, self._used, max(1, math.ceil(to_reset / 1000)))
