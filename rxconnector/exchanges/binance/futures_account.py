"""Binance USD-M account pieces that are not order rules: balances and positions over
REST, mapped as the user data stream maps them, and the user data stream's assembly.

Sources: Binance derivatives docs (USDⓈ-M), "Position Information V3"
(``GET /fapi/v3/positionRisk``), "Futures Account Balance V3"; the futures order
rules are in :mod:`~rxconnector.exchanges.binance.futures_rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from reactivex import Observable, abc

from rxconnector.exchanges._parsing import to_decimal
from rxconnector.exchanges.binance.futures_rules import rule_value
from rxconnector.exchanges.binance.futures_user_stream import (
    BinanceFuturesUserStream,
    position_from_row,
    private_stream_url,
    usdm_balance,
)
from rxconnector.exchanges.binance.listen_key import ListenKeyLease
from rxconnector.models import Balance, Position


class ListenKeyApi(Protocol):
    """The listenKey calls the user stream's lease needs (the USD-M REST client has
    them): declared here so this pure module needs nothing from the REST engine."""

    def create_listen_key(self) -> Observable[str]: ...

    def keepalive_listen_key(self, listen_key: str | None = None) -> Observable[None]: ...


__all__ = [
    "ListenKeyApi",
    "futures_balance",
    "futures_user_stream",
    "position_risk",
]


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


def futures_user_stream(
    rest: ListenKeyApi,
    private_base: str,
    scheduler: abc.SchedulerBase | None,
    *,
    fast_executions: bool = False,
    url_for: Callable[[str], str] | None = None,
) -> tuple[BinanceFuturesUserStream, str]:
    """The USD-M private protocol (with its listenKey lease on ``rest``, sockets under
    ``private_base``, the venue's ``private_ws_url``) and the URL it shows in logs
    before a key exists."""
    lease = ListenKeyLease(
        rest.create_listen_key,
        rest.keepalive_listen_key,
        url_for or (lambda key: private_stream_url(private_base, key)),
        scheduler=scheduler,
    )
    protocol = BinanceFuturesUserStream(lease.open, fast_executions=fast_executions)
    return protocol, private_stream_url(private_base, "<listenKey>")
