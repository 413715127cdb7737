"""Binance Spot REST plumbing shared by the simulator's market and trading endpoints.

Errors in Binance's shape (:class:`ApiError`), the request log tests read
(:class:`RestRecord`), parameter parsing and the depth weight table.
"""

from __future__ import annotations

import attrs

__all__ = ["ApiError", "RestRecord", "depth_weight", "int_param", "mandatory"]


class ApiError(Exception):
    """An error answer: HTTP status plus Binance's ``{"code", "msg"}`` body."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after


@attrs.frozen(slots=True)
class RestRecord:
    """One REST request the simulator answered (for tests of client behaviour)."""

    at: float  # loop time
    method: str
    path: str
    params: dict[str, str]
    status: int
    weight: int


def depth_weight(limit: int) -> int:
    """``/api/v3/depth`` weight by limit (1-100: 5, 101-500: 25, 501-1000: 50, else 250)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def int_param(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def mandatory(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )
