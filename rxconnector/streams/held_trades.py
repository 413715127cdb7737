"""Trades held back while a gap is backfilled, stored compactly (issue 16).

A trade feed whose backfill waits for the REST budget holds its live trades meanwhile:
up to ``max_held`` (default 20,000) per feed, tens of thousands across a connector after
one disconnect. A held :class:`~rxconnector.models.Trade` costs ≈ 530 bytes in eight
small objects (the object, two ``Decimal``\\ s, its own copy of the symbol string and
of three ints from the decoded frame); freed after the backfill, such a crowd of small
objects leaves the allocator's arenas fragmented, so the process keeps the peak.
:class:`HeldTrades` keeps a plain trade as one ``bytes`` record instead (time, event
time offset, receipt time and side packed with :mod:`struct`, then price and quantity
as their exact text: ``Decimal(str(d))`` gives back the same sign, coefficient and
exponent) and the symbol once per buffer: ≈ 150 bytes and two objects per trade (the
record and the id), measured by ``benchmarks/bench_held.py``. A trade is rebuilt, equal
in every field, when it is emitted. Aggregate trades (with first/last trade ids) and
trades of another symbol are kept as they are.
"""

from __future__ import annotations

import heapq
import struct
from decimal import Decimal

from rxconnector.models import Trade

__all__ = ["HeldTrades"]

#: time (ms), event_time - time (ms, clamped to int32 else the Trade is kept whole),
#: received_at (s), flags (bit 0 = sell, bit 1 = backfilled); then "price qty".
_RECORD = struct.Struct("<qidB")
_HEAD = _RECORD.size
_INT32 = 2**31


class HeldTrades:
    """Trades waiting to be emitted, by id: a dict of packed trades plus a min-heap of
    the ids. The caller bounds its size (``max_held`` live trades plus at most one
    backfill page). Adding an id already held keeps the first copy."""

    __slots__ = ("_by_id", "_order", "_symbol")

    def __init__(self) -> None:
        self._by_id: dict[int, bytes | Trade] = {}
        self._order: list[int] = []  # heap of the held ids
        self._symbol: str | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, trade_id: object) -> bool:
        return trade_id in self._by_id

    def add(self, trade: Trade) -> None:
        """Hold ``trade`` unless its id is already held."""
        tid = trade.trade_id
        if tid in self._by_id:
            return
        self._by_id[tid] = self._pack(trade)
        heapq.heappush(self._order, tid)

    def first(self) -> int:
        """The lowest held id (the caller checks the buffer is not empty)."""
        return self._order[0]

    def newest(self) -> int:
        """The highest held id."""
        return max(self._order)

    def pop_first(self) -> Trade:
        """Remove and return the trade with the lowest id."""
        tid = heapq.heappop(self._order)
        return self._unpack(tid, self._by_id.pop(tid))

    def _pack(self, trade: Trade) -> bytes | Trade:
        if self._symbol is None:
            self._symbol = trade.symbol
        delta = trade.event_time - trade.time
        if (
            trade.first_trade_id is not None
            or trade.symbol != self._symbol
            or not (-_INT32 <= delta < _INT32)
        ):
            return trade
        flags = (trade.side == "sell") | (trade.backfilled << 1)
        head = _RECORD.pack(trade.time, delta, trade.received_at, flags)
        return head + f"{trade.price} {trade.quantity}".encode("ascii")

    def _unpack(self, tid: int, packed: bytes | Trade) -> Trade:
        if isinstance(packed, Trade):
            return packed
        time, delta, received_at, flags = _RECORD.unpack_from(packed)
        price, quantity = packed[_HEAD:].decode("ascii").split(" ")
        assert self._symbol is not None
        return Trade(
            self._symbol,
            tid,
            Decimal(price),
            Decimal(quantity),
            "sell" if flags & 1 else "buy",
            time,
            time + delta,
            received_at,
            backfilled=bool(flags & 2),
        )
