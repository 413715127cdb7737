"""Typed one-pass reading of Bybit ``tickers`` frames for ``ticker``, ``mini_ticker`` and
``mark_price`` (issue #12).

The three feeds share one merger per topic, so the typed path is checked as a whole
against the dict parsers: the same stream of snapshots and deltas (valid, malformed,
raw or decoded, seen by any subset of the feeds) must give every feed the same models
and refuse the same frames, with one bounded ``ParseError`` each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.errors import ParseError
from rxconnector.exchanges.base import FeedSpec
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire_tickers
from rxconnector.exchanges.bybit.feeds import BybitFeeds

from .helpers import mutations

FEEDS = ("ticker", "mini_ticker", "mark_price")
TOPIC = "tickers.BTCUSDT"


def frame(message: Any) -> bytes:
    """As Bybit writes it (``topic`` first, no spaces); integers of any size."""
    return json.dumps(message, separators=(",", ":")).encode()


def outcome(parse: Callable[[Any, float], Any], payload: Any) -> tuple[str, Any]:
    """``("ok", models)`` or ``("refused", None)``; nothing but ParseError escapes."""
    try:
        result = parse(payload, 9.5)
    except ParseError as exc:
        assert len(exc.excerpt) <= ParseError.MAX_EXCERPT
        return "refused", None
    return "ok", list(result) if isinstance(result, (list, tuple)) else result


def feeds_of(category: str) -> tuple[str, ...]:
    return FEEDS[:2] if category == "spot" else FEEDS


class Pair:
    """The library's feeds of one topic (typed) beside today's dict parsers on their own
    merger: every frame goes to the same feeds of both, in the same order."""

    def __init__(self, category: str, symbol: str = "BTCUSDT") -> None:
        inverse = category == "inverse"
        library = BybitFeeds(category)
        self.specs: dict[str, FeedSpec] = {
            f: getattr(library, f)(symbol) for f in feeds_of(category)
        }
        merger = p.BybitTickerMerger()
        self.plain: dict[str, Callable[[Any, float], Any]] = {
            "ticker": p.ticker_parser(merger, inverse=inverse),
            "mini_ticker": p.mini_ticker_parser(merger, inverse=inverse),
            "mark_price": p.mark_price_parser(merger),
        }

    def deliver(self, raw: bytes, feeds: tuple[str, ...], *, decoded: bool = False) -> None:
        """``raw`` to ``feeds``: as bytes to ``parse_frame`` (a raw topic), or decoded to
        ``parse`` (a frame the hub decoded); the dict parsers always get it decoded."""
        for feed in feeds:
            spec = self.specs[feed]
            assert spec.parse_frame is not None
            if decoded:
                got = outcome(spec.parse, orjson.loads(raw))
            else:
                got = outcome(spec.parse_frame, raw)
            want = outcome(self.plain[feed], orjson.loads(raw))
            assert got == want, (feed, raw[:300])


def delta(**data: Any) -> dict[str, Any]:
    return {"topic": TOPIC, "type": "delta", "data": {"symbol": "BTCUSDT", **data},
            "cs": 1, "ts": 1760325052730}  # fmt: skip


class TestDocumentedExamples:
    @pytest.mark.parametrize(
        ("key", "category"),
        [
            ("bybit.v5.ws.tickers.spot", "spot"),
            ("bybit.v5.ws.tickers.linear_perpetual", "linear"),
            ("bybit.v5.ws.tickers.linear_futures", "linear"),
            ("bybit.v5.ws.tickers.linear_perpetual", "inverse"),
            ("bybit.v5.ws.tickers.option", "linear"),  # no prevPrice24h: refused alike
        ],
    )
    def test_every_feed_equals_the_dict_parser(
        self, examples: dict[str, Any], key: str, category: str
    ) -> None:
        message = examples[key]
        pair = Pair(category, message["data"]["symbol"])
        pair.deliver(frame(message), feeds_of(category))
        follow = delta(lastPrice="1.5", markPrice="2")
        follow["topic"], follow["data"]["symbol"] = message["topic"], message["data"]["symbol"]
        pair.deliver(frame(follow), feeds_of(category))

    def test_models_are_decimal_and_inverse_swaps_volumes(self, examples: dict[str, Any]) -> None:
        message = examples["bybit.v5.ws.tickers.linear_perpetual"]
        linear, inverse = BybitFeeds("linear"), BybitFeeds("inverse")
        a = linear.ticker("BTCUSDT").parse_frame(frame(message), 0.0)  # type: ignore[misc]
        b = inverse.ticker("BTCUSDT").parse_frame(frame(message), 0.0)  # type: ignore[misc]
        assert type(a.last) is Decimal and a.volume == Decimal("73191.3870")
        assert (b.volume, b.quote_volume) == (a.quote_volume, a.volume)

    def test_a_dated_future_has_no_funding(self, examples: dict[str, Any]) -> None:
        spec = BybitFeeds("linear").mark_price("BTC-26DEC25")
        assert spec.parse_frame is not None
        (mark,) = spec.parse_frame(frame(examples["bybit.v5.ws.tickers.linear_futures"]), 0.0)
        assert (mark.funding_rate, mark.next_funding_time) == (None, None)
        assert mark.estimated_settle_price == Decimal("0.00")


class TestMutations:
    @pytest.mark.parametrize(
        ("key", "category"),
        [
            ("bybit.v5.ws.tickers.spot", "spot"),
            ("bybit.v5.ws.tickers.linear_perpetual", "linear"),
            ("bybit.v5.ws.tickers.linear_futures", "inverse"),
        ],
    )
    def test_every_one_field_mutation_agrees_and_so_does_the_next_delta(
        self, examples: dict[str, Any], key: str, category: str
    ) -> None:
        """Each field deleted or set to null, "", "abc", [], {}, true, [["1"]], 1.5:
        the snapshot, and then a good delta and a mark-only delta, agree feed by feed
        (a bad number merged stays in the state and poisons the feeds that read it)."""
        message = examples[key]
        symbol = message["data"]["symbol"]
        for label, mutated in mutations(message):
            if isinstance(mutated, dict) and mutated.get("topic") != message["topic"]:
                for feed in feeds_of(category):
                    parse_frame = getattr(BybitFeeds(category), feed)(symbol).parse_frame
                    assert outcome(parse_frame, frame(mutated)) == ("refused", None), label
                continue
            pair = Pair(category, symbol)
            pair.deliver(frame(mutated), feeds_of(category))
            for follow in (delta(lastPrice="2.5", bid1Size="3"), delta(markPrice="7")):
                follow["topic"], follow["data"]["symbol"] = message["topic"], symbol
                pair.deliver(frame(follow), feeds_of(category))


class TestSequences:
    def test_deltas_merge_into_the_snapshot(self, examples: dict[str, Any]) -> None:
        pair = Pair("linear")
        pair.deliver(frame(examples["bybit.v5.ws.tickers.linear_perpetual"]), FEEDS)
        for step in (
            delta(lastPrice="66700.1", volume24h="73200"),
            delta(bid1Price="66700.0", bid1Size="0.5"),  # no mark field: mark emits nothing
            delta(markPrice="66699.9", fundingRate="0.0001", nextFundingTime="1760371200000"),
            delta(lastPrice="66700.1"),  # the same value again
        ):
            pair.deliver(frame(step), FEEDS)

    def test_a_bad_number_poisons_only_its_readers_until_replaced(
        self, examples: dict[str, Any]
    ) -> None:
        pair = Pair("linear")
        pair.deliver(frame(examples["bybit.v5.ws.tickers.linear_perpetual"]), FEEDS)
        for step in (
            delta(markPrice="NaN"),  # mark refused, ticker fine
            delta(lastPrice="1e999"),  # ticker and mini refused now, mark still
            delta(indexPrice="1"),
            delta(markPrice="5", lastPrice="6"),  # all healed
            delta(bid1Price=""),  # optional: None
            delta(highPrice24h=""),  # required: refused
            delta(highPrice24h="7"),
        ):
            pair.deliver(frame(step), FEEDS)

    def test_a_delta_before_any_snapshot_is_refused(self) -> None:
        Pair("linear").deliver(frame(delta(lastPrice="1")), FEEDS)

    def test_decoded_messages_between_raw_frames(self, examples: dict[str, Any]) -> None:
        """A message the hub decoded (``parse``) moves the shared merger too: the typed
        feeds must not keep numbers from before it."""
        pair = Pair("linear")
        pair.deliver(frame(examples["bybit.v5.ws.tickers.linear_perpetual"]), FEEDS)
        pair.deliver(frame(delta(lastPrice="100")), FEEDS)
        pair.deliver(frame(delta(lastPrice="200", markPrice="3")), FEEDS, decoded=True)
        pair.deliver(frame(delta(volume24h="9")), FEEDS)
        pair.deliver(frame(delta(lastPrice="300")), ("ticker",), decoded=True)
        pair.deliver(frame(delta(bid1Size="4")), FEEDS)

    def test_a_feed_that_missed_frames_reads_everything_again(
        self, examples: dict[str, Any]
    ) -> None:
        """mini_ticker subscribed late (or away for a while): the topic went on without
        it, so its previous numbers are stale."""
        pair = Pair("linear")
        pair.deliver(frame(examples["bybit.v5.ws.tickers.linear_perpetual"]), FEEDS)
        pair.deliver(frame(delta(lastPrice="100")), ("ticker", "mark_price"))
        pair.deliver(frame(delta(prevPrice24h="50")), ("ticker",))
        pair.deliver(frame(delta(volume24h="8")), FEEDS)

    def test_the_same_frame_twice_and_another_symbol(self, examples: dict[str, Any]) -> None:
        pair = Pair("linear")
        snapshot = frame(examples["bybit.v5.ws.tickers.linear_perpetual"])
        pair.deliver(snapshot, FEEDS)
        again = frame(delta(lastPrice="11"))
        pair.deliver(again, FEEDS)
        pair.deliver(again, FEEDS)
        other = snapshot.replace(b'"symbol":"BTCUSDT"', b'"symbol":"ETHUSDT"')
        pair.deliver(other, FEEDS)  # a hostile frame of another symbol on this topic
        pair.deliver(frame(delta(lastPrice="12")), FEEDS)

    def test_one_decode_for_the_three_feeds(self, examples: dict[str, Any]) -> None:
        feeds = BybitFeeds("linear")
        specs = [getattr(feeds, f)("BTCUSDT") for f in FEEDS]
        frames = feeds._ticker_reader(TOPIC)
        calls: list[Any] = []
        decode = frames._decode

        def counting(raw: Any) -> Any:
            calls.append(raw)
            return decode(raw)

        frames._decode = counting
        raw = frame(examples["bybit.v5.ws.tickers.linear_perpetual"])
        for spec in specs:
            assert spec.parse_frame is not None
            spec.parse_frame(raw, 0.0)
        assert len(calls) == 1
        fresh = bytes(bytearray(raw))  # the next frame is another object: decoded again
        assert specs[0].parse_frame is not None
        specs[0].parse_frame(fresh, 0.0)
        assert len(calls) == 2


# ------------------------------------------------------------------------ hypothesis

_good = st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=0, max_value=10**9
).map(str)
#: Mostly good numbers (a stale number only shows on a feed that then emits), some bad
#: strings, some values that are not strings at all.
_BAD: tuple[Any, ...] = ("0", "", "NaN", "-Infinity", "1e51", "1e-51", "abc", " 3 ", "1_0",
                         None, 1.5, 7, [], {}, True)  # fmt: skip
_value: st.SearchStrategy[Any] = st.integers(0, 19).flatmap(
    lambda n: _good if n < 17 else st.sampled_from(_BAD)
)
_FIELDS = ("lastPrice", "prevPrice24h", "highPrice24h", "lowPrice24h", "volume24h",
           "turnover24h", "bid1Price", "bid1Size", "ask1Price", "ask1Size", "markPrice",
           "indexPrice", "predictedDeliveryPrice", "fundingRate", "tickDirection")  # fmt: skip
_funding = st.one_of(st.integers(0, 2**62).map(str), st.sampled_from(["", "x", "1.5"]), _value)


@st.composite
def _steps(draw: st.DrawFn) -> list[tuple[bytes, tuple[str, ...], bool]]:
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        data: dict[str, Any] = {
            "symbol": draw(st.sampled_from(["BTCUSDT", "BTCUSDT", "BTCUSDT", "ETHUSDT"]))
        }
        kind = draw(st.sampled_from(["snapshot", "delta", "delta", "delta", None, "other"]))
        if kind != "delta":  # a whole ticker (so that feeds emit), some fields drawn below
            data.update((name, draw(_good)) for name in _FIELDS)
        for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=len(_FIELDS))):
            data[name] = draw(_value)
        if draw(st.booleans()):
            data["nextFundingTime"] = draw(_funding)
        message: dict[str, Any] = {"topic": TOPIC}
        if kind is not None:
            message["type"] = kind
        message["data"] = data
        if draw(st.integers(0, 9)):
            message["ts"] = draw(st.one_of(st.integers(0, 2**63 - 1), st.just(2**64)))
        feeds = tuple(f for f in FEEDS if draw(st.booleans()))
        steps.append((frame(message), feeds, draw(st.integers(0, 5)) == 0))
    return steps


class TestHypothesis:
    @settings(max_examples=400, deadline=None)
    @given(st.sampled_from(["linear", "inverse"]), _steps())
    def test_any_stream_gives_every_feed_the_dict_parsers_models(
        self, category: str, steps: list[tuple[bytes, tuple[str, ...], bool]]
    ) -> None:
        pair = Pair(category)
        for raw, feeds, decoded in steps:
            pair.deliver(raw, feeds, decoded=decoded)

    @settings(max_examples=150, deadline=None)
    @given(_steps())
    def test_spot(self, steps: list[tuple[bytes, tuple[str, ...], bool]]) -> None:
        pair = Pair("spot")
        for raw, feeds, decoded in steps:
            pair.deliver(raw, tuple(f for f in feeds if f != "mark_price"), decoded=decoded)


class TestHostileFrames:
    @pytest.mark.parametrize(
        "raw",
        [
            b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"topic":"tickers.BTCUSDT"}',
            b'{"topic":"tickers.BTCUSDT","ts":1,"data":[]}',
            b'{"topic":"tickers.BTCUSDT","ts":1,"data":{"symbol":["BTCUSDT"]}}',
            b'{"topic":"tickers.BTCUSDT","ts":1,"data":{"symbol":"BTCUSDT","lastPrice":"\xff"}}',
            b'{"topic":"tickers.BTCUSDT","ts":1,"data":' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"topic":"tickers.BTCUSDT","ts":1,"data":{"symbol":"BTCUSDT"}}tail',
            b'{"topic":"tickers.BTCUSDT","ts":1,"type":"delta","data":{"symbol":"BTCUSDT"}}',
            b'{"topic":"tickers.BTCUSDT","ts":1,"data":{"symbol":"BTCUSDT","lastPrice":"'
            + b"9" * 1_000_000 + b'"}}',
            b'{"topic":"' + b"t" * 1_000_000 + b'","ts":1,"data":{"symbol":"BTCUSDT"}}',
            b'{"topic":"tickers.BTCUSDT","topic":"tickers.ETHUSDT","ts":1,'
            b'"data":{"symbol":"BTCUSDT","lastPrice":"1"}}',
        ],
        ids=lambda raw: repr(raw[:48]),
    )  # fmt: skip
    @pytest.mark.parametrize("feed", FEEDS)
    def test_one_bounded_parse_error(self, raw: bytes, feed: str) -> None:
        spec = getattr(BybitFeeds("linear"), feed)("BTCUSDT")
        with pytest.raises(ParseError) as caught:
            spec.parse_frame(raw, 0.0)
        assert len(caught.value.excerpt) <= ParseError.MAX_EXCERPT
        assert len(str(caught.value)) < 2000

    def test_json_literals_nan_and_1e999_are_refused(self, examples: dict[str, Any]) -> None:
        raw = frame(examples["bybit.v5.ws.tickers.linear_perpetual"])
        for literal in (b"NaN", b"Infinity", b"1e999", b"-1e999"):
            hostile = raw.replace(b'"lastPrice":"66666.60"', b'"lastPrice":' + literal)
            assert hostile != raw
            for feed in FEEDS:
                spec = getattr(BybitFeeds("linear"), feed)("BTCUSDT")
                got = outcome(spec.parse_frame, hostile)
                if literal.endswith(b"1e999") and feed != "mark_price":
                    assert got == ("refused", None)
                if literal in (b"NaN", b"Infinity"):  # not JSON at all
                    assert got == ("refused", None)

    def test_duplicate_keys_read_as_the_dict_parser(self, examples: dict[str, Any]) -> None:
        raw = frame(examples["bybit.v5.ws.tickers.linear_perpetual"])
        doubled = raw.replace(b'"lastPrice":"66666.60"', b'"lastPrice":"1","lastPrice":"2"')
        pair = Pair("linear")
        pair.deliver(doubled, FEEDS)
        assert pair.specs["ticker"].parse_frame(doubled, 0.0).last == Decimal(2)  # type: ignore[misc]


class TestSequenceKey:
    def test_raw_and_decoded_frames_give_ts(self, examples: dict[str, Any]) -> None:
        message = examples["bybit.v5.ws.tickers.linear_perpetual"]
        for feed in FEEDS:
            spec = getattr(BybitFeeds("linear"), feed)("BTCUSDT")
            assert spec.sequence(frame(message)) == spec.sequence(message) == message["ts"]
            assert spec.sequence(b"nonsense") is None


class TestRemembering:
    def test_only_good_strings_are_remembered_and_the_memory_is_bounded(self) -> None:
        frames = wire_tickers.TickerFrames(p.BybitTickerMerger(), TOPIC)
        assert frames.number("1.50") == Decimal("1.50")
        assert frames.number("1.50") is frames.number("1.50")
        bads: tuple[Any, ...] = ("NaN", "1e999", "", [], 1.5)
        for bad in bads:
            for _ in range(2):  # raises every time, never remembered
                if bad == 1.5:
                    assert frames.number(bad) == Decimal(bad)
                else:
                    with pytest.raises((ValueError, TypeError, ArithmeticError)):
                        frames.number(bad)
        memory = next(
            cell.cell_contents
            for cell in frames.number.__closure__ or ()
            if type(cell.cell_contents) is dict
        )
        for n in range(wire_tickers._REMEMBERED * 3):
            assert frames.number(str(n)) == n
            assert len(memory) <= wire_tickers._REMEMBERED
        assert frames.optional("") is None and frames.optional(None) is None


class TestTickerTypeIsRequired:
    """A ``tickers`` message must say ``snapshot`` or ``delta``. One without a ``type``
    used to count as a snapshot and REPLACE a linear ticker with the few fields it
    carried: every later delta then lacked fields and all three feeds failed until the
    next snapshot, which Bybit sends only after a resubscription."""

    SNAPSHOT: ClassVar[dict[str, Any]] = {
        "topic": TOPIC,
        "type": "snapshot",
        "ts": 1,
        "cs": 1,
        "data": {
            "symbol": "BTCUSDT",
            "lastPrice": "100.5",
            "prevPrice24h": "99",
            "highPrice24h": "101",
            "lowPrice24h": "98",
            "volume24h": "10",
            "turnover24h": "1000",
            "markPrice": "100.4",
            "indexPrice": "100.3",
            "fundingRate": "0.0001",
            "nextFundingTime": "1700000000000",
        },
    }

    @pytest.mark.parametrize("kind", [None, "Snapshot", "", ["delta"], {"a": 1}, 7])
    @pytest.mark.parametrize("raw", [True, False], ids=["raw", "decoded"])
    def test_a_frame_without_snapshot_or_delta_is_refused_and_changes_nothing(
        self, kind: Any, raw: bool
    ) -> None:
        feeds = BybitFeeds("linear")
        specs = [feeds.ticker("BTCUSDT"), feeds.mini_ticker("BTCUSDT"), feeds.mark_price("BTCUSDT")]

        def read(spec: FeedSpec, message: Any) -> Any:
            if raw:
                assert spec.parse_frame is not None
                return spec.parse_frame(frame(message), 1.0)
            return spec.parse(message, 1.0)

        for spec in specs:
            read(spec, self.SNAPSHOT)
        hostile = {"topic": TOPIC, "ts": 2, "data": {"symbol": "BTCUSDT", "lastPrice": "1"}}
        if kind is not None:
            hostile["type"] = kind
        for spec in specs:
            with pytest.raises(ParseError, match="snapshot"):
                read(spec, hostile)
        delta = {
            "topic": TOPIC,
            "type": "delta",
            "ts": 3,
            "data": {"symbol": "BTCUSDT", "lastPrice": "102", "markPrice": "101.9"},
        }
        ticker = read(specs[0], delta)
        assert ticker.last == Decimal("102")
        assert ticker.volume == Decimal("10")  # from the snapshot: not replaced
        assert read(specs[1], delta).close == Decimal("102")
        (mark,) = read(specs[2], delta)
        assert mark.mark_price == Decimal("101.9") and mark.index_price == Decimal("100.3")
