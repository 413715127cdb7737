"""Typed one-pass decoding of Binance trade, aggTrade and bookTicker frames (issue #12).

The typed parsers must give exactly the dict parsers' models for every valid frame, and
the same rules for hostile ones: a non-finite or absurd number, a missing field, a
field of the wrong JSON type, a broken frame, a frame of another topic - each one
``ParseError`` with a bounded excerpt, never another exception.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges._parsing import MAX_DECIMAL_EXPONENT
from rxconnector.exchanges.binance import parsers as bp
from rxconnector.exchanges.binance import wire
from rxconnector.exchanges.binance.feeds import BinanceFuturesFeeds, BinanceSpotFeeds
from rxconnector.exchanges.binance.ws_protocol import BinanceSpotWsProtocol

TRADE = {
    "e": "trade",
    "E": 1700000000123,
    "s": "BTCUSDT",
    "t": 12345,
    "p": "60000.01000000",
    "q": "0.01200000",
    "T": 1700000000120,
    "m": True,
    "M": True,
}
AGG_TRADE = {
    "e": "aggTrade",
    "E": 1700000000123,
    "s": "BTCUSDT",
    "a": 777,
    "p": "60000.01",
    "q": "0.5",
    "f": 100,
    "l": 105,
    "T": 1700000000120,
    "m": False,
    "M": True,
}
BOOK_TICKER = {
    "u": 400900217,
    "s": "BTCUSDT",
    "b": "60000.01000000",
    "B": "31.21000000",
    "a": "60000.02000000",
    "A": "40.66000000",
}
FUTURES_BOOK_TICKER = {**BOOK_TICKER, "e": "bookTicker", "E": 1700000000999, "T": 1700000000998}

CASES = [
    ("btcusdt@trade", TRADE, wire.trade_frame_parser, bp.parse_trade),
    ("btcusdt@aggTrade", AGG_TRADE, wire.agg_trade_frame_parser, bp.parse_agg_trade),
    ("btcusdt@bookTicker", BOOK_TICKER, wire.book_ticker_frame_parser, bp.parse_book_ticker),
    (
        "btcusdt@bookTicker",
        FUTURES_BOOK_TICKER,
        wire.book_ticker_frame_parser,
        bp.parse_book_ticker,
    ),
]
NUMBER_FIELDS = {"trade": ("p", "q"), "aggTrade": ("p", "q"), "bookTicker": ("b", "B", "a", "A")}


def frame(stream: str, data: Any) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def kind_of(stream: str) -> str:
    return stream.split("@")[1]


class TestSameModelsAsTheDictParsers:
    @pytest.mark.parametrize(("stream", "data", "typed", "plain"), CASES)
    def test_equal_models(self, stream: str, data: Any, typed: Any, plain: Any) -> None:
        got = typed(stream)(frame(stream, data), 12.5)
        assert got == plain(data, 12.5)
        assert type(got) is type(plain(data, 12.5))

    @pytest.mark.parametrize(("stream", "data", "typed", "plain"), CASES)
    def test_text_frames_too(self, stream: str, data: Any, typed: Any, plain: Any) -> None:
        assert typed(stream)(frame(stream, data).decode(), 1.0) == plain(data, 1.0)

    def test_unknown_fields_and_key_order_do_not_matter(self) -> None:
        data = {"X": [1, {"y": None}], **dict(reversed(list(TRADE.items())))}
        raw = b'{"data":' + orjson.dumps(data) + b',"stream":"btcusdt@trade","extra":1}'
        assert wire.trade_frame_parser("btcusdt@trade")(raw, 0.0) == bp.parse_trade(TRADE, 0.0)


class TestExponentBounds:
    """The typed parsers accept exactly what the dict parsers accept at 1e±MAX."""

    @pytest.mark.parametrize(("stream", "data", "typed", "plain"), CASES)
    @pytest.mark.parametrize("edge", [0, 1])
    def test_the_edges_agree_with_the_dict_parsers(
        self, stream: str, data: Any, typed: Any, plain: Any, edge: int
    ) -> None:
        top = MAX_DECIMAL_EXPONENT + edge
        for field in NUMBER_FIELDS[kind_of(stream)]:
            for value in (f"9.99e{top}", f"1e-{top}", f"-1.5e{top}", "0", "0E-60"):
                edged = {**data, field: value}
                try:
                    expected = plain(edged, 0.0)
                except ParseError:
                    with pytest.raises(ParseError):
                        typed(stream)(frame(stream, edged), 0.0)
                    assert edge == 1 or value.startswith("0")
                else:
                    assert typed(stream)(frame(stream, edged), 0.0) == expected
                    assert edge == 0 or value.startswith("0")


def hostile_variants(data: dict[str, Any], kind: str) -> list[tuple[str, Any]]:
    variants: list[tuple[str, Any]] = []
    for field in NUMBER_FIELDS[kind]:
        for bad in ("NaN", "nan", "Infinity", "-Infinity", "sNaN", "1e999999", "1e-999", "", "x"):
            variants.append((f"{field}={bad!r}", {**data, field: bad}))
        variants.append((f"{field}=list", {**data, field: ["1"]}))
        variants.append((f"{field}=null", {**data, field: None}))
    for field in list(data):
        if field in ("e", "M", "E", "T") and kind == "bookTicker":
            continue
        if field in ("e", "M"):
            continue
        variants.append((f"missing {field}", {k: v for k, v in data.items() if k != field}))
    if "m" in data:
        variants += [("m='true'", {**data, "m": "true"}), ("m=1", {**data, "m": 1})]
    id_field = {"trade": "t", "aggTrade": "a", "bookTicker": "u"}[kind]
    variants += [
        (f"{id_field}='1'", {**data, id_field: "1"}),
        (f"{id_field}=1.5", {**data, id_field: 1.5}),
        ("s=list", {**data, "s": ["BTCUSDT"]}),
    ]
    return variants


HOSTILE = [
    pytest.param(stream, bad, typed, id=f"{kind_of(stream)}: {name}")
    for stream, data, typed, _plain in CASES[:3]
    for name, bad in hostile_variants(data, kind_of(stream))
]


class TestHostileFrames:
    @pytest.mark.parametrize(("stream", "data", "typed"), HOSTILE)
    def test_each_is_one_bounded_parse_error(self, stream: str, data: Any, typed: Any) -> None:
        with pytest.raises(ParseError) as caught:
            typed(stream)(frame(stream, data), 0.0)
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"{",
            b"[]",
            b"null",
            b'"btcusdt@trade"',
            b'{"stream":"btcusdt@trade"}',
            b'{"stream":"btcusdt@trade","data":[1,2]}',
            b'{"stream":"btcusdt@trade","data":"x"}',
            b'{"stream":5,"data":{}}',
            b'{"stream":"btcusdt@trade","data":' + b"[" * 2000 + b"]" * 2000 + b"}",
            b'{"stream":"btcusdt@trade","data":{"s":"\xff\xfe"}}',
            frame("btcusdt@trade", TRADE) + b"garbage",
            frame("btcusdt@trade", {**TRADE, "pad": "x" * 1_000_000}) + b"]",
        ],
        ids=lambda raw: repr(raw[:40]),
    )
    def test_broken_frames(self, raw: bytes) -> None:
        with pytest.raises(ParseError) as caught:
            wire.trade_frame_parser("btcusdt@trade")(raw, 0.0)
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT

    def test_a_frame_of_another_topic_is_refused(self) -> None:
        parse = wire.trade_frame_parser("btcusdt@trade")
        with pytest.raises(ParseError, match="not this feed's topic"):
            parse(frame("ethusdt@trade", TRADE), 0.0)
        # a repeated "stream" key: the hub peeks the first, the decoder keeps the last
        smuggled = b'{"stream":"btcusdt@trade","stream":"ethusdt@trade","data":' + (
            orjson.dumps(TRADE) + b"}"
        )
        with pytest.raises(ParseError, match="not this feed's topic"):
            parse(smuggled, 0.0)

    @pytest.mark.parametrize(
        "make",
        [wire.trade_frame_parser, wire.agg_trade_frame_parser, wire.book_ticker_frame_parser],
    )
    def test_a_huge_foreign_stream_gives_a_bounded_message(self, make: Any) -> None:
        """The decoder quotes a refused stream whole: the error message stays short."""
        hostile = b'{"stream":"' + b"x" * 1_000_000 + b'","data":{}}'
        with pytest.raises(ParseError, match="not this feed's topic") as caught:
            make("btcusdt@trade")(hostile, 0.0)
        assert len(str(caught.value)) < 1000
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT

    def test_each_topic_checks_its_own_stream(self) -> None:
        """Parsers of two topics share no schema: each accepts only its own frames."""
        btc, eth = (
            wire.trade_frame_parser("btcusdt@trade"),
            wire.trade_frame_parser("ethusdt@trade"),
        )
        assert btc(frame("btcusdt@trade", TRADE), 0.0).trade_id == 12345
        assert eth(frame("ethusdt@trade", TRADE), 0.0).trade_id == 12345
        for parse, other in ((btc, "ethusdt@trade"), (eth, "btcusdt@trade")):
            with pytest.raises(ParseError, match="not this feed's topic"):
                parse(frame(other, TRADE), 0.0)


class TestSequenceKeys:
    def test_frames_and_payloads_give_the_same_key(self) -> None:
        spec = BinanceSpotFeeds().trades("BTCUSDT")
        assert spec.sequence is not None and spec.parse_frame is not None
        assert spec.sequence(TRADE) == spec.sequence(frame(spec.topic, TRADE)) == 12345
        agg = BinanceFuturesFeeds().agg_trades("btcusdt")
        assert agg.sequence is not None
        assert agg.sequence(frame(agg.topic, AGG_TRADE)) == agg.sequence(AGG_TRADE) == 777
        ticker = BinanceSpotFeeds().book_ticker("BTCUSDT")
        assert ticker.sequence is not None
        assert ticker.sequence(frame(ticker.topic, BOOK_TICKER)) == 400900217

    @pytest.mark.parametrize(
        "raw", [b"", b"{", b"[]", b'{"data":{"t":"1"}}', b'{"data":5}', b'{"data":{"t":1.5}}']
    )
    def test_unreadable_keys_are_none(self, raw: bytes) -> None:
        key = BinanceSpotFeeds().trades("BTCUSDT").sequence
        assert key is not None and key(raw) is None

    def test_only_known_fields(self) -> None:
        with pytest.raises(ValueError):
            wire.frame_sequence("x")


class TestDataFrameHead:
    """The bytes the hub finds a raw topic's frames by (no decode)."""

    head = staticmethod(BinanceSpotWsProtocol().data_frame_head)

    def test_every_frame_of_the_topic_starts_with_it(self) -> None:
        head = self.head("btcusdt@trade")
        assert head == b'{"stream":"btcusdt@trade"'
        assert frame("btcusdt@trade", TRADE).startswith(head)

    def test_it_includes_the_closing_quote(self) -> None:
        """So a longer name sharing the prefix is another topic's frame."""
        assert not frame("btcusdt@trade_x", TRADE).startswith(self.head("btcusdt@trade"))

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b'{"result":null,"id":1}',
            b'{ "stream":"btcusdt@trade","data":{}}',
            b'{"data":{},"stream":"btcusdt@trade"}',
            b'{"stream":"ethusdt@trade","data":{}}',
        ],
    )
    def test_other_frames_do_not_start_with_it(self, raw: bytes) -> None:
        assert not raw.startswith(self.head("btcusdt@trade"))
