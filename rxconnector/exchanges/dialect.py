"""How a venue spells errors in its REST answers: pure data, no I/O.

The REST pipeline is the same for every venue; what differs is which JSON body means
"error" and which error codes mean "try again", "the outcome is unknown", "your
timestamp is off" or "too many orders". A venue module builds one :class:`ErrorDialect`
and hands it to :class:`~rxconnector.rest.client.RestClient`. Venues whose limits the
weight limiter cannot express also declare them here as data (:class:`IpBanRule`,
:class:`EndpointLimitRule`, :class:`RequestWindow`) for the engine's gates
(:mod:`rxconnector.rest.gates`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from rxconnector.errors import ConfigError

__all__ = [
    "EndpointLimitRule",
    "ErrorDialect",
    "IpBanRule",
    "RequestWindow",
    "RestLimits",
    "code_msg_error",
]


def code_msg_error(status: int, data: Any) -> tuple[int, str] | None:
    """``(code, msg)`` for a ``{"code": <int>, "msg": <str>}`` error body, else ``None``.

    Only treated as an error when the HTTP status says so or the code is negative:
    some endpoints answer 200 with a positive ``code`` meaning success.
    """
    if not isinstance(data, dict):
        return None
    code, msg = data.get("code"), data.get("msg")
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(msg, str):
        return None
    if status >= 400 or code < 0:
        return code, msg
    return None


@attrs.frozen
class ErrorDialect:
    """A venue's error vocabulary.

    ``extract(status, body)`` returns ``(code, message)`` for an error body;
    ``retryable_codes`` are failures a later attempt can fix (overload, backend
    timeout); ``status_unknown_codes`` mean a write may or may not have happened;
    ``timestamp_codes`` mean the request's timestamp was rejected (clock re-sync helps);
    ``order_rate_codes`` mean the account's order-count limit (not the IP's weight)
    was broken.
    """

    extract: Callable[[int, Any], tuple[int, str] | None] = code_msg_error
    retryable_codes: frozenset[int] = frozenset()
    status_unknown_codes: frozenset[int] = frozenset()
    timestamp_codes: frozenset[int] = frozenset()
    order_rate_codes: frozenset[int] = frozenset()
    #: The answer header carrying the IP's used request weight, logged with each
    #: response (``None``: the venue does not weigh requests).
    used_weight_header: str | None = None
    #: Waits when a rate-limit answer has no ``Retry-After``: after a ban (418), after
    #: an IP limit (429), after an order-count limit (``order_rate_codes``).
    ban_seconds: float = 120.0
    retry_after_seconds: float = 60.0
    order_rate_retry_seconds: float = 10.0
    #: Finds the ban's end (ms or µs since the epoch, group 1) in a ban message.
    banned_until: re.Pattern[str] | None = None


@attrs.frozen
class IpBanRule:
    """A venue that bans an IP with a plain HTTP status (Bybit: 403 "access too
    frequent", at least ten minutes) rather than a 418 with a ``Retry-After``: the
    engine turns that status into a banned ``RateLimitError`` and refuses every call
    for ``seconds`` without sending anything."""

    status: int
    seconds: float
    venue_title: str


@attrs.frozen
class EndpointLimitRule:
    """Per-endpoint request budgets a venue announces in answer headers (Bybit's
    ``X-Bapi-Limit-*``): ``status_header`` is the requests left, ``reset_header`` the
    exchange ms when the window resets. An envelope whose ``code_key`` is ``code``
    means the budget was broken; the engine waits ``retry_seconds`` when no reset time
    came, and never more than ``max_wait_seconds`` (a longer reset means the clocks
    disagree)."""

    status_header: str
    reset_header: str
    limit_header: str
    code: int
    code_key: str
    message_key: str
    retry_seconds: float
    max_wait_seconds: float


@attrs.frozen
class RequestWindow:
    """An IP budget counted in requests per rolling window (Bybit: 600 per 5 s), which
    a per-minute weight limiter cannot enforce: the engine paces every request by it."""

    limit: int
    seconds: float

    def share(self, limit: int) -> RequestWindow:
        """This window with at most ``limit`` requests (1 up to this one's): the part of
        an IP budget one client may use when several processes share the IP."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.limit:
            raise ConfigError(
                "ip_requests_per_window",
                f"must be 1..{self.limit} (the venue's IP limit per {self.seconds:g} s)",
                limit,
            )
        return RequestWindow(limit=limit, seconds=self.seconds)


@attrs.frozen
class RestLimits:
    """Every REST limit of a venue beyond the weight limiter, as data for the engine's
    gates (:class:`~rxconnector.rest.gates.RequestGates`); each is optional, and a
    venue that declares none is limited by request weight alone.
    ``endpoint_limits`` and ``ip_window`` are paced together (declare both or neither).
    """

    ip_ban: IpBanRule | None = None
    endpoint_limits: EndpointLimitRule | None = None
    ip_window: RequestWindow | None = None

    def __attrs_post_init__(self) -> None:
        if (self.endpoint_limits is None) != (self.ip_window is None):
            raise ValueError("endpoint_limits and ip_window are paced together: give both")
