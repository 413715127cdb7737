"""Binance USD-M order rules: the futures-only filters and order parameters (pure).

Sources: Binance derivatives docs (USDⓈ-M) "New Order" (``reduceOnly``,
``positionSide``, ``closePosition``), "Change Margin Type", "Exchange Information"
filters; field names checked against the official SDK's models (BPY ``rest_api/models``).

Futures filters checked before sending, on top of Spot's ``PRICE_FILTER`` /
``LOT_SIZE`` / notional (:mod:`~rxconnector.exchanges.filters`):

* ``MARKET_LOT_SIZE`` (``minQty``, ``maxQty``, ``stepSize``) for MARKET orders;
* ``MIN_NOTIONAL``'s ``notional`` (USD-M names it so) for priced orders (Spot's check);
* ``PERCENT_PRICE``: a LIMIT price must lie within ``[mark x multiplierDown, mark x
  multiplierUp]``; the mark price is fetched (``premiumIndex``, weight 1) just before.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Final

import attrs

from rxconnector.errors import OrderRejectedError
from rxconnector.exchanges._parsing import to_decimal
from rxconnector.exchanges.filters import round_to_step
from rxconnector.models import SymbolInfo

__all__ = [
    "CLOSE_POSITION_TYPES",
    "FuturesRules",
    "MARGIN_TYPES",
    "POSITION_SIDES",
    "check_futures_order",
    "check_percent_price",
    "futures_rules",
    "rule_value",
    "validate_futures_params",
]

POSITION_SIDES: Final = frozenset({"BOTH", "LONG", "SHORT"})


#: Order types that may carry ``closePosition=true`` (docs: "Close-All, used with
#: STOP_MARKET or TAKE_PROFIT_MARKET").
CLOSE_POSITION_TYPES: Final = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET"})


MARGIN_TYPES: Final = frozenset({"ISOLATED", "CROSSED"})


_ZERO: Final = Decimal(0)


@attrs.frozen
class FuturesRules:
    """The USD-M filters :class:`~rxconnector.models.SymbolInfo` does not carry."""

    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    market_step_size: Decimal | None = None
    multiplier_up: Decimal | None = None
    multiplier_down: Decimal | None = None


def rule_value(value: Any) -> Decimal | None:
    """A filter or row value: absent, empty or zero means none."""
    if value is None or value == "":
        return None
    number = to_decimal(value)
    return number if number else None


def futures_rules(row: Mapping[str, Any]) -> FuturesRules:
    """``MARKET_LOT_SIZE`` and ``PERCENT_PRICE`` of one ``exchangeInfo`` symbol."""
    found: dict[str, Decimal | None] = {}
    for rule in row.get("filters") or ():
        kind = rule.get("filterType")
        if kind == "MARKET_LOT_SIZE":
            found["market_min_qty"] = rule_value(rule.get("minQty"))
            found["market_max_qty"] = rule_value(rule.get("maxQty"))
            found["market_step_size"] = rule_value(rule.get("stepSize"))
        elif kind == "PERCENT_PRICE":
            found["multiplier_up"] = rule_value(rule.get("multiplierUp"))
            found["multiplier_down"] = rule_value(rule.get("multiplierDown"))
    return FuturesRules(**found)


def _reject(what: str, problem: str, filter: str, nearest: Decimal | None) -> OrderRejectedError:
    hint = f"; nearest valid: {nearest}" if nearest is not None else ""
    return OrderRejectedError(
        f"{what}: {problem}{hint}", filter=filter, nearest_valid=nearest, exchange="binance"
    )


def check_futures_order(
    info: SymbolInfo, rules: FuturesRules, side: str, type: str, quantity: Decimal | None
) -> None:
    """``MARKET_LOT_SIZE`` of a MARKET order; raises OrderRejectedError."""
    if type.upper() != "MARKET" or quantity is None:
        return
    what = f"{info.symbol} {side.upper()} MARKET"
    low, high, step = rules.market_min_qty, rules.market_max_qty, rules.market_step_size
    if low is not None and quantity < low:
        raise _reject(what, f"quantity {quantity} is below minQty {low}", "MARKET_LOT_SIZE", low)
    if high is not None and quantity > high:
        raise _reject(what, f"quantity {quantity} is above maxQty {high}", "MARKET_LOT_SIZE", high)
    if step is not None and quantity % step != 0:
        nearest = round_to_step(quantity, step)
        raise _reject(
            what,
            f"quantity {quantity} is not a multiple of stepSize {step}",
            "MARKET_LOT_SIZE",
            nearest,
        )


def check_percent_price(
    info: SymbolInfo, rules: FuturesRules, side: str, price: Decimal, mark: Decimal
) -> None:
    """``PERCENT_PRICE``: ``mark x multiplierDown <= price <= mark x multiplierUp``."""
    what = f"{info.symbol} {side.upper()} LIMIT"
    up, down, tick = rules.multiplier_up, rules.multiplier_down, info.tick_size
    if up is not None and price > mark * up:
        bound = mark * up
        nearest = round_to_step(bound, tick, ROUND_FLOOR) if tick else bound
        raise _reject(
            what,
            f"price {price} is above mark {mark} x multiplierUp {up}",
            "PERCENT_PRICE",
            nearest,
        )
    if down is not None and price < mark * down:
        bound = mark * down
        nearest = round_to_step(bound, tick, ROUND_CEILING) if tick else bound
        raise _reject(
            what,
            f"price {price} is below mark {mark} x multiplierDown {down}",
            "PERCENT_PRICE",
            nearest,
        )


def _flag(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ValueError(f"{name} must be True or False, got {value!r}")


def validate_futures_params(params: dict[str, Any], quantity_given: bool) -> None:
    """Check and normalize the USD-M order parameters (in place), before sending.

    ``positionSide`` ∈ BOTH / LONG / SHORT; ``reduceOnly`` cannot be sent in hedge mode
    (``positionSide`` LONG/SHORT) nor with ``closePosition``; ``closePosition=true``
    only on STOP_MARKET / TAKE_PROFIT_MARKET, with a ``stopPrice`` and without
    ``quantity`` (docs, "New Order"). Booleans are written ``true`` / ``false``.
    """
    side = params.get("positionSide")
    if side is not None:
        side = str(side).upper()
        if side not in POSITION_SIDES:
            raise ValueError(f"positionSide must be BOTH, LONG or SHORT, got {side!r}")
        params["positionSide"] = side
    if "reduceOnly" in params:
        params["reduceOnly"] = _flag(params["reduceOnly"], "reduceOnly")
        if side in ("LONG", "SHORT"):
            raise ValueError("reduceOnly cannot be sent in hedge mode (positionSide LONG/SHORT)")
    if "closePosition" in params:
        close = _flag(params["closePosition"], "closePosition")
        params["closePosition"] = close
        if close == "true":
            kind = params["type"]
            if kind not in CLOSE_POSITION_TYPES:
                raise ValueError(
                    f"closePosition=true needs STOP_MARKET or TAKE_PROFIT_MARKET, not {kind}"
                )
            if quantity_given:
                raise ValueError("closePosition=true closes the whole position: give no quantity")
            if params.get("reduceOnly") == "true":
                raise ValueError("reduceOnly cannot be sent with closePosition")
            if params.get("stopPrice") is None:
                raise ValueError(f"a {kind} order needs stopPrice")
