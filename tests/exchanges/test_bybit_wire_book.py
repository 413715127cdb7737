"""Bybit order-book frames read in one typed pass (``exchanges/bybit/wire_book.py``,
issue #12): equal to the dict parsers on every documented example and on generated
frames, and every hostile frame one bounded ``ParseError``.

Every feed of an ``orderbook.*`` topic is covered, because once one of them has a
``parse_frame`` the hub hands the topic's frames to all of them undecoded:
``diff_depth`` / ``full_depth`` (``DepthUpdate``), ``book_diffs`` (the maintained
book's packed event), ``depth`` (merged ``OrderBook``) and ``book_ticker``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxconnector.errors import ParseError
from rxconnector.exchanges._compiled import cbook
from rxconnector.exchanges.base import FeedSpec
from rxconnector.exchanges.book import LocalBook
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire_book as w
from rxconnector.exchanges.bybit.feeds import BybitFeeds
from rxconnector.exchanges.bybit.merged_book import DictBook, MergedBook, new_merged_book
from rxconnector.exchanges.depth_events import PackedDepthUpdate
from rxconnector.models import DepthUpdate, Level

TOPIC = "orderbook.50.BTCUSDT"
SNAPSHOT = {
    "topic": TOPIC,
    "type": "snapshot",
    "ts": 1672304484978,
    "data": {
        "s": "BTCUSDT",
        "b": [["16493.50", "0.006"], ["16493.00", "0.100"]],
        "a": [["16611.00", "0.029"], ["16612.00", "0.213"]],
        "u": 18521288,
        "seq": 7961638724,
    },
    "cts": 1672304484976,
}
DELTA = {
    **SNAPSHOT,
    "type": "delta",
    "ts": 1672304485000,
    "data": {
        "s": "BTCUSDT",
        "b": [["16493.50", "0"], ["16493.20", "1.5"]],
        "a": [["16611.00", "0.030"]],
        "u": 18521289,
        "seq": 7961638730,
    },
}
DOCUMENTED = (
    "bybit.v5.ws.orderbook.snapshot",
    "bybit.v5.ws.orderbook.delta",
    "bybit.v5.ws.orderbook_full.delta",
)


def raw(message: Any) -> bytes:
    return orjson.dumps(message)


def with_data(**changes: Any) -> dict[str, Any]:
    return {**SNAPSHOT, "data": {**SNAPSHOT["data"], **changes}}


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in SNAPSHOT.items() if k != key}


def without_data(key: str) -> dict[str, Any]:
    return {**SNAPSHOT, "data": {k: v for k, v in SNAPSHOT["data"].items() if k != key}}


def digits(levels: Any) -> list[tuple[str, str]]:
    """Levels as the exact digits and exponents of their Decimals."""
    return [(str(price), str(qty)) for price, qty in levels]


def assert_event_equals(event: PackedDepthUpdate, reference: DepthUpdate) -> None:
    assert type(event) is PackedDepthUpdate
    for field in (
        "symbol",
        "first_update_id",
        "final_update_id",
        "prev_final_update_id",
        "event_time",
        "received_at",
        "sequence",
        "is_snapshot",
    ):
        assert getattr(event, field) == getattr(reference, field), field
    assert digits(event.bids) == digits(reference.bids)
    assert digits(event.asks) == digits(reference.asks)
    assert (len(event.bids), len(event.asks)) == (len(reference.bids), len(reference.asks))


class Readers:
    """Every typed reader of one topic next to its dict twin (fresh mergers each)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.depth_update = w.depth_update_frame_parser(topic)
        self.book = w.book_frame_parser(topic)
        self.typed_merger, self.dict_merger = p.BybitBookMerger(), p.BybitBookMerger()
        self.merged = w.merged_book_frame_parser(topic, self.typed_merger, 20)
        self.merged_dict = self.dict_merger.parser(20)
        self.ticker_merger, self.ticker_dict_merger = p.BybitBookMerger(), p.BybitBookMerger()
        self.ticker = w.book_ticker_frame_parser(topic, self.ticker_merger)
        self.ticker_dict = p.book_ticker_parser(self.ticker_dict_merger)

    def check(self, message: dict[str, Any], received_at: float = 5.0) -> None:
        """Every reader of the frame agrees with its dict twin on ``message``."""
        frame = raw(message)
        decoded = orjson.loads(frame)
        reference = p.parse_depth(decoded, received_at)
        update = self.depth_update(frame, received_at)
        assert update == reference
        assert digits(update.bids) == digits(reference.bids)
        assert type(update.bids) is tuple and type(update.asks) is tuple
        assert_event_equals(self.book(frame, received_at), reference)
        self.check_merged(frame, received_at)

    def check_merged(self, frame: bytes, received_at: float) -> None:
        """The merged readers agree with theirs (same outcome: a book, or a refusal)."""
        decoded = orjson.loads(frame)
        for typed, plain in ((self.merged, self.merged_dict), (self.ticker, self.ticker_dict)):
            try:
                want = plain(decoded, received_at)
            except ParseError:
                with pytest.raises(ParseError):
                    typed(frame, received_at)
                continue
            got = typed(frame, received_at)
            assert got == want
            if typed is self.merged:
                assert digits(got.bids) == digits(want.bids)


