"""``ExchangeSimulator``: an aiohttp server on 127.0.0.1 that fools a real client.

Long module: ``ExchangeSimulator`` is the simulator's one public facade (URLs, control,
faults, accounts, inspection for tests); each method is a few lines delegating to the
state, market or dialect objects that do the work, and users find every knob in one place.

It owns the event-loop side of the simulator: the aiohttp app and site, the market
clock task, and the dialects mounted on the app (Binance Spot: ``/ws``, ``/stream``,
``/api/v3``; USD-M futures: ``/public/ws|stream``, ``/market/ws|stream``, ``/fapi/v1``).
Everything runs on the running loop; the clock task and every connection task are owned,
cancelled on :meth:`ExchangeSimulator.stop`, and report exceptions.

Typical use::

    async with ExchangeSimulator(seed=7, symbols=("BTCUSDT", "ETHUSDT"),
                                 tick_interval=0.02) as sim:
        url = f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms"
        ...
        bids, asks = sim.book_at("BTCUSDT", update_id)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

import attrs
from aiohttp import web

from rxconnector.config import Config
from rxconnector.log import get_logger
from rxconnector.testing.simulator.accounts import Accounts
from rxconnector.testing.simulator.binance_futures import (
    BinanceFuturesRest,
    futures_stream_servers,
)
from rxconnector.testing.simulator.binance_futures_trading import BinanceFuturesTradingRest
from rxconnector.testing.simulator.binance_futures_user import FuturesUserStreams
from rxconnector.testing.simulator.binance_http import RestRecord
from rxconnector.testing.simulator.binance_trading import BinanceSpotTradingRest
from rxconnector.testing.simulator.binance_ws import BinanceStreamServer
from rxconnector.testing.simulator.binance_wsapi import BinanceWsApi
from rxconnector.testing.simulator.bybit_private import BybitPrivateServer
from rxconnector.testing.simulator.bybit_rest import BybitMarketRest
from rxconnector.testing.simulator.bybit_trading import BybitTradingRest
from rxconnector.testing.simulator.bybit_ws import BybitStreamServer
from rxconnector.testing.simulator.config import SimulatorConfig
from rxconnector.testing.simulator.connection import CLOSE_GOING_AWAY, SimConnection
from rxconnector.testing.simulator.faults import Faults, garbage_frames
from rxconnector.testing.simulator.market import Levels, Market, SymbolMarket
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import SimOrder
from rxconnector.testing.simulator.state import ControlRecord, SimState
from rxconnector.testing.simulator.tape import SimAggTrade, SimTrade

__all__ = ["ExchangeSimulator"]

#: The URL properties of :class:`ExchangeSimulator`, listed by :attr:`ExchangeSimulator.urls`.
_URL_PROPERTIES = (
    "rest_url",
    "ws_url",
    "ws_api_url",
    "futures_public_url",
    "futures_market_url",
    "futures_private_url",
    "bybit_spot_url",
    "bybit_linear_url",
    "bybit_private_url",
)

_log = get_logger("rxconnector.testing.simulator")


def _report(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("simulator task failed", task=task.get_name(), exc_info=task.exception())


class ExchangeSimulator:
    """A local exchange with a seeded market and fault injection, speaking Binance Spot
    (``/ws``, ``/stream``, ``/api/v3``), Binance USD-M futures (``/public/...``,
    ``/market/...``, ``/fapi/v1``) and Bybit v5 (``/v5/public/spot|linear``,
    ``/v5/market/...``; introspection on :attr:`bybit`) on one port, all over the same
    market.

    Accounts (``api_keys``, :meth:`add_api_key`) trade on the same market through one
    matching engine (:attr:`engine`): Binance ``/api/v3/order...`` and the WebSocket API
    user data stream ``/ws-api/v3``; Bybit ``/v5/order/...``, ``/v5/account/...``,
    ``/v5/position/list`` and the private stream ``/v5/private``. :meth:`set_balance`,
    :meth:`balance`, :meth:`orders` and :meth:`terminate_user_streams` drive and inspect
    them.

    Construct with a :class:`SimulatorConfig` or with its fields as keyword arguments
    (``ExchangeSimulator(seed=7, tick_interval=0.02)``). Start with ``async with`` or
    :meth:`start` / :meth:`stop`.
    """

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        config = config or SimulatorConfig()
        if overrides:
            config = attrs.evolve(config, **overrides)
        self.config = config
        self._faults = Faults(self._loop_time)
        self._state = SimState(config, self._faults, self._loop_time)
        self.accounts = Accounts(config.api_keys, config.symbol_specs())
        self._spot_ws = BinanceStreamServer(self._state)
        #: the matching engine behind every venue's order endpoints and private streams
        self.engine = MatchingEngine(self._state.market, self.accounts)
        self._spot_rest = BinanceSpotTradingRest(self._state, self.accounts, self.engine)
        self._ws_api = BinanceWsApi(self._state, self.accounts, self._spot_rest.limiter)
        self._bybit_trading = BybitTradingRest(
            self._state, self.accounts, self.engine, log=self._spot_rest.log
        )
        self._bybit_private = BybitPrivateServer(self._state, self.accounts)
        #: Binance USD-M listenKeys and ``/private/ws`` user data sockets
        self.futures_users = FuturesUserStreams(self._state, self.accounts, self.engine)
        self._futures_trading = BinanceFuturesTradingRest(
            self._state, self.accounts, self.engine, self.futures_users
        )
        # private (account) endpoints: routes and shutdown notices, no market data
        self._private_servers: list[BinanceWsApi | BybitPrivateServer | FuturesUserStreams] = [
            self._ws_api,
            self._bybit_private,
            self.futures_users,
        ]
        self._futures_ws = futures_stream_servers(self._state)
        self._futures_rest = BinanceFuturesRest(self._state, self.accounts)
        #: Bybit v5 public streams (``/v5/public/spot|linear``) and their introspection
        self.bybit = BybitStreamServer(self._state)
        #: Bybit v5 market REST (``/v5/market/...``)
        self.bybit_rest = BybitMarketRest(self._state, self.bybit.windows, self.bybit.directions)
        self._stream_servers: list[BinanceStreamServer | BybitStreamServer] = [
            self._spot_ws,
            *self._futures_ws,
            self.bybit,
        ]
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._clock_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._paused = not config.autostart_market
        self._tick_lock = asyncio.Lock()

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the server (``port=0``: a free port) and start the market clock."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        app = web.Application()
        for stream_server in self._stream_servers:
            app.add_routes(stream_server.routes())
        for private_server in self._private_servers:
            app.add_routes(private_server.routes())
        app.add_routes(self._bybit_trading.routes())
        app.add_routes(self._spot_rest.routes())
        app.add_routes(self._futures_rest.routes())
        app.add_routes(self._futures_trading.routes())
        app.add_routes(self.bybit_rest.routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # aiohttp exposes the bound socket only through it
        sockets = getattr(server, "sockets", None) or []
        self._port = sockets[0].getsockname()[1] if sockets else self.config.port
        self._clock_task = asyncio.get_running_loop().create_task(
            self._clock(), name="sim-market-clock"
        )
        self._clock_task.add_done_callback(_report)

    async def stop(self) -> None:
        """Close every socket (1001 going away), cancel every task, release the port."""
        if self._runner is None:
            return
        if self._clock_task is not None:
            self._clock_task.cancel()
            await asyncio.gather(self._clock_task, return_exceptions=True)
            self._clock_task = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        conns = list(self._state.connections.values())
        for conn in conns:
            conn.close_now(CLOSE_GOING_AWAY, "Simulator stopping")
        if conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.wait_closed()) for c in conns],
                timeout=self.config.ws_close_timeout * 3,
            )
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> ExchangeSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report)
        return task

    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT`` (endpoints under ``/api/v3``)."""
        return f"http://{self.config.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT`` (connect to ``/stream`` or ``/ws/<stream>``)."""
        return f"ws://{self.config.host}:{self._port}"

    @property
    def ws_api_url(self) -> str:
        """Binance's WebSocket API (the Spot user data stream): ``ws://…/ws-api/v3``."""
        return f"{self.ws_url}/ws-api/v3"

    @property
    def futures_public_url(self) -> str:
        """USD-M ``/public`` route (depth, book tickers): ``ws://…/public/stream``."""
        return f"{self.ws_url}/public/stream"

    @property
    def futures_market_url(self) -> str:
        """USD-M ``/market`` route (everything else): ``ws://…/market/stream``."""
        return f"{self.ws_url}/market/stream"

    @property
    def futures_private_url(self) -> str:
        """USD-M ``/private`` route (user data; sockets at ``/private/ws?listenKey=…``):
        what ``Config.private_ws_url`` takes."""
        return f"{self.ws_url}/private"

    @property
    def bybit_spot_url(self) -> str:
        """Bybit v5 public spot streams: ``ws://…/v5/public/spot``."""
        return f"{self.ws_url}/v5/public/spot"

    @property
    def bybit_linear_url(self) -> str:
        """Bybit v5 public linear streams: ``ws://…/v5/public/linear``."""
        return f"{self.ws_url}/v5/public/linear"

    @property
    def bybit_private_url(self) -> str:
        """Bybit v5 private stream (orders, executions, wallet, positions)."""
        return f"{self.ws_url}/v5/private"

    @property
    def urls(self) -> dict[str, str]:
        """Every URL the simulator serves, by the name of its property."""
        return {name: getattr(self, name) for name in _URL_PROPERTIES}

    def connector_config(
        self, venue: str = "binance", api_key: str = "", api_secret: str = "", **overrides: Any
    ) -> Config:
        """A ready :class:`~rxconnector.Config` for ``venue`` aimed at this simulator.

        ``venue`` is ``binance``, ``binance_futures``, ``bybit`` (spot), ``bybit-spot`` or
        ``bybit-linear``. Every endpoint the connector uses - REST, market streams, the
        WebSocket API or private stream - is set to this simulator, so nothing, signed or
        not, can reach a real exchange. With ``api_key``/``api_secret`` the account
        feeds work: a key the simulator does not know yet is created with the default
        balances (:meth:`set_balance` changes them). ``overrides`` are any other Config
        fields (``connection={...}``, ``recv_window=...``) and may replace a URL::

            config = sim.connector_config("bybit-linear", api_key="k", api_secret="s")
            async with rxc.Connector(config) as conn:
                conn.positions().subscribe(print)
        """
        if self._runner is None:
            raise RuntimeError(
                "start the simulator first (async with ExchangeSimulator() as sim): "
                "its URLs name the port it binds"
            )
        venues = {
            "binance": (Config.binance, {"ws_api_url": self.ws_api_url}),
            "binance_futures": (
                Config.binance_futures,
                {"private_ws_url": self.futures_private_url},
            ),
            "bybit": (Config.bybit, {"private_ws_url": self.bybit_private_url}),
            "bybit-spot": (Config.bybit, {"private_ws_url": self.bybit_private_url}),
            "bybit-linear": (
                lambda **kw: Config.bybit("linear", **kw),
                {"private_ws_url": self.bybit_private_url},
            ),
        }
        chosen = venues.get(venue)
        if chosen is None:
            raise ValueError(
                f"the simulator speaks {', '.join(venues)}; there is no venue {venue!r}"
            )
        if bool(api_key) != bool(api_secret):
            raise ValueError("give both api_key and api_secret, or neither")
        if api_key and api_key not in self.accounts:
            self.add_api_key(api_key, api_secret)
        make, private = chosen
        fields: dict[str, Any] = {"rest_url": self.rest_url, "ws_url": self.ws_url, **private}
        if api_key:
            fields.update(api_key=api_key, api_secret=api_secret)
        fields.update(overrides)
        config: Config = make(**fields)
        return config

    # -- market clock -----------------------------------------------------------------

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.tick_interval
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time())
            if not self._paused:
                self._tick()

    def _tick(self) -> None:
        market = self._state.market
        events = market.tick()
        # decided once per tick: every endpoint loses the same depth events
        dropped = {ev.symbol for ev in events if self._faults.take_depth_drop(ev.symbol)}
        for stream_server in self._stream_servers:
            stream_server.publish(events, market.tick_count, dropped)
        self.engine.on_tick(events)
        self.futures_users.publish(events, market.tick_count, dropped)

    def pause(self) -> None:
        """Stop the market clock (``step`` still works): deterministic tests."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    async def step(self, n: int = 1) -> None:
        """Generate ``n`` ticks now, then wait until their frames are handed to sockets."""
        for _ in range(n):
            self._tick()
            await asyncio.sleep(0)
        await self.flush()

    async def flush(self, max_wait: float = 2.0) -> None:
        """Wait (at most ``max_wait`` s) until every connection's outgoing queue is empty."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while loop.time() < deadline:
            if all(c.pending_frames == 0 for c in self._state.connections.values()):
                return
            await asyncio.sleep(0.001)

    # -- market introspection ---------------------------------------------------------

    @property
    def market(self) -> Market:
        return self._state.market

    @property
    def symbols(self) -> list[str]:
        return list(self._state.market.symbols)

    def symbol(self, symbol: str) -> SymbolMarket:
        """The market of one symbol (book, tape, statistics)."""
        return self._state.market[symbol]

    def book_at(
        self, symbol: str, update_id: int, depth: int | None = None
    ) -> tuple[Levels, Levels]:
        """(bids, asks) right after ``update_id`` (Decimal levels, best first).

        Raises :class:`~rxconnector.testing.simulator.book.BookHistoryError` when the id is
        older than the kept history (``book_history`` updates) or in the future.
        """
        return self._state.market[symbol].book_at(update_id, depth)

    def current_update_id(self, symbol: str) -> int:
        return self._state.market[symbol].book.update_id

    def trades(self, symbol: str) -> list[SimTrade]:
        """The trade tape of ``symbol``, oldest first (ids strictly increasing)."""
        return self._state.market[symbol].tape.trades

    def agg_trades(self, symbol: str) -> list[SimAggTrade]:
        """The aggregate-trade tape of ``symbol``, oldest first."""
        return self._state.market[symbol].tape.aggs

    def server_time_ms(self) -> int:
        """The server's clock (wall clock + ``clock_offset_ms``)."""
        return self._state.server_time_ms()

    # -- connection introspection -----------------------------------------------------

    @property
    def connections(self) -> list[SimConnection]:
        """Open WebSocket connections, oldest first."""
        return list(self._state.connections.values())

    @property
    def connection_history(self) -> list[SimConnection]:
        """Every connection ever accepted (bounded), open or closed, oldest first."""
        return list(self._state.history)

    @property
    def connection_count_total(self) -> int:
        return self._state.connection_count_total

    @property
    def control_log(self) -> list[ControlRecord]:
        """Every text frame any client sent, with loop time and connection id."""
        return self._state.control_log

    def active_streams(self) -> set[str]:
        """Union of the streams of every open connection."""
        return set().union(*(c.streams for c in self._state.connections.values()))

    def max_message_rates(self) -> dict[int, int]:
        """Connection id -> most frames received within any 1-second window."""
        return {c.id: c.max_rate for c in self._state.history}

    async def wait_for_connections(self, n: int, max_wait: float = 2.0) -> None:
        """Wait until at least ``n`` connections are open (TimeoutError otherwise)."""
        changed = self._state.connections_changed
        async with asyncio.timeout(max_wait):
            while len(self._state.connections) < n:
                changed.clear()
                await changed.wait()

    @property
    def rest_log(self) -> list[RestRecord]:
        """Every REST request answered (method, path, params, status, weight), Spot,
        futures and Bybit merged in time order."""
        logs = [
            *self._spot_rest.log,
            *self._futures_rest.log,
            *self._futures_trading.log,
            *self.bybit_rest.log,
        ]
        return sorted(logs, key=lambda r: r.at)

    def rest_weight_used(self) -> int:
        """Request weight used in the current minute (``X-MBX-USED-WEIGHT-1M``)."""
        return self._spot_rest.limiter.used(self._state.server_time_ms())

    def futures_weight_used(self) -> int:
        """USD-M request weight used in the current minute."""
        return self._futures_rest.limiter.used(self._state.server_time_ms())

    def reset_rest_limits(self) -> None:
        """Forget used weight, 429 strikes and bans (Spot, futures and Bybit)."""
        self._spot_rest.limiter.reset()
        self._futures_rest.limiter.reset()
        self.bybit_rest.reset_limits()

    # -- faults -----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    async def drop_connections(self) -> int:
        """Abruptly drop every WebSocket (no close frame; clients see 1006). Returns count."""
        conns = self.connections
        for conn in conns:
            conn.abort()
        if conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.wait_closed()) for c in conns],
                timeout=self.config.ws_close_timeout * 3,
            )
        return len(conns)

    async def close_connections(self, code: int = CLOSE_GOING_AWAY, reason: str = "") -> int:
        """Close every WebSocket with a proper close frame. Returns the count."""
        conns = self.connections
        for conn in conns:
            conn.close_now(code, reason or "Closed by the simulator")
        if conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.wait_closed()) for c in conns],
                timeout=self.config.ws_close_timeout * 3,
            )
        return len(conns)

    def stall(self, seconds: float) -> None:
        """Stop sending market data for ``seconds``; pings and control answers go on."""
        self._faults.stall(seconds)

    def unstall(self) -> None:
        self._faults.unstall()

    def send_garbage(self, count: int = 1) -> None:
        """Send ``count`` non-JSON / malformed frames to every connection."""
        frames = garbage_frames(count)
        for conn in self.connections:
            for frame in frames:
                if isinstance(frame, bytes):
                    conn.send_binary(frame)
                else:
                    conn.send_text(frame)

    async def server_shutdown(self, grace: float | None = None) -> int:
        """Send ``serverShutdown`` to every current connection, close them after ``grace``
        seconds (default ``config.shutdown_grace``). Returns the number notified."""
        conns = self.connections
        for stream_server in self._stream_servers:
            for conn in stream_server.connections:
                stream_server.send_shutdown_notice(conn)
        for private_server in self._private_servers:
            for conn in private_server.connections:
                private_server.send_shutdown_notice(conn)
        await asyncio.sleep(self.config.shutdown_grace if grace is None else grace)
        for conn in conns:
            conn.close_after_pending(CLOSE_GOING_AWAY, "Server shutdown")
        if conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.wait_closed()) for c in conns],
                timeout=self.config.ws_close_timeout * 3,
            )
        return len(conns)

    def fail_rest(self, status: int = 500, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` REST calls answer ``status`` (429/418: Retry-After, -1003)."""
        self._faults.fail_rest(status, count, retry_after)

    @property
    def clock_offset_ms(self) -> int:
        """Shift of the server's clock (``/api/v3/time``, event times, timestamp checks)."""
        return self._faults.clock_offset_ms

    @clock_offset_ms.setter
    def clock_offset_ms(self, value: int) -> None:
        self._faults.clock_offset_ms = int(value)

    @property
    def rest_latency(self) -> float:
        """Seconds added to every REST response."""
        return self._faults.rest_latency

    @rest_latency.setter
    def rest_latency(self, value: float) -> None:
        if value < 0:
            raise ValueError("rest_latency must be >= 0")
        self._faults.rest_latency = float(value)

    def reject_timestamp_once(self) -> None:
        """The next signed request is answered -1021."""
        self._faults.reject_timestamp_once()

    def drop_updates(self, symbol: str, n: int = 1) -> None:
        """Skip the next ``n`` depth-diff events of ``symbol`` (creates a U/u gap)."""
        if symbol not in self._state.market:
            raise KeyError(symbol)
        self._faults.drop_updates(symbol, n)

    def add_api_key(self, api_key: str, secret: str) -> None:
        """Accept another key on the signed endpoints (with the default balances)."""
        self.accounts.add(api_key, secret)

    # -- accounts ---------------------------------------------------------------------

    def set_balance(self, api_key: str, asset: str, free: Decimal | str | int) -> None:
        """Make ``asset``'s FREE amount ``free`` (a deposit or withdrawal of the
        difference); private streams see ``balanceUpdate`` / ``wallet`` events."""
        self.engine.set_balance(api_key, asset, free, self._state.server_time_ms())

    def borrow(self, api_key: str, asset: str, amount: Decimal | str | int) -> None:
        """Lend ``amount`` of ``asset`` to the account (negative: repay); Bybit's wallet
        shows the debt as ``borrowAmount`` and ``equity`` net of it."""
        self.accounts.borrow(api_key, asset, amount, self._state.server_time_ms())

    def expire_listen_keys(self, api_key: str | None = None) -> int:
        """Fault: every USD-M listenKey (of ``api_key``) expires now; its sockets get
        ``listenKeyExpired`` and then nothing. Returns how many expired."""
        return self.futures_users.expire_listen_keys(api_key)

    def drop_user_stream_on_next_fill(self, api_key: str) -> None:
        """Fault: the account's USD-M user data sockets drop right before its next fill
        is sent (the fill happens; its events are lost to the client)."""
        self.futures_users.drop_on_next_fill(api_key)

    def balance(self, api_key: str, asset: str) -> tuple[Decimal, Decimal]:
        """``(free, locked)`` of ``asset`` on the account of ``api_key``."""
        account = self.accounts[api_key]
        return account.free(asset), account.locked(asset)

    def orders(self, api_key: str | None = None) -> list[SimOrder]:
        """Orders the matching engine accepted (of one key, or all), oldest first."""
        if api_key is None:
            return self.engine.orders
        return self.engine.orders_of(api_key)

    def terminate_user_streams(self) -> int:
        """End every Binance user data subscription with ``eventStreamTerminated``
        (the sockets stay open; clients must subscribe again). Returns the count."""
        return self._ws_api.terminate_user_streams()

    def user_stream_subscriptions(self) -> list[tuple[int, int, str]]:
        """Live Binance user data subscriptions: ``(connection id, subscription id,
        api key)``."""
        return self._ws_api.active_subscriptions()

    def private_subscriptions(self) -> list[tuple[int, str, list[str]]]:
        """Open Bybit private connections: ``(connection id, api key or "", topics)``."""
        return self._bybit_private.subscriptions()

    @property
    def api_keys(self) -> Mapping[str, str]:
        """Every key the simulator accepts (configured or added since) and its secret."""
        return {account.api_key: account.secret for account in self.accounts}
