"""A local exchange for tests: ``ExchangeSimulator`` (Binance Spot and USD-M futures).

Layout (one job per module): ``config`` (settings), ``market`` with ``book``, ``tape``
and ``klines`` (the venue-agnostic seeded market), ``connection`` (one server-side
WebSocket with keepalive and limits), ``state`` (what dialects share), ``faults``,
``weights`` (REST weight limiter), ``accounts``, and the Binance Spot dialect:
``binance_streams`` (stream names), ``binance_control`` (live-subscription protocol),
``binance_payloads`` (wire shapes), ``binance_ws`` and ``binance_rest`` (endpoints);
the USD-M futures dialect ``binance_futures`` reuses them with its own routes, limits
and payload differences. Other venues (Bybit v5) add their own dialect modules on the
same market and state.
"""

from __future__ import annotations

from rxconnector.testing.simulator.book import BookHistoryError
from rxconnector.testing.simulator.config import SimulatorConfig, SymbolSpec, symbol_spec
from rxconnector.testing.simulator.connection import Received, SimConnection
from rxconnector.testing.simulator.market import Levels, TickEvents
from rxconnector.testing.simulator.server import ExchangeSimulator
from rxconnector.testing.simulator.state import ControlRecord
from rxconnector.testing.simulator.tape import SimAggTrade, SimTrade

__all__ = [
    "BookHistoryError",
    "ControlRecord",
    "ExchangeSimulator",
    "Levels",
    "Received",
    "SimAggTrade",
    "SimConnection",
    "SimTrade",
    "SimulatorConfig",
    "SymbolSpec",
    "TickEvents",
    "symbol_spec",
]
