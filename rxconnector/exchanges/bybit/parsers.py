"""Bybit v5 public WebSocket messages → normalized models.

Bybit parsers receive the WHOLE message (``topic``, ``type``, ``ts``, ``cts``, ``data``),
not just ``data``: the snapshot/delta ``type`` and the system time ``ts`` live outside
``data`` (PROTOCOL.md §C1 "Payload fields"). Same hot-path rules as the Binance parsers:
one ``try`` per call, ``Decimal`` from strings, a :class:`~rxconnector.errors.ParseError`
with an excerpt for anything malformed.

Decisions worth knowing:

* ``event_time`` is the message's ``ts`` (when Bybit's system produced the message),
  which is what Binance's ``E`` means too; the matching-engine time ``cts`` has no
  field in the models.
* Trade ids are strings on Bybit: decimal digits on Spot, UUIDs on derivatives (see
  the ``publicTrade`` example). :func:`bybit_trade_id` maps digits to that integer and
  a UUID to its 128-bit integer (lossless: ``uuid.UUID(int=trade.trade_id)`` gives the
  original back); anything else to a stable 64-bit BLAKE2b hash. Derivative trade ids
  are therefore unique but NOT ordered.
* Inverse contracts quote ``volume24h``/kline ``volume`` in contracts (USD) and
  ``turnover`` in the coin, the reverse of Spot/linear (PROTOCOL.md §C3). Parsers built
  with ``inverse=True`` swap them so ``volume`` is always base-asset volume and
  ``quote_volume`` quote-asset volume. Sizes (trade quantity, book quantity) stay in
  Bybit's unit (contracts on inverse), because converting would need a lossy division.
* Bybit klines do not report a trade count: :attr:`Kline.trades` is 0 for them.
* ``Kline.interval`` uses the canonical (Binance) spelling: ``"5"`` → ``"5m"``.

Stateful helpers (linear/inverse tickers are snapshot + delta; partial books are
snapshot + delta): :class:`BybitTickerMerger` and :class:`BybitBookMerger`. Each is owned
by the feed set that created it and shared by every feed of its topic (a late subscriber
to a topic that is already streaming sees only deltas, so it must reuse the state of the
first one). Both are reset by every new snapshot, which Bybit sends after each
(re)subscription, so a reconnect needs no extra step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from rxconnector.errors import excerpt
from rxconnector.exchanges._parsing import (
    MALFORMED,
    json_str,
    model_builder,
    opt_decimal,
    parse_levels,
    raise_malformed,
    to_decimal,
)
from rxconnector.exchanges.bybit.merged_book import new_merged_book
from rxconnector.exchanges.symbols import canonical_interval
from rxconnector.models import (
    BookTicker,
    DepthUpdate,
    Kline,
    Level,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Side,
    Ticker,
    Trade,
)

__all__ = [
    "BybitBookMerger",
    "BybitTickerMerger",
    "book_ticker_parser",
    "bybit_trade_id",
    "kline_parser",
    "mark_price_parser",
    "mini_ticker_parser",
    "parse_book_ticker",
    "parse_depth",
    "parse_liquidations",
    "parse_trades",
    "ticker_parser",
]

_SIDES: Final[dict[str, Side]] = {"Buy": "buy", "Sell": "sell"}
#: allLiquidation ``S`` is the side of the liquidated POSITION; the order closing it
#: goes the other way (a liquidated long is sold), which is what Liquidation.side means.
_LIQUIDATION_ORDER_SIDE: Final[dict[str, Side]] = {"Buy": "sell", "Sell": "buy"}
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def bybit_trade_id(raw: Any) -> int:
    """Bybit's string trade id → int (see the module docstring for the mapping)."""
    if type(raw) is int:
        return raw
    if not isinstance(raw, str) or not raw:
        raise ValueError(f"trade id must be a non-empty string, got {raw!r}")
    if raw.isdigit():
        return int(raw)
    if len(raw) == 36 and raw[8] == raw[13] == raw[18] == raw[23] == "-":
        hex_digits = raw.replace("-", "")
        if _HEX.issuperset(hex_digits):
            return int(hex_digits, 16)
    return int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=8).digest(), "big")


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


#: A ``tickers`` message's ``type`` → whether it replaces the ticker (PROTOCOL.md §C1:
#: Spot sends ``snapshot`` only, linear/inverse a ``snapshot`` then ``delta``s).
_TICKER_KINDS: Final[dict[str, bool]] = {"snapshot": True, "delta": False}


