"""The maintained order book's wire path: Binance ``depthUpdate`` frames decoded in one
pass into packed events (issue #12).

A valid frame must give the ids, times and symbol of the dict parser and levels that
leave a book exactly where the dict parser's ``Decimal`` levels leave it; every hostile
frame - another stream, a missing key, a wrong type, an absurd id, a bad number - is one
``ParseError`` with a bounded excerpt, never another exception.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from rxconnector.errors import ParseError
from rxconnector.exchanges.binance import parsers as bp
from rxconnector.exchanges.binance import wire
from rxconnector.exchanges.binance.book_sync import BinanceFuturesSync, BinanceSpotSync
from rxconnector.exchanges.binance.feeds import BinanceFuturesFeeds, BinanceSpotFeeds
from rxconnector.exchanges.book_sync import APPLIED, BUFFERED
from rxconnector.exchanges.depth_events import PackedDepthUpdate
from rxconnector.models import DepthUpdate, OrderBook

TOPIC = "btcusdt@depth@100ms"
SPOT = {
    "e": "depthUpdate",
    "E": 1700000000123,
    "s": "BTCUSDT",
    "U": 1001,
    "u": 1003,
    "b": [["30000.01", "0.50000000"], ["29999.50", "0"], ["29990.00", "1.25"]],
    "a": [["30000.02", "2.00000000"], ["30001.00", "0.00000000"]],
}
USDM = {**SPOT, "T": 1700000000120, "pu": 1000, "ps": "BTCUSDT", "st": 1}


def frame(data: Any, stream: str = TOPIC) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


parse = wire.depth_frame_parser(TOPIC)


def snapshot() -> OrderBook:
    bids = tuple((Decimal(30000) - Decimal(i) / 100, Decimal(1)) for i in range(1, 60))
    asks = tuple((Decimal(30000) + Decimal(i) / 100, Decimal(1)) for i in range(2, 60))
    return OrderBook("BTCUSDT", bids, asks, 1000, 0, 0.0)


def live(sync: BinanceSpotSync | BinanceFuturesSync) -> None:
    """Buffer an empty event ending at the snapshot's id, then load the snapshot."""
    warm = DepthUpdate("BTCUSDT", 1000, 1000, (), (), 0, prev_final_update_id=999)
    assert sync.on_update(warm) is BUFFERED
    assert sync.on_snapshot(snapshot()) is APPLIED


