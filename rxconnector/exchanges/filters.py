"""Symbol filters checked before an order is sent, for every venue: the rules live in
the venue-neutral :class:`~rxconnector.models.SymbolInfo`, named after Binance's filters
(PROTOCOL.md §A2.5, BS ``filters.md``); Bybit's instruments-info rules map onto them.

An order the exchange would reject for ``Filter failure: PRICE_FILTER`` costs a request,
weight and an order-count slot, and tells the caller less than we can: checking the
filters locally fails fast with the filter's name and the nearest value that would pass.

Checked, from :class:`~rxconnector.models.SymbolInfo` (a rule is off when its value is
``None``, which is how a 0 in ``exchangeInfo`` is parsed):

* ``PRICE_FILTER``: ``minPrice <= price <= maxPrice`` and ``price % tickSize == 0``;
* ``LOT_SIZE``: ``minQty <= quantity <= maxQty`` and ``quantity % stepSize == 0``;
* ``NOTIONAL`` / ``MIN_NOTIONAL``: ``minNotional <= price * quantity <= maxNotional``.

MARKET orders have no price, so only ``LOT_SIZE`` is checked for them (the exchange
applies notional rules to market orders with its own average price).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from rxconnector.errors import OrderRejectedError
from rxconnector.models import SymbolInfo

__all__ = ["check_order", "round_to_step"]

_ONE = Decimal(1)


def round_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded to a multiple of ``step`` (half up by default), written with
    ``step``'s number of decimals."""
    steps = (value / step).quantize(_ONE, rounding=rounding)
    return (steps * step).quantize(step)


def _clamp(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def check_order(
    info: SymbolInfo,
    side: str,
    type: str,
    quantity: Decimal | None,
    price: Decimal | None,
    *,
    exchange: str = "binance",
) -> None:
    """Raise :class:`~rxconnector.errors.OrderRejectedError` if the order breaks a filter.

    ``filter`` on the error names the Binance filter (also for Bybit's equivalents:
    ``priceFilter`` → ``PRICE_FILTER``, ``lotSizeFilter`` → ``LOT_SIZE``, minimum order
    value → ``MIN_NOTIONAL``), ``nearest_valid`` is the closest price or quantity that
    passes that filter (``None`` when none exists); ``exchange`` labels the error.
    """
    what = _What(f"{info.symbol} {side.upper()} {type.upper()}", exchange)
    if price is not None and type.upper() != "MARKET":
        _check_price(info, what, price)
    if quantity is not None:
        _check_quantity(info, what, quantity)
    if price is not None and quantity is not None and type.upper() != "MARKET":
        _check_notional(info, what, quantity, price)


class _What(str):
    """The order's description (``"BTCUSDT BUY LIMIT"``), carrying the venue's name."""

    exchange: str

    def __new__(cls, text: str, exchange: str) -> _What:
        self = super().__new__(cls, text)
        self.exchange = exchange
        return self


def _reject(what: str, problem: str, filter: str, nearest: Decimal | None) -> OrderRejectedError:
    hint = f"; nearest valid: {nearest}" if nearest is not None else ""
    exchange = what.exchange if isinstance(what, _What) else "binance"
    return OrderRejectedError(
        f"{what}: {problem}{hint}", filter=filter, nearest_valid=nearest, exchange=exchange
    )


def _check_price(info: SymbolInfo, what: str, price: Decimal) -> None:
    tick, low, high = info.tick_size, info.min_price, info.max_price
    if price <= 0:
        raise _reject(what, f"price {price} must be > 0", "PRICE_FILTER", low)
    if low is not None and price < low:
        raise _reject(what, f"price {price} is below minPrice {low}", "PRICE_FILTER", low)
    if high is not None and price > high:
        raise _reject(what, f"price {price} is above maxPrice {high}", "PRICE_FILTER", high)
    if tick is not None and price % tick != 0:
        nearest = _clamp(round_to_step(price, tick), low, high)
        raise _reject(
            what, f"price {price} is not a multiple of tickSize {tick}", "PRICE_FILTER", nearest
        )


def _check_quantity(info: SymbolInfo, what: str, quantity: Decimal) -> None:
    step, low, high = info.step_size, info.min_qty, info.max_qty
    if quantity <= 0:
        raise _reject(what, f"quantity {quantity} must be > 0", "LOT_SIZE", low or step)
    if low is not None and quantity < low:
        raise _reject(what, f"quantity {quantity} is below minQty {low}", "LOT_SIZE", low)
    if high is not None and quantity > high:
        raise _reject(what, f"quantity {quantity} is above maxQty {high}", "LOT_SIZE", high)
    if step is not None and quantity % step != 0:
        nearest = _clamp(round_to_step(quantity, step), low, high)
        raise _reject(
            what, f"quantity {quantity} is not a multiple of stepSize {step}", "LOT_SIZE", nearest
        )


def _check_notional(info: SymbolInfo, what: str, quantity: Decimal, price: Decimal) -> None:
    notional = price * quantity
    low, high, step = info.min_notional, info.max_notional, info.step_size
    if low is not None and notional < low:
        needed = low / price
        nearest = round_to_step(needed, step, ROUND_CEILING) if step is not None else needed
        raise _reject(
            what,
            f"notional {notional} (price x quantity) is below minNotional {low}",
            "NOTIONAL",
            nearest,
        )
    if high is not None and notional > high:
        allowed = high / price
        nearest = round_to_step(allowed, step, ROUND_FLOOR) if step is not None else allowed
        raise _reject(
            what,
            f"notional {notional} (price x quantity) is above maxNotional {high}",
            "NOTIONAL",
            nearest,
        )
