"""Binance USD-M account pieces: positions over REST, the futures-only order filters and
order parameters (no I/O here; the user data stream's listenKey lease is
:mod:`rxconnector.streams.accounts.listen_key`).

Sources: Binance derivatives docs (USDⓈ-M), "Position Information V3"
(``GET /fapi/v3/positionRisk``), "New Order" (``reduceOnly``, ``positionSide``,
``closePosition``), "Change Initial Leverage", "Change Margin Type", "Exchange
Information" filters; field names checked against the official SDK's models (BPY
``rest_api/models``).

Futures filters checked before sending, on top of Spot's ``PRICE_FILTER`` /
``LOT_SIZE`` / notional (:mod:`~rxconnector.exchanges.binance.filters`):

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
from rxconnector.exchanges.binance.filters import round_to_step
from rxconnector.exchanges.binance.futures_user_stream import position_from_row, usdm_balance
from rxconnector.models import Balance, Position, SymbolInfo

__all__ = [
    "FuturesRules",
    "check_futures_order",
    "check_percent_price",
    "futures_balance",
    "futures_rules",
    "position_risk",
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


def _nonzero(value: Any) -> Decimal | None:
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
            found["market_min_qty"] = _nonzero(rule.get("minQty"))
            found["market_max_qty"] = _nonzero(rule.get("maxQty"))
            found["market_step_size"] = _nonzero(rule.get("stepSize"))
        elif kind == "PERCENT_PRICE":
            found["multiplier_up"] = _nonzero(rule.get("multiplierUp"))
            found["multiplier_down"] = _nonzero(rule.get("multiplierDown"))
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


def futures_balance(row: Mapping[str, Any]) -> Balance:
    """A ``/fapi/v3/balance`` row → Balance, mapped like the stream's ``ACCOUNT_UPDATE``
    (:func:`~rxconnector.exchanges.binance.futures_user_stream.usdm_balance`): ``free`` =
    ``crossWalletBalance`` (never above the wallet), ``locked`` = ``balance -
    crossWalletBalance`` (isolated margin), ``equity`` = ``balance + crossUnPnl``; a
    negative wallet balance shows as ``borrowed``."""
    wallet = to_decimal(row["balance"])
    cross = to_decimal(row.get("crossWalletBalance") or row["balance"])
    unrealised = to_decimal(row.get("crossUnPnl") or 0)
    event_time = int(row.get("updateTime") or 0)
    return usdm_balance(row["asset"], wallet, cross, event_time, equity=wallet + unrealised)


def position_risk(row: Mapping[str, Any], received_at: float) -> Position:
    """A ``/fapi/v3/positionRisk`` row → Position (``positionAmt`` signed; the row has
    mark price, liquidation price and, in V2, leverage; V3 lists ``initialMargin`` and
    ``notional`` instead, leverage is then ``notional / initialMargin``)."""
    notional = _nonzero(row.get("notional"))
    margin = _nonzero(row.get("initialMargin"))
    leverage = _nonzero(row.get("leverage"))
    if leverage is None and notional is not None and margin is not None:
        leverage = abs(notional) / margin
    mode = row.get("marginType")
    if mode is None and "isolatedMargin" in row:
        mode = "isolated" if to_decimal(row["isolatedMargin"] or 0) else "cross"
    renamed = {
        "s": row["symbol"],
        "pa": row["positionAmt"],
        "ep": row.get("entryPrice") or "0",
        "up": row.get("unRealizedProfit"),
        "mt": mode,
        "ps": row.get("positionSide") or "BOTH",
    }
    return position_from_row(
        renamed,
        int(row.get("updateTime") or 0),
        received_at,
        mark_price=_nonzero(row.get("markPrice")),
        leverage=leverage,
        liquidation_price=_nonzero(row.get("liquidationPrice")),
    )
