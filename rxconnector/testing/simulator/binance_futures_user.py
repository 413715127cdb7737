"""Binance USD-M user data in the simulator: listenKeys and the ``/private`` socket.

What a client meets (Binance derivatives docs, "User Data Streams"; PROTOCOL.md §B):

* ``POST /fapi/v1/listenKey`` (API key header) gives the account's key, valid for
  :attr:`FuturesUserStreams.lifetime` seconds (Binance: 60 minutes); a POST while the
  key is valid returns it and extends it; ``PUT`` extends it (``-1125 This listenKey
  does not exist.`` once it is gone); ``DELETE`` closes it and its sockets.
* Sockets: ``/private/ws?listenKey=<key>`` (the routed form) and ``/private/ws/<key>``.
  An unknown or expired key is refused with HTTP 400 before the upgrade. A text frame
  ``{"method": "LIST_SUBSCRIPTIONS", "id": x}`` is answered ``{"result": [], "id": x}``.
* When a key expires (its lifetime passed without a keep-alive, or
  :meth:`FuturesUserStreams.expire_listen_keys`), its sockets get
  ``{"e": "listenKeyExpired", "E": "<ms as a string>", "listenKey": key}`` (``E`` is a
  string, as in a recorded real payload) and nothing more; they stay open.

Events of ``binance_futures`` orders (matching engine announcements), in Binance's
order: per fill ``TRADE_LITE`` then ``ORDER_TRADE_UPDATE``, then one
``ACCOUNT_UPDATE`` (``m`` = ``ORDER``) with the margin asset and the position; other
order changes ``ORDER_TRADE_UPDATE`` only (no ACCOUNT_UPDATE for unfilled or cancelled
orders, as documented). A deposit (``sim.set_balance``) sends ``ACCOUNT_UPDATE``
``DEPOSIT`` / ``WITHDRAW``; a leverage or position-mode change ``ACCOUNT_CONFIG_UPDATE``;
:meth:`FuturesUserStreams.margin_call` a ``MARGIN_CALL``. Balances: ``wb`` = the
account's free + locked margin asset, ``cw`` = ``wb`` minus the margin of its isolated
positions (each isolated position's ``iw``).

Fault: :meth:`FuturesUserStreams.drop_on_next_fill` drops the account's sockets right
before the next fill would be sent (the fill happens; the events are lost).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from rxconnector.testing.simulator.accounts import Account, Accounts, BalanceChange
from rxconnector.testing.simulator.binance_futures import FuturesPayloads
from rxconnector.testing.simulator.binance_trading import binance_amount
from rxconnector.testing.simulator.connection import ConnectionPolicy, SimConnection
from rxconnector.testing.simulator.market import TickEvents
from rxconnector.testing.simulator.matching import MatchingEngine
from rxconnector.testing.simulator.orders import (
    Fill,
    OrderEvent,
    PositionEvent,
    SimOrder,
    SimPosition,
)
from rxconnector.testing.simulator.state import SimState

__all__ = ["VENUE", "FuturesUserStreams", "futures_order_body", "position_risk_row"]

VENUE = "binance_futures"
_ZERO = Decimal(0)
_MMR = Decimal("0.004")  # maintenance margin rate used for the liquidation estimate


def futures_order_body(order: SimOrder) -> dict[str, Any]:
    """An order as ``/fapi/v1/order`` answers it (RESULT / query / cancel)."""
    return {
        "orderId": order.id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": binance_amount(order.price),
        "avgPrice": binance_amount(order.average_price or _ZERO),
        "origQty": binance_amount(order.quantity),
        "executedQty": binance_amount(order.filled),
        "cumQty": binance_amount(order.filled),
        "cumQuote": binance_amount(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": order.label,
        "origType": order.label,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side,
        "positionSide": order.position_side,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "time": order.created,
        "updateTime": order.updated,
    }


def _liquidation(position: SimPosition, leverage: Decimal) -> Decimal:
    """A simplified isolated-style estimate: entry x (1 -+ 1/leverage +- MMR); 0 when flat."""
    if not position.size:
        return _ZERO
    entry = position.entry_price
    if position.size > 0:
        return max(entry * (1 - 1 / leverage + _MMR), _ZERO)
    return entry * (1 + 1 / leverage - _MMR)


def position_risk_row(
    position: SimPosition, mark: Decimal, leverage: Decimal, now: int, *, isolated: bool = False
) -> dict[str, Any]:
    """A position as ``GET /fapi/v3/positionRisk`` lists it."""
    size = position.size
    unrealised = size * (mark - position.entry_price) if size else _ZERO
    notional = size * mark
    return {
        "symbol": position.symbol,
        "positionSide": position.position_side,
        "positionAmt": binance_amount(size),
        "entryPrice": binance_amount(position.entry_price),
        "breakEvenPrice": binance_amount(position.entry_price),
        "markPrice": binance_amount(mark),
        "unRealizedProfit": binance_amount(unrealised),
        "liquidationPrice": binance_amount(_liquidation(position, leverage)),
        "isolatedMargin": binance_amount(position.margin if isolated else _ZERO),
        "notional": binance_amount(notional),
        "marginAsset": "USDT",
        "isolatedWallet": binance_amount(position.margin if isolated else _ZERO),
        "initialMargin": binance_amount(abs(notional) / leverage),
        "maintMargin": binance_amount(abs(notional) * _MMR),
        "positionInitialMargin": binance_amount(abs(notional) / leverage),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": position.updated or now,
    }


class FuturesUserStreams:
    """The listenKeys and ``/private/ws`` sockets of one simulator (module docstring)."""

    def __init__(
        self,
        state: SimState,
        accounts: Accounts,
        engine: MatchingEngine,
        payloads: FuturesPayloads | None = None,
    ) -> None:
        self._state = state
        self._accounts = accounts
        self._engine = engine
        self._payloads = payloads or FuturesPayloads()
        cfg = state.config
        self._policy = ConnectionPolicy(
            ping_interval=cfg.futures_ping_interval,
            pong_timeout=cfg.futures_pong_timeout,
            max_messages_per_second=cfg.futures_max_messages_per_second,
            lifetime=cfg.connection_lifetime,
            max_pending_frames=cfg.max_pending_frames,
            close_timeout=cfg.ws_close_timeout,
        )
        #: seconds a listenKey lives without a keep-alive (Binance: 3600)
        self.lifetime = 3600.0
        #: key -> (api key, server ms at which it expires)
        self._keys: dict[str, tuple[str, int]] = {}
        #: socket -> the key it listens with (None once that key expired)
        self._sockets: dict[SimConnection, str | None] = {}
        self._fill_pending: set[str] = set()
        self._drop_next_fill: set[str] = set()
        self._ids = itertools.count(1)
        self._stop_listening = accounts.listen(self._on_account_event)

    # -- the shape every endpoint of the simulator has -----------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/private/ws", self.handle), web.get("/private/ws/{key}", self.handle)]

    @property
    def connections(self) -> set[SimConnection]:
        return set(self._sockets)

    def send_shutdown_notice(self, conn: SimConnection) -> None:
        """USD-M user streams announce nothing before a shutdown."""

    def publish(self, events: list[TickEvents], tick: int, dropped: set[str]) -> None:
        """Market ticks: expire keys whose lifetime passed."""
        self._expire(lambda _key, expires: expires <= self._state.server_time_ms())

    def close(self) -> None:
        self._stop_listening()

    # -- listenKeys (called by the REST dialect) ------------------------------------------

    def create_key(self, account: Account, now: int) -> str:
        """The account's valid key, extended; a new one if it has none."""
        for key, (api_key, expires) in self._keys.items():
            if api_key == account.api_key and expires > now:
                self._keys[key] = (api_key, now + int(self.lifetime * 1000))
                return key
        key = secrets.token_urlsafe(48)[:64]
        self._keys[key] = (account.api_key, now + int(self.lifetime * 1000))
        return key

    def keepalive(self, account: Account, now: int) -> bool:
        """Extend the account's key; False when it has none (``-1125``)."""
        for key, (api_key, expires) in self._keys.items():
            if api_key == account.api_key and expires > now:
                self._keys[key] = (api_key, now + int(self.lifetime * 1000))
                return True
        return False

    def close_key(self, account: Account) -> None:
        for key, (api_key, _expires) in list(self._keys.items()):
            if api_key == account.api_key:
                del self._keys[key]
                for conn, listening in self._sockets.items():
                    if listening == key:
                        conn.close_after_pending(1000, "listenKey closed")

    @property
    def listen_keys(self) -> dict[str, str]:
        """``key -> api key`` of every valid key."""
        now = self._state.server_time_ms()
        return {key: api for key, (api, expires) in self._keys.items() if expires > now}

    # -- faults ---------------------------------------------------------------------------

    def expire_listen_keys(self, api_key: str | None = None) -> int:
        """Expire every key (of ``api_key``) now; returns how many expired."""
        return self._expire(lambda key, _e: api_key in (None, self._keys[key][0]))

    def drop_on_next_fill(self, api_key: str) -> None:
        """Abort the account's sockets just before its next fill is sent."""
        self._drop_next_fill.add(api_key)

    def margin_call(self, api_key: str) -> None:
        """Send a ``MARGIN_CALL`` listing the account's open positions."""
        now = self._state.server_time_ms()
        account = self._accounts[api_key]
        rows = []
        for position in self._engine.positions(api_key):
            if not position.size:
                continue
            mark = self._mark(position.symbol, now)
            unrealised = position.size * (mark - position.entry_price)
            rows.append(
                {
                    "s": position.symbol,
                    "ps": position.position_side,
                    "pa": binance_amount(position.size),
                    "mt": "CROSSED",
                    "iw": "0",
                    "mp": binance_amount(mark),
                    "up": binance_amount(unrealised),
                    "mm": binance_amount(abs(position.size) * mark * _MMR),
                }
            )
        wallet = account.free("USDT") + account.locked("USDT")
        self._push(api_key, {"e": "MARGIN_CALL", "E": now, "cw": binance_amount(wallet), "p": rows})

    def config_changed(self, api_key: str, event: dict[str, Any]) -> None:
        """``ACCOUNT_CONFIG_UPDATE`` with ``event``'s ``ac`` or ``ai``."""
        now = self._state.server_time_ms()
        self._push(api_key, {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, **event})

    # -- sockets --------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        key = request.match_info.get("key") or request.query.get("listenKey", "")
        now = state.server_time_ms()
        found = self._keys.get(key)
        if found is None or found[1] <= now:
            return web.json_response({"code": -1125, "msg": "Invalid listenKey."}, status=400)
        if not state.allow_connection_attempt():
            return web.json_response(
                {"code": -1003, "msg": "Too many connection attempts; try again later."},
                status=429,
            )
        conn = await state.accept(request, self._policy)
        self._sockets[conn] = key
        state.register(conn)
        try:
            await conn.serve(self._on_text)
        finally:
            self._sockets.pop(conn, None)
            state.unregister(conn)
        return conn.response

    def _on_text(self, conn: SimConnection, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send_text(orjson.dumps({"code": 2, "msg": "Invalid request"}).decode())
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(message, dict) and message.get("method") == "LIST_SUBSCRIPTIONS":
            conn.send_text(orjson.dumps({"result": [], "id": request_id}).decode())
            return
        conn.send_text(
            orjson.dumps({"code": 2, "msg": "Invalid request", "id": request_id}).decode()
        )

    def _expire(self, which: Callable[[str, int], bool]) -> int:
        now = self._state.server_time_ms()
        gone = [key for key, (_api, expires) in self._keys.items() if which(key, expires)]
        for key in gone:
            del self._keys[key]
            event = {"e": "listenKeyExpired", "E": str(now), "listenKey": key}
            text = orjson.dumps(event).decode()
            for conn, listening in self._sockets.items():
                if listening == key:
                    conn.send_text(text)
                    self._sockets[conn] = None
        return len(gone)

    def _push(self, api_key: str, event: dict[str, Any]) -> None:
        text = orjson.dumps(event).decode()
        for conn, key in self._sockets.items():
            if key is not None and self._keys.get(key, ("", 0))[0] == api_key:
                conn.send_text(text)

    # -- account events -------------------------------------------------------------------

    def _mark(self, symbol: str, now: int) -> Decimal:
        return Decimal(self._payloads.mark_price(self._state.market[symbol], now)["p"])

    def _on_account_event(self, event: Any) -> None:
        if isinstance(event, OrderEvent):
            order = event.order
            if order.venue != VENUE:
                return
            api_key = order.api_key
            if event.fill is not None:
                if api_key in self._drop_next_fill:
                    self._drop_next_fill.discard(api_key)
                    for conn, key in list(self._sockets.items()):
                        if key is not None and self._keys.get(key, ("", 0))[0] == api_key:
                            conn.abort()
                            self._sockets[conn] = None
                self._fill_pending.add(api_key)
                self._push(api_key, self._trade_lite(event, event.fill))
            self._push(api_key, self._order_update(event))
        elif isinstance(event, PositionEvent):
            api_key = event.position.api_key
            if api_key in self._fill_pending:
                self._fill_pending.discard(api_key)
                self._push(api_key, self._account_update(event.position, event.time))
        elif isinstance(event, BalanceChange) and event.delta is not None:
            asset, delta = event.delta
            account = event.account
            wallet = account.free(asset) + account.locked(asset)
            cross = wallet - self._engine.isolated_margin(account.api_key, asset)
            reason = "DEPOSIT" if delta >= 0 else "WITHDRAW"
            balance = {"a": asset, "wb": binance_amount(wallet), "cw": binance_amount(cross)}
            balance["bc"] = binance_amount(delta)
            update = {"m": reason, "B": [balance], "P": []}
            self._push(
                account.api_key,
                {"e": "ACCOUNT_UPDATE", "E": event.time, "T": event.time, "a": update},
            )

    @staticmethod
    def _trade_lite(event: OrderEvent, fill: Fill) -> dict[str, Any]:
        order = event.order
        return {
            "e": "TRADE_LITE",
            "E": event.time,
            "T": fill.time,
            "s": order.symbol,
            "q": binance_amount(order.quantity),
            "p": binance_amount(order.price),
            "m": fill.maker,
            "c": order.client_order_id,
            "S": order.side,
            "L": binance_amount(fill.price),
            "l": binance_amount(fill.qty),
            "t": fill.trade_id,
            "i": order.id,
        }

    @staticmethod
    def _order_update(event: OrderEvent) -> dict[str, Any]:
        order, fill = event.order, event.fill
        execution = "TRADE" if fill is not None else event.kind
        body: dict[str, Any] = {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.label,
            "f": order.time_in_force,
            "q": binance_amount(order.quantity),
            "p": binance_amount(order.price),
            "ap": binance_amount(order.average_price or _ZERO),
            "sp": "0",
            "x": execution,
            "X": order.status,
            "i": order.id,
            "l": binance_amount(fill.qty if fill else _ZERO),
            "z": binance_amount(order.filled),
            "L": binance_amount(fill.price if fill else _ZERO),
            "T": event.time,
            "t": fill.trade_id if fill else 0,
            "b": "0",
            "a": "0",
            "m": fill.maker if fill else False,
            "R": order.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": order.label,
            "ps": order.position_side,
            "cp": False,
            "rp": "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        }
        if fill is not None:
            body["N"] = fill.fee_asset
            body["n"] = binance_amount(fill.fee)
        return {"e": "ORDER_TRADE_UPDATE", "E": event.time, "T": event.time, "o": body}

    def _account_update(self, position: SimPosition, now: int) -> dict[str, Any]:
        account = self._accounts[position.api_key]
        asset = self._state.market[position.symbol].spec.quote_asset
        wallet = account.free(asset) + account.locked(asset)
        cross = wallet - self._engine.isolated_margin(position.api_key, asset)
        isolated = self._engine.margin_type(position.api_key, position.symbol) == "isolated"
        mark = self._mark(position.symbol, now)
        unrealised = position.size * (mark - position.entry_price) if position.size else _ZERO
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": "ORDER",
                "B": [
                    {
                        "a": asset,
                        "wb": binance_amount(wallet),
                        "cw": binance_amount(cross),
                        "bc": "0",
                    }
                ],
                "P": [
                    {
                        "s": position.symbol,
                        "pa": binance_amount(position.size),
                        "ep": binance_amount(position.entry_price),
                        "bep": binance_amount(position.entry_price),
                        "cr": binance_amount(position.realized),
                        "up": binance_amount(unrealised),
                        "mt": "isolated" if isolated else "cross",
                        "iw": binance_amount(position.margin if isolated else _ZERO),
                        "ps": position.position_side,
                        "ma": asset,
                    }
                ],
            },
        }
