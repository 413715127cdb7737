"""The simulator's fast paths compute exactly what the plain code computed.

The market is the contract (``market.py``: given the seed, prices, quantities and ids
depend only on the number of ticks), so a speed-up of its per-tick code must not move a
single draw of its random generator. ``TestMarketPinned`` pins a digest of every event
of 20 symbols x 300 ticks, taken with the code before the speed-ups (the taker count
and the fill count drawn with ``rng.choices``, the best prices read with ``peekitem``);
the other tests check each fast path against the plain expression it replaced.
"""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

import attrs
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.testing.simulator.binance_payloads import SpotPayloads
from rxconnector.testing.simulator.book import ASK, BID, SimBook
from rxconnector.testing.simulator.config import symbol_spec
from rxconnector.testing.simulator.fills import FILL_MODELS
from rxconnector.testing.simulator.market import Market
from rxconnector.testing.simulator.numbers import scaled


def market_digest(fill_model: str | None, activity: float, ticks: int) -> str:
    specs = [symbol_spec(f"S{i}USDT", 1) for i in range(20)]
    if fill_model is not None:
        specs = [attrs.evolve(s, fill_model=fill_model, activity=activity) for s in specs]
    clock = [1_700_000_000_000]
    market = Market(specs, 1, lambda: clock[0])
    digest = hashlib.sha256()
    for _ in range(ticks):
        clock[0] += 1
        for ev in market.tick():
            digest.update(repr(ev).encode())
            for t in ev.trades:
                digest.update(repr((t.price, t.qty)).encode())
    return digest.hexdigest()


class TestMarketPinned:
    """Digests taken before the speed-ups; a change here is a change of the market."""

    def test_default_fill_model(self) -> None:
        assert market_digest(None, 1.0, 300) == DEFAULT

    def test_other_models_and_quiet_symbols(self) -> None:
        assert market_digest("binance_usdm", 0.4, 300) == USDM_QUIET
        assert market_digest("stress", 1.0, 300) == STRESS


class TestFillDraw:
    @given(st.integers(0, 2**32), st.integers(1, 40), st.sampled_from(sorted(FILL_MODELS)))
    @settings(max_examples=200, deadline=None)
    def test_draw_is_the_choices_draw(self, seed: int, steps: int, name: str) -> None:
        model = FILL_MODELS[name]
        fast, plain = random.Random(seed), random.Random(seed)
        for _ in range(20):
            got = model.draw(fast, steps)
            if model.uniform_max is not None:
                want = plain.randint(1, min(model.uniform_max, steps))
            else:
                n = len(model.weights)
                want = min(plain.choices(range(1, n + 1), weights=model.weights)[0], steps)
            assert got == want
        assert fast.getstate() == plain.getstate()


class TestScaled:
    @given(st.integers(-(10**20), 10**20), st.integers(0, 12), st.sampled_from([0, 1, 2, 8]))
    @settings(max_examples=500, deadline=None)
    def test_equals_decimal_formatting(self, value: int, exp: int, decimals: int) -> None:
        places = max(decimals, exp)
        assert scaled(value, exp, decimals) == format(Decimal(value).scaleb(-exp), f".{places}f")


class TestBookReads:
    @given(st.lists(st.tuples(st.integers(1, 60), st.integers(0, 9)), max_size=40))
    @settings(max_examples=200, deadline=None)
    def test_best_top_and_levels_equal_sorted_sides(self, changes: list[tuple[int, int]]) -> None:
        book = SimBook(1, 100)
        for price, qty in changes:
            side = BID if price <= 30 else ASK
            book.apply([(side, price, qty)])
        bids = sorted(book.side(BID).items(), reverse=True)
        asks = sorted(book.side(ASK).items())
        assert book.best_bid() == (bids[0][0] if bids else None)
        assert book.best_ask() == (asks[0][0] if asks else None)
        assert book.top() == (bids[0] if bids else None, asks[0] if asks else None)
        for n in range(len(bids) + len(asks) + 2):
            assert book.levels(BID, n) == bids[:n]
            assert book.levels(ASK, n) == asks[:n]
        assert book.levels(BID) == bids
        assert book.levels(ASK) == asks


DEFAULT = "83c8471e012f43431429c6b5ececea48808564b11f565feae283f7020d76ae59"
USDM_QUIET = "5717d29f0b57d9b26cb8dfdbf6ead3fd015b28273c6bd66051195bd2d3053ee5"
STRESS = "84f142f4287d82e9161657d5d8140c7c1376f555428ad2d589b9644cd59a3804"


class TestTradeFrame:
    def test_trade_json_is_the_encoded_trade_payload(self) -> None:
        specs = [symbol_spec("BTCUSDT", 1), symbol_spec("S7USDT", 1), symbol_spec("ETHBTC", 1)]
        clock = [1_700_000_000_000]
        market = Market(specs, 3, lambda: clock[0])
        payloads = SpotPayloads()
        seen = {False: 0, True: 0}
        for _ in range(200):
            clock[0] += 7
            for ev in market.tick():
                m = market[ev.symbol]
                for t in ev.trades:
                    want = orjson.dumps(payloads.trade(m, t, ev.time + 1))
                    assert payloads.trade_json(m, t, ev.time + 1) == want
                    seen[t.buyer_is_maker] += 1
        assert seen[False] > 100 and seen[True] > 100
