"""Bybit v5 answers built from the simulator's orders, positions and balances.

Pure functions shared by the signed REST (:mod:`.bybit_trading`) and the private
WebSocket (:mod:`.bybit_private`): both must show an order, a position or a wallet
exactly alike, as Bybit does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from rxconnector.testing.simulator.accounts import Account
from rxconnector.testing.simulator.book import ASK, BID
from rxconnector.testing.simulator.market import Market, SymbolMarket
from rxconnector.testing.simulator.numbers import scaled
from rxconnector.testing.simulator.orders import (
    LEVERAGE,
    Rejection,
    SimOrder,
    SimPosition,
)

__all__ = [
    "BybitApiError",
    "bybit_amount",
    "bybit_order_row",
    "bybit_rejection",
    "bybit_status",
    "position_row",
    "to_qty",
    "usdt_prices",
    "wallet_account",
]


_STATUS: Final = {
    "NEW": "New",
    "PARTIALLY_FILLED": "PartiallyFilled",
    "FILLED": "Filled",
}


_ZERO = Decimal(0)


_USD = frozenset({"USDT", "USDC", "USD"})


class BybitApiError(Exception):
    """A Bybit error answer: ``retCode``/``retMsg`` (HTTP 200 unless ``status``)."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def bybit_amount(value: Decimal) -> str:
    """An amount as Bybit writes balances and values: plain digits, no exponent,
    trailing zeros dropped (``"0.00102964"``, ``"600"``)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def bybit_status(order: SimOrder) -> str:
    """Bybit's ``orderStatus`` of an order (spot spelling)."""
    status = _STATUS.get(order.status)
    if status is not None:
        return status
    if order.status in ("CANCELED", "EXPIRED"):
        if order.filled_steps and order.category == "spot":
            return "PartiallyFilledCanceled"
        return "Cancelled"
    return "Rejected"


def _reject_reason(order: SimOrder) -> str:
    if order.end_reason == "POST_ONLY":
        return "EC_PostOnlyWillTakeLiquidity"
    if order.status == "EXPIRED" and order.time_in_force == "FOK":
        return "EC_CancelForNoFullFill"
    return "EC_NoError"


def bybit_order_row(order: SimOrder) -> dict[str, Any]:
    """An order as ``/v5/order/realtime`` lists it (BY ``order/open-order.mdx``)."""
    rules = order.rules
    pe, qe = rules.price_exp, rules.qty_exp
    left_steps = order.qty_steps - order.filled_steps if order.is_open else 0
    average = order.average_price
    return {
        "orderId": str(order.id),
        "orderLinkId": order.client_order_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": scaled(order.price_ticks, pe, 0) if order.type == "LIMIT" else "0",
        "qty": scaled(order.qty_steps, qe, 0),
        "side": "Buy" if order.side == "BUY" else "Sell",
        "isLeverage": "0" if order.category == "spot" else "",
        "positionIdx": 0,
        "orderStatus": bybit_status(order),
        "cancelType": "CancelByUser" if order.end_reason == "CANCELED" else "UNKNOWN",
        "rejectReason": _reject_reason(order),
        "avgPrice": bybit_amount(average) if average is not None else "0",
        "leavesQty": scaled(left_steps, qe, 0),
        "leavesValue": bybit_amount(order.price * to_qty(left_steps, qe)),
        "cumExecQty": scaled(order.filled_steps, qe, 0),
        "cumExecValue": bybit_amount(order.cum_quote),
        "cumExecFee": bybit_amount(order.cum_fee),
        "timeInForce": "PostOnly" if order.post_only else order.time_in_force,
        "orderType": "Limit" if order.type == "LIMIT" else "Market",
        "stopOrderType": "",
        "orderIv": "",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": "",
        "reduceOnly": False,
        "closeOnTrigger": False,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "createdTime": str(order.created),
        "updatedTime": str(order.updated),
    }


def to_qty(steps: int, exp: int) -> Decimal:
    return Decimal(steps).scaleb(-exp)


def _usd_value(asset: str, amount: Decimal, prices: dict[str, Decimal]) -> Decimal | None:
    if asset in _USD:
        return amount
    price = prices.get(asset)
    return amount * price if price is not None else None


def wallet_account(
    account: Account, coins: list[str], prices: dict[str, Decimal]
) -> dict[str, Any]:
    """The UNIFIED account entry of ``wallet-balance`` / the ``wallet`` topic, listing
    ``coins`` (account totals always cover every coin). ``prices``: asset -> USDT."""
    total = _ZERO
    for asset, (free, locked) in account.balances.items():
        total += _usd_value(asset, free + locked, prices) or _ZERO
    rows = []
    for asset in coins:
        free, locked = account.free(asset), account.locked(asset)
        wallet = free + locked
        borrowed = account.borrowed.get(asset, _ZERO)
        usd = _usd_value(asset, wallet, prices)
        rows.append(
            {
                "coin": asset,
                "equity": bybit_amount(wallet - borrowed),
                "usdValue": bybit_amount(usd) if usd is not None else "",
                "walletBalance": bybit_amount(wallet),
                "availableToWithdraw": bybit_amount(free),
                "availableToBorrow": "",
                "borrowAmount": bybit_amount(borrowed),
                "accruedInterest": "0",
                "totalOrderIM": "0",
                "totalPositionIM": "0",
                "totalPositionMM": "0",
                "unrealisedPnl": "0",
                "cumRealisedPnl": "0",
                "bonus": "0",
                "collateralSwitch": True,
                "marginCollateral": True,
                "locked": bybit_amount(locked),
                "spotHedgingQty": "0",
                "spotBorrow": "0",
            }
        )
    usd_total = bybit_amount(total)
    return {
        "accountIMRate": "0",
        "accountIMRateByMp": "0",
        "accountMMRate": "0",
        "accountMMRateByMp": "0",
        "totalEquity": usd_total,
        "totalWalletBalance": usd_total,
        "totalMarginBalance": usd_total,
        "totalAvailableBalance": usd_total,
        "totalPerpUPL": "0",
        "totalInitialMargin": "0",
        "totalInitialMarginByMp": "0",
        "totalMaintenanceMargin": "0",
        "totalMaintenanceMarginByMp": "0",
        "coin": rows,
        "accountLTV": "0",
        "accountType": "UNIFIED",
    }


