"""What a REST call is, as data: the route spec a venue declares and the reply the
engine hands back to the venue's parsers.

Pure (no I/O, no reactivex): a venue module lists its routes as :class:`Endpoint`
constants and writes parsers from :class:`RestReply` to models; the one REST engine
(:mod:`rxconnector.rest`) sends the former and produces the latter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Endpoint", "RestReply"]


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
