"""The hub and the typed market feeds (issue #12): with every typed topic left undecoded
(as the connector does for a spec with ``parse_frame``), a frame Binance wrote reaches
the feed as raw bytes and the typed parser reads it; a text (``str``) frame, or a frame
written with another key order or spaces, is decoded by the hub as before and the dict
parser reads it - to the same model either way. Virtual time, a fake socket.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxconnector.exchanges.base import FeedSpec
from rxconnector.exchanges.binance import wire_market as wm
from rxconnector.exchanges.binance.feeds import BinanceFuturesFeeds, BinanceSpotFeeds


def _rig_class() -> Any:
    """``Rig`` of ``tests/streams/test_hub_virtual.py``: the hub on a TestScheduler."""
    path = Path(__file__).resolve().parent.parent / "streams" / "test_hub_virtual.py"
    spec = importlib.util.spec_from_file_location("_hub_virtual_rig", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Rig


Rig = _rig_class()

SPOT, USDM = BinanceSpotFeeds(), BinanceFuturesFeeds()
SPECS: list[tuple[FeedSpec, str]] = [
    (SPOT.ticker("BNBBTC"), "binance.spot.ws.ticker"),
    (SPOT.mini_ticker("BNBBTC"), "binance.spot.ws.miniTicker"),
    (SPOT.klines("BNBBTC", "1m"), "binance.spot.ws.kline"),
    (SPOT.avg_price("BTCUSDT"), "binance.spot.ws.avgPrice"),
    (SPOT.depth("BNBBTC", 5), "binance.spot.ws.partialDepth"),
    (USDM.mark_price("BTCUSDT"), "binance.usdm.ws.markPriceUpdate"),
    (USDM.liquidations("BTCUSDT"), "binance.usdm.ws.forceOrder"),
    (USDM.depth("BTCUSDT", 20), "binance.usdm.ws.depthUpdate"),
]


@pytest.mark.parametrize(("spec", "example"), SPECS, ids=[s.topic for s, _ in SPECS])
def test_raw_text_and_reordered_frames_give_the_same_model(
    spec: FeedSpec, example: str, examples: dict[str, Any]
) -> None:
    if spec.parse_frame is None:
        assert "@depth" in spec.topic and not wm.TYPED_PARTIAL_DEPTH
        pytest.skip("partial depth reads typed only with the compiled level packer")
    data = examples[example]
    rig = Rig(undecoded=lambda topic: topic == spec.topic)
    got, _errors, _sub = rig.collect(spec.topic)
    rig.run(1.0)
    socket = rig.transport.sockets[0]
    canonical = orjson.dumps({"stream": spec.topic, "data": data})
    socket.push(canonical)  # as Binance writes it: handed over raw
    socket.push(canonical.decode())  # a text frame: decoded by the hub
    socket.push(b'{"data":' + orjson.dumps(data) + b',"stream":"' + spec.topic.encode() + b'"}')
    socket.push(
        b'{ "stream" : "' + spec.topic.encode() + b'", "data" : ' + orjson.dumps(data) + b"}"
    )
    rig.run(2.0)
    assert rig.errors == []
    payloads = [message[1] for message in got]
    assert [type(p) for p in payloads] == [bytes, dict, dict, dict]
    want = spec.parse(data, 7.0)
    assert spec.parse_frame(payloads[0], 7.0) == want
    assert [spec.parse(p, 7.0) for p in payloads[1:]] == [want] * 3
    assert spec.sequence is not None
    keys = {spec.sequence(p) for p in payloads}
    assert len(keys) == 1 and None not in keys  # one key, raw or decoded
