"""What the subscription hub emits on a topic feed.

A topic feed (``SubscriptionHub.feed(topic)``) emits :data:`RawMessage` tuples for data
and a :class:`StreamRestart` marker after the topic was subscribed again: on a fresh
connection (after a disconnect, a stall, or a failed rotation), or on the same one when
a consumer asked for a renewal (``SubscriptionHub.resubscribe``, which makes Bybit send
a fresh order-book snapshot). Data between the last
message before the marker and the first after it may be missing: plain feeds just skip
the marker, the order book resyncs, trade feeds backfill the id gap over REST.
A make-before-break rotation that lost nothing emits no marker.
"""

from __future__ import annotations

import attrs

__all__ = ["RawMessage", "StreamRestart", "TopicMessage"]

#: (local receive time in epoch ms, decoded payload of the data message)
RawMessage = tuple[float, object]


@attrs.frozen
class StreamRestart:
    """Marker: ``topic`` was resubscribed; messages may be missing before this point."""

    topic: str
    reason: str


TopicMessage = RawMessage | StreamRestart
