"""The declared construction seams of :class:`~rxconnector.connector.Connector`.

A connector builds three things of its own: the venue REST object (when it starts),
one subscription hub per WebSocket endpoint (when a topic on it is first subscribed)
and the feeds it hands out. Code that needs a connector whose parts come from
elsewhere - the recorder taps them, the replay replaces them with a recording - passes
factories for them to the constructor, like ``httpx.Client(transport=...)``, instead of
overriding the connector's internals::

    Connector(config,
              rest_factory=lambda build: Tap(build()),          # wrap the real one
              hub_factory=lambda topic, live: ReplayHub(...),  # or never build it
              feed_view=lambda feed: feed)                      # every feed handed out

Each factory receives the connector's own builder, so a wrapper calls it and a
stand-in does not (then nothing touches the network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from reactivex import Observable

from rxconnector.streams.messages import TopicMessage

__all__ = ["FeedView", "HubFactory", "RestFactory", "TopicHub"]


class TopicHub(Protocol):
    """What the connector needs from a subscription hub (``SubscriptionHub`` or a
    stand-in such as the replay's ``ReplayHub``)."""

    def feed(self, topic: str) -> Observable[TopicMessage]:
        """``topic``'s messages ``(received_at, payload)`` and restart markers; shared
        by every subscriber, subscribed at the exchange while anybody listens."""
        ...

    def resubscribe(self, topic: str) -> None:
        """Ask the exchange for ``topic`` again (an order book that lost its place)."""
        ...

    async def close(self) -> None:
        """Complete every feed and release the connections."""
        ...


#: Called once when the connector starts, with the builder of the connector's own venue
#: REST object (limiter, breaker, retry, signing); returns the REST object to use: what
#: the builder returns, a wrapper around it, or a stand-in that never calls it.
RestFactory: TypeAlias = Callable[[Callable[[], Any]], Any]

#: Called with a topic whenever the connector needs the hub serving it (a topic's shared
#: feed connecting, an order book asking for a resubscription), and with the connector's
#: own ``topic -> hub`` (which shares one live hub per endpoint and raises when the
#: connector is not running); returns the hub to use.
HubFactory: TypeAlias = Callable[[str, Callable[[str], TopicHub]], TopicHub]

#: Applied to every feed the connector hands out (market feeds, the gap-free trade
#: feeds, order books), e.g. to subscribe them on a virtual-time scheduler.
FeedView: TypeAlias = Callable[[Observable[Any]], Observable[Any]]