class TestDocumentedExamples:
    @pytest.mark.parametrize("key", DOCUMENTED)
    def test_every_reader_equals_the_dict_parser(self, examples: dict[str, Any], key: str) -> None:
        message = examples[key]
        Readers(message["topic"]).check(message)

    def test_snapshot_then_delta_merge_alike(self, examples: dict[str, Any]) -> None:
        readers = Readers("orderbook.50.BTCUSDT")
        readers.check(examples["bybit.v5.ws.orderbook.snapshot"])
        readers.check(examples["bybit.v5.ws.orderbook.delta"])
        assert readers.typed_merger.apply_levels  # the typed side really merged
        book = readers.merged(raw(examples["bybit.v5.ws.orderbook.delta"]), 1.0)
        assert book.update_id == 177400507

    def test_level_one_example_as_book_ticker(self, examples: dict[str, Any]) -> None:
        message = {**examples["bybit.v5.ws.orderbook.snapshot"], "topic": "orderbook.1.BTCUSDT"}
        message["data"] = {**message["data"], "b": message["data"]["b"][:1]}
        message["data"]["a"] = message["data"]["a"][:1]
        readers = Readers("orderbook.1.BTCUSDT")
        readers.check(message)
        (ticker,) = readers.ticker(raw(message), 2.0)
        assert (ticker.bid, ticker.ask) == (Decimal("16493.50"), Decimal("16611.00"))

    def test_the_maintained_books_event(self, examples: dict[str, Any]) -> None:
        message = examples["bybit.v5.ws.orderbook.snapshot"]
        event = w.book_frame_parser(TOPIC)(raw(message), 3.0)
        assert (event.final_update_id, event.sequence, event.is_snapshot) == (
            18521288,
            7961638724,
            True,
        )
        assert event.event_time == message["ts"]


