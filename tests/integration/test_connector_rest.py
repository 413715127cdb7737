"""The connector's REST side against the simulator: clock sync, -1021, breaker, bans.

Real aiohttp server on 127.0.0.1 (the ExchangeSimulator); nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from reactivex import operators as ops

import rxconnector as rxc
from rxconnector.testing import ExchangeSimulator

KEY = "simkey"
SECRET = "sim-secret-value-that-must-never-leak"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=3, symbols=("BTCUSDT",), tick_interval=0.02) as server:
        server.add_api_key(KEY, SECRET)
        yield server


def _config(sim: ExchangeSimulator, **overrides: object) -> rxc.Config:
    return rxc.Config.binance(
        api_key=KEY, api_secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url, **overrides
    )


class TestClockSync:
    async def test_offset_of_a_shifted_server_is_measured_within_the_round_trip(
        self, sim: ExchangeSimulator
    ) -> None:
        """A server 3 s ahead is measured as +3000 ms, within the sample's round trip."""
        sim.clock_offset_ms = 3000
        errors: list[Exception] = []
        async with rxc.Connector(_config(sim)) as conn:
            conn.errors.subscribe(errors.append)
            offset = await conn.clock.pipe(ops.first())
            assert abs(offset.offset_ms - 3000) <= offset.rtt_ms / 2 + 2
            assert abs(conn.now() - (await conn.server_time())) < 200
        drift = [e for e in errors if isinstance(e, rxc.ClockSyncError)]
        assert drift == []  # reported during start, before we subscribed; see next test

    async def test_large_offset_is_reported_on_errors(self, sim: ExchangeSimulator) -> None:
        """An offset above max_offset reaches Connector.errors as ClockSyncError."""
        sim.clock_offset_ms = 3000
        conn = rxc.Connector(_config(sim, clock_sync={"sync_interval": 0.2}))
        errors: list[Exception] = []
        conn.errors.subscribe(errors.append)
        async with conn:
            for _ in range(50):
                if any(isinstance(e, rxc.ClockSyncError) for e in errors):
                    break
                await asyncio.sleep(0.05)
        drift = [e for e in errors if isinstance(e, rxc.ClockSyncError)]
        assert drift and abs(drift[0].offset_ms - 3000) < 200 and drift[0].limit_ms == 500

    async def test_signed_request_survives_a_skewed_clock(self, sim: ExchangeSimulator) -> None:
        """Signed requests use the corrected time, so a 3 s skew does not cause -1021."""
        sim.clock_offset_ms = -3000
        async with rxc.Connector(_config(sim)) as conn:
            balances = await conn.account()
            assert balances is not None
        # The first request already carried the corrected time: a -1021 followed by the
        # re-sync-and-retry path would also end in balances, but with two requests.
        accounts = [r for r in sim.rest_log if r.path.endswith("/account")]
        assert [r.status for r in accounts] == [200]

    async def test_minus_1021_triggers_resync_and_one_retry(self, sim: ExchangeSimulator) -> None:
        """A -1021 answer re-syncs the clock and retries the request once."""
        async with rxc.Connector(_config(sim)) as conn:
            before = sum(1 for r in sim.rest_log if r.path.endswith("/time"))
            sim.reject_timestamp_once()
            await conn.account()
            after = sum(1 for r in sim.rest_log if r.path.endswith("/time"))
            accounts = [r for r in sim.rest_log if r.path.endswith("/account")]
            assert after > before  # the clock was re-synced
            # the rejected request and exactly one retry, which succeeded
            assert [r.status for r in accounts] == [400, 200]