class TestValidFrames:
    @pytest.mark.parametrize("data", [SPOT, USDM], ids=["spot", "usdm"])
    def test_ids_and_times_are_the_dict_parsers(self, data: dict[str, Any]) -> None:
        event = parse(frame(data), 123.5)
        reference = bp.parse_depth_update(data, 123.5)
        assert type(event) is PackedDepthUpdate
        for field in (
            "symbol",
            "first_update_id",
            "final_update_id",
            "prev_final_update_id",
            "event_time",
            "received_at",
        ):
            assert getattr(event, field) == getattr(reference, field), field

    def test_usdm_keeps_pu_and_spot_has_none(self) -> None:
        assert parse(frame(USDM), 0.0).prev_final_update_id == 1000
        assert parse(frame(SPOT), 0.0).prev_final_update_id is None

    @pytest.mark.parametrize(
        ("sync_type", "data"),
        [(BinanceSpotSync, SPOT), (BinanceFuturesSync, USDM)],
        ids=["spot", "usdm"],
    )
    def test_a_book_fed_the_packed_event_equals_one_fed_the_dict_parsers(
        self, sync_type: type[BinanceSpotSync], data: dict[str, Any]
    ) -> None:
        packed, plain = sync_type(20, snapshot_limit=100), sync_type(20, snapshot_limit=100)
        live(packed)
        live(plain)
        assert packed.on_update(parse(frame(data), 7.0)) is APPLIED
        assert plain.on_update(bp.parse_depth_update(data, 7.0)) is APPLIED
        assert packed.view() == plain.view()
        assert packed.view().bids[0] == (Decimal("30000.01"), Decimal("0.5"))
        assert Decimal("29999.50") not in [price for price, _ in packed.view().bids]

    def test_the_official_examples_parse(self, examples: dict[str, Any]) -> None:
        for key in ("binance.spot.ws.depthUpdate", "binance.usdm.ws.depthUpdate"):
            data = examples[key]
            event = parse(frame(data), 0.0)
            assert (event.first_update_id, event.final_update_id) == (data["U"], data["u"])
            assert event.prev_final_update_id == data.get("pu")

    def test_empty_sides_and_whitespace_in_the_levels(self) -> None:
        text = (
            b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
            b'"U":5,"u":5,"b":[ ],"a":[ [ "1.5" , "2" ] ]}}'
        )
        event = parse(text, 0.0)
        assert (event.first_update_id, event.final_update_id) == (5, 5)

    def test_the_packed_sides_count_their_levels(self) -> None:
        """The pre-snapshot buffer's bound counts levels with ``len``."""
        many = {**SPOT, "b": [[f"{30000 - i}.01", "0.12345678"] for i in range(200)], "a": []}
        event = parse(frame(many), 0.0)
        assert (len(event.bids), len(event.asks)) == (200, 0)

    def test_numbers_outside_the_fast_grammar_still_parse(self) -> None:
        """Valid but unusual numbers (exponents, a plus sign, no integer digits) give
        the dict parser's levels, whichever pack_levels runs."""
        odd = {**SPOT, "b": [["1E+3", "2"], [".5", "1e-2"]], "a": [["30001", "+1.5"]]}
        event = parse(frame(odd), 0.0)
        reference = bp.parse_depth_update(odd, 0.0)
        assert tuple(event.bids) == reference.bids
        assert tuple(event.asks) == reference.asks


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in SPOT.items() if k != key}


HOSTILE: list[tuple[str, bytes]] = [
    ("not JSON", b"this is not json"),
    ("truncated", frame(SPOT)[:-7]),
    ("not an object", b"[1,2,3]"),
    ("no data", orjson.dumps({"stream": TOPIC})),
    ("data not an object", frame([1, 2])),
    ("another stream", frame(SPOT, stream="ethusdt@depth@100ms")),
    ("another stream of the symbol", frame(SPOT, stream="btcusdt@depth")),
    (
        "a repeated stream key, the last one foreign",
        b'{"stream":"btcusdt@depth@100ms","stream":"x@depth","data":' + orjson.dumps(SPOT) + b"}",
    ),
    ("a huge foreign stream", frame(SPOT, stream="x" * 2_000_000)),
    *((f"missing {key}", frame(_without(key))) for key in ("E", "s", "U", "u", "b", "a")),
    ("U a string", frame({**SPOT, "U": "1001"})),
    ("u a float", frame({**SPOT, "u": 1003.5})),
    ("U a boolean", frame({**SPOT, "U": True})),
    ("E null", frame({**SPOT, "E": None})),
    ("s a number", frame({**SPOT, "s": 5})),
    ("pu a string", frame({**USDM, "pu": "1000"})),
    ("a negative id", frame({**SPOT, "U": -5})),
    ("an id beyond 64 bits", frame({**SPOT, "u": 12345}).replace(b"12345", b"9" * 30)),
    ("an id beyond int64", frame({**SPOT, "u": 2**63})),
    ("U after u", frame({**SPOT, "U": 1004, "u": 1003})),
    ("b a string", frame({**SPOT, "b": "30000.01"})),
    ("b an empty string", frame({**SPOT, "b": ""})),
    ("b an object", frame({**SPOT, "b": {"12": 1}})),
    ("a a number", frame({**SPOT, "a": 5})),
    ("a null", frame({**SPOT, "a": None})),
    ("a level of one entry", frame({**SPOT, "b": [["30000.01"]]})),
    ("a level of three entries", frame({**SPOT, "b": [["30000.01", "1", "2"]]})),
    ("a level that is a string", frame({**SPOT, "a": ["30000.01"]})),
    ("a level that is null", frame({**SPOT, "a": [None]})),
    ("a price that is no number", frame({**SPOT, "b": [["abc", "1"]]})),
    ("a NaN quantity", frame({**SPOT, "b": [["30000.01", "NaN"]]})),
    ("an infinite price", frame({**SPOT, "a": [["Infinity", "1"]]})),
    ("an absurd exponent", frame({**SPOT, "a": [["1e999999", "1"]]})),
    ("a tiny exponent", frame({**SPOT, "b": [["30000", "1e-99"]]})),
    ("a price of a list", frame({**SPOT, "b": [[["30000"], "1"]]})),
    ("invalid UTF-8", frame(SPOT).replace(b"BTCUSDT", b"BTC\xff\xfeT")),
]


