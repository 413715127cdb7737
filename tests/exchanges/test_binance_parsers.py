"""Binance Spot / USD-M payload parsers against the exchanges' own documented examples."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges.binance import parsers as p
from rxconnector.models import (
    AvgPrice,
    BookTicker,
    DepthUpdate,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Ticker,
    Trade,
)

from .helpers import assert_parses_or_parse_error

D = Decimal
RECEIVED = 1_700_000_000_123.5

#: Binance USD-M "Partial Book Depth Streams" response example
#: (developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/
#: Partial-Book-Depth-Streams). Not in examples.json; note the bids are listed low→high.
USDM_PARTIAL_DEPTH: dict[str, Any] = {
    "e": "depthUpdate",
    "E": 1571889248277,
    "T": 1571889248276,
    "s": "BTCUSDT",
    "U": 390497796,
    "u": 390497878,
    "pu": 390497794,
    "b": [
        ["7403.89", "0.002"],
        ["7403.90", "3.906"],
        ["7404.00", "1.428"],
        ["7404.85", "5.239"],
        ["7405.43", "2.562"],
    ],
    "a": [
        ["7405.96", "3.340"],
        ["7406.63", "4.525"],
        ["7407.08", "2.475"],
        ["7407.15", "4.800"],
        ["7407.20", "0.175"],
    ],
}


def usdm_ticker(examples: dict[str, Any]) -> dict[str, Any]:
    """USD-M's 24hrTicker: the Spot payload without best bid/ask (PROTOCOL.md §B, BWEB)."""
    payload = copy.deepcopy(examples["binance.spot.ws.ticker"])
    for key in ("b", "B", "a", "A", "x"):
        del payload[key]
    return payload


def assert_decimals(model: Any, *fields: str) -> None:
    for field in fields:
        assert type(getattr(model, field)) is Decimal, field


class TestTicker:
    """24hrTicker → Ticker, with and without the book fields (Spot vs USD-M)."""

    def test_spot_example(self, examples: dict[str, Any]) -> None:
        t = p.parse_ticker(examples["binance.spot.ws.ticker"], RECEIVED)
        assert t == Ticker(
            symbol="BNBBTC",
            last=D("0.0025"),
            bid=D("0.0024"),
            bid_qty=D("10"),
            ask=D("0.0026"),
            ask_qty=D("100"),
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0010"),
            volume=D("10000"),
            quote_volume=D("18"),
            event_time=1672515782136,
            received_at=RECEIVED,
        )
        assert_decimals(t, "last", "bid", "bid_qty", "ask", "ask_qty", "open", "volume")
        assert str(t.open) == "0.0010"  # the exchange's string, not a float round trip

    def test_usdm_ticker_has_no_book(self, examples: dict[str, Any]) -> None:
        t = p.parse_ticker(usdm_ticker(examples), RECEIVED)
        assert (t.bid, t.bid_qty, t.ask, t.ask_qty) == (None, None, None, None)
        assert t.last == D("0.0025")
        assert t.quote_volume == D("18")

    def test_missing_last_price_is_parse_error(self, examples: dict[str, Any]) -> None:
        payload = dict(examples["binance.spot.ws.ticker"])
        del payload["c"]
        with pytest.raises(
            ParseError, match=r"malformed binance 24hrTicker payload \(missing key 'c'\)"
        ):
            p.parse_ticker(payload, RECEIVED)


class TestMiniTicker:
    """24hrMiniTicker → MiniTicker."""

    def test_example(self, examples: dict[str, Any]) -> None:
        m = p.parse_mini_ticker(examples["binance.spot.ws.miniTicker"], RECEIVED)
        assert m == MiniTicker(
            symbol="BNBBTC",
            close=D("0.0025"),
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0010"),
            volume=D("10000"),
            quote_volume=D("18"),
            event_time=1672515782136,
            received_at=RECEIVED,
        )
        assert_decimals(m, "close", "open", "high", "low", "volume", "quote_volume")


