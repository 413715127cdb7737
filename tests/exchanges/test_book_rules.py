"""The book-rule catalog ``venues.py`` picks from names every venue rule object.

(That the rule modules import without reactivex/aiohttp is checked for every module
under ``exchanges/`` by ``tests/test_architecture.py``.)
"""

from __future__ import annotations

from rxconnector.exchanges.binance import book_sync as binance
from rxconnector.exchanges.book_rules import BookRule
from rxconnector.exchanges.bybit import book_sync as bybit


def test_every_rule_is_named_in_the_catalog() -> None:
    specs = {rule.spec for rule in BookRule}
    assert specs == {binance.SPOT_RULE, binance.USDM_RULE, bybit.DEPTH_RULE, bybit.FULL_RULE}
    assert {rule.value for rule in BookRule} == {spec.name for spec in specs}


def test_the_catalog_answers_with_the_venue_rule() -> None:
    assert BookRule.BINANCE_SPOT.uses_rest and BookRule.BYBIT_FULL.uses_rest
    assert not BookRule.BYBIT_DEPTH.uses_rest
    assert BookRule.BINANCE_USDM.snapshot_limit(300) == 1000  # USD-M's largest tier
    assert BookRule.BINANCE_SPOT.snapshot_limit(300) == 5000
    assert BookRule.BYBIT_FULL.snapshot_limit(20) == bybit.BYBIT_FULL_SNAPSHOT_LIMIT
    assert isinstance(BookRule.BINANCE_USDM.new_sync(20), binance.BinanceFuturesSync)
