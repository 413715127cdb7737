"""Turning request parameters into the exact text that is sent (and signed).

A signature covers the query string byte for byte, so the encoding must be decided in
one place and never redone later: :func:`encode_query` produces the final string, the
transport sends it with ``encoded=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson

__all__ = ["encode_query", "format_param"]


def format_param(value: Any) -> str:
    """The wire text of one parameter value, before percent-encoding.

    ``Decimal`` is written positionally (never ``1E-8``: exchanges reject exponents),
    booleans as ``true``/``false``, lists and tuples as a compact JSON array (Binance's
    ``symbols=["A","B"]``), everything else with ``str``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return orjson.dumps([format_param(v) for v in value]).decode()
    return str(value)


def encode_query(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    """``k=v&k=v`` in the given order, values percent-encoded as UTF-8; ``None`` values
    are left out (an optional parameter the caller did not set)."""
    if not params:
        return ""
    items = params.items() if isinstance(params, Mapping) else params
    return "&".join(
        f"{quote(str(k), safe='')}={quote(format_param(v), safe='')}"
        for k, v in items
        if v is not None
    )
