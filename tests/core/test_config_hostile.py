"""Bad configuration values: a ConfigError naming the field, or a config that is sane.

Regression tests for issue #16: NaN passed ``value <= 0`` checks (every comparison with
NaN is false), so ``rest_timeout=nan`` or ``clock_sync.sync_interval=nan`` reached the
loop's timers; ``inf`` and ``1e300`` overflowed them (``timedelta(seconds=1e300)`` raises
inside a scheduler, far from the cause); ``Config.binance(category=...)`` raised a bare
``TypeError`` and ``api_secret=12345`` an ``AttributeError`` at the first signed call.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxconnector.config import (
    BreakerConfig,
    ClockSyncConfig,
    Config,
    ConnectionConfig,
    RateLimitConfig,
)
from rxconnector.errors import ConfigError

SECTIONS: dict[str, type[Any]] = {
    "rate_limit": RateLimitConfig,
    "breaker": BreakerConfig,
    "clock_sync": ClockSyncConfig,
    "connection": ConnectionConfig,
}
#: (section, field) for every setting of every section.
SECTION_FIELDS = [(name, f.name) for name, cls in SECTIONS.items() for f in attrs.fields(cls)]
TOP_FIELDS = [f.name for f in attrs.fields(Config) if f.name not in SECTIONS]

BAD = (
    math.nan,
    math.inf,
    -math.inf,
    -1,
    -1.0,
    0,
    0.0,
    1e300,
    10**100,
    "10",
    "nan",
    b"1",
    [],
    {},
    [1],
    object(),
    True,
)
VENUES = (Config.binance, Config.binance_futures, Config.bybit)


def assert_sane(config: Config) -> None:
    """Every number a timer, a limiter or a loop will use is finite, not negative and
    small enough to become a ``timedelta``; every flag is a bool."""
    for name in SECTIONS:
        section = getattr(config, name)
        for field in attrs.fields(type(section)):
            value = getattr(section, field.name)
            if value is None:
                continue
            assert type(value) in (bool, int, float), (name, field.name, value)
            if type(value) is bool:
                continue
            assert math.isfinite(value) and value >= 0, (name, field.name, value)
            timedelta(seconds=value)  # raises OverflowError for absurd values
    assert isinstance(config.api_key, str)
    assert isinstance(config.api_secret.reveal(), str)
    assert isinstance(config.testnet, bool)


def _names(exc: ConfigError, section: str | None, field: str) -> bool:
    """The error names the field (or, for a rule between two fields such as
    ``reconnect_max_delay >= reconnect_delay``, the other one and mentions this one)."""
    full = f"{section}.{field}" if section else field
    return exc.field in (full, section) or full in str(exc)


def build(venue: Any, section: str | None, field: str, value: Any) -> Config:
    if section is None:
        result: Config = venue(**{field: value})
    else:
        result = venue(**{section: {field: value}})
    return result


class TestEveryFieldWithEveryBadValue:
    @pytest.mark.parametrize(("section", "field"), SECTION_FIELDS)
    @pytest.mark.parametrize("bad", BAD, ids=repr)
    def test_section_fields(self, section: str, field: str, bad: Any) -> None:
        try:
            config = build(Config.binance, section, field, bad)
        except ConfigError as exc:
            assert _names(exc, section, field), exc
            return
        assert_sane(config)

    @pytest.mark.parametrize("field", TOP_FIELDS)
    @pytest.mark.parametrize("bad", BAD, ids=repr)
    @pytest.mark.parametrize("venue", VENUES, ids=lambda v: v.__name__)
    def test_top_level_fields(self, venue: Any, field: str, bad: Any) -> None:
        try:
            config = build(venue, None, field, bad)
        except ConfigError as exc:
            assert exc.field == field, exc
            return
        assert_sane(config)


class TestNamedCases:
    @pytest.mark.parametrize("value", [math.nan, math.inf, 1e300])
    def test_non_finite_timers_name_the_field(self, value: float) -> None:
        with pytest.raises(ConfigError, match=r"connection\.rest_timeout"):
            Config.binance(connection={"rest_timeout": value})
        with pytest.raises(ConfigError, match=r"clock_sync\.sync_interval"):
            Config.bybit(clock_sync={"sync_interval": value})
        with pytest.raises(ConfigError, match=r"connection\.reconnect_jitter"):
            Config.binance(connection={"reconnect_jitter": value})

    def test_category_on_binance(self) -> None:
        with pytest.raises(ConfigError, match="category"):
            Config.binance(category="linear")
        with pytest.raises(ConfigError, match="category"):
            Config.binance_futures(category="spot")
        assert Config.binance(category="spot").category == "spot"

    @pytest.mark.parametrize("secret", [12345, b"bytes", ["s"], 1.5, True])
    def test_secret_of_the_wrong_type(self, secret: Any) -> None:
        with pytest.raises(ConfigError, match="api_secret") as info:
            Config.binance(api_key="k", api_secret=secret)
        assert str(secret) not in str(info.value).replace("api_secret", "")


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    venue=st.sampled_from(VENUES),
    target=st.sampled_from([*SECTION_FIELDS, *((None, f) for f in TOP_FIELDS)]),
    value=_ANY,
)
def test_fuzz_any_value_in_any_field(
    venue: Any, target: tuple[str | None, str], value: Any
) -> None:
    """Property: whatever one field is set to, the result is a ConfigError naming that
    field, or a config whose every number is sane."""
    section, field = target
    try:
        config = build(venue, section, field, value)
    except ConfigError as exc:
        assert _names(exc, section, field), exc
        return
    assert_sane(config)
