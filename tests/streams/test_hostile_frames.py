"""Hostile WebSocket frames: each one is that frame's ParseError, nothing else.

Regression tests for issue #16 ("hostile input"): a routing key of the wrong JSON type
(a list or an object where a string belongs) used to raise outside the hub's guard,
which tore the socket down and resynced every book on it; a ~1,000-deep nested payload
made building the ParseError itself raise ``RecursionError`` (``repr(payload)``), which
detached the feed's subscriber for good.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rxconnector.errors import ParseError, excerpt
from rxconnector.exchanges.binance import parsers as bp
from rxconnector.exchanges.bybit import parsers as yp
from rxconnector.exchanges.bybit.ws_protocol import BybitWsProtocol
from rxconnector.streams.messages import StreamRestart

try:
    from test_hub_virtual import Rig
except ImportError:  # pragma: no cover - package-style collection
    from .test_hub_virtual import Rig  # type: ignore[no-redef]


def deep_text(depth: int) -> str:
    """JSON of ``depth`` nested single-element lists (orjson decodes up to 1024)."""
    return "[" * depth + "1" + "]" * depth


def deep_object_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def deep(depth: int) -> Any:
    return orjson.loads(deep_text(depth))


def deep_object(depth: int) -> Any:
    return orjson.loads(deep_object_text(depth))


class TestRoutingKeys:
    @pytest.mark.parametrize("stream", [["x@trade"], {"x": "@trade"}, 5, 1.5, True])
    def test_binance_stream_of_the_wrong_type_is_one_parse_error(self, stream: Any) -> None:
        rig = Rig()
        got, errors, _s = rig.collect("x@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push({"stream": stream, "data": {"n": 0}})
        socket.data("x@trade", {"n": 1})
        rig.run(2.0)
        assert [type(e) for e in rig.errors] == [ParseError]
        assert "routing key" in str(rig.errors[0])
        # The socket stayed up: no reconnect, no restart marker, the next frame flowed.
        assert not socket.disposed and len(rig.transport.sockets) == 1
        assert [m for m in got if isinstance(m, StreamRestart)] == []
        assert [m[1] for m in got] == [{"n": 1}] and errors == []

    @pytest.mark.parametrize("topic", [["tickers.BTCUSDT"], {"t": 1}, 7])
    def test_bybit_topic_of_the_wrong_type_is_one_parse_error(self, topic: Any) -> None:
        rig = Rig(BybitWsProtocol("spot"), auto_answer=False)
        got, errors, _s = rig.collect("tickers.BTCUSDT")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push({"topic": topic, "type": "snapshot", "data": {}})
        socket.push({"topic": "tickers.BTCUSDT", "type": "snapshot", "data": {"n": 1}})
        rig.run(2.0)
        assert [type(e) for e in rig.errors] == [ParseError]
        assert not socket.disposed and len(rig.transport.sockets) == 1
        assert [m[1]["data"] for m in got] == [{"n": 1}] and errors == []

    @pytest.mark.parametrize(
        "frame",
        [
            {"op": "subscribe", "success": True, "req_id": ["1"]},
            {"op": "subscribe", "success": True, "req_id": {"id": 1}},
            {"op": "subscribe", "success": True, "req_id": 1.5},
            {"op": ["subscribe"], "success": True, "req_id": [1], "ret_msg": ["x"]},
            {"op": "subscribe", "success": False, "req_id": {"x": 1}, "ret_msg": {"d": [1]}},
            {"type": "COMMAND_RESP", "success": True, "data": ["not", "an", "object"]},
            {"type": "COMMAND_RESP", "success": False, "data": {"failTopics": 5}},
            {"op": "subscribe", "success": True, "req_id": "9" * 5000},
        ],
    )
    def test_bybit_control_keys_of_the_wrong_type_never_match_a_request(
        self, frame: dict[str, Any]
    ) -> None:
        """A hostile ack must not be taken for the answer to our pending request (a
        ``req_id`` we cannot read used to fall back to "oldest request first")."""
        rig = Rig(BybitWsProtocol("spot"), auto_answer=False)
        _got, errors, _s = rig.collect("tickers.BTCUSDT")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push(frame)
        rig.run(1.5)
        assert all(isinstance(e, ParseError) for e in rig.errors), rig.errors
        assert rig.hub.pending_requests != ()  # our subscribe is still waiting
        assert not socket.disposed and errors == []

    def test_binance_error_answer_with_an_object_message_is_bounded(self) -> None:
        rig = Rig()
        rig.collect("x@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push('{"id": 999, "error": {"code": 2, "msg": ' + deep_object_text(1000) + "}}")
        rig.run(2.0)
        assert len(rig.errors) == 1 and not isinstance(rig.errors[0], RecursionError)
        assert len(str(rig.errors[0])) < 400
        assert not socket.disposed


class TestDeepNesting:
    def test_a_1000_deep_control_frame_is_one_bounded_parse_error(self) -> None:
        rig = Rig()
        got, errors, _s = rig.collect("x@trade")
        rig.run(1.0)
        socket = rig.transport.sockets[0]
        socket.push(deep_object_text(1000))
        socket.push(deep_text(1000))
        socket.push('{"stream": "x@trade", "data": ' + deep_text(1000) + "}")
        socket.data("x@trade", {"n": 1})
        assert [type(e) for e in rig.errors] == [ParseError, ParseError]
        assert all(len(e.excerpt) <= 200 for e in rig.errors)  # type: ignore[attr-defined]
        # The deep data frame is routed raw (parsing is the feed's job, next test).
        assert len(got) == 2 and got[1][1] == {"n": 1} and errors == []

    @pytest.mark.parametrize("parse", [bp.parse_trade, lambda p, t: p["x"].y])
    def test_the_feed_reports_a_1000_deep_payload_and_keeps_going(self, parse: Any) -> None:
        """Parser errors (ours, or a bug's) are reported with a bounded excerpt; the
        feed's subscriber stays attached (a RecursionError used to detach it)."""
        from reactivex.subject import Subject

        from rxconnector.connector import _parse_messages
        from rxconnector.exchanges.base import FeedSpec

        reported: list[Exception] = []
        got: list[Any] = []
        source: Subject[Any] = Subject()
        spec = FeedSpec("x@trade", lambda p, t: p if p == "ok" else parse(p, t))
        source.pipe(_parse_messages(spec, reported.append, False)).subscribe(got.append)
        source.on_next((0.0, deep(1000)))
        source.on_next((0.0, deep_object(1000)))
        source.on_next((0.0, "ok"))
        assert got == ["ok"]
        assert [type(e) for e in reported] == [ParseError, ParseError]
        assert all(len(e.excerpt) <= 200 for e in reported)  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        "parse",
        [
            bp.parse_trade,
            bp.parse_ticker,
            bp.parse_depth_update,
            bp.parse_kline,
            yp.parse_trades,
            yp.parse_depth,
        ],
    )
    @pytest.mark.parametrize("payload", [deep(1000), deep_object(1000)])
    def test_parsers_report_a_1000_deep_payload_as_a_parse_error(
        self, parse: Any, payload: Any
    ) -> None:
        with pytest.raises(ParseError) as info:
            parse(payload, 0.0)
        assert len(info.value.excerpt) <= ParseError.MAX_EXCERPT

    def test_a_nested_field_inside_a_real_payload_is_a_parse_error(self) -> None:
        payload = {"e": "trade", "s": "BTCUSDT", "t": 1, "p": deep(1000), "q": "1"}
        with pytest.raises(ParseError) as info:
            bp.parse_trade(payload, 0.0)
        assert info.value.excerpt.startswith("{'e': 'trade'")


class TestExcerpt:
    def test_any_depth_without_recursion(self) -> None:
        value: Any = 1
        for _ in range(200_000):  # far beyond the recursion limit
            value = [value]
        text = excerpt(value)
        assert text.startswith("[[[[") and len(text) <= 200

    def test_huge_payloads_stop_early(self) -> None:
        big = {"data": list(range(2_000_000))}
        assert excerpt(big).startswith("{'data': [0, 1, 2, 3")
        assert len(excerpt(big)) <= 200
        assert excerpt(10**5000) == "<int of 16610 bits>"
        assert excerpt(b"\xff" * 10_000_000) == "\ufffd" * 200
        assert excerpt("x" * 10_000_000) == "x" * 200

    def test_reads_like_repr_for_small_payloads(self) -> None:
        small = {"e": "trade", "p": ["1.0", None, True, 2.5]}
        assert excerpt(small) == repr(small)

    def test_a_broken_repr_is_named_not_raised(self) -> None:
        class Hostile:
            def __repr__(self) -> str:
                raise RuntimeError("no")

        assert excerpt([Hostile()]) == "[<Hostile>]"
        assert ParseError("bad", Hostile()).excerpt == "<Hostile>"
