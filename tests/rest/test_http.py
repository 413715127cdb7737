"""HttpTransport and the aiohttp error translation, against a loopback server."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from rxconnector.errors import (
    ConnectError,
    ExchangeError,
    RequestTimeoutError,
    TransportError,
)
from rxconnector.transport.errors import may_have_reached_server, translate_aiohttp_errors
from rxconnector.transport.http import HttpTransport

from .conftest import FakeExchange, Reply


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestHttpTransport:
    """One request in, one fully read response out, query bytes untouched."""

    async def test_reads_status_headers_body_and_timing(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json(
            "GET", "/api/v3/time", {"serverTime": 1}, headers={"X-MBX-USED-WEIGHT-1M": "3"}
        )
        transport = HttpTransport(session, timeout=2.0)
        response = await transport.request("GET", exchange.base_url + "/api/v3/time")
        assert response.status == 200
        assert response.body == b'{"serverTime":1}'
        assert response.headers["x-mbx-used-weight-1m"] == "3"
        assert response.header("X-MBX-USED-WEIGHT-1M") == "3"
        assert response.elapsed > 0
        assert response.received_at > 1.6e12  # epoch ms

    async def test_query_is_sent_byte_for_byte(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/q", {})
        query = "symbols=%5B%22A%22%2C%22B%22%5D&x=%41&signature=ab%2B%2F%3D"
        await HttpTransport(session, timeout=2.0).request(
            "GET", exchange.base_url + "/q", params=query
        )
        assert exchange.seen[0].query == query

    async def test_body_is_sent_as_a_form_with_headers(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", "/form", {})
        await HttpTransport(session, timeout=2.0).request(
            "POST", exchange.base_url + "/form", body="a=1&b=2", headers={"X-MBX-APIKEY": "k"}
        )
        seen = exchange.seen[0]
        assert seen.body == "a=1&b=2"
        assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
        assert seen.headers["x-mbx-apikey"] == "k"

    async def test_error_statuses_are_returned_not_raised(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/bad", {"code": -1121, "msg": "Invalid symbol."}, status=400)
        response = await HttpTransport(session, timeout=2.0).request(
            "GET", exchange.base_url + "/bad"
        )
        assert response.status == 400

    async def test_timeout_becomes_request_timeout_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("GET", "/slow", Reply(body={}, delay=0.3))
        with pytest.raises(RequestTimeoutError) as info:
            await HttpTransport(session, timeout=0.05).request(
                "GET", exchange.base_url + "/slow", params="signature=deadbeef"
            )
        assert isinstance(info.value, TimeoutError)  # builtin-compatible
        assert info.value.__cause__ is not None
        assert "deadbeef" not in str(info.value)
        assert may_have_reached_server(info.value)

    async def test_refused_connection_is_a_connect_error_that_never_left(
        self, session: aiohttp.ClientSession
    ) -> None:
        url = f"http://127.0.0.1:{_free_port()}/api/v3/order"
        with pytest.raises(ConnectError) as info:
            await HttpTransport(session, timeout=2.0).request("POST", url, params="a=1")
        assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
        assert not may_have_reached_server(info.value)

    async def test_dropped_connection_is_a_connect_error_that_may_have_arrived(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("POST", "/api/v3/order", Reply(drop_connection=True))
        with pytest.raises(ConnectError) as info:
            await HttpTransport(session, timeout=2.0).request(
                "POST", exchange.base_url + "/api/v3/order"
            )
        assert may_have_reached_server(info.value)

    async def test_closed_session_is_a_transport_error(self) -> None:
        closed = aiohttp.ClientSession()
        await closed.close()
        with pytest.raises(TransportError, match="session is closed"):
            await HttpTransport(closed, timeout=1.0).request("GET", "http://127.0.0.1:1/x")

    async def test_timeout_must_be_positive(self, session: aiohttp.ClientSession) -> None:
        with pytest.raises(ValueError, match="timeout"):
            HttpTransport(session, timeout=0)


class TestTranslateAiohttpErrors:
    """Every aiohttp failure maps to one rxconnector class with the cause kept."""

    @pytest.mark.parametrize(
        ("raised", "expected"),
        [
            (TimeoutError(), RequestTimeoutError),
            (aiohttp.ServerTimeoutError("read"), RequestTimeoutError),
            (aiohttp.ServerDisconnectedError(), ConnectError),
            (aiohttp.ClientOSError(104, "reset"), ConnectError),
            (aiohttp.ClientPayloadError("truncated"), TransportError),
            (aiohttp.InvalidURL("nope"), TransportError),
        ],
    )
    def test_mapping(self, raised: Exception, expected: type[Exception]) -> None:
        with pytest.raises(expected) as info, translate_aiohttp_errors("GET https://x/y"):
            raise raised
        assert type(info.value) is expected
        assert info.value.__cause__ is raised
        assert str(info.value).startswith("GET https://x/y")

    def test_rxconnector_errors_pass_untouched(self) -> None:
        original = ExchangeError("already translated")
        with pytest.raises(ExchangeError) as info, translate_aiohttp_errors("x"):
            raise original
        assert info.value is original

    def test_cancellation_passes_untouched(self) -> None:
        with pytest.raises(asyncio.CancelledError), translate_aiohttp_errors("x"):
            raise asyncio.CancelledError

    def test_other_exceptions_are_not_swallowed(self) -> None:
        with pytest.raises(KeyError), translate_aiohttp_errors("x"):
            raise KeyError("bug")

    def test_query_strings_in_messages_are_redacted(self) -> None:
        with pytest.raises(TransportError) as info, translate_aiohttp_errors("GET https://x"):
            raise aiohttp.InvalidURL("https://x/api?timestamp=1&signature=secretsig")
        assert "secretsig" not in str(info.value)
        assert "https://x/api?…" in str(info.value)
