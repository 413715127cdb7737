"""What a REST call is, as data: the route spec a venue declares and the reply the
engine hands back to the venue's parsers.

Pure (no I/O, no reactivex): a venue module lists its routes as :class:`Endpoint`
constants and writes parsers from :class:`RestReply` to models; the one REST engine
(:mod:`rxconnector.rest`) sends the former and produces the latter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["Endpoint", "RestReply", "SignedRequest", "Signer"]


@attrs.frozen
class Endpoint:
    """One REST route: HTTP method, path, request weight, whether it is SIGNED, and
    ``doc``, where the facts come from (a page of the venue's API docs)."""

    method: str
    path: str
    weight: int
    signed: bool = False
    doc: str = ""


@attrs.frozen
class RestReply:
    """A successful answer: decoded JSON plus what models need from the envelope."""

    data: Any
    status: int
    headers: Mapping[str, str]
    received_at: float
    elapsed: float


@attrs.frozen
class SignedRequest:
    """What a signer produces: the final query string (signature included), extra
    headers (the API key) and an optional body (Bybit signs a JSON body)."""

    query: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: str | None = None


#: Called by the engine at send time (after any limiter wait) with the call's
#: parameters; adds timestamp and signature, so a queued request is never stale.
Signer = Callable[[Mapping[str, Any]], SignedRequest]