def _is_snapshot(message: Any) -> bool:
    """Whether a ``tickers`` message replaces the ticker; anything but ``snapshot`` or
    ``delta`` is malformed. Read before the merger changes anything: a message with no
    ``type`` (or another one) taken as a snapshot would replace a linear ticker with
    whatever fields it carries, and every later delta would then lack fields until the
    next snapshot, which Bybit sends only after a resubscription: a silenced feed."""
    kind: Any = message.get("type")
    try:
        return _TICKER_KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"ticker type must be 'snapshot' or 'delta', got {excerpt(kind)}"
        ) from None


#: The models the parsers build, through :func:`model_builder` (hot path).
_BookTicker: Final = model_builder(BookTicker)
_DepthUpdate: Final = model_builder(DepthUpdate)
_Kline: Final = model_builder(Kline)
_Liquidation: Final = model_builder(Liquidation)
_MarkPrice: Final = model_builder(MarkPrice)
_MiniTicker: Final = model_builder(MiniTicker)
_OrderBook: Final = model_builder(OrderBook)
_Ticker: Final = model_builder(Ticker)
_Trade: Final = model_builder(Trade)


# --------------------------------------------------------------------------- tickers


class BybitTickerMerger:
    """Rebuilds full tickers from ``tickers.{symbol}`` snapshot + delta messages.

    Linear/inverse send a ``snapshot`` after subscribing, then ``delta`` messages in
    which an absent field means "unchanged" (PROTOCOL.md §C1). The merger keeps the
    last full ticker per symbol; a new snapshot REPLACES it (Bybit re-sends one after
    every (re)subscription), a delta updates it. A delta for a symbol with no snapshot
    yet cannot be completed and raises :class:`ValueError` (the parser reports it as a
    ``ParseError``). Applying the same message twice gives the same state, which is
    what lets several feeds of one topic share a merger.

    Stateful and not thread-safe: owned by one feed set on one event loop.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, dict[str, Any]] = {}

    def merge(self, message: Any) -> dict[str, Any]:
        """Apply ``message`` and return the full ticker fields of its symbol.

        The returned dict is the merger's own state: read it, do not keep or mutate it.
        The message itself is never mutated (other feeds may be reading it).
        """
        data = message["data"]
        symbol = json_str(data["symbol"])
        if _is_snapshot(message):
            full = dict(data)
            self._last[symbol] = full
            return full
        last = self._last.get(symbol)
        if last is None:
            raise ValueError(f"ticker delta for {symbol} before any snapshot")
        last.update(data)
        return last

    def reset(self, symbol: str | None = None) -> None:
        """Forget one symbol's ticker (or all): the next message must be a snapshot."""
        if symbol is None:
            self._last.clear()
        else:
            self._last.pop(symbol, None)


def _volumes(fields: dict[str, Any], inverse: bool) -> tuple[Decimal, Decimal]:
    volume = to_decimal(fields["volume24h"])
    turnover = to_decimal(fields["turnover24h"])
    return (turnover, volume) if inverse else (volume, turnover)


def ticker_parser(
    merger: BybitTickerMerger, *, inverse: bool = False
) -> Callable[[Any, float], Ticker]:
    """``tickers.{symbol}`` → :class:`Ticker` (one per message, deltas merged).

    Spot has no best bid/ask in its ticker: those are ``None``. ``open`` is
    ``prevPrice24h`` (the price 24 h ago, as Binance's ``o``).
    """

    def parse(message: Any, received_at: float) -> Ticker:
        try:
            t = merger.merge(message)
            D = to_decimal
            get = t.get
            volume, quote_volume = _volumes(t, inverse)
            return _Ticker(
                symbol=t["symbol"],
                last=D(t["lastPrice"]),
                bid=opt_decimal(get("bid1Price")),
                bid_qty=opt_decimal(get("bid1Size")),
                ask=opt_decimal(get("ask1Price")),
                ask_qty=opt_decimal(get("ask1Size")),
                open=D(t["prevPrice24h"]),
                high=D(t["highPrice24h"]),
                low=D(t["lowPrice24h"]),
                volume=volume,
                quote_volume=quote_volume,
                event_time=int(message["ts"]),
                received_at=received_at,
            )
        except MALFORMED as exc:
            raise_malformed("bybit", "tickers", message, exc)

    return parse


