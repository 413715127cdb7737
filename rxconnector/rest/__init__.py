"""The one REST engine: every venue's REST calls go through these modules.

* :mod:`~rxconnector.rest.client` — the pipeline of one call (weight limiter, signing
  at send time, send, error interpretation by the venue's
  :class:`~rxconnector.exchanges.dialect.ErrorDialect`, one clock re-sync, breaker
  guard, retry for idempotent calls);
* :mod:`~rxconnector.rest.gates` — limits the weight limiter cannot express (an IP ban
  answered with a plain status, per-endpoint budgets, a requests-per-window IP
  budget), driven by rules a venue declares as data;
* :mod:`~rxconnector.rest.paging` — page after page, in order, cancellable;
* :mod:`~rxconnector.rest.symbol_rules` — the trading rules orders are checked against;
* :mod:`~rxconnector.rest.api` — :class:`~rxconnector.rest.api.RestApi`, the calls
  every venue's client answers, declared once;
* the venue clients, thin compositions of the above with the pure venue code
  (endpoint specs, request builders, reply parsers, signing) under
  :mod:`rxconnector.exchanges`: :mod:`~rxconnector.rest.binance_spot`,
  :mod:`~rxconnector.rest.binance_futures` (both on
  :mod:`~rxconnector.rest.binance_calls`) and :mod:`~rxconnector.rest.bybit` (on
  :mod:`~rxconnector.rest.bybit_calls`).
"""
