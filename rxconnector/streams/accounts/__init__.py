"""Private account streams: one shared socket per account, reconciled after every gap.

Modules, one job each (the public entry is :class:`.account_streams.AccountStreams`):

* :mod:`.account_streams` - the feeds (orders, balances, executions, positions...) as
  views of one shared event stream;
* :mod:`.run` - one lifetime of that stream: socket, login, event flow;
* :mod:`.attempts` - one connection attempt (URL lease, ended by a refused login);
* :mod:`.rotation` - make-before-break replacement for the 24 h connection limit;
* :mod:`.view` - the account as subscribers saw it;
* :mod:`.reconcile` - after a gap, the REST calls and what they change;
* :mod:`.differences` - pure comparisons of REST answers with the view;
* :mod:`.listen_key` - Binance USD-M's listenKey lease (REST calls on a timer).

What a venue says on the wire is pure knowledge in ``rxconnector/exchanges/`` behind
:mod:`rxconnector.exchanges.account_protocol`.
"""
