"""The diff-depth events a book-sync rule reads: what every one must offer, and the
packed form the maintained book's wire path produces.

The public :class:`~rxconnector.models.DepthUpdate` carries its levels as ``Decimal``
tuples, built for whoever subscribes to ``diff_depth``. The maintained order book does
not need them: its wire path (``exchanges/binance/wire.py``, ``exchanges/bybit/
wire_book.py``) decodes a frame in one pass
and hands the sync rule a :class:`PackedDepthUpdate`, whose levels are
:data:`~rxconnector.exchanges.wire_levels.PackedLevels` that only the local book reads.
``Decimal`` objects are then built only for the levels a shown book holds (the view).

A rule reads events through :class:`DiffEvent`, which both forms satisfy. Internal: not
part of the public API (the connector's ``order_book`` still emits ``OrderBook``).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from rxconnector.exchanges.wire_levels import PackedLevels

__all__ = ["BybitDiffEvent", "DiffEvent", "PackedDepthUpdate"]


class DiffEvent(Protocol):
    """What a book-sync rule reads from a diff event (Binance's names: ``U``, ``u``,
    ``pu``). ``bids``/``asks`` are whatever the book's ``apply`` takes: ``Decimal``
    level tuples (:class:`~rxconnector.models.DepthUpdate`) or packed levels; both have
    a length, the number of levels (the pre-snapshot buffer's bound counts them)."""

    @property
    def symbol(self) -> str: ...
    @property
    def first_update_id(self) -> int: ...
    @property
    def final_update_id(self) -> int: ...
    @property
    def prev_final_update_id(self) -> int | None: ...
    @property
    def bids(self) -> Any: ...
    @property
    def asks(self) -> Any: ...
    @property
    def event_time(self) -> int: ...
    @property
    def received_at(self) -> float: ...


class BybitDiffEvent(DiffEvent, Protocol):
    """What Bybit's rules read besides :class:`DiffEvent`: ``sequence`` (Bybit's
    cross sequence ``seq``) and ``is_snapshot`` (the message replaces the book). Both
    :class:`~rxconnector.models.DepthUpdate` and :class:`PackedDepthUpdate` (from
    ``exchanges/bybit/wire_book.py``) have them."""

    @property
    def sequence(self) -> int | None: ...
    @property
    def is_snapshot(self) -> bool: ...


class PackedDepthUpdate(msgspec.Struct, gc=False):
    """A diff-depth event straight from the wire: the ids and times of
    :class:`~rxconnector.models.DepthUpdate`, the levels packed for the book.

    ``gc=False``: it holds strings, numbers and packed levels, none of which can point
    back at it, so the collector need not track it.
    """

    symbol: str
    first_update_id: int
    final_update_id: int
    bids: PackedLevels
    asks: PackedLevels
    event_time: int
    received_at: float
    prev_final_update_id: int | None = None
    #: Bybit's ``seq`` (cross sequence); ``None`` on Binance, as in ``DepthUpdate``.
    sequence: int | None = None
    #: Bybit: a snapshot message (or ``u == 1``), which replaces the book.
    is_snapshot: bool = False
