"""Bybit v5 wallet coins and position rows → Balance and Position (REST and stream alike).

The same row shapes come from ``GET /v5/account/wallet-balance`` and the ``wallet``
topic, and from ``GET /v5/position/list`` and the ``position`` topic (BY
``account/wallet-balance.mdx``, ``position/position.mdx``, ``websocket/private/
wallet.mdx`` and ``position.mdx``), so one mapping serves both and reconciliation
compares like with like.

Balances (unified account; a classic account sends no ``borrowAmount`` and no
``equity``, which then read as 0 and "not reported"):

* ``borrowed`` = ``borrowAmount``, ``interest`` = ``accruedInterest``, ``equity`` =
  ``equity`` (Bybit: wallet balance + unrealised PnL - debt of the coin);
* ``locked`` = ``locked`` (what open spot orders hold);
* ``free`` = ``min(walletBalance, equity) - locked``, never below 0: borrowed coins sit
  in the wallet but are not owned, so ``walletBalance 1200, borrowAmount 200, equity
  1000`` gives ``free`` 1000 (not 1200), and a spot short's coin (``walletBalance`` 0 or
  negative, ``borrowAmount`` 0.06) gives ``free`` 0 with the debt on ``borrowed``.
  Without ``equity``, ``walletBalance - borrowAmount`` stands for it.

Positions: ``side`` ``Buy``/``Sell``/``""`` → ``long``/``short``/``flat``;
``positionIdx`` 0/1/2 → ``position_side`` ``both``/``long``/``short`` (one-way / hedge);
``tradeMode`` 0/1 → ``cross``/``isolated``; ``liqPrice`` ``""``/``"0"`` → ``None``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from rxconnector.errors import excerpt
from rxconnector.exchanges._parsing import json_str, opt_decimal, to_decimal
from rxconnector.models import Balance, Position

__all__ = ["coin_balance", "decimal_or_zero", "position_row"]

_ZERO: Final = Decimal(0)
_POSITION_SIDES: Final[dict[str, str]] = {"Buy": "long", "Sell": "short", "": "flat"}
_POSITION_IDX: Final[dict[int, str]] = {0: "both", 1: "long", 2: "short"}
_TRADE_MODES: Final[dict[int, str]] = {0: "cross", 1: "isolated"}


def decimal_or_zero(value: Any) -> Decimal:
    """Amount that may be ``""`` (Bybit's "not applicable") → 0; finite and sane
    (:func:`~rxconnector.exchanges._parsing.to_decimal`), else a ValueError. The
    private stream's order and execution rows use it too."""
    return _ZERO if value == "" or value is None else to_decimal(value)


def _position_side(value: Any) -> str:
    """``Buy`` / ``Sell`` / ``""`` → ``long`` / ``short`` / ``flat``; anything else is
    malformed, quoted cut short (a hostile frame's value may be megabytes)."""
    side = _POSITION_SIDES.get(value) if type(value) is str else None
    if side is None:
        raise ValueError(f"unknown position side {excerpt(value, 40)!r}")
    return side


def coin_balance(coin: Any, event_time: int, received_at: float) -> Balance:
    """One ``coin`` entry of a wallet → :class:`Balance` (mapping: module docstring)."""
    wallet = decimal_or_zero(coin["walletBalance"])
    locked = decimal_or_zero(coin.get("locked"))
    borrowed = decimal_or_zero(coin.get("borrowAmount"))
    equity = opt_decimal(coin.get("equity"))
    owned = equity if equity is not None else wallet - borrowed
    return Balance(
        asset=json_str(coin["coin"]),
        free=max(min(wallet, owned) - locked, _ZERO),
        locked=locked,
        event_time=event_time,
        received_at=received_at,
        borrowed=borrowed,
        interest=decimal_or_zero(coin.get("accruedInterest")),
        equity=equity,
    )


def position_row(row: Any, event_time: int, received_at: float) -> Position:
    """One position entry → :class:`Position` (mapping: module docstring)."""
    entry = row.get("entryPrice")
    if entry is None:
        entry = row.get("avgPrice")
    liquidation = opt_decimal(row.get("liqPrice"))
    mode = row.get("tradeMode")
    return Position(
        symbol=json_str(row["symbol"]),
        side=_position_side(row["side"]),
        size=decimal_or_zero(row["size"]),
        entry_price=decimal_or_zero(entry),
        mark_price=opt_decimal(row.get("markPrice")),
        unrealised_pnl=opt_decimal(row.get("unrealisedPnl")),
        leverage=opt_decimal(row.get("leverage")),
        event_time=event_time,
        received_at=received_at,
        margin_mode=_TRADE_MODES.get(mode) if type(mode) is int else None,
        liquidation_price=liquidation if liquidation else None,
        position_side=_POSITION_IDX.get(int(row.get("positionIdx") or 0), "both"),
    )
