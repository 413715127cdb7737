"""HeldTrades: compact storage gives back every trade equal in every field (issue 16)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rxconnector.models import Trade
from rxconnector.streams.first_trade import FillSampler
from rxconnector.streams.held_trades import HeldTrades


def trade(trade_id: int, price: str = "100.50", qty: str = "0.00100", **kw: object) -> Trade:
    fields: dict[str, object] = {
        "side": "sell",
        "time": 1_700_000_000_000,
        "event_time": 1_700_000_000_003,
    }
    fields.update(kw)
    return Trade("BTCUSDT", trade_id, Decimal(price), Decimal(qty), **fields)  # type: ignore[arg-type]


def drain(held: HeldTrades) -> list[Trade]:
    out = []
    while len(held):
        out.append(held.pop_first())
    return out


def test_trades_come_back_equal_in_id_order_without_duplicates() -> None:
    held = HeldTrades()
    originals = [
        trade(5, "1E+2", "3", received_at=12.5),
        trade(3, "0.00000100", "123.4500", side="buy", backfilled=True),
        trade(4, event_time=1_600_000_000_000),  # beyond int32 from the time: kept whole
        trade(6, event_time=1_700_000_100_000),  # a large but packable difference
    ]
    for t in originals:
        held.add(t)
    held.add(trade(4, "999"))  # a second copy of a held id: the first one stays
    assert len(held) == 4 and 4 in held and 7 not in held
    assert held.first() == 3 and held.newest() == 6
    back = drain(held)
    assert back == sorted(originals, key=lambda t: t.trade_id)
    assert [str(t.price) for t in back] == ["0.00000100", "100.50", "1E+2", "100.50"]


def test_aggregates_and_other_symbols_are_kept_as_they_are() -> None:
    held = HeldTrades()
    agg = trade(7, first_trade_id=70, last_trade_id=72)
    other = Trade("ETHUSDT", 6, Decimal(1), Decimal(2), "buy", 1, 1)
    held.add(agg)
    held.add(other)
    assert drain(held) == [other, agg]


@given(
    st.lists(
        st.tuples(
            st.integers(1, 10**12),
            st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=0),
            st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=0),
            st.sampled_from(["buy", "sell"]),
            st.integers(0, 2**42),
            st.integers(-(2**20), 2**20),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
        ),
        max_size=30,
        unique_by=lambda row: row[0],
    )
)
def test_any_trade_round_trips(rows: list[tuple[object, ...]]) -> None:
    held = HeldTrades()
    originals = [
        Trade("BTCUSDT", tid, p, q, side, time, time + delta, at, backfilled=bf)  # type: ignore[arg-type]
        for tid, p, q, side, time, delta, at, bf in rows
    ]
    for t in originals:
        held.add(t)
    back = drain(held)
    assert back == sorted(originals, key=lambda t: t.trade_id)
    assert [(str(t.price), str(t.quantity)) for t in back] == [
        (str(t.price), str(t.quantity)) for t in sorted(originals, key=lambda t: t.trade_id)
    ]


def test_fill_sampler_measures_how_often_a_trade_continues_an_order() -> None:
    sampler = FillSampler()
    assert sampler.share() is None
    for k in range(1, 21):  # pairs 8k, 8k+1: every 4th pair is one order's two fills
        first = trade(8 * k, time=k)
        same = k % 4 == 0
        second = trade(8 * k + 1, time=k if same else k + 1)
        sampler.sample(first)
        sampler.sample(second)
    assert sampler.share() == 5 / 20
    sampler.sample(trade(1000, side="buy"))
    sampler.sample(trade(1001, side="sell"))  # another side: another order
    assert sampler.share() == 5 / 21
