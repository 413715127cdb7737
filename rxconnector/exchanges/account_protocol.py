"""The seam between the account stream machinery and a venue's private stream.

A venue's private stream is pure knowledge: what logs in, what an event means, how fast
we may talk. It implements :class:`PrivateProtocol` (``exchanges/binance/user_stream.py``,
``exchanges/binance/futures_user_stream.py``, ``exchanges/bybit/private.py``); the
machinery in ``rxconnector/streams/accounts/`` opens the sockets, gives each one a fresh
:class:`PrivateSession` and implements the :class:`SessionOutput` the session talks to.
Nothing here does I/O or imports reactivex, so the protocols stay testable with a plain
recording ``SessionOutput``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = [
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "PrivateProtocol",
    "PrivateSession",
    "SessionOutput",
]

#: Canonical (Binance-spelled) statuses of an order that can still change.
OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW", "PENDING_CANCEL"})
#: Canonical statuses after which an order never changes again.
TERMINAL_STATUSES: Final = frozenset(
    {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}
)


class SessionOutput(Protocol):
    """What a :class:`PrivateSession` may do; implemented by the account stream."""

    def send(self, build: Callable[[], str]) -> None:
        """Send a text frame; ``build`` runs when the socket's pacer grants a slot, so
        timestamps and signatures are made at the last moment."""
        ...

    def emit(self, item: object) -> None:
        """Deliver a model (or a raw ``(received_at, payload)`` event) to subscribers."""
        ...

    def subscribed(self) -> None:
        """The exchange confirmed the subscription: events flow from now on."""
        ...

    def resubscribing(self, reason: str) -> None:
        """The exchange ended our subscription and the session asked for a new one;
        events in between are lost (the next :meth:`subscribed` reconciles)."""
        ...

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        """Login failed. ``fatal``: retrying cannot help, error the feeds. Otherwise
        reconnect with backoff (after resyncing the clock when ``resync_clock``)."""
        ...

    def report(self, error: Exception) -> None:
        """A non-fatal problem (an unparseable frame): report it, carry on."""
        ...


class PrivateSession(Protocol):
    """The login conversation and event decoding of ONE socket (a new one per socket)."""

    def on_connected(self, out: SessionOutput) -> None:
        """The socket is open: send what logs in."""
        ...

    def on_message(self, message: Any, received_at: float, out: SessionOutput) -> None:
        """One decoded JSON frame (answer, event or pong)."""
        ...


class PrivateProtocol(Protocol):
    """A venue's private stream, as pure knowledge (no I/O)."""

    #: Venue name, used for logs, connection ids and the attempt limiter.
    name: str
    #: Which account feeds the venue has: orders, balances, executions, positions,
    #: balance_deltas.
    feeds: frozenset[str]
    #: Client frames allowed per second on the socket (pings included).
    max_messages_per_second: float
    #: Connection attempts allowed per ``connection_attempt_window`` seconds.
    max_connection_attempts: int
    connection_attempt_window: float
    #: Seconds without any frame (ping answers included) after which the socket is dead.
    stale_after: float
    #: False when order events do not carry the last fill (Bybit): it is then derived
    #: from the change of the cumulative filled quantity.
    reports_last_fill: bool

    def ping_message(self) -> str:
        """The application-level ping frame (its answer keeps the watchdog fed)."""
        ...

    def new_session(self) -> PrivateSession:
        """A fresh :class:`PrivateSession` for a new socket."""
        ...

    def order_status(self, raw: str) -> str:
        """The canonical (Binance-spelled) form of an order status as REST reports it."""
        ...
