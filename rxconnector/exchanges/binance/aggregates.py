"""Plain trades recovered exactly from aggregate trades (issue 16: cheaper backfills).

A Binance aggregate trade (``aggTrades``, weight 4) is the fills of one taker order at
one price; it carries the range of plain trade ids it covers (``f``..``l``). When
``f == l`` the aggregate *is* that one trade: its id, price, quantity, time and
buyer-maker flag are exactly what ``historicalTrades`` (weight 25) would return for it.
When it covers several fills, their individual quantities are not in the aggregate and
are never guessed: those ids must be fetched by id.

:func:`trades_from_aggregates` turns one ``aggTrades`` page into the consecutive plain
trades it proves, and says from which id a by-id fetch is needed.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from rxconnector.models import Trade

__all__ = ["AggregateCover", "FillHistory", "trades_from_aggregates"]


@attrs.frozen
class AggregateCover:
    """What one page of aggregates proves about the plain trades from ``from_id`` on.

    ``trades``: consecutive plain trades from ``from_id``, each from a single-fill
    aggregate (``backfilled=True``, ``event_time`` = trade time as in a REST trade).
    ``fetch_from``: the first id the page cannot give exactly (a multi-fill aggregate,
    or a hole before the next aggregate): fetch plain trades by id from there. None when
    the page's aggregates were used up (every id they cover is in ``trades``).
    ``multi_fill``: how many of the page's aggregates from ``from_id`` on cover
    several fills (for measurements)."""

    trades: list[Trade]
    fetch_from: int | None
    multi_fill: int


def trades_from_aggregates(aggregates: Iterable[Trade], from_id: int) -> AggregateCover:
    """The plain trades from ``from_id`` that ``aggregates`` prove exactly.

    .. marble::
        :alt: trades_from_aggregates

        aggregates:  a7[f=10,l=10]  a8[f=11,l=11]  a9[f=12,l=14]  a10[f=15,l=15]
        from_id 11:  trades 11 (from a8), fetch_from 12 (a9 covers 3 fills)

    Aggregates wholly before ``from_id`` are skipped; the walk stops at the first
    aggregate that covers several fills (or starts inside one) and at any hole in the
    trade ids, so the result never invents a trade or a quantity.
    """
    ordered = sorted(
        (a for a in aggregates if a.last_trade_id is not None and a.last_trade_id >= from_id),
        key=_first_id,
    )
    trades: list[Trade] = []
    multi = sum(1 for a in ordered if a.first_trade_id != a.last_trade_id)
    expected = from_id
    for agg in ordered:
        first, last = agg.first_trade_id, agg.last_trade_id
        if first != expected or last != first:
            return AggregateCover(trades, expected, multi)
        trades.append(
            Trade(
                symbol=agg.symbol,
                trade_id=first,
                price=agg.price,
                quantity=agg.quantity,
                side=agg.side,
                time=agg.time,
                event_time=agg.time,
                received_at=agg.received_at,
                backfilled=True,
            )
        )
        expected += 1
    return AggregateCover(trades, None, multi)


def _first_id(aggregate: Trade) -> int:
    return aggregate.first_trade_id if aggregate.first_trade_id is not None else -1


class FillHistory:
    """Per feed: whether asking ``aggTrades`` first has been paying off.

    A page whose gap held a multi-fill aggregate cost 4 + 25 instead of 25; a symbol
    whose orders usually sweep several makers will do that again, so after such a page
    the next ones go straight to ``historicalTrades`` by id, trying aggregates again
    every ``retry_every``-th page (the symbol's trading may have changed). A page
    answered by aggregates alone resets it.
    """

    __slots__ = ("_skipped", "missed", "retry_every")

    def __init__(self, retry_every: int = 4) -> None:
        if retry_every < 1:
            raise ValueError(f"retry_every must be >= 1, got {retry_every}")
        self.retry_every = retry_every
        self.missed = False  # the last aggregate page met a multi-fill aggregate
        self._skipped = 0

    def aggregates_first(self) -> bool:
        """Whether the next page should ask ``aggTrades`` first."""
        if not self.missed:
            return True
        self._skipped += 1
        if self._skipped >= self.retry_every:
            self._skipped = 0
            return True
        return False

    def record(self, cover: AggregateCover) -> None:
        """The outcome of an aggregate page."""
        self.missed = cover.fetch_from is not None
        self._skipped = 0