class TestBookTicker:
    """bookTicker → BookTicker; Spot has no event time, so event_time is 0."""

    def test_spot_example(self, examples: dict[str, Any]) -> None:
        b = p.parse_book_ticker(examples["binance.spot.ws.bookTicker"], RECEIVED)
        assert b == BookTicker(
            symbol="BNBUSDT",
            bid=D("25.35190000"),
            bid_qty=D("31.21000000"),
            ask=D("25.36520000"),
            ask_qty=D("40.66000000"),
            update_id=400900217,
            event_time=0,
            received_at=RECEIVED,
        )
        assert b.spread == D("0.01330000")

    def test_usdm_event_time_is_used(self, examples: dict[str, Any]) -> None:
        payload = {**examples["binance.spot.ws.bookTicker"], "e": "bookTicker", "E": 1568014460893}
        assert p.parse_book_ticker(payload, RECEIVED).event_time == 1568014460893


class TestTrades:
    """trade / aggTrade → Trade, with the taker side derived from ``m``."""

    def test_trade_example(self, examples: dict[str, Any]) -> None:
        t = p.parse_trade(examples["binance.spot.ws.trade"], RECEIVED)
        assert t == Trade(
            symbol="BNBBTC",
            trade_id=12345,
            price=D("0.001"),
            quantity=D("100"),
            side="sell",  # m=true: the buyer was the maker, so the taker sold
            time=1672515782136,
            event_time=1672515782136,
            received_at=RECEIVED,
        )
        assert t.notional == D("0.100")

    @pytest.mark.parametrize(("m", "side"), [(True, "sell"), (False, "buy")])
    def test_side_mapping(self, examples: dict[str, Any], m: bool, side: str) -> None:
        for key, parse in (("trade", p.parse_trade), ("aggTrade", p.parse_agg_trade)):
            payload = {**examples[f"binance.spot.ws.{key}"], "m": m}
            assert parse(payload, RECEIVED).side == side

    @pytest.mark.parametrize("m", ["false", "true", 0, 1, None])
    def test_non_boolean_maker_flag_is_parse_error(self, examples: dict[str, Any], m: Any) -> None:
        payload = {**examples["binance.spot.ws.trade"], "m": m}
        with pytest.raises(ParseError, match="JSON boolean"):
            p.parse_trade(payload, RECEIVED)

    def test_agg_trade_example(self, examples: dict[str, Any]) -> None:
        t = p.parse_agg_trade(examples["binance.spot.ws.aggTrade"], RECEIVED)
        assert t == Trade(
            symbol="BNBBTC",
            trade_id=12345,
            price=D("0.001"),
            quantity=D("100"),
            side="sell",
            time=1672515782136,
            event_time=1672515782136,
            received_at=RECEIVED,
            first_trade_id=100,
            last_trade_id=105,
        )


class TestKline:
    """kline → Kline, closed flag from ``k.x``."""

    def test_example(self, examples: dict[str, Any]) -> None:
        k = p.parse_kline(examples["binance.spot.ws.kline"], RECEIVED)
        assert k == Kline(
            symbol="BNBBTC",
            interval="1m",
            open_time=1672515780000,
            close_time=1672515839999,
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0015"),
            close=D("0.0020"),
            volume=D("1000"),
            quote_volume=D("1.0000"),
            trades=100,
            closed=False,
            event_time=1672515782136,
            received_at=RECEIVED,
        )

    def test_closed_candle(self, examples: dict[str, Any]) -> None:
        payload = copy.deepcopy(examples["binance.spot.ws.kline"])
        payload["k"]["x"] = True
        assert p.parse_kline(payload, RECEIVED).closed is True

    def test_string_closed_flag_is_parse_error(self, examples: dict[str, Any]) -> None:
        payload = copy.deepcopy(examples["binance.spot.ws.kline"])
        payload["k"]["x"] = "false"
        with pytest.raises(ParseError):
            p.parse_kline(payload, RECEIVED)


class TestAvgPrice:
    """avgPrice → AvgPrice."""

    def test_example(self, examples: dict[str, Any]) -> None:
        a = p.parse_avg_price(examples["binance.spot.ws.avgPrice"], RECEIVED)
        assert a == AvgPrice(
            symbol="BTCUSDT",
            interval="5m",
            price=D("25776.86000000"),
            last_trade_time=1693907032213,
            event_time=1693907033000,
            received_at=RECEIVED,
        )