def _linear_rejection(rejection: Rejection) -> BybitApiError:
    reason, detail, bound = rejection.reason, rejection.detail, rejection.bound
    if reason == "insufficient_balance":
        return BybitApiError(110007, "ab not enough for new order")
    if reason == "duplicate_client_id":
        return BybitApiError(110072, "OrderLinkedID is duplicate")
    if reason == "unknown_order":
        return BybitApiError(110001, "order not exists or too late to cancel")
    if reason == "reduce_only":
        return BybitApiError(110017, "Reduce-only rule not satisfied")
    if reason == "position_side":
        return BybitApiError(10001, "position idx not match position mode")
    if reason == "filter" and detail == "NOTIONAL":
        return BybitApiError(110094, "Order does not meet minimum order value 5USDT")
    if reason == "unknown_symbol":
        return BybitApiError(10001, "params error: symbol invalid")
    if reason in ("filter", "precision"):
        what = "price" if detail in ("PRICE_FILTER", "price") else "qty"
        return BybitApiError(10001, f"params error: {what} invalid ({bound or 'precision'})")
    return BybitApiError(10001, f"The simulator does not support {detail or reason}.")


def bybit_rejection(rejection: Rejection, category: str = "spot") -> BybitApiError:
    """The retCode of an engine refusal (see the module docstring)."""
    if category == "linear":
        return _linear_rejection(rejection)
    reason, detail, bound = rejection.reason, rejection.detail, rejection.bound
    if reason == "unknown_symbol":
        return BybitApiError(170121, "Invalid symbol.")
    if reason == "insufficient_balance":
        return BybitApiError(170131, "Insufficient balance.")
    if reason == "duplicate_client_id":
        return BybitApiError(170141, "Duplicate clientOrderId.")
    if reason == "unknown_order":
        return BybitApiError(170213, "Order does not exist.")
    if reason == "precision":
        if detail == "price":
            return BybitApiError(170134, "Order price decimal too long.")
        return BybitApiError(170137, "Order volume decimal too long.")
    if reason == "filter":
        if detail == "PRICE_FILTER":
            return {
                "min": BybitApiError(170133, "Order price lower than the minimum."),
                "max": BybitApiError(170132, "Order price too high."),
            }.get(bound, BybitApiError(170134, "Order price decimal too long."))
        if detail in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            return {
                "min": BybitApiError(170136, "Order quantity lower than the minimum."),
                "max": BybitApiError(170135, "Order quantity too large."),
            }.get(bound, BybitApiError(170137, "Order volume decimal too long."))
        if detail == "NOTIONAL":
            return BybitApiError(170140, "Transaction amount lower than the minimum.")
        return BybitApiError(170005, f"Too many new orders ({detail}).")
    return BybitApiError(10001, f"The simulator does not support {detail or reason}.")


def usdt_prices(market: Market) -> dict[str, Decimal]:
    """The last price in USDT of every base asset that has a USDT symbol."""
    return {
        m.spec.base_asset: to_qty(m.last_price_ticks(), m.price_exp)
        for m in market.symbols.values()
        if m.spec.quote_asset == "USDT"
    }


def position_row(position: SimPosition, m: SymbolMarket, seq: int) -> dict[str, Any]:
    """A linear position as ``/v5/position/list`` and the ``position`` topic show it."""
    pe, qe = m.price_exp, m.qty_exp
    (bid, _), (ask, _) = m.book.levels(BID, 1)[0], m.book.levels(ASK, 1)[0]
    mark = to_qty(bid + ask, pe) / 2
    size = abs(position.size)
    entry = position.entry_price
    unrealised = position.size * (mark - entry) if size else _ZERO
    side = {"BUY": "Buy", "SELL": "Sell"}.get(position.side, "")
    return {
        "positionIdx": {"LONG": 1, "SHORT": 2}.get(position.position_side, 0),
        "tradeMode": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": position.symbol,
        "side": side,
        "size": f"{size:.{qe}f}",
        "entryPrice": bybit_amount(entry),
        "leverage": bybit_amount(LEVERAGE),
        "breakEvenPrice": bybit_amount(entry),
        "positionValue": bybit_amount(size * entry),
        "positionBalance": bybit_amount(position.margin),
        "markPrice": bybit_amount(mark),
        "positionIM": bybit_amount(position.margin),
        "positionIMByMp": bybit_amount(position.margin),
        "positionMM": bybit_amount(position.margin / 2),
        "positionMMByMp": bybit_amount(position.margin / 2),
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": bybit_amount(unrealised),
        "curRealisedPnl": bybit_amount(position.last_realized),
        "cumRealisedPnl": bybit_amount(position.realized),
        "sessionAvgPrice": "0",
        "createdTime": str(position.created),
        "updatedTime": str(position.updated),
        "tpslMode": "Full",
        "liqPrice": "",
        "bustPrice": "",
        "category": "linear",
        "positionStatus": "Normal",
        "adlRankIndicator": 2 if size else 0,
        "autoAddMargin": 0,
        "leverageSysUpdatedTime": "",
        "mmrSysUpdatedTime": "",
        "seq": seq,
        "isReduceOnly": False,
    }