class TestHostileFrames:
    @pytest.mark.parametrize(("case", "raw"), HOSTILE, ids=[case for case, _ in HOSTILE])
    def test_each_is_one_parse_error_with_a_bounded_excerpt(self, case: str, raw: bytes) -> None:
        with pytest.raises(ParseError) as caught:
            parse(raw, 0.0)
        assert len(str(caught.value)) < 700, case
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT, case

    def test_the_parser_keeps_working_after_refusing(self) -> None:
        for _, raw in HOSTILE:
            with pytest.raises(ParseError):
                parse(raw, 0.0)
        assert parse(frame(SPOT), 1.0).final_update_id == 1003

    def test_a_foreign_stream_is_named_as_such(self) -> None:
        with pytest.raises(ParseError, match="not this feed's topic"):
            parse(frame(SPOT, stream="ethusdt@depth@100ms"), 0.0)


class TestPublicDiffDepthFrames:
    """``diff_depth`` shares the book's topic, so it gets raw frames too: they must give
    exactly the dict parser's ``DepthUpdate``."""

    parse_public = staticmethod(wire.depth_update_frame_parser(TOPIC))

    @pytest.mark.parametrize("data", [SPOT, USDM], ids=["spot", "usdm"])
    def test_equal_to_the_dict_parser(self, data: dict[str, Any]) -> None:
        assert self.parse_public(frame(data), 5.0) == bp.parse_depth_update(data, 5.0)

    @pytest.mark.parametrize(
        "raw",
        [
            b"nope",
            b"[1]",
            orjson.dumps({"stream": TOPIC}),
            frame(SPOT, stream="ethusdt@depth@100ms"),
            frame(_without("b")),
            frame({**SPOT, "a": [["NaN", "1"]]}),
        ],
    )
    def test_hostile_frames_are_parse_errors(self, raw: bytes) -> None:
        with pytest.raises(ParseError):
            self.parse_public(raw, 0.0)


class TestFeedSpecs:
    @pytest.mark.parametrize("feeds", [BinanceSpotFeeds(), BinanceFuturesFeeds()])
    def test_book_and_diff_depth_share_the_topic_and_both_read_raw_frames(
        self, feeds: BinanceSpotFeeds
    ) -> None:
        book, public = feeds.book_diffs("BTCUSDT", 20), feeds.diff_depth("BTCUSDT")
        assert book.topic == public.topic == TOPIC
        assert book.parse_frame is not None and public.parse_frame is not None
        data = USDM if isinstance(feeds, BinanceFuturesFeeds) else SPOT
        assert type(book.parse_frame(frame(data), 0.0)) is PackedDepthUpdate
        assert type(public.parse_frame(frame(data), 0.0)) is DepthUpdate
        # a frame the hub decoded itself (written otherwise) takes the dict parser
        assert type(book.parse(data, 0.0)) is DepthUpdate
        for spec in (book, public):
            assert spec.sequence is not None
            assert spec.sequence(frame(data)) == 1003
            assert spec.sequence(data) == 1003
