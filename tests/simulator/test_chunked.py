"""The simulator's histories stay out of the cyclic collector's work.

``ChunkedLog`` must behave exactly like the list/deque it replaced (checked against a
plain list under random operations), and a market that has run for a while must leave
the collector no more objects to walk than a fresh one: with its records tracked, every
full pass walked the whole tape (measured: 40-140 ms pauses at 10,000 trades/s, growing
with the run), which a real exchange never shows its clients.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.testing.simulator.book import ASK, BID, SimBook
from rxconnector.testing.simulator.chunked import CHUNK, ChunkedLog
from rxconnector.testing.simulator.config import symbol_spec
from rxconnector.testing.simulator.market import Market
from rxconnector.testing.simulator.tape import SimAggTrade, SimTrade

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 10**6)),
        st.tuples(st.just("extend"), st.integers(0, 3 * CHUNK)),
        st.tuples(st.just("drop"), st.integers(-2, 3 * CHUNK)),
        st.tuples(st.just("pop"), st.just(0)),
    ),
    max_size=25,
)


def _check_equal(log: ChunkedLog[int], model: list[int]) -> None:
    assert len(log) == len(model)
    assert bool(log) == bool(model)
    assert list(log) == model
    assert list(reversed(log)) == model[::-1]
    n = len(model)
    for i in {0, 1, n // 2, n - 1, -1, -n, CHUNK - 1, CHUNK, CHUNK + 1}:
        if -n <= i < n:
            assert log[i] == model[i]
    for lo, hi in ((0, n), (1, CHUNK + 3), (n - 5, n + 5), (CHUNK - 2, 2 * CHUNK + 2), (-7, n)):
        assert log[lo:hi] == model[lo:hi]
        assert log.between(lo, hi) == model[max(lo, 0) : hi]
    assert log[::3] == model[::3]


class TestChunkedLogIsAList:
    @given(_OPS)
    @settings(max_examples=150, deadline=None)
    def test_same_as_a_list(self, ops: list[tuple[str, int]]) -> None:
        log: ChunkedLog[int] = ChunkedLog()
        model: list[int] = []
        counter = 0
        for op, arg in ops:
            if op == "append":
                log.append(arg)
                model.append(arg)
            elif op == "extend":
                items = list(range(counter, counter + arg))
                counter += arg
                log.extend(items)
                model.extend(items)
            elif op == "drop":
                log.drop_front(arg)
                del model[: max(arg, 0)]
            elif model:
                assert log.popleft() == model.pop(0)
            _check_equal(log, model)

    def test_bisect_and_errors(self) -> None:
        model = list(range(0, 10 * CHUNK, 2))
        log = ChunkedLog(model)
        log.drop_front(3)
        del model[:3]
        for value in (-1, 0, 7, 2 * CHUNK + 1, 2 * CHUNK + 2, 20 * CHUNK):
            assert bisect.bisect_left(log, value) == bisect.bisect_left(model, value)
            assert bisect.bisect_right(log, value, key=lambda x: x + 1) == bisect.bisect_right(
                model, value, key=lambda x: x + 1
            )
        log.clear()
        assert len(log) == 0 and list(log) == []
        try:
            log.popleft()
        except IndexError:
            pass
        else:
            raise AssertionError("popleft of an empty log must raise")
        try:
            log[0]
        except IndexError:
            pass
        else:
            raise AssertionError("indexing an empty log must raise")


@contextmanager
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not was:
            gc.disable()


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


class TestCollectorSkipsHistory:
    def test_records_are_not_tracked(self) -> None:
        trade = SimTrade("X", 1, Decimal("1.5"), Decimal("2"), 5, "BUY", 3, 15, 2)
        agg = SimAggTrade("X", 3, Decimal("1.5"), Decimal("2"), 1, 1, 5, False, 15, 2)
        assert not gc.is_tracked(trade) and not gc.is_tracked(agg)

    def test_sealed_chunks_are_untracked(self) -> None:
        with _collector_on():
            log: ChunkedLog[tuple[int, ...]] = ChunkedLog((i, i + 1) for i in range(5 * CHUNK))
            gc.collect()  # untracks the items (and chunks whose items it saw first)
            gc.collect()  # untracks the chunks whose items were younger than they
            assert log._chunks and not any(gc.is_tracked(chunk) for chunk in log._chunks)

    def test_book_history_is_untracked(self) -> None:
        with _collector_on():
            book = SimBook(1, 10 * CHUNK)
            for i in range(3 * CHUNK):
                book.apply([(BID, 10 + i % 7, 1 + i), (ASK, 30 + i % 5, 2 + i)])
            gc.collect()
            gc.collect()  # see test_sealed_chunks_are_untracked
            assert not any(gc.is_tracked(chunk) for chunk in book._history._chunks)
            assert not any(gc.is_tracked(entry) for entry in book._history)

    def test_a_long_run_adds_nothing_for_the_collector_to_walk(self) -> None:
        # 5 symbols x 4,000 ticks: ~40,000 trades and ~20,000 book updates kept. Before,
        # every one of them stayed a tracked object (the tape, the 24-h and 5-min
        # windows, the book's undo log); now the growth is a few open chunks.
        clock = [1_700_000_000_000]
        market = Market([symbol_spec(f"S{i}USDT", 1) for i in range(5)], 1, lambda: clock[0])
        with _collector_on():
            for _ in range(200):
                clock[0] += 10
                market.tick()
            before = _tracked()
            for _ in range(4_000):
                clock[0] += 10
                market.tick()
            grown = _tracked() - before
        kept = sum(len(market[f"S{i}USDT"].tape.trades) for i in range(5))
        assert kept > 20_000
        assert grown < 300, f"{grown} more tracked objects after {kept} trades"
