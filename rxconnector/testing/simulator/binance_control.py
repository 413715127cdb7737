"""Validation of Binance live-subscription requests (PROTOCOL.md §A1.2).

Pure: text in, either a :class:`ControlRequest` or the exact error object Binance would
answer out. The error texts are the documented ones; where the docs give a serde-style
message with a position (``at line 1 column N``) the simulator fills in a position
derived from the request text, which is close to, not byte-identical with, Binance's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs

from rxconnector.testing.simulator.binance_streams import StreamKey, StreamNameError

__all__ = ["METHODS", "ControlReply", "ControlRequest", "parse_control"]

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_INT64 = 2**63
#: A request could not be served: the error object to send back.
ControlReply = dict[str, Any]


@attrs.frozen
class ControlRequest:
    """A valid request. ``streams`` for (UN)SUBSCRIBE, ``value`` for SET_PROPERTY."""

    method: str
    id: int | str | None
    streams: tuple[StreamKey, ...] = ()
    value: bool | None = None


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    return isinstance(value, str) and 0 < len(value) <= 36 and value.isalnum()


def _column(text: str) -> int:
    return len(text.rsplit("\n", 1)[-1])


def _err(code: int, msg: str, req_id: Any = ..., /) -> ControlReply:
    reply: ControlReply = {"code": code, "msg": msg}
    if req_id is not ...:
        reply["id"] = req_id
    return reply


def parse_control(
    text: str, parse_stream: Callable[[str], StreamKey]
) -> ControlRequest | ControlReply:
    """Validate one text frame; return the request or the error reply."""
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        return _err(3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}")
    if not isinstance(msg, dict):
        return _err(2, f"Invalid request: expected a JSON object at line 1 column {_column(text)}")
    if "method" not in msg:
        return _err(2, f"Invalid request: missing field `method` at line 1 column {_column(text)}")
    method = msg["method"]
    if method not in METHODS:
        shown = json.dumps(method)
        col = text.find(shown) + len(shown) if shown in text else _column(text)
        expected = ", ".join(f"`{m}`" for m in METHODS)
        label = f"`{method}`" if isinstance(method, str) else shown
        return _err(
            2,
            f"Invalid request: unknown variant {label}, expected one of {expected} "
            f"at line 1 column {col}",
        )
    if "id" not in msg or not _valid_id(msg["id"]):
        return _err(2, "Invalid request: request ID must be an unsigned integer")
    req_id = msg["id"]
    params = msg.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        return _err(2, "Invalid request: params must be an array", req_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        keys = []
        for name in params:
            try:
                keys.append(parse_stream(name))
            except StreamNameError as exc:
                return _err(2, str(exc), req_id)
        return ControlRequest(method, req_id, tuple(keys))
    if method == "LIST_SUBSCRIPTIONS":
        if params:
            return _err(2, "Invalid request: too many parameters")
        return ControlRequest(method, req_id)
    allowed = 2 if method == "SET_PROPERTY" else 1
    if len(params) > allowed:
        return _err(2, "Invalid request: too many parameters")
    if not params or not isinstance(params[0], str):
        return _err(2, "Invalid request: property name must be a string")
    if params[0] != "combined":
        return _err(0, "Unknown property", req_id)
    if method == "GET_PROPERTY":
        return ControlRequest(method, req_id)
    if len(params) < 2 or not isinstance(params[1], bool):
        return _err(1, "Invalid value type: expected Boolean")
    return ControlRequest(method, req_id, value=params[1])
