"""Regression tests for payloads found by outside checks (real recordings, the venues'
docs): Bybit level-1 deltas, Bybit ``execution.fast`` and Binance zero-quantity fills."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges.binance import user_stream as us
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import private as pv
from rxconnector.exchanges.bybit.feeds import BybitFeeds
from rxconnector.models import BookTicker, Execution

D = Decimal


def level1(kind: str, u: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    """An ``orderbook.1`` message; ``delta`` ones were sent until March 2025 and are still
    in recordings made before."""
    return {
        "topic": "orderbook.1.BTCUSDT",
        "type": kind,
        "ts": 1_700_000_000_000 + u,
        "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": 9_000 + u},
        "cts": 1_700_000_000_000 + u,
    }


def _tops(parse: Any, *messages: dict[str, Any]) -> list[tuple[Decimal, ...]]:
    out = []
    for message in messages:
        for t in parse(message, 1.0):
            assert isinstance(t, BookTicker)
            out.append((t.bid, t.bid_qty, t.ask, t.ask_qty))
    return out


class TestBybitLevelOneDelta:
    def parser(self) -> Any:
        return BybitFeeds("linear").book_ticker("BTCUSDT").parse

    def test_a_delta_is_merged_into_the_top_of_book(self) -> None:
        parse = self.parser()
        tops = _tops(
            parse,
            level1("snapshot", 1000, [["100.0", "1"]], [["101.0", "2"]]),
            # the best bid left (size 0) and a new one came: one delta says both
            level1("delta", 1001, [["100.0", "0"], ["99.5", "3"]], []),
            # the ask's size changed
            level1("delta", 1002, [], [["101.0", "5"]]),
        )
        assert tops == [
            (D("100.0"), D("1"), D("101.0"), D("2")),
            (D("99.5"), D("3"), D("101.0"), D("2")),
            (D("99.5"), D("3"), D("101.0"), D("5")),
        ]

    def test_no_book_ticker_ever_has_size_zero(self) -> None:
        parse = self.parser()
        tops = _tops(
            parse,
            level1("snapshot", 1000, [["100.0", "1"]], [["101.0", "2"]]),
            level1("delta", 1001, [["100.0", "0"]], []),  # side empty until the next level
            level1("delta", 1002, [["99.0", "4"]], []),
        )
        assert tops == [
            (D("100.0"), D("1"), D("101.0"), D("2")),
            (D("99.0"), D("4"), D("101.0"), D("2")),
        ]
        assert all(q != 0 for top in tops for q in (top[1], top[3]))

    def test_a_delta_before_any_snapshot_is_a_parse_error_not_a_quote(self) -> None:
        parse = self.parser()
        with pytest.raises(ParseError):
            parse(level1("delta", 5, [["100.0", "0"]], [["101.0", "2"]]), 1.0)

    def test_the_stateless_parser_ignores_deltas(self) -> None:
        # it has no book to merge into: a delta's sizes are changes, not a top of book
        assert p.parse_book_ticker(level1("delta", 7, [["100.0", "0"]], [["101.0", "2"]]), 1) == ()


#: Bybit docs, docs/v5/websocket/private/fast-execution.mdx "Stream Example": fewer fields
#: than ``execution`` (no execType, execFee, feeRate, feeCurrency); only trades.
FAST_EXECUTION: dict[str, Any] = {
    "topic": "execution.fast",
    "creationTime": 1716800399338,
    "data": [
        {
            "category": "linear",
            "symbol": "ICPUSDT",
            "execId": "3510f361-0add-5c7b-a2e7-9679810944fc",
            "execPrice": "12.015",
            "execQty": "3000",
            "orderId": "443d63fa-b4c3-4297-b7b1-23bca88b04dc",
            "isMaker": False,
            "orderLinkId": "test-00001",
            "side": "Sell",
            "execTime": "1716800399334",
            "seq": 34771365464,
        }
    ],
}


class TestBybitFastExecution:
    def test_the_documented_example_parses_without_a_fee(self) -> None:
        assert pv.parse_executions(FAST_EXECUTION, 3.0) == [
            Execution(
                symbol="ICPUSDT",
                order_id="443d63fa-b4c3-4297-b7b1-23bca88b04dc",
                client_order_id="test-00001",
                execution_id="3510f361-0add-5c7b-a2e7-9679810944fc",
                side="sell",
                price=D("12.015"),
                quantity=D("3000"),
                fee=None,  # not in the message: unknown, not zero
                fee_asset=None,
                is_maker=False,
                time=1716800399334,
                received_at=3.0,
            )
        ]

    def test_the_regular_topic_still_needs_its_fee(self, examples: dict[str, Any]) -> None:
        message = examples["bybit.v5.ws.private.execution"]
        row = dict(message["data"][0])
        del row["execFee"]
        with pytest.raises(ParseError):
            pv.parse_executions({**message, "data": [row]}, 1.0)


class TestBinanceZeroQuantityFill:
    def test_a_trade_report_of_nothing_is_not_an_execution(self, examples: dict[str, Any]) -> None:
        event = dict(examples["binance.spot.uds.executionReport"]["event"])
        event.update(x="TRADE", X="NEW", l="0.00000000", L="0.00000000", t=-1)
        assert us.parse_execution(event, 1.0) is None
        # the order update itself is still reported
        assert us.parse_execution_report(event, 1.0).last_fill_quantity == 0

    def test_a_real_fill_still_is(self, examples: dict[str, Any]) -> None:
        event = dict(examples["binance.spot.uds.executionReport"]["event"])
        event.update(x="TRADE", X="PARTIALLY_FILLED", l="0.4", L="0.1", t=77)
        fill = us.parse_execution(event, 1.0)
        assert fill is not None and fill.quantity == D("0.4")
