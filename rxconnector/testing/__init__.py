"""Test your own pipelines: the exchange simulator, typed marbles and FakeConnector.

* :class:`ExchangeSimulator` — an aiohttp server on 127.0.0.1 speaking the exchanges'
  protocols, with a seeded market and fault injection, for tests with real sockets.
* :class:`FakeConnector` — the Connector's surface on a ``TestScheduler``: feeds are
  marble diagrams or lists, REST calls are scripted, so strategies run in virtual time.
* Typed marble helpers (``cold``, ``hot``, ``expected``, ``MarbleRun``) and model
  stream builders (``ticks``, ``trades_from``, ``book_tickers``, ``books``), plus
  ``make_*`` factories with neutral defaults.
"""

from __future__ import annotations

from rxconnector.errors import NotScriptedError
from rxconnector.testing.account_factories import (
    make_balance,
    make_execution,
    make_order,
    make_order_update,
    make_position,
)
from rxconnector.testing.factories import (
    dec,
    make_avg_price,
    make_book_ticker,
    make_clock_offset,
    make_connection_event,
    make_depth_update,
    make_kline,
    make_liquidation,
    make_mark_price,
    make_mini_ticker,
    make_order_book,
    make_symbol_info,
    make_ticker,
    make_trade,
)
from rxconnector.testing.fake import FEEDS, FakeConnector
from rxconnector.testing.fake_rest import REST_METHODS, Call
from rxconnector.testing.marbles import MarbleRun, cold, emitted, exp, expected, hot
from rxconnector.testing.model_marbles import book_tickers, books, stamped, ticks, trades_from
from rxconnector.testing.simulator import ExchangeSimulator, SimulatorConfig

__all__ = [
    "FEEDS",
    "REST_METHODS",
    "Call",
    "ExchangeSimulator",
    "FakeConnector",
    "MarbleRun",
    "NotScriptedError",
    "SimulatorConfig",
    "book_tickers",
    "books",
    "cold",
    "dec",
    "emitted",
    "exp",
    "expected",
    "hot",
    "make_avg_price",
    "make_balance",
    "make_book_ticker",
    "make_clock_offset",
    "make_connection_event",
    "make_depth_update",
    "make_execution",
    "make_kline",
    "make_liquidation",
    "make_mark_price",
    "make_mini_ticker",
    "make_order",
    "make_order_book",
    "make_order_update",
    "make_position",
    "make_symbol_info",
    "make_ticker",
    "make_trade",
    "stamped",
    "ticks",
    "trades_from",
]
