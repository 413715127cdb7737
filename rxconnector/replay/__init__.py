"""Record live feeds to a file and replay them later, deterministically, in virtual time.

Recording::

    async with RecordingConnector(rxc.Config.binance(), "btc.jsonl.gz",
                                  feeds=["trades"], symbols=["BTCUSDT"]) as conn:
        conn.trades("BTCUSDT").subscribe(print)      # a normal Connector...
        await asyncio.sleep(60)                      # ...that writes what it receives

Replaying::

    replay = rxc.replay.open("btc.jsonl.gz")         # a Connector-like object
    replay.trades("BTCUSDT").pipe(
        ops.buffer_with_time(1.0),                   # windows in *recorded* time
    ).subscribe(print)                               # (replay.scheduler is the default)
    replay.run()                                     # as fast as the CPU allows

``run()`` is synchronous on purpose: with a virtual-time scheduler there is nothing to
wait for, so a unit test or script replays with no event loop at all. It holds the
thread until the file is done, so inside a running loop (a notebook, an async
application) use ``await replay.play()``, which yields to the loop as it goes.

:class:`ReplayConnector` *is* a :class:`~rxconnector.connector.Connector`: its feeds are
built by the very same code (feed specs, parsers, order-book maintenance, trade
continuity, sharing); only the subscription hub is replaced by a :class:`ReplayHub` fed
from the file, and the REST API by :class:`ReplayRest`, which answers with what the live
connector's REST calls returned. Time is a ``HistoricalScheduler`` (any
``VirtualTimeScheduler`` may be passed) advanced to each entry's recorded time before
the entry is applied. Both connectors are built through the Connector's declared
construction seams (:mod:`rxconnector.seams`: ``rest_factory``, ``hub_factory``,
``feed_view``, ``start_offline``), never by overriding its internals.

Where things are: :mod:`~rxconnector.replay.recorder` (the recording connector and
its taps), :mod:`~rxconnector.replay.writer` and :mod:`~rxconnector.replay.reader`
(the file; its format is :mod:`rxconnector.recording`),
:mod:`~rxconnector.replay.replayer` (the replay connector and its clock),
:mod:`~rxconnector.replay.hub` and :mod:`~rxconnector.replay.rest` (the stand-ins),
:mod:`~rxconnector.replay.calls` (how a live and a replayed REST call are matched).

**Reproduced exactly**

* Every frame the live hub delivered, in order, with its original receive time (the
  ``received_at`` of every model), decoded, routed and parsed by the live code; frames
  the live hub dropped (control messages, a rotation's duplicates, a topic just
  unsubscribed) are skipped, as live.
* The hub's ``StreamRestart`` markers, right before the same message as live.
* REST answers the connector's machinery asked for (order-book snapshots, trade
  back-fill; any call through the venue REST object), delivered between the same two
  frames as live, so books resync and trades back-fill exactly as they did.
* Event-loop steps: frames handled in one loop step live (one socket read) are
  delivered back to back with nothing scheduled running between them, so a
  ``conflate``d order book skips the same intermediate states it skipped live.
* The clock: replay time starts where the live feeds were first subscribed and is the
  recorded time of each entry, so operators on :attr:`ReplayConnector.scheduler`
  (``buffer_with_time``, ``debounce``...) see the recorded clock; ``connection_state``
  events, ``clock`` offsets and ``now()`` are the recorded ones.

**Not reproduced**

* What the recording does not hold: topics nobody subscribed live, REST calls the live
  connector never made (they get :class:`~rxconnector.errors.RecordingError` when the
  recording ends), account feeds (private streams are not recorded: ``orders()`` and
  the like fail with :class:`~rxconnector.errors.NotSupportedError`). Subscribe to the
  recorded feeds before :meth:`~ReplayConnector.run`.
* Timer jitter: live timers fire slightly late and drift; replay timers fire exactly on
  time, so a message that arrived within that jitter of a window boundary may fall in
  the neighbouring window on replay.
* Problems only the live hub saw (garbage frames, rejected subscriptions, unanswered
  requests) are not re-reported on :attr:`errors`; problems the pipeline itself finds
  (resyncs, gaps, unparseable payloads) are.
* The network: rate limits, circuit-breaker timing, clock-sync requests. Recorded REST
  failures come back as the same exception class with the same message and attributes,
  without the traceback.
"""

from __future__ import annotations

from rxconnector.replay.hub import ReplayHub
from rxconnector.replay.recorder import RecordingConnector
from rxconnector.replay.replayer import ReplayConnector, ReplayObservable, ReplayStats, open
from rxconnector.replay.rest import ReplayRest

__all__ = [
    "RecordingConnector",
    "ReplayConnector",
    "ReplayHub",
    "ReplayObservable",
    "ReplayRest",
    "ReplayStats",
    "open",
]
