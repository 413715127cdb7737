"""Binance Spot user data over the WebSocket API: login, events, parsers (no I/O).

Since 2026-02-20 the listenKey method is gone from Spot (PROTOCOL.md §A5.2), so the
account stream is a WebSocket-API connection (``wss://ws-api.binance.com:443/ws-api/v3``)
on which we send one signed request (§A5.1, option 2, any key type)::

    {"id": "subscribe-1", "method": "userDataStream.subscribe.signature",
     "params": {"apiKey": ..., "timestamp": ..., "recvWindow": ..., "signature": ...}}

signed as every WS-API request is: params sorted by name, ``k=v`` joined with ``&``,
no percent-encoding (§A3; :class:`~rxconnector.exchanges.binance.signing.BinanceSigner`).
The answer ``{"id", "status": 200, "result": {"subscriptionId": n}}`` starts the flow of
``{"subscriptionId": n, "event": {...}}`` frames.

How each event is exposed:

=========================  ==========================================================
``executionReport``        :class:`~rxconnector.models.OrderUpdate`; when ``x`` is
                           ``TRADE`` also an :class:`~rxconnector.models.Execution`
``outboundAccountPosition``  one :class:`~rxconnector.models.Balance` per asset (the new
                           free/locked amounts)
``balanceUpdate``          :class:`~rxconnector.models.BalanceDelta` ``kind="balance"``
                           (a signed change; the new totals follow as Balances)
``externalLockUpdate``     :class:`~rxconnector.models.BalanceDelta`
                           ``kind="external_lock"``
``listStatus``             raw only (order lists carry no fill data; their member
                           orders report through ``executionReport``)
``eventStreamTerminated``  our subscription is over: subscribe again, reconcile
other / future types       raw only (never an error: new event types are normal)
=========================  ==========================================================

Every event is also emitted raw as ``(received_at, event)`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson

from rxconnector.config import Secret
from rxconnector.errors import (
    ExchangeError,
    ParseError,
    RateLimitError,
    WebSocketClosedError,
    excerpt,
)
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_flag,
    json_str,
    raise_malformed,
    to_decimal,
)
from rxconnector.exchanges.binance.signing import BinanceSigner
from rxconnector.models import Balance, BalanceDelta, Execution, OrderUpdate, Side

if TYPE_CHECKING:
    from rxconnector.exchanges.account_protocol import PrivateProtocol, SessionOutput

__all__ = [
    "AUTH_ERROR_CODES",
    "CONNECTION_ATTEMPT_WINDOW",
    "MAX_CONNECTION_ATTEMPTS",
    "MAX_MESSAGES_PER_SECOND",
    "STALE_AFTER",
    "SUBSCRIBE_METHOD",
    "BinanceUserStream",
    "parse_account_position",
    "parse_balance_delta",
    "parse_execution",
    "parse_execution_report",
    "parse_user_event",
]

#: §A5.1 option 2: no session logon needed, any key type (HMAC, RSA, Ed25519).
SUBSCRIBE_METHOD: Final = "userDataStream.subscribe.signature"
#: Binance documents no per-message cap for WS-API connections; we keep the market
#: streams' 5 messages/s (§A1.1). We send one request per (re)subscription and one ping
#: per ping interval, far below it.
MAX_MESSAGES_PER_SECOND: Final = 5.0
#: §A5.1: 300 connections per 5 minutes per IP.
MAX_CONNECTION_ATTEMPTS: Final = 300
CONNECTION_ATTEMPT_WINDOW: Final = 300.0
#: Not documented. We ping every ``ping_interval`` (20 s) and each answer is a frame,
#: so 60 s without any frame means three pings went unanswered: the socket is dead.
STALE_AFTER: Final = 60.0
#: Error codes that mean "these credentials will never work" (§A2.6): -1002
#: unauthorized, -1022 invalid signature, -2014 bad API-key format, -2015 invalid
#: API-key, IP or permissions. A rejection with one of these errors the feeds.
AUTH_ERROR_CODES: Final = frozenset({-1002, -1022, -2014, -2015})
#: -1021: timestamp outside recvWindow / ahead of the server: resync and try again.
_TIMESTAMP_CODE: Final = -1021
_PING_ID: Final = "ping"
_PING: Final = orjson.dumps({"id": _PING_ID, "method": "ping"}).decode()
_DEFAULT_BAN_SECONDS: Final = 60.0

_SIDES: Final[dict[str, Side]] = {"BUY": "buy", "SELL": "sell"}


# --------------------------------------------------------------------------- parsers


def _side(value: Any) -> Side:
    side = _SIDES.get(value)
    if side is None:  # the value quoted cut short: a hostile frame's may be megabytes
        raise ValueError(f"unknown side {excerpt(value, 40)!r}, expected BUY or SELL")
    return side


def parse_execution_report(event: Any, received_at: float) -> OrderUpdate:
    """``executionReport`` → :class:`OrderUpdate` (§A5.1 key meanings).

    ``average_price`` is ``Z / z`` (cumulative quote / cumulative quantity) once
    something was filled, else ``None``. ``fee`` / ``fee_asset`` are the commission of
    THIS event's fill (``n`` / ``N``; ``N`` is null when nothing was charged). For a
    cancel, ``c`` is the cancel request's own id and ``C`` the order's: the order's is
    reported.
    """
    try:
        D = to_decimal
        filled = D(event["z"])
        average = D(event["Z"]) / filled if filled else None
        original = event.get("C")
        return OrderUpdate(
            symbol=json_str(event["s"]),
            order_id=str(event["i"]),
            client_order_id=original or event["c"],
            side=_side(event["S"]),
            type=event["o"],
            status=event["X"],
            execution_type=event["x"],
            price=D(event["p"]),
            quantity=D(event["q"]),
            filled_quantity=filled,
            average_price=average,
            last_fill_price=D(event["L"]),
            last_fill_quantity=D(event["l"]),
            fee=D(event["n"]),
            fee_asset=event["N"],
            event_time=int(event["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "executionReport", event, exc)


def parse_execution(event: Any, received_at: float) -> Execution | None:
    """The fill an ``executionReport`` describes, when ``x`` is ``TRADE``; else ``None``.

    ``execution_id`` is the trade id ``t``; ``time`` the transaction time ``T``. A
    ``TRADE`` report that filled nothing (``l`` = 0, trade id ``t`` = -1, seen in real
    user-data recordings) is not a fill and gives ``None`` (it is still checked, so a
    malformed one is a ParseError); its order update is still reported by
    :func:`parse_execution_report`.
    """
    try:
        if event["x"] != "TRADE":
            return None
        original = event.get("C")
        fill = Execution(
            symbol=json_str(event["s"]),
            order_id=str(event["i"]),
            client_order_id=original or event["c"],
            execution_id=str(event["t"]),
            side=_side(event["S"]),
            price=to_decimal(event["L"]),
            quantity=to_decimal(event["l"]),
            fee=to_decimal(event["n"]),
            fee_asset=event["N"],
            is_maker=json_flag(event["m"]),
            time=int(event["T"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "executionReport", event, exc)
    return fill if fill.quantity else None


def _fill_of(update: OrderUpdate, event: Any, received_at: float) -> Execution | None:
    """:func:`parse_execution` of an ``executionReport`` whose :class:`OrderUpdate` was
    just parsed from it: the fields both read (symbol, ids, side, ``L``, ``l``, ``n``,
    ``N``) come from ``update``, already converted and checked, so only ``t``, ``m``
    and ``T`` are read here (the same model, and for a malformed ``t``/``m``/``T`` the
    same ParseError, in the same order). Why: parsing the fill again cost ≈2.9 µs;
    building it from the update makes a fill frame's bytes → models ≈1.1x faster
    (benchmarks/RESULTS.md, "Typed decoding on account feeds (seventh session)")."""
    try:
        fill = Execution(
            symbol=update.symbol,
            order_id=update.order_id,
            client_order_id=update.client_order_id,
            execution_id=str(event["t"]),
            side=update.side,
            price=update.last_fill_price,
            quantity=update.last_fill_quantity,
            fee=update.fee,
            fee_asset=update.fee_asset,
            is_maker=json_flag(event["m"]),
            time=int(event["T"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", "executionReport", event, exc)
    return fill if fill.quantity else None


def parse_account_position(event: Any, received_at: float) -> list[Balance]:
    """``outboundAccountPosition`` → one :class:`Balance` per changed asset (``B``)."""
    try:
        D = to_decimal
        event_time = int(event["E"])
        return [
            Balance(
                asset=json_str(row["a"]),
                free=D(row["f"]),
                locked=D(row["l"]),
                event_time=event_time,
                received_at=received_at,
            )
            for row in event["B"]
        ]
    except MALFORMED as exc:
        raise_malformed("binance", "outboundAccountPosition", event, exc)


def parse_balance_delta(event: Any, received_at: float) -> BalanceDelta:
    """``balanceUpdate`` / ``externalLockUpdate`` → :class:`BalanceDelta` (``a``, ``d``,
    clear time ``T``)."""
    try:
        kind = "balance" if event["e"] == "balanceUpdate" else "external_lock"
        return BalanceDelta(
            asset=json_str(event["a"]),
            delta=to_decimal(event["d"]),
            kind=kind,
            time=int(event["T"]),
            event_time=int(event["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance", str(event.get("e", "balance")), event, exc)


def parse_user_event(event: Any, received_at: float) -> list[Any]:
    """The models of one user-data event (see the module docstring's table); ``[]`` for
    events that are exposed raw only."""
    kind = event.get("e") if isinstance(event, dict) else None
    if kind == "executionReport":
        update = parse_execution_report(event, received_at)
        if update.execution_type != "TRADE":
            return [update]
        execution = _fill_of(update, event, received_at)
        return [update] if execution is None else [update, execution]
    if kind == "outboundAccountPosition":
        return list(parse_account_position(event, received_at))
    if kind in ("balanceUpdate", "externalLockUpdate"):
        return [parse_balance_delta(event, received_at)]
    if kind is None:
        raise ParseError("binance user data event without 'e'", event)
    return []


# --------------------------------------------------------------------------- login


def _rejection(message: Mapping[str, Any], what: str) -> tuple[Exception, bool, bool]:
    """``(error, fatal, resync_clock)`` for an error answer of the WebSocket API."""
    status = message.get("status")
    status = status if type(status) is int else 0
    error = message.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    code = code if type(code) is int else None
    msg = error.get("msg") or "no reason given"
    text = f"Binance refused {what}: {msg if isinstance(msg, str) else excerpt(msg)}"
    if status in (418, 429):
        data = error.get("data")
        retry_after = _DEFAULT_BAN_SECONDS
        if isinstance(data, dict):
            until, server = data.get("retryAfter"), data.get("serverTime")
            if type(until) is int and type(server) is int:
                retry_after = max(0.0, (until - server) / 1000.0)
        limited = RateLimitError(
            text,
            retry_after=retry_after,
            exchange="binance",
            status=status,
            code=code,
            banned=status == 418,
        )
        return limited, False, False
    if code == _TIMESTAMP_CODE:
        late = ExchangeError(text, exchange="binance", status=status, code=code, retryable=True)
        return late, False, True
    retryable = status >= 500 and code not in AUTH_ERROR_CODES
    failure = ExchangeError(text, exchange="binance", status=status, code=code, retryable=retryable)
    return failure, not retryable, False


class _Session:
    """One socket's conversation: subscribe, then decode events."""

    __slots__ = ("_counter", "_pending", "_protocol", "subscription_id")

    def __init__(self, protocol: BinanceUserStream) -> None:
        self._protocol = protocol
        self._counter = 0
        self._pending: str | None = None
        self.subscription_id: int | None = None

    def on_connected(self, out: SessionOutput) -> None:
        self._subscribe(out)

    def _subscribe(self, out: SessionOutput) -> None:
        def build() -> str:
            self._counter += 1
            request_id = f"subscribe-{self._counter}"
            self._pending = request_id
            return self._protocol.subscribe_request(request_id)

        out.send(build)

    def on_message(self, message: Any, received_at: float, out: SessionOutput) -> None:
        if not isinstance(message, dict):
            out.report(ParseError("unrecognised frame on the binance user data stream", message))
            return
        event = message.get("event")
        if event is not None:
            if "subscriptionId" in message:
                self._on_event(message["subscriptionId"], event, received_at, out)
            elif isinstance(event, dict) and event.get("e") == "serverShutdown":
                # The server will close this socket soon: reconnect now (and reconcile).
                out.fail(
                    WebSocketClosedError("binance WebSocket API announced serverShutdown"),
                    fatal=False,
                )
            else:
                out.report(ParseError("binance user data event without subscriptionId", message))
            return
        if "status" in message:
            self._on_answer(message, out)
            return
        out.report(ParseError("unrecognised frame on the binance user data stream", message))

    def _on_event(
        self, subscription_id: Any, event: Any, received_at: float, out: SessionOutput
    ) -> None:
        out.emit((received_at, event))
        kind = event.get("e") if isinstance(event, dict) else None
        if kind == "eventStreamTerminated":
            if self.subscription_id is not None and subscription_id != self.subscription_id:
                return  # an older subscription of this socket; ours is still alive
            self.subscription_id = None
            out.resubscribing("eventStreamTerminated")
            self._subscribe(out)
            return
        try:
            models = parse_user_event(event, received_at)
        except ParseError as exc:
            out.report(exc)
            return
        for model in models:
            out.emit(model)

    def _on_answer(self, message: dict[str, Any], out: SessionOutput) -> None:
        request_id = message.get("id")
        ok = message.get("status") == 200
        if request_id == _PING_ID and ok:
            return
        if request_id is not None and request_id == self._pending:
            self._pending = None
            if ok:
                result = message.get("result")
                sid = result.get("subscriptionId") if isinstance(result, dict) else None
                self.subscription_id = sid if type(sid) is int else None
                out.subscribed()
                return
            error, fatal, resync = _rejection(
                message, f"the user data subscription ({SUBSCRIBE_METHOD})"
            )
            out.fail(error, fatal=fatal, resync_clock=resync)
            return
        if ok:
            return
        if request_id is None:
            # A session-level error (an API key revoked while connected).
            error, fatal, resync = _rejection(message, "the user data session")
            out.fail(error, fatal=fatal, resync_clock=resync)
            return
        error, _fatal, _resync = _rejection(message, f"request {excerpt(request_id, 60)!r}")
        out.report(error)


class BinanceUserStream:
    """Binance Spot's user data stream as a private protocol for
    :class:`~rxconnector.streams.accounts.account_streams.AccountStreams`.

    Args:
        api_key: The API key (sent in the clear, as Binance requires).
        api_secret: HMAC secret or PEM private key (Ed25519 / RSA); only the signer
            sees it.
        now_ms: The exchange-synced clock in ms (``Connector.now``) for ``timestamp``.
        recv_window: ``recvWindow`` in ms to send (``None``: Binance's default, 5000).
    """

    name = "binance"
    feeds: frozenset[str] = frozenset({"orders", "balances", "executions", "balance_deltas"})
    max_messages_per_second = MAX_MESSAGES_PER_SECOND
    max_connection_attempts = MAX_CONNECTION_ATTEMPTS
    connection_attempt_window = CONNECTION_ATTEMPT_WINDOW
    stale_after = STALE_AFTER
    reports_last_fill = True

    def __init__(
        self,
        api_key: str,
        api_secret: Secret,
        now_ms: Callable[[], int],
        *,
        recv_window: int | None = None,
    ) -> None:
        self._signer = BinanceSigner(api_key, api_secret)
        self._now = now_ms
        self._recv_window = recv_window

    def __repr__(self) -> str:
        return f"BinanceUserStream({self._signer!r})"

    def subscribe_request(self, request_id: str) -> str:
        """The signed ``userDataStream.subscribe.signature`` frame, stamped now."""
        params: dict[str, Any] = {"apiKey": self._signer.api_key, "timestamp": int(self._now())}
        if self._recv_window is not None:
            params["recvWindow"] = self._recv_window
        signed = self._signer.sign_ws_params(params)
        frame = {"id": request_id, "method": SUBSCRIBE_METHOD, "params": signed}
        return orjson.dumps(frame).decode()

    def ping_message(self) -> str:
        """``{"id":"ping","method":"ping"}`` (weight 1); its answer feeds the watchdog."""
        return _PING

    def new_session(self) -> _Session:
        return _Session(self)

    def order_status(self, raw: str) -> str:
        """Binance statuses are the canonical spelling already."""
        return raw


if TYPE_CHECKING:
    _conforms: PrivateProtocol = BinanceUserStream("k", Secret("s"), lambda: 0)
