"""``model_builder``: the parsers' cheaper model constructor must build the very same objects."""

from __future__ import annotations

import pickle
import weakref
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.exchanges._parsing import model_builder
from rxconnector.exchanges.binance import parsers as p
from rxconnector.exchanges.bybit import parsers as yp
from rxconnector.models import (
    AvgPrice,
    BookTicker,
    DepthUpdate,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Ticker,
    Trade,
)

from .test_bybit_parsers import ALL_LIQUIDATION

D = Decimal

#: (examples.json key, parser) for every model class the Binance parsers build.
PARSED = [
    ("binance.spot.ws.ticker", p.parse_ticker),
    ("binance.spot.ws.miniTicker", p.parse_mini_ticker),
    ("binance.spot.ws.bookTicker", p.parse_book_ticker),
    ("binance.spot.ws.trade", p.parse_trade),
    ("binance.spot.ws.aggTrade", p.parse_agg_trade),
    ("binance.spot.ws.kline", p.parse_kline),
    ("binance.spot.ws.depthUpdate", p.parse_depth_update),
    ("binance.spot.ws.avgPrice", p.parse_avg_price),
    ("binance.usdm.ws.markPriceUpdate", p.parse_mark_price),
    ("binance.usdm.ws.forceOrder", p.parse_force_order),
    ("binance.spot.ws.partialDepth", p.partial_depth_parser("BNBBTC")),
]


def _bybit_parsed() -> list[tuple[str, Any]]:
    """(examples.json key, parser) for every model class the Bybit parsers build."""
    return [
        ("bybit.v5.ws.tickers.linear_perpetual", yp.ticker_parser(yp.BybitTickerMerger())),
        ("bybit.v5.ws.tickers.linear_perpetual", yp.mini_ticker_parser(yp.BybitTickerMerger())),
        ("bybit.v5.ws.tickers.linear_perpetual", yp.mark_price_parser(yp.BybitTickerMerger())),
        ("bybit.v5.ws.orderbook.snapshot", yp.parse_depth),
        ("bybit.v5.ws.orderbook.snapshot", yp.BybitBookMerger().parser(50)),
        ("bybit.v5.ws.orderbook.snapshot", yp.parse_book_ticker),
        ("bybit.v5.ws.publicTrade", yp.parse_trades),
        ("allLiquidation", yp.parse_liquidations),
        ("bybit.v5.ws.kline", yp.kline_parser("BTCUSDT")),
    ]


MODELS = [
    AvgPrice,
    BookTicker,
    DepthUpdate,
    Kline,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OrderBook,
    Ticker,
    Trade,
]


def _trade_kwargs() -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "trade_id": 7,
        "price": D("60000.01"),
        "quantity": D("0.5"),
        "side": "buy",
        "time": 1,
        "event_time": 2,
    }


class TestSameObjects:
    """What a builder returns is indistinguishable from what the class builds."""

    @pytest.mark.parametrize(("key", "parse"), PARSED, ids=[k for k, _ in PARSED])
    def test_parsed_models_equal_class_built_ones(
        self, examples: dict[str, Any], key: str, parse: Any
    ) -> None:
        built = parse(examples[key], 1.5)
        again = type(built)(**attrs.asdict(built, recurse=False))
        assert type(built) is type(again)
        assert built == again
        assert hash(built) == hash(again)
        assert repr(built) == repr(again)

    @pytest.mark.parametrize("index", range(len(_bybit_parsed())))
    def test_bybit_parsed_models_equal_class_built_ones(
        self, examples: dict[str, Any], index: int
    ) -> None:
        key, parse = _bybit_parsed()[index]
        parsed = parse(ALL_LIQUIDATION if key == "allLiquidation" else examples[key], 1.5)
        models = list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
        assert models
        for built in models:
            again = type(built)(**attrs.asdict(built, recurse=False))
            assert type(built) is type(again)
            assert built == again
            assert hash(built) == hash(again)
            assert repr(built) == repr(again)

    def test_every_field_is_set_and_defaults_apply(self) -> None:
        build = model_builder(Trade)
        built = build(**_trade_kwargs())
        assert built == Trade(**_trade_kwargs())
        for field in attrs.fields(Trade):
            assert getattr(built, field.name) == getattr(Trade(**_trade_kwargs()), field.name)
        assert built.backfilled is False and built.first_trade_id is None

    def test_positional_and_keyword_calls_match_the_class(self) -> None:
        build = model_builder(Trade)
        args = tuple(_trade_kwargs().values())
        assert build(*args, 3.0) == Trade(*args, 3.0)
        assert build(*args, received_at=3.0) == Trade(*args, received_at=3.0)

    def test_still_frozen(self) -> None:
        built = model_builder(Trade)(**_trade_kwargs())
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            built.price = D(1)  # type: ignore[misc]

    def test_evolve_works_on_built_models(self) -> None:
        built = model_builder(Trade)(**_trade_kwargs())
        assert attrs.evolve(built, backfilled=True).backfilled is True

    def test_wrong_arguments_fail_like_the_class(self) -> None:
        build: Any = model_builder(Trade)
        with pytest.raises(TypeError):
            build(**_trade_kwargs(), bogus=1)
        missing = _trade_kwargs()
        del missing["price"]
        with pytest.raises(TypeError):
            build(**missing)

    @pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
    def test_the_shipped_models_take_the_fast_path(self, model: type) -> None:
        # A model that gains a validator falls back to its class (correct, only slower);
        # this says so, so the cost does not come back unnoticed.
        assert model_builder(model) is not model


