"""Bybit v5 public WebSocket: ``/v5/public/spot`` and ``/v5/public/linear``.

Protocol (PROTOCOL.md §C1 and the ``bybit.v5.ws.*`` examples):

* ``{"op":"subscribe"|"unsubscribe","args":[topics],"req_id":".."}``; Spot answers
  ``{"success":true,"ret_msg":"subscribe","conn_id":..,"req_id":..,"op":"subscribe"}``,
  linear ``{"success":true,"ret_msg":"","conn_id":..,"req_id":"","op":"subscribe"}``
  (``req_id`` echoed when sent; when not sent Spot leaves it out and linear answers
  ``""``, as in the documented examples).
* ``{"op":"ping"}`` → Spot ``{"success":true,"ret_msg":"pong","conn_id":..,"op":"ping"}``,
  linear the same with ``"req_id":""``. The server sends no pings of its own.
* A connection that neither pings nor receives data for ``bybit_idle_timeout`` seconds
  (Bybit: 10 minutes) is closed 1001. Like Bybit's 30-second scan, the check runs every
  quarter of the timeout, so the cut comes up to that much later.
* Spot accepts at most 10 ``args`` per request: more is answered
  ``{"success":false,"ret_msg":"args size >10",...}`` (the observed answer) and nothing
  is subscribed. The ``args`` of one connection total at most 21 000 characters.
* At most 500 connection attempts per 5 minutes (HTTP 429 before the upgrade).

Topics: ``orderbook.{1|50|200|1000}.{S}`` (a snapshot on subscribe, then deltas of the
top-N window with ``u`` +1 per message; level 1 is snapshot-only and re-sent with the
same ``u`` after 3 quiet periods), ``publicTrade.{S}`` (one message per tick with all
its trades), ``tickers.{S}`` (Spot: a snapshot whenever a field changed; linear: a
snapshot on subscribe, then deltas of the changed fields) and ``kline.{interval}.{S}``
(every period: candles that closed with ``confirm: true``, then the running one).

Simulator choices where Bybit documents nothing:

* An unlisted or lower-case symbol is answered ``"Invalid symbol :[<topics>]"`` (the
  answer clients observe from Bybit) and a topic of unknown shape
  ``"error:handler not found,topic:<topics>"`` (seen for unknown topics); the other
  topics of that request ARE subscribed and the failure names every rejected topic,
  comma-separated. Subscribing a topic twice is accepted and changes nothing;
  unsubscribing a topic that is not subscribed is accepted too.
* Market data missed during a stall is lost; the first order-book message of each
  window after the stall is a snapshot (Bybit "re-sends a snapshot if it has a
  problem"), so a client's book is right again without resubscribing. Linear ticker
  deltas after a stall are relative to the last ticker actually sent, so they stay
  correct. ``drop_updates`` loses the order-book messages of one tick silently: ``u``
  jumps, no snapshot follows (a real gap, for clients that check ``u``).
* :meth:`BybitStreamServer.restart_books` is the ``u == 1`` fault: every window of a
  symbol starts again at ``u = 1`` with a snapshot (Bybit's service restart).
* There is no ``serverShutdown`` notice on Bybit:
  :meth:`~rxconnector.testing.simulator.server.ExchangeSimulator.server_shutdown` just
  closes Bybit connections after the grace period.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import orjson
from aiohttp import web

from rxconnector.log import get_logger
from rxconnector.testing.simulator import bybit_payloads as bp
from rxconnector.testing.simulator.bybit_books import BookWindows, DepthWindow
from rxconnector.testing.simulator.bybit_market import (
    KlineTrackers,
    LinearTickers,
    SpotTickers,
    TickDirections,
)
from rxconnector.testing.simulator.bybit_topics import (
    TopicKey,
    UnknownTopicError,
    UnlistedSymbolError,
    parse_topic,
)
from rxconnector.testing.simulator.connection import (
    CLOSE_GOING_AWAY,
    ConnectionPolicy,
    SimConnection,
)
from rxconnector.testing.simulator.market import Levels, SymbolMarket, TickEvents
from rxconnector.testing.simulator.state import SimState

__all__ = ["BybitStreamServer", "CATEGORIES", "MAX_ARGS_CHARS", "MAX_SPOT_ARGS"]

_log = get_logger("rxconnector.testing.simulator")

#: The public categories the simulator serves (its symbols are USDT pairs).
CATEGORIES: Final = ("spot", "linear")
#: §C1 Limits: "Spot: ≤ 10 args per subscribe request".
MAX_SPOT_ARGS: Final = 10
#: §C1 Limits: the ``args`` of one public connection total at most 21 000 characters.
MAX_ARGS_CHARS: Final = 21_000
#: §C1 Limits: ≤ 500 new connections per 5 minutes per IP and WS domain.
MAX_CONNECTION_ATTEMPTS: Final = 500
CONNECTION_WINDOW: Final = 300.0
#: Bybit documents no incoming-message limit on public streams; this only stops floods.
MAX_FRAMES_PER_SECOND: Final = 100
#: Bybit documents no server pings: the connection's keepalive never fires.
_NO_SERVER_PINGS: Final = 1e9
#: Level 1 is re-sent with the same ``u`` after this many quiet stream periods (3 s).
_L1_RESEND_PERIODS: Final = 3


def _report(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("simulator task failed", task=task.get_name(), exc_info=task.exception())


class _Session:
    """What the Bybit protocol keeps per connection besides :class:`SimConnection`."""

    __slots__ = ("category", "conn_id", "last_ping")

    def __init__(self, category: str, conn_id: str, now: float) -> None:
        self.category = category
        self.conn_id = conn_id
        self.last_ping = now


class BybitStreamServer:
    """Both public Bybit endpoints of one simulator, over its shared market."""

    def __init__(self, state: SimState) -> None:
        self._state = state
        cfg = state.config
        self._policy = ConnectionPolicy(
            ping_interval=_NO_SERVER_PINGS,
            pong_timeout=_NO_SERVER_PINGS,
            max_messages_per_second=MAX_FRAMES_PER_SECOND,
            lifetime=cfg.connection_lifetime,
            max_pending_frames=cfg.max_pending_frames,
            close_timeout=cfg.ws_close_timeout,
        )
        markets = state.market.symbols
        #: the order-book windows (also read by the REST snapshot)
        self.windows = BookWindows({s: m.book for s, m in markets.items()}, cfg.book_history)
        #: trade tick directions (also read by the REST tickers)
        self.directions = TickDirections()
        self._linear = LinearTickers()
        self._spot = SpotTickers()
        self._klines = KlineTrackers()
        # symbol -> topic -> subscribed connections (both categories)
        self._subs: dict[str, dict[str, set[SimConnection]]] = {}
        self._keys: dict[str, TopicKey] = {}
        self._sessions: dict[SimConnection, _Session] = {}
        self._attempts: deque[float] = deque()
        self._conn_ids = random.Random(f"bybit-conn:{cfg.seed}")

    # -- introspection ------------------------------------------------------------------

    @property
    def connections(self) -> set[SimConnection]:
        return set(self._sessions)

    def category_of(self, conn: SimConnection) -> str:
        return self._sessions[conn].category

    def active_topics(self, category: str | None = None) -> set[str]:
        """Topics at least one connection (of ``category``, if given) subscribes."""
        out: set[str] = set()
        for by_topic in self._subs.values():
            for topic, conns in by_topic.items():
                if any(category in (None, self._sessions[c].category) for c in conns):
                    out.add(topic)
        return out

    def book_at(
        self, symbol: str, u: int, topic_depth: int = 50, depth: int | None = None
    ) -> tuple[Levels, Levels]:
        """(bids, asks) of ``orderbook.{topic_depth}.{symbol}`` at its update id ``u``
        (Decimal levels, best first, cut at ``depth``): the true book at the ``seq`` that
        message carried, limited to the window. KeyError for a ``u`` never published."""
        window = self.windows.find(symbol.upper(), topic_depth)
        if window is None:
            raise KeyError(f"orderbook.{topic_depth}.{symbol} was never tracked")
        seq = window.seq_at(u)
        keep = topic_depth if depth is None else min(depth, topic_depth)
        return self._state.market[symbol].book_at(seq, keep)

    def seq_at(self, symbol: str, u: int, topic_depth: int = 50) -> int:
        """The market book update id (``seq``) of ``orderbook.{topic_depth}`` at ``u``."""
        window = self.windows.find(symbol.upper(), topic_depth)
        if window is None:
            raise KeyError(f"orderbook.{topic_depth}.{symbol} was never tracked")
        return window.seq_at(u)

    # -- faults -------------------------------------------------------------------------

    def restart_books(self, symbol: str) -> None:
        """Bybit's service restart for ``symbol``: every order-book window starts again
        at ``u == 1`` and its subscribers get that snapshot."""
        symbol = symbol.upper()
        m = self._state.market[symbol]
        now = self._state.server_time_ms()
        subs = self._subs.get(symbol, {})
        for window in self.windows.tracked(symbol):
            window.restart(m.book)
            topic = f"orderbook.{window.depth}.{symbol}"
            conns = subs.get(topic)
            if conns:
                self._send(conns, self._book_snapshot(m, topic, window, now))

    # -- connection lifecycle -----------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.get(f"/v5/public/{c}", self._handler(c)) for c in CATEGORIES]

    def _handler(self, category: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, category)

        return handle

    def _allow_attempt(self) -> bool:
        now = self._state.loop_time()
        attempts = self._attempts
        while attempts and attempts[0] <= now - CONNECTION_WINDOW:
            attempts.popleft()
        if len(attempts) >= MAX_CONNECTION_ATTEMPTS:
            return False
        attempts.append(now)
        return True

    async def handle(self, request: web.Request, category: str) -> web.StreamResponse:
        """aiohttp handler: upgrade, then serve until closed."""
        state = self._state
        if not self._allow_attempt():
            return web.Response(status=429, text="Too many connection attempts")
        conn = await state.accept(request, self._policy)
        conn_id = str(uuid.UUID(int=self._conn_ids.getrandbits(128), version=4))
        session = _Session(category, conn_id, state.loop_time())
        self._sessions[conn] = session
        state.register(conn)
        watchdog = asyncio.get_running_loop().create_task(
            self._watch_idle(conn, session), name=f"sim-bybit-{conn.id}-idle"
        )
        watchdog.add_done_callback(_report)
        try:
            await conn.serve(self._on_text)
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            # conn.streams stay as they were at close time: tests inspect them
            self._forget(conn, list(conn.streams))
            self._sessions.pop(conn, None)
            state.unregister(conn)
        return conn.response

    async def _watch_idle(self, conn: SimConnection, session: _Session) -> None:
        """Close the connection after ``bybit_idle_timeout`` s without a ping or data."""
        timeout = self._state.config.bybit_idle_timeout
        loop_time = self._state.loop_time
        sent = conn.frames_sent
        active = loop_time()
        while not conn.closing:
            await asyncio.sleep(timeout / 4)
            now = loop_time()
            if conn.frames_sent != sent or session.last_ping > active:
                sent, active = conn.frames_sent, now
            elif now - active >= timeout:
                conn.close_now(CLOSE_GOING_AWAY, f"Idle for {timeout:g}s: no ping and no data")
                return

    # -- control protocol -----------------------------------------------------------------

    def _answer(
        self, conn: SimConnection, op: str, success: bool, ret_msg: str, req_id: Any
    ) -> None:
        session = self._sessions[conn]
        out: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "conn_id": session.conn_id}
        if session.category != "spot":
            out["req_id"] = "" if req_id is None else req_id
        elif req_id is not None:
            out["req_id"] = req_id
        out["op"] = op
        conn.send_text(orjson.dumps(out).decode())

    def _on_text(self, conn: SimConnection, text: str) -> None:
        try:
            message: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        self._state.log_control(conn, text, message)
        if not isinstance(message, dict):
            self._answer(conn, "", False, "error:request must be a JSON object", None)
            return
        op = message.get("op")
        req_id = message.get("req_id")
        session = self._sessions[conn]
        if op == "ping":
            session.last_ping = self._state.loop_time()
            self._answer(conn, "ping", True, "pong", req_id)
        elif op in ("subscribe", "unsubscribe"):
            args = message.get("args")
            if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
                self._answer(conn, op, False, "error:args must be a list of topics", req_id)
            elif session.category == "spot" and len(args) > MAX_SPOT_ARGS:
                self._answer(conn, op, False, f"args size >{MAX_SPOT_ARGS}", req_id)
            elif op == "subscribe":
                self._subscribe(conn, session, args, req_id)
            else:
                self._unsubscribe(conn, session, args, req_id)
        else:
            self._answer(conn, str(op or ""), False, f"error:unsupported op {op!r}", req_id)

    def _subscribe(
        self, conn: SimConnection, session: _Session, args: list[str], req_id: Any
    ) -> None:
        markets = self._state.market.symbols
        keys: list[TopicKey] = []
        unknown: list[str] = []
        unlisted: list[str] = []
        for name in dict.fromkeys(args):
            try:
                keys.append(parse_topic(name, markets))
            except UnlistedSymbolError:
                unlisted.append(name)
            except UnknownTopicError:
                unknown.append(name)
        new = [k for k in keys if k.name not in conn.streams]
        chars = sum(len(t) for t in conn.streams) + sum(len(k.name) for k in new)
        if chars > MAX_ARGS_CHARS:
            msg = f"error:args exceed {MAX_ARGS_CHARS} characters per connection"
            self._answer(conn, "subscribe", False, msg, req_id)
            return
        for key in new:
            self._add(conn, session, key)
        if unlisted:
            msg = f"Invalid symbol :[{','.join(unlisted + unknown)}]"
            self._answer(conn, "subscribe", False, msg, req_id)
        elif unknown:
            msg = f"error:handler not found,topic:{','.join(unknown)}"
            self._answer(conn, "subscribe", False, msg, req_id)
        else:
            self._answer(conn, "subscribe", True, _ok("subscribe", session), req_id)
        now = self._state.server_time_ms()
        for key in new:
            self._on_subscribed(conn, session, key, now)

    def _unsubscribe(
        self, conn: SimConnection, session: _Session, args: list[str], req_id: Any
    ) -> None:
        gone = [name for name in dict.fromkeys(args) if name in conn.streams]
        conn.remove_streams(gone)
        self._forget(conn, gone)
        self._answer(conn, "unsubscribe", True, _ok("unsubscribe", session), req_id)

    def _add(self, conn: SimConnection, session: _Session, key: TopicKey) -> None:
        by_topic = self._subs.setdefault(key.symbol, {})
        conns = by_topic.setdefault(key.name, set())
        if key.kind == "kline" and not conns:
            # nobody was listening: forget candles that closed meanwhile
            self._klines.ensure(self._state.market.symbols[key.symbol], key.interval)
            self._klines.poll(key.symbol, key.interval, self._state.market[key.symbol].now_ms)
        conns.add(conn)
        self._keys[key.name] = key
        conn.add_streams([key.name])

    def _forget(self, conn: SimConnection, names: list[str]) -> None:
        for name in names:
            key = self._keys.get(name)
            if key is None:
                continue
            by_topic = self._subs.get(key.symbol, {})
            conns = by_topic.get(name)
            if conns is None:
                continue
            conns.discard(conn)
            if key.kind == "tickers":
                categories = {self._sessions[c].category for c in conns if c in self._sessions}
                if "linear" not in categories:
                    self._linear.forget(key.symbol)
                if "spot" not in categories:
                    self._spot.forget(key.symbol)
            if not conns:
                del by_topic[name]

    def _on_subscribed(
        self, conn: SimConnection, session: _Session, key: TopicKey, now: int
    ) -> None:
        """What Bybit sends right after a subscription: order-book and ticker snapshots."""
        m = self._state.market.symbols[key.symbol]
        if key.kind == "orderbook":
            window = self.windows.window(key.symbol, key.depth)
            self._send({conn}, self._book_snapshot(m, key.name, window, now))
        elif key.kind == "tickers":
            if session.category == "spot":
                data = bp.spot_ticker(m, now)
                self._send({conn}, _spot_ticker_message(key.name, data, m.book.update_id, now))
            else:
                direction = self.directions.current(key.symbol)
                data = self._linear.snapshot(
                    key.symbol, lambda: bp.linear_ticker(m, now, direction)
                )
                message = _linear_ticker_message(key.name, "snapshot", data, m.book.update_id, now)
                self._send({conn}, message)

    # -- data -----------------------------------------------------------------------------

    def _send(self, conns: set[SimConnection], payload: dict[str, Any]) -> None:
        raw = orjson.dumps(payload).decode()
        for conn in conns:
            conn.send_text(raw)

    def _send_by_category(
        self, conns: set[SimConnection], build: Callable[[str], dict[str, Any] | None]
    ) -> None:
        cache: dict[str, str | None] = {}
        for conn in conns:
            session = self._sessions.get(conn)
            if session is None:
                continue
            category = session.category
            if category not in cache:
                payload = build(category)
                cache[category] = None if payload is None else orjson.dumps(payload).decode()
            raw = cache[category]
            if raw is not None:
                conn.send_text(raw)

    def _book_snapshot(
        self, m: SymbolMarket, topic: str, window: DepthWindow, now: int
    ) -> dict[str, Any]:
        bids, asks = window.levels()
        return bp.orderbook_message(
            m, topic, "snapshot", bids, asks, window.u, window.seq, now, m.now_ms
        )

    def publish(self, events: list[TickEvents], tick: int, dropped: set[str]) -> None:
        """Turn one market tick into Bybit messages; the order-book messages of the
        symbols in ``dropped`` are lost (the ``drop_updates`` fault)."""
        state = self._state
        periodic = tick % state.config.periodic_ticks == 0
        stalled = state.faults.stalled
        markets = state.market.symbols
        for ev in events:
            symbol = ev.symbol
            directions = self.directions.observe(symbol, ev.trades)
            self._klines.observe(symbol, ev.trades)
            m = markets[symbol]
            subs = self._subs.get(symbol, {})
            self._publish_books(m, ev, subs, stalled, symbol in dropped)
            if stalled or not subs:
                continue
            for topic, conns in list(subs.items()):
                key = self._keys[topic]
                if key.kind == "publicTrade" and ev.trades:
                    self._send_by_category(conns, _trades_builder(m, topic, ev, directions))
                elif key.kind == "tickers":
                    self._send_by_category(conns, self._ticker_builder(m, topic, ev))
                elif key.kind == "kline" and periodic:
                    closed, current = self._klines.poll(symbol, key.interval, ev.time)
                    for candle, confirm in [*((k, True) for k in closed), (current, False)]:
                        entry = bp.kline_entry(m, key.native, candle, confirm, ev.time)
                        message = {"topic": topic, "data": [entry], "ts": ev.time}
                        self._send(conns, {**message, "type": "snapshot"})

    def _publish_books(
        self,
        m: SymbolMarket,
        ev: TickEvents,
        subs: dict[str, set[SimConnection]],
        stalled: bool,
        lost: bool,
    ) -> None:
        resend_after = _L1_RESEND_PERIODS * self._state.config.periodic_ticks
        for window in self.windows.tracked(m.symbol):
            change = window.advance(m.book)  # u moves on even if nobody hears it
            if stalled:
                window.resync = True
                continue
            if lost:
                continue  # a pending resync waits for the next message
            if window.resync:
                window.resync = False
                kind = "snapshot"
            elif change is not None:
                kind = "snapshot" if window.depth == 1 else "delta"
            elif window.depth == 1 and window.quiet_ticks >= resend_after:
                window.quiet_ticks = 0
                kind = "snapshot"  # level 1 is re-sent with the same u
            else:
                continue
            topic = f"orderbook.{window.depth}.{m.symbol}"
            conns = subs.get(topic)
            if not conns:
                continue
            if kind == "snapshot" or change is None:
                message = self._book_snapshot(m, topic, window, ev.time)
            else:
                bids, asks = change
                message = bp.orderbook_message(
                    m, topic, "delta", bids, asks, window.u, window.seq, ev.time, ev.time
                )
            self._send(conns, message)

    def _ticker_builder(
        self, m: SymbolMarket, topic: str, ev: TickEvents
    ) -> Callable[[str], dict[str, Any] | None]:
        def build(category: str) -> dict[str, Any] | None:
            if category == "spot":
                data = bp.spot_ticker(m, ev.time)
                if not self._spot.changed(m.symbol, data):
                    return None
                return _spot_ticker_message(topic, data, ev.last_update_id, ev.time)
            full = bp.linear_ticker(m, ev.time, self.directions.current(m.symbol))
            delta = self._linear.delta(m.symbol, full)
            if delta is None:
                return None
            return _linear_ticker_message(topic, "delta", delta, ev.last_update_id, ev.time)

        return build

    def send_shutdown_notice(self, conn: SimConnection) -> None:
        """Bybit has no ``serverShutdown`` notice: nothing is sent."""


def _ok(op: str, session: _Session) -> str:
    """Success ``ret_msg``: Spot names the op, linear leaves it empty (the examples)."""
    return op if session.category == "spot" else ""


def _spot_ticker_message(topic: str, data: dict[str, Any], cs: int, ts: int) -> dict[str, Any]:
    return {"topic": topic, "ts": ts, "type": "snapshot", "cs": cs, "data": data}


def _linear_ticker_message(
    topic: str, kind: str, data: dict[str, Any], cs: int, ts: int
) -> dict[str, Any]:
    return {"topic": topic, "type": kind, "data": data, "cs": cs, "ts": ts}


def _trades_builder(
    m: SymbolMarket, topic: str, ev: TickEvents, directions: list[str]
) -> Callable[[str], dict[str, Any] | None]:
    def build(category: str) -> dict[str, Any] | None:
        data = [
            bp.trade_entry(m, category, t, d) for t, d in zip(ev.trades, directions, strict=True)
        ]
        return {"topic": topic, "type": "snapshot", "ts": ev.time, "data": data}

    return build
