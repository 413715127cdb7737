"""The fill model (fills per aggregate trade, per named model) and symbol activity.

The numbers of ``binance_spot``/``binance_usdm`` are measured (``bench_agg_fills.py``);
these tests pin that the market draws from them, that ``stress`` is the original
uniform 1..3 model draw for draw, and that every model keeps the tape consistent
(trades, aggregates and the book they took liquidity from).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from decimal import Decimal

import attrs
import pytest

from rxconnector.testing.simulator import ExchangeSimulator, SimulatorConfig
from rxconnector.testing.simulator.config import symbol_spec
from rxconnector.testing.simulator.fills import FILL_MODELS, FillModel, fill_model
from rxconnector.testing.simulator.market import SymbolMarket


def aggs_of(model: str | FillModel, symbols: int = 4, ticks: int = 1500) -> list[SymbolMarket]:
    markets = [
        SymbolMarket(symbol_spec(f"S{n:04d}USDT"), 7, 0, fills=fill_model(model))
        for n in range(symbols)
    ]
    for tick in range(ticks):
        for m in markets:
            m.tick(tick * 100)
    return markets


def fills_per_agg(markets: list[SymbolMarket]) -> Counter[int]:
    return Counter(a.last_trade_id - a.first_trade_id + 1 for m in markets for a in m.tape.aggs)


class TestModels:
    def test_stress_is_the_original_uniform_draw(self) -> None:
        """Same RNG calls as the market before fill models: ``randint(1, min(3, steps))``."""
        stress = FILL_MODELS["stress"]
        for steps in (1, 2, 3, 50):
            a, b = random.Random(5), random.Random(5)
            drawn = [stress.draw(a, steps) for _ in range(200)]
            assert drawn == [b.randint(1, min(3, steps)) for _ in range(200)]
            assert a.random() == b.random()  # nothing else was consumed

    def test_weighted_draw_consumes_one_number_and_respects_the_quantity(self) -> None:
        spot = FILL_MODELS["binance_spot"]
        a, b = random.Random(3), random.Random(3)
        for _ in range(100):
            spot.draw(a, 100)
            b.random()
        assert a.random() == b.random()
        assert {spot.draw(a, 2) for _ in range(2000)} <= {1, 2}
        assert {spot.draw(a, 1) for _ in range(200)} == {1}

    @pytest.mark.parametrize(
        ("name", "multi", "tolerance"),
        [
            ("binance_spot", 0.284, 0.02),
            ("binance_usdm", 0.374, 0.02),
            ("binance_spot_quiet", 0.056, 0.015),
            ("stress", 0.666, 0.02),
        ],
    )
    def test_market_draws_the_models_distribution(
        self, name: str, multi: float, tolerance: float
    ) -> None:
        counts = fills_per_agg(aggs_of(name))
        total = sum(counts.values())
        assert total > 8_000
        assert abs(1 - counts[1] / total - multi) < tolerance
        assert abs(FILL_MODELS[name].multi_fill_share - multi) < 0.005
        if name == "stress":
            assert set(counts) == {1, 2, 3}
        else:
            weights = FILL_MODELS[name].weights
            assert max(counts) <= len(weights)
            for k in (2, 3):  # each bucket near its recorded share
                assert abs(counts[k] / total - weights[k - 1] / sum(weights)) < 0.015

    def test_same_seed_same_market_per_model_and_models_differ(self) -> None:
        def ids(name: str) -> list[tuple[int, int, int]]:
            (m,) = aggs_of(name, symbols=1, ticks=300)
            return [(a.id, a.first_trade_id, a.last_trade_id) for a in m.tape.aggs]

        assert ids("binance_spot") == ids("binance_spot")
        assert ids("binance_spot") != ids("stress")


class TestConfig:
    def test_default_is_binance_spot_and_names_resolve(self) -> None:
        assert SimulatorConfig().fill_model is FILL_MODELS["binance_spot"]
        assert SimulatorConfig(fill_model="stress").fill_model is FILL_MODELS["stress"]
        custom = FillModel("two", (0.0, 1.0))
        assert SimulatorConfig(fill_model=custom).fill_model is custom

    @pytest.mark.parametrize("bad", ["uniform", "", 3, None])
    def test_unknown_model_is_a_clear_error(self, bad: object) -> None:
        with pytest.raises(ValueError, match="fill_model must be one of"):
            SimulatorConfig(fill_model=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("weights", [(), (-1.0, 2.0), (0.0, 0.0), (float("nan"),)])
    def test_bad_weights_are_refused(self, weights: tuple[float, ...]) -> None:
        with pytest.raises(ValueError, match="weights"):
            FillModel("bad", weights)

    def test_a_symbol_can_have_its_own_model(self) -> None:
        quiet = attrs.evolve(symbol_spec("ETHUSDT"), fill_model="binance_spot_quiet")
        sim = ExchangeSimulator(symbols=("BTCUSDT", quiet), fill_model="stress")
        assert sim.symbol("BTCUSDT").fill_model is FILL_MODELS["stress"]
        assert sim.symbol("ETHUSDT").fill_model is FILL_MODELS["binance_spot_quiet"]
        with pytest.raises(ValueError, match="fill_model must be one of"):
            attrs.evolve(symbol_spec("ETHUSDT"), fill_model="quiet")

    def test_simulator_market_uses_the_configured_model(self) -> None:
        sim = ExchangeSimulator(symbols=("BTCUSDT", "ETHUSDT"), fill_model="stress")
        assert sim.symbol("BTCUSDT").fill_model is FILL_MODELS["stress"]
        for _ in range(400):
            sim.market.tick()
        sizes = {a.last_trade_id - a.first_trade_id + 1 for a in sim.agg_trades("ETHUSDT")}
        assert sizes == {1, 2, 3}


@pytest.mark.parametrize("name", sorted(FILL_MODELS))
def test_tape_and_book_stay_consistent(name: str) -> None:
    """Every model: contiguous ids, aggregates cover exact trade ranges with the right
    quantity, price and side, and each aggregate took its quantity from the book."""
    (m,) = aggs_of(name, symbols=1, ticks=400)
    trades, aggs = m.tape.trades, m.tape.aggs
    assert [t.id for t in trades] == list(range(trades[0].id, trades[0].id + len(trades)))
    assert aggs[0].first_trade_id == trades[0].id
    assert aggs[-1].last_trade_id == trades[-1].id
    for prev, agg in itertools.pairwise(aggs):
        assert agg.id == prev.id + 1
        assert agg.first_trade_id == prev.last_trade_id + 1
    by_id = {t.id: t for t in trades}
    for agg in aggs:
        members = [by_id[i] for i in range(agg.first_trade_id, agg.last_trade_id + 1)]
        assert all(t.qty > 0 for t in members)
        assert sum(t.qty for t in members) == agg.qty
        assert {(t.price, t.agg_id, t.buyer_is_maker, t.time) for t in members} == {
            (agg.price, agg.id, agg.buyer_is_maker, agg.time)
        }
        bids0, asks0 = (dict(s) for s in m.book_at(agg.update_id - 1))
        bids1, asks1 = (dict(s) for s in m.book_at(agg.update_id))
        before, after = (bids0, bids1) if agg.buyer_is_maker else (asks0, asks1)
        assert after.get(agg.price, Decimal(0)) == before[agg.price] - agg.qty


class TestActivity:
    """``SymbolSpec.activity``: a quiet symbol trades on a share of the ticks only."""

    def test_quiet_symbol_trades_at_its_share_of_the_busy_rate(self) -> None:
        busy_spec = symbol_spec("S0001USDT", 7)
        quiet_spec = attrs.evolve(busy_spec, activity=0.05)
        busy = SymbolMarket(busy_spec, 7, 0)
        quiet = SymbolMarket(quiet_spec, 7, 0)
        first_id = quiet.book.update_id
        for tick in range(4000):
            busy.tick(tick * 100)
            quiet.tick(tick * 100)
        ratio = len(quiet.tape.aggs) / len(busy.tape.aggs)
        assert 0.03 < ratio < 0.07
        # the book still moves every tick (one diff event per tick at least)
        assert quiet.book.update_id - first_id >= 4000

    @pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
    def test_activity_outside_0_1_is_refused(self, bad: float) -> None:
        with pytest.raises(ValueError, match="activity"):
            attrs.evolve(symbol_spec("BTCUSDT"), activity=bad)