class TestValidFrames:
    def test_u_one_is_a_snapshot_in_every_reader(self) -> None:
        restart = {**DELTA, "data": {**DELTA["data"], "u": 1}}
        Readers(TOPIC).check(restart)
        assert w.book_frame_parser(TOPIC)(raw(restart), 0.0).is_snapshot

    def test_whitespace_key_order_and_extra_keys(self) -> None:
        text = (
            b'{"topic":"orderbook.50.BTCUSDT", "cts": 1, "data": { "seq": 9, "u": 7, '
            b'"x": [1, {"y": null}], "a": [ ], "b": [ [ "1.5" , "2" ] ], "s": "BTCUSDT" }, '
            b'"ts": 3, "type": "delta", "id": "abc"}'
        )
        readers = Readers(TOPIC)
        readers.check(SNAPSHOT)
        assert readers.depth_update(text, 0.0) == p.parse_depth(orjson.loads(text), 0.0)
        event = readers.book(text, 0.0)
        assert (event.final_update_id, event.sequence, event.event_time) == (7, 9, 3)

    def test_numbers_outside_the_fast_grammar(self) -> None:
        odd = with_data(b=[["1E+3", "2"], [".5", "1e-2"]], a=[["30001", "+1.5"]])
        Readers(TOPIC).check(odd)

    def test_json_numbers_as_levels_read_as_the_dict_parser_reads_them(self) -> None:
        """Bybit writes strings; a JSON number is read as ``parse_levels`` reads it
        (the packing contract: same levels, same refusals)."""
        Readers(TOPIC).check(with_data(b=[[16493.5, 2]], a=[[16611, "0.5"]]))

    def test_a_merged_delta_before_any_snapshot_is_refused_like_the_dict_parser(self) -> None:
        readers = Readers(TOPIC)
        readers.check_merged(raw(DELTA), 0.0)  # both refuse
        with pytest.raises(ParseError, match="before any snapshot"):
            readers.merged(raw(DELTA), 0.0)

    def test_an_empty_side_gives_no_book_ticker(self) -> None:
        readers = Readers("orderbook.1.BTCUSDT")
        empty = {**with_data(a=[]), "topic": "orderbook.1.BTCUSDT"}
        readers.check(empty)
        assert list(readers.ticker(raw(empty), 0.0)) == []


# ------------------------------------------------------------------------------------
# Generated frames: typed == dict on every reader
# ------------------------------------------------------------------------------------

_plain_number = st.builds(
    lambda whole, frac: whole if frac is None else f"{whole}.{frac}",
    st.integers(0, 10**9).map(str),
    st.none() | st.text("0123456789", min_size=1, max_size=9),
)
_odd_number = st.sampled_from(["1E+3", "2e-4", ".5", "+1.5", "0.000", "00012.3", "7."])
number = _plain_number | _odd_number
levels = st.lists(st.lists(number, min_size=2, max_size=2), max_size=25)
ids = st.integers(0, 2**63 - 1)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    data = {
        "s": draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "1000PEPEUSDT"])),
        "b": draw(levels),
        "a": draw(levels),
        "u": draw(st.integers(1, 5) | ids),
        "seq": draw(ids),
    }
    message = {
        "topic": TOPIC,
        "type": draw(st.sampled_from(["snapshot", "delta"])),
        "ts": draw(ids),
        "data": data,
        "cts": draw(ids),
    }
    keys = draw(st.permutations(list(message)))
    return {k: message[k] for k in keys}


class TestGeneratedFrames:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(messages(), min_size=1, max_size=6))
    def test_every_reader_equals_its_dict_twin(self, stream: list[dict[str, Any]]) -> None:
        readers = Readers(TOPIC)
        for message in stream:
            readers.check(message, 7.25)


# ------------------------------------------------------------------------------------
# Hostile frames
# ------------------------------------------------------------------------------------

