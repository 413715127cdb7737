"""Feed specs of every venue: topics, validation, NotSupported, parsers and sequence keys."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from rxconnector.errors import NotSupportedError, ParseError
from rxconnector.exchanges.base import FeedSpec
from rxconnector.exchanges.binance import feeds as bf
from rxconnector.exchanges.binance.feeds import BinanceFuturesFeeds, BinanceSpotFeeds
from rxconnector.exchanges.bybit import feeds as yf
from rxconnector.exchanges.bybit.feeds import BybitFeeds
from rxconnector.models import Kline, MiniTicker, OrderBook, Ticker

D = Decimal

#: Every feed method name the connector may call, with example arguments after the symbol.
FEED_ARGS: dict[str, tuple[Any, ...]] = {
    "ticker": (),
    "mini_ticker": (),
    "book_ticker": (),
    "trades": (),
    "agg_trades": (),
    "klines": ("1h",),
    "depth": (),
    "diff_depth": (),
    "avg_price": (),
    "mark_price": (),
    "liquidations": (),
    "full_depth": (),
}

ALL_FEED_SETS: list[Any] = [
    BinanceSpotFeeds(),
    BinanceFuturesFeeds(),
    BybitFeeds("spot"),
    BybitFeeds("linear"),
    BybitFeeds("inverse"),
]


def _methods(feeds: Any) -> list[str]:
    return [name for name in FEED_ARGS if hasattr(feeds, name)]


class TestSupportedFeedsTable:
    """SUPPORTED_FEEDS is exactly the set of methods that return a FeedSpec."""

    @pytest.mark.parametrize("feeds", ALL_FEED_SETS, ids=repr)
    def test_table_matches_methods(self, feeds: Any) -> None:
        for name in _methods(feeds):
            call = getattr(feeds, name)
            if name in feeds.supported_feeds:
                spec = call("BTCUSDT", *FEED_ARGS[name])
                assert isinstance(spec, FeedSpec), name
                assert callable(spec.parse)
            else:
                with pytest.raises(NotSupportedError) as info:
                    call("BTCUSDT", *FEED_ARGS[name])
                assert info.value.venue == feeds.venue
                assert info.value.feature.startswith(name)
        assert set(feeds.supported_feeds) <= set(_methods(feeds))

    def test_connector_lookup_names(self) -> None:
        assert bf.SUPPORTED_FEEDS["binance"] is bf.BINANCE_SPOT_SUPPORTED_FEEDS
        assert bf.SUPPORTED_FEEDS["binance_futures"] is bf.BINANCE_FUTURES_SUPPORTED_FEEDS
        for category in ("spot", "linear", "inverse"):
            assert yf.SUPPORTED_FEEDS[category] == BybitFeeds(category).supported_feeds


class TestBinanceSpotFeeds:
    """Lower-case stream names, validated arguments, the right parser per stream."""

    feeds = BinanceSpotFeeds()

    @pytest.mark.parametrize(
        ("feed", "args", "topic"),
        [
            ("ticker", (), "btcusdt@ticker"),
            ("mini_ticker", (), "btcusdt@miniTicker"),
            ("book_ticker", (), "btcusdt@bookTicker"),
            ("trades", (), "btcusdt@trade"),
            ("agg_trades", (), "btcusdt@aggTrade"),
            ("klines", ("1m",), "btcusdt@kline_1m"),
            ("klines", ("1M",), "btcusdt@kline_1M"),
            ("klines", ("1s",), "btcusdt@kline_1s"),
            ("depth", (), "btcusdt@depth20@100ms"),
            ("depth", (5, 1000), "btcusdt@depth5"),
            ("depth", (10, 100), "btcusdt@depth10@100ms"),
            ("diff_depth", (), "btcusdt@depth@100ms"),
            ("diff_depth", (1000,), "btcusdt@depth"),
            ("avg_price", (), "btcusdt@avgPrice"),
        ],
    )
    def test_topics(self, feed: str, args: tuple[Any, ...], topic: str) -> None:
        for symbol in ("BTCUSDT", "btcusdt", "BtcUsdt"):
            assert getattr(self.feeds, feed)(symbol, *args).topic == topic

    def test_invalid_symbol(self) -> None:
        with pytest.raises(ValueError, match=r"did you mean 'BTCUSDT'"):
            self.feeds.ticker("btc usdt")
        with pytest.raises(ValueError, match=r"must match") as info:
            self.feeds.trades("btcusdt@trade")
        assert "did you mean" not in str(info.value)

    def test_invalid_interval_lists_valid(self) -> None:
        with pytest.raises(ValueError, match=r"valid intervals .*1s 1m 3m"):
            self.feeds.klines("BTCUSDT", "7m")

    @pytest.mark.parametrize(("levels", "speed"), [(15, 100), (20, 250), (True, 100), (5, 500)])
    def test_invalid_depth(self, levels: Any, speed: int) -> None:
        with pytest.raises(ValueError, match="must be one of"):
            self.feeds.depth("BTCUSDT", levels, speed)

    def test_invalid_diff_speed(self) -> None:
        with pytest.raises(ValueError, match=r"speed_ms must be one of 100, 1000; got 250"):
            self.feeds.diff_depth("BTCUSDT", 250)

    def test_partial_depth_parser_knows_the_symbol(self, examples: dict[str, Any]) -> None:
        spec = self.feeds.depth("bnbbtc", 5)
        book = spec.parse(examples["binance.spot.ws.partialDepth"], 1.0)
        assert isinstance(book, OrderBook)
        assert book.symbol == "BNBBTC"

    @pytest.mark.parametrize(
        ("feed", "args", "key", "expected"),
        [
            ("trades", (), "binance.spot.ws.trade", 12345),
            ("agg_trades", (), "binance.spot.ws.aggTrade", 12345),
            ("diff_depth", (), "binance.spot.ws.depthUpdate", 160),
            ("book_ticker", (), "binance.spot.ws.bookTicker", 400900217),
            ("depth", (), "binance.spot.ws.partialDepth", 160),
            ("ticker", (), "binance.spot.ws.ticker", 1672515782136),
            ("mini_ticker", (), "binance.spot.ws.miniTicker", 1672515782136),
            ("klines", ("1m",), "binance.spot.ws.kline", 1672515782136),
            ("avg_price", (), "binance.spot.ws.avgPrice", 1693907033000),
        ],
    )
    def test_sequence_keys_and_parsers(
        self, examples: dict[str, Any], feed: str, args: tuple[Any, ...], key: str, expected: int
    ) -> None:
        spec = getattr(self.feeds, feed)("BNBBTC", *args)
        payload = examples[key]
        assert spec.sequence is not None
        assert spec.sequence(payload) == expected
        assert spec.sequence({}) is None
        assert spec.sequence(None) is None
        assert spec.sequence([1, 2]) is None
        assert spec.sequence({**payload, "E": "1", "t": "1", "a": "1", "u": "1"}) in (
            None,
            160,  # partial depth keys on lastUpdateId, untouched here
        )
        assert not spec.many
        spec.parse(payload, 1.0)  # the spec's parser reads its stream's payload

    def test_unsupported(self) -> None:
        with pytest.raises(NotSupportedError, match="binance does not support mark_price"):
            self.feeds.mark_price("BTCUSDT")
        with pytest.raises(NotSupportedError, match="liquidations"):
            self.feeds.liquidations("BTCUSDT")


class TestBinanceFuturesFeeds:
    """USD-M: its own depth speeds, mark price, liquidations; no plain trades, no 1s."""

    feeds = BinanceFuturesFeeds()

    @pytest.mark.parametrize(
        ("feed", "args", "topic"),
        [
            ("ticker", (), "btcusdt@ticker"),
            ("agg_trades", (), "btcusdt@aggTrade"),
            ("book_ticker", (), "btcusdt@bookTicker"),
            ("klines", ("8h",), "btcusdt@kline_8h"),
            ("depth", (), "btcusdt@depth20"),
            ("depth", (5, 100), "btcusdt@depth5@100ms"),
            ("depth", (10, 500), "btcusdt@depth10@500ms"),
            ("diff_depth", (), "btcusdt@depth@100ms"),
            ("diff_depth", (250,), "btcusdt@depth"),
            ("diff_depth", (500,), "btcusdt@depth@500ms"),
            ("mark_price", (), "btcusdt@markPrice@1s"),
            ("mark_price", (False,), "btcusdt@markPrice"),
            ("liquidations", (), "btcusdt@forceOrder"),
        ],
    )
    def test_topics(self, feed: str, args: tuple[Any, ...], topic: str) -> None:
        assert getattr(self.feeds, feed)("BTCUSDT", *args).topic == topic

    def test_no_1s_klines(self) -> None:
        with pytest.raises(ValueError, match="Spot only"):
            self.feeds.klines("BTCUSDT", "1s")

    def test_depth_speeds(self) -> None:
        with pytest.raises(ValueError, match=r"speed_ms must be one of 100, 250, 500; got 1000"):
            self.feeds.diff_depth("BTCUSDT", 1000)

    def test_unsupported(self) -> None:
        with pytest.raises(NotSupportedError, match=r"trades \(use agg_trades\)"):
            self.feeds.trades("BTCUSDT")
        with pytest.raises(NotSupportedError, match="binance_futures does not support avg_price"):
            self.feeds.avg_price("BTCUSDT")

    @pytest.mark.parametrize(
        ("feed", "key", "expected"),
        [
            ("diff_depth", "binance.usdm.ws.depthUpdate", 160),
            ("mark_price", "binance.usdm.ws.markPriceUpdate", 1562305380000),
            ("liquidations", "binance.usdm.ws.forceOrder", 1568014460893),
            ("depth", "binance.usdm.ws.depthUpdate", 160),
        ],
    )
    def test_sequence_keys_and_parsers(
        self, examples: dict[str, Any], feed: str, key: str, expected: int
    ) -> None:
        spec = getattr(self.feeds, feed)("BTCUSDT")
        assert spec.sequence is not None
        assert spec.sequence(examples[key]) == expected
        spec.parse(examples[key], 1.0)

    def test_diff_depth_parser_keeps_pu(self, examples: dict[str, Any]) -> None:
        update = self.feeds.diff_depth("BTCUSDT").parse(
            examples["binance.usdm.ws.depthUpdate"], 1.0
        )
        assert update.prev_final_update_id == 149


class TestBybitFeeds:
    """Bybit topics, both interval spellings, depth topic choice, state sharing per topic."""

    @pytest.mark.parametrize(
        ("feed", "args", "topic"),
        [
            ("ticker", (), "tickers.BTCUSDT"),
            ("mini_ticker", (), "tickers.BTCUSDT"),
            ("book_ticker", (), "orderbook.1.BTCUSDT"),
            ("trades", (), "publicTrade.BTCUSDT"),
            ("klines", ("1h",), "kline.60.BTCUSDT"),
            ("klines", ("60",), "kline.60.BTCUSDT"),
            ("klines", (5,), "kline.5.BTCUSDT"),
            ("klines", ("1M",), "kline.M.BTCUSDT"),
            ("depth", (), "orderbook.50.BTCUSDT"),
            ("depth", (1,), "orderbook.1.BTCUSDT"),
            ("depth", (51,), "orderbook.200.BTCUSDT"),
            ("depth", (1000,), "orderbook.1000.BTCUSDT"),
            ("diff_depth", (), "orderbook.200.BTCUSDT"),
            ("diff_depth", (20,), "orderbook.50.BTCUSDT"),
            ("diff_depth", (1000,), "orderbook.1000.BTCUSDT"),
            ("full_depth", (), "orderbook.full.BTCUSDT"),
        ],
    )
    def test_spot_topics(self, feed: str, args: tuple[Any, ...], topic: str) -> None:
        assert getattr(BybitFeeds("spot"), feed)("btcusdt", *args).topic == topic

    @pytest.mark.parametrize("category", ["linear", "inverse"])
    def test_derivative_topics(self, category: str) -> None:
        feeds = BybitFeeds(category)
        assert feeds.mark_price("BTCUSDT").topic == "tickers.BTCUSDT"
        assert feeds.liquidations("BTCUSDT").topic == "allLiquidation.BTCUSDT"
        with pytest.raises(
            NotSupportedError, match=f"bybit does not support full_depth on {category}"
        ):
            feeds.full_depth("BTCUSDT")

    def test_unsupported(self) -> None:
        feeds = BybitFeeds("spot")
        with pytest.raises(NotSupportedError, match="bybit does not support mark_price on spot"):
            feeds.mark_price("BTCUSDT")
        with pytest.raises(NotSupportedError, match="liquidations on spot"):
            feeds.liquidations("BTCUSDT")
        with pytest.raises(NotSupportedError, match="agg_trades"):
            feeds.agg_trades("BTCUSDT")
        with pytest.raises(NotSupportedError, match="avg_price") as info:
            feeds.avg_price("BTCUSDT")
        assert info.value.venue == "bybit"

    @pytest.mark.parametrize("levels", [0, 1001, 20.0, True, "50"])
    def test_invalid_levels(self, levels: Any) -> None:
        with pytest.raises(ValueError, match="from 1 to 1000"):
            BybitFeeds().depth("BTCUSDT", levels)
        with pytest.raises(ValueError, match="from 1 to 1000"):
            BybitFeeds().diff_depth("BTCUSDT", levels)

    def test_invalid_interval_and_category(self) -> None:
        with pytest.raises(ValueError, match="1 3 5 15 30 60"):
            BybitFeeds().klines("BTCUSDT", "8h")
        with pytest.raises(ValueError, match="category"):
            BybitFeeds("option")

    def test_many_flags(self) -> None:
        feeds = BybitFeeds("linear")
        assert feeds.trades("X").many and feeds.klines("X", "1m").many
        assert feeds.book_ticker("X").many and feeds.mark_price("X").many
        assert feeds.liquidations("X").many
        assert not feeds.ticker("X").many and not feeds.depth("X").many
        assert not feeds.diff_depth("X").many

    def test_sequence_keys(self, examples: dict[str, Any]) -> None:
        feeds = BybitFeeds("linear")
        assert feeds.trades("BTCUSDT").sequence is None  # seq repeats across messages
        book = feeds.diff_depth("BTCUSDT").sequence
        assert book is not None
        assert book(examples["bybit.v5.ws.orderbook.delta"]) == 66544703342
        assert book({"data": {}}) is None and book(None) is None
        ticker = feeds.ticker("BTCUSDT").sequence
        assert ticker is not None
        assert ticker(examples["bybit.v5.ws.tickers.linear_perpetual"]) == 1760325052630
        assert ticker({"ts": "1"}) is None
        kline = feeds.klines("BTCUSDT", "5").sequence
        assert kline is not None and kline(examples["bybit.v5.ws.kline"]) == 1672324988882

    def test_kline_feed_parses_with_canonical_interval(self, examples: dict[str, Any]) -> None:
        (k,) = BybitFeeds().klines("btcusdt", "5m").parse(examples["bybit.v5.ws.kline"], 1.0)
        assert isinstance(k, Kline)
        assert (k.symbol, k.interval) == ("BTCUSDT", "5m")

    def test_late_feed_on_a_streaming_topic_shares_state(self, examples: dict[str, Any]) -> None:
        feeds = BybitFeeds("linear")
        first = feeds.ticker("BTCUSDT")
        first.parse(examples["bybit.v5.ws.tickers.linear_perpetual"], 1.0)
        delta = {
            "topic": "tickers.BTCUSDT",
            "type": "delta",
            "data": {"symbol": "BTCUSDT", "lastPrice": "1.5"},
            "ts": 1760325052731,
        }
        late_ticker = feeds.ticker("BTCUSDT")  # subscribed after the snapshot went by
        late_mini = feeds.mini_ticker("btcusdt")
        ticker = late_ticker.parse(delta, 2.0)
        mini = late_mini.parse(delta, 2.0)
        assert isinstance(ticker, Ticker) and isinstance(mini, MiniTicker)
        assert ticker.last == mini.close == D("1.5")
        assert first.parse(delta, 2.0).last == D("1.5")

    def test_feed_sets_do_not_share_state(self, examples: dict[str, Any]) -> None:
        BybitFeeds("linear").ticker("BTCUSDT").parse(
            examples["bybit.v5.ws.tickers.linear_perpetual"], 1.0
        )
        delta = {"type": "delta", "data": {"symbol": "BTCUSDT", "lastPrice": "1"}, "ts": 2}
        with pytest.raises(ParseError, match="before any snapshot"):
            BybitFeeds("linear").ticker("BTCUSDT").parse(delta, 1.0)

    def test_depth_feeds_of_one_topic_share_the_book(self, examples: dict[str, Any]) -> None:
        feeds = BybitFeeds("spot")
        d20, d30 = feeds.depth("BTCUSDT", 20), feeds.depth("BTCUSDT", 30)
        assert d20.topic == d30.topic == "orderbook.50.BTCUSDT"
        d20.parse(examples["bybit.v5.ws.orderbook.snapshot"], 1.0)
        book = d30.parse(examples["bybit.v5.ws.orderbook.delta"], 2.0)
        assert book.best_bid == D("30247.20")
        assert book.bids[-1][0] == D("16493.00")  # from the snapshot the other feed saw

    def test_inverse_ticker_volumes(self, examples: dict[str, Any]) -> None:
        msg = copy.deepcopy(examples["bybit.v5.ws.tickers.linear_perpetual"])
        t = BybitFeeds("inverse").ticker("BTCUSDT").parse(msg, 1.0)
        assert (t.volume, t.quote_volume) == (D("4936790807.6521"), D("73191.3870"))
