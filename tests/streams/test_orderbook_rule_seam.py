"""The operator is venue-neutral: any :class:`SyncRule` drives it, not only the catalog's.

A venue added later registers its own rule object; these tests run the operator on rule
objects built here (wrapping the machines of existing venues) to show the seam holds:
the operator asks the rule for its machine, its snapshot size and whether it needs REST,
and nothing else.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import reactivex
from reactivex.subject import Subject

from rxconnector.exchanges.binance.book_sync import BinanceSpotSync
from rxconnector.exchanges.book_sync import BookSync, SyncRule
from rxconnector.exchanges.bybit.book_sync import BybitDepthSync
from rxconnector.models import DepthUpdate, Level, OrderBook
from rxconnector.streams.messages import StreamRestart
from rxconnector.streams.orderbook import maintain_order_book

D = Decimal
BIDS: tuple[Level, ...] = ((D(10), D(1)), (D(9), D(1)))
ASKS: tuple[Level, ...] = ((D(11), D(1)), (D(12), D(1)))
built: list[tuple[int, int | None, int | None, int]] = []


def _rest_machine(depth: int, limit: int | None, window: int | None, buffer: int) -> BookSync:
    built.append((depth, limit, window, buffer))
    return BinanceSpotSync(depth, snapshot_limit=limit, max_buffer=buffer)


def _ws_machine(depth: int, limit: int | None, window: int | None, buffer: int) -> BookSync:
    return BybitDepthSync(depth, window=window, max_buffer=buffer)


REST_RULE = SyncRule("test-rest", _rest_machine, (50, 200, 1000))
WS_RULE = SyncRule("test-ws", _ws_machine)


def upd(first: int, final: int, *, snapshot: bool = False) -> DepthUpdate:
    bids = BIDS if snapshot else ((D(10), D(final)),)
    asks = ASKS if snapshot else ()
    return DepthUpdate("XYZ", first, final, bids, asks, 1, 2.0, is_snapshot=snapshot)


def test_a_rest_rule_object_drives_the_operator() -> None:
    built.clear()
    diffs: Subject[DepthUpdate | StreamRestart] = Subject()
    books: list[OrderBook] = []
    asked: list[int] = []

    def fetch() -> reactivex.Observable[OrderBook]:
        asked.append(1)
        return reactivex.of(OrderBook("XYZ", BIDS, ASKS, 3, 0, 0.0))

    maintain_order_book(diffs, fetch, REST_RULE, 2, max_buffer=77).subscribe(books.append)
    assert asked == []  # nothing buffered yet: no snapshot asked for
    diffs.on_next(upd(1, 2))  # buffered; the snapshot (lastUpdateId 3) answers at once
    diffs.on_next(upd(3, 4))
    diffs.on_next(upd(5, 5))
    assert asked == [1]
    assert [b.update_id for b in books] == [3, 4, 5]
    assert books[-1].bids[0] == (D(10), D(5))
    # depth 2 asks for the rule's smallest tier holding 5 x 2 levels (at least 100): 200
    assert built[-1] == (2, 200, None, 77)


def test_a_rest_rule_object_needs_fetch_snapshot() -> None:
    with pytest.raises(ValueError, match="needs fetch_snapshot"):
        maintain_order_book(Subject(), None, REST_RULE, 2)


def test_a_websocket_rule_object_needs_no_rest() -> None:
    diffs: Subject[DepthUpdate | StreamRestart] = Subject()
    books: list[OrderBook] = []
    asks_for_resubscribe: list[int] = []
    maintain_order_book(
        diffs,
        None,
        WS_RULE,
        2,
        window=50,
        request_resubscribe=lambda: asks_for_resubscribe.append(1),
        scheduler=reactivex.scheduler.HistoricalScheduler(),
    ).subscribe(books.append)
    diffs.on_next(upd(0, 7, snapshot=True))
    diffs.on_next(upd(0, 8))
    assert [b.update_id for b in books] == [7, 8]
    assert asks_for_resubscribe == []


def test_depth_deeper_than_the_rule_s_snapshot_is_refused_at_call_time() -> None:
    with pytest.raises(ValueError, match="deeper than the snapshot limit"):
        maintain_order_book(Subject(), lambda: reactivex.empty(), REST_RULE, 50, snapshot_limit=20)


def test_the_registry_helpers_take_any_rule_object() -> None:
    """``Venue.book_rule`` may hold a ``SyncRule``: the connector's helpers accept it."""
    from rxconnector.exchanges.book_rules import make_sync, snapshot_limit_for

    assert snapshot_limit_for(REST_RULE, 10) == 200  # at least 100 levels are wanted
    assert snapshot_limit_for(REST_RULE, 100) == 1000  # 500 wanted: the next tier
    assert snapshot_limit_for(REST_RULE, 300) == 1000  # 1,500 wanted: the largest
    assert snapshot_limit_for(WS_RULE, 10) is None
    assert isinstance(make_sync(WS_RULE, 5, window=50), BybitDepthSync)
