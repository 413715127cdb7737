"""An exchange that cannot be reached fails loudly, once, and soon.

Three ways of not reaching a server, all on this machine (no test touches the
internet): a refused port, a host name under ``.invalid`` (RFC 2606: never resolves),
and TLS spoken to a plain-HTTP loopback server. ``Connector.start()`` raises one
``ConnectError`` naming the host and what was tried within ``rest_timeout`` x retries;
feeds whose socket cannot connect report each attempt on ``connection_state``; the CLI's
``watch`` and ``record`` exit non-zero saying why they received nothing.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

import rxconnector as rxc
from rxconnector.testing.simulator import ExchangeSimulator

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1.0
#: three attempts of rest_timeout each plus the retry backoff (at most 0.5 + 1 + 2 x 0.25 s)
BOUND = 3 * TIMEOUT + 2.0 + 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def plain_http() -> AsyncIterator[int]:
    """A plain-HTTP server on 127.0.0.1: speaking TLS to it fails the handshake."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    yield port
    await runner.cleanup()


async def _start_fails(config: rxc.Config) -> tuple[rxc.ConnectError, float]:
    conn = rxc.Connector(config)
    started = time.monotonic()
    with pytest.raises(rxc.ConnectError) as info:
        await conn.start()
    elapsed = time.monotonic() - started
    assert not conn.started
    await conn.stop()  # idempotent after a failed start
    return info.value, elapsed


def _cfg(rest_url: str, **extra: object) -> rxc.Config:
    return rxc.Config.binance(rest_url=rest_url, connection={"rest_timeout": TIMEOUT}, **extra)


class TestStartFails:
    async def test_connection_refused(self) -> None:
        port = _free_port()
        error, elapsed = await _start_fails(_cfg(f"http://127.0.0.1:{port}"))
        text = str(error)
        assert f"127.0.0.1:{port}" in text
        assert "connection refused" in text
        assert "GET /api/v3/time" in text and "up to 3 attempts" in text
        assert elapsed < BOUND

    async def test_unresolvable_host(self) -> None:
        error, elapsed = await _start_fails(_cfg("https://exchange.invalid"))
        text = str(error)
        assert "exchange.invalid" in text
        assert "DNS" in text
        assert elapsed < BOUND

    async def test_tls_failure(self, plain_http: int) -> None:
        error, elapsed = await _start_fails(_cfg(f"https://127.0.0.1:{plain_http}"))
        text = str(error)
        assert f"127.0.0.1:{plain_http}" in text
        assert "TLS" in text
        assert elapsed < BOUND

    async def test_a_server_that_never_answers(self) -> None:
        """TCP accepted, no HTTP answer ever: after 3 attempts of ``rest_timeout`` each
        (and the backoff between them) start() fails naming the timeout."""
        held: list[asyncio.StreamWriter] = []

        async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # keep the socket open, say nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            config = rxc.Config.binance(
                rest_url=f"http://127.0.0.1:{port}", connection={"rest_timeout": 0.4}
            )
            error, elapsed = await _start_fails(config)
        finally:
            for writer in held:
                writer.close()
            server.close()
            await server.wait_closed()
        assert "no answer within rest_timeout (0.4 s)" in str(error)
        assert elapsed < 3 * 0.4 + 2.0 + 3.0

    async def test_a_server_that_answers_is_not_refused(self) -> None:
        """A reachable exchange starts as before."""
        async with ExchangeSimulator(seed=1) as sim, rxc.Connector(sim.connector_config()) as conn:
            assert conn.started


