"""position_changes: what reconciliation emits for positions after a gap."""

from __future__ import annotations

from decimal import Decimal

from rxconnector.models import Position
from rxconnector.streams.accounts.differences import position_changes

D = Decimal


def pos(symbol: str, side: str, size: str, entry: str, position_side: str = "both") -> Position:
    return Position(
        symbol, side, D(size), D(entry), None, None, None, 1, position_side=position_side
    )


def test_changed_new_and_closed_positions_are_emitted_reconciled() -> None:
    known = {
        ("BTCUSDT", "both"): pos("BTCUSDT", "long", "1", "100"),
        ("ETHUSDT", "both"): pos("ETHUSDT", "short", "2", "10"),
        ("XRPUSDT", "both"): pos("XRPUSDT", "long", "5", "1"),
    }
    listed = [
        pos("BTCUSDT", "long", "3", "101"),  # grew
        pos("XRPUSDT", "long", "5", "1"),  # unchanged
        pos("SOLUSDT", "short", "1", "20"),  # opened in the gap
        pos("ADAUSDT", "flat", "0", "0"),  # never seen and flat: no news
    ]
    changed = position_changes(known, set(), listed, 9.0)
    assert [(p.symbol, p.side, p.size) for p in changed] == [
        ("BTCUSDT", "long", D(3)),
        ("SOLUSDT", "short", D(1)),
        ("ETHUSDT", "flat", D(0)),  # closed in the gap
    ]
    assert all(p.reconciled and p.received_at == 9.0 for p in changed)


def test_a_position_a_live_event_touched_is_left_alone() -> None:
    known = {("BTCUSDT", "long"): pos("BTCUSDT", "long", "1", "100", "long")}
    touched = {("BTCUSDT", "long")}
    assert position_changes(known, touched, [], 1.0) == []
    assert position_changes({}, touched, [pos("BTCUSDT", "long", "2", "9", "long")], 1.0) == []


def test_hedge_sides_are_separate_positions() -> None:
    known = {("BTCUSDT", "long"): pos("BTCUSDT", "long", "1", "100", "long")}
    listed = [
        pos("BTCUSDT", "long", "1", "100", "long"),
        pos("BTCUSDT", "short", "1", "99", "short"),
    ]
    (short,) = position_changes(known, set(), listed, 1.0)
    assert (short.position_side, short.size) == ("short", D(1))
