"""Bybit v5 public message parsers and mergers against Bybit's documented examples."""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit.feeds import BybitFeeds
from rxconnector.models import BookTicker, DepthUpdate, Kline, Liquidation, MarkPrice, Trade

from .helpers import assert_parses_or_parse_error

D = Decimal
RECEIVED = 1_700_000_000_456.0

#: Bybit docs, docs/v5/websocket/public/all-liquidation.mdx "Response Example"
#: (bybit-exchange/docs); not in examples.json.
ALL_LIQUIDATION: dict[str, Any] = {
    "topic": "allLiquidation.ROSEUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}],
}


def linear_delta(**fields: str) -> dict[str, Any]:
    """A linear ticker delta (Bybit documents none: shape per §C1 — absent = unchanged)."""
    return {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "data": {"symbol": "BTCUSDT", **fields},
        "cs": 9532239500,
        "ts": 1760325052730,
    }


class TestTickers:
    """tickers → Ticker / MiniTicker, Spot snapshots and linear snapshot + delta."""

    def test_spot_snapshot(self, examples: dict[str, Any]) -> None:
        t = p.ticker_parser(p.BybitTickerMerger())(examples["bybit.v5.ws.tickers.spot"], RECEIVED)
        assert t.symbol == "BTCUSDT"
        assert t.last == D("21109.77")
        assert (t.bid, t.bid_qty, t.ask, t.ask_qty) == (None, None, None, None)
        assert (t.open, t.high, t.low) == (D("20704.93"), D("21426.99"), D("20575"))
        assert t.volume == D("6780.866843")
        assert t.quote_volume == D("141946527.22907118")
        assert t.event_time == 1673853746003
        assert t.received_at == RECEIVED
        assert type(t.last) is Decimal

    def test_linear_perpetual_snapshot(self, examples: dict[str, Any]) -> None:
        t = p.ticker_parser(p.BybitTickerMerger())(
            examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED
        )
        assert (t.bid, t.bid_qty) == (D("66666.60"), D("23789.165"))
        assert (t.ask, t.ask_qty) == (D("66666.70"), D("23775.469"))
        assert t.last == D("66666.60")
        assert t.open == D("79206.20")
        assert t.volume == D("73191.3870")
        assert t.quote_volume == D("4936790807.6521")
        assert t.event_time == 1760325052630

    def test_linear_futures_snapshot(self, examples: dict[str, Any]) -> None:
        t = p.ticker_parser(p.BybitTickerMerger())(
            examples["bybit.v5.ws.tickers.linear_futures"], RECEIVED
        )
        assert t.symbol == "BTC-26DEC25"
        assert (t.bid, t.ask) == (D("111254.50"), D("131001.00"))

    def test_inverse_swaps_volume_and_turnover(self, examples: dict[str, Any]) -> None:
        msg = examples["bybit.v5.ws.tickers.linear_perpetual"]
        t = p.ticker_parser(p.BybitTickerMerger(), inverse=True)(msg, RECEIVED)
        assert t.volume == D("4936790807.6521")  # turnover24h: coin volume on inverse
        assert t.quote_volume == D("73191.3870")  # volume24h: contracts (USD) on inverse

    def test_mini_ticker(self, examples: dict[str, Any]) -> None:
        m = p.mini_ticker_parser(p.BybitTickerMerger())(
            examples["bybit.v5.ws.tickers.spot"], RECEIVED
        )
        assert (m.close, m.open, m.high, m.low) == (
            D("21109.77"),
            D("20704.93"),
            D("21426.99"),
            D("20575"),
        )
        assert (m.volume, m.quote_volume) == (D("6780.866843"), D("141946527.22907118"))
        assert m.event_time == 1673853746003


