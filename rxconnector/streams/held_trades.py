"""Trades held back while a gap is backfilled, stored compactly (issue 16).

A trade feed whose backfill waits for the REST budget holds its live trades meanwhile:
up to ``max_held`` (default 20,000) per feed, tens of thousands across a connector after
one disconnect. A held :class:`~rxconnector.models.Trade` costs ≈ 490 bytes (the object,
two ``Decimal``\\ s, its own copy of the symbol string and of three ints from the decoded
frame); :class:`HeldTrades` keeps a plain trade as one small tuple instead: the price
and quantity as one exact text (``Decimal(str(d))`` gives back the same sign,
coefficient and exponent), the event time as its (usually cached, small) difference
from the trade time, the symbol once per buffer. ≈ 260 bytes per trade
(``benchmarks/RESULTS.md``, "Held trades"). A trade is rebuilt, equal in every field,
when it is emitted. Aggregate trades (with first/last trade ids) and trades of another
symbol are kept as they are.
"""

from __future__ import annotations

import heapq
from decimal import Decimal

from rxconnector.models import Trade

__all__ = ["HeldTrades"]

#: (time, event_time - time, received_at, "price qty", flags): flags bit 0 = sell,
#: bit 1 = backfilled.
_Packed = tuple[int, int, float, str, int]


class HeldTrades:
    """Trades waiting to be emitted, by id: a dict of packed trades plus a min-heap of
    the ids. The caller bounds its size (``max_held`` live trades plus at most one
    backfill page). Adding an id already held keeps the first copy."""

    __slots__ = ("_by_id", "_order", "_symbol")

    def __init__(self) -> None:
        self._by_id: dict[int, _Packed | Trade] = {}
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

    def _pack(self, trade: Trade) -> _Packed | Trade:
        if self._symbol is None:
            self._symbol = trade.symbol
        if trade.first_trade_id is not None or trade.symbol != self._symbol:
            return trade
        flags = (trade.side == "sell") | (trade.backfilled << 1)
        text = f"{trade.price} {trade.quantity}"
        return (trade.time, trade.event_time - trade.time, trade.received_at, text, flags)

    def _unpack(self, tid: int, packed: _Packed | Trade) -> Trade:
        if isinstance(packed, Trade):
            return packed
        time, event_delta, received_at, text, flags = packed
        price, quantity = text.split(" ")
        assert self._symbol is not None
        return Trade(
            self._symbol,
            tid,
            Decimal(price),
            Decimal(quantity),
            "sell" if flags & 1 else "buy",
            time,
            time + event_delta,
            received_at,
            backfilled=bool(flags & 2),
        )
