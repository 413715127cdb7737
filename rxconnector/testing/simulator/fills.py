"""How many fills (trades) one aggregate trade holds: the simulator's fill model.

When a taker order sweeps a book level, the simulated market splits what it takes into
one or more fills (one per resting maker order) and groups them into one aggregate trade
(Binance's ``aggTrade``: same taker order, same price, same time). How often an
aggregate holds several fills decides what a client pays to recover a trade gap: a gap
whose aggregates are all single fills (``f == l``) is exact from ``aggTrades`` (weight
4); one multi-fill aggregate needs ``historicalTrades`` (weight 25).

Named models (:data:`FILL_MODELS`, chosen with ``SimulatorConfig.fill_model``):

* ``binance_spot`` (the default): fills per aggregate as recorded on Binance Spot, 21,437
  aggregates of 13 symbols (BTCUSDT and ETHUSDT 2023-04 and 2024-08 from hftbacktest's
  example data, 2021 altcoins from cryptofeed's sample data; ``bench_agg_fills.py``,
  sources and method in ``benchmarks/RESULTS.md``, "Recovery", "Fill model from
  recorded data"): 71.6 % single fills, 28.4 % multi-fill. Most aggregates come from the
  two busy symbols, which is what the simulator's market resembles (about 17 aggregates
  per second per symbol, like BTCUSDT); quiet altcoins had fewer multi-fill aggregates.
  Where only plain trades were recorded, fills were grouped by "same time, price and
  side", which can merge two taker orders and so errs on the harsh side.
* ``binance_usdm``: the same measurement on Binance USD-M futures (22,185 aggregates of
  10 symbols): 62.6 % single fills.
* ``binance_spot_quiet``: the quiet Spot symbols of those recordings alone (11 altcoins,
  0.2-1.2 aggregates per second, cryptofeed's 2021 sample data): 51 of 54 aggregates
  single fills (5.6 % multi-fill). A small sample; meant for quiet symbols
  (``SymbolSpec.activity`` below 1, ``SymbolSpec.fill_model``).
* ``stress``: the simulator's original model, 1, 2 or 3 fills with equal probability
  (66.6 % multi-fill aggregates): harsher than any recorded market, kept so recovery
  can still be tested against it. With it the market is the same, tick for tick, as
  before fill models existed.

Bybit's feeds carry no aggregates; the model only shapes how its trades are split.
Tails are cut at 16 fills (the recordings reached 179).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping

import attrs

__all__ = ["FILL_MODELS", "FillModel", "fill_model"]


def _weights(
    _inst: object, _attr: attrs.Attribute[tuple[float, ...]], value: tuple[float, ...]
) -> None:
    if not value or any(not w >= 0 for w in value) or sum(value) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {value!r}")


@attrs.frozen
class FillModel:
    """Fills per aggregate: ``weights[k - 1]`` is the relative frequency of ``k`` fills.

    ``uniform_max`` instead draws ``1..uniform_max`` with equal probability (the
    ``stress`` model); ``source`` says where the numbers come from.
    """

    name: str
    weights: tuple[float, ...] = attrs.field(default=(1.0,), validator=_weights)
    uniform_max: int | None = None
    source: str = ""
    _cum: tuple[float, ...] = attrs.field(init=False, repr=False, eq=False)
    _total: float = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_cum", tuple(itertools.accumulate(self.weights)))
        object.__setattr__(self, "_total", self._cum[-1] + 0.0)

    @property
    def multi_fill_share(self) -> float:
        """Expected share of aggregates with more than one fill (before the quantity cap)."""
        if self.uniform_max is not None:
            return 1 - 1 / self.uniform_max
        return 1 - self.weights[0] / sum(self.weights)

    def draw(self, rng: random.Random, steps: int) -> int:
        """Fills for one aggregate of ``steps`` quantity steps (never more than ``steps``).

        Consumes exactly one draw of ``rng``."""
        if self.uniform_max is not None:
            return rng.randint(1, min(self.uniform_max, steps))
        # exactly what ``rng.choices(range(1, n + 1), cum_weights=self._cum)[0]`` draws
        # (one ``random()``, the same bisection), without its per-call checks: this runs
        # once per aggregate trade
        cum = self._cum
        k = bisect.bisect(cum, rng.random() * self._total, 0, len(cum) - 1) + 1
        return min(k, steps)


_SPOT_SOURCE = (
    "Binance Spot, 21,437 recorded aggregates of 13 symbols (hftbacktest examples "
    "BTCUSDT/ETHUSDT 2023-04, 2024-08; cryptofeed sample_data 2021)"
)
_USDM_SOURCE = (
    "Binance USD-M, 22,185 recorded aggregates of 10 symbols (hftbacktest examples "
    "BTCUSDT/ETHUSDT 2023-04, 2024-08; cryptofeed sample_data 2021)"
)

#: The named fill models (per mille of aggregates with 1, 2, ... 16+ fills).
FILL_MODELS: Mapping[str, FillModel] = {
    "binance_spot": FillModel(
        "binance_spot",
        (715.7, 112.6, 85.4, 30.5, 18.8, 11.6, 6.7, 4.3, 3.4, 2.6, 2.5, 1.2, 1.0, 0.7, 0.7, 2.4),
        source=_SPOT_SOURCE,
    ),
    "binance_usdm": FillModel(
        "binance_usdm",
        (626.1, 173.5, 76.0, 37.3, 24.5, 13.9, 9.4, 8.0, 4.9, 4.3, 4.1, 2.5, 1.8, 1.7, 1.0, 11.0),
        source=_USDM_SOURCE,
    ),
    "binance_spot_quiet": FillModel(
        "binance_spot_quiet",
        (51.0, 2.0, 0.0, 0.0, 0.0, 1.0),
        source="Binance Spot, 54 recorded aggregates of 11 quiet symbols (cryptofeed "
        "sample_data 2021): a small sample",
    ),
    "stress": FillModel(
        "stress",
        uniform_max=3,
        source="uniform 1..3 fills per aggregate: the simulator's original, harsher market",
    ),
}


def fill_model(value: str | FillModel) -> FillModel:
    """A fill model by name (see :data:`FILL_MODELS`), or ``value`` itself."""
    if isinstance(value, FillModel):
        return value
    try:
        return FILL_MODELS[value]
    except (KeyError, TypeError):
        raise ValueError(
            f"fill_model must be one of {sorted(FILL_MODELS)} or a FillModel, got {value!r}"
        ) from None