def mini_ticker_parser(
    merger: BybitTickerMerger, *, inverse: bool = False
) -> Callable[[Any, float], MiniTicker]:
    """``tickers.{symbol}`` → :class:`MiniTicker` (the OHLCV part of the ticker)."""

    def parse(message: Any, received_at: float) -> MiniTicker:
        try:
            t = merger.merge(message)
            D = to_decimal
            volume, quote_volume = _volumes(t, inverse)
            return _MiniTicker(
                symbol=t["symbol"],
                close=D(t["lastPrice"]),
                open=D(t["prevPrice24h"]),
                high=D(t["highPrice24h"]),
                low=D(t["lowPrice24h"]),
                volume=volume,
                quote_volume=quote_volume,
                event_time=int(message["ts"]),
                received_at=received_at,
            )
        except MALFORMED as exc:
            raise_malformed("bybit", "tickers", message, exc)

    return parse


_MARK_FIELDS: Final = (
    "markPrice",
    "indexPrice",
    "fundingRate",
    "nextFundingTime",
    "predictedDeliveryPrice",
)


def mark_price_parser(merger: BybitTickerMerger) -> Callable[[Any, float], Sequence[MarkPrice]]:
    """``tickers.{symbol}`` (linear/inverse) → :class:`MarkPrice` (``FeedSpec.many``).

    Bybit has no mark-price topic; its tickers carry mark, index, funding rate and next
    funding time. To behave like Binance's mark-price stream this emits only when a
    snapshot arrives or a delta touches one of those fields (a delta that only moves
    the last price yields nothing). ``predictedDeliveryPrice`` (dated futures) fills
    ``estimated_settle_price``; perpetuals leave it ``None``.
    """

    def parse(message: Any, received_at: float) -> Sequence[MarkPrice]:
        try:
            t = merger.merge(message)
            if not _is_snapshot(message):
                data = message["data"]
                if not any(f in data for f in _MARK_FIELDS):
                    return ()
            get = t.get
            return (
                _MarkPrice(
                    symbol=t["symbol"],
                    mark_price=to_decimal(t["markPrice"]),
                    index_price=opt_decimal(get("indexPrice")),
                    estimated_settle_price=opt_decimal(get("predictedDeliveryPrice")),
                    funding_rate=opt_decimal(get("fundingRate")),
                    next_funding_time=_opt_int(get("nextFundingTime")),
                    event_time=int(message["ts"]),
                    received_at=received_at,
                ),
            )
        except MALFORMED as exc:
            raise_malformed("bybit", "tickers", message, exc)

    return parse


# --------------------------------------------------------------------------- order book


def parse_depth(message: Any, received_at: float) -> DepthUpdate:
    """``orderbook.{depth}.{symbol}`` / ``orderbook.full.{symbol}`` → :class:`DepthUpdate`.

    ``first_update_id = final_update_id = u``; ``sequence = seq`` (cross sequence);
    ``is_snapshot`` for ``type == "snapshot"`` and for ``u == 1``, which Bybit documents
    as a snapshot after a service restart that must overwrite the book.
    """
    try:
        data = message["data"]
        u = int(data["u"])
        return _DepthUpdate(
            symbol=json_str(data["s"]),
            first_update_id=u,
            final_update_id=u,
            bids=parse_levels(data["b"]),
            asks=parse_levels(data["a"]),
            event_time=int(message["ts"]),
            received_at=received_at,
            sequence=int(data["seq"]),
            is_snapshot=message["type"] == "snapshot" or u == 1,
        )
    except MALFORMED as exc:
        raise_malformed("bybit", "orderbook", message, exc)


def parse_book_ticker(message: Any, received_at: float) -> Sequence[BookTicker]:
    """``orderbook.1.{symbol}`` snapshot → :class:`BookTicker` (``FeedSpec.many``).

    Level 1 is snapshot-only today (PROTOCOL.md §C1), so each message is the whole top
    of book. Until March 2025 Bybit also sent level-1 ``delta`` messages (and
    recordings keep them): a delta's sizes are *changes* to a book (``"0"`` deletes a
    level), not a top of book, so this stateless function ignores it (read as a top of
    book it would be a quote of size 0); :func:`book_ticker_parser` merges them. A
    message with an empty side (no bids or no asks, e.g. a delisting) yields nothing.
    """
    try:
        if message["type"] == "delta":
            return ()
        data = message["data"]
        symbol, u, ts = json_str(data["s"]), int(data["u"]), int(message["ts"])
        return _top_of_book(symbol, data["b"], data["a"], u, ts, received_at)
    except MALFORMED as exc:
        raise_malformed("bybit", "orderbook.1", message, exc)


