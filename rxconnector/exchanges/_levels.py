"""Book levels in wire form: exact sort keys and the exchange's own strings, no Decimals.

The local order book (``streams/book.py``) is the hottest path of the library: a diff
frame of 5-20 levels per side arrives every 100 ms per symbol, and building two
``Decimal`` per level (≈0.23 µs each with the finite-number check) cost more than the
book's own work. Most of those levels are never shown (they are deep in the book, or
overwritten before the next emitted view). So on this path a level is read as

* a **sort key**: ``float(price)`` when that float is provably exact and
  order-preserving, else ``Decimal(price)`` (see below), negated for asks so that both
  sides of the book keep their best level last;
* a **line**: the exchange's price and quantity strings joined by one space
  (``"65000.01 0.25000000"``), and whether the quantity is zero (a removal). One string
  object per level instead of two Decimals and a tuple (≈68 B against ≈270 B), and
  ``Decimal(price)`` / ``Decimal(quantity)`` built from it when the level is shown are
  exactly the Decimals the normal parser would have built (same value, same exponent).

Why a float key is exact here: a decimal string with at most 15 significant digits
(``DBL_DIG``) converts to a double that converts back to the same decimal, so two
different such strings never share a float (injective), and rounding to nearest is
monotonic, so the floats order exactly like the decimals. Every price of every symbol in
our exchange-info examples and the simulator has at most 15 significant digits (pinned by
``tests/streams/test_book_keys.py``). A side with a price that has more (or that is not a
plain decimal string, e.g. ``"1E+2"`` or a Decimal a test built) is checked through
:func:`~rxconnector.exchanges._parsing.to_decimal` and, if it really has more than 15
significant digits, keyed by ``Decimal`` instead (``exact`` is then True and the book
switches to Decimal keys); nothing is ever rounded.

The finite-number rule holds here as in every parser: a plain decimal string of at most
15 digits (prices) or 50 characters (quantities) is finite with an exponent far inside
1e±50; anything else goes through ``to_decimal`` and ``NaN``, ``Infinity``, ``1e999999``
raise ``ValueError``, which the venue parser reports as :class:`~rxconnector.errors.ParseError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from operator import itemgetter
from operator import neg as _neg
from typing import Any, Final

from rxconnector.exchanges._parsing import to_decimal

__all__ = ["MAX_FLOAT_DIGITS", "BookDiff", "WireSide", "is_float_exact", "wire_side"]

#: Significant decimal digits a double round-trips (C ``DBL_DIG``).
MAX_FLOAT_DIGITS: Final = 15
#: A quantity string of plain digits this long or shorter has |exponent| < 50.
_MAX_PLAIN_QTY = 48
#: Longest "price quantity" line the side-wide check accepts (price <= 15 characters,
#: so the quantity has at most 34: its exponent is far inside the rule).
_MAX_LINE = 50
_PAIRS: Final = {2}


class WireSide:
    """One side of a diff or snapshot in wire form: aligned ``keys``, ``lines``, ``sizes``.

    ``keys[i]`` is the sort key of level ``i`` (negated for asks), ``lines[i]`` its
    ``"price quantity"`` string and ``sizes[i]`` its quantity as a number that is zero
    exactly when the quantity is (a removal). ``exact`` says the keys are Decimals (a
    price with more than 15 significant digits was seen); ``raw`` is what the side was
    read from, kept to re-key it exactly.
    """

    __slots__ = ("ask", "exact", "keys", "lines", "raw", "sizes")

    def __init__(
        self,
        keys: list[Any],
        lines: list[str],
        sizes: list[Any],
        exact: bool,
        raw: Iterable[Any],
        ask: bool,
    ) -> None:
        self.keys = keys
        self.lines = lines
        self.sizes = sizes
        self.exact = exact
        self.raw = raw
        self.ask = ask

    def __len__(self) -> int:
        return len(self.keys)

    def exactly(self) -> WireSide:
        """The same side keyed by Decimals (for a book already in exact mode)."""
        return self if self.exact else _wire_side_slow(self.raw, ask=self.ask, exact=True)

    def __repr__(self) -> str:
        return f"<WireSide {'ask' if self.ask else 'bid'} {self.lines!r}>"


def is_float_exact(number: Decimal) -> bool:
    """True if ``float(number)`` is an exact, order-preserving key for ``number``."""
    if not number:
        return True
    return len(number.normalize().as_tuple().digits) <= MAX_FLOAT_DIGITS


def _slow(value: Any) -> tuple[Decimal, str]:
    """A number that is not a short plain decimal string: checked by ``to_decimal``."""
    if value is True or value is False or value is None:
        raise ValueError(f"expected a number, got {value!r}")
    number = to_decimal(value)
    return number, str(number)  # its own digits, without the spaces Decimal() allows


_price_of = itemgetter(0)
_size_of = itemgetter(1)
_join = " ".join


def wire_side(raw: Any, *, ask: bool, exact: bool = False) -> WireSide:
    """``[["price", "qty"], ...]`` (or ``(Decimal, Decimal)`` levels) → :class:`WireSide`.

    Raises ``ValueError``/``TypeError`` for a malformed level (not a pair, not a finite
    number of sane magnitude), before anything is built: callers report it as a
    :class:`~rxconnector.errors.ParseError`. ``exact=True`` keys by Decimal.

    The common case (every level a pair of plain decimal strings, prices of at most 15
    characters, lines of at most 50) is checked side-wide in a few C-level passes
    (``map``, ``str.join``, ``str.replace``/``isdigit``; not ``str.translate``, whose
    per-character mapping costs ≈50 ns a character) instead of per level in
    Python; anything else takes the per-level path, which checks each number through
    ``to_decimal`` and decides between float and Decimal keys.
    """
    if not exact and raw.__class__ is list:
        try:
            lines = list(map(_join, raw))
            prices = list(map(_price_of, raw))
            text = "".join(lines)
            if (
                lines
                and max(map(len, prices)) <= MAX_FLOAT_DIGITS
                and max(map(len, lines)) <= _MAX_LINE
                and set(map(len, raw)) == _PAIRS
                and text.count(" ") == len(lines)
                and text.replace(".", "").replace(" ", "").isdigit()
            ):
                # Pairs of strings made of digits and at most one dot each (float()
                # refuses more), no other space than the separator: plain decimals,
                # finite, |exponent| < 50, prices of at most 15 digits.
                keys = list(map(_neg, map(float, prices)) if ask else map(float, prices))
                return WireSide(keys, lines, list(map(float, map(_size_of, raw))), False, raw, ask)
        except (TypeError, ValueError):
            pass  # the per-level path says exactly what is wrong
    return _wire_side_slow(raw, ask=ask, exact=exact)


def _wire_side_slow(raw: Iterable[Any], *, ask: bool, exact: bool) -> WireSide:
    keys: list[Any] = []
    lines: list[str] = []
    sizes: list[Any] = []
    for p, q in raw:
        if p.__class__ is Decimal:  # a parsed level (REST snapshot, test): its own digits
            p = str(p)
        if q.__class__ is Decimal:
            q = str(q)
        # Price: the key, exactly.
        if p.__class__ is str and not exact:
            digits = p.replace(".", "", 1)
            if len(digits) <= MAX_FLOAT_DIGITS and digits.isdigit():
                key: Any = float(p)
            else:
                number, p = _slow(p)
                if not is_float_exact(number):
                    return _wire_side_slow(raw, ask=ask, exact=True)
                key = float(number)
        else:
            number, p = _slow(p)
            if exact:
                key = number
            elif is_float_exact(number):
                key = float(number)
            else:
                return _wire_side_slow(raw, ask=ask, exact=True)
        keys.append(-key if ask else key)
        # Quantity: only "zero or not" matters here; the string is kept.
        size: Any
        if q.__class__ is str:
            digits = q.replace(".", "", 1)
            if len(digits) <= _MAX_PLAIN_QTY and digits.isdigit():
                size = float(q)
            else:
                size, q = _slow(q)
        else:
            size, q = _slow(q)
        lines.append(f"{p} {q}")
        sizes.append(size)
    return WireSide(keys, lines, sizes, exact, raw, ask)


class BookDiff:
    """A diff-depth event for the local book: :class:`~rxconnector.models.DepthUpdate`'s
    ids and times, with the levels in wire form (:class:`WireSide`) instead of Decimals.

    Internal to ``order_book()``: the public ``diff_depth()`` feed still emits
    ``DepthUpdate``. Built by the venues' ``parse_book_diff`` (``exchanges/*/wire.py``).
    """

    __slots__ = (
        "asks",
        "bids",
        "event_time",
        "final_update_id",
        "first_update_id",
        "is_snapshot",
        "prev_final_update_id",
        "received_at",
        "sequence",
        "symbol",
    )

    def __init__(
        self,
        symbol: str,
        first_update_id: int,
        final_update_id: int,
        bids: WireSide,
        asks: WireSide,
        event_time: int,
        received_at: float = 0.0,
        prev_final_update_id: int | None = None,
        sequence: int | None = None,
        is_snapshot: bool = False,
    ) -> None:
        self.symbol = symbol
        self.first_update_id = first_update_id
        self.final_update_id = final_update_id
        self.bids = bids
        self.asks = asks
        self.event_time = event_time
        self.received_at = received_at
        self.prev_final_update_id = prev_final_update_id
        self.sequence = sequence
        self.is_snapshot = is_snapshot

    def __repr__(self) -> str:
        return (
            f"<BookDiff {self.symbol} U={self.first_update_id} u={self.final_update_id} "
            f"bids={len(self.bids)} asks={len(self.asks)}>"
        )
