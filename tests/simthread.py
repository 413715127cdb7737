"""An ExchangeSimulator served from a loop in a background thread, for tests of blocking
code (the sync facade, README scripts that call ``asyncio.run`` themselves)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from rxconnector.testing import ExchangeSimulator


class SimThread:
    """An ExchangeSimulator served from a loop in a background thread."""

    def __init__(self, symbols: Sequence[str], **options: Any) -> None:
        self.symbols = tuple(symbols)
        self.options = options
        self.ready = threading.Event()
        self.sim: ExchangeSimulator | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="test-sim")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        async with ExchangeSimulator(symbols=self.symbols, **self.options) as sim:
            self.sim = sim
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> ExchangeSimulator:
        self.thread.start()
        assert self.ready.wait(30), "the simulator did not start"
        assert self.sim is not None
        return self.sim

    def __exit__(self, *_: object) -> None:
        assert self.loop is not None and self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
