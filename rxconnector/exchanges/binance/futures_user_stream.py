"""Binance USD-M futures user data stream: listenKey socket, events, parsers (no I/O).

USD-M still uses the listenKey method that Spot retired (PROTOCOL.md §B; Binance
derivatives docs, "User Data Streams" - Connect,
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams):

* ``POST /fapi/v1/listenKey`` gives a key valid for 60 minutes (a POST while a key is
  active returns that key and extends it); ``PUT`` extends it by 60 minutes (an unknown
  key answers ``-1125``); ``DELETE`` closes it. We keep it alive every 30 minutes on the
  connector's scheduler (:mod:`rxconnector.streams.accounts.listen_key`, which gives
  each socket attempt its URL; this module only knows the protocol).
* Since the 2026 URL split the socket lives on the routed ``/private`` path:
  ``wss://fstream.binance.com/private/ws?listenKey=<key>`` (PROTOCOL.md §B "WS base and
  routing"). Events arrive unwrapped (``{"e": ..., "E": ...}``), no subscription
  handshake: the socket being open IS the subscription.
* A connection lives at most 24 h; ``listenKeyExpired`` means no more events until a
  valid key is used (docs, "Event: User Data Stream Expired"): we reconnect with a new
  key and reconcile over REST, so nothing is lost.

How each event is exposed (field names: the docs' payloads in ``examples.json``
``binance.usdm.uds.*`` and the official SDK's models, BPY ``websocket_streams/models``):

==========================  ============================================================
``ORDER_TRADE_UPDATE``      :class:`~rxconnector.models.OrderUpdate`; when ``x`` is
                            ``TRADE`` also an :class:`~rxconnector.models.Execution`
``TRADE_LITE``              with ``fast_executions=True``: the
                            :class:`~rxconnector.models.Execution` as soon as it arrives
                            (it comes before ``ORDER_TRADE_UPDATE``, without the fee);
                            the later ``ORDER_TRADE_UPDATE`` of the same trade then adds
                            no second Execution. Otherwise raw only.
``ACCOUNT_UPDATE``          one :class:`~rxconnector.models.Balance` per asset of ``B``
                            (``free`` = cross wallet balance ``cw``, ``locked`` =
                            ``wb - cw``, the isolated margin) and one
                            :class:`~rxconnector.models.Position` per entry of ``P``
``MARGIN_CALL``             :class:`~rxconnector.models.AccountEvent` ``margin_call``
``ACCOUNT_CONFIG_UPDATE``   :class:`~rxconnector.models.AccountEvent` ``leverage``
                            (``ac``) or ``account_config`` (``ai``)
``listenKeyExpired``        reconnect with a fresh key, then reconcile
other / future types        raw only
==========================  ============================================================

``E`` is sometimes a string on the wire (a recorded ``listenKeyExpired``,
go-binance issue #510, is ``"E": "1693427319838"``): every time is read with ``int()``.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import orjson

from rxconnector.errors import ExchangeError, ParseError, excerpt
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_flag,
    json_str,
    opt_decimal,
    raise_malformed,
    to_decimal,
)
from rxconnector.models import AccountEvent, Balance, Execution, OrderUpdate, Position, Side

if TYPE_CHECKING:
    from rxconnector.exchanges.account_protocol import PrivateProtocol, SessionOutput

__all__ = [
    "PRIVATE_PATH",
    "BinanceFuturesUserStream",
    "parse_account_config_update",
    "parse_account_update",
    "parse_futures_user_event",
    "parse_margin_call",
    "parse_order_trade_update",
    "parse_trade_lite",
    "private_stream_url",
]

#: The user data socket's path under the routed ``/private`` base (PROTOCOL.md §B).
PRIVATE_PATH: Final = "/ws"
#: USD-M streams accept 10 incoming messages per second (PROTOCOL.md §B "Limits").
MAX_MESSAGES_PER_SECOND: Final = 10.0
#: Not documented for the private path; the market streams' budget is kept.
MAX_CONNECTION_ATTEMPTS: Final = 300
CONNECTION_ATTEMPT_WINDOW: Final = 300.0
#: We send ``LIST_SUBSCRIPTIONS`` every ``ping_interval``; its answer is a frame, so
#: 60 s without any frame means three answers are missing.
STALE_AFTER: Final = 60.0
_PING_ID: Final = "ping"
_PING: Final = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": _PING_ID}).decode()
#: Trade ids remembered to drop the second report of a fill (TRADE_LITE, then
#: ORDER_TRADE_UPDATE).
_SEEN_TRADES: Final = 4096
_SIDES: Final[dict[str, Side]] = {"BUY": "buy", "SELL": "sell"}
_ZERO: Final = Decimal(0)


def private_stream_url(private_base: str, listen_key: str) -> str:
    """``{private_base}/ws?listenKey={listen_key}`` (``private_base`` is the venue's
    ``private_ws_url``, e.g. ``wss://fstream.binance.com/private``)."""
    return f"{private_base.rstrip('/')}{PRIVATE_PATH}?listenKey={listen_key}"


# --------------------------------------------------------------------------- parsers


def _side(value: Any) -> Side:
    side = _SIDES.get(value)
    if side is None:  # the value quoted cut short: a hostile frame's may be megabytes
        raise ValueError(f"unknown side {excerpt(value, 40)!r}, expected BUY or SELL")
    return side


def parse_order_trade_update(event: Any, received_at: float) -> OrderUpdate:
    """``ORDER_TRADE_UPDATE`` → :class:`OrderUpdate`.

    ``o.ap`` (average price) is ``None`` until something filled; ``fee`` is this
    event's commission ``n`` (absent when nothing was charged → 0; the docs: "negative
    means fee charge" on some products, USD-M sends it positive) in ``N``.
    """
    try:
        o = event["o"]
        average = to_decimal(o["ap"])
        return OrderUpdate(
            symbol=json_str(o["s"]),
            order_id=str(o["i"]),
            client_order_id=o["c"],
            side=_side(o["S"]),
            type=o["o"],
            status=o["X"],
            execution_type=o["x"],
            price=to_decimal(o["p"]),
            quantity=to_decimal(o["q"]),
            filled_quantity=to_decimal(o["z"]),
            average_price=average if average else None,
            last_fill_price=to_decimal(o["L"]),
            last_fill_quantity=to_decimal(o["l"]),
            fee=to_decimal(o.get("n") or 0),
            fee_asset=o.get("N") or None,
            event_time=int(event["E"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance_futures", "ORDER_TRADE_UPDATE", event, exc)


def parse_order_execution(event: Any, received_at: float) -> Execution | None:
    """The fill an ``ORDER_TRADE_UPDATE`` reports when ``x`` is ``TRADE``, else ``None``."""
    try:
        o = event["o"]
        if o["x"] != "TRADE":
            return None
        return Execution(
            symbol=json_str(o["s"]),
            order_id=str(o["i"]),
            client_order_id=o["c"],
            execution_id=str(o["t"]),
            side=_side(o["S"]),
            price=to_decimal(o["L"]),
            quantity=to_decimal(o["l"]),
            fee=to_decimal(o.get("n") or 0),
            fee_asset=o.get("N") or None,
            is_maker=json_flag(o["m"]),
            time=int(o["T"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance_futures", "ORDER_TRADE_UPDATE", event, exc)


def _fill_of(update: OrderUpdate, event: Any, received_at: float) -> Execution:
    """:func:`parse_order_execution` of an ``ORDER_TRADE_UPDATE`` whose
    :class:`OrderUpdate` was just parsed from it: the fields both read come from
    ``update`` (already converted and checked), only ``o.t``, ``o.m`` and ``o.T`` are
    read here (the same model, and the same ParseError for a malformed one, in the same
    order), so a fill's numbers are not converted twice."""
    try:
        o = event["o"]
        return Execution(
            symbol=update.symbol,
            order_id=update.order_id,
            client_order_id=update.client_order_id,
            execution_id=str(o["t"]),
            side=update.side,
            price=update.last_fill_price,
            quantity=update.last_fill_quantity,
            fee=update.fee,
            fee_asset=update.fee_asset,
            is_maker=json_flag(o["m"]),
            time=int(o["T"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance_futures", "ORDER_TRADE_UPDATE", event, exc)


def parse_trade_lite(event: Any, received_at: float) -> Execution:
    """``TRADE_LITE`` → :class:`Execution`. The event carries no fee: ``fee`` and
    ``fee_asset`` are ``None`` (unknown, not zero - :class:`~rxconnector.models.Execution`;
    the fee comes on the order update)."""
    try:
        return Execution(
            symbol=json_str(event["s"]),
            order_id=str(event["i"]),
            client_order_id=event["c"],
            execution_id=str(event["t"]),
            side=_side(event["S"]),
            price=to_decimal(event["L"]),
            quantity=to_decimal(event["l"]),
            fee=None,
            fee_asset=None,
            is_maker=json_flag(event["m"]),
            time=int(event["T"]),
            received_at=received_at,
        )
    except MALFORMED as exc:
        raise_malformed("binance_futures", "TRADE_LITE", event, exc)


def position_from_row(
    row: Any,
    event_time: int,
    received_at: float,
    *,
    mark_price: Decimal | None = None,
    leverage: Decimal | None = None,
    liquidation_price: Decimal | None = None,
    reconciled: bool = False,
) -> Position:
    """One USD-M position row (``ACCOUNT_UPDATE.a.P``, ``MARGIN_CALL.p`` or REST
    ``positionRisk`` once renamed) → :class:`Position`. ``pa`` is signed."""
    amount = to_decimal(row["pa"])
    side = "long" if amount > 0 else "short" if amount < 0 else "flat"
    return Position(
        symbol=json_str(row["s"]),
        side=side,
        size=abs(amount),
        entry_price=to_decimal(row.get("ep") or 0),
        mark_price=mark_price if mark_price is not None else opt_decimal(row.get("mp")),
        unrealised_pnl=opt_decimal(row.get("up")),
        leverage=leverage,
        event_time=event_time,
        received_at=received_at,
        margin_mode=(row.get("mt") or None),
        liquidation_price=liquidation_price,
        position_side=str(row.get("ps") or "BOTH").lower(),
        reconciled=reconciled,
    )


def usdm_balance(
    asset: str,
    wallet: Decimal,
    cross: Decimal,
    event_time: int,
    received_at: float = 0.0,
    *,
    equity: Decimal | None = None,
) -> Balance:
    """A USD-M margin asset as a :class:`Balance` (stream and REST alike): ``free`` = the
    cross wallet balance, never above the wallet; ``locked`` = ``wallet - cross`` (what
    isolated positions hold); a negative wallet (losses beyond it) is a debt: ``free``
    and ``locked`` 0, ``borrowed`` = what is owed."""
    if wallet < _ZERO:
        return Balance(
            asset, _ZERO, _ZERO, event_time, received_at, borrowed=-wallet, equity=equity
        )
    return Balance(
        asset=asset,
        free=max(min(cross, wallet), _ZERO),
        locked=max(wallet - cross, _ZERO),
        event_time=event_time,
        received_at=received_at,
        equity=equity,
    )


def parse_account_update(event: Any, received_at: float) -> list[Balance | Position]:
    """``ACCOUNT_UPDATE`` → Balances (``B``) then Positions (``P``).

    Balance mapping (USD-M, :func:`usdm_balance`): ``free`` = ``cw`` (cross wallet
    balance), ``locked`` = ``wb - cw`` (what isolated positions hold), so ``total`` is
    the wallet balance ``wb``; a negative ``wb`` shows as ``borrowed``. Margin held by
    cross positions and orders is not separated by this event.
    """
    try:
        event_time = int(event["E"])
        update = event["a"]
        models: list[Balance | Position] = []
        for row in update.get("B") or ():
            wallet, cross = to_decimal(row["wb"]), to_decimal(row["cw"])
            models.append(usdm_balance(json_str(row["a"]), wallet, cross, event_time, received_at))
        for row in update.get("P") or ():
            models.append(position_from_row(row, event_time, received_at))
        return models
    except MALFORMED as exc:
        raise_malformed("binance_futures", "ACCOUNT_UPDATE", event, exc)


def parse_margin_call(event: Any, received_at: float) -> AccountEvent:
    """``MARGIN_CALL`` → :class:`AccountEvent` ``margin_call`` with the positions at risk."""
    try:
        event_time = int(event["E"])
        positions = tuple(position_from_row(row, event_time, received_at) for row in event["p"])
        return AccountEvent(
            kind="margin_call",
            event_time=event_time,
            received_at=received_at,
            positions=positions,
            cross_wallet_balance=opt_decimal(event.get("cw")),
        )
    except MALFORMED as exc:
        raise_malformed("binance_futures", "MARGIN_CALL", event, exc)


def parse_account_config_update(event: Any, received_at: float) -> AccountEvent:
    """``ACCOUNT_CONFIG_UPDATE`` → :class:`AccountEvent` ``leverage`` (``ac``) or
    ``account_config`` (``ai``: ``j`` multi-assets mode, ``d`` hedge mode)."""
    try:
        event_time = int(event["E"])
        leverage = event.get("ac")
        if isinstance(leverage, dict):
            return AccountEvent(
                kind="leverage",
                event_time=event_time,
                received_at=received_at,
                symbol=json_str(leverage["s"]),
                leverage=to_decimal(leverage["l"]),
            )
        config = event["ai"]
        hedge = config.get("d")
        return AccountEvent(
            kind="account_config",
            event_time=event_time,
            received_at=received_at,
            multi_assets=json_flag(config["j"]) if "j" in config else None,
            hedge_mode=json_flag(hedge) if hedge is not None else None,
        )
    except MALFORMED as exc:
        raise_malformed("binance_futures", "ACCOUNT_CONFIG_UPDATE", event, exc)


def parse_futures_user_event(event: Any, received_at: float) -> list[Any]:
    """The models of one USD-M user data event (``TRADE_LITE`` and unknown types: ``[]``;
    the session decides about ``TRADE_LITE``)."""
    kind = event.get("e") if isinstance(event, dict) else None
    if kind == "ORDER_TRADE_UPDATE":
        update = parse_order_trade_update(event, received_at)
        if update.execution_type != "TRADE":
            return [update]
        return [update, _fill_of(update, event, received_at)]
    if kind == "ACCOUNT_UPDATE":
        return list(parse_account_update(event, received_at))
    if kind == "MARGIN_CALL":
        return [parse_margin_call(event, received_at)]
    if kind == "ACCOUNT_CONFIG_UPDATE":
        return [parse_account_config_update(event, received_at)]
    if kind is None:
        raise ParseError("binance_futures user data event without 'e'", event)
    return []


# --------------------------------------------------------------------------- the socket


class _Session:
    """One listenKey socket: no login (the key in the URL is the subscription)."""

    __slots__ = ("_protocol", "_seen")

    def __init__(self, protocol: BinanceFuturesUserStream) -> None:
        self._protocol = protocol
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def on_connected(self, out: SessionOutput) -> None:
        out.subscribed()

    def on_message(self, message: Any, received_at: float, out: SessionOutput) -> None:
        if not isinstance(message, dict):
            out.report(ParseError("unrecognised frame on the USD-M user data stream", message))
            return
        kind = message.get("e")
        if kind is None:
            if message.get("id") == _PING_ID or "result" in message:
                return  # the answer to our LIST_SUBSCRIPTIONS ping
            out.report(ParseError("USD-M user data frame without 'e'", message))
            return
        out.emit((received_at, message))
        if kind == "listenKeyExpired":
            out.fail(
                ExchangeError(
                    "Binance USD-M: the listenKey expired (listenKeyExpired); reconnecting "
                    "with a new key",
                    exchange="binance_futures",
                    retryable=True,
                ),
                fatal=False,
            )
            return
        try:
            if kind == "TRADE_LITE":
                if self._protocol.fast_executions:
                    self._emit_fill(parse_trade_lite(message, received_at), out)
                return
            models = parse_futures_user_event(message, received_at)
        except ParseError as exc:
            out.report(exc)
            return
        for model in models:
            if type(model) is Execution:
                self._emit_fill(model, out)
            else:
                out.emit(model)

    def _emit_fill(self, fill: Execution, out: SessionOutput) -> None:
        key = (fill.symbol, fill.execution_id)
        seen = self._seen
        if key in seen:
            return  # TRADE_LITE already reported this fill
        seen[key] = None
        while len(seen) > _SEEN_TRADES:
            seen.popitem(last=False)
        out.emit(fill)


class BinanceFuturesUserStream:
    """Binance USD-M's user data stream as a private protocol for
    :class:`~rxconnector.streams.accounts.account_streams.AccountStreams`.

    The socket URL carries a listenKey, leased per connection attempt by
    :func:`rxconnector.streams.accounts.listen_key.futures_user_stream` (the I/O part);
    this class is the pure part: limits, ping, sessions, statuses.

    Args:
        fast_executions: report fills from ``TRADE_LITE`` (earlier, without the fee)
            instead of waiting for ``ORDER_TRADE_UPDATE``.
    """

    name = "binance_futures"
    feeds: frozenset[str] = frozenset(
        {"orders", "balances", "executions", "positions", "account_events"}
    )
    max_messages_per_second = MAX_MESSAGES_PER_SECOND
    max_connection_attempts = MAX_CONNECTION_ATTEMPTS
    connection_attempt_window = CONNECTION_ATTEMPT_WINDOW
    stale_after = STALE_AFTER
    reports_last_fill = True

    def __init__(self, *, fast_executions: bool = False) -> None:
        self.fast_executions = fast_executions

    def __repr__(self) -> str:
        return f"BinanceFuturesUserStream(fast_executions={self.fast_executions})"

    def ping_message(self) -> str:
        """``{"method":"LIST_SUBSCRIPTIONS","id":"ping"}``; its answer feeds the watchdog."""
        return _PING

    def new_session(self) -> _Session:
        return _Session(self)

    def order_status(self, raw: str) -> str:
        """USD-M statuses are the canonical spelling already."""
        return raw


if TYPE_CHECKING:
    _conforms: PrivateProtocol = BinanceFuturesUserStream()