def _top_of_book(
    symbol: str, bids: Any, asks: Any, update_id: int, event_time: int, received_at: float
) -> Sequence[BookTicker]:
    if not bids or not asks:
        return ()
    D = to_decimal
    bid, bid_qty = bids[0]
    ask, ask_qty = asks[0]
    return (
        _BookTicker(
            symbol=symbol,
            bid=D(bid),
            bid_qty=D(bid_qty),
            ask=D(ask),
            ask_qty=D(ask_qty),
            update_id=update_id,
            event_time=event_time,
            received_at=received_at,
        ),
    )


def book_ticker_parser(merger: BybitBookMerger) -> Callable[[Any, float], Sequence[BookTicker]]:
    """``orderbook.1.{symbol}`` snapshots *and* legacy deltas → :class:`BookTicker`.

    Why merge rather than ignore the deltas: before March 2025 a level-1 topic sent one
    snapshot and then mostly deltas, so ignoring them would leave a recording of that
    time with a book ticker frozen at its first quote. Bybit documents one rule for
    every ``orderbook.{depth}`` delta ("Process snapshot/delta": size ``0`` deletes the
    level, a new price inserts it, a known price updates it), and a level-1 book is the
    depth-1 case of it: the merged book's best bid and ask are the top of book. Deltas
    merge into ``merger`` (the topic's book, shared with ``depth(symbol, 1)``); a message
    after which a side is empty yields nothing (never a quote of size 0); a delta before
    any snapshot is a :class:`~rxconnector.errors.ParseError`, as for ``depth()``.
    """

    def parse(message: Any, received_at: float) -> Sequence[BookTicker]:
        try:
            book = merger.apply(message, received_at, 1)
            return _top_of_book(
                book.symbol,
                book.bids,
                book.asks,
                book.update_id,
                book.event_time,
                received_at,
            )
        except MALFORMED as exc:
            raise_malformed("bybit", "orderbook.1", message, exc)

    return parse


class BybitBookMerger:
    """Keeps the partial book of one ``orderbook.{depth}.{symbol}`` topic.

    Snapshot → replace both sides; delta → size ``0`` deletes a level, any other size
    sets it (PROTOCOL.md §C1 "Order book maintenance"); ``u == 1`` is a snapshot too.
    After each message :meth:`apply` returns the top ``levels`` of each side as an
    :class:`OrderBook`. This is the exchange's own depth-limited book, for ``depth()``;
    the always-consistent ``order_book()`` with gap checks lives in streams/orderbook.

    A delta before any snapshot raises :class:`ValueError` (reported as ParseError).
    A malformed message is rejected before it changes anything. Applying a message
    twice is harmless (sizes are absolute), so feeds of one topic can share a merger,
    each cutting the book at its own ``levels``. Not thread-safe: owned by one feed set
    on one event loop. The levels live in :func:`~rxconnector.exchanges.bybit.
    merged_book.new_merged_book` (the compiled core's sorted book where it runs).
    """

    __slots__ = ("_book", "_synced")

    def __init__(self) -> None:
        self._book = new_merged_book()
        self._synced = False

    def apply(self, message: Any, received_at: float, levels: int) -> OrderBook:
        """Apply one snapshot or delta message; return the top ``levels`` of each side."""
        data = message["data"]
        u = int(data["u"])
        return self.apply_levels(
            json_str(data["s"]),
            u,
            int(message["ts"]),
            message["type"] == "snapshot" or u == 1,
            parse_levels(data["b"]),
            parse_levels(data["a"]),
            received_at,
            levels,
        )

    def apply_levels(
        self,
        symbol: str,
        u: int,
        event_time: int,
        snapshot: bool,
        bids: Sequence[Level],
        asks: Sequence[Level],
        received_at: float,
        levels: int,
    ) -> OrderBook:
        """:meth:`apply` of a message read already (``snapshot``: or ``u == 1``)."""
        book = self._book
        if snapshot:
            book.load_snapshot(bids, asks)
            self._synced = True
        elif not self._synced:
            raise ValueError(f"orderbook delta for {symbol} before any snapshot")
        else:
            book.apply(bids, asks)
        return _OrderBook(
            symbol=symbol,
            bids=book.top_bids(levels),
            asks=book.top_asks(levels),
            update_id=u,
            event_time=event_time,
            received_at=received_at,
        )

    def reset(self) -> None:
        """Forget the book: the next message must be a snapshot."""
        self._book.clear()
        self._synced = False

    def parser(self, levels: int) -> Callable[[Any, float], OrderBook]:
        """A :data:`~rxconnector.exchanges.base.Parser` feeding this merger, cut at ``levels``."""

        def parse(message: Any, received_at: float) -> OrderBook:
            try:
                return self.apply(message, received_at, levels)
            except MALFORMED as exc:
                raise_malformed("bybit", "orderbook", message, exc)

        return parse