class TestFeedsReportAttempts:
    async def test_reconnect_attempts_on_connection_state(self) -> None:
        """REST works, the stream host refuses: each attempt is a RECONNECTING event with
        its number, delay and the reason."""
        port = _free_port()
        async with ExchangeSimulator(seed=1) as sim:
            config = rxc.Config.binance(
                rest_url=sim.rest_url,
                ws_url=f"ws://127.0.0.1:{port}",
                connection={"reconnect_delay": 0.05, "reconnect_max_delay": 0.1},
            )
            events: list[rxc.ConnectionEvent] = []
            async with rxc.Connector(config) as conn:
                conn.connection_state.subscribe(events.append)
                sub = conn.ticker("BTCUSDT").subscribe(lambda _t: None)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    if len([e for e in events if e.state is rxc.ConnectionState.RECONNECTING]) >= 3:
                        break
                    await asyncio.sleep(0.02)
                sub.dispose()
        attempts = [e for e in events if e.state is rxc.ConnectionState.RECONNECTING]
        assert [e.attempt for e in attempts[:3]] == [1, 2, 3]
        assert all("refused" in e.reason.lower() for e in attempts[:3]), attempts[0].reason


def _cli(*argv: str, timeout: float = 60) -> tuple[int, str, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rxconnector", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator(seed=1, tick_interval=0.05) as s:
        yield s


class TestCli:
    async def test_watch_unreachable_rest_is_one_clear_error(self) -> None:
        port = _free_port()
        code, _out, err, _t = await asyncio.to_thread(
            _cli, "watch", "binance", "ticker", "BTCUSDT", "--rest-url", f"http://127.0.0.1:{port}"
        )
        assert code == 1
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert f"127.0.0.1:{port}" in lines[0] and "connection refused" in lines[0]

    async def test_watch_unreachable_stream_exits_1_with_the_reason(
        self, sim: ExchangeSimulator
    ) -> None:
        port = _free_port()
        argv = ("watch", "binance", "ticker", "BTCUSDT", "--seconds", "2")
        urls = ("--rest-url", sim.rest_url, "--ws-url", f"ws://127.0.0.1:{port}")
        code, _out, err, _t = await asyncio.to_thread(_cli, *argv, *urls)
        assert code == 1, err
        assert "received nothing" in err and "refused" in err
        code, _out, verbose, _t = await asyncio.to_thread(_cli, "-v", *argv, *urls)
        assert code == 1
        assert "reconnecting (attempt 1 in" in verbose, verbose
        assert "connection refused" in verbose

    async def test_watch_unknown_symbol_fails_at_once_printed_once(
        self, sim: ExchangeSimulator
    ) -> None:
        argv = ("watch", "binance", "ticker", "FOOUSDT", "--seconds", "20")
        urls = ("--rest-url", sim.rest_url, "--ws-url", sim.ws_url)
        code, _out, err, elapsed = await asyncio.to_thread(_cli, *argv, *urls)
        assert code == 1
        assert err.lower().count("unknown symbol") == 1, err
        assert elapsed < 15

    async def test_record_unknown_symbol_fails_at_once(
        self, sim: ExchangeSimulator, tmp_path: Path
    ) -> None:
        out = tmp_path / "x.jsonl.gz"
        argv = ("record", "binance", "trades", "FOOUSDT", "-o", str(out), "--seconds", "20")
        urls = ("--rest-url", sim.rest_url, "--ws-url", sim.ws_url)
        code, stdout, err, elapsed = await asyncio.to_thread(_cli, *argv, *urls)
        assert code == 1
        assert (stdout + err).lower().count("unknown symbol") == 1, stdout + err
        assert elapsed < 15

    async def test_record_unreachable_stream_exits_1(
        self, sim: ExchangeSimulator, tmp_path: Path
    ) -> None:
        port = _free_port()
        out = tmp_path / "x.jsonl.gz"
        argv = ("record", "binance", "trades", "BTCUSDT", "-o", str(out), "--seconds", "2")
        urls = ("--rest-url", sim.rest_url, "--ws-url", f"ws://127.0.0.1:{port}")
        code, stdout, err, _t = await asyncio.to_thread(_cli, *argv, *urls)
        assert code == 1, stdout + err
        assert "received nothing" in err and "refused" in err
