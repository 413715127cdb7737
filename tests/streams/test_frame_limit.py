"""A frame above the size limit: said on ``errors`` with the limit; the limit is config.

Regression test for issue #16: a 10 MB frame made aiohttp close the socket (close code
1009, its default 4 MiB ``max_msg_size``) and the hub reconnected with nothing on
``errors`` - the feed just restarted, without a word about why. Against a real aiohttp
WebSocket server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

try:
    from _fake_server import FakeBinanceServer
    from test_hub_live import FAST, Harness, data, subscribed
except ImportError:  # tests/streams turned into a package
    from ._fake_server import FakeBinanceServer  # type: ignore[no-redef]
    from .test_hub_live import FAST, Harness, data, subscribed  # type: ignore[no-redef]
import attrs

from rxconnector.config import Config, ConnectionConfig
from rxconnector.errors import ConfigError, WebSocketClosedError
from rxconnector.models import ConnectionState

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
async def server() -> AsyncIterator[FakeBinanceServer]:
    async with FakeBinanceServer() as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def big_frame(size: int) -> str:
    return orjson.dumps({"stream": "btcusdt@trade", "data": {"pad": "x" * size}}).decode()


async def test_a_10_mb_frame_is_reported_with_the_limit_and_the_feed_resumes(
    server: FakeBinanceServer, session: aiohttp.ClientSession
) -> None:
    h = Harness(server, session)
    got: list[Any] = []
    h.hub.feed("btcusdt@trade").subscribe(got.append)
    conn = await subscribed(server, "btcusdt@trade")
    with contextlib.suppress(ConnectionError):  # the client hangs up mid-frame
        await server.send_raw(conn, big_frame(TEN_MB))
    # The socket is reconnected (aiohttp cannot skip the rest of an oversized frame) ...
    await server.wait_until(
        lambda: (
            len(server.subscribers_of("btcusdt@trade")) == 1
            and server.subscribers_of("btcusdt@trade")[0] is not conn
        )
    )
    # ... and errors says why, naming the setting and its value.
    too_big = [e for e in h.errors if isinstance(e, WebSocketClosedError)]
    assert len(too_big) == 1, h.errors
    message = str(too_big[0])
    assert "connection.max_frame_bytes" in message and "4194304" in message
    assert too_big[0].close_code == 1009
    reconnecting = h.states_of(ConnectionState.RECONNECTING)
    assert reconnecting and "max_frame_bytes" in (reconnecting[-1].reason or "")
    # The feed goes on on the new socket.
    new = await subscribed(server, "btcusdt@trade")
    await server.send_raw(new, orjson.dumps({"stream": "btcusdt@trade", "data": {"t": 2}}))
    await server.wait_until(lambda: {"t": 2} in data(got))
    await h.hub.close()


async def test_a_larger_configured_limit_takes_the_frame(
    server: FakeBinanceServer, session: aiohttp.ClientSession
) -> None:
    config = attrs.evolve(FAST, max_frame_bytes=16 * 1024 * 1024)
    h = Harness(server, session, config=config)
    got: list[Any] = []
    h.hub.feed("btcusdt@trade").subscribe(got.append)
    conn = await subscribed(server, "btcusdt@trade")
    await server.send_raw(conn, big_frame(TEN_MB))
    await server.wait_until(lambda: len(data(got)) == 1, within=10.0)
    assert len(data(got)[0]["pad"]) == TEN_MB
    assert h.errors == [] and h.states_of(ConnectionState.RECONNECTING) == []
    await h.hub.close()


@pytest.mark.parametrize("bad", [0, -1, 1023, 2**31, 1.5, math.nan, "4M", True, None])
def test_the_limit_is_validated(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"connection\.max_frame_bytes"):
        Config.binance(connection={"max_frame_bytes": bad})
    assert ConnectionConfig().max_frame_bytes == 4 * 1024 * 1024
