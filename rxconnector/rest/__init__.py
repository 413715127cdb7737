"""The one REST engine: every venue's REST calls go through these modules.

* :mod:`~rxconnector.rest.client` — the pipeline of one call (weight limiter, signing
  at send time, send, error interpretation by the venue's
  :class:`~rxconnector.exchanges.dialect.ErrorDialect`, one clock re-sync, breaker
  guard, retry for idempotent calls);
* :mod:`~rxconnector.rest.gates` — limits the weight limiter cannot express (an IP ban
  answered with a plain status, per-endpoint budgets, a requests-per-window IP
  budget), driven by rules a venue declares as data;
* :mod:`~rxconnector.rest.symbol_rules` — the trading rules orders are checked against;
* :mod:`~rxconnector.rest.api` — :class:`~rxconnector.rest.api.RestApi`, the calls
  every venue's client answers, declared once;
* :mod:`~rxconnector.rest.plan_runner` — runs a venue's REST *plan* (the pure flows
  of :mod:`rxconnector.exchanges.rest_plan`: calls, pages, fallbacks) as a cold,
  cancellable Observable;
* :mod:`~rxconnector.rest.planned` — :class:`~rxconnector.rest.planned.PlannedRest`, the
  one client of every venue written as plans: it is given the venue's plan functions
  (``exchanges/<venue>/``), its signer and its error dialect, all explicitly, and
  applies the limits its plans declare through :mod:`~rxconnector.rest.gates`.

Nothing here imports a venue's modules: which plans, signer and dialect a venue uses is
said by its entry in :mod:`rxconnector.venues` (``tests/test_architecture.py`` checks it).
"""
