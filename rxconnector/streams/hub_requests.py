"""Control requests: SUBSCRIBE/UNSUBSCRIBE batches, their answers, halving, renewals.

A request is built when the connection's message limiter grants a slot
(:meth:`ControlRequests.next_request`), from *everything* pending at that moment:
unsubscribes first (they free room on the server), then split-off retries, then new
topics, at most ``max_topics_per_request`` topics and
:data:`~rxconnector.streams._hub_state.MAX_REQUEST_CHARS` characters. Each request id is
matched with its answer (venues that echo no id answer in order); unanswered requests
are reported after ``ack_timeout``. A rejected batch is split in halves and retried so
one bad topic never takes innocent ones down; a rejected single topic fails its feed.
A renewal (:meth:`ControlRequests.resubscribe`) is an UNSUBSCRIBE then a SUBSCRIBE of
the same topic through these same requests.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from reactivex import abc

from rxconnector.errors import ExchangeError, RequestTimeoutError, SubscriptionError
from rxconnector.exchanges.base import Control
from rxconnector.streams._hub_state import Conn, PendingRequest, Request, take_batch
from rxconnector.streams.hub_core import HubCore

if TYPE_CHECKING:
    from rxconnector.streams.hub_delivery import Delivery
    from rxconnector.streams.hub_rotation import Rotation
    from rxconnector.streams.hub_topics import TopicRefCounts

__all__ = ["ControlRequests"]


class ControlRequests:
    """Builds, tracks and settles one hub's control requests (see the module docstring).

    ``topics`` (to fail a rejected topic), ``delivery`` (to announce a restart once the
    topic is subscribed again) and ``rotation`` (an answer on a replacement connection
    may complete a rotation) are wired by the hub.
    """

    topics: TopicRefCounts
    delivery: Delivery
    rotation: Rotation

    def __init__(self, core: HubCore, ack_timeout: float) -> None:
        self.core = core
        self.ack_timeout = ack_timeout
        self._request_ids = itertools.count(1)

    # ------------------------------------------------------------ renewals

    def resubscribe(self, name: str) -> None:
        """Queue a renewal of ``name`` (see ``SubscriptionHub.resubscribe``)."""
        state = self.core.topics.get(name)
        if state is None or self.core.closed:
            return
        shard = state.shard
        if shard.replacement is not None:
            shard.deferred_renewals[name] = None
            return
        conn = shard.primary
        if (
            conn is None
            or conn.disposed
            or conn.link is None
            or name not in conn.wanted
            or name in conn.renew
            or any(r.subscribe and name in r.topics for r in conn.inflight.values())
        ):
            return
        conn.renew[name] = None
        self.core.touch(shard)

    def renewed(self, conn: Conn, request: Request) -> None:
        """An UNSUBSCRIBE of a renewal was answered (or timed out): on this socket, the
        next message of each renewed topic belongs to the new subscription, so it gets
        a :class:`StreamRestart` marker first (what was sent in between is lost)."""
        for name in request.renewing:
            topic = self.core.topics.get(name)
            if topic is None or topic.conn is not conn:
                continue
            topic.restart = f"resubscribed on {conn.id}"
            # The new subscription restarts the topic's keys (a snapshot repeats the
            # last key): nothing after this point is a duplicate to drop.
            topic.catching_up = False
            topic.refresh()

    # ------------------------------------------------------------ building

    def next_request(self, conn: Conn) -> str | None:
        """Build the next request for ``conn`` (called when the limiter grants a slot)."""
        try:
            return self._build(conn)
        except Exception as exc:  # a protocol bug: report it, keep the connection
            self.core.report_error(exc)
            return None

    def _build(self, conn: Conn) -> str | None:
        """Unsubscribes first (they free room on the server before new streams arrive),
        then split-off retries, then new topics. State changes only once the frame
        is built, so a failure leaves everything as it was."""
        desired, wanted, renew = conn.shard.topics, conn.wanted, conn.renew
        limit = self.core.protocol.max_topics_per_request
        stale = [name for name in wanted if name not in desired or name in renew]
        if stale:
            # A renewed topic goes off here and, still desired, is subscribed again
            # below, by the next request the limiter allows.
            batch = take_batch(stale, limit)
            renewing = tuple(name for name in batch if name in renew and name in desired)
            text = self._register(conn, False, batch, renewing)
            for name in batch:
                del wanted[name]
                renew.pop(name, None)
                conn.acked.discard(name)
            return text
        while conn.retry_batches:
            group = conn.retry_batches.popleft()
            conn.retrying.difference_update(group)
            batch = [name for name in group if name in desired and name not in wanted]
            if batch:
                text = self._register(conn, True, batch)
                wanted.update(dict.fromkeys(batch))
                return text
        retrying = conn.retrying
        fresh: list[str] = []
        for name in desired:
            if name not in wanted and name not in retrying:
                fresh.append(name)
                if len(fresh) >= limit:
                    break
        if not fresh:
            return None
        batch = take_batch(fresh, limit)
        text = self._register(conn, True, batch)
        wanted.update(dict.fromkeys(batch))
        return text

    def _register(
        self, conn: Conn, subscribe: bool, batch: list[str], renewing: tuple[str, ...] = ()
    ) -> str:
        request_id = next(self._request_ids)
        protocol = self.core.protocol
        build = protocol.subscribe_message if subscribe else protocol.unsubscribe_message
        text = build(batch, request_id)

        def timed_out(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self._timed_out(conn, request_id)

        timer = self.core.sched.schedule_relative(self.ack_timeout, timed_out)
        conn.inflight[request_id] = Request(request_id, subscribe, tuple(batch), timer, renewing)
        return text

    # ------------------------------------------------------------ answers

    def on_ack(self, conn: Conn, control: Control) -> None:
        """A request was accepted."""
        request = self._take(conn, control.request_id)
        if request is None:
            return
        self.renewed(conn, request)
        if request.subscribe:
            wanted = conn.wanted
            conn.acked.update(name for name in request.topics if name in wanted)
            # A restart is announced once the topic is subscribed again, not with its
            # first message: a quiet feed must learn at once that it missed something
            # (a trade feed backfills then; issue 15/16).
            for name in request.topics:
                topic = conn.shard.topics.get(name)
                if topic is not None and topic.restart is not None and topic.conn is conn:
                    self.delivery.announce_restart(topic)
            if conn is conn.shard.replacement:
                self.rotation.check(conn.shard)

    def on_rejected(self, conn: Conn, control: Control) -> None:
        """A request was rejected (or the venue sent an error we cannot place)."""
        request = self._take(conn, control.request_id)
        if request is None:
            self.core.report_error(
                ExchangeError(
                    f"{conn.id}: {control.message or 'error'}",
                    exchange=self.core.protocol.name,
                    code=control.code,
                )
            )
            return
        message = control.message or "rejected"
        if not request.subscribe:
            self.renewed(conn, request)
            self.core.report_error(
                SubscriptionError(
                    request.topics[0],
                    f"UNSUBSCRIBE of {len(request.topics)} stream(s) rejected: {message}",
                    control.code,
                )
            )
            return
        self._subscribe_rejected(conn, request, control, message)
        if conn is conn.shard.replacement:
            self.rotation.check(conn.shard)

    def _subscribe_rejected(
        self, conn: Conn, request: Request, control: Control, message: str
    ) -> None:
        """Fail the topics the venue named, or the single topic; halve a bigger batch."""
        result = control.result
        named = (
            [name for name in result if name in request.topics]
            if isinstance(result, tuple | list)
            else []
        )
        failed = named or list(request.topics)
        if named:  # the venue said which ones; the rest of the request went through
            conn.acked.update(n for n in request.topics if n not in named and n in conn.wanted)
        for name in failed:
            conn.wanted.pop(name, None)
            conn.renew.pop(name, None)
        shard = conn.shard
        live = [name for name in failed if name in shard.topics]
        if len(live) == 1 or (named and live):
            for name in live:
                self.topics.fail(name, SubscriptionError(name, message, control.code))
        elif live:
            # One bad topic rejects the whole batch: retry the halves on their own so
            # only the culprit fails.
            half = (len(live) + 1) // 2
            conn.retry_batches.append(live[:half])
            conn.retry_batches.append(live[half:])
            conn.retrying.update(live)
            self.core.touch(shard)

    def _take(self, conn: Conn, request_id: Any) -> Request | None:
        if not isinstance(request_id, int | str | None):
            return None  # not an id we could have sent (a list, an object ...)
        if request_id is None:
            # Venues that echo no id (Bybit linear's ``req_id:""``) answer in order.
            if not conn.inflight:
                return None
            request_id = next(iter(conn.inflight))
        request = conn.inflight.pop(request_id, None)
        if request is not None:
            request.timer.dispose()
        return request

    def _timed_out(self, conn: Conn, request_id: int) -> None:
        request = conn.inflight.pop(request_id, None)
        if request is None:
            return
        self.renewed(conn, request)
        method = "SUBSCRIBE" if request.subscribe else "UNSUBSCRIBE"
        self.core.report_error(
            RequestTimeoutError(
                f"{conn.id}: {method} #{request_id} of {len(request.topics)} stream(s) "
                f"({', '.join(request.topics[:3])}{', ...' if len(request.topics) > 3 else ''}) "
                f"not answered within {self.ack_timeout:g} s"
            )
        )
        if conn is conn.shard.replacement:
            self.rotation.check(conn.shard)

    # ------------------------------------------------------------ introspection

    def pending(self) -> tuple[PendingRequest, ...]:
        """Requests sent and not answered yet, oldest first per connection."""
        pending: list[PendingRequest] = []
        for shard in self.core.all_shards():
            for conn in (shard.primary, shard.replacement):
                if conn is None:
                    continue
                for request in conn.inflight.values():
                    method = "SUBSCRIBE" if request.subscribe else "UNSUBSCRIBE"
                    pending.append(
                        PendingRequest(conn.id, request.request_id, method, request.topics)
                    )
        return tuple(pending)
