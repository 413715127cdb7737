"""The order-book rule tests, run again with the pure-Python book.

``BookSync`` takes its book from :func:`~rxconnector.exchanges.book.new_local_book`:
the compiled ``CBook`` wherever the extension is built (CI builds it), else
``LocalBook``. So that CI checks both paths in every run, this module re-runs
``test_orderbook_sync``'s rule classes with the factory forced to ``LocalBook`` (the
book tests themselves are parametrized over both, in ``test_book.py`` and
``test_book_tiers.py``). ``TestNeverWrong.test_bybit_depth`` is a method-level
hypothesis test, which hypothesis refuses to run from a second class
(``differing_executors``); its siblings cover the same property for the other rules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import test_orderbook_sync as base

from rxconnector.exchanges import book_sync
from rxconnector.exchanges.book import LocalBook


@pytest.fixture(scope="module", autouse=True)
def pure_python_books() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setattr(book_sync, "new_local_book", LocalBook)
    yield
    patch.undo()


def test_the_swap_is_in_place() -> None:
    assert type(base.BinanceSpotSync(5).book) is LocalBook


class TestBinanceSpotPurePython(base.TestBinanceSpot):
    pass


class TestBinanceFuturesPurePython(base.TestBinanceFutures):
    pass


class TestBybitDepthPurePython(base.TestBybitDepth):
    pass


class TestBybitFullPurePython(base.TestBybitFull):
    pass


class TestNeverWrongPurePython(base.TestNeverWrong):
    test_bybit_depth = None  # type: ignore[assignment]  # see the module docstring


class TestWithVenueParsersPurePython(base.TestWithVenueParsers):
    pass
