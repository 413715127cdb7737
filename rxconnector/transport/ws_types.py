"""The vocabulary of the WebSocket transport: what a socket needs and what it emits.

Plain data and protocols shared by the pieces of the transport (:mod:`.ws` the
reconnecting source, :mod:`.ws_link` the paced writer, :mod:`.ws_watchdog` the stall
detector) and by their users; :mod:`rxconnector.transport.ws` lists them in its public
names, so a user of the transport imports everything from there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

import aiohttp
import attrs
from reactivex import abc

from rxconnector._scheduling import now_ms
from rxconnector.models import ConnectionEvent, ConnectionState

__all__ = [
    "Connected",
    "ControlSender",
    "Frame",
    "FrameSink",
    "SessionFactory",
    "SocketSpec",
    "WsItem",
    "describe_error",
    "socket_event",
]

#: ``(received_at_ms, data)``: one data frame, stamped with the local epoch time (ms).
Frame: TypeAlias = tuple[float, bytes | str]
#: ``sink(received_at_ms, data)``: takes one data frame as two arguments (no tuple is
#: built per frame on the hot path; see :attr:`SocketSpec.frame_sink`).
FrameSink: TypeAlias = Callable[[float, bytes | str], None]
SessionFactory: TypeAlias = Callable[[], aiohttp.ClientSession]


class ControlSender(Protocol):
    """Writes control frames on one open socket, paced by its message limiter."""

    def send(self, build: Callable[[], str | None], *, urgent: bool = False) -> None:
        """Queue ``build``; it is called when the limiter grants a slot and returns the
        text frame to send then, or ``None`` to give the slot back unused."""
        ...


@attrs.frozen(eq=False)
class Connected:
    """A socket opened: report ``event``; write on this socket through ``link``.

    ``heard()`` changes whenever a frame arrives on the socket - data, control
    messages, and protocol pings and pongs, which never travel as items - so the stale
    watchdog can tell a quiet but alive link from a dead one (``None``: not watched).
    Any value that changes per frame will do: a count, or the socket's stamp of its
    last frame (what :mod:`.ws` gives, the cheapest on the read loop).
    """

    event: ConnectionEvent
    link: ControlSender
    heard: Callable[[], float] | None = None


#: What the source emits: a data frame, a state change, or an opened socket.
WsItem: TypeAlias = Frame | ConnectionEvent | Connected


@attrs.frozen
class SocketSpec:
    """What one socket needs: where to connect and the venue's write limits.

    ``max_messages`` frames per ``message_window`` seconds (pings and pongs included);
    ``ping_message`` every ``ping_interval`` s for venues that want application pings.
    """

    url: str
    connection_id: str
    max_messages: int
    message_window: float
    ping_message: str | None = None
    ping_interval: float | None = None
    connect_timeout: float = 10.0
    close_timeout: float = 2.0
    #: Largest frame accepted (``ConnectionConfig.max_frame_bytes``): aiohttp's
    #: ``max_msg_size``. A bigger frame closes the socket (1009); it is reported.
    max_frame_bytes: int = 4 * 1024 * 1024
    #: Receives non-fatal problems the socket itself notices (an oversized frame)
    #: before the attempt ends, so they reach ``Connector.errors``.
    report: Callable[[Exception], None] | None = attrs.field(default=None, eq=False, repr=False)
    #: Receives every data frame instead of the source's ``on_next`` (the hot path: no
    #: Rx layer per frame), as ``sink(received_at_ms, data)``: two arguments, not a
    #: :data:`Frame` tuple (one tuple less to build and take apart per frame). Frames
    #: stop when the attempt is disposed, exactly as they would in band. A stale
    #: watchdog then cannot count frames itself: give
    #: :func:`~rxconnector.transport.ws.websocket` a ``data_count``.
    frame_sink: FrameSink | None = attrs.field(default=None, eq=False, repr=False)
    #: What connection events, logs and error messages show instead of ``url``, when
    #: ``url`` carries a credential (Binance USD-M's ``?listenKey=``, which lets anyone
    #: read the account's stream); ``None``: ``url`` itself.
    shown_url: str | None = None

    @property
    def public_url(self) -> str:
        """The URL to show (``shown_url``, else ``url``)."""
        return self.shown_url if self.shown_url is not None else self.url


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` - the reason text of RECONNECTING events and markers."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def socket_event(
    scheduler: abc.SchedulerBase, spec: SocketSpec, state: ConnectionState, **extra: Any
) -> ConnectionEvent:
    """A :class:`ConnectionEvent` of ``spec``'s socket, stamped with the scheduler's now."""
    return ConnectionEvent(state, spec.connection_id, spec.public_url, now_ms(scheduler), **extra)
