"""Binance Spot WebSocket API (``/ws-api/v3``): sessions and the user data stream (§A5.1).

Requests are JSON text frames ``{"id", "method", "params"}``; answers are
``{"id", "status", "result" | "error", "rateLimits"}`` (``rateLimits`` left out when
the URL says ``returnRateLimits=false``). Methods:

==================================  ===================================================
``ping`` / ``time``                 ``{}`` / ``{"serverTime"}``
``userDataStream.subscribe.         signed request (any key type; §A3 WS-API payload:
signature``                         params but ``signature`` sorted by name, ``k=v``
                                    joined with ``&``); answers ``{"subscriptionId"}``
``session.logon``                   signed, **Ed25519 keys only** (as documented)
``session.status`` / ``.logout``    the session's state / forget the logon (its
                                    subscription ends with ``eventStreamTerminated``)
``userDataStream.subscribe``        needs a logon; subscribes the logged-on account
``userDataStream.unsubscribe``      ``subscriptionId`` or none (= all); each ended
                                    subscription gets ``eventStreamTerminated``
``session.subscriptions``           ``[{"subscriptionId"}, ...]``
==================================  ===================================================

Signed requests are checked like REST (§A3, §A4): unknown key 401/-2015, bad signature
-1022, ``timestamp`` older than ``recvWindow`` (default 5000, at most 60000) or 1000 ms
or more ahead of the simulator's shifted clock -1021 (the ``reject_timestamp_once``
fault applies too). One subscription per account per connection (-2035 otherwise).

User data events, pushed to every subscription of the account as
``{"subscriptionId": n, "event": {...}}``: ``executionReport`` for every order change of
a Binance order (NEW, TRADE per fill, CANCELED, EXPIRED), then
``outboundAccountPosition`` with the changed assets; a deposit or withdrawal
(``sim.set_balance``) sends ``balanceUpdate`` first. Balances are shared with the Bybit
dialect, so Bybit trades of the same key also move Binance's balances.

Request weight is counted in the Spot REST limiter (one IP budget): connecting costs 2,
``ping``/``time`` 1, the session and user data methods 2. Over the limit the answer is
429 (then 418) with ``error.data.retryAfter`` in epoch ms, as Binance documents.
Unknown methods are answered 400/-1020 ("This operation is not supported.").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import orjson
from aiohttp import web

from rxconnector.testing.simulator.accounts import Account, Accounts, BalanceChange
from rxconnector.testing.simulator.binance_trading import binance_amount
from rxconnector.testing.simulator.connection import ConnectionPolicy, SimConnection
from rxconnector.testing.simulator.market import TickEvents
from rxconnector.testing.simulator.orders import OrderEvent
from rxconnector.testing.simulator.state import SimState
from rxconnector.testing.simulator.weights import WeightLimiter

__all__ = ["BinanceWsApi", "WsApiError", "execution_report", "ws_signature_payload"]

#: Binance documents no incoming-message cap for the WebSocket API (request weight
#: limits it); this only stops floods.
MAX_FRAMES_PER_SECOND = 100
_CONNECT_WEIGHT = 2
_WEIGHTS = {"ping": 1, "time": 1}
_DEFAULT_WEIGHT = 2
_MAX_RECV_WINDOW = 60_000
_ZERO = Decimal(0)


class WsApiError(Exception):
    """An error answer: HTTP-like ``status`` plus Binance's ``{"code", "msg"}``."""

    def __init__(
        self, status: int, code: int, msg: str, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.data = status, code, msg, data


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def ws_signature_payload(params: dict[str, Any]) -> str:
    """§A3: every param but ``signature``, sorted by name, ``k=v`` joined with ``&``."""
    return "&".join(f"{k}={_text(params[k])}" for k in sorted(params) if k != "signature")


def _mandatory(name: str) -> WsApiError:
    return WsApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def execution_report(event: OrderEvent, execution_id: int) -> dict[str, Any]:
    """The ``executionReport`` of one order change (§A5.1 key meanings)."""
    order, fill = event.order, event.fill
    zero = binance_amount(_ZERO)
    canceled = event.kind == "CANCELED"
    resting = order.is_open and order.type == "LIMIT" and order.time_in_force == "GTC"
    return {
        "e": "executionReport",
        "E": event.time,
        "s": order.symbol,
        "c": event.cancel_client_order_id if canceled else order.client_order_id,
        "S": order.side,
        "o": order.label,
        "f": order.time_in_force,
        "q": binance_amount(order.quantity),
        "p": binance_amount(order.price),
        "P": zero,
        "F": zero,
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": event.kind,
        "X": order.status,
        "r": "NONE",
        "i": order.id,
        "l": binance_amount(fill.qty) if fill else zero,
        "z": binance_amount(order.filled),
        "L": binance_amount(fill.price) if fill else zero,
        "n": binance_amount(fill.fee) if fill else "0",
        "N": fill.fee_asset if fill else None,
        "T": event.time,
        "t": fill.trade_id if fill else -1,
        "I": execution_id,
        "w": resting,
        "m": fill.maker if fill else False,
        "M": False,
        "O": order.created,
        "Z": binance_amount(order.cum_quote),
        "Y": binance_amount(fill.quote_qty) if fill else zero,
        "Q": binance_amount(order.quote_quantity or _ZERO),
        "W": order.created,
        "V": "NONE",
    }


@attrs.define(eq=False)
class _Session:
    """What the server knows about one WebSocket-API connection."""

    conn: SimConnection
    connected_since: int
    return_rate_limits: bool
    logon: Account | None = None
    authorized_since: int | None = None
    #: subscription id -> account
    subscriptions: dict[int, Account] = attrs.field(factory=dict)
    logon_subscription: int | None = None
    next_id: int = 0


class BinanceWsApi:
    """The ``/ws-api/v3`` endpoint of one simulator."""

    def __init__(
        self, state: SimState, accounts: Accounts, limiter: WeightLimiter, path: str = "/ws-api/v3"
    ) -> None:
        self._state = state
        self._accounts = accounts
        self._limiter = limiter
        self._path = path
        cfg = state.config
        self._policy = ConnectionPolicy(
            ping_interval=cfg.ping_interval,
            pong_timeout=cfg.pong_timeout,
            max_messages_per_second=MAX_FRAMES_PER_SECOND,
            lifetime=cfg.connection_lifetime,
            max_pending_frames=cfg.max_pending_frames,
            close_timeout=cfg.ws_close_timeout,
        )
        self._sessions: dict[SimConnection, _Session] = {}
        self._execution_ids = itertools.count(1)
        self._methods: dict[str, Callable[[_Session, dict[str, Any], int], Any]] = {
            "ping": lambda s, p, now: {},
            "time": lambda s, p, now: {"serverTime": now},
            "userDataStream.subscribe.signature": self._subscribe_signature,
            "session.logon": self._logon,
            "session.status": self._status,
            "session.logout": self._logout,
            "userDataStream.subscribe": self._subscribe_logon,
            "userDataStream.unsubscribe": self._unsubscribe,
            "session.subscriptions": self._subscriptions,
        }
        self._stop_listening = accounts.listen(self._on_account_event)

    # -- the shape every endpoint of the simulator has -----------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self._path, self.handle)]

    @property
    def connections(self) -> set[SimConnection]:
        return set(self._sessions)

    def publish(self, events: list[TickEvents], tick: int, dropped: set[str]) -> None:
        """Market ticks carry nothing for this endpoint (user data is event-driven)."""

    def send_shutdown_notice(self, conn: SimConnection) -> None:
        """``{"event": {"e": "serverShutdown", "E": ...}}`` (no subscription id)."""
        event = {"e": "serverShutdown", "E": self._state.server_time_ms()}
        conn.send_text(orjson.dumps({"event": event}).decode())

    # -- introspection and faults ---------------------------------------------------------

    def active_subscriptions(self) -> list[tuple[int, int, str]]:
        """``(connection id, subscription id, api key)`` of every live subscription."""
        return [
            (s.conn.id, sid, account.api_key)
            for s in self._sessions.values()
            for sid, account in s.subscriptions.items()
        ]

    def terminate_user_streams(self) -> int:
        """End every subscription as Binance does (``eventStreamTerminated``; the
        sockets stay open). Returns how many were ended."""
        now = self._state.server_time_ms()
        count = 0
        for session in list(self._sessions.values()):
            for sid in list(session.subscriptions):
                self._end_subscription(session, sid, now)
                count += 1
        return count

    # -- connection lifecycle -------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        if not state.allow_connection_attempt():
            return web.json_response(
                {"code": -1003, "msg": "Too many connection attempts; try again later."},
                status=429,
                headers={"Retry-After": str(int(state.config.connection_window))},
            )
        conn = await state.accept(request, self._policy)
        now = state.server_time_ms()
        self._limiter.charge(_CONNECT_WEIGHT, now)
        session = _Session(
            conn, now, request.query.get("returnRateLimits", "true").lower() != "false"
        )
        self._sessions[conn] = session
        state.register(conn)
        try:
            await conn.serve(self._on_text)
        finally:
            self._sessions.pop(conn, None)
            state.unregister(conn)
        return conn.response

    # -- requests ---------------------------------------------------------------------

    def _send(self, conn: SimConnection, message: dict[str, Any]) -> None:
        conn.send_text(orjson.dumps(message).decode())

    def _rate_limits(self, now: int) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self._limiter.limit,
                "count": self._limiter.used(now),
            }
        ]

    def _on_text(self, conn: SimConnection, text: str) -> None:
        try:
            message: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        self._state.log_control(conn, text, message)
        session = self._sessions.get(conn)
        if session is None:
            return
        now = self._state.server_time_ms()
        request_id = message.get("id") if isinstance(message, dict) else None
        answer: dict[str, Any] = {"id": request_id}
        try:
            result = self._dispatch(session, message, now)
        except WsApiError as err:
            error: dict[str, Any] = {"code": err.code, "msg": err.msg}
            if err.data is not None:
                error["data"] = err.data
            answer.update(status=err.status, error=error)
        else:
            answer.update(status=200, result=result)
        if session.return_rate_limits:
            answer["rateLimits"] = self._rate_limits(now)
        self._send(conn, answer)

    def _dispatch(self, session: _Session, message: Any, now: int) -> Any:
        if not isinstance(message, dict):
            raise WsApiError(400, -1102, "Malformed request: a JSON object is expected.")
        method = message.get("method")
        if not isinstance(method, str) or not method:
            raise _mandatory("method")
        handler = self._methods.get(method)
        if handler is None:
            raise WsApiError(400, -1020, "This operation is not supported.")
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise WsApiError(400, -1102, "Malformed request: 'params' must be an object.")
        self._charge(_WEIGHTS.get(method, _DEFAULT_WEIGHT), now)
        return handler(session, params, now)

    def _charge(self, weight: int, now: int) -> None:
        verdict = self._limiter.charge(weight, now)
        if verdict.status == 200:
            return
        until = now + verdict.retry_after * 1000
        if verdict.status == 418:
            msg = (
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            msg = (
                f"Too much request weight used; current limit is {self._limiter.limit} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live updates "
                "to avoid polling the API."
            )
        raise WsApiError(verdict.status, -1003, msg, {"serverTime": now, "retryAfter": until})

    def _verify(self, params: dict[str, Any], now: int) -> Account:
        """A signed request's checks (§A3 WS-API payload, §A4 timing)."""
        api_key = params.get("apiKey")
        if not api_key or not isinstance(api_key, str):
            raise _mandatory("apiKey")
        account = self._accounts.get(api_key)
        if account is None:
            raise WsApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.get("signature")
        if not signature or not isinstance(signature, str):
            raise _mandatory("signature")
        timestamp = params.get("timestamp")
        if type(timestamp) is not int:
            raise _mandatory("timestamp")
        if not account.verify(ws_signature_payload(params), signature):
            raise WsApiError(400, -1022, "Signature for this request is not valid.")
        window = params.get("recvWindow", 5000)
        if isinstance(window, bool) or not isinstance(window, int | float):
            raise _mandatory("recvWindow")
        if window > _MAX_RECV_WINDOW:
            raise WsApiError(400, -1131, "recvWindow must be less than 60000")
        if timestamp > 10**14:  # microseconds
            timestamp //= 1000
        if self._state.faults.take_timestamp_rejection() or now - timestamp > window:
            raise WsApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if timestamp >= now + 1000:
            raise WsApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        return account

    # -- methods ----------------------------------------------------------------------

    def _new_subscription(self, session: _Session, account: Account) -> int:
        if any(a is account for a in session.subscriptions.values()):
            raise WsApiError(400, -2035, "User Data Stream subscription already active.")
        sid = session.next_id
        session.next_id += 1
        session.subscriptions[sid] = account
        return sid

    def _subscribe_signature(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        account = self._verify(params, now)
        return {"subscriptionId": self._new_subscription(session, account)}

    def _session_state(self, session: _Session, now: int) -> dict[str, Any]:
        return {
            "apiKey": session.logon.api_key if session.logon else None,
            "authorizedSince": session.authorized_since,
            "connectedSince": session.connected_since,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now,
            "userDataStream": bool(session.subscriptions),
        }

    def _logon(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        account = self._verify(params, now)
        if account.key_type != "ed25519":
            raise WsApiError(
                401,
                -2015,
                "Invalid API-key, IP, or permissions for action. "
                "(session.logon accepts Ed25519 keys only)",
            )
        session.logon, session.authorized_since = account, now
        return self._session_state(session, now)

    def _status(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        return self._session_state(session, now)

    def _logout(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        if session.logon_subscription is not None:
            self._end_subscription(session, session.logon_subscription, now)
        session.logon, session.authorized_since = None, None
        return self._session_state(session, now)

    def _subscribe_logon(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        if session.logon is None:
            raise WsApiError(401, -1002, "You are not authorized to execute this request.")
        sid = self._new_subscription(session, session.logon)
        session.logon_subscription = sid
        return {"subscriptionId": sid}

    def _unsubscribe(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        sid = params.get("subscriptionId")
        if sid is None:
            for each in list(session.subscriptions):
                self._end_subscription(session, each, now)
            return {}
        if type(sid) is not int or sid not in session.subscriptions:
            raise WsApiError(400, -2036, "User Data Stream subscription not active.")
        self._end_subscription(session, sid, now)
        return {}

    def _subscriptions(self, session: _Session, params: dict[str, Any], now: int) -> Any:
        return [{"subscriptionId": sid} for sid in session.subscriptions]

    def _end_subscription(self, session: _Session, sid: int, now: int) -> None:
        if session.subscriptions.pop(sid, None) is None:
            return
        if session.logon_subscription == sid:
            session.logon_subscription = None
        event = {"e": "eventStreamTerminated", "E": now}
        self._send(session.conn, {"subscriptionId": sid, "event": event})

    # -- user data --------------------------------------------------------------------

    def _on_account_event(self, event: Any) -> None:
        if isinstance(event, OrderEvent):
            if event.order.venue == "binance":
                report = execution_report(event, next(self._execution_ids))
                self._push(event.order.api_key, [report])
        elif isinstance(event, BalanceChange):
            self._push(event.account.api_key, self._balance_events(event))

    @staticmethod
    def _balance_events(change: BalanceChange) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if change.delta is not None:
            asset, delta = change.delta
            events.append(
                {
                    "e": "balanceUpdate",
                    "E": change.time,
                    "a": asset,
                    "d": binance_amount(delta),
                    "T": change.time,
                }
            )
        events.append(
            {
                "e": "outboundAccountPosition",
                "E": change.time,
                "u": change.time,
                "B": [
                    {"a": a, "f": binance_amount(free), "l": binance_amount(locked)}
                    for a, free, locked in change.balances
                ],
            }
        )
        return events

    def _push(self, api_key: str, events: list[dict[str, Any]]) -> None:
        for session in self._sessions.values():
            for sid, account in session.subscriptions.items():
                if account.api_key != api_key:
                    continue
                for event in events:
                    self._send(session.conn, {"subscriptionId": sid, "event": event})

    def close(self) -> None:
        """Stop listening to the accounts (the simulator is going away)."""
        self._stop_listening()
