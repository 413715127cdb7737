"""Binance REST answers (Spot and USD-M) → rxconnector models: pure functions.

Each takes the decoded JSON of one answer (and the local receive time where a model
carries it) and builds models; :func:`reply_parser` wraps one so that a malformed
answer becomes :class:`~rxconnector.errors.ParseError` naming the route. Layouts are
from PROTOCOL.md §A2.4 (Spot) and §B (USD-M).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from rxconnector.errors import ParseError
from rxconnector.exchanges._args import ACK_STATUS
from rxconnector.exchanges._parsing import MALFORMED, json_str, to_decimal
from rxconnector.exchanges.rest_spec import RestReply
from rxconnector.models import (
    AvgPrice,
    Balance,
    Kline,
    Order,
    OrderBook,
    Side,
    SymbolInfo,
    Ticker,
    Trade,
)

__all__ = [
    "agg_trade",
    "avg_price",
    "balances",
    "futures_order",
    "kline",
    "nonzero",
    "order",
    "order_book",
    "reply_parser",
    "symbol_info",
    "ticker",
    "trade",
]

_T = TypeVar("_T")


def reply_parser(parse: Callable[[RestReply], _T], path: str) -> Callable[[RestReply], _T]:
    def run(reply: RestReply) -> _T:
        try:
            return parse(reply)
        except ParseError:
            raise
        except MALFORMED as exc:  # AttributeError too: ``null``/an array for an object
            # reply.data itself, not orjson.dumps(reply.data): dumping raised on 900-deep
            # JSON; ParseError takes a bounded, non-recursive excerpt of anything.
            raise ParseError(
                f"unexpected {path} answer ({type(exc).__name__}: {exc})", reply.data
            ) from exc

    return run


def nonzero(value: Any) -> Decimal | None:
    """A filter value; Binance disables a rule by setting it to 0 (§A2.5)."""
    if value is None:
        return None
    number = to_decimal(value)
    return number if number != 0 else None


def symbol_info(data: Mapping[str, Any]) -> SymbolInfo:
    rules: dict[str, Decimal | None] = {}
    for rule in data.get("filters") or ():
        kind = rule.get("filterType")
        if kind == "PRICE_FILTER":
            rules["tick_size"] = nonzero(rule.get("tickSize"))
            rules["min_price"] = nonzero(rule.get("minPrice"))
            rules["max_price"] = nonzero(rule.get("maxPrice"))
        elif kind == "LOT_SIZE":
            rules["step_size"] = nonzero(rule.get("stepSize"))
            rules["min_qty"] = nonzero(rule.get("minQty"))
            rules["max_qty"] = nonzero(rule.get("maxQty"))
        elif kind == "MIN_NOTIONAL":
            # Spot writes "minNotional", USD-M futures "notional" (its exchangeInfo example)
            minimum = rule.get("minNotional", rule.get("notional"))
            rules.setdefault("min_notional", nonzero(minimum))
        elif kind == "NOTIONAL":
            rules["min_notional"] = nonzero(rule.get("minNotional"))
            rules["max_notional"] = nonzero(rule.get("maxNotional"))
    return SymbolInfo(
        symbol=json_str(data["symbol"]),
        status=json_str(data["status"]),
        base_asset=json_str(data["baseAsset"]),
        quote_asset=json_str(data["quoteAsset"]),
        **rules,
    )


def levels(rows: Iterable[Sequence[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((to_decimal(price), to_decimal(qty)) for price, qty, *_ in rows)


def order_book(symbol: str, data: Mapping[str, Any], received_at: float) -> OrderBook:
    return OrderBook(
        symbol=symbol,
        bids=levels(data["bids"]),
        asks=levels(data["asks"]),
        update_id=int(data["lastUpdateId"]),
        event_time=0,
        received_at=received_at,
    )


def taker_side(buyer_is_maker: bool) -> Side:
    return "sell" if buyer_is_maker else "buy"


def trade(symbol: str, row: Mapping[str, Any], received_at: float) -> Trade:
    time = int(row["time"])
    return Trade(
        symbol=symbol,
        trade_id=int(row["id"]),
        price=to_decimal(row["price"]),
        quantity=to_decimal(row["qty"]),
        side=taker_side(bool(row["isBuyerMaker"])),
        time=time,
        event_time=time,
        received_at=received_at,
    )


def agg_trade(symbol: str, row: Mapping[str, Any], received_at: float) -> Trade:
    time = int(row["T"])
    return Trade(
        symbol=symbol,
        trade_id=int(row["a"]),
        price=to_decimal(row["p"]),
        quantity=to_decimal(row["q"]),
        side=taker_side(bool(row["m"])),
        time=time,
        event_time=time,
        received_at=received_at,
        first_trade_id=int(row["f"]),
        last_trade_id=int(row["l"]),
    )


def kline(symbol: str, interval: str, row: Sequence[Any], received_at: float, now: int) -> Kline:
    close_time = int(row[6])
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time=int(row[0]),
        close_time=close_time,
        open=to_decimal(row[1]),
        high=to_decimal(row[2]),
        low=to_decimal(row[3]),
        close=to_decimal(row[4]),
        volume=to_decimal(row[5]),
        quote_volume=to_decimal(row[7]),
        trades=int(row[8]),
        closed=close_time < now,
        event_time=min(close_time, now),
        received_at=received_at,
    )


def optional(data: Mapping[str, Any], key: str) -> Decimal | None:
    value = data.get(key)
    return to_decimal(value) if value is not None else None


def ticker(data: Mapping[str, Any], received_at: float) -> Ticker:
    return Ticker(
        symbol=data["symbol"],
        last=to_decimal(data["lastPrice"]),
        bid=optional(data, "bidPrice"),
        bid_qty=optional(data, "bidQty"),
        ask=optional(data, "askPrice"),
        ask_qty=optional(data, "askQty"),
        open=to_decimal(data["openPrice"]),
        high=to_decimal(data["highPrice"]),
        low=to_decimal(data["lowPrice"]),
        volume=to_decimal(data["volume"]),
        quote_volume=to_decimal(data["quoteVolume"]),
        event_time=int(data["closeTime"]),
        received_at=received_at,
    )


def avg_price(symbol: str, data: Mapping[str, Any], received_at: float) -> AvgPrice:
    close_time = int(data["closeTime"])
    return AvgPrice(
        symbol=symbol,
        interval=f"{int(data['mins'])}m",
        price=to_decimal(data["price"]),
        last_trade_time=close_time,
        event_time=close_time,
        received_at=received_at,
    )


def balances(data: Mapping[str, Any]) -> tuple[Balance, ...]:
    update_time = int(data.get("updateTime") or 0)
    return tuple(
        Balance(
            asset=row["asset"],
            free=to_decimal(row["free"]),
            locked=to_decimal(row["locked"]),
            event_time=update_time,
        )
        for row in data["balances"]
    )


def order(data: Mapping[str, Any], sent: Mapping[str, Any] | None = None) -> Order:
    """An Order from a RESULT/FULL/ACK order answer, a query or a cancel answer.

    A cancel answer's ``clientOrderId`` is the cancel request's own id; the order's is
    ``origClientOrderId``. ACK answers lack most fields: they are taken from ``sent``.
    """
    sent = sent or {}
    executed = to_decimal(data.get("executedQty", "0"))
    average: Decimal | None = None
    quote = data.get("cummulativeQuoteQty")
    if quote is not None and executed > 0:
        spent = to_decimal(quote)
        average = spent / executed if spent >= 0 else None  # negative: pre-2018 orders
    transact = int(data.get("transactTime") or 0)
    side = data.get("side", sent.get("side"))
    price = data.get("price", sent.get("price"))
    quantity = data.get("origQty", sent.get("quantity"))
    return Order(
        symbol=data["symbol"],
        order_id=str(data["orderId"]),
        client_order_id=data.get("origClientOrderId") or data["clientOrderId"],
        side="buy" if str(side).upper() == "BUY" else "sell",
        type=str(data.get("type", sent.get("type", ""))),
        status=str(data.get("status", ACK_STATUS)),
        price=to_decimal(str(price)) if price is not None else Decimal(0),
        quantity=to_decimal(str(quantity)) if quantity is not None else Decimal(0),
        filled_quantity=executed,
        average_price=average,
        time_in_force=data.get("timeInForce", sent.get("timeInForce")),
        time=int(data.get("time") or transact),
        update_time=int(data.get("updateTime") or data.get("workingTime") or transact),
    )


def futures_order(data: Mapping[str, Any], sent: Mapping[str, Any] | None = None) -> Order:
    """A USD-M order answer → Order: Spot's mapping, plus ``avgPrice`` (Spot derives the
    average from ``cummulativeQuoteQty``, which USD-M does not send) and ``time`` falling
    back to ``updateTime`` (an order answer has no ``time``)."""
    spot = order(data, sent)
    average = nonzero(data.get("avgPrice"))
    update_time = int(data.get("updateTime") or 0)
    return attrs.evolve(
        spot,
        average_price=average if average is not None else spot.average_price,
        time=spot.time or update_time,
        update_time=spot.update_time or update_time,
    )
