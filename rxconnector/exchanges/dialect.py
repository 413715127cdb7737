"""How a venue spells errors in its REST answers: pure data, no I/O.

The REST pipeline is the same for every venue; what differs is which JSON body means
"error" and which error codes mean "try again", "the outcome is unknown", "your
timestamp is off" or "too many orders". A venue module builds one :class:`ErrorDialect`
and hands it to :class:`~rxconnector.rest.client.RestClient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["ErrorDialect", "code_msg_error"]


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
