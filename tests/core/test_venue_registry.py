"""The venue registry (``rxconnector.venues``) is the one place that knows the venues:
every entry assembles, it agrees with Config's vocabulary (names, categories), the CLI
reads its venue names from it, and nothing above ``exchanges/`` compares a venue's name
(tests/test_architecture.py enforces that)."""

from __future__ import annotations

import inspect
import typing

import pytest

from rxconnector.config import Category, Config, ExchangeName
from rxconnector.errors import ConfigError
from rxconnector.exchanges.base import FeedCatalog
from rxconnector.venues import (
    REGISTRY,
    cli_venues,
    key_name,
    resolve_endpoints,
    trade_ids_consecutive,
    venue_for,
    venue_spec,
)

_ENTRIES = [(name, category) for name, spec in REGISTRY.items() for category in spec.categories]


def _catalog_methods() -> list[str]:
    return [
        name
        for name, member in vars(FeedCatalog).items()
        if inspect.isfunction(member) and not name.startswith("_")
    ]


class TestRegistry:
    def test_config_spells_exactly_the_registry_venues_and_categories(self) -> None:
        assert set(typing.get_args(ExchangeName)) == set(REGISTRY)
        categories = {c for spec in REGISTRY.values() for c in spec.categories}
        assert set(typing.get_args(Category)) == categories

    def test_every_entry_is_filed_under_its_own_name(self) -> None:
        for name, spec in REGISTRY.items():
            assert spec.name == name
            assert spec.categories, name
            assert set(spec.default_urls) == {False, True}, name

    @pytest.mark.parametrize(("exchange", "category"), _ENTRIES)
    def test_every_venue_and_category_assembles(self, exchange: str, category: str) -> None:
        config = venue_spec(exchange).config(category)
        assert (config.exchange, config.category) == (exchange, category)
        venue = venue_for(config)
        assert venue.name == exchange
        assert (venue.rest_url, venue.ws_url) == (
            resolve_endpoints(config).rest_url,
            resolve_endpoints(config).ws_url,
        )
        assert venue.supported_feeds == frozenset(venue.feeds.supported_feeds)
        for method in _catalog_methods():
            assert callable(getattr(venue.feeds, method)), (exchange, method)

    @pytest.mark.parametrize(("exchange", "category"), _ENTRIES)
    def test_book_diffs_is_the_diff_stream_the_venue_documents(
        self, exchange: str, category: str
    ) -> None:
        venue = venue_for(venue_spec(exchange).config(category))
        for depth in (1, 20, 50, 500):
            topic = venue.feeds.book_diffs("BTCUSDT", depth).topic
            if venue.book_window(depth) is None:  # a plain diff stream: every level
                assert topic == venue.feeds.diff_depth("BTCUSDT").topic
            else:  # a window of the book: the smallest one holding depth levels
                assert topic == f"orderbook.{venue.book_window(depth)}.BTCUSDT"

    def test_unknown_venue_is_a_config_error_naming_the_venues(self) -> None:
        with pytest.raises(ConfigError, match="binance, binance_futures, bybit"):
            venue_spec("kraken")

    def test_only_derivatives_list_positions_over_rest(self) -> None:
        flags = {
            (exchange, category): venue_for(
                venue_spec(exchange).config(category)
            ).positions_over_rest
            for exchange, category in _ENTRIES
        }
        assert flags == {
            ("binance", "spot"): False,
            ("binance_futures", "linear"): True,
            ("bybit", "spot"): False,
            ("bybit", "linear"): True,
            ("bybit", "inverse"): True,
        }


class TestCliNames:
    def test_cli_names_come_from_the_registry_in_its_order(self) -> None:
        from rxconnector.cli import VENUES

        assert list(VENUES) == [
            "binance", "binance_futures", "binance-futures",
            "bybit", "bybit-spot", "bybit-linear", "bybit-inverse",
        ]  # fmt: skip
        assert list(VENUES) == list(cli_venues())

    @pytest.mark.parametrize(
        ("name", "exchange", "category"),
        [
            ("binance", "binance", "spot"),
            ("binance-futures", "binance_futures", "linear"),
            ("bybit", "bybit", "spot"),
            ("bybit-inverse", "bybit", "inverse"),
        ],
    )
    def test_a_cli_name_builds_its_venue_and_category(
        self, name: str, exchange: str, category: str
    ) -> None:
        config = cli_venues()[name](rest_url="http://127.0.0.1:1")
        assert (config.exchange, config.category) == (exchange, category)
        assert config == Config(exchange=exchange, category=category, rest_url="http://127.0.0.1:1")  # type: ignore[arg-type]


class TestBusNames:
    """The names the Redis bus keys streams by, and what a reader may assume of them."""

    @pytest.mark.parametrize(
        ("config", "name"),
        [
            (Config.binance(), "binance"),
            (Config.binance_futures(), "binance-futures"),
            (Config.bybit(), "bybit"),
            (Config.bybit("linear"), "bybit-linear"),
        ],
    )
    def test_key_name_is_the_hyphenated_cli_name(self, config: Config, name: str) -> None:
        assert key_name(config) == name
        assert name in cli_venues()  # the same name the command line takes

    @pytest.mark.parametrize(
        ("name", "consecutive"),
        [
            ("binance", True),
            ("binance-futures", True),
            ("Binance_Futures", True),
            ("binance-eu", True),  # a custom name counts as its first part
            ("bybit", False),
            ("bybit-linear", False),
            ("acme", False),  # unknown to the registry: no id check
        ],
    )
    def test_consecutive_trade_ids_follow_the_venues_trade_continuity(
        self, name: str, consecutive: bool
    ) -> None:
        assert trade_ids_consecutive(name) is consecutive
