"""Rate limiting, in one place, below everything that sends.

The venues limit how fast we may talk to them; the limits live here so that both the
WebSocket transport and the REST engine use them without either pointing up the layers:

* :mod:`~rxconnector.rate.pacing`: strict rolling-window pacing of outgoing frames
  (subscribe/unsubscribe, pings);
* :mod:`~rxconnector.rate.attempts`: the connection-attempt limiter shared by every
  connection to one venue (reconnect storms wait instead of getting the IP banned);
* :mod:`~rxconnector.rate.limiter`: REST request weights, the venues' documented
  budgets and the priority limiter (user calls before book recovery before backfills).

Layer 1: imports only the base modules (errors, models, config, log, _scheduling);
all time comes from an Rx scheduler, so tests drive it in virtual time.
"""