HOSTILE: list[tuple[str, bytes]] = [
    ("not JSON", b"this is not json"),
    ("empty", b""),
    ("truncated", raw(SNAPSHOT)[:-9]),
    ("not an object", b"[1,2,3]"),
    ("a string", b'"orderbook.50.BTCUSDT"'),
    ("another topic", raw({**SNAPSHOT, "topic": "orderbook.50.ETHUSDT"})),
    ("another depth of the symbol", raw({**SNAPSHOT, "topic": "orderbook.200.BTCUSDT"})),
    (
        "a repeated topic key, the last one foreign",
        raw(SNAPSHOT).replace(b'"type"', b'"topic":"publicTrade.BTCUSDT","type"', 1),
    ),
    ("a huge foreign topic", raw({**SNAPSHOT, "topic": "x" * 2_000_000})),
    ("a topic of a list", raw({**SNAPSHOT, "topic": [TOPIC]})),
    *((f"missing {key}", raw(without(key))) for key in ("topic", "type", "ts", "data")),
    *((f"missing data.{key}", raw(without_data(key))) for key in ("s", "b", "a", "u")),
    ("data not an object", raw({**SNAPSHOT, "data": [1, 2]})),
    ("data null", raw({**SNAPSHOT, "data": None})),
    ("an unknown type", raw({**SNAPSHOT, "type": "partial"})),
    ("type a number", raw({**SNAPSHOT, "type": 1})),
    ("ts a string", raw({**SNAPSHOT, "ts": "1672304484978"})),
    ("ts a float", raw({**SNAPSHOT, "ts": 1.5})),
    ("ts NaN", raw(SNAPSHOT).replace(b"1672304484978", b"NaN", 1)),
    ("ts Infinity", raw(SNAPSHOT).replace(b"1672304484978", b"Infinity", 1)),
    ("ts 1e999", raw(SNAPSHOT).replace(b"1672304484978", b"1e999", 1)),
    ("u a string", raw(with_data(u="18521288"))),
    ("u a float", raw(with_data(u=18521288.5))),
    ("u a boolean", raw(with_data(u=True))),
    ("u null", raw(with_data(u=None))),
    ("u negative", raw(with_data(u=-1))),
    ("u beyond int64", raw(with_data(u=2**63))),
    ("u of 40 digits", raw(with_data(u=12345)).replace(b"12345", b"9" * 40)),
    ("seq a string", raw(with_data(seq="7961638724"))),
    ("seq negative", raw(with_data(seq=-7))),
    ("seq 1e999", raw(with_data(seq=12345)).replace(b"12345", b"1e999")),
    ("s a number", raw(with_data(s=5))),
    ("s null", raw(with_data(s=None))),
    ("b a string", raw(with_data(b="16493.50"))),
    ("b an empty string", raw(with_data(b=""))),
    ("b an object", raw(with_data(b={"12": 1}))),
    ("a a number", raw(with_data(a=5))),
    ("a null", raw(with_data(a=None))),
    ("a level of one entry", raw(with_data(b=[["16493.50"]]))),
    ("a level of three entries", raw(with_data(b=[["16493.50", "1", "2"]]))),
    ("a level that is a string", raw(with_data(a=["16611.00"]))),
    ("a level that is an object", raw(with_data(a=[{"p": "1", "q": "2"}]))),
    ("a level that is null", raw(with_data(a=[None]))),
    ("a price that is no number", raw(with_data(b=[["abc", "1"]]))),
    ("a NaN size", raw(with_data(b=[["16493.50", "NaN"]]))),
    ("an infinite price", raw(with_data(a=[["Infinity", "1"]]))),
    ("a negative infinite size", raw(with_data(a=[["16611", "-Infinity"]]))),
    ("an absurd exponent", raw(with_data(a=[["1e999999", "1"]]))),
    ("a price of 1e999", raw(with_data(a=[["1e999", "1"]]))),
    ("a tiny exponent", raw(with_data(b=[["16493", "1e-99"]]))),
    ("a price of a list", raw(with_data(b=[[["16493"], "1"]]))),
    ("a huge price string", raw(with_data(b=[["1" * 1_000_000, "1"]]))),
    ("nested garbage", raw(with_data(b=[[[[[[[[["1"]]]]]]], "1"]]))),
    ("invalid UTF-8 in the symbol", raw(SNAPSHOT).replace(b"BTCUSDT", b"BTC\xff\xfeT")),
    ("invalid UTF-8 in a price", raw(SNAPSHOT).replace(b"16493.50", b"1649\xc3.5")),
    ("a lone surrogate escape", raw(with_data(s="x")).replace(b'"x"', b'"\\ud800"')),
]


def _all_readers() -> list[tuple[str, Any]]:
    readers = Readers(TOPIC)
    readers.merged(raw(SNAPSHOT), 0.0)  # synced, so a delta would merge
    readers.ticker(raw(SNAPSHOT), 0.0)
    return [
        ("diff_depth", readers.depth_update),
        ("book_diffs", readers.book),
        ("depth", readers.merged),
        ("book_ticker", readers.ticker),
    ]


