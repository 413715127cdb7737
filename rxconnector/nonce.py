"""Unique, strictly increasing nonces and client order ids.

Why: a client order id is how we find an order again after a timeout left its fate
unknown (``OrderStatusUnknownError``), so two orders must never share one, even when
several tasks or threads place orders in the same microsecond, and even after the wall
clock steps backwards (NTP correction, VM resume). Values are based on the time in
microseconds so they sort by creation and stay unique across restarts of the process
(as long as the clock is not set back further than the downtime).

By default every :class:`NonceGenerator` in the process draws from one shared sequence,
so two connectors with the same API key cannot hand out the same id either.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Final

from rxconnector.errors import ConfigError

__all__ = ["MAX_CLIENT_ORDER_ID_LENGTH", "MAX_PREFIX_LENGTH", "NonceGenerator"]

#: Binance ``newClientOrderId`` (``^[.A-Z:/a-z0-9_-]{1,36}$``) and Bybit ``orderLinkId``
#: (letters, digits, ``-`` and ``_``, at most 36) both accept at most 36 characters.
MAX_CLIENT_ORDER_ID_LENGTH: Final = 36
#: Base-36 microseconds since the epoch take 10 characters until the year 2084 and 11
#: until the year 5000, so a prefix of this length always leaves room.
MAX_PREFIX_LENGTH: Final = MAX_CLIENT_ORDER_ID_LENGTH - 12

_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9_-]*")
_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


def _base36(value: int) -> str:
    if value == 0:
        return "0"
    out = []
    while value:
        value, digit = divmod(value, 36)
        out.append(_DIGITS[digit])
    return "".join(reversed(out))


class _Sequence:
    """max(clock, last + 1) under a lock: strictly increasing whatever the clock does."""

    __slots__ = ("_clock", "_last", "_lock")

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            candidate = self._clock()
            if candidate <= self._last:
                candidate = self._last + 1
            self._last = candidate
            return candidate


_PROCESS_SEQUENCE: Final = _Sequence(_wall_clock_us)


class NonceGenerator:
    """Hands out unique, strictly increasing integers and client order ids.

    Args:
        prefix: Start of every id from :meth:`next_str`; letters, digits, ``-`` and
            ``_``, at most :data:`MAX_PREFIX_LENGTH` characters.
        clock_us: The time source in microseconds. The default (wall clock) shares one
            process-wide sequence between all generators; a custom clock (for tests)
            gets a private sequence.

    Thread-safe; cheap enough to call for every request.
    """

    __slots__ = ("_sequence", "prefix")

    def __init__(self, prefix: str = "rxc", *, clock_us: Callable[[], int] | None = None) -> None:
        if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
            raise ConfigError("prefix", "may only contain letters, digits, '-' and '_'", prefix)
        if len(prefix) > MAX_PREFIX_LENGTH:
            raise ConfigError("prefix", f"must be at most {MAX_PREFIX_LENGTH} characters", prefix)
        self.prefix = prefix
        self._sequence = _PROCESS_SEQUENCE if clock_us is None else _Sequence(clock_us)

    def __repr__(self) -> str:
        return f"NonceGenerator(prefix={self.prefix!r})"

    def next_int(self) -> int:
        """A new integer: about the time in µs, always greater than every earlier one."""
        return self._sequence.next()

    def next_str(self) -> str:
        """A new client order id: ``prefix`` + the next integer in base 36 (lowercase).

        At most 36 characters of ``[A-Za-z0-9_-]``: valid as a Binance
        ``newClientOrderId`` and a Bybit ``orderLinkId``. Ids from one generator sort
        by creation when compared by length first, then text.
        """
        return self.prefix + _base36(self._sequence.next())
