"""NonceGenerator: unique and strictly increasing across threads, tasks and clock jumps."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxconnector.errors import ConfigError
from rxconnector.nonce import MAX_CLIENT_ORDER_ID_LENGTH, MAX_PREFIX_LENGTH, NonceGenerator

#: Binance newClientOrderId pattern (the stricter Bybit orderLinkId set is [A-Za-z0-9_-]).
BINANCE_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
BYBIT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def _scripted_clock(values: list[int]) -> Callable[[], int]:
    it = iter(values)
    return lambda: next(it)


class TestMonotonic:
    """Values never repeat and never go backwards, whatever the clock does."""

    def test_clock_going_backwards(self) -> None:
        gen = NonceGenerator(clock_us=_scripted_clock([1000, 1005, 900, 900, 1006, 2000, 5]))
        assert [gen.next_int() for _ in range(7)] == [1000, 1005, 1006, 1007, 1008, 2000, 2001]

    def test_frozen_clock(self) -> None:
        gen = NonceGenerator(clock_us=lambda: 42)
        assert [gen.next_int() for _ in range(4)] == [42, 43, 44, 45]

    def test_follows_the_clock_when_it_moves_ahead(self) -> None:
        gen = NonceGenerator(clock_us=_scripted_clock([10, 500, 10_000]))
        assert [gen.next_int() for _ in range(3)] == [10, 500, 10_000]

    def test_default_is_close_to_the_wall_clock_in_microseconds(self) -> None:
        before = time.time_ns() // 1000
        value = NonceGenerator().next_int()
        after = time.time_ns() // 1000
        assert before <= value <= after + 1_000_000  # never far ahead, even when busy

    @given(st.lists(st.integers(min_value=0, max_value=2**60), min_size=1, max_size=200))
    def test_any_clock_sequence_gives_strictly_increasing_values(self, ticks: list[int]) -> None:
        gen = NonceGenerator(clock_us=_scripted_clock(ticks))
        values = [gen.next_int() for _ in ticks]
        assert all(a < b for a, b in itertools.pairwise(values))
        assert all(v >= t for v, t in zip(values, ticks, strict=True))


class TestConcurrency:
    """Unique across threads, tasks and generators."""

    def test_eight_threads_ten_thousand_each(self) -> None:
        gen = NonceGenerator()
        results: list[list[int]] = [[] for _ in range(8)]
        barrier = threading.Barrier(8)

        def work(out: list[int]) -> None:
            barrier.wait()
            for _ in range(10_000):
                out.append(gen.next_int())

        threads = [threading.Thread(target=work, args=(out,)) for out in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        merged = [v for out in results for v in out]
        assert len(merged) == 80_000
        assert len(set(merged)) == 80_000
        for out in results:  # each thread sees its own values strictly increasing
            assert all(a < b for a, b in itertools.pairwise(out))

    def test_threads_with_a_backwards_clock(self) -> None:
        lock = threading.Lock()
        state = {"t": 10_000_000}

        def jittery() -> int:
            with lock:  # a clock that keeps stepping back by 3 µs every other read
                state["t"] += 1 if state["t"] % 2 else -3
                return state["t"]

        gen = NonceGenerator(clock_us=jittery)
        seen: list[str] = []
        seen_lock = threading.Lock()

        def work() -> None:
            mine = [gen.next_str() for _ in range(5_000)]
            with seen_lock:
                seen.extend(mine)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(seen)) == 40_000

    async def test_tasks(self) -> None:
        gen = NonceGenerator()

        async def work() -> list[str]:
            out = []
            for _ in range(500):
                out.append(gen.next_str())
                await asyncio.sleep(0)
            return out

        batches = await asyncio.gather(*(work() for _ in range(10)))
        ids = [i for batch in batches for i in batch]
        assert len(set(ids)) == 5_000

    def test_generators_share_the_process_sequence(self) -> None:
        a, b = NonceGenerator("a"), NonceGenerator("a")
        values = [g.next_int() for _ in range(1000) for g in (a, b)]
        assert all(x < y for x, y in itertools.pairwise(values))


class TestClientOrderIds:
    """next_str() is a valid Binance newClientOrderId and Bybit orderLinkId."""

    @pytest.mark.parametrize("prefix", ["rxc", "", "my-bot_1", "X" * MAX_PREFIX_LENGTH])
    def test_format(self, prefix: str) -> None:
        gen = NonceGenerator(prefix)
        for _ in range(100):
            cid = gen.next_str()
            assert cid.startswith(prefix)
            assert len(cid) <= MAX_CLIENT_ORDER_ID_LENGTH
            assert BINANCE_ID.match(cid) and BYBIT_ID.match(cid)

    def test_suffix_is_base36_of_next_int(self) -> None:
        gen = NonceGenerator("rxc", clock_us=_scripted_clock([36**2 + 35, 0]))
        assert gen.next_str() == "rxc10z"
        assert int(gen.next_str()[3:], 36) == 36**2 + 36

    def test_longest_prefix_still_fits_far_in_the_future(self) -> None:
        year_4000_us = 64_060_588_800 * 1_000_000
        gen = NonceGenerator("p" * MAX_PREFIX_LENGTH, clock_us=lambda: year_4000_us)
        assert len(gen.next_str()) <= MAX_CLIENT_ORDER_ID_LENGTH

    @pytest.mark.parametrize(
        "prefix", ["has space", "dot.", "ümlaut", "x" * (MAX_PREFIX_LENGTH + 1)]
    )
    def test_invalid_prefix_is_rejected(self, prefix: str) -> None:
        with pytest.raises(ConfigError) as info:
            NonceGenerator(prefix)
        assert info.value.field == "prefix"

    def test_repr(self) -> None:
        assert repr(NonceGenerator("bot")) == "NonceGenerator(prefix='bot')"
