"""What every dialect of one simulator shares: config, market, faults, sockets, logs.

Dialects (Binance Spot today; futures and Bybit later) read and record here, and the
simulator exposes it for introspection, so a test sees every connection and every
control message regardless of which protocol produced it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

from rxconnector.testing.simulator.config import SimulatorConfig
from rxconnector.testing.simulator.faults import Faults
from rxconnector.testing.simulator.market import Market

if TYPE_CHECKING:
    from aiohttp import web

    from rxconnector.testing.simulator.connection import ConnectionPolicy, SimConnection

__all__ = ["ControlRecord", "SimState"]


@attrs.frozen(slots=True)
class ControlRecord:
    """One control (text) message a client sent: when (loop time), on which connection."""

    at: float
    connection_id: int
    text: str
    #: the decoded JSON, or None when the text was not valid JSON
    message: Any


class SimState:
    """Shared, mutable state of one simulator instance."""

    def __init__(
        self,
        config: SimulatorConfig,
        faults: Faults,
        loop_time: Any,
        *,
        wall_ms: Any = None,
    ) -> None:
        self.config = config
        self.faults = faults
        self.loop_time = loop_time
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.market = Market(
            config.symbol_specs(),
            config.seed,
            self.server_time_ms,
            book_levels=config.book_levels,
            book_history=config.book_history,
            trade_history=config.trade_history,
            fills=config.fill_model,
        )
        self.connections: dict[int, SimConnection] = {}
        self.history: deque[SimConnection] = deque(maxlen=10_000)
        self.control_log: list[ControlRecord] = []
        self.connection_count_total = 0
        #: set whenever a connection opens or closes (waiters clear it)
        self.connections_changed = asyncio.Event()
        self._attempts: deque[float] = deque()
        self._next_id = 1

    def server_time_ms(self) -> int:
        """The server's clock: wall time shifted by the ``clock_offset_ms`` fault."""
        return int(self._wall_ms()) + self.faults.clock_offset_ms

    def allow_connection_attempt(self) -> bool:
        """Binance's per-IP connection-attempt limit (300 per 5 minutes, §A1.1)."""
        now = self.loop_time()
        window = self.config.connection_window
        while self._attempts and self._attempts[0] <= now - window:
            self._attempts.popleft()
        if len(self._attempts) >= self.config.max_connections_per_window:
            return False
        self._attempts.append(now)
        return True

    def next_connection_id(self) -> int:
        conn_id = self._next_id
        self._next_id += 1
        return conn_id

    async def accept(self, request: web.Request, policy: ConnectionPolicy) -> SimConnection:
        """Upgrade ``request`` to a WebSocket and wrap it in a :class:`SimConnection`
        (not registered yet: the caller finishes its own setup first).

        ``autoping=False`` so pings and pongs reach the reader and count against the
        message-rate limit, as Binance counts them.
        """
        from aiohttp import web

        from rxconnector.testing.simulator.connection import SimConnection

        ws = web.WebSocketResponse(
            autoping=False, autoclose=True, timeout=self.config.ws_close_timeout
        )
        await ws.prepare(request)
        return SimConnection(
            self.next_connection_id(),
            request,
            ws,
            policy,
            loop_time=self.loop_time,
            server_time_ms=self.server_time_ms,
        )

    def register(self, conn: SimConnection) -> None:
        self.connections[conn.id] = conn
        self.history.append(conn)
        self.connection_count_total += 1
        self.connections_changed.set()

    def unregister(self, conn: SimConnection) -> None:
        self.connections.pop(conn.id, None)
        self.connections_changed.set()

    def log_control(self, conn: SimConnection, text: str, message: Any) -> None:
        self.control_log.append(ControlRecord(self.loop_time(), conn.id, text, message))
        if len(self.control_log) > 100_000:  # bounded for long-running simulators
            del self.control_log[:10_000]
