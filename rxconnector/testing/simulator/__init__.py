"""A local exchange for tests: ``ExchangeSimulator`` (Binance Spot, USD-M futures, Bybit v5).

Layout (one job per module): ``config`` (settings), ``market`` with ``book``, ``tape``,
``klines`` and ``fills`` (the venue-agnostic seeded market; ``fills`` draws how many
trades one aggregate trade holds from distributions recorded on Binance),
``connection`` (one server-side WebSocket with keepalive and limits), ``state`` (what
dialects share), ``faults``, ``weights`` (REST weight limiter), ``accounts`` (keys,
balances, signature checks) and ``matching`` (the matching engine behind both venues'
trading endpoints).

Dialects on top of the one market: Binance Spot — ``binance_streams`` (stream names),
``binance_control`` (live-subscription protocol), ``binance_payloads`` (wire shapes),
``binance_ws`` and ``binance_rest`` (endpoints), ``binance_trading`` (signed order
endpoints) and ``binance_wsapi`` (the WebSocket API user-data stream); USD-M futures —
``binance_futures`` (its own routes, limits and payload differences); Bybit v5 —
``bybit_topics``, ``bybit_payloads``, ``bybit_books``, ``bybit_market``, ``bybit_ws``
(public streams), ``bybit_rest`` (market REST), ``bybit_trading`` and ``bybit_private``
(signed REST and the private stream).

No pauses of its own: a real venue does not stop for garbage collection, so the
simulator must not either (its clients would measure its pauses as exchange or network
latency). Its long histories (trade tape, statistics windows, the book's undo log) are
kept as records the cyclic collector does not track (``gc=False`` structs, tuples of
ints) in ``chunked.ChunkedLog``, so the collector's passes do not grow with them; the
simulator never touches the collector's settings (``gc.freeze``/``disable`` would
change the whole test process).
"""

from __future__ import annotations

from rxconnector.testing.simulator.accounts import BalanceChange
from rxconnector.testing.simulator.book import BookHistoryError
from rxconnector.testing.simulator.config import SimulatorConfig, SymbolSpec, symbol_spec
from rxconnector.testing.simulator.connection import Received, SimConnection
from rxconnector.testing.simulator.fills import FILL_MODELS, FillModel
from rxconnector.testing.simulator.market import Levels, TickEvents
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import OrderRequest, Rejection, SimOrder, SimPosition
from rxconnector.testing.simulator.server import ExchangeSimulator
from rxconnector.testing.simulator.state import ControlRecord
from rxconnector.testing.simulator.tape import SimAggTrade, SimTrade

__all__ = [
    "FILL_MODELS",
    "BalanceChange",
    "BookHistoryError",
    "ControlRecord",
    "ExchangeSimulator",
    "FillModel",
    "Levels",
    "MatchingEngine",
    "OrderRequest",
    "Received",
    "Rejection",
    "SimAggTrade",
    "SimConnection",
    "SimOrder",
    "SimPosition",
    "SimTrade",
    "SimulatorConfig",
    "SymbolSpec",
    "TickEvents",
    "symbol_spec",
]
