"""Call keys: how a REST call made live and the same call made during replay are matched.

A key is the call path - method name, positional and keyword arguments, and one more
segment per call of a returned function - encoded the way the recording encodes values
(anything else by its ``repr``), so equal calls give equal keys in both runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from rxconnector.recording import encode_value

__all__ = ["key_id", "segment"]


def key_part(value: Any) -> Any:
    try:
        return encode_value(value)
    except TypeError:
        return {"$repr": repr(value)}


def segment(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    return [name, [key_part(a) for a in args], {k: key_part(kwargs[k]) for k in sorted(kwargs)}]


def key_id(key: Sequence[Any]) -> bytes:
    """A hashable, order-independent identity of a call key."""
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)
