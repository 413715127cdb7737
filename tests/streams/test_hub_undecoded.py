"""The hub hands a topic with a typed one-pass decoder its raw frames (issue #12).

``SubscriptionHub(undecoded=...)``: frames whose topic the protocol can name from their
first bytes (``data_frame_head``) and that belong to such a topic skip ``orjson.loads`` and
reach the subscribers as ``bytes``; everything else - other topics, control answers, a
frame the peek cannot name - goes the decoded path as before.
"""

from __future__ import annotations

from typing import Any

import orjson

from rxconnector.errors import ParseError
from rxconnector.exchanges.binance.feeds import BinanceSpotFeeds
from rxconnector.exchanges.binance.parsers import parse_trade
from rxconnector.streams.messages import StreamRestart

try:
    from test_hub_virtual import Rig
except ImportError:  # pragma: no cover - package-style collection
    from .test_hub_virtual import Rig  # type: ignore[no-redef]

TRADE = {
    "e": "trade",
    "E": 1700000000123,
    "s": "BTCUSDT",
    "t": 1,
    "p": "60000.01",
    "q": "0.5",
    "T": 1700000000120,
    "m": True,
}


def raw_only(topic: str) -> bool:
    return topic.endswith("@trade")


class TestUndecodedTopics:
    def test_raw_bytes_for_the_typed_topic_decoded_data_for_the_others(self) -> None:
        rig = Rig(undecoded=raw_only)
        trades, _e1, _s1 = rig.collect("btcusdt@trade")
        depth, _e2, _s2 = rig.collect("btcusdt@depth")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.data("btcusdt@trade", TRADE)
        socket.data("btcusdt@depth", {"u": 1})
        rig.run(2.0)
        assert [type(m[1]) for m in trades] == [bytes]
        assert orjson.loads(trades[0][1]) == {"stream": "btcusdt@trade", "data": TRADE}
        assert depth[0][1] == {"u": 1}
        assert rig.errors == []
        # the typed parser reads the raw message into the same model
        spec = BinanceSpotFeeds().trades("BTCUSDT")
        assert spec.parse_frame is not None
        assert spec.parse_frame(trades[0][1], 0.0) == parse_trade(TRADE, 0.0)

    def test_without_undecoded_every_frame_is_decoded(self) -> None:
        rig = Rig()
        trades, _e, _s = rig.collect("btcusdt@trade")
        rig.run(1.0)
        rig.transport.sockets[0].data("btcusdt@trade", TRADE)
        rig.run(2.0)
        assert trades[0][1] == TRADE

    def test_a_frame_the_peek_cannot_name_takes_the_decoded_path(self) -> None:
        rig = Rig(undecoded=raw_only)
        trades, _e, _s = rig.collect("btcusdt@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push(b'{ "stream": "btcusdt@trade", "data": {"t": 2}}')  # spaces
        socket.push(b'{"data": {"t": 3}, "stream": "btcusdt@trade"}')  # other key order
        rig.run(2.0)
        assert [m[1] for m in trades] == [{"t": 2}, {"t": 3}]

    def test_garbage_after_a_valid_prefix_is_left_to_the_typed_parser(self) -> None:
        """The hub does not decode it, so it cannot tell: the feed's parser reports it."""
        rig = Rig(undecoded=raw_only)
        trades, _e, _s = rig.collect("btcusdt@trade")
        rig.run(1.0)
        rig.transport.sockets[0].push(b'{"stream":"btcusdt@trade","data":{nope')
        rig.run(2.0)
        assert rig.errors == []
        spec = BinanceSpotFeeds().trades("BTCUSDT")
        assert spec.parse_frame is not None
        try:
            spec.parse_frame(trades[0][1], 0.0)
        except ParseError as exc:
            assert "malformed binance trade frame" in str(exc)
        else:  # pragma: no cover - the assertion message
            raise AssertionError("garbage parsed")

    def test_control_answers_and_unknown_topics_are_unaffected(self) -> None:
        rig = Rig(undecoded=raw_only)
        trades, _e, _s = rig.collect("btcusdt@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.data("ethusdt@trade", TRADE)  # nobody subscribed: dropped, no error
        socket.push(b"not json")
        rig.run(2.0)
        assert trades == []
        assert [type(e) for e in rig.errors] == [ParseError]  # the undecodable frame
        assert rig.hub.pending_requests == ()  # the SUBSCRIBE was answered and matched

    def test_a_restart_marker_still_precedes_the_first_raw_message(self) -> None:
        rig = Rig(undecoded=raw_only)
        trades, _e, _s = rig.collect("btcusdt@trade")
        rig.run(1.0)
        rig.transport.sockets[0].data("btcusdt@trade", TRADE)
        rig.transport.sockets[0].fail()
        rig.run(30.0)
        socket = rig.transport.sockets[-1]
        assert socket is not rig.transport.sockets[0]
        socket.data("btcusdt@trade", {**TRADE, "t": 2})
        rig.run(31.0)
        kinds: list[Any] = [type(m) if isinstance(m, StreamRestart) else type(m[1]) for m in trades]
        assert kinds == [bytes, StreamRestart, bytes]

    def test_the_raw_lookup_follows_subscribe_release_reject_and_close(self) -> None:
        """The fast path looks raw topics up by their encoded name in a registry of its
        own: it must hold exactly the live raw topics at every step."""
        rig = Rig(undecoded=raw_only)
        rig.transport.reject.add("bad@trade")
        first, _e, sub = rig.collect("btcusdt@trade")
        rig.collect("btcusdt@depth")  # decoded: never in the raw registry
        _got, bad_errors, _s = rig.collect("bad@trade")
        rig.run(1.0)
        core = rig.hub._core
        head = b'{"stream":"btcusdt@trade"'
        assert set(core.raw_topics) == {head} and len(bad_errors) == 1
        assert core.raw_topics[head] is core.topics["btcusdt@trade"]
        assert core.raw_lengths == [len(head)]
        sub.dispose()
        assert core.raw_topics == {} and core.raw_lengths == []
        second, _e2, _s2 = rig.collect("btcusdt@trade")  # a new state for the same name
        rig.run(3.0)
        assert core.raw_topics[head] is core.topics["btcusdt@trade"]
        rig.transport.live[0].data("btcusdt@trade", TRADE)
        assert first == [] and [type(m[1]) for m in second] == [bytes]
        core.close()
        assert core.raw_topics == {} and core.topics == {} and core.raw_lengths == []

    def test_the_raw_lookup_is_by_the_exact_name_and_prefix(self) -> None:
        rig = Rig(undecoded=lambda topic: "@trade" in topic)
        trades, _e, _s = rig.collect("btcusdt@trade")
        longer, _e2, _s2 = rig.collect("btcusdt@trade_x")  # another head length
        rig.run(1.0)
        socket = rig.transport.live[0]
        socket.push(b'{"stream":"btcusdt@trade-x","data":{"t":4}}')  # a longer name
        socket.push(b'{"xtream":"btcusdt@trade","data":{"t":5}}')  # another key
        socket.push(b'{"stream":"btcusdt@trade')  # no closing quote: decoded, ParseError
        socket.push(b'{"stream":"btcusdt@trade_x","data":{"t":6}}')
        socket.push(b'{"stream":"btcusdt@trade","data":{"t":7}}')  # the first length
        rig.run(2.0)
        assert [m[1] for m in trades] == [b'{"stream":"btcusdt@trade","data":{"t":7}}']
        assert [type(m[1]) for m in longer] == [bytes]
        assert rig.hub._core.raw_lengths == [25, 27]
        assert [type(e) for e in rig.errors] == [ParseError, ParseError]


class TestTheFeedsParseStep:
    """The connector's parse step: raw frames through ``parse_frame``, payloads as before."""

    def test_hostile_raw_frames_are_reported_and_the_feed_goes_on(self) -> None:
        from rxconnector.connector import _message_parser

        spec = BinanceSpotFeeds().trades("BTCUSDT")
        reported: list[Exception] = []
        got: list[Any] = []
        on_next = _message_parser(spec, reported.append, False)(got.append)

        def raw(data: Any) -> bytes:
            return orjson.dumps({"stream": "btcusdt@trade", "data": data})

        on_next((1.0, raw({**TRADE, "p": "NaN"})))
        on_next((1.0, raw({**TRADE, "q": "1e999999"})))
        on_next((1.0, b'{"stream":"btcusdt@trade","data":' + b"[" * 5000))
        on_next((1.0, raw(TRADE)))
        on_next((2.0, {**TRADE, "t": 2}))  # a decoded payload (another hub, a replay)
        on_next(StreamRestart("btcusdt@trade", "x"))  # dropped: keep_restarts is False
        assert got == [parse_trade(TRADE, 1.0), parse_trade({**TRADE, "t": 2}, 2.0)]
        assert [type(e) for e in reported] == [ParseError] * 3, reported
        assert all(len(e.excerpt) <= ParseError.MAX_EXCERPT for e in reported)  # type: ignore[attr-defined]