class TestDepth:
    """Partial depth → OrderBook and depthUpdate → DepthUpdate (Spot and USD-M with ``pu``)."""

    def test_spot_partial_depth_uses_the_feed_symbol(self, examples: dict[str, Any]) -> None:
        parse = p.partial_depth_parser("BNBBTC")
        book = parse(examples["binance.spot.ws.partialDepth"], RECEIVED)
        assert book == OrderBook(
            symbol="BNBBTC",
            bids=((D("0.0024"), D("10")),),
            asks=((D("0.0026"), D("100")),),
            update_id=160,
            event_time=0,
            received_at=RECEIVED,
        )
        assert book.mid == D("0.0025")

    def test_spot_depth_update(self, examples: dict[str, Any]) -> None:
        u = p.parse_depth_update(examples["binance.spot.ws.depthUpdate"], RECEIVED)
        assert u == DepthUpdate(
            symbol="BNBBTC",
            first_update_id=157,
            final_update_id=160,
            bids=((D("0.0024"), D("10")),),
            asks=((D("0.0026"), D("100")),),
            event_time=1672515782136,
            received_at=RECEIVED,
            prev_final_update_id=None,
        )

    @pytest.mark.parametrize(
        ("key", "symbol"),
        [
            ("binance.usdm.ws.depthUpdate", "BTCUSDT"),
            ("binance.usdm.ws.depthUpdate.connector_post_cm_migration", "BNBUSDT"),
        ],
    )
    def test_usdm_depth_update_keeps_pu(
        self, examples: dict[str, Any], key: str, symbol: str
    ) -> None:
        u = p.parse_depth_update(examples[key], RECEIVED)
        assert (u.symbol, u.first_update_id, u.final_update_id) == (symbol, 157, 160)
        assert u.prev_final_update_id == 149
        assert u.event_time == 123456789
        assert u.bids == ((D("0.0024"), D("10")),)
        assert u.asks == ((D("0.0026"), D("100")),)

    def test_usdm_partial_depth_puts_best_levels_first(self) -> None:
        book = p.parse_futures_partial_depth(USDM_PARTIAL_DEPTH, RECEIVED)
        assert book.symbol == "BTCUSDT"
        assert book.update_id == 390497878
        assert book.event_time == 1571889248277
        assert book.best_bid == D("7405.43")  # the example lists bids low→high
        assert book.best_ask == D("7405.96")
        assert [lvl[0] for lvl in book.bids] == sorted((lvl[0] for lvl in book.bids), reverse=True)
        assert not book.is_crossed

    def test_three_value_level_is_parse_error(self, examples: dict[str, Any]) -> None:
        payload = {**examples["binance.spot.ws.depthUpdate"], "b": [["1", "2", "3"]]}
        with pytest.raises(ParseError, match="depthUpdate"):
            p.parse_depth_update(payload, RECEIVED)

    def test_non_numeric_price_is_parse_error(self, examples: dict[str, Any]) -> None:
        payload = {**examples["binance.spot.ws.partialDepth"], "asks": [["NaN?", "1"]]}
        with pytest.raises(ParseError, match="InvalidOperation"):
            p.partial_depth_parser("BNBBTC")(payload, RECEIVED)


