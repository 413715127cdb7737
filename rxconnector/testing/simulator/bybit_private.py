"""Bybit v5 private WebSocket (``/v5/private``): auth, topics, account events (§C2).

Protocol (the ``bybit.v5.ws.auth.*``, ``bybit.v5.ws.private.*`` examples):

* ``{"req_id":..,"op":"auth","args":[api_key, expires, signature]}``: ``signature`` =
  hex HMAC-SHA256 of ``"GET/realtime" + expires``; ``expires`` (ms) must be later than
  the simulator's shifted clock. Answer ``{"success", "ret_msg", "op":"auth",
  "conn_id"}`` (``req_id`` echoed when sent); an expired or malformed request is
  refused with ``"Params Error"`` (what Bybit answers), an unknown key or a wrong
  signature with ``"Request not authorized"`` (simulator wording). Auth again on an
  authenticated connection is accepted.
* ``{"op":"subscribe","args":[topics]}`` only after auth (``"Request not
  authorized"``). Topics: all-in-one ``order``, ``execution``, ``execution.fast``,
  ``position``, ``wallet``, ``greeks``; categorised ``order.{spot|linear|inverse|
  option}``, ``execution.{..}``, ``execution.fast.{..}``, ``position.{linear|inverse|
  option}``. All-in-one and categorised topics cannot be mixed in one request; an
  unknown topic fails the request (``"error:handler not found,topic:<t>"``) and nothing
  of it is subscribed. ``unsubscribe`` mirrors it.
* ``{"op":"ping"}`` → ``{"req_id", "op":"pong", "args":[server ms], "conn_id"}``. The
  server sends no pings of its own (Bybit does not); a connection that neither pings nor
  receives anything for ``bybit_idle_timeout`` seconds (Bybit: 10 minutes, §C1
  "Heartbeat") is closed 1001, checked every quarter of the timeout; at most 500
  connection attempts per 5 minutes, more than 100 incoming frames per second closes
  the connection.

Pushed as ``{"id", "topic", "creationTime", "data": [...]}`` to every authenticated
connection of the account that subscribed the topic: ``order`` on every change of a
Bybit order (New, PartiallyFilled, Filled, Cancelled, PartiallyFilledCanceled),
``execution`` per fill (``execType`` ``Trade``) and ``wallet`` with the changed coins
whenever the account's balances move (whichever venue moved them: accounts are shared),
and ``position`` on every change of a linear order (create, fill, cancel - Bybit sends
one on each), with the position of that symbol. The other accepted topics
(``greeks``, ``execution.fast``) stay silent.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import deque
from typing import Any, Final

import attrs
import orjson
from aiohttp import web

from rxconnector.log import get_logger
from rxconnector.testing.simulator.accounts import Account, Accounts, BalanceChange
from rxconnector.testing.simulator.bybit_rows import (
    bybit_amount,
    bybit_order_row,
    position_row,
    usdt_prices,
    wallet_account,
)
from rxconnector.testing.simulator.connection import (
    CLOSE_GOING_AWAY,
    ConnectionPolicy,
    SimConnection,
)
from rxconnector.testing.simulator.market import TickEvents
from rxconnector.testing.simulator.numbers import scaled
from rxconnector.testing.simulator.orders import Fill, OrderEvent, PositionEvent, SimOrder
from rxconnector.testing.simulator.state import SimState

__all__ = ["BybitPrivateServer", "auth_signature_payload", "parse_private_topic"]

PATH: Final = "/v5/private"
#: §C1 Limits: ≤ 500 new connections per 5 minutes per IP and WS domain.
MAX_CONNECTION_ATTEMPTS: Final = 500
CONNECTION_WINDOW: Final = 300.0
#: Bybit documents no incoming-message limit; this only stops floods.
MAX_FRAMES_PER_SECOND: Final = 100
#: Bybit sends no server pings: the connection's keepalive never fires.
_NO_SERVER_PINGS: Final = 1e9
_ALL_IN_ONE: Final = frozenset(
    {"order", "execution", "execution.fast", "position", "wallet", "greeks"}
)
_CATEGORISED: Final = frozenset(
    [f"{t}.{c}" for t in ("order", "execution", "execution.fast") for c in
     ("spot", "linear", "inverse", "option")]
    + [f"position.{c}" for c in ("linear", "inverse", "option")]
)  # fmt: skip
_AUTH_PREFIX: Final = "GET/realtime"
_log = get_logger("rxconnector.testing.simulator")


def _report(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("bybit private task failed", task=task.get_name(), exc_info=task.exception())


def auth_signature_payload(expires: int) -> str:
    """What the ``auth`` signature signs (§C2)."""
    return f"{_AUTH_PREFIX}{expires}"


def parse_private_topic(topic: object) -> tuple[str, str | None]:
    """``(topic family, category or None)``; ``ValueError`` for an unknown topic."""
    if not isinstance(topic, str):
        raise ValueError(repr(topic))
    if topic in _ALL_IN_ONE:
        return topic, None
    if topic in _CATEGORISED:
        family, category = topic.rsplit(".", 1)
        return family, category
    raise ValueError(topic)


@attrs.define(eq=False)
class _Session:
    conn: SimConnection
    conn_id: str
    last_ping: float = 0.0
    account: Account | None = None
    topics: dict[str, None] = attrs.field(factory=dict)


class BybitPrivateServer:
    """The private endpoint of one simulator."""

    def __init__(self, state: SimState, accounts: Accounts) -> None:
        self._state = state
        self._accounts = accounts
        cfg = state.config
        self._policy = ConnectionPolicy(
            ping_interval=_NO_SERVER_PINGS,
            pong_timeout=_NO_SERVER_PINGS,
            max_messages_per_second=MAX_FRAMES_PER_SECOND,
            lifetime=cfg.connection_lifetime,
            max_pending_frames=cfg.max_pending_frames,
            close_timeout=cfg.ws_close_timeout,
        )
        self._sessions: dict[SimConnection, _Session] = {}
        self._attempts: deque[float] = deque()
        self._conn_ids = random.Random(f"bybit-private-conn:{cfg.seed}")
        self._message_ids = itertools.count(1)
        self._seq = itertools.count(1)
        accounts.listen(self._on_account_event)

    # -- the shape every endpoint of the simulator has -----------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.handle)]

    @property
    def connections(self) -> set[SimConnection]:
        return set(self._sessions)

    def publish(self, events: list[TickEvents], tick: int, dropped: set[str]) -> None:
        """Market ticks carry nothing for this endpoint (account data is event-driven)."""

    def send_shutdown_notice(self, conn: SimConnection) -> None:
        """Bybit announces no shutdown: the connection is simply closed later."""

    def subscriptions(self) -> list[tuple[int, str, list[str]]]:
        """``(connection id, api key or "", topics)`` of every open connection."""
        return [
            (s.conn.id, s.account.api_key if s.account else "", list(s.topics))
            for s in self._sessions.values()
        ]

    # -- connection lifecycle -------------------------------------------------------------

    def _allow_attempt(self) -> bool:
        now = self._state.loop_time()
        attempts = self._attempts
        while attempts and attempts[0] <= now - CONNECTION_WINDOW:
            attempts.popleft()
        if len(attempts) >= MAX_CONNECTION_ATTEMPTS:
            return False
        attempts.append(now)
        return True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        if not self._allow_attempt():
            return web.Response(status=429, text="Too many connection attempts")
        conn = await state.accept(request, self._policy)
        conn_id = str(uuid.UUID(int=self._conn_ids.getrandbits(128), version=4))
        session = _Session(conn, conn_id, state.loop_time())
        self._sessions[conn] = session
        state.register(conn)
        watchdog = asyncio.get_running_loop().create_task(
            self._watch_idle(session), name=f"sim-bybit-private-{conn.id}-idle"
        )
        watchdog.add_done_callback(_report)
        try:
            await conn.serve(self._on_text)
        finally:
            # forget the session before yielding: whoever awaited the close sees it gone
            self._sessions.pop(conn, None)
            state.unregister(conn)
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        return conn.response

    async def _watch_idle(self, session: _Session) -> None:
        """Close the connection after ``bybit_idle_timeout`` s without a ping or data."""
        conn = session.conn
        timeout = self._state.config.bybit_idle_timeout
        loop_time = self._state.loop_time
        sent, active = conn.frames_sent, loop_time()
        while not conn.closing:
            await asyncio.sleep(timeout / 4)
            now = loop_time()
            if conn.frames_sent != sent or session.last_ping > active:
                sent, active = conn.frames_sent, now
            elif now - active >= timeout:
                conn.close_now(CLOSE_GOING_AWAY, f"Idle for {timeout:g}s: no ping and no data")
                return

    # -- control ----------------------------------------------------------------------

    def _send(self, conn: SimConnection, message: dict[str, Any]) -> None:
        conn.send_text(orjson.dumps(message).decode())

    def _answer(self, session: _Session, op: str, success: bool, ret_msg: str, req_id: Any) -> None:
        out: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "op": op}
        if req_id is not None:
            out["req_id"] = req_id
        out["conn_id"] = session.conn_id
        self._send(session.conn, out)

    def _on_text(self, conn: SimConnection, text: str) -> None:
        try:
            message: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        self._state.log_control(conn, text, message)
        session = self._sessions.get(conn)
        if session is None:
            return
        if not isinstance(message, dict):
            self._answer(session, "", False, "error:request is not a JSON object", None)
            return
        op, req_id = message.get("op"), message.get("req_id")
        args = message.get("args")
        if op == "ping":
            session.last_ping = self._state.loop_time()
            pong: dict[str, Any] = {"req_id": req_id} if req_id is not None else {}
            pong.update(
                op="pong", args=[str(self._state.server_time_ms())], conn_id=session.conn_id
            )
            self._send(conn, pong)
        elif op == "auth":
            ok, reason = self._auth(session, args)
            self._answer(session, "auth", ok, reason, req_id)
        elif op in ("subscribe", "unsubscribe"):
            ok, reason = self._topics(session, op, args)
            self._answer(session, op, ok, reason, req_id)
        else:
            self._answer(session, str(op), False, f"error:invalid op {op}", req_id)

    def _auth(self, session: _Session, args: Any) -> tuple[bool, str]:
        if not isinstance(args, list) or len(args) != 3:
            return False, "Params Error"
        api_key, expires, signature = args
        if isinstance(expires, str) and expires.isdigit():
            expires = int(expires)
        if type(expires) is not int or not isinstance(signature, str):
            return False, "Params Error"
        if expires <= self._state.server_time_ms():
            return False, "Params Error"
        account = self._accounts.get(api_key) if isinstance(api_key, str) else None
        if account is None or not account.verify(auth_signature_payload(expires), signature):
            return False, "Request not authorized"
        session.account = account
        return True, ""

    def _topics(self, session: _Session, op: str, args: Any) -> tuple[bool, str]:
        if session.account is None:
            return False, "Request not authorized"
        if not isinstance(args, list) or not args:
            return False, "error:args is empty"
        unknown, kinds = [], set()
        for topic in args:
            try:
                _family, category = parse_private_topic(topic)
            except ValueError:
                unknown.append(str(topic))
                continue
            if _family in ("order", "execution", "execution.fast", "position"):
                kinds.add(category is None)
        if unknown:
            return False, f"error:handler not found,topic:{','.join(unknown)}"
        if len(kinds) > 1:
            return False, "error:all-in-one and categorised topics cannot be mixed"
        for topic in args:
            if op == "subscribe":
                session.topics[topic] = None
            else:
                session.topics.pop(topic, None)
        return True, ""

    # -- account events ---------------------------------------------------------------

    def _targets(self, api_key: str, family: str, category: str | None) -> list[_Session]:
        wanted = {family} if category is None else {family, f"{family}.{category}"}
        return [
            s
            for s in self._sessions.values()
            if s.account is not None
            and s.account.api_key == api_key
            and any(t in s.topics for t in wanted)
        ]

    def _push(
        self, api_key: str, family: str, category: str | None, data: list[Any], now: int
    ) -> None:
        """Send ``data`` on ``family`` (or its ``family.category`` topic, whichever the
        connection subscribed) to every connection of the account."""
        for session in self._targets(api_key, family, category):
            topic = family if family in session.topics else f"{family}.{category}"
            message = {
                "id": f"{next(self._message_ids)}-{uuid.uuid4().hex[:12]}",
                "topic": topic,
                "creationTime": now,
                "data": data,
            }
            self._send(session.conn, message)

    def _on_account_event(self, event: Any) -> None:
        if isinstance(event, OrderEvent):
            order = event.order
            if order.venue != "bybit":
                return
            key, category = order.api_key, order.category
            self._push(key, "order", category, [_order_row(order)], event.time)
            if event.fill is not None:
                rows = [self._execution_row(order, event.fill)]
                self._push(key, "execution", category, rows, event.time)
        elif isinstance(event, PositionEvent):
            position = event.position
            m = self._state.market[position.symbol]
            row = position_row(position, m, next(self._seq))
            self._push(position.api_key, "position", "linear", [row], event.time)
        elif isinstance(event, BalanceChange):
            account = event.account
            if self._targets(account.api_key, "wallet", None):
                coins = [asset for asset, _free, _locked in event.balances]
                data = [wallet_account(account, coins, usdt_prices(self._state.market))]
                self._push(account.api_key, "wallet", None, data, event.time)

    def _execution_row(self, order: SimOrder, fill: Fill) -> dict[str, Any]:
        rules = order.rules
        m = self._state.market[order.symbol]
        return {
            "category": order.category,
            "symbol": order.symbol,
            "closedSize": "",
            "execFee": bybit_amount(fill.fee),
            "execId": str(fill.trade_id),
            "execPrice": scaled(int(fill.price.scaleb(rules.price_exp)), rules.price_exp, 0),
            "execQty": scaled(int(fill.qty.scaleb(rules.qty_exp)), rules.qty_exp, 0),
            "execType": "Trade",
            "execValue": bybit_amount(fill.quote_qty),
            "feeRate": bybit_amount(fill.fee / (fill.qty if order.side == "BUY"
                                                else fill.quote_qty)),
            "tradeIv": "",
            "markIv": "",
            "blockTradeId": "",
            "markPrice": scaled(m.last_price_ticks(), rules.price_exp, 0),
            "indexPrice": "",
            "underlyingPrice": "",
            "leavesQty": scaled(order.qty_steps - order.filled_steps, rules.qty_exp, 0),
            "orderId": str(order.id),
            "orderLinkId": order.client_order_id,
            "orderPrice": scaled(order.price_ticks, rules.price_exp, 0),
            "orderQty": scaled(order.qty_steps, rules.qty_exp, 0),
            "orderType": "Limit" if order.type == "LIMIT" else "Market",
            "stopOrderType": "UNKNOWN",
            "side": "Buy" if order.side == "BUY" else "Sell",
            "execTime": str(fill.time),
            "isLeverage": "0",
            "isMaker": fill.maker,
            "seq": next(self._seq),
            "marketUnit": "",
            "execPnl": "0",
            "createType": "CreateByUser",
            "extraFees": [],
            "feeCurrency": fill.fee_asset,
        }  # fmt: skip


def _order_row(order: SimOrder) -> dict[str, Any]:
    """The ``order`` topic entry: the REST row plus the WebSocket-only fields."""
    row = bybit_order_row(order)
    del row["isLeverage"]
    fee = order.cum_fee
    row.update(
        closedPnl="0",
        category=order.category,
        feeCurrency=order.fee_asset if fee else "",
        cumFeeDetail={order.fee_asset: bybit_amount(fee)} if fee else {},
        rpiTakerAccess=False,
        rpiMatchedQty="0",
    )
    return row
