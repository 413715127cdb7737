"""Small client-side helpers shared by the simulator tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp


async def recv_json(ws: aiohttp.ClientWebSocketResponse, wait: float = 2.0) -> Any:
    """The next text frame, decoded; fails on close or timeout."""
    msg = await ws.receive(timeout=wait)
    assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
    return json.loads(msg.data)


async def recv_until(
    ws: aiohttp.ClientWebSocketResponse,
    predicate: Callable[[Any], bool],
    wait: float = 2.0,
    limit: int = 10_000,
) -> Any:
    """The first decoded text frame satisfying ``predicate`` (others are skipped)."""
    for _ in range(limit):
        data = await recv_json(ws, wait)
        if predicate(data):
            return data
    raise AssertionError("no matching frame")


async def wait_closed(ws: aiohttp.ClientWebSocketResponse, wait: float = 2.0) -> int | None:
    """Read until the server closes; return the close code the client saw."""
    while True:
        msg = await ws.receive(timeout=wait)
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        ):
            return ws.close_code


def shape(value: Any) -> Any:
    """Key sets and value types of a payload, recursively: what "same shape" means."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def levels(side: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in side]


class LocalBook:
    """A client-side book built by Binance's documented procedure (PROTOCOL.md §A1.5)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.update_id: int = snapshot["lastUpdateId"]
        self.bids = dict(levels(snapshot["bids"]))
        self.asks = dict(levels(snapshot["asks"]))

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one diff; False if it was stale; raises on a gap."""
        if event["u"] <= self.update_id:
            return False
        assert event["U"] <= self.update_id + 1, f"gap: U={event['U']} local={self.update_id}"
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for price, qty in levels(event[key]):
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.update_id = event["u"]
        return True

    def sides(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        return bids, asks
