"""Venue knowledge as pure, I/O-free code: one sub-package per venue.

``exchanges/<venue>/`` holds what only that venue knows - WebSocket protocol facts, wire
parsers, REST endpoint specs and reply parsers, signing, filters, book-sync rules - and
imports nothing but the base layer and ``exchanges/``. The generic machinery (transport,
hub, REST engine, order book, connector) reaches it only through the seams in
:mod:`rxconnector.exchanges.base` and the registry, :mod:`rxconnector.venues`.

Adding a venue (``acme``)
-------------------------
1. ``exchanges/acme/ws_protocol.py``: a :class:`~rxconnector.exchanges.base.WsProtocol`
   (limits, topics, subscribe/unsubscribe frames, ``route``/``control``), each constant
   citing the venue's document.
2. ``exchanges/acme/parsers.py``: wire payload -> models (``Decimal`` prices, event and
   receive time); a payload it cannot read raises ``ParseError``.
3. ``exchanges/acme/feeds.py``: a :class:`~rxconnector.exchanges.base.FeedCatalog` - one
   method per feed (a feed the venue lacks raises ``NotSupportedError``), its
   ``supported_feeds`` table and ``book_diffs``.
4. REST: endpoint specs (method, path, weight, doc citation), request builders, reply
   parsers, the error dialect, the documented weight budget (``WEIGHT_PER_MINUTE``) and
   a signer (a :class:`~rxconnector.exchanges.rest_plan.PlanSigner`) in
   ``exchanges/acme/``; then the REST calls as plans
   (:mod:`rxconnector.exchanges.rest_plan`): a
   :class:`~rxconnector.exchanges.venue_plans.VenuePlans` subclass whose methods check
   their arguments and return plan factories (pages, fallbacks, rule checks are plain
   generator code). Limits beyond request weight (an IP ban status, per-endpoint budgets,
   a requests-per-window IP budget) are data too: its ``limits``
   (:class:`~rxconnector.exchanges.dialect.RestLimits`, Bybit's in
   ``exchanges/bybit/rest_plans.py``). No engine code: the one generic client
   (:class:`~rxconnector.rest.planned.PlannedRest`) runs them and applies the limits;
   test them by sending answers by hand.
5. The order-book sync rule (``exchanges/acme/book_sync.py``) and, for accounts, the
   private-stream protocol (an ``exchanges.account_protocol.PrivateProtocol``).
6. One entry in :data:`rxconnector.venues.REGISTRY`: a ``VenueSpec`` with the name,
   default and derived URLs, CLI names, Config factory and the assembler that wires the
   pieces above into a ``Venue`` (importing them lazily; ``make_plans``,
   ``make_signer`` and ``make_dialect`` for REST).
7. ``config.py``, the vocabulary a Config is written in: the name in ``ExchangeName``
   (and any new category in ``Category``), its categories in ``VENUE_CATEGORIES``, and a
   ``Config.acme()`` factory; the README's venue table.
8. Tests: parsers against recorded payloads, the protocol against the simulator (or a
   scripted server), and the registry test (every venue's entry assembles and its feed
   catalog satisfies ``FeedCatalog``).

Nothing in the connector, hub, REST engine, CLI or bus changes: none of them names a
venue (``tests/test_architecture.py`` checks that).
"""
