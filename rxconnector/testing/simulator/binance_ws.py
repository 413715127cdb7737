"""Binance market-stream endpoints: ``/ws``, ``/ws/<streams>`` and ``/stream?streams=``.

Connection rules (PROTOCOL.md §A1, §A1.1, §A1.2):

* ``/ws/<s1>/<s2>`` sends raw payloads, ``/stream?streams=<s1>/<s2>`` wraps each one as
  ``{"stream": name, "data": payload}``; ``/ws`` and ``/stream`` without streams are for
  live SUBSCRIBE. SET_PROPERTY ``combined`` switches the wrapping per connection.
* A server ping every ``ping_interval`` carrying a payload; no matching pong within
  ``pong_timeout`` → close 1008 "Pong timeout".
* More than ``max_messages_per_second`` incoming frames (text, ping, pong) within any
  1-second window → close 1008 "Too many messages".
* ``connection_lifetime`` → close 1001; more than ``max_connections_per_window``
  connection attempts per window → HTTP 429 before the upgrade.

Simulator choices where Binance's behaviour is not documented or would hide client bugs:

* A SUBSCRIBE naming a symbol the simulator does not list is answered
  ``{"code": 2, "msg": "Invalid request: unknown symbol <x>", "id": <id>}`` and nothing
  is subscribed (Binance accepts it silently); malformed or upper-case stream names are
  answered the same way with another message.
* A SUBSCRIBE that would take the connection past ``max_streams_per_connection`` is
  answered ``{"code": 2, "msg": "Invalid request: too many streams ...", "id": <id>}``
  and the connection is then closed 1008. A URL with too many streams is accepted and
  closed 1008 at once; a URL with an invalid stream name is refused with HTTP 400 and
  ``{"code": 2, "msg": ...}``.
* Stream cadence is compressed: real-time and ``@100ms`` streams update every tick, the
  "1000 ms" streams every ``periodic_ticks`` ticks. A slow ``@depth`` event merges the
  diffs of its period (``U`` of the first, ``u`` of the last).
* Market data missed during a stall or dropped with ``drop_updates`` is lost, not
  replayed: the diff stream then shows a real ``U``/``u`` gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from rxconnector.testing.simulator.binance_control import ControlRequest, parse_control
from rxconnector.testing.simulator.binance_payloads import SpotPayloads
from rxconnector.testing.simulator.binance_streams import (
    SPOT_KINDS,
    StreamKey,
    StreamNameError,
    parse_stream,
)
from rxconnector.testing.simulator.connection import (
    CLOSE_POLICY_VIOLATION,
    ConnectionPolicy,
    SimConnection,
)
from rxconnector.testing.simulator.market import SymbolMarket, TickEvents
from rxconnector.testing.simulator.state import SimState

__all__ = ["BinanceStreamServer"]


class _SlowDepth:
    """The per-tick diffs of one period, merged into one ``@depth`` (1000 ms) event.

    The ticks are only kept (a reference each) and merged when the period's event is
    taken for a subscriber: most symbols have no slow-depth subscriber, and merging two
    dicts per symbol per tick was the simulator's largest per-tick cost after the market
    itself. The event is the same: ``U`` of the first tick, ``u`` of the last, each
    level's final quantity.
    """

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[TickEvents] = []

    def add(self, ev: TickEvents) -> None:
        self.events.append(ev)

    def reset(self) -> None:
        self.events = []

    def take(self) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        events = self.events
        if not events:
            return None
        self.events = []
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for ev in events:
            bids.update(ev.bids)
            asks.update(ev.asks)
        return (
            events[0].first_update_id,
            events[-1].last_update_id,
            sorted(bids.items(), reverse=True),
            sorted(asks.items()),
        )


def _wants_slow_depth(subs: dict[str, tuple[StreamKey, set[SimConnection]]]) -> bool:
    """Whether one of a symbol's subscribed streams is the slow ``@depth`` diff stream."""
    return any(key.kind == "depth" and not key.fast for key, _conns in subs.values())


