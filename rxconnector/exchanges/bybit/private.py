"""Bybit v5 private WebSocket: authentication, topics and parsers (no I/O).

The private endpoint (``wss://stream.bybit.com/v5/private``, PROTOCOL.md §C2) serves
every category of a unified account. On each socket we send

1. ``{"req_id":"auth","op":"auth","args":[api_key, expires, signature]}`` with
   ``expires`` = synced now + :data:`AUTH_EXPIRES_AFTER_MS` and ``signature`` =
   HMAC-SHA256 of ``"GET/realtime" + expires`` (``exchanges/bybit/signing.py``);
2. once ``{"op":"auth","success":true}`` arrives, one
   ``{"req_id":"subscribe","op":"subscribe","args":["order","execution","wallet","position"]}``
   (the all-in-one topics: they cannot be mixed with categorised ones in one request);
3. ``{"op":"ping"}`` every ``ping_interval`` (20 s recommended, §C1 "Heartbeat").

Data arrives as ``{"id", "topic", "creationTime", "data": [...]}``; ``creationTime`` is
the models' ``event_time``. Normalization, so the same pipeline runs on every venue:

* order statuses and types are spelled like Binance's (:data:`ORDER_STATUS`), so
  ``status == "FILLED"`` works everywhere; an unknown status passes through unchanged;
* Bybit's order topic reports no last fill and only the order's cumulative fee:
  ``execution_type`` is derived from the status, ``fee`` is ``cumExecFee`` and
  ``last_fill_*`` are left 0 here (the account stream derives them from the change of
  ``cumExecQty``; per-fill fees are on the execution topic);
* ``fee_asset`` is ``feeCurrency`` when Bybit fills it, else ``None`` (``cumFeeDetail``
  lists deductions in other coins, e.g. MNT, which are not the fee's currency);
* ``execution`` entries of type ``Funding`` are not fills and are left out;
* ``wallet`` gives one :class:`~rxconnector.models.Balance` per coin and ``position``
  one :class:`~rxconnector.models.Position` per entry, mapped as REST maps them
  (:mod:`~rxconnector.exchanges.bybit.account_rows`: ``free`` is what is owned net of
  ``borrowAmount``, the debt shows on ``borrowed``; position sides ``Buy`` / ``Sell`` /
  ``""`` become ``long`` / ``short`` / ``flat``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import orjson

from rxconnector.config import Secret
from rxconnector.errors import (
    ConfigError,
    ExchangeError,
    ParseError,
    SubscriptionError,
    excerpt,
)
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_flag,
    json_str,
    opt_decimal,
    raise_malformed,
    to_decimal,
)
from rxconnector.exchanges.bybit.account_rows import coin_balance, decimal_or_zero, position_row
from rxconnector.exchanges.bybit.signing import ws_auth_message
from rxconnector.exchanges.bybit.ws_protocol import (
    CONNECTION_ATTEMPT_WINDOW,
    MAX_CONNECTION_ATTEMPTS,
    MAX_MESSAGES_PER_SECOND,
)
from rxconnector.models import Balance, Execution, OrderUpdate, Position, Side

if TYPE_CHECKING:
    from rxconnector.exchanges.account_protocol import PrivateProtocol, SessionOutput

__all__ = [
    "AUTH_EXPIRES_AFTER_MS",
    "ORDER_STATUS",
    "STALE_AFTER",
    "TOPICS",
    "BybitPrivateStream",
    "parse_executions",
    "parse_orders",
    "parse_positions",
    "parse_wallet",
]

#: §C2 all-in-one topics: every category in one subscription.
TOPICS: Final = ("order", "execution", "wallet", "position")
#: §C2: ``expires`` must be later than Bybit's clock when the frame arrives; the docs'
#: sample uses now + 1 s. We allow 5 s so a slow network or a pacer wait of a second
#: cannot make a freshly signed frame arrive expired.
AUTH_EXPIRES_AFTER_MS: Final = 5_000
#: Not documented. We ping every ``ping_interval`` (20 s) and Bybit answers each ping,
#: so 60 s without any frame means three answers are missing.
STALE_AFTER: Final = 60.0

#: Bybit order status → Binance's spelling (the library's canonical one). Conditional
#: orders waiting for their trigger are ``NEW`` on Binance; ``Deactivated`` (cancelled
#: before triggering) and ``PartiallyFilledCanceled`` are cancellations.
ORDER_STATUS: Final[dict[str, str]] = {
    "New": "NEW",
    "PartiallyFilled": "PARTIALLY_FILLED",
    "Untriggered": "NEW",
    "Triggered": "NEW",
    "Filled": "FILLED",
    "Cancelled": "CANCELED",
    "PartiallyFilledCanceled": "CANCELED",
    "Deactivated": "CANCELED",
    "Rejected": "REJECTED",
}
#: The Binance execution type that matches each canonical status.
_EXECUTION_TYPE: Final[dict[str, str]] = {
    "NEW": "NEW",
    "PARTIALLY_FILLED": "TRADE",
    "FILLED": "TRADE",
    "CANCELED": "CANCELED",
    "REJECTED": "REJECTED",
}
_SIDES: Final[dict[str, Side]] = {"Buy": "buy", "Sell": "sell"}
_NOT_FILLS: Final = frozenset({"Funding"})
_ZERO: Final = Decimal(0)
_PING: Final = orjson.dumps({"op": "ping"}).decode()
_AUTH_ID: Final = "auth"
_SUBSCRIBE_ID: Final = "subscribe"


# --------------------------------------------------------------------------- parsers


def _side(value: Any) -> Side:
    """``Buy`` / ``Sell`` → ``buy`` / ``sell``; anything else is malformed, quoted cut
    short (a hostile frame's value may be megabytes)."""
    side = _SIDES.get(value) if type(value) is str else None
    if side is None:
        raise ValueError(f"unknown side {excerpt(value, 40)!r}, expected Buy or Sell")
    return side


def _average(value: Any) -> Decimal | None:
    """``avgPrice`` is ``""`` or ``"0"`` until something was filled."""
    average = opt_decimal(value)
    return average if average else None


def _event_time(message: Any) -> int:
    return int(message["creationTime"])


def parse_orders(message: Any, received_at: float) -> list[OrderUpdate]:
    """``order`` topic → one :class:`OrderUpdate` per entry (see the module docstring)."""
    try:
        event_time = _event_time(message)
        updates = []
        for row in message["data"]:
            raw_status = row["orderStatus"]
            status = ORDER_STATUS.get(raw_status, raw_status)
            updates.append(
                OrderUpdate(
                    symbol=json_str(row["symbol"]),
                    order_id=str(row["orderId"]),
                    client_order_id=row["orderLinkId"],
                    side=_side(row["side"]),
                    type=str(row["orderType"]).upper(),
                    status=status,
                    execution_type=_EXECUTION_TYPE.get(status, status),
                    price=decimal_or_zero(row["price"]),
                    quantity=decimal_or_zero(row["qty"]),
                    filled_quantity=decimal_or_zero(row["cumExecQty"]),
                    average_price=_average(row.get("avgPrice")),
                    last_fill_price=_ZERO,
                    last_fill_quantity=_ZERO,
                    fee=decimal_or_zero(row.get("cumExecFee")),
                    fee_asset=row.get("feeCurrency") or None,
                    event_time=event_time,
                    received_at=received_at,
                )
            )
        return updates
    except MALFORMED as exc:
        raise_malformed("bybit", "order", message, exc)


def parse_executions(message: Any, received_at: float) -> list[Execution]:
    """``execution`` / ``execution.fast`` topics → one :class:`Execution` per fill
    (funding left out).

    ``execution.fast`` (BY ``private/fast-execution.mdx``) carries trades only and fewer
    fields: no ``execType`` and no fee (``execFee``, ``feeCurrency``). Its fills get
    ``fee=None`` (unknown, which is not zero); the regular topic must carry its fee.
    """
    try:
        fast = str(message.get("topic", "")).startswith("execution.fast")
        fills = []
        for row in message["data"]:
            if row.get("execType") in _NOT_FILLS:
                continue
            fills.append(
                Execution(
                    symbol=json_str(row["symbol"]),
                    order_id=str(row["orderId"]),
                    client_order_id=row["orderLinkId"],
                    execution_id=str(row["execId"]),
                    side=_side(row["side"]),
                    price=to_decimal(row["execPrice"]),
                    quantity=to_decimal(row["execQty"]),
                    fee=None if fast else decimal_or_zero(row["execFee"]),
                    fee_asset=row.get("feeCurrency") or None,
                    is_maker=json_flag(row["isMaker"]),
                    time=int(row["execTime"]),
                    received_at=received_at,
                )
            )
        return fills
    except MALFORMED as exc:
        raise_malformed("bybit", "execution", message, exc)


def parse_wallet(message: Any, received_at: float) -> list[Balance]:
    """``wallet`` topic → one :class:`Balance` per coin of every account listed."""
    try:
        event_time = _event_time(message)
        return [
            coin_balance(coin, event_time, received_at)
            for account in message["data"]
            for coin in account["coin"]
        ]
    except MALFORMED as exc:
        raise_malformed("bybit", "wallet", message, exc)


def parse_positions(message: Any, received_at: float) -> list[Position]:
    """``position`` topic → one :class:`Position` per entry."""
    try:
        event_time = _event_time(message)
        return [position_row(row, event_time, received_at) for row in message["data"]]
    except MALFORMED as exc:
        raise_malformed("bybit", "position", message, exc)


_PARSERS: Final[dict[str, Callable[[Any, float], Sequence[Any]]]] = {
    "order": parse_orders,
    "execution": parse_executions,
    "wallet": parse_wallet,
    "position": parse_positions,
}


# --------------------------------------------------------------------------- login


class _Session:
    """One socket's conversation: auth, subscribe, then decode topic messages."""

    __slots__ = ("_protocol", "authenticated")

    def __init__(self, protocol: BybitPrivateStream) -> None:
        self._protocol = protocol
        self.authenticated = False

    def on_connected(self, out: SessionOutput) -> None:
        out.send(self._protocol.auth_message)

    def on_message(self, message: Any, received_at: float, out: SessionOutput) -> None:
        if not isinstance(message, dict):
            out.report(ParseError("unrecognised frame on the bybit private stream", message))
            return
        topic = message.get("topic")
        if topic is not None:
            if type(topic) is not str:  # a list or an object: this frame's error only
                out.report(ParseError("bybit private frame with a non-string topic", message))
                return
            self._on_data(topic, message, received_at, out)
            return
        op = message.get("op")
        if op == "pong" or op == "ping":
            return
        success = message.get("success")
        ret_msg = message.get("ret_msg") or "no reason given"
        reason = ret_msg if isinstance(ret_msg, str) else excerpt(ret_msg)
        if op == "auth":
            if success is True:
                self.authenticated = True
                out.send(self._protocol.subscribe_message)
            else:
                error = ExchangeError(
                    f"Bybit refused the private stream authentication: {reason}",
                    exchange="bybit",
                )
                out.fail(error, fatal=True)
            return
        if op == "subscribe":
            if success is True:
                out.subscribed()
            else:
                topics = ",".join(self._protocol.topics)
                out.fail(SubscriptionError(topics, f"Bybit: {reason}"), fatal=True)
            return
        out.report(ParseError("unrecognised frame on the bybit private stream", message))

    def _on_data(self, topic: str, message: Any, received_at: float, out: SessionOutput) -> None:
        out.emit((received_at, message))
        # Categorised topics ("order.spot") parse like the all-in-one ones.
        parse = _PARSERS.get(topic.split(".", 1)[0])
        if parse is None:
            return
        try:
            models = parse(message, received_at)
        except ParseError as exc:
            out.report(exc)
            return
        for model in models:
            out.emit(model)


class BybitPrivateStream:
    """Bybit's private stream as a private protocol for
    :class:`~rxconnector.streams.accounts.account_streams.AccountStreams`.

    Args:
        api_key: The API key.
        api_secret: The HMAC secret (only the signing function sees it).
        now_ms: The exchange-synced clock in ms (``Connector.now``) for ``expires``.
        topics: Topics to subscribe (default: order, execution, wallet, position).
    """

    name = "bybit"
    feeds: frozenset[str] = frozenset({"orders", "balances", "executions", "positions"})
    max_messages_per_second = MAX_MESSAGES_PER_SECOND
    max_connection_attempts = MAX_CONNECTION_ATTEMPTS
    connection_attempt_window = CONNECTION_ATTEMPT_WINDOW
    stale_after = STALE_AFTER
    reports_last_fill = False

    def __init__(
        self,
        api_key: str,
        api_secret: Secret,
        now_ms: Callable[[], int],
        *,
        topics: Sequence[str] = TOPICS,
    ) -> None:
        if not api_key or not api_secret:
            raise ConfigError("api_key", "and api_secret are required for private streams", "")
        if not topics:
            raise ValueError("at least one private topic is needed")
        self._api_key = api_key
        self._secret = api_secret
        self._now = now_ms
        self.topics = tuple(topics)

    def __repr__(self) -> str:
        shown = f"{self._api_key[:4]}…"
        return f"BybitPrivateStream(api_key={shown!r}, topics={self.topics!r})"

    def __reduce__(self) -> Any:
        raise TypeError("BybitPrivateStream holds a secret and cannot be pickled")

    def auth_message(self) -> str:
        """The ``auth`` frame, signed now with ``expires`` = now + 5 s."""
        expires = int(self._now()) + AUTH_EXPIRES_AFTER_MS
        return ws_auth_message(self._api_key, self._secret, expires, req_id=_AUTH_ID)

    def subscribe_message(self) -> str:
        """``{"req_id":"subscribe","op":"subscribe","args":[topics]}``."""
        frame = {"req_id": _SUBSCRIBE_ID, "op": "subscribe", "args": list(self.topics)}
        return orjson.dumps(frame).decode()

    def ping_message(self) -> str:
        """``{"op":"ping"}``."""
        return _PING

    def new_session(self) -> _Session:
        return _Session(self)

    def order_status(self, raw: str) -> str:
        """Bybit's spelling (``Filled``) → the canonical one (``FILLED``); others unchanged."""
        return ORDER_STATUS.get(raw, raw)


if TYPE_CHECKING:
    _conforms: PrivateProtocol = BybitPrivateStream("k", Secret("s"), lambda: 0)
