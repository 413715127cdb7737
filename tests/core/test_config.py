"""Config: defaults from the seed plan, validation naming field and rule, secrets kept secret."""

from __future__ import annotations

import logging
import pickle
import traceback

import attrs
import pytest

import rxconnector as rxc
from rxconnector.config import Secret
from rxconnector.log import get_logger

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


class TestDefaults:
    def test_seed_plan_defaults(self) -> None:
        """The defaults are the seed plan's numbers."""
        cfg = rxc.Config.binance()
        assert cfg.exchange == "binance"
        # None: the venue's documented limit (6,000 on Spot), learnt from exchangeInfo,
        # replaced the seed's 1,200 (issue 16); a number caps it
        assert cfg.rate_limit.max_weight_per_minute is None
        assert (cfg.breaker.max_failures, cfg.breaker.success_threshold) == (5, 3)
        assert cfg.breaker.open_timeout == 30.0
        assert cfg.clock_sync.max_offset == 500.0
        assert cfg.clock_sync.sync_interval == 300.0
        assert cfg.connection.rest_timeout == 10.0
        assert cfg.connection.ping_interval == 20.0
        assert (cfg.connection.reconnect_delay, cfg.connection.reconnect_max_delay) == (1.0, 60.0)
        assert cfg.connection.max_reconnect_attempts is None
        assert cfg.recv_window == 5000

    def test_venue_constructors(self) -> None:
        """Each venue constructor sets exchange and category."""
        assert rxc.Config.binance_futures().category == "linear"
        assert rxc.Config.bybit().category == "spot"
        assert rxc.Config.bybit(category="linear").category == "linear"

    def test_url_overrides_and_evolve(self) -> None:
        """rest_url/ws_url point anywhere; attrs.evolve makes a changed copy."""
        cfg = rxc.Config.binance(rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1")
        assert cfg.rest_url == "http://127.0.0.1:1"
        assert attrs.evolve(cfg, testnet=True).testnet is True
        assert cfg.testnet is False

    def test_section_from_dict(self) -> None:
        """A section can be overridden with a dict of its settings."""
        cfg = rxc.Config.binance(breaker={"max_failures": 2}, connection={"rest_timeout": 3})
        assert cfg.breaker.max_failures == 2
        assert cfg.connection.rest_timeout == 3


class TestValidation:
    @pytest.mark.parametrize(
        ("overrides", "field", "text"),
        [
            ({"clock_sync": {"max_offset": -5}}, "clock_sync.max_offset", "must be > 0 ms, got -5"),
            ({"breaker": {"max_failures": 0}}, "breaker.max_failures", "integer >= 1"),
            ({"breaker": {"open_timeout": 0}}, "breaker.open_timeout", "must be > 0 s"),
            ({"recv_window": 60001}, "recv_window", "1..60000"),
            ({"rest_url": "localhost"}, "rest_url", "absolute URL"),
            ({"connection": {"reconnect_max_delay": 0.5}}, "connection.reconnect_max_delay", ">="),
            ({"connection": {"reconnect_jitter": -1}}, "connection.reconnect_jitter", ">= 0"),
            ({"rate_limit": {"enabled": "yes"}}, "rate_limit.enabled", "True or False"),
            ({"breaker": {"nope": 1}}, "breaker", "no such setting"),
            ({"colour": "red"}, "colour", "is not a setting"),
        ],
    )
    def test_bad_values_name_field_and_rule(
        self, overrides: dict[str, object], field: str, text: str
    ) -> None:
        """A bad value raises ConfigError naming the field and the rule."""
        with pytest.raises(rxc.ConfigError) as info:
            rxc.Config.binance(**overrides)
        assert info.value.field == field
        assert text in str(info.value)
        assert str(info.value).startswith(field)

    def test_config_error_is_value_error(self) -> None:
        """Generic handlers catching ValueError still work."""
        with pytest.raises(ValueError):
            rxc.Config.bybit(category="options")  # type: ignore[arg-type]

    def test_category_must_match_exchange(self) -> None:
        """Binance Spot has no linear category."""
        with pytest.raises(rxc.ConfigError, match="category"):
            rxc.Config(exchange="binance", category="linear")


class TestFromEnv:
    def test_prefixed_and_generic_variables(self) -> None:
        """RXC_<EXCHANGE>_X wins over RXC_X; booleans and ints are parsed."""
        env = {
            "RXC_API_KEY": "generic",
            "RXC_BYBIT_API_KEY": "bybitkey",
            "RXC_BYBIT_API_SECRET": SECRET,
            "RXC_BYBIT_TESTNET": "true",
            "RXC_BYBIT_CATEGORY": "linear",
            "RXC_RECV_WINDOW": "7000",
        }
        cfg = rxc.Config.from_env("bybit", environ=env)
        assert cfg.api_key == "bybitkey"
        assert cfg.api_secret.reveal() == SECRET
        assert cfg.testnet is True
        assert cfg.category == "linear"
        assert cfg.recv_window == 7000
        assert rxc.Config.from_env("binance", environ=env).api_key == "generic"

    def test_bad_env_value(self) -> None:
        """A malformed variable is reported with the field name."""
        with pytest.raises(rxc.ConfigError, match="recv_window"):
            rxc.Config.from_env("binance", environ={"RXC_RECV_WINDOW": "soon"})


class TestSecrets:
    def test_secret_not_in_repr_str_or_errors(self) -> None:
        """The secret never shows in repr/str of the config or of a validation error."""
        cfg = rxc.Config.binance(api_key="key123456", api_secret=SECRET)
        for text in (repr(cfg), str(cfg), repr(cfg.api_secret), str(cfg.api_secret)):
            assert SECRET not in text
        with pytest.raises(rxc.ConfigError) as info:
            rxc.Config.binance(api_secret=SECRET, recv_window=-1)
        rendered = "".join(traceback.format_exception(info.value))
        assert SECRET not in rendered

    def test_secret_refuses_pickle(self) -> None:
        """Pickling a config with a secret fails instead of writing the secret out."""
        cfg = rxc.Config.binance(api_key="k", api_secret=SECRET)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(cfg)

    def test_secret_not_in_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        """Logging the config through our logger shows only the redacted form."""
        cfg = rxc.Config.binance(api_key="k", api_secret=SECRET)
        with caplog.at_level(logging.DEBUG, logger="rxconnector"):
            get_logger(exchange="binance").info("configured", config=cfg)
        assert "configured" in caplog.text
        assert SECRET not in caplog.text

    def test_reveal_and_equality(self) -> None:
        """Signing code can reveal the value; equal secrets compare equal."""
        assert Secret("a").reveal() == "a"
        assert Secret("a") == Secret("a")
        assert not Secret("")
        assert rxc.Config.binance(api_key="k", api_secret="s").has_credentials
