"""Binance USD-M account rows over REST: balances and positions, mapped as the user
data stream maps them (no I/O here; the user data stream's listenKey lease is
:mod:`rxconnector.streams.accounts.listen_key`).

Sources: Binance derivatives docs (USDⓈ-M), "Position Information V3"
(``GET /fapi/v3/positionRisk``), "Futures Account Balance V3"; the futures order
rules are in :mod:`~rxconnector.exchanges.binance.futures_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rxconnector.exchanges._parsing import to_decimal
from rxconnector.exchanges.binance.futures_rules import rule_value
from rxconnector.exchanges.binance.futures_user_stream import position_from_row, usdm_balance
from rxconnector.models import Balance, Position

__all__ = ["futures_balance", "position_risk"]


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
    notional = rule_value(row.get("notional"))
    margin = rule_value(row.get("initialMargin"))
    leverage = rule_value(row.get("leverage"))
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
        mark_price=rule_value(row.get("markPrice")),
        leverage=leverage,
        liquidation_price=rule_value(row.get("liquidationPrice")),
    )