class TestHostileFrames:
    @pytest.mark.parametrize(("case", "frame"), HOSTILE, ids=[case for case, _ in HOSTILE])
    def test_each_is_one_bounded_parse_error_in_every_reader(self, case: str, frame: bytes) -> None:
        for name, read in _all_readers():
            with pytest.raises(ParseError) as caught:
                read(frame, 0.0)
            assert len(str(caught.value)) < 700, (case, name)
            assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT, (case, name)

    @pytest.mark.parametrize(("case", "frame"), HOSTILE, ids=[case for case, _ in HOSTILE])
    def test_what_the_dict_parser_refuses_the_typed_one_refuses(
        self, case: str, frame: bytes
    ) -> None:
        """The other way round too: the typed readers refuse strictly more (never a
        frame the dict parser would have turned into a model of other values)."""
        try:
            message = orjson.loads(frame)
            p.parse_depth(message, 0.0)
        except (orjson.JSONDecodeError, ParseError):
            return
        # Accepted by the dict parser: only the lax conversions (int("5"), int(True),
        # a float u, an unknown type read as a delta, a non-string symbol) may differ.
        assert case in LAX_IN_THE_DICT_PARSER, case

    def test_the_lax_list_names_real_cases(self) -> None:
        assert {case for case, _ in HOSTILE} >= LAX_IN_THE_DICT_PARSER

    def test_the_readers_keep_working_after_refusing(self) -> None:
        readers = _all_readers()
        for _, frame in HOSTILE:
            for _, read in readers:
                with pytest.raises(ParseError):
                    read(frame, 0.0)
        for name, read in readers:
            assert read(raw(SNAPSHOT), 1.0) is not None, name
        assert readers[1][1](raw(SNAPSHOT), 1.0).final_update_id == 18521288

    def test_a_foreign_topic_is_named_as_such(self) -> None:
        with pytest.raises(ParseError, match="topic is not this feed's"):
            w.book_frame_parser(TOPIC)(raw({**SNAPSHOT, "topic": "orderbook.50.ETHUSDT"}), 0.0)

    @pytest.mark.parametrize("frame", [raw(without_data("seq")), raw(with_data(seq=None))])
    def test_the_diff_readers_need_seq_as_the_dict_parser_does(self, frame: bytes) -> None:
        for read in (w.book_frame_parser(TOPIC), w.depth_update_frame_parser(TOPIC)):
            with pytest.raises(ParseError, match="seq"):
                read(frame, 0.0)
        with pytest.raises(ParseError):
            p.parse_depth(orjson.loads(frame), 0.0)

    def test_merged_feeds_do_not_need_seq(self) -> None:
        """Their dict parser never read it (old recordings may lack it)."""
        readers = Readers(TOPIC)
        readers.check_merged(raw(without_data("seq")), 0.0)
        assert readers.merged(raw(without_data("seq")), 0.0).update_id == 18521288


#: Hostile to us, yet the dict parser turns them into a model: its ``int()`` reads
#: strings, floats and booleans, ``type`` other than "snapshot" reads as a delta, and
#: ``s`` is taken as it is. The typed readers refuse them all.
LAX_IN_THE_DICT_PARSER = frozenset(
    {
        "u a string",
        "u a float",
        "u a boolean",
        "u negative",
        "u beyond int64",
        "u of 40 digits",
        "seq a string",
        "seq negative",
        "ts a string",
        "ts a float",
        "an unknown type",
        "type a number",
        "s a number",
        "s null",
        "a repeated topic key, the last one foreign",
        "another topic",
        "another depth of the symbol",
        "a huge foreign topic",
        "a topic of a list",
        "missing topic",
        "a lone surrogate escape",
    }
)


# ------------------------------------------------------------------------------------
# The feed specs
# ------------------------------------------------------------------------------------


def book_specs(feeds: BybitFeeds) -> dict[str, FeedSpec]:
    """Every spec built on an ``orderbook.*`` topic, by feed."""
    specs = {
        "book_ticker": feeds.book_ticker("BTCUSDT"),
        "depth(1)": feeds.depth("BTCUSDT", 1),
        "diff_depth(1)": feeds.diff_depth("BTCUSDT", 1),
        "book_diffs(1)": feeds.book_diffs("BTCUSDT", 1),
        "depth(20)": feeds.depth("BTCUSDT", 20),
        "diff_depth(20)": feeds.diff_depth("BTCUSDT", 20),
        "book_diffs(20)": feeds.book_diffs("BTCUSDT", 20),
        "book_diffs(200)": feeds.book_diffs("BTCUSDT", 200),
        "depth(1000)": feeds.depth("BTCUSDT", 1000),
    }
    if feeds.category == "spot":
        specs["full_depth"] = feeds.full_depth("BTCUSDT")
    return specs