class BinanceStreamServer:
    """One Binance market-stream endpoint family mounted under ``prefix``."""

    def __init__(
        self,
        state: SimState,
        payloads: SpotPayloads | None = None,
        *,
        prefix: str = "",
        policy: ConnectionPolicy | None = None,
        kinds: Mapping[str, tuple[str, ...]] = SPOT_KINDS,
        serves: Callable[[StreamKey], bool] | None = None,
    ) -> None:
        self._state = state
        self._payloads = payloads or SpotPayloads()
        self._prefix = prefix
        cfg = state.config
        self._policy = policy or ConnectionPolicy(
            ping_interval=cfg.ping_interval,
            pong_timeout=cfg.pong_timeout,
            max_messages_per_second=cfg.max_messages_per_second,
            lifetime=cfg.connection_lifetime,
            max_pending_frames=cfg.max_pending_frames,
            close_timeout=cfg.ws_close_timeout,
        )
        self._max_streams = cfg.max_streams_per_connection
        self._kinds = kinds
        # which accepted streams push data here (USD-M routes /public vs /market)
        self._serves = serves or (lambda key: True)
        # symbol -> stream name -> (key, subscribed connections)
        self._index: dict[str, dict[str, tuple[StreamKey, set[SimConnection]]]] = {}
        self._slow_depth = {s: _SlowDepth() for s in state.market.symbols}
        self._connections: set[SimConnection] = set()

    @property
    def connections(self) -> set[SimConnection]:
        return set(self._connections)

    def routes(self) -> list[web.RouteDef]:
        p = self._prefix
        return [
            web.get(f"{p}/ws", self.handle),
            web.get(p + "/ws/{streams:.+}", self.handle),
            web.get(f"{p}/stream", self.handle),
        ]

    def _parse(self, name: str) -> StreamKey:
        return parse_stream(name, self._state.market.symbols, self._kinds)

    # -- connection lifecycle ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler: validate the URL, upgrade, then serve until closed."""
        state = self._state
        if not state.allow_connection_attempt():
            return web.json_response(
                {"code": -1003, "msg": "Too many connection attempts; try again later."},
                status=429,
                headers={"Retry-After": str(int(state.config.connection_window))},
            )
        combined = request.path.endswith("/stream")
        if combined:
            raw_names = request.query.get("streams", "")
        else:
            raw_names = request.match_info.get("streams", "")
        names = [n for n in raw_names.split("/") if n]
        try:
            keys = [self._parse(n) for n in dict.fromkeys(names)]
        except StreamNameError as exc:
            return web.json_response({"code": 2, "msg": str(exc)}, status=400)
        conn = await state.accept(request, self._policy)
        conn.combined = combined
        state.register(conn)
        self._connections.add(conn)
        if len(keys) > self._max_streams:
            conn.close_now(CLOSE_POLICY_VIOLATION, "Too many streams")
        else:
            self._subscribe(conn, keys)
        try:
            await conn.serve(self._on_text)
        finally:
            # leave conn.streams as they were at close time: tests inspect them
            for name in conn.stream_list:
                key = self._parse(name)
                by_name = self._index.get(key.symbol, {})
                entry = by_name.get(name)
                if entry is not None:
                    entry[1].discard(conn)
                    if not entry[1]:
                        del by_name[name]
            self._connections.discard(conn)
            state.unregister(conn)
        return conn.response

    def _subscribe(
        self, conn: SimConnection, keys: list[StreamKey] | tuple[StreamKey, ...]
    ) -> None:
        conn.add_streams([k.name for k in keys])
        for key in keys:
            by_name = self._index.setdefault(key.symbol, {})
            entry = by_name.get(key.name)
            if entry is None:
                entry = by_name[key.name] = (key, set())
            entry[1].add(conn)

    def _unsubscribe(
        self, conn: SimConnection, keys: list[StreamKey] | tuple[StreamKey, ...]
    ) -> None:
        conn.remove_streams([k.name for k in keys])
        for key in keys:
            by_name = self._index.get(key.symbol, {})
            entry = by_name.get(key.name)
            if entry is not None:
                entry[1].discard(conn)
                if not entry[1]:
                    del by_name[key.name]

    def active_streams(self) -> set[str]:
        """Streams at least one connection of this endpoint is subscribed to."""
        return {name for by_name in self._index.values() for name in by_name}

    # -- control protocol -------------------------------------------------------------

    def _reply(self, conn: SimConnection, reply: dict[str, Any]) -> None:
        conn.send_text(orjson.dumps(reply).decode())

    def _on_text(self, conn: SimConnection, text: str) -> None:
        try:
            decoded: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            decoded = None
        self._state.log_control(conn, text, decoded)
        req = parse_control(text, self._parse)
        if not isinstance(req, ControlRequest):
            self._reply(conn, req)
            return
        method = req.method
        if method == "SUBSCRIBE":
            new = [k for k in req.streams if k.name not in conn.streams]
            if len(conn.streams) + len(new) > self._max_streams:
                msg = (
                    f"Invalid request: too many streams; at most {self._max_streams} per connection"
                )
                self._reply(conn, {"code": 2, "msg": msg, "id": req.id})
                conn.close_after_pending(CLOSE_POLICY_VIOLATION, "Too many streams")
                return
            self._subscribe(conn, new)
            self._reply(conn, {"result": None, "id": req.id})
        elif method == "UNSUBSCRIBE":
            self._unsubscribe(conn, [k for k in req.streams if k.name in conn.streams])
            self._reply(conn, {"result": None, "id": req.id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": conn.stream_list, "id": req.id})
        elif method == "SET_PROPERTY":
            conn.combined = bool(req.value)
            self._reply(conn, {"result": None, "id": req.id})
        else:  # GET_PROPERTY
            self._reply(conn, {"result": conn.combined, "id": req.id})

    # -- data -------------------------------------------------------------------------

    def publish(self, events: list[TickEvents], tick: int, dropped: set[str]) -> None:
        """Turn one market tick into frames for every subscribed connection; the depth
        events of the symbols in ``dropped`` are lost (the ``drop_updates`` fault)."""
        state = self._state
        faults = state.faults
        periodic = tick % state.config.periodic_ticks == 0
        stalled = faults.stalled
        for ev in events:
            lost = ev.symbol in dropped
            acc = self._slow_depth[ev.symbol]
            if lost or stalled:
                acc.reset()  # those updates are lost for the slow stream too
            else:
                acc.add(ev)
            subs = self._index.get(ev.symbol)
            slow = None
            if periodic:
                if subs and not stalled and _wants_slow_depth(subs):
                    slow = acc.take()
                else:
                    acc.reset()  # the period's event, which nobody hears
            if stalled or not subs:
                continue
            m = state.market.symbols[ev.symbol]
            for name, (key, conns) in list(subs.items()):
                if not self._serves(key):
                    continue
                if key.kind == "trade":  # the busiest stream: encoded without a dict
                    for t in ev.trades:
                        self._send_raw(name, self._payloads.trade_json(m, t, ev.time), conns)
                    continue
                for payload in self._build(key, m, ev, periodic, lost, slow):
                    self._send(name, payload, conns)

    def _send(self, name: str, payload: dict[str, Any], conns: set[SimConnection]) -> None:
        self._send_raw(name, orjson.dumps(payload), conns)

    def _send_raw(self, name: str, raw: bytes, conns: set[SimConnection]) -> None:
        # encoded once and shared by every subscriber; kept as bytes (the socket's
        # type), not decoded to ``str`` only to be encoded again by the writer
        wrapped: bytes | None = None
        for conn in conns:
            if conn.combined:
                if wrapped is None:
                    wrapped = b'{"stream":"%s","data":%s}' % (name.encode(), raw)
                conn.send_text(wrapped)
            else:
                conn.send_text(raw)

    def _build(
        self,
        key: StreamKey,
        m: SymbolMarket,
        ev: TickEvents,
        periodic: bool,
        dropped: bool,
        slow: tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None,
    ) -> list[dict[str, Any]]:
        p, kind, now = self._payloads, key.kind, ev.time
        if kind == "trade":
            return [p.trade(m, t, now) for t in ev.trades]
        if kind == "aggTrade":
            return [p.agg_trade(m, a, now) for a in ev.aggs]
        if kind == "depth":
            if key.fast:
                if dropped:
                    return []
                return [
                    p.depth_update(
                        m, ev.first_update_id, ev.last_update_id, list(ev.bids), list(ev.asks), now
                    )
                ]
            return [p.depth_update(m, *slow, now)] if slow else []
        if kind == "bookTicker":
            return [p.book_ticker(m)] if ev.top_changed else []
        if kind == "partialDepth" and (key.fast or periodic):
            return [p.partial_depth_event(m, int(key.param), now)]
        if not periodic:
            return []
        builders: dict[str, Callable[[SymbolMarket, int], dict[str, Any]]] = {
            "ticker": p.ticker,
            "miniTicker": p.mini_ticker,
            "avgPrice": p.avg_price,
            "markPrice": p.mark_price,
        }
        if kind in builders:
            return [builders[kind](m, now)]
        if kind == "forceOrder":
            liquidation = p.force_order(m, ev.aggs, now)
            return [liquidation] if liquidation else []
        if kind == "kline":
            closed, current = m.kline_tracker(key.param).poll(now)
            out = [p.kline(m, key.param, k, True, now) for k in closed]
            out.append(p.kline(m, key.param, current, False, now))
            return out
        return []

    def send_shutdown_notice(self, conn: SimConnection) -> None:
        """The ``serverShutdown`` event, raw or combined as the connection expects."""
        data = self._payloads.server_shutdown(self._state.server_time_ms())
        if conn.combined:
            self._reply(conn, {"stream": "!serverShutdown", "data": data})
        else:
            self._reply(conn, data)
