"""The maintained Bybit book fed by the typed wire path equals the true book, on both
order-book cores (issue #12).

A generated market moves a full book; an ``orderbook.{W}`` topic publishes, as Bybit
and the simulator do, a snapshot of the top ``W`` levels and then per change the exact
delta of that window (``u`` + 1 per message, ``seq`` growing). The frames are delivered
with faults (duplicates, lost messages, hostile frames, extra snapshots) to two
:class:`~rxconnector.exchanges.bybit.book_sync.BybitDepthSync` machines: one reads
:func:`~rxconnector.exchanges.bybit.wire_book.book_frame_parser`'s packed events, the
other ``orjson.loads`` + :func:`~rxconnector.exchanges.bybit.parsers.parse_depth`.
Both must answer every frame alike, and every book they show must be the true top at
its ``u``. A refused frame is skipped (as the connector does); a loss once the topic is
known to be sequenced must resync, and the next snapshot must bring the book back.

Both cores: the compiled one (``_cbook``: ``CBook`` and its ``pack_levels``) where it is
built, and pure Python (``LocalBook`` and ``pack_levels_py``), swapped in per run.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxconnector.errors import ParseError
from rxconnector.exchanges import book_sync as base_sync
from rxconnector.exchanges._compiled import cbook
from rxconnector.exchanges.book import LocalBook
from rxconnector.exchanges.book_sync import APPLIED, Resync
from rxconnector.exchanges.bybit import parsers as p
from rxconnector.exchanges.bybit import wire_book
from rxconnector.exchanges.bybit.book_sync import FULL_RULE, BybitDepthSync, BybitFullSync
from rxconnector.exchanges.depth_events import PackedDepthUpdate
from rxconnector.exchanges.wire_levels import pack_levels_py
from rxconnector.models import OrderBook

SYMBOL = "BTCUSDT"
CORES = ["compiled", "pure"] if cbook is not None else ["pure"]


@contextlib.contextmanager
def core(name: str) -> Iterator[None]:
    """Run the block on the named order-book core (book and packer swapped together)."""
    with pytest.MonkeyPatch.context() as patch:
        if name == "pure":
            patch.setattr(base_sync, "new_local_book", LocalBook)
            patch.setattr(wire_book, "pack_levels", pack_levels_py)
        yield


def text(tick: int) -> str:
    return f"{tick // 10}.{tick % 10}"


Side = dict[int, int]  # price tick -> size in 0.001


class Market:
    """A full book and the ``orderbook.{window}`` topic that publishes its top."""

    def __init__(self, rng: random.Random, window: int) -> None:
        self.rng = rng
        self.window = window
        self.bids: Side = {t: rng.randrange(1, 999) for t in range(100, 140) if rng.random() < 0.7}
        self.asks: Side = {t: rng.randrange(1, 999) for t in range(141, 180) if rng.random() < 0.7}
        self.u = 1000
        self.seq = 10**9
        self.ts = 1_700_000_000_000
        self.shown = self.top()
        self.truth: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
        self.truth[self.u] = self.shown

    def top(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = sorted(self.bids.items(), reverse=True)[: self.window]
        asks = sorted(self.asks.items())[: self.window]
        return bids, asks

    def frame(self, kind: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> bytes:
        def levels(side: list[tuple[int, int]]) -> list[list[str]]:
            return [[text(t), "0" if q == 0 else f"{q / 1000:.3f}"] for t, q in side]

        data = {"s": SYMBOL, "b": levels(bids), "a": levels(asks), "u": self.u, "seq": self.seq}
        message = {"topic": f"orderbook.{self.window}.{SYMBOL}", "type": kind, "ts": self.ts}
        return orjson.dumps({**message, "data": data, "cts": self.ts - 1})

    def snapshot(self) -> bytes:
        return self.frame("snapshot", *self.shown)

    def step(self) -> bytes | None:
        """Move the market; the delta of the window, or ``None`` when it did not change."""
        rng = self.rng
        for _ in range(rng.randrange(1, 6)):
            side, low, high = (self.bids, 100, 140) if rng.random() < 0.5 else (self.asks, 141, 180)
            tick = rng.randrange(low, high)
            if rng.random() < 0.35:
                side.pop(tick, None)
            else:
                side[tick] = rng.randrange(1, 999)
        self.seq += rng.randrange(1, 9)
        self.ts += 20
        new = self.top()
        changes = [_diff(dict(old), dict(now)) for old, now in zip(self.shown, new, strict=True)]
        if not changes[0] and not changes[1]:
            return None
        self.u += 1
        self.shown = new
        self.truth[self.u] = new
        return self.frame(
            "delta", sorted(changes[0].items(), reverse=True), sorted(changes[1].items())
        )

    def expected(self, u: int, depth: int) -> tuple[Any, Any]:
        bids, asks = self.truth[u]
        d = p.parse_levels
        return (
            d([[text(t), f"{q / 1000:.3f}"] for t, q in bids[:depth]]),
            d([[text(t), f"{q / 1000:.3f}"] for t, q in asks[:depth]]),
        )


def _diff(old: Side, new: Side) -> Side:
    out = {t: q for t, q in new.items() if old.get(t) != q}
    out.update({t: 0 for t in old if t not in new})
    return out


HOSTILE_FRAMES = [
    b"not json at all",
    b'{"topic":"orderbook.5.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT"}}',
    b'{"topic":"orderbook.5.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
    b'"b":[["1.0","NaN"]],"a":[],"u":5,"seq":5}}',
    b'{"topic":"orderbook.5.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
    b'"b":{"1":2},"a":[],"u":5,"seq":5}}',
    b'{"topic":"orderbook.5.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTC\xff",'
    b'"b":[],"a":[],"u":5,"seq":5}}',
]

ACTIONS = ["send"] * 6 + ["dup", "drop", "hostile", "snapshot"]


#: Marks where a delta was lost (not a frame: the machines never see it).
LOST = b""


def delivery(market: Market, actions: list[str], deltas: int) -> list[bytes]:
    """The frames as received: a snapshot first, then ``deltas`` deltas with faults
    (action ``i`` applies to delta ``i``, cycling)."""
    out = [market.snapshot()]
    for i in range(deltas):
        frame = market.step()
        while frame is None:  # the window did not change: no message
            frame = market.step()
        action = actions[i % len(actions)] if actions else "send"
        if action == "drop":
            out.append(LOST)
            continue
        if action == "hostile":
            out.append(HOSTILE_FRAMES[i % len(HOSTILE_FRAMES)])
        out.append(frame)
        if action == "dup":
            out.append(frame)
        elif action == "snapshot":
            out.append(market.snapshot())
    out.append(market.snapshot())  # Bybit resends one after a resubscribe: the book recovers
    return out


def read(parse: Any, frame: bytes) -> Any:
    try:
        return parse(frame)
    except (ParseError, orjson.JSONDecodeError):  # the hub reports an undecodable frame
        return None


def same(a: Any, b: Any) -> bool:
    return a == b if not isinstance(a, Resync) else isinstance(b, Resync)


def run(market: Market, frames: list[bytes], depth: int) -> tuple[int, int]:
    """Feed both machines; returns (views checked, resyncs).

    A delta lost before the topic is known to be sequenced goes unnoticed (documented
    in :class:`BybitDepthSync`): the truth check then waits for the next snapshot; a
    loss once it is known must resync before anything wrong is shown.
    """
    topic = f"orderbook.{market.window}.{SYMBOL}"
    typed, plain = wire_book.book_frame_parser(topic), p.parse_depth
    fast = BybitDepthSync(depth, window=market.window, sequenced_after=3)
    slow = BybitDepthSync(depth, window=market.window, sequenced_after=3)
    checked = resyncs = 0
    blind = False  # a loss went unnoticed: views are not comparable until a snapshot
    for frame in frames:
        if frame == LOST:
            blind = blind or not fast.sequenced
            continue
        event = read(lambda f: typed(f, 1.0), frame)
        reference = read(lambda f: plain(orjson.loads(f), 1.0), frame)
        assert (event is None) == (reference is None), frame[:200]
        if event is None:
            continue
        assert type(event) is PackedDepthUpdate
        a, b = fast.on_update(event), slow.on_update(reference)
        assert same(a, b), (a, b)
        resyncs += isinstance(a, Resync)
        if a is APPLIED and event.is_snapshot:
            blind = False
        if a is APPLIED:
            view = fast.view()
            assert view == slow.view()
            if blind:
                continue
            assert (view.bids, view.asks) == market.expected(view.update_id, depth)
            checked += 1
    assert fast.live and slow.live  # the final snapshot brought it back
    final = fast.view()
    assert (final.bids, final.asks) == market.expected(market.u, depth)
    return checked, resyncs


@pytest.mark.parametrize("core_name", CORES)
class TestTheBookIsTheTrueBook:
    def test_typed_and_dict_paths_agree_and_are_right(self, core_name: str) -> None:
        checked: list[int] = []

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            seed=st.integers(0, 2**32),
            window=st.sampled_from([1, 3, 5, 50]),
            depth=st.integers(1, 5),
            actions=st.lists(st.sampled_from(ACTIONS), max_size=12),
            deltas=st.integers(1, 60),
        )
        def check(seed: int, window: int, depth: int, actions: list[str], deltas: int) -> None:
            market = Market(random.Random(seed), window)
            frames = delivery(market, actions, deltas)
            checked.append(run(market, frames, min(depth, window))[0])

        with core(core_name):
            check()
        # not vacuous: most runs compared many views with the true book
        assert len(checked) >= 100
        assert sum(checked) >= 10 * len(checked), checked

    def test_a_loss_once_sequenced_resyncs_and_the_next_snapshot_recovers(
        self, core_name: str
    ) -> None:
        with core(core_name):
            market = Market(random.Random(11), 5)
            actions = ["send"] * 20 + ["drop"] + ["send"] * 5 + ["snapshot"]
            actions += ["send"] * 20 + ["hostile"] + ["send"] * 20
            checked, resyncs = run(market, delivery(market, actions, len(actions)), 5)
            assert resyncs >= 1 and checked >= 30

    def test_the_core_is_the_one_named(self, core_name: str) -> None:
        with core(core_name):
            book = BybitDepthSync(2).book
            packed = wire_book.pack_levels(b'[["1.5","2"]]')
            if core_name == "pure":
                assert type(book) is LocalBook and type(packed) is tuple
            else:
                assert type(book) is not LocalBook and type(packed) is not tuple


@pytest.mark.parametrize("core_name", CORES)
class TestFullBook:
    """``orderbook.full``: the REST-snapshot rule reads packed events alike."""

    def test_packed_and_dict_events_build_the_same_book(self, core_name: str) -> None:
        with core(core_name):
            topic = f"orderbook.full.{SYMBOL}"
            typed = wire_book.book_frame_parser(topic)
            frames = []
            for u in range(5, 12):
                data = {
                    "s": SYMBOL,
                    "b": [[f"{100 - u}.5", f"{u}.25"]],
                    "a": [[f"{100 + u}.5", "0" if u % 3 == 0 else "1.5"]],
                    "u": u,
                    "seq": 1000 + u,
                }
                frames.append(
                    orjson.dumps({"topic": topic, "type": "delta", "ts": u, "data": data})
                )
            rest = OrderBook(SYMBOL, ((Decimal("90"), Decimal("1")),), (), 6, 0, 0.0)
            books = []
            for reader in (
                lambda f: typed(f, 1.0),
                lambda f: p.parse_depth(orjson.loads(f), 1.0),
            ):
                sync = FULL_RULE.new_sync(3, snapshot_limit=None)
                assert type(sync) is BybitFullSync
                for frame in frames[:3]:
                    sync.on_update(reader(frame))
                assert sync.on_snapshot(rest) is APPLIED
                for frame in frames[3:]:
                    assert sync.on_update(reader(frame)) is APPLIED
                books.append(sync.view())
            assert books[0] == books[1]
            assert books[0].update_id == 11


def book_frame(kind: str, u: int, seq: int, bids: Any = (), asks: Any = ()) -> bytes:
    data = {"s": SYMBOL, "b": list(bids), "a": list(asks), "u": u, "seq": seq}
    message = {"topic": f"orderbook.50.{SYMBOL}", "type": kind, "ts": u, "data": data}
    return orjson.dumps(message)


SNAP = book_frame("snapshot", 100, 1000, [["10.0", "1"], ["9.5", "2"]], [["11.0", "3"]])
#: (frame, outcome) of each ``u``/``seq`` case after ``SNAP``: what the rule documents.
ID_CASES: list[tuple[str, list[bytes], list[str]]] = [
    ("u + 1", [book_frame("delta", 101, 1001, [["10.0", "4"]])], ["applied"]),
    ("the same delta twice", [book_frame("delta", 101, 1001)] * 2, ["applied", "ignored"]),
    ("seq going back", [book_frame("delta", 101, 999, [["10.0", "4"]])], ["ignored"]),
    ("u not above the book's", [book_frame("delta", 100, 1001, [["10.0", "4"]])], ["ignored"]),
    (
        "an old snapshot replayed",
        [book_frame("snapshot", 90, 900, [["1.0", "1"]], [["99.0", "1"]])],
        ["ignored"],
    ),
    ("u == 1: a restart overwrites", [book_frame("delta", 1, 5, [["8.0", "1"]])], ["applied"]),
    (
        "deltas behind the book after one far ahead",
        [book_frame("delta", 10**6, 10**9)]
        + [book_frame("delta", 101 + i, 1001 + i) for i in range(3)],
        ["applied", "ignored", "ignored", "resync"],
    ),
    ("a crossed book", [book_frame("delta", 101, 1001, [["12.0", "1"]])], ["resync"]),
]


def _name(outcome: Any) -> str:
    return "resync" if isinstance(outcome, Resync) else str(outcome.value)


@pytest.mark.parametrize("core_name", CORES)
@pytest.mark.parametrize(("case", "frames", "want"), ID_CASES, ids=[c for c, _, _ in ID_CASES])
def test_u_and_seq_rules_read_packed_events_as_dict_ones(
    core_name: str, case: str, frames: list[bytes], want: list[str]
) -> None:
    with core(core_name):
        typed = wire_book.book_frame_parser(f"orderbook.50.{SYMBOL}")
        fast, slow = BybitDepthSync(2, window=50), BybitDepthSync(2, window=50)
        assert fast.on_update(typed(SNAP, 0.0)) is APPLIED
        assert slow.on_update(p.parse_depth(orjson.loads(SNAP), 0.0)) is APPLIED
        got = []
        for frame in frames:
            a = fast.on_update(typed(frame, 0.0))
            b = slow.on_update(p.parse_depth(orjson.loads(frame), 0.0))
            assert _name(a) == _name(b), case
            got.append(_name(a))
            if a is APPLIED:
                assert fast.view() == slow.view()
        assert got == want, case