class TestUsdmOnly:
    """markPriceUpdate → MarkPrice and forceOrder → Liquidation."""

    def test_mark_price_example(self, examples: dict[str, Any]) -> None:
        m = p.parse_mark_price(examples["binance.usdm.ws.markPriceUpdate"], RECEIVED)
        assert m == MarkPrice(
            symbol="BTCUSDT",
            mark_price=D("11794.15000000"),
            index_price=D("11784.62659091"),
            estimated_settle_price=D("11784.25641265"),
            funding_rate=D("0.00038167"),
            next_funding_time=1562306400000,
            event_time=1562305380000,
            received_at=RECEIVED,
        )

    def test_mark_price_without_funding(self, examples: dict[str, Any]) -> None:
        payload = {**examples["binance.usdm.ws.markPriceUpdate"], "r": "", "T": 0}
        m = p.parse_mark_price(payload, RECEIVED)
        assert (m.funding_rate, m.next_funding_time) == (None, None)

    def test_force_order_example(self, examples: dict[str, Any]) -> None:
        liq = p.parse_force_order(examples["binance.usdm.ws.forceOrder"], RECEIVED)
        assert liq == Liquidation(
            symbol="BTCUSDT",
            side="sell",
            order_type="LIMIT",
            price=D("9910"),
            quantity=D("0.014"),
            average_price=D("9910"),
            status="FILLED",
            time=1568014460893,
            event_time=1568014460893,
            received_at=RECEIVED,
        )

    def test_unknown_side_is_parse_error(self, examples: dict[str, Any]) -> None:
        payload = copy.deepcopy(examples["binance.usdm.ws.forceOrder"])
        payload["o"]["S"] = "LONG"
        with pytest.raises(ParseError, match="unknown side 'LONG'"):
            p.parse_force_order(payload, RECEIVED)


# Every (parser, documented example) pair: used for the malformed-input sweep below.
CASES: list[tuple[str, Any]] = [
    ("binance.spot.ws.ticker", p.parse_ticker),
    ("binance.spot.ws.miniTicker", p.parse_mini_ticker),
    ("binance.spot.ws.bookTicker", p.parse_book_ticker),
    ("binance.spot.ws.trade", p.parse_trade),
    ("binance.spot.ws.aggTrade", p.parse_agg_trade),
    ("binance.spot.ws.kline", p.parse_kline),
    ("binance.spot.ws.avgPrice", p.parse_avg_price),
    ("binance.spot.ws.partialDepth", p.partial_depth_parser("BNBBTC")),
    ("binance.spot.ws.depthUpdate", p.parse_depth_update),
    ("binance.usdm.ws.depthUpdate", p.parse_depth_update),
    ("binance.usdm.ws.depthUpdate.connector_post_cm_migration", p.parse_depth_update),
    ("binance.usdm.ws.markPriceUpdate", p.parse_mark_price),
    ("binance.usdm.ws.forceOrder", p.parse_force_order),
]

#: Documented Binance WS data payloads deliberately without a parser (no feed uses them).
NOT_PARSED = {
    "binance.spot.ws.referencePrice",
    "binance.spot.ws.blockTrade",
    "binance.spot.ws.ticker_1h",
}


class TestMalformed:
    """Every way to break a documented payload ends in ParseError, never a bare exception."""

    @pytest.mark.parametrize(("key", "parse"), CASES, ids=[c[0] for c in CASES])
    def test_mutations(self, examples: dict[str, Any], key: str, parse: Any) -> None:
        rejected = assert_parses_or_parse_error(parse, examples[key])
        assert rejected > 10  # the sweep really did break required fields

    def test_usdm_partial_depth_mutations(self) -> None:
        assert assert_parses_or_parse_error(p.parse_futures_partial_depth, USDM_PARTIAL_DEPTH)

    def test_parse_error_carries_excerpt_and_cause(self, examples: dict[str, Any]) -> None:
        with pytest.raises(ParseError) as info:
            p.parse_trade({**examples["binance.spot.ws.trade"], "p": None}, RECEIVED)
        assert "BNBBTC" in info.value.excerpt
        assert len(info.value.excerpt) <= ParseError.MAX_EXCERPT
        assert isinstance(info.value.__cause__, TypeError)

    def test_every_documented_data_payload_is_covered(self, examples: dict[str, Any]) -> None:
        data_keys = {
            k
            for k in examples
            if k.startswith(("binance.spot.ws.", "binance.usdm.ws."))
            and isinstance(examples[k], dict)
            and ("e" in examples[k] or "lastUpdateId" in examples[k] or "u" in examples[k])
            and examples[k].get("e") != "serverShutdown"
        }
        covered = {key for key, _ in CASES}
        assert data_keys - covered == NOT_PARSED