class TestBreakerAndLimits:
    async def test_breaker_opens_after_consecutive_5xx_and_fails_fast(
        self, sim: ExchangeSimulator
    ) -> None:
        """Five 5xx answers open the breaker; then calls fail at once without a request."""
        cfg = _config(sim, clock_sync={"enabled": False})
        states: list[rxc.BreakerState] = []
        async with rxc.Connector(cfg) as conn:
            conn.breaker_state.subscribe(states.append)
            started = len(sim.rest_log)  # start() read exchangeInfo's rate limits
            sim.fail_rest(status=503, count=100)
            for _ in range(5):  # idempotent calls retry, so fewer calls than failures
                if conn.breaker.current is rxc.BreakerState.OPEN:
                    break
                with pytest.raises(rxc.RxConnectorError):
                    await conn.ping()
            assert conn.breaker.current is rxc.BreakerState.OPEN
            sent = len(sim.rest_log)
            assert [r.status for r in sim.rest_log[started:]] == [503] * 5  # at the 5th
            with pytest.raises(rxc.CircuitOpenError) as info:
                await conn.ping()
            assert len(sim.rest_log) == sent
            assert 0 < info.value.retry_after <= 30
        assert states[0] is rxc.BreakerState.CLOSED and rxc.BreakerState.OPEN in states

    async def test_418_ban_holds_every_request_and_opens_breaker(
        self, sim: ExchangeSimulator
    ) -> None:
        """A 418 with Retry-After: no request is sent during the ban, the breaker opens."""
        cfg = _config(sim, clock_sync={"enabled": False})
        async with rxc.Connector(cfg) as conn:
            sim.fail_rest(status=418, count=1, retry_after=120)
            with pytest.raises(rxc.RateLimitError) as info:
                await conn.ping()
            assert info.value.banned and info.value.retry_after == pytest.approx(120, abs=1)
            sent = len(sim.rest_log)
            with pytest.raises((rxc.RateLimitError, rxc.CircuitOpenError)):
                await conn.server_time()
            assert len(sim.rest_log) == sent
            assert conn.breaker.current is rxc.BreakerState.OPEN

    async def test_429_holds_requests_until_retry_after(self, sim: ExchangeSimulator) -> None:
        """After a 429 nothing is sent before Retry-After; afterwards calls work again."""
        cfg = _config(sim, clock_sync={"enabled": False}, breaker={"enabled": False})
        async with rxc.Connector(cfg) as conn:
            sim.fail_rest(status=429, count=1, retry_after=1)
            with pytest.raises(rxc.RateLimitError):
                await conn.ping()
            sent = len(sim.rest_log)
            with pytest.raises(rxc.RateLimitError):
                await conn.server_time()
            assert len(sim.rest_log) == sent
            await asyncio.sleep(1.1)
            assert await conn.server_time() > 0


class TestSecrets:
    async def test_secret_never_in_logs_of_a_signed_flow(
        self, sim: ExchangeSimulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """All log output of a signed flow with failures is free of the secret."""
        with caplog.at_level(logging.DEBUG):
            async with rxc.Connector(_config(sim)) as conn:
                await conn.account()
                sim.reject_timestamp_once()
                await conn.account()
                sim.fail_rest(status=500, count=1)
                await conn.account()  # one 500, retried (reads are idempotent)
                sim.fail_rest(status=500, count=10)
                with pytest.raises(rxc.ExchangeError) as info:
                    await conn.account()
                assert info.value.status == 500
                assert SECRET not in repr(info.value) and SECRET not in str(info.value)
        assert caplog.records
        assert SECRET not in caplog.text


class TestStart:
    async def test_start_does_not_wait_out_an_unreachable_rest_api(self) -> None:
        """With REST unreachable, start() fails as soon as the first clock sync has
        failed, with one ConnectError (tests/integration/test_unreachable.py has the
        message), not after a long timeout, and releases the connector."""
        import socket

        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cfg = rxc.Config.binance(
            rest_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}"
        )
        conn = rxc.Connector(cfg)
        errors: list[Exception] = []
        conn.errors.subscribe(errors.append)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(rxc.ConnectError, match="cannot reach binance"):
            async with conn:
                pass
        assert loop.time() - began < 10  # was rest_timeout * (samples + 1) = 40 s
        # the clock's own failure is reported too: the transport error, or an open
        # breaker when the exchangeInfo probe's failures opened it first
        assert any(isinstance(e, rxc.ConnectError | rxc.CircuitOpenError) for e in errors)
        assert not conn.started and not conn._sessions.is_open

    @pytest.mark.parametrize("stage", ["rate-limit probe", "first clock sync"])
    async def test_cancelled_start_releases_everything(
        self, sim: ExchangeSimulator, stage: str
    ) -> None:
        """A start() cancelled while it waits (for the exchangeInfo rate-limit probe, or
        for the first clock sync) stops the connector itself (no open session, no
        running clock sync) and the cancellation propagates. Each stage is waited for,
        not slept into: start() waits for the probe first, so a fixed sleep only ever
        reached the probe."""
        sim.rest_latency = 1.0
        conn = rxc.Connector(_config(sim))
        task = asyncio.ensure_future(conn.start())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0

        def reached() -> bool:
            if stage == "rate-limit probe":
                return conn._runtime.probing
            return conn._runtime.clock_running

        while not reached():
            assert not task.done() and loop.time() < deadline, f"start() never reached {stage}"
            await asyncio.sleep(0.005)
        if stage == "rate-limit probe":
            assert not conn._runtime.clock_running  # still waiting for the probe
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not conn.started
        assert not conn._sessions.is_open  # closed and released
        assert not conn._runtime.clock_running