# --------------------------------------------------------------------------- trades


def parse_trades(message: Any, received_at: float) -> Sequence[Trade]:
    """``publicTrade.{symbol}`` → one :class:`Trade` per entry (``FeedSpec.many``).

    ``S`` is the taker side (``Buy``/``Sell``), ``T`` the fill time, ``event_time`` the
    message ``ts``; ids per :func:`bybit_trade_id`.
    """
    try:
        D = to_decimal
        sides = _SIDES
        event_time = int(message["ts"])
        return [
            _Trade(
                symbol=json_str(t["s"]),
                trade_id=bybit_trade_id(t["i"]),
                price=D(t["p"]),
                quantity=D(t["v"]),
                side=sides[t["S"]],
                time=int(t["T"]),
                event_time=event_time,
                received_at=received_at,
            )
            for t in message["data"]
        ]
    except MALFORMED as exc:
        raise_malformed("bybit", "publicTrade", message, exc)


def parse_liquidations(message: Any, received_at: float) -> Sequence[Liquidation]:
    """``allLiquidation.{symbol}`` (linear/inverse) → :class:`Liquidation` (``many``).

    Bybit reports the liquidated position's side, the executed size and the bankruptcy
    price (docs ``websocket/public/all-liquidation``); ``side`` here is the closing
    order's side (``Buy`` position → ``sell``), as on Binance. Bybit does not say the
    order type, so ``order_type`` is ``""``; the size is executed, so ``status`` is
    ``"FILLED"``; there is no average price.
    """
    try:
        D = to_decimal
        sides = _LIQUIDATION_ORDER_SIDE
        event_time = int(message["ts"])
        return [
            _Liquidation(
                symbol=json_str(x["s"]),
                side=sides[x["S"]],
                order_type="",
                price=D(x["p"]),
                quantity=D(x["v"]),
                average_price=None,
                status="FILLED",
                time=int(x["T"]),
                event_time=event_time,
                received_at=received_at,
            )
            for x in message["data"]
        ]
    except MALFORMED as exc:
        raise_malformed("bybit", "allLiquidation", message, exc)


# --------------------------------------------------------------------------- klines


def kline_parser(symbol: str, *, inverse: bool = False) -> Callable[[Any, float], Sequence[Kline]]:
    """``kline.{interval}.{symbol}`` → one :class:`Kline` per candle (``FeedSpec.many``).

    Candles do not carry the symbol, so the parser is bound to it. ``closed`` is
    ``confirm``; ``close_time`` is ``end``; ``trades`` is 0 (not reported by Bybit).
    """

    def parse(message: Any, received_at: float) -> Sequence[Kline]:
        try:
            D = to_decimal
            event_time = int(message["ts"])
            out = []
            for k in message["data"]:
                confirm = k["confirm"]
                if confirm is not True and confirm is not False:
                    raise ValueError(f"confirm must be a JSON boolean, got {confirm!r}")
                volume = D(k["volume"])
                turnover = D(k["turnover"])
                if inverse:
                    volume, turnover = turnover, volume
                out.append(
                    _Kline(
                        symbol=symbol,
                        interval=canonical_interval(k["interval"]),
                        open_time=int(k["start"]),
                        close_time=int(k["end"]),
                        open=D(k["open"]),
                        high=D(k["high"]),
                        low=D(k["low"]),
                        close=D(k["close"]),
                        volume=volume,
                        quote_volume=turnover,
                        trades=0,
                        closed=confirm,
                        event_time=event_time,
                        received_at=received_at,
                    )
                )
            return out
        except MALFORMED as exc:
            raise_malformed("bybit", "kline", message, exc)

    return parse
