"""Bybit v5 REST answers → rxconnector models: pure functions over the envelope's
``result`` (and the :class:`~rxconnector.exchanges.rest_spec.RestReply` around it, for
the receive time and the envelope's ``time``).

Layouts are from PROTOCOL.md §C3 and the pages under BY ``docs/v5/market``,
``docs/v5/order``, ``docs/v5/position`` and ``docs/v5/account``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Generic, TypeVar
from urllib.parse import unquote

import attrs

from rxconnector.exchanges._args import ACK_STATUS
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_str,
    parse_levels,
    raise_malformed,
    to_decimal,
)
from rxconnector.exchanges.bybit.account_rows import coin_balance, position_row
from rxconnector.exchanges.bybit.parsers import bybit_trade_id
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.exchanges.symbols import canonical_interval
from rxconnector.models import (
    Balance,
    Kline,
    Order,
    OrderBook,
    Position,
    Side,
    SymbolInfo,
    Ticker,
    Trade,
)

__all__ = [
    "INTERVAL_MS",
    "InResult",
    "MODEL_SIDES",
    "ORDER_STATUS",
    "acked_order",
    "balances",
    "candle_close_time",
    "kline",
    "klines",
    "mark_backfilled",
    "next_cursor",
    "order",
    "order_book",
    "order_status",
    "position_page",
    "server_time",
    "symbol_info",
    "ticker",
    "trades",
    "upper_snake",
]


_T = TypeVar("_T")

MODEL_SIDES: Final[dict[str, Side]] = {"Buy": "buy", "Sell": "sell"}


@attrs.frozen
class InResult(Generic[_T]):
    """A plan's reply parser: Bybit's envelope unwrapped, then ``parse(reply, result)``.

    Every Bybit answer is ``{"retCode", "retMsg", "result", "time", ...}``; the error
    dialect already turned ``retCode != 0`` into errors, so what is left is reading
    ``result``. A body that does not have the documented shape becomes
    :class:`~rxconnector.errors.ParseError` naming the route (``path``), never a bare
    ``KeyError`` from deep inside a parser.
    """

    path: str
    parse: Callable[[RestReply, Any], _T]

    def __call__(self, reply: RestReply) -> _T:
        data = reply.data
        try:
            return self.parse(reply, data["result"])
        except MALFORMED as exc:
            raise_malformed("bybit", self.path, data, exc)


#: Bybit order status → the Binance spelling every model uses (BY ``enum.mdx``
#: "orderStatus"). Conditional orders waiting for their trigger are NEW (as on
#: Binance); a conditional order cancelled before triggering is CANCELED.
ORDER_STATUS: Final = {
    "New": "NEW",
    "PartiallyFilled": "PARTIALLY_FILLED",
    "Filled": "FILLED",
    "Cancelled": "CANCELED",
    "PartiallyFilledCanceled": "CANCELED",
    "Rejected": "REJECTED",
    "Untriggered": "NEW",
    "Triggered": "NEW",
    "Deactivated": "CANCELED",
}


#: A word boundary inside CamelCase (``PostOnly`` → ``Post_Only``; ``GTC`` stays whole).
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_MINUTE_MS: Final = 60_000


_DAY_MS: Final = 86_400_000


#: Fixed candle lengths by Bybit interval; months vary (see :func:`candle_close_time`).
INTERVAL_MS: Final = {
    **{m: int(m) * _MINUTE_MS for m in ("1", "3", "5", "15", "30", "60", "120", "240")},
    "360": 360 * _MINUTE_MS,
    "720": 720 * _MINUTE_MS,
    "D": _DAY_MS,
    "W": 7 * _DAY_MS,
    "M": 28 * _DAY_MS,  # the SHORTEST month: a window of N of these holds <= N candles
}


def order_status(raw: str) -> str:
    """Bybit ``orderStatus`` → canonical (Binance) spelling; unknown ones upper-snake."""
    return ORDER_STATUS.get(raw) or upper_snake(raw)


def next_cursor(result: Mapping[str, Any], current: str) -> str | None:
    """The next page's cursor, ready to be put in params, or ``None`` on the last page.

    Bybit hands ``nextPageCursor`` out already percent-encoded (``page_args%3D...``)
    and expects it back as is; params are percent-encoded when sent, so the cursor is
    decoded once here and goes back on the wire exactly as Bybit wrote it.
    """
    cursor = result.get("nextPageCursor")
    if not isinstance(cursor, str) or not cursor:
        return None
    decoded = unquote(cursor)
    return decoded if decoded != current else None


def upper_snake(value: str) -> str:
    return _CAMEL.sub("_", value).upper()


def _rule(value: Any) -> Decimal | None:
    """A trading-rule value: absent, empty or zero means no such rule."""
    if value is None or value == "":
        return None
    number = to_decimal(value)
    return number if number != 0 else None


def _optional(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value)


def _open_time(kline: Kline) -> int:
    return kline.open_time


def candle_close_time(native: str, open_time: int) -> int:
    """The last ms of the candle opening at ``open_time`` (Binance's ``closeTime``)."""
    if native != "M":
        return open_time + INTERVAL_MS[native] - 1
    opened = datetime.fromtimestamp(open_time / 1000.0, tz=UTC)
    year, month = (opened.year + 1, 1) if opened.month == 12 else (opened.year, opened.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000 - 1


def mark_backfilled(trades: list[Trade]) -> list[Trade]:
    return [attrs.evolve(t, backfilled=True) for t in trades]


def server_time(reply: RestReply, result: Any) -> int:
    nano = result.get("timeNano") if isinstance(result, dict) else None
    if nano:
        return int(nano) // 1_000_000
    second = result.get("timeSecond") if isinstance(result, dict) else None
    if second:
        return int(second) * 1000
    return int(reply.data["time"])


def symbol_info(row: Mapping[str, Any], category: str) -> SymbolInfo:
    """An instruments-info row → SymbolInfo (BY ``market/instrument.mdx``).

    Spot: step is ``basePrecision``; ``minOrderQty`` is documented as no longer checked
    (``minOrderAmt`` is), so there is no minimum quantity; the maximum is the Limit
    order maximum ``maxLimitOrderQty`` (older answers: ``maxOrderQty``).
    Linear/inverse: ``qtyStep``, ``minOrderQty``/``maxOrderQty`` (Limit orders),
    ``minNotionalValue`` (linear only). Status is upper-snake (``Trading`` → ``TRADING``).
    """
    price = row.get("priceFilter") or {}
    lot = row.get("lotSizeFilter") or {}
    if category == "spot":
        step = lot.get("basePrecision")
        min_qty = None
        max_qty = lot.get("maxLimitOrderQty") or lot.get("maxOrderQty")
        min_notional = lot.get("minOrderAmt")
    else:
        step = lot.get("qtyStep")
        min_qty = lot.get("minOrderQty")
        max_qty = lot.get("maxOrderQty")
        min_notional = lot.get("minNotionalValue")
    return SymbolInfo(
        symbol=json_str(row["symbol"]),
        status=upper_snake(row["status"]),
        base_asset=json_str(row["baseCoin"]),
        quote_asset=json_str(row["quoteCoin"]),
        tick_size=_rule(price.get("tickSize")),
        min_price=_rule(price.get("minPrice")),
        max_price=_rule(price.get("maxPrice")),
        step_size=_rule(step),
        min_qty=_rule(min_qty),
        max_qty=_rule(max_qty),
        min_notional=_rule(min_notional),
    )


def order_book(reply: RestReply, result: Any) -> OrderBook:
    return OrderBook(
        symbol=result["s"],
        bids=parse_levels(result["b"]),
        asks=parse_levels(result["a"]),
        update_id=int(result["u"]),
        event_time=int(result["ts"]),
        received_at=reply.received_at,
    )


def trades(reply: RestReply, result: Any) -> list[Trade]:
    received = reply.received_at
    trades = [
        Trade(
            symbol=row["symbol"],
            trade_id=bybit_trade_id(row["execId"]),
            price=to_decimal(row["price"]),
            quantity=to_decimal(row["size"]),
            side=MODEL_SIDES[row["side"]],
            time=int(row["time"]),
            event_time=int(row["time"]),
            received_at=received,
        )
        for row in result["list"]
    ]
    if len(trades) > 1 and trades[0].time >= trades[-1].time:
        # newest first on the wire (also when every trade shares one ms, as a sweep's
        # fills do): reversed, same-ms trades come out in the order they happened
        trades.reverse()
    trades.sort(key=_trade_time)
    return trades


def _trade_time(trade: Trade) -> int:
    return trade.time


def klines(
    symbol: str,
    native: str,
    rows: Sequence[Sequence[str]],
    reply: RestReply,
    now: int,
    inverse: bool,
) -> list[Kline]:
    """A kline page, oldest first (Bybit sends newest first)."""
    candles = [kline(symbol, native, row, reply, now, inverse) for row in rows]
    candles.sort(key=_open_time)
    return candles


def kline(
    symbol: str, native: str, row: Sequence[str], reply: RestReply, now: int, inverse: bool
) -> Kline:
    open_time = int(row[0])
    close_time = candle_close_time(native, open_time)
    volume, turnover = to_decimal(row[5]), to_decimal(row[6])
    if inverse:  # inverse: volume in contracts (USD), turnover in coin
        volume, turnover = turnover, volume
    return Kline(
        symbol=symbol,
        interval=canonical_interval(native),
        open_time=open_time,
        close_time=close_time,
        open=to_decimal(row[1]),
        high=to_decimal(row[2]),
        low=to_decimal(row[3]),
        close=to_decimal(row[4]),
        volume=volume,
        quote_volume=turnover,
        trades=0,
        closed=close_time < now,
        event_time=min(close_time, now),
        received_at=reply.received_at,
    )


def ticker(row: Mapping[str, Any], reply: RestReply, inverse: bool) -> Ticker:
    volume, turnover = to_decimal(row["volume24h"]), to_decimal(row["turnover24h"])
    if inverse:
        volume, turnover = turnover, volume
    return Ticker(
        symbol=row["symbol"],
        last=to_decimal(row["lastPrice"]),
        bid=_optional(row.get("bid1Price")),
        bid_qty=_optional(row.get("bid1Size")),
        ask=_optional(row.get("ask1Price")),
        ask_qty=_optional(row.get("ask1Size")),
        open=to_decimal(row["prevPrice24h"]),
        high=to_decimal(row["highPrice24h"]),
        low=to_decimal(row["lowPrice24h"]),
        volume=volume,
        quote_volume=turnover,
        event_time=int(reply.data["time"]),
        received_at=reply.received_at,
    )


def balances(reply: RestReply, result: Any) -> tuple[Balance, ...]:
    event_time = int(reply.data.get("time") or 0)
    return tuple(
        coin_balance(row, event_time, reply.received_at)
        for account in result["list"]
        for row in account.get("coin") or ()
    )


def position_page(reply: RestReply, result: Any, cursor: str) -> tuple[list[Position], str | None]:
    event_time = int(reply.data.get("time") or 0)
    rows = (position_row(row, event_time, reply.received_at) for row in result["list"])
    return [p for p in rows if p.size != 0], next_cursor(result, cursor)


def order(row: Mapping[str, Any]) -> Order:
    """A realtime/history order row → Order (BY ``order/open-order.mdx``)."""
    average = _optional(row.get("avgPrice"))
    tif = row.get("timeInForce")
    return Order(
        symbol=row["symbol"],
        order_id=str(row["orderId"]),
        client_order_id=str(row.get("orderLinkId") or ""),
        side=MODEL_SIDES[row["side"]],
        type=str(row["orderType"]).upper(),
        status=order_status(str(row["orderStatus"])),
        price=_optional(row.get("price")) or Decimal(0),
        quantity=to_decimal(row["qty"]),
        filled_quantity=_optional(row.get("cumExecQty")) or Decimal(0),
        average_price=average if average else None,
        time_in_force=upper_snake(tif) if isinstance(tif, str) and tif else None,
        time=int(row.get("createdTime") or 0),
        update_time=int(row.get("updatedTime") or 0),
    )


def acked_order(
    reply: RestReply,
    result: Any,
    sent: Mapping[str, Any],
    quantity: Decimal,
    price: Decimal | None,
) -> Order:
    """The Order an ack stands for: Bybit's ids plus what was sent; status ``ACK``."""
    acked_at = int(reply.data.get("time") or 0)
    tif = sent.get("timeInForce")
    return Order(
        symbol=sent["symbol"],
        order_id=str(result["orderId"]),
        client_order_id=str(result.get("orderLinkId") or sent["orderLinkId"]),
        side=MODEL_SIDES[sent["side"]],
        type=str(sent["orderType"]).upper(),
        status=ACK_STATUS,
        price=price if price is not None else Decimal(0),
        quantity=quantity,
        filled_quantity=Decimal(0),
        average_price=None,
        time_in_force=upper_snake(tif) if isinstance(tif, str) else None,
        time=acked_at,
        update_time=acked_at,
    )
