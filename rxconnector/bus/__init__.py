"""Scale-out on Redis Streams: a feed-handler process publishes normalized feeds, and
:class:`RemoteConnector` gives the same Observables back on any machine.

Needs the ``redis`` extra (``pip install 'rxconnector[redis]'``); ``import rxconnector``
works without it, and ``rxconnector.bus`` says what is missing when it is imported.

* :class:`Publisher` (and ``rxconnector publish``) writes a Connector's feeds to streams
  ``rxc:{venue}:{feed}:{SYMBOL}``, holding a lease per stream (hot standbys wait for it),
  with fenced writes, exactly-once trades and gap markers.
* :class:`RemoteConnector` reads them back (plain or through consumer groups) with the
  same feed methods and models as :class:`~rxconnector.Connector`.
* :mod:`rxconnector.bus.codec` is the entry format (documented in README for consumers in
  other languages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ENTRY_VERSION",
    "FeedTarget",
    "Publisher",
    "PublisherStats",
    "RemoteConnector",
    "decode_entry",
    "default_venue_name",
    "encode_gap",
    "encode_model",
    "stream_key",
]

#: public name -> module; loaded on first access so that ``rxconnector.bus.command`` (the
#: CLI's parser) and the codec work without the redis client installed.
_HOMES = {
    "ENTRY_VERSION": "codec",
    "decode_entry": "codec",
    "encode_gap": "codec",
    "encode_model": "codec",
    "stream_key": "keys",
    "FeedTarget": "slots",
    "Publisher": "publisher",
    "PublisherStats": "slots",
    "default_venue_name": "publisher",
    "RemoteConnector": "remote",
}

if TYPE_CHECKING:
    from rxconnector.bus.codec import ENTRY_VERSION, decode_entry, encode_gap, encode_model
    from rxconnector.bus.keys import stream_key
    from rxconnector.bus.publisher import Publisher, default_venue_name
    from rxconnector.bus.remote import RemoteConnector
    from rxconnector.bus.slots import FeedTarget, PublisherStats


def require_redis() -> None:
    """Raise a helpful ImportError when the ``redis`` extra is not installed."""
    try:
        importlib.import_module("redis.asyncio")
    except ImportError as exc:
        raise ImportError(
            "rxconnector.bus needs the redis client: pip install 'rxconnector[redis]'"
        ) from exc


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rxconnector.bus' has no attribute {name!r}")
    if home in ("publisher", "remote"):
        require_redis()
    value = getattr(importlib.import_module(f"rxconnector.bus.{home}"), name)
    globals()[name] = value
    return value
