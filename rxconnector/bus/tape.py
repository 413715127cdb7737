"""The consumer's own check of a trade stream: exactly once, in id order, holes reported.

The publisher writes every trade once, in id order, into Redis. What a consumer reads can
still repeat or skip ids when Redis itself misbehaves: a server restarted empty (no
persistence) or a replica that lagged loses entries already written; the publisher
writes them again (see :mod:`rxconnector.bus.publisher`), so a consumer that had read
them sees them twice, and a range nobody could write again would be a hole. For venues
whose trade ids are consecutive (Binance trades and aggregate trades) the consumer checks:

::

    ids:    1  2  3  2  3  4  [gap 5..6]  7  9
    out:    1  2  3  ·  ·  4              7  9      (repeats dropped)
    errors:                   FeedGapError(5..6)    FeedGapError(8..8, unexplained)

A gap marker explains the jump that follows it (its error is reported as the marker);
a jump no marker explains is reported with the exact missing ids, never passed silently.
Bybit's trade ids are not consecutive (UUIDs on linear): not checked there.
"""

from __future__ import annotations

from rxconnector.errors import FeedGapError
from rxconnector.venues import trade_ids_consecutive

__all__ = ["TradeTape", "consecutive_trade_ids"]


def consecutive_trade_ids(venue: str) -> bool:
    """Whether a venue's published trade ids are consecutive integers (Binance's), as
    the venue registry says (:func:`rxconnector.venues.trade_ids_consecutive`)."""
    return trade_ids_consecutive(venue)


class TradeTape:
    """The last trade id delivered on one stream, and what the next entry means."""

    __slots__ = ("explained", "last", "repeats", "report_holes", "topic")

    def __init__(self, topic: str, *, report_holes: bool = True) -> None:
        self.topic = topic
        #: reader-side holes are only meaningful when this consumer sees every entry
        #: (plain reads), not a share of them (a consumer group with several members)
        self.report_holes = report_holes
        self.last: int | None = None
        self.explained = False
        self.repeats = 0

    def marker(self, gap: FeedGapError) -> FeedGapError | None:
        """A gap marker arrived: the jump it names is explained. Returns a hole between
        the last delivered id and the marker's range that the marker does not cover."""
        hole = None
        first, last = gap.first_missing, self.last
        if first is not None and last is not None and first > last + 1:
            hole = self._hole(last + 1, first - 1)
        if gap.last_missing is not None:
            if self.last is None or gap.last_missing > self.last:
                self.last = gap.last_missing
            self.explained = False
        else:
            self.explained = True  # a marker without ids explains the next jump
        return hole

    def admit(self, trade_id: int) -> tuple[bool, FeedGapError | None]:
        """(deliver?, a hole to report) for the next trade."""
        last = self.last
        hole = None
        if last is not None:
            if trade_id <= last:
                self.repeats += 1
                return False, None
            if trade_id > last + 1 and not self.explained:
                hole = self._hole(last + 1, trade_id - 1)
        self.explained = False
        self.last = trade_id
        return True, hole

    def _hole(self, first: int, last: int) -> FeedGapError | None:
        if not self.report_holes:
            return None
        return FeedGapError(
            self.topic,
            f"trade ids {first}..{last} missing from the stream and no gap marker explains "
            "it (entries lost in Redis and not written again?)",
            first_missing=first,
            last_missing=last,
        )
