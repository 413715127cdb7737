"""Models are frozen, slotted, Decimal-based and derive what users ask for."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

import rxconnector as rxc

D = Decimal


def _book() -> rxc.OrderBook:
    return rxc.OrderBook(
        symbol="BTCUSDT",
        bids=((D("100.0"), D("1")), (D("99.5"), D("2"))),
        asks=((D("100.5"), D("3")),),
        update_id=7,
        event_time=1,
    )


class TestModels:
    def test_frozen_and_slotted(self) -> None:
        """Nobody can mutate what another subscriber sees."""
        book = _book()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            book.update_id = 8  # type: ignore[misc]
        assert not hasattr(book, "__dict__")

    def test_order_book_derivations(self) -> None:
        """best bid/ask, mid and spread come from the top levels."""
        book = _book()
        assert (book.best_bid, book.best_ask) == (D("100.0"), D("100.5"))
        assert book.mid == D("100.25")
        assert book.spread == D("0.5")
        assert not book.is_crossed

    def test_empty_book(self) -> None:
        """An empty side gives None rather than raising."""
        book = rxc.OrderBook("X", (), (), 0, 0)
        assert book.best_bid is None and book.mid is None and book.spread is None

    def test_repr_is_useful(self) -> None:
        """The repr names the class and the fields."""
        trade = rxc.Trade("BTCUSDT", 1, D("1.5"), D("2"), "buy", 10, 11)
        assert repr(trade).startswith("Trade(symbol='BTCUSDT', trade_id=1, price=Decimal('1.5')")
        assert trade.notional == D("3.0")

    def test_balance_total_and_book_ticker(self) -> None:
        """Balance.total and BookTicker.spread/mid are derived."""
        assert rxc.Balance("BTC", D("1"), D("0.5")).total == D("1.5")
        bt = rxc.BookTicker("X", D("10"), D("1"), D("11"), D("1"), 1, 0)
        assert (bt.spread, bt.mid) == (D("1"), D("10.5"))
