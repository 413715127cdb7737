"""Fixtures for simulator tests: a fast simulator and a real aiohttp client session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from rxconnector.testing.simulator import ExchangeSimulator


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    """A simulator ticking every 20 ms, with a stream period of 2 ticks."""
    async with ExchangeSimulator(seed=7, tick_interval=0.02, periodic_ticks=2) as s:
        yield s


@pytest.fixture
async def paused_sim() -> AsyncIterator[ExchangeSimulator]:
    """A simulator whose clock does not run: tests drive it with ``step``."""
    async with ExchangeSimulator(seed=7, autostart_market=False, periodic_ticks=2) as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