@attrs.frozen
class _Validated:
    x: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen
class _Converted:
    x: Decimal = attrs.field(converter=Decimal)


@attrs.frozen
class _PostInit:
    x: int

    def __attrs_post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("negative")


@attrs.frozen
class _FactoryDefault:
    x: list[int] = attrs.field(factory=list)


@attrs.frozen(cache_hash=True)
class _CachedHash:
    x: int


@attrs.frozen(slots=False)
class _NoSlots:
    x: int


@attrs.frozen
class _Private:
    _x: int


@attrs.frozen
class _KwOnly:
    x: int = attrs.field(kw_only=True)


class _NotAttrs:
    __slots__ = ("x",)

    def __init__(self, x: int) -> None:
        self.x = x


class TestFallsBackToTheClass:
    """Whatever ``__init__`` does beyond storing fields is never skipped."""

    @pytest.mark.parametrize(
        "cls",
        [
            _Validated,
            _Converted,
            _PostInit,
            _FactoryDefault,
            _CachedHash,
            _NoSlots,
            _Private,
            _KwOnly,
            _NotAttrs,
        ],
        ids=lambda c: c.__name__,
    )
    def test_non_plain_classes_get_the_class_back(self, cls: type) -> None:
        assert model_builder(cls) is cls

    def test_a_validator_still_runs(self) -> None:
        with pytest.raises(TypeError):
            model_builder(_Validated)(x="1")  # type: ignore[arg-type]

    def test_post_init_still_runs(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            model_builder(_PostInit)(x=-1)

    def test_cached_hash_class_hashes(self) -> None:
        built = model_builder(_CachedHash)(x=1)
        assert hash(built) == hash(_CachedHash(x=1))

    def test_plain_local_class_is_fast_and_equal(self) -> None:
        @attrs.frozen
        class Plain:
            a: int
            b: str = "d"

        build = model_builder(Plain)
        assert build is not Plain
        assert build(1) == Plain(1)
        assert build(1, "x") == Plain(1, "x")
        assert build(b="y", a=2) == Plain(b="y", a=2)


_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
_ints = st.integers(min_value=-(2**63), max_value=2**64)


class TestWritableTwin:
    """The fast path (a private writable subclass switched back to the model's class) is
    taken for every shipped model, and what it builds is the model itself."""

    @pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
    def test_the_shipped_models_use_the_class_switch(self, model: type) -> None:
        assert "__class__" in model_builder(model).__code__.co_names

    @settings(max_examples=300, deadline=None)
    @given(
        symbol=st.text(max_size=12),
        trade_id=_ints,
        price=_decimals,
        quantity=_decimals,
        side=st.sampled_from(["buy", "sell"]),
        time=_ints,
        event_time=_ints,
        received_at=st.floats(allow_nan=False),
        first=st.none() | _ints,
        last=st.none() | _ints,
        backfilled=st.booleans(),
    )
    def test_trade_equals_the_class_built_one(
        self,
        symbol: str,
        trade_id: int,
        price: Decimal,
        quantity: Decimal,
        side: str,
        time: int,
        event_time: int,
        received_at: float,
        first: int | None,
        last: int | None,
        backfilled: bool,
    ) -> None:
        args = (symbol, trade_id, price, quantity, side, time, event_time, received_at)
        extra = (first, last, backfilled)
        build: Any = model_builder(Trade)
        for built, expected in (
            (build(*args, *extra), Trade(*args, *extra)),  # type: ignore[arg-type]
            (build(*args), Trade(*args)),  # type: ignore[arg-type]
        ):
            assert type(built) is Trade
            assert built == expected
            assert (built != expected) is False
            assert hash(built) == hash(expected)
            assert repr(built) == repr(expected)
            assert attrs.astuple(built, recurse=False) == attrs.astuple(expected, recurse=False)
            again = pickle.loads(pickle.dumps(built))
            assert type(again) is Trade and again == expected
            assert attrs.evolve(built, backfilled=not built.backfilled) == attrs.evolve(
                expected, backfilled=not expected.backfilled
            )
            assert weakref.ref(built)() is built
            assert not hasattr(built, "__dict__")
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                built.price = price  # type: ignore[misc]
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                del built.symbol

    @pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
    def test_the_twin_never_escapes(self, model: type) -> None:
        build: Any = model_builder(model)
        for value in attrs.fields(model):
            assert value.name in build.__code__.co_varnames
        twin = build.__globals__["_twin"]
        assert twin is not model and issubclass(twin, model)
        assert twin.__slots__ == () and twin.__basicsize__ == model.__basicsize__

    def test_a_layout_the_switch_refuses_falls_back_to_descriptors(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The interpreter refusing the class switch (a layout it cannot prove equal) is
        # simulated; the descriptor path must still build the same objects.
        from rxconnector.exchanges import _parsing

        monkeypatch.setattr(_parsing, "_writable_twin", lambda model: None)
        build = model_builder(Trade)
        assert "__class__" not in build.__code__.co_names
        assert build(**_trade_kwargs()) == Trade(**_trade_kwargs())
        assert type(build(**_trade_kwargs())) is Trade
