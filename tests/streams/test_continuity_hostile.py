"""One trade with an id far ahead must not silence a trade feed (issue #16).

Before: the jump was taken as a gap (reported, or backfilled until the retries ran out),
the hostile trade was emitted and became the baseline, and every real trade after it
was dropped as a duplicate - for good, across reconnects too. Now a jump the venue
cannot confirm (a REST lookup from that id finds nothing, and no live trade follows on
from it) is a ParseError for that trade; the real trades keep flowing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reactivex.testing import ReactiveTest, TestScheduler

from rxconnector.errors import FeedGapError, ParseError
from rxconnector.models import Trade
from rxconnector.streams.continuity import gapless_trades
from rxconnector.streams.messages import StreamRestart

try:
    from test_continuity import ids, pages, tr
except ImportError:  # pragma: no cover - package-style collection
    from .test_continuity import ids, pages, tr  # type: ignore[no-redef]

on_next = ReactiveTest.on_next
RESTART = StreamRestart("btcusdt@trade", "reconnected")
FAR = 10**15


def hostile(trade_id: int) -> Trade:
    return Trade("BTCUSDT", trade_id, Decimal("1"), Decimal("1"), "buy", time=0, event_time=0)


def run(live_items: list[tuple[int, Any]], store: list[Trade], **kw: Any) -> tuple[Any, Any]:
    s = TestScheduler()
    live = s.create_hot_observable(*(on_next(t, item) for t, item in live_items))
    backfill, _calls = pages(s, store)
    reports: list[Exception] = []
    result = s.start(
        lambda: gapless_trades(
            live, backfill, topic="btcusdt@trade", report=reports.append, scheduler=s, **kw
        ),
        disposed=5000,
    )
    return result.messages, reports


def test_an_id_far_ahead_is_a_parse_error_and_real_trades_keep_flowing() -> None:
    store = [tr(n) for n in range(1, 9)]  # what the venue really has
    messages, reports = run(
        [
            (210, tr(1)),
            (220, tr(2)),
            (230, hostile(FAR)),
            (240, tr(3)),
            (250, tr(4)),
            (260, RESTART),  # across a reconnect too
            (270, tr(5)),
            (280, hostile(FAR + 7)),
            (290, tr(6)),
            (300, tr(7)),
            (310, tr(8)),
        ],
        store,
    )
    assert ids(messages) == [1, 2, 3, 4, 5, 6, 7, 8]
    parse_errors = [e for e in reports if isinstance(e, ParseError)]
    assert len(parse_errors) == 2 and str(FAR) in str(parse_errors[0])
    assert [e for e in reports if isinstance(e, FeedGapError)] == []


def test_a_small_jump_the_venue_does_not_have_is_rejected_too() -> None:
    """Within max_backfill: the backfill finds the real trades, then nothing more; the
    lookup from the jump's id finds nothing: rejected instead of retried forever and
    finally emitted as the new baseline."""
    store = [tr(n) for n in range(1, 12)]
    messages, reports = run(
        [(210, tr(1)), (220, tr(2)), (230, hostile(60)), *((240 + n, tr(n)) for n in range(3, 12))],
        store,
    )
    assert sorted(set(ids(messages))) == list(range(1, 12))
    assert ids(messages) == sorted(ids(messages))  # still in id order, once each
    assert 60 not in ids(messages)
    assert any(isinstance(e, ParseError) and "60" in str(e) for e in reports)
    assert [e for e in reports if isinstance(e, FeedGapError)] == []


def test_a_real_jump_the_venue_confirms_is_still_a_reported_gap() -> None:
    """A gap larger than max_backfill whose far side the venue has: as before, the
    range is reported as lost and the feed continues from the new id."""
    store = [tr(1), tr(2), *(tr(n) for n in range(10_000, 10_005))]
    messages, reports = run(
        [(210, tr(1)), (220, tr(2)), (230, tr(10_000)), (240, tr(10_001))],
        store,
        max_backfill=100,
    )
    assert ids(messages) == [1, 2, 10_000, 10_001]
    gaps = [e for e in reports if isinstance(e, FeedGapError)]
    assert [(g.first_missing, g.last_missing) for g in gaps] == [(3, 9_999)]
    assert [e for e in reports if isinstance(e, ParseError)] == []


def test_a_jump_followed_by_its_own_successor_is_confirmed_by_the_stream() -> None:
    """REST may lag the stream: live trades following on from the far id confirm it
    without the lookup (otherwise a real jump during a REST outage would be dropped)."""
    store = [tr(1), tr(2)]  # REST knows nothing newer (lagging)
    messages, reports = run(
        [(210, tr(1)), (220, tr(2)), (230, tr(9_000)), (231, tr(9_001)), (240, tr(9_002))],
        store,
        max_backfill=100,
    )
    assert ids(messages) == [1, 2, 9_000, 9_001, 9_002]
    assert [e for e in reports if isinstance(e, ParseError)] == []


def test_a_hostile_first_trade_does_not_stay_the_baseline() -> None:
    """The very first trade after subscribing is the baseline; when live trades keep
    coming below it and the venue does not have its id, it is reported and the feed
    starts again from the real trades (held meanwhile, none lost)."""
    store = [tr(n) for n in range(1, 9)]
    messages, reports = run(
        [(210, hostile(FAR)), *((220 + 10 * n, tr(n)) for n in range(1, 9))], store
    )
    assert ids(messages) == [FAR, 1, 2, 3, 4, 5, 6, 7, 8]  # FAR was out before anyone knew
    parse_errors = [e for e in reports if isinstance(e, ParseError)]
    assert len(parse_errors) == 1 and f"first trade, id {FAR}" in str(parse_errors[0])
    assert [e for e in reports if isinstance(e, FeedGapError)] == []


def test_a_real_first_trade_with_replayed_older_ones_stays_the_baseline() -> None:
    store = [tr(n) for n in range(1, 9)]
    messages, reports = run([(210, tr(5)), (220, tr(3)), (230, tr(4)), (400, tr(6))], store)
    assert ids(messages) == [5, 6]
    assert reports == []
