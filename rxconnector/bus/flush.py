"""One stream's share of a publisher's write round trip: the entries it takes out of the
buffer, the fenced batches it queues on the pipeline, and what their answers mean.

::

    take ─▶ batches: up to ROUND of BATCH entries each, the first one led by the gap
            marker for the drops counted so far, if any
         ─▶ queue_round: every stream's batches in EVALSHA FENCED_APPEND_MANY calls of
            at most BATCH entries (20 streams with 5 new entries each: one call)
         ─▶ settle(answers):  n >= 0 each    written: counted, ring, lag   -> "ok"
                              -1 (lease)     nothing written                -> "refused"
                              -2 on batch 1  Redis lost what it acknowledged -> "lost"
                              error / -2     the rest goes back (or dropped, see
                                             StreamSlot.put_back)          -> "failed"

A later batch is only written if the one before it was (the script's ``after`` check),
so the answers are always a written prefix followed by failures.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from redis.exceptions import NoScriptError

from rxconnector.bus.codec import encode_gap, pack_batch, record_of
from rxconnector.bus.slots import BATCH, ROUND, StreamSlot

__all__ = ["Batch", "Flight", "Outcome", "answers_of", "queue_round"]

Outcome = Literal["ok", "refused", "lost", "failed"]


class Batch(NamedTuple):
    """One fenced batch of one stream: its keys, arguments and entry count."""

    flight: Flight
    keys: tuple[str, str, str]
    args: tuple[str, str, str]  # token, monotonic, after
    packed: bytes
    entries: int  # gap marker included


class Flight:
    """The entries of one stream taken for one round trip, and their fate."""

    def __init__(self, slot: StreamSlot) -> None:
        self.slot = slot
        self.epoch = slot.epoch
        self.marker = slot.dropped_pending
        self.dropped_before = slot.dropped
        self.records = slot.take(ROUND * BATCH)
        #: entries per queued batch, in order
        self.sizes: list[int] = []
        self.error: Exception | None = None

    def batches(self) -> list[Batch]:
        """This flight's fenced batches, in order (the first one led by the gap marker)."""
        slot, records = self.slot, self.records
        # the first batch names the last id Redis acknowledged: a server that lost it
        # (restarted empty, an older replica) refuses with -2
        after = "" if slot.written_last is None else str(slot.written_last)
        monotonic = "1" if slot.monotonic else "0"
        batches: list[Batch] = []
        offset = 0
        for index in range(ROUND):
            packed: list[bytes] = []
            if index == 0 and self.marker:
                reason = f"{self.marker} entries dropped while Redis was unavailable (buffer full)"
                packed.append(record_of(encode_gap(reason))[0])
            count = min(len(records) - offset, BATCH)
            if count <= 0 and not packed:
                break
            packed.extend(record[0] for record in records[offset : offset + count])
            batches.append(
                Batch(self, (slot.key, slot.lease, slot.seq), (slot.token, monotonic, after),
                      pack_batch(packed), len(packed))
            )  # fmt: skip
            self.sizes.append(count)
            offset += count
            if slot.monotonic and count:
                after = records[offset - 1][1]
        return batches

    def settle(self, answers: list[Any], now_ms: float) -> tuple[Outcome, int]:
        """Apply the answers of this flight's batches to its slot: (outcome, written)."""
        slot = self.slot
        if slot.epoch != self.epoch:
            return "ok", 0  # the slot was reset meanwhile (lease lost): nothing to keep
        written = 0
        first_written = False
        outcome: Outcome = "ok"
        for index, (size, answer) in enumerate(zip(self.sizes, answers, strict=True)):
            if isinstance(answer, Exception):
                self.error = answer
                outcome = "failed"
            elif int(answer) == -2:  # not written: Redis lost what it acknowledged, or
                outcome = "lost" if index == 0 else "failed"  # an earlier batch failed
            elif int(answer) < 0:
                outcome = "refused"
            else:
                written += size
                first_written = True
                continue
            break
        if outcome == "refused":
            return outcome, 0  # the caller drops the stream (lease lost)
        if first_written:  # the gap marker went with the first batch
            slot.written(self.records[:written], self.marker, now_ms)
        if written < len(self.records):
            rest = self.records[written:]
            slot.put_back(rest, dropped_meanwhile=slot.dropped != self.dropped_before)
        return outcome, written

    @property
    def script_missing(self) -> bool:
        return isinstance(self.error, NoScriptError)


def queue_round(
    pipe: Any, sha: str, flights: list[Flight], lease_ms: int, maxlen: int
) -> list[list[Batch]]:
    """Queue every flight's batches as :data:`~rxconnector.bus.fencing.FENCED_APPEND_MANY`
    calls of at most ``BATCH`` entries each (a batch is never split; EVALSHA queued
    directly: a registered Script would make every pipeline ask SCRIPT EXISTS first, a
    second round trip per flush). Many streams with a few entries each cost one call."""
    calls: list[list[Batch]] = []
    current: list[Batch] = []
    size = 0
    for flight in flights:
        for batch in flight.batches():
            if current and size + batch.entries > BATCH:
                calls.append(current)
                current, size = [], 0
            current.append(batch)
            size += batch.entries
    if current:
        calls.append(current)
    for call in calls:
        keys = [key for batch in call for key in batch.keys]
        args: list[Any] = [lease_ms, maxlen]
        for batch in call:
            args.extend((*batch.args, batch.packed))
        pipe.evalsha(sha, len(keys), *keys, *args)
    return calls


def answers_of(calls: list[list[Batch]], results: list[Any]) -> dict[Flight, list[Any]]:
    """Each flight's answers, one per batch in order (a call that failed as a whole,
    e.g. NOSCRIPT after a Redis restart, answers its error for each of its batches)."""
    answers: dict[Flight, list[Any]] = {}
    for call, result in zip(calls, results, strict=True):
        each = result if isinstance(result, list) else [result] * len(call)
        for batch, answer in zip(call, each, strict=True):
            answers.setdefault(batch.flight, []).append(answer)
    return answers
