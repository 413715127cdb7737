"""Binance Spot user data frames read in one typed pass (measured by
``bench_decode_account.py``; not used by the library, see :mod:`_account_wire`).

The typed counterparts of the dict parsers of :mod:`.user_stream` for the events that
carry models: ``executionReport`` (:class:`OrderUpdate`, plus the :class:`Execution`
of a ``TRADE``), ``outboundAccountPosition`` (one :class:`Balance` per asset),
``balanceUpdate`` / ``externalLockUpdate`` (:class:`BalanceDelta`). Each reads the whole
WebSocket-API frame ``{"subscriptionId": n, "event": {...}}`` with a Struct of only the
fields the dict parser reads, the event's ``e`` a ``Literal`` of its kind, and builds
the models with the same constructors and the same rules.

The contract is :mod:`_account_wire`'s: a reader returns the models the dict parser
would return for the frame's event, or ``None`` (the dict parser would decide). A
reader is picked by the event kind (:data:`READERS`); ``listStatus``,
``eventStreamTerminated`` and unknown kinds have none.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec
from _account_wire import READ_FAILED, TypedReader, WireNumber, all_sane

from rxconnector.models import Balance, BalanceDelta, Execution, OrderUpdate, Side

__all__ = [
    "READERS",
    "read_account_position",
    "read_balance_delta",
    "read_execution_report",
]

_SIDES: Final[dict[str, Side]] = {"BUY": "buy", "SELL": "sell"}


class ExecutionReportData(msgspec.Struct, gc=False):
    """``executionReport`` (PROTOCOL.md §A5.1): what the order update and the fill read."""

    e: Literal["executionReport"]
    E: int
    s: str
    c: str
    S: str
    o: str
    X: str
    x: str
    i: int
    p: WireNumber
    q: WireNumber
    z: WireNumber
    Z: WireNumber
    L: WireNumber
    l: WireNumber  # noqa: E741 - the wire's name
    n: WireNumber
    N: str | None
    T: int
    t: int
    m: bool
    C: str | None = None


class _ExecutionReportFrame(msgspec.Struct, gc=False):
    event: ExecutionReportData


class AssetRow(msgspec.Struct, gc=False):
    """One asset of ``outboundAccountPosition.B``."""

    a: str
    f: WireNumber
    l: WireNumber  # noqa: E741 - the wire's name


class AccountPositionData(msgspec.Struct, gc=False):
    """``outboundAccountPosition``: the new free / locked amounts of each asset."""

    e: Literal["outboundAccountPosition"]
    E: int
    B: list[AssetRow]


class _AccountPositionFrame(msgspec.Struct, gc=False):
    event: AccountPositionData


class BalanceUpdateData(msgspec.Struct, gc=False):
    """``balanceUpdate``: a signed change of one asset."""

    e: Literal["balanceUpdate"]
    E: int
    a: str
    d: WireNumber
    T: int


class ExternalLockUpdateData(msgspec.Struct, gc=False):
    """``externalLockUpdate``: same fields as ``balanceUpdate``."""

    e: Literal["externalLockUpdate"]
    E: int
    a: str
    d: WireNumber
    T: int


class _BalanceUpdateFrame(msgspec.Struct, gc=False):
    event: BalanceUpdateData


class _ExternalLockFrame(msgspec.Struct, gc=False):
    event: ExternalLockUpdateData


_decode_report = msgspec.json.Decoder(_ExecutionReportFrame).decode
_decode_position = msgspec.json.Decoder(_AccountPositionFrame).decode
_decode_balance = msgspec.json.Decoder(_BalanceUpdateFrame).decode
_decode_lock = msgspec.json.Decoder(_ExternalLockFrame).decode


def _report_models(d: ExecutionReportData, received_at: float) -> list[Any] | None:
    """As :func:`~.user_stream.parse_execution_report` + :func:`~.user_stream.
    parse_execution`."""
    filled, quote, price, quantity = d.z, d.Z, d.L, d.l
    if not all_sane((d.p, d.q, filled, quote, price, quantity, d.n)):
        return None
    side = _SIDES.get(d.S)
    if side is None:
        return None
    client_order_id = d.C or d.c
    order_id = str(d.i)
    update = OrderUpdate(
        symbol=d.s,
        order_id=order_id,
        client_order_id=client_order_id,
        side=side,
        type=d.o,
        status=d.X,
        execution_type=d.x,
        price=d.p,
        quantity=d.q,
        filled_quantity=filled,
        average_price=quote / filled if filled else None,
        last_fill_price=price,
        last_fill_quantity=quantity,
        fee=d.n,
        fee_asset=d.N,
        event_time=d.E,
        received_at=received_at,
    )
    if d.x != "TRADE" or not quantity:
        return [update]  # a TRADE that filled nothing is no fill (as the dict parser)
    fill = Execution(
        symbol=d.s,
        order_id=order_id,
        client_order_id=client_order_id,
        execution_id=str(d.t),
        side=side,
        price=price,
        quantity=quantity,
        fee=d.n,
        fee_asset=d.N,
        is_maker=d.m,
        time=d.T,
        received_at=received_at,
    )
    return [update, fill]


def read_execution_report(frame: Any, received_at: float) -> list[Any] | None:
    """``executionReport`` frame → ``[OrderUpdate]`` or ``[OrderUpdate, Execution]``."""
    try:
        return _report_models(_decode_report(frame).event, received_at)
    except READ_FAILED:
        return None


def read_account_position(frame: Any, received_at: float) -> list[Any] | None:
    """``outboundAccountPosition`` frame → one :class:`Balance` per asset, in order."""
    try:
        d = _decode_position(frame).event
        rows = d.B
        if not all_sane([number for row in rows for number in (row.f, row.l)]):
            return None
        event_time = d.E
        return [
            Balance(
                asset=row.a,
                free=row.f,
                locked=row.l,
                event_time=event_time,
                received_at=received_at,
            )
            for row in rows
        ]
    except READ_FAILED:
        return None


def _delta_reader(decode: Any, kind: Literal["balance", "external_lock"]) -> TypedReader:
    def read_balance_delta(frame: Any, received_at: float) -> list[Any] | None:
        try:
            d = decode(frame).event
            delta = d.d
            if not all_sane((delta,)):
                return None
            return [
                BalanceDelta(
                    asset=d.a,
                    delta=delta,
                    kind=kind,
                    time=d.T,
                    event_time=d.E,
                    received_at=received_at,
                )
            ]
        except READ_FAILED:
            return None

    return read_balance_delta


#: ``balanceUpdate`` frame → ``[BalanceDelta]`` (``kind="balance"``).
read_balance_delta: Final = _delta_reader(_decode_balance, "balance")
_read_external_lock: Final = _delta_reader(_decode_lock, "external_lock")

#: Event kind (``e``) → its typed reader; a kind not listed is read by the dict parser.
READERS: Final[dict[str, TypedReader]] = {
    "executionReport": read_execution_report,
    "outboundAccountPosition": read_account_position,
    "balanceUpdate": read_balance_delta,
    "externalLockUpdate": _read_external_lock,
}
