"""Fault switches: the state tests flip to make the simulator misbehave on purpose.

Each switch is consulted at one place by the dialects (REST wrapper, stream publisher,
signature check), so a fault behaves the same on every venue that gets added. The
faults that act on open sockets at once (drop, garbage, shutdown notice) live on
:class:`~rxconnector.testing.simulator.server.ExchangeSimulator`, which owns the sockets;
the frames :func:`garbage_frames` returns are what ``send_garbage`` sends.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import attrs

__all__ = ["Faults", "RestFailure", "garbage_frames"]

#: Statuses ``fail_rest`` can inject (Binance's 5xx/429/418 semantics, PROTOCOL.md §A2.2).
FAILABLE_STATUSES = frozenset({500, 502, 503, 504, 429, 418})


@attrs.frozen
class RestFailure:
    """One injected REST failure: the HTTP status and, for 429/418, the Retry-After."""

    status: int
    retry_after: int | None = None


def garbage_frames(count: int) -> list[str | bytes]:
    """``count`` frames a client must survive, cycling through the kinds of garbage:
    non-JSON text, truncated JSON, a binary frame, valid JSON of an unknown shape, a data
    event missing its fields, and a JSON array where an object is expected."""
    kinds: list[str | bytes] = [
        "this is not json",
        '{"e":"trade","E":17',
        b"\x00\xff\xfe garbage \x80",
        '{"unexpected":"shape","n":1}',
        '{"e":"depthUpdate","s":"BTCUSDT"}',
        "[1,2,3]",
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


class Faults:
    """The fault switches; all times are the event loop's clock (``loop_time``)."""

    def __init__(self, loop_time: Callable[[], float] = time.monotonic) -> None:
        self._loop_time = loop_time
        #: added to the server's clock: /time, event times and timestamp checks use it
        self.clock_offset_ms = 0
        #: seconds every REST response is delayed by
        self.rest_latency = 0.0
        self._stalled_until = 0.0
        self._rest_failures: deque[RestFailure] = deque()
        self._reject_timestamps = 0
        self._depth_drops: dict[str, int] = {}

    # -- stream faults ----------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """Stop sending market data for ``seconds`` (pings and control answers go on)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._stalled_until = max(self._stalled_until, self._loop_time() + seconds)

    def unstall(self) -> None:
        """End a stall early."""
        self._stalled_until = 0.0

    @property
    def stalled(self) -> bool:
        return self._loop_time() < self._stalled_until

    def drop_updates(self, symbol: str, n: int = 1) -> None:
        """Do not send the next ``n`` depth-diff events of ``symbol`` (a U/u gap)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        key = symbol.upper()
        self._depth_drops[key] = self._depth_drops.get(key, 0) + n

    def take_depth_drop(self, symbol: str) -> bool:
        """True (and one fewer pending) if this depth event of ``symbol`` is to be lost."""
        left = self._depth_drops.get(symbol, 0)
        if left <= 0:
            return False
        self._depth_drops[symbol] = left - 1
        return True

    # -- REST faults ------------------------------------------------------------------

    def fail_rest(self, status: int = 500, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` REST calls answer ``status`` (429/418 with Retry-After)."""
        if status not in FAILABLE_STATUSES:
            raise ValueError(f"status must be one of {sorted(FAILABLE_STATUSES)}")
        if count < 0:
            raise ValueError("count must be >= 0")
        if retry_after is None and status in (429, 418):
            retry_after = 1
        self._rest_failures.extend([RestFailure(status, retry_after)] * count)

    def take_rest_failure(self) -> RestFailure | None:
        return self._rest_failures.popleft() if self._rest_failures else None

    @property
    def pending_rest_failures(self) -> int:
        return len(self._rest_failures)

    def reject_timestamp_once(self) -> None:
        """The next signed request is answered -1021 whatever its timestamp."""
        self._reject_timestamps += 1

    def take_timestamp_rejection(self) -> bool:
        if self._reject_timestamps <= 0:
            return False
        self._reject_timestamps -= 1
        return True
