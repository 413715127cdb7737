"""trades_from_aggregates: only single-fill aggregates become plain trades (issue 16)."""

from __future__ import annotations

from decimal import Decimal

from rxconnector.exchanges.binance.aggregates import FillHistory, trades_from_aggregates
from rxconnector.models import Trade


def agg(agg_id: int, first: int, last: int, qty: str = "1.5") -> Trade:
    return Trade(
        "BTCUSDT",
        agg_id,
        Decimal("100.25"),
        Decimal(qty),
        "sell",
        time=1000 + first,
        event_time=1000 + first,
        received_at=7.0,
        first_trade_id=first,
        last_trade_id=last,
    )


def test_single_fill_aggregates_are_exact_plain_trades() -> None:
    cover = trades_from_aggregates([agg(7, 10, 10), agg(8, 11, 11, "0.3")], 10)
    assert cover.fetch_from is None and cover.multi_fill == 0
    assert cover.trades == [
        Trade(
            "BTCUSDT",
            10,
            Decimal("100.25"),
            Decimal("1.5"),
            "sell",
            1010,
            1010,
            7.0,
            backfilled=True,
        ),
        Trade(
            "BTCUSDT",
            11,
            Decimal("100.25"),
            Decimal("0.3"),
            "sell",
            1011,
            1011,
            7.0,
            backfilled=True,
        ),
    ]


def test_the_walk_stops_at_a_multi_fill_aggregate() -> None:
    cover = trades_from_aggregates(
        [agg(7, 10, 10), agg(8, 11, 11), agg(9, 12, 14), agg(10, 15, 15)], 11
    )
    assert [t.trade_id for t in cover.trades] == [11]
    assert cover.fetch_from == 12  # a9's three quantities are not in the aggregate
    assert cover.multi_fill == 1


def test_a_start_inside_an_aggregate_or_a_hole_needs_ids() -> None:
    assert trades_from_aggregates([agg(9, 12, 14)], 13).fetch_from == 13
    cover = trades_from_aggregates([agg(7, 10, 10), agg(8, 13, 13)], 10)
    assert [t.trade_id for t in cover.trades] == [10] and cover.fetch_from == 11


def test_order_of_the_page_does_not_matter_and_old_ones_are_skipped() -> None:
    cover = trades_from_aggregates([agg(8, 11, 11), agg(6, 5, 9), agg(7, 10, 10)], 10)
    assert [t.trade_id for t in cover.trades] == [10, 11] and cover.fetch_from is None
    assert trades_from_aggregates([], 10) == trades_from_aggregates([agg(6, 5, 9)], 10)


def test_fill_history_skips_aggregates_while_they_keep_missing() -> None:
    history = FillHistory(retry_every=3)
    assert history.aggregates_first()
    history.record(trades_from_aggregates([agg(9, 12, 14)], 12))  # multi-fill: missed
    assert [history.aggregates_first() for _ in range(3)] == [False, False, True]
    history.record(trades_from_aggregates([agg(10, 15, 15)], 15))  # answered alone
    assert history.aggregates_first() and history.aggregates_first()