class TestFeedSpecs:
    def test_the_typed_readers_are_used_exactly_with_the_compiled_packer(self) -> None:
        """The measured choice (RESULTS.md): typed with ``_cbook``'s packer, the dict
        parsers with the pure-Python one - for every spec of every book topic alike."""
        assert w.TYPED_IS_FASTER is (cbook is not None)
        for name, spec in book_specs(BybitFeeds("spot")).items():
            assert (spec.parse_frame is not None) is w.TYPED_IS_FASTER, name

    @pytest.mark.parametrize("category", ["spot", "linear", "inverse"])
    def test_every_feed_of_a_book_topic_reads_raw_frames(
        self, category: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(w, "TYPED_IS_FASTER", True)  # as with the compiled core
        feeds = BybitFeeds(category)
        for name, spec in book_specs(feeds).items():
            assert spec.parse_frame is not None, name
            message = {**SNAPSHOT, "topic": spec.topic}
            frame = raw(message)
            assert spec.sequence is not None
            assert spec.sequence(frame) == spec.sequence(message) == 7961638724, name
            from_frame, from_dict = spec.parse_frame(frame, 1.0), spec.parse(message, 1.0)
            if type(from_frame) is PackedDepthUpdate:
                assert_event_equals(from_frame, from_dict)
            else:
                assert from_frame == from_dict, name

    def test_the_sequence_key_of_a_raw_frame_it_cannot_read(self) -> None:
        spec = BybitFeeds("spot").book_diffs("BTCUSDT", 50)
        assert spec.sequence is not None
        for frame in (b"nope", raw(without("data")), raw(with_data(seq="5")), raw([1])):
            assert spec.sequence(frame) is None

    def test_a_frame_the_hub_decoded_takes_the_dict_parser(self) -> None:
        spec = BybitFeeds("spot").book_diffs("BTCUSDT", 50)
        assert type(spec.parse(SNAPSHOT, 0.0)) is DepthUpdate

    def test_the_decoder_is_per_topic(self) -> None:
        decode = w._frame_decoder(TOPIC)
        assert decode is w._frame_decoder(TOPIC)
        with pytest.raises(msgspec.ValidationError):
            decode(raw({**SNAPSHOT, "topic": "orderbook.50.ETHUSDT"}))


# ------------------------------------------------------------------------------------
# The merger's store: the compiled book and the dict book keep the same levels
# ------------------------------------------------------------------------------------

_price = st.integers(1, 40).map(lambda t: Decimal(t) / 4)
_size = st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1), Decimal("2.25")])
_side = st.lists(st.tuples(_price, _size), max_size=12)


class TestMergedBookStores:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.booleans(), _side, _side), min_size=1, max_size=10))
    def test_dict_and_compiled_stores_agree(
        self, messages: list[tuple[bool, list[Level], list[Level]]]
    ) -> None:
        stores: list[MergedBook] = [DictBook(), LocalBook()]
        if cbook is not None:
            stores.append(cbook.CBook())
        for snapshot, bids, asks in messages:
            for store in stores:
                if snapshot:
                    store.load_snapshot(bids, asks)
                else:
                    store.apply(bids, asks)
            tops = {(s.top_bids(5), s.top_asks(5), s.top_bids(100)) for s in stores}
            assert len(tops) == 1, tops
            (top,) = tops
            assert all(qty for _, qty in top[2])  # a zero size is never a level

    def test_the_merger_uses_the_compiled_book_where_it_runs(self) -> None:
        book = p.BybitBookMerger()._book
        assert type(book) is (DictBook if cbook is None else cbook.CBook)
        assert type(new_merged_book()) is type(book)
