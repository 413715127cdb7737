"""RestClient pipeline: error mapping, holds, unknown order status, resync, guard/retry order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from rxconnector.config import BreakerConfig, Config
from rxconnector.errors import (
    CircuitOpenError,
    ConnectError,
    ExchangeError,
    OrderStatusUnknownError,
    ParseError,
    RateLimitError,
    RequestTimeoutError,
)
from rxconnector.exchanges.binance.endpoints import BINANCE_ERRORS
from rxconnector.exchanges.rest_spec import SignedRequest
from rxconnector.operators import CircuitBreaker, breaker
from rxconnector.rate.limiter import RequestWeightLimiter
from rxconnector.rest.client import RestClient
from rxconnector.rest.planned import PlannedRest
from rxconnector.transport.http import HttpResponse, HttpTransport

from .conftest import (
    API_KEY,
    SECRET,
    FakeExchange,
    Reply,
    StepClock,
    binance_spot_rest,
    rules_known,
)

ORDER_PATH = "/api/v3/order"


def _client(
    exchange: FakeExchange,
    session: aiohttp.ClientSession,
    *,
    limiter: RequestWeightLimiter | None = None,
    guard: Callable[[Observable[Any]], Observable[Any]] | None = None,
    retry: Callable[[Observable[Any]], Observable[Any]] | None = None,
    on_timestamp_rejected: Callable[[], Observable[Any]] | None = None,
    timeout: float = 2.0,
    base_url: str | None = None,
) -> RestClient:
    transport = HttpTransport(session, timeout=timeout)
    return RestClient(
        lambda: transport,
        base_url=base_url or exchange.base_url,
        exchange="binance",
        limiter=limiter,
        guard=guard,
        retry=retry,
        on_timestamp_rejected=on_timestamp_rejected,
        dialect=BINANCE_ERRORS,
    )


def _rest(client: RestClient, clock: Callable[[], int] | None = None) -> PlannedRest:
    config = Config.binance(api_key=API_KEY, api_secret=SECRET)
    return rules_known(binance_spot_rest(client, config, clock or StepClock()))


def _retry3(source: Observable[Any]) -> Observable[Any]:
    return source.pipe(ops.retry(3))


async def _error_of(observable: Observable[Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        await observable
    return info.value


class TestColdness:
    """Nothing is sent before subscription; each subscription sends once."""

    async def test_lazy_and_repeatable(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/api/v3/time", {"serverTime": 5})
        call = _client(exchange, session).call("GET", "/api/v3/time", weight=1, idempotent=True)
        await asyncio.sleep(0.01)
        assert exchange.seen == []
        assert await call == {"serverTime": 5}
        assert await call == {"serverTime": 5}
        assert len(exchange.seen) == 2

    async def test_params_are_encoded_in_order_without_none(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/p", [])
        await _client(exchange, session).call(
            "GET",
            "/p",
            {"symbol": "BTCUSDT", "fromId": None, "limit": 5},
            weight=1,
            idempotent=True,
        )
        assert exchange.seen[0].query == "symbol=BTCUSDT&limit=5"

    async def test_disposal_cancels_the_request_in_flight(self) -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        class HangingTransport:
            async def request(self, method: str, url: str, **_: Any) -> HttpResponse:
                started.set()
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
                raise AssertionError("not reached")

        transport = HangingTransport()
        client = RestClient(
            lambda: transport, base_url="http://x", exchange="binance", dialect=BINANCE_ERRORS
        )
        received: list[Any] = []
        subscription = client.call("GET", "/api/v3/time", weight=1, idempotent=True).subscribe(
            received.append, received.append, lambda: received.append("done")
        )
        await asyncio.wait_for(started.wait(), 1)
        subscription.dispose()
        await asyncio.wait_for(cancelled.wait(), 1)
        await asyncio.sleep(0)
        assert received == []


class TestErrorMapping:
    """Statuses and {code,msg} bodies become the documented error types."""

    async def test_code_msg_body_becomes_exchange_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.json("GET", "/api/v3/depth", examples["binance.spot.rest.error"], status=400)
        error = await _error_of(
            _client(exchange, session).call("GET", "/api/v3/depth", weight=5, idempotent=True)
        )
        assert isinstance(error, ExchangeError) and not isinstance(error, RateLimitError)
        assert (error.code, error.status, error.retryable) == (-1121, 400, False)
        assert error.message == "Invalid symbol."
        assert error.exchange == "binance"

    @pytest.mark.parametrize("code", [-1003, -1007, -1008])
    async def test_overload_codes_are_retryable(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, code: int
    ) -> None:
        exchange.json("GET", "/x", {"code": code, "msg": "busy"}, status=503)
        error = await _error_of(
            _client(exchange, session).call("GET", "/x", weight=1, idempotent=True)
        )
        assert isinstance(error, ExchangeError)
        assert error.retryable and error.code == code

    async def test_non_json_5xx_is_retryable_with_an_excerpt(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("GET", "/x", Reply(raw=b"<html>502 Bad Gateway</html>", status=502))
        error = await _error_of(
            _client(exchange, session).call("GET", "/x", weight=1, idempotent=True)
        )
        assert isinstance(error, ExchangeError)
        assert (error.status, error.code, error.retryable) == (502, None, True)
        assert "502 Bad Gateway" in error.message

    async def test_non_json_success_is_a_parse_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("GET", "/x", Reply(raw=b"not json at all"))
        error = await _error_of(
            _client(exchange, session).call("GET", "/x", weight=1, idempotent=True)
        )
        assert isinstance(error, ParseError)
        assert "not json" in error.excerpt

    async def test_transport_failure_on_a_read_is_a_transport_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("GET", "/slow", Reply(body={}, delay=0.3))
        error = await _error_of(
            _client(exchange, session, timeout=0.05).call("GET", "/slow", weight=1, idempotent=True)
        )
        assert isinstance(error, RequestTimeoutError)


class TestOrderStatusUnknown:
    """A write whose outcome is unknown is reported with its client order id, never retried."""

    async def test_5xx_on_place_order_sends_exactly_one_request(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", ORDER_PATH, {"code": -1000, "msg": "internal"}, status=500)
        rest = _rest(_client(exchange, session, retry=_retry3))
        order = rest.place_order(
            "btcusdt", "buy", "LIMIT", quantity="1", price="100", client_order_id="my-order-1"
        )
        error = await _error_of(order)
        assert isinstance(error, OrderStatusUnknownError)
        assert error.client_order_id == "my-order-1"
        assert error.status == 500 and error.retryable is False
        assert "my-order-1" in str(error)
        assert len(exchange.requests_to(ORDER_PATH)) == 1

    async def test_generated_client_order_id_is_the_one_sent_and_reported(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("POST", ORDER_PATH, {"code": -1000, "msg": "internal"}, status=503)
        error = await _error_of(
            _rest(_client(exchange, session)).place_order(
                "BTCUSDT", "sell", "MARKET", quantity="0.5"
            )
        )
        assert isinstance(error, OrderStatusUnknownError)
        sent = exchange.requests_to(ORDER_PATH)[0].params["newClientOrderId"]
        assert error.client_order_id == sent and sent

    async def test_timeout_on_place_order_is_status_unknown(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("POST", ORDER_PATH, Reply(body={}, delay=0.3))
        rest = _rest(_client(exchange, session, timeout=0.05, retry=_retry3))
        error = await _error_of(
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "100", client_order_id="t-1")
        )
        assert isinstance(error, OrderStatusUnknownError)
        assert isinstance(error.__cause__, RequestTimeoutError)
        assert len(exchange.requests_to(ORDER_PATH)) == 1

    async def test_backend_timeout_code_on_place_order_is_status_unknown(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json(
            "POST", ORDER_PATH, {"code": -1007, "msg": "Timeout waiting for backend"}, status=408
        )
        error = await _error_of(
            _rest(_client(exchange, session, retry=_retry3)).place_order(
                "BTCUSDT", "buy", "LIMIT", "1", "100", client_order_id="t-2"
            )
        )
        assert isinstance(error, OrderStatusUnknownError)
        assert len(exchange.requests_to(ORDER_PATH)) == 1

    async def test_refused_connection_is_a_plain_connect_error(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        client = _client(exchange, session, base_url=f"http://127.0.0.1:{port}")
        error = await _error_of(
            _rest(client).place_order("BTCUSDT", "buy", "LIMIT", "1", "100", client_order_id="c")
        )
        assert type(error) is ConnectError  # provably never sent: not "unknown"

    async def test_idempotent_5xx_is_retried(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply(
            "GET",
            "/api/v3/time",
            Reply(body={"code": -1000, "msg": "x"}, status=500),
            Reply(body={"serverTime": 7}),
        )
        rest = _rest(_client(exchange, session, retry=_retry3))
        assert await rest.server_time() == 7
        assert len(exchange.seen) == 2


class TestRateLimitAnswers:
    """429 and 418 raise RateLimitError and hold the limiter; nothing is sent meanwhile."""

    async def test_429_holds_every_request_for_retry_after(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(1200, scheduler=scheduler)
        exchange.json(
            "GET",
            "/api/v3/time",
            {"code": -1003, "msg": "Too much request weight used"},
            status=429,
            headers={"Retry-After": "7"},
        )
        client = _client(exchange, session, limiter=limiter)
        error = await _error_of(client.call("GET", "/api/v3/time", weight=1, idempotent=True))
        assert isinstance(error, RateLimitError)
        assert (error.retry_after, error.banned, error.status, error.code) == (
            7.0,
            False,
            429,
            -1003,
        )
        again = await _error_of(client.call("GET", "/api/v3/ping", weight=1, idempotent=True))
        assert isinstance(again, RateLimitError)
        assert again.retry_after == pytest.approx(7.0)
        assert len(exchange.seen) == 1  # the second call never left
        scheduler.advance_by(7.0)
        exchange.json("GET", "/api/v3/ping", {})
        assert await client.call("GET", "/api/v3/ping", weight=1, idempotent=True) == {}

    async def test_418_is_a_ban_for_retry_after(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(1200, scheduler=scheduler)
        exchange.json(
            "GET",
            "/x",
            {"code": -1003, "msg": "banned"},
            status=418,
            headers={"Retry-After": "300"},
        )
        client = _client(exchange, session, limiter=limiter)
        error = await _error_of(client.call("GET", "/x", weight=1, idempotent=True))
        assert isinstance(error, RateLimitError)
        assert (error.banned, error.retry_after, error.status) == (True, 300.0, 418)
        state = limiter.state()
        assert state.banned and state.held_for == pytest.approx(300.0)

    async def test_418_without_retry_after_uses_the_banned_until_time(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        until = int(time.time() * 1000) + 600_000
        exchange.json(
            "GET",
            "/x",
            {"code": -1003, "msg": f"Way too much request weight used; IP banned until {until}."},
            status=418,
        )
        error = await _error_of(
            _client(exchange, session).call("GET", "/x", weight=1, idempotent=True)
        )
        assert isinstance(error, RateLimitError)
        assert error.retry_after == pytest.approx(600.0, abs=5.0)

    async def test_418_with_nothing_to_go_on_waits_the_shortest_documented_ban(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.reply("GET", "/x", Reply(raw=b"", status=418))
        error = await _error_of(
            _client(exchange, session).call("GET", "/x", weight=1, idempotent=True)
        )
        assert isinstance(error, RateLimitError)
        assert error.retry_after == 120.0

    async def test_order_count_429_does_not_hold_the_ip_budget(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(1200, scheduler=scheduler)
        exchange.json("POST", ORDER_PATH, {"code": -1015, "msg": "Too many new orders"}, status=429)
        exchange.json("GET", "/api/v3/time", {"serverTime": 1})
        rest = _rest(_client(exchange, session, limiter=limiter))
        error = await _error_of(
            rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "100", client_order_id="o")
        )
        assert isinstance(error, RateLimitError)
        assert (error.retry_after, error.code) == (10.0, -1015)
        assert limiter.state().held_for == 0
        assert await rest.server_time() == 1

    async def test_used_weight_header_reaches_the_limiter(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        limiter = RequestWeightLimiter(1200, scheduler=TestScheduler())
        exchange.json(
            "GET",
            "/api/v3/time",
            {"serverTime": 1},
            headers={"X-MBX-USED-WEIGHT-1M": "1100", "X-MBX-ORDER-COUNT-10S": "2"},
        )
        await _client(exchange, session, limiter=limiter).call(
            "GET", "/api/v3/time", weight=1, idempotent=True
        )
        assert limiter.used == 1100
        assert limiter.order_counts == {"10S": 2}


class TestTimestampResync:
    """-1021 triggers one clock re-sync and one retry with a fresh timestamp."""

    async def test_rejected_once_resyncs_once_and_retries_once(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        resyncs: list[int] = []

        def resync() -> Observable[Any]:
            resyncs.append(1)
            return reactivex.of(1)

        exchange.reply(
            "GET",
            "/api/v3/account",
            Reply(
                body={
                    "code": -1021,
                    "msg": "Timestamp for this request is outside of the recvWindow.",
                },
                status=400,
            ),
            Reply(body=examples["binance.spot.rest.account"]),
        )
        clock = StepClock()
        rest = _rest(_client(exchange, session, on_timestamp_rejected=resync), clock)
        balances = await rest.account()
        assert [b.asset for b in balances] == ["BTC", "LTC"]
        assert resyncs == [1]
        stamps = [s.params["timestamp"] for s in exchange.seen]
        assert len(stamps) == 2 and stamps[0] != stamps[1]

    async def test_rejected_twice_gives_up_after_one_retry(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        resyncs: list[int] = []

        def resync() -> Observable[Any]:
            resyncs.append(1)
            return reactivex.empty()

        exchange.json(
            "GET", "/api/v3/account", {"code": -1021, "msg": "ahead of server time"}, status=400
        )
        client = _client(exchange, session, on_timestamp_rejected=resync)
        error = await _error_of(_rest(client).account())
        assert isinstance(error, ExchangeError) and error.code == -1021
        assert resyncs == [1]
        assert len(exchange.seen) == 2

    async def test_failed_resync_reports_the_original_rejection(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/api/v3/account", {"code": -1021, "msg": "stale"}, status=400)
        client = _client(
            exchange,
            session,
            on_timestamp_rejected=lambda: reactivex.throw(ConnectError("time endpoint down")),
        )
        error = await _error_of(_rest(client).account())
        assert isinstance(error, ExchangeError) and error.code == -1021
        assert len(exchange.seen) == 1

    async def test_place_order_is_resent_once_after_a_timestamp_rejection(
        self, exchange: FakeExchange, session: aiohttp.ClientSession, examples: dict[str, Any]
    ) -> None:
        exchange.reply(
            "POST",
            ORDER_PATH,
            Reply(body={"code": -1021, "msg": "outside recvWindow"}, status=400),
            Reply(body=examples["binance.spot.rest.order.result"]),
        )
        client = _client(exchange, session, on_timestamp_rejected=lambda: reactivex.of(0))
        order = await _rest(client).place_order(
            "BTCUSDT", "sell", "MARKET", quantity="10", client_order_id="same-id"
        )
        assert order.status == "FILLED"
        sent = [s.params["newClientOrderId"] for s in exchange.requests_to(ORDER_PATH)]
        assert sent == ["same-id", "same-id"]


class TestGuardAndRetry:
    """The breaker judges every attempt; a retry loop cannot get past an open breaker."""

    async def test_retry_wraps_the_guard(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        exchange.json("GET", "/api/v3/time", {"code": -1000, "msg": "down"}, status=500)
        cb = CircuitBreaker(
            "rest", BreakerConfig(max_failures=2, open_timeout=30.0), scheduler=TestScheduler()
        )
        client = _client(exchange, session, guard=breaker(cb), retry=_retry3)
        error = await _error_of(client.call("GET", "/api/v3/time", weight=1, idempotent=True))
        assert isinstance(error, CircuitOpenError)  # third attempt refused by the breaker
        assert len(exchange.seen) == 2

    async def test_guard_applies_to_non_idempotent_calls_without_retry(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        subscriptions: list[int] = []

        def counting_guard(source: Observable[Any]) -> Observable[Any]:
            return reactivex.defer(lambda _: subscriptions.append(1) or source)

        exchange.json("POST", ORDER_PATH, {"code": -1000, "msg": "x"}, status=500)
        rest = _rest(_client(exchange, session, guard=counting_guard, retry=_retry3))
        await _error_of(rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1", client_order_id="g"))
        assert subscriptions == [1]


class TestSecrecy:
    """The API secret never reaches logs, exception messages or reprs."""

    async def test_secret_absent_from_errors_and_logs(
        self,
        exchange: FakeExchange,
        session: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="rxconnector")
        exchange.json("GET", "/api/v3/account", {"code": -1022, "msg": "bad signature"}, status=400)
        exchange.json("POST", ORDER_PATH, {"code": -1000, "msg": "x"}, status=500)
        exchange.reply("DELETE", ORDER_PATH, Reply(body={}, delay=0.3))
        rest = _rest(_client(exchange, session, timeout=0.05))
        errors = [
            await _error_of(rest.account()),
            await _error_of(rest.place_order("BTCUSDT", "buy", "LIMIT", "1", "1")),
            await _error_of(rest.cancel_order("BTCUSDT", order_id=1)),
        ]
        assert [type(e) for e in errors] == [
            ExchangeError,
            OrderStatusUnknownError,
            RequestTimeoutError,
        ]
        texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(rest)]
        texts += [str(e.__cause__) for e in errors if e.__cause__ is not None]
        assert caplog.records, "the pipeline should have logged something"
        for text in [*texts, caplog.text]:
            assert SECRET not in text
            assert "signature=" not in text


class TestSignerHook:
    """A custom signer is called at send time, after the limiter wait."""

    async def test_signer_runs_after_the_limiter_releases(
        self, exchange: FakeExchange, session: aiohttp.ClientSession
    ) -> None:
        scheduler = TestScheduler()
        limiter = RequestWeightLimiter(5, scheduler=scheduler)
        signed_at: list[float] = []

        def signer(params: Mapping[str, Any]) -> SignedRequest:
            signed_at.append(scheduler.clock)
            return SignedRequest(query=f"ts={scheduler.clock:g}", headers={"X-K": "v"})

        exchange.json("GET", "/s", {})
        client = _client(exchange, session, limiter=limiter)
        await client.call("GET", "/s", weight=5, signer=signer, idempotent=True)
        waiting = asyncio.ensure_future(
            client.call("GET", "/s", weight=5, signer=signer, idempotent=True)
        )
        await asyncio.sleep(0.05)
        assert signed_at == [0.0] and not waiting.done()
        scheduler.advance_to(60.0)
        assert await asyncio.wait_for(waiting, 1) == {}
        assert signed_at == [0.0, 60.0]
        assert [s.query for s in exchange.seen] == ["ts=0", "ts=60"]
        assert exchange.seen[0].headers["x-k"] == "v"