class TestTickerMerger:
    """Deltas are merged into the last snapshot; a snapshot resets; no snapshot → error."""

    def test_delta_updates_only_the_fields_it_has(self, examples: dict[str, Any]) -> None:
        parse = p.ticker_parser(p.BybitTickerMerger())
        parse(examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED)
        t = parse(linear_delta(lastPrice="66700.00", bid1Price="66699.90"), RECEIVED + 1)
        assert t.last == D("66700.00")
        assert t.bid == D("66699.90")
        assert t.bid_qty == D("23789.165")  # unchanged, from the snapshot
        assert t.ask == D("66666.70")
        assert t.high == D("79266.30")
        assert t.event_time == 1760325052730
        assert t.received_at == RECEIVED + 1

    def test_new_snapshot_replaces_merged_state(self, examples: dict[str, Any]) -> None:
        merger = p.BybitTickerMerger()
        parse = p.ticker_parser(merger)
        snapshot = examples["bybit.v5.ws.tickers.linear_perpetual"]
        parse(snapshot, RECEIVED)
        parse(linear_delta(lastPrice="1.00"), RECEIVED)
        fresh = copy.deepcopy(snapshot)
        del fresh["data"]["bid1Price"]  # absent from the new snapshot: must not survive
        t = parse(fresh, RECEIVED)
        assert t.last == D("66666.60")
        assert t.bid is None

    def test_delta_before_snapshot_is_parse_error(self) -> None:
        parse = p.ticker_parser(p.BybitTickerMerger())
        with pytest.raises(ParseError, match="before any snapshot"):
            parse(linear_delta(lastPrice="1"), RECEIVED)

    def test_reset_forgets(self, examples: dict[str, Any]) -> None:
        merger = p.BybitTickerMerger()
        parse = p.ticker_parser(merger)
        parse(examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED)
        merger.reset("BTCUSDT")
        with pytest.raises(ParseError):
            parse(linear_delta(lastPrice="1"), RECEIVED)
        parse(examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED)
        merger.reset()
        with pytest.raises(ParseError):
            parse(linear_delta(lastPrice="1"), RECEIVED)

    def test_symbols_are_independent(self, examples: dict[str, Any]) -> None:
        parse = p.ticker_parser(p.BybitTickerMerger())
        parse(examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED)
        parse(examples["bybit.v5.ws.tickers.linear_futures"], RECEIVED)
        t = parse(linear_delta(lastPrice="5"), RECEIVED)
        assert (t.symbol, t.last) == ("BTCUSDT", D("5"))
        other = copy.deepcopy(linear_delta(lastPrice="7"))
        other["data"]["symbol"] = "BTC-26DEC25"
        assert parse(other, RECEIVED).bid == D("111254.50")

    def test_messages_are_not_mutated(self, examples: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(examples["bybit.v5.ws.tickers.linear_perpetual"])
        before = copy.deepcopy(snapshot)
        parse = p.ticker_parser(p.BybitTickerMerger())
        parse(snapshot, RECEIVED)
        parse(linear_delta(lastPrice="1"), RECEIVED)
        assert snapshot == before

    def test_applying_a_delta_twice_is_idempotent(self, examples: dict[str, Any]) -> None:
        merger = p.BybitTickerMerger()
        ticker, mini = p.ticker_parser(merger), p.mini_ticker_parser(merger)
        snapshot = examples["bybit.v5.ws.tickers.linear_perpetual"]
        delta = linear_delta(lastPrice="66000.10")
        for parse in (ticker, mini):
            parse(snapshot, RECEIVED)
        assert ticker(delta, RECEIVED).last == mini(delta, RECEIVED).close == D("66000.10")


class TestMarkPrice:
    """tickers (linear/inverse) → MarkPrice, emitted only when a mark field changed."""

    def test_perpetual_snapshot(self, examples: dict[str, Any]) -> None:
        out = p.mark_price_parser(p.BybitTickerMerger())(
            examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED
        )
        assert out == (
            MarkPrice(
                symbol="BTCUSDT",
                mark_price=D("66666.60"),
                index_price=D("115418.19"),
                estimated_settle_price=None,
                funding_rate=D("-0.005"),
                next_funding_time=1760342400000,
                event_time=1760325052630,
                received_at=RECEIVED,
            ),
        )

    def test_dated_future_has_no_funding(self, examples: dict[str, Any]) -> None:
        (m,) = p.mark_price_parser(p.BybitTickerMerger())(
            examples["bybit.v5.ws.tickers.linear_futures"], RECEIVED
        )
        assert (m.funding_rate, m.next_funding_time) == (None, None)
        assert m.mark_price == D("121144.63")
        assert m.estimated_settle_price == D("0.00")

    def test_delta_without_mark_fields_emits_nothing(self, examples: dict[str, Any]) -> None:
        parse = p.mark_price_parser(p.BybitTickerMerger())
        parse(examples["bybit.v5.ws.tickers.linear_perpetual"], RECEIVED)
        assert parse(linear_delta(lastPrice="1", bid1Size="2"), RECEIVED) == ()
        (m,) = parse(linear_delta(markPrice="66001.5"), RECEIVED)
        assert m.mark_price == D("66001.5")
        assert m.index_price == D("115418.19")


class TestOrderbook:
    """orderbook.{depth} / orderbook.full → DepthUpdate; orderbook.1 → BookTicker."""

    def test_snapshot(self, examples: dict[str, Any]) -> None:
        u = p.parse_depth(examples["bybit.v5.ws.orderbook.snapshot"], RECEIVED)
        assert u == DepthUpdate(
            symbol="BTCUSDT",
            first_update_id=18521288,
            final_update_id=18521288,
            bids=((D("16493.50"), D("0.006")), (D("16493.00"), D("0.100"))),
            asks=((D("16611.00"), D("0.029")), (D("16612.00"), D("0.213"))),
            event_time=1672304484978,
            received_at=RECEIVED,
            sequence=7961638724,
            is_snapshot=True,
        )

    def test_delta(self, examples: dict[str, Any]) -> None:
        u = p.parse_depth(examples["bybit.v5.ws.orderbook.delta"], RECEIVED)
        assert not u.is_snapshot
        assert u.first_update_id == u.final_update_id == 177400507
        assert u.sequence == 66544703342
        assert u.event_time == 1687940967466
        assert len(u.bids) == 5 and len(u.asks) == 7
        assert u.bids[-1] == (D("30240.00"), D("0"))
        assert u.asks[0] == (D("30248.70"), D("0"))

    def test_u_equal_1_is_a_snapshot(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.orderbook.delta"])
        msg["data"]["u"] = 1
        assert p.parse_depth(msg, RECEIVED).is_snapshot

    def test_full_depth_delta(self, examples: dict[str, Any]) -> None:
        u = p.parse_depth(examples["bybit.v5.ws.orderbook_full.delta"], RECEIVED)
        assert (u.symbol, u.final_update_id, u.sequence) == ("MNTUSDT", 278547, 1501100579)
        assert u.asks == ()
        assert u.bids[0] == (D("0.4758"), D("2342.47"))
        assert not u.is_snapshot

    def test_book_ticker(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.orderbook.snapshot"])
        msg["topic"] = "orderbook.1.BTCUSDT"
        assert p.parse_book_ticker(msg, RECEIVED) == (
            BookTicker(
                symbol="BTCUSDT",
                bid=D("16493.50"),
                bid_qty=D("0.006"),
                ask=D("16611.00"),
                ask_qty=D("0.029"),
                update_id=18521288,
                event_time=1672304484978,
                received_at=RECEIVED,
            ),
        )

    def test_book_ticker_with_an_empty_side_yields_nothing(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.orderbook.snapshot"])
        msg["data"]["a"] = []
        assert p.parse_book_ticker(msg, RECEIVED) == ()


class TestBookMerger:
    """Snapshot + deltas → the exchange's partial book, best levels first, cut at ``levels``."""

    def test_snapshot_then_delta(self, examples: dict[str, Any]) -> None:
        merger = p.BybitBookMerger()
        parse = merger.parser(50)
        first = parse(examples["bybit.v5.ws.orderbook.snapshot"], RECEIVED)
        assert first.best_bid == D("16493.50") and first.best_ask == D("16611.00")
        assert first.update_id == 18521288
        book = parse(examples["bybit.v5.ws.orderbook.delta"], RECEIVED)
        # The delta adds bids 30247.20 ... 30240.30 above the snapshot's and asks.
        assert book.bids[0] == (D("30247.20"), D("30.028"))
        assert book.bids[-1] == (D("16493.00"), D("0.100"))
        assert D("30240.00") not in {price for price, _ in book.bids}  # size 0: deleted
        assert [price for price, _ in book.asks] == sorted(price for price, _ in book.asks)
        assert book.asks[0] == (D("16611.00"), D("0.029"))
        assert book.update_id == 177400507
        assert book.event_time == 1687940967466

    def test_zero_size_deletes_and_levels_cut(self, examples: dict[str, Any]) -> None:
        merger = p.BybitBookMerger()
        snapshot = examples["bybit.v5.ws.orderbook.snapshot"]
        merger.apply(snapshot, RECEIVED, 50)
        delta = copy.deepcopy(snapshot)
        delta["type"] = "delta"
        delta["data"]["u"] += 1
        delta["data"]["b"] = [["16493.50", "0"]]
        delta["data"]["a"] = [["16611.00", "0.5"], ["16610.00", "1"]]
        book = merger.apply(delta, RECEIVED, 1)
        assert book.bids == ((D("16493.00"), D("0.100")),)
        assert book.asks == ((D("16610.00"), D("1")),)

    def test_delta_before_snapshot_is_parse_error(self, examples: dict[str, Any]) -> None:
        with pytest.raises(ParseError, match="before any snapshot"):
            p.BybitBookMerger().parser(50)(examples["bybit.v5.ws.orderbook.delta"], RECEIVED)

    def test_new_snapshot_replaces_the_book(self, examples: dict[str, Any]) -> None:
        merger = p.BybitBookMerger()
        merger.apply(examples["bybit.v5.ws.orderbook.delta"] | {"type": "snapshot"}, 0.0, 50)
        book = merger.apply(examples["bybit.v5.ws.orderbook.snapshot"], 0.0, 50)
        assert len(book.bids) == 2 and len(book.asks) == 2

    def test_malformed_delta_leaves_the_book_untouched(self, examples: dict[str, Any]) -> None:
        merger = p.BybitBookMerger()
        parse = merger.parser(50)
        before = parse(examples["bybit.v5.ws.orderbook.snapshot"], RECEIVED)
        bad = copy.deepcopy(examples["bybit.v5.ws.orderbook.delta"])
        bad["data"]["a"].append(["oops", "1"])
        with pytest.raises(ParseError):
            parse(bad, RECEIVED)
        after = merger.apply(
            examples["bybit.v5.ws.orderbook.snapshot"] | {"type": "delta"}, RECEIVED, 50
        )
        assert (after.bids, after.asks) == (before.bids, before.asks)

    def test_reset_requires_a_new_snapshot(self, examples: dict[str, Any]) -> None:
        merger = p.BybitBookMerger()
        merger.apply(examples["bybit.v5.ws.orderbook.snapshot"], RECEIVED, 50)
        merger.reset()
        with pytest.raises(ValueError, match="before any snapshot"):
            merger.apply(examples["bybit.v5.ws.orderbook.delta"], RECEIVED, 50)


class TestTrades:
    """publicTrade → several Trades; ``S`` is the taker side; string ids mapped to ints."""

    def test_example(self, examples: dict[str, Any]) -> None:
        (t,) = p.parse_trades(examples["bybit.v5.ws.publicTrade"], RECEIVED)
        assert t == Trade(
            symbol="BTCUSDT",
            trade_id=int("20f43950d8dd5b319112a178eb6023af", 16),
            price=D("16578.50"),
            quantity=D("0.001"),
            side="buy",
            time=1672304486865,
            event_time=1672304486868,
            received_at=RECEIVED,
        )
        assert str(uuid.UUID(int=t.trade_id)) == "20f43950-d8dd-5b31-9112-a178eb6023af"

    def test_several_trades_and_sides(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.publicTrade"])
        second = {**msg["data"][0], "S": "Sell", "i": "2290000000061666327", "p": "16578.00"}
        msg["data"].append(second)
        trades = p.parse_trades(msg, RECEIVED)
        assert [t.side for t in trades] == ["buy", "sell"]
        assert trades[1].trade_id == 2290000000061666327
        assert trades[1].price == D("16578.00")

    def test_unknown_side_is_parse_error(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.publicTrade"])
        msg["data"][0]["S"] = "buy"
        with pytest.raises(ParseError, match="publicTrade"):
            p.parse_trades(msg, RECEIVED)


class TestTradeId:
    """Bybit's string trade ids → stable ints."""

    def test_digits(self) -> None:
        assert p.bybit_trade_id("2290000000061666327") == 2290000000061666327

    def test_uuid_round_trips(self) -> None:
        raw = "20f43950-d8dd-5b31-9112-a178eb6023af"
        assert uuid.UUID(int=p.bybit_trade_id(raw)) == uuid.UUID(raw)

    def test_other_strings_hash_stably(self) -> None:
        a = p.bybit_trade_id("abc-not-a-uuid")
        assert a == p.bybit_trade_id("abc-not-a-uuid")
        assert a != p.bybit_trade_id("abc-not-a-uuiD")
        assert 0 <= a < 2**64
        # Pinned: BLAKE2b-64 is the same in every process (unlike hash()).
        assert a == 0xDA40B8B02F3D28CD

    @pytest.mark.parametrize("raw", ["", None, 1.5, []])
    def test_invalid(self, raw: Any) -> None:
        with pytest.raises((ValueError, TypeError)):
            p.bybit_trade_id(raw)


class TestKline:
    """kline → Klines bound to the feed's symbol, interval in canonical spelling."""

    def test_example(self, examples: dict[str, Any]) -> None:
        (k,) = p.kline_parser("BTCUSDT")(examples["bybit.v5.ws.kline"], RECEIVED)
        assert k == Kline(
            symbol="BTCUSDT",
            interval="5m",
            open_time=1672324800000,
            close_time=1672325099999,
            open=D("16649.5"),
            high=D("16677"),
            low=D("16608"),
            close=D("16677"),
            volume=D("2.081"),
            quote_volume=D("34666.4005"),
            trades=0,
            closed=False,
            event_time=1672324988882,
            received_at=RECEIVED,
        )

    def test_confirmed_candles_and_inverse_volumes(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.kline"])
        msg["data"].append({**msg["data"][0], "confirm": True, "interval": "D"})
        first, second = p.kline_parser("BTCUSD", inverse=True)(msg, RECEIVED)
        assert (first.closed, second.closed) == (False, True)
        assert second.interval == "1d"
        assert (first.volume, first.quote_volume) == (D("34666.4005"), D("2.081"))

    def test_string_confirm_is_parse_error(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.kline"])
        msg["data"][0]["confirm"] = "true"
        with pytest.raises(ParseError, match="kline"):
            p.kline_parser("BTCUSDT")(msg, RECEIVED)

    def test_unknown_interval_is_parse_error(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.kline"])
        msg["data"][0]["interval"] = "7"
        with pytest.raises(ParseError, match="missing key '7'"):
            p.kline_parser("BTCUSDT")(msg, RECEIVED)


class TestLiquidations:
    """allLiquidation → Liquidation with the closing order's side."""

    def test_doc_example(self) -> None:
        (liq,) = p.parse_liquidations(ALL_LIQUIDATION, RECEIVED)
        assert liq == Liquidation(
            symbol="ROSEUSDT",
            side="buy",  # a liquidated short ("Sell" position) is bought back
            order_type="",
            price=D("0.04499"),
            quantity=D("20000"),
            average_price=None,
            status="FILLED",
            time=1739502302929,
            event_time=1739502303204,
            received_at=RECEIVED,
        )

    def test_long_position_liquidation_is_a_sell(self) -> None:
        msg = copy.deepcopy(ALL_LIQUIDATION)
        msg["data"][0]["S"] = "Buy"
        assert p.parse_liquidations(msg, RECEIVED)[0].side == "sell"


CASES: list[tuple[str, Any]] = [
    ("bybit.v5.ws.tickers.spot", lambda: p.ticker_parser(p.BybitTickerMerger())),
    ("bybit.v5.ws.tickers.linear_perpetual", lambda: p.ticker_parser(p.BybitTickerMerger())),
    ("bybit.v5.ws.tickers.linear_futures", lambda: p.mini_ticker_parser(p.BybitTickerMerger())),
    ("bybit.v5.ws.tickers.linear_perpetual", lambda: p.mark_price_parser(p.BybitTickerMerger())),
    ("bybit.v5.ws.orderbook.snapshot", lambda: p.parse_depth),
    ("bybit.v5.ws.orderbook.delta", lambda: p.parse_depth),
    ("bybit.v5.ws.orderbook_full.delta", lambda: p.parse_depth),
    ("bybit.v5.ws.orderbook.snapshot", lambda: p.parse_book_ticker),
    ("bybit.v5.ws.orderbook.snapshot", lambda: p.BybitBookMerger().parser(50)),
    ("bybit.v5.ws.publicTrade", lambda: p.parse_trades),
    ("bybit.v5.ws.kline", lambda: p.kline_parser("BTCUSDT")),
]

#: Documented Bybit public data messages deliberately without a parser.
NOT_PARSED = {"bybit.v5.ws.tickers.option"}  # option category is out of scope


class TestMalformed:
    """Every way to break a documented message ends in ParseError, never a bare exception."""

    @pytest.mark.parametrize(
        ("key", "make"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)]
    )
    def test_mutations(self, examples: dict[str, Any], key: str, make: Any) -> None:
        assert assert_parses_or_parse_error(make(), examples[key]) > 5

    def test_liquidation_mutations(self) -> None:
        assert assert_parses_or_parse_error(p.parse_liquidations, ALL_LIQUIDATION) > 5

    def test_every_documented_public_data_message_is_covered(
        self, examples: dict[str, Any]
    ) -> None:
        data_keys = {
            k
            for k in examples
            if k.startswith("bybit.v5.ws.")
            and not k.startswith("bybit.v5.ws.private.")
            and "topic" in examples[k]
        }
        covered = {key for key, _ in CASES}
        assert data_keys - covered == NOT_PARSED


class TestSymbolMustBeAString:
    """A symbol is a key everywhere downstream (books, views, the bus): a number, a
    list or null there is a malformed message on every path, typed or dict, not a model
    whose ``symbol`` breaks something later."""

    @pytest.mark.parametrize("bad", [5, None, ["BTCUSDT"], {"s": "BTCUSDT"}, True])
    @pytest.mark.parametrize(
        ("name", "feed", "where"),
        [
            ("bybit.v5.ws.publicTrade", "trades", lambda m: m["data"][0]),
            ("bybit.v5.ws.orderbook.snapshot", "diff_depth", lambda m: m["data"]),
            ("bybit.v5.ws.orderbook.snapshot", "depth", lambda m: m["data"]),
            ("bybit.v5.ws.orderbook.snapshot", "order_book", lambda m: m["data"]),
            ("bybit.v5.ws.tickers.spot", "ticker", lambda m: m["data"]),
        ],
    )
    def test_refused_by_the_dict_and_the_typed_reader(
        self, examples: dict[str, Any], name: str, feed: str, where: Any, bad: Any
    ) -> None:
        message = copy.deepcopy(examples[name])
        target = where(message)
        target["s" if "s" in target else "symbol"] = bad
        symbol = message["topic"].rsplit(".", 1)[1]
        feeds = BybitFeeds("spot")
        spec = {
            "trades": lambda: feeds.trades(symbol),
            "diff_depth": lambda: feeds.diff_depth(symbol, 50),
            "depth": lambda: feeds.depth(symbol, 50),
            "order_book": lambda: feeds.book_diffs(symbol, 50),
            "ticker": lambda: feeds.ticker(symbol),
        }[feed]()
        if spec.topic != message["topic"]:
            message["topic"] = spec.topic
        with pytest.raises(ParseError):
            spec.parse(copy.deepcopy(message), 1.0)
        if spec.parse_frame is not None:
            with pytest.raises(ParseError):
                spec.parse_frame(orjson.dumps(message), 1.0)

    @pytest.mark.parametrize("bad", [5, None, ["BTCUSDT"]])
    def test_liquidations(self, bad: Any) -> None:
        message = {
            "topic": "allLiquidation.BTCUSDT",
            "type": "snapshot",
            "ts": 1,
            "data": [{"T": 1, "s": bad, "S": "Buy", "v": "0.1", "p": "100"}],
        }
        with pytest.raises(ParseError):
            p.parse_liquidations(message, 1.0)
