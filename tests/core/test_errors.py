"""The exception tree: one root, builtin-compatible leaves, useful messages."""

from __future__ import annotations

import pytest

import rxconnector as rxc


class TestTree:
    @pytest.mark.parametrize(
        "cls",
        [
            rxc.ConfigError,
            rxc.TransportError,
            rxc.ConnectError,
            rxc.RequestTimeoutError,
            rxc.WebSocketClosedError,
            rxc.ExchangeError,
            rxc.RateLimitError,
            rxc.OrderStatusUnknownError,
            rxc.OrderRejectedError,
            rxc.CircuitOpenError,
            rxc.ClockSyncError,
            rxc.SubscriptionError,
            rxc.ParseError,
            rxc.FeedGapError,
            rxc.NotSupportedError,
        ],
    )
    def test_every_error_has_one_root(self, cls: type[Exception]) -> None:
        """Catching RxConnectorError catches every library error."""
        assert issubclass(cls, rxc.RxConnectorError)

    def test_builtin_compatibility(self) -> None:
        """Leaves also inherit the builtin they resemble."""
        assert issubclass(rxc.RequestTimeoutError, TimeoutError)
        assert issubclass(rxc.ConnectError, ConnectionError)
        assert issubclass(rxc.ConfigError, ValueError)
        assert issubclass(rxc.ParseError, ValueError)
        assert issubclass(rxc.NotSupportedError, NotImplementedError)


class TestMessages:
    def test_exchange_error_carries_fields(self) -> None:
        """ExchangeError keeps exchange, status, code, message and retryability."""
        err = rxc.ExchangeError("Invalid symbol.", exchange="binance", status=400, code=-1121)
        assert (err.status, err.code, err.retryable) == (400, -1121, False)
        assert str(err) == "[binance, HTTP 400, code -1121] Invalid symbol."

    def test_rate_limit_and_breaker_retry_after(self) -> None:
        """Rate-limit and breaker errors say how long to wait."""
        assert rxc.RateLimitError("slow down", retry_after=7).retry_after == 7
        err = rxc.CircuitOpenError("rest", 12.5)
        assert err.retry_after == 12.5
        assert "12.500s" in str(err)

    def test_order_status_unknown_names_client_order_id(self) -> None:
        """The unknown-outcome error tells how to reconcile."""
        err = rxc.OrderStatusUnknownError("HTTP 503", client_order_id="rxc42")
        assert err.client_order_id == "rxc42"
        assert "get_order(client_order_id='rxc42')" in str(err)

    def test_parse_error_bounds_excerpt(self) -> None:
        """A huge garbage frame is cut to a bounded excerpt."""
        err = rxc.ParseError("bad frame", b"x" * 10_000)
        assert len(err.excerpt) == rxc.ParseError.MAX_EXCERPT

    def test_clock_and_gap_errors(self) -> None:
        """Clock and gap errors keep their numbers."""
        clock = rxc.ClockSyncError(3012.4, 500)
        assert (clock.offset_ms, clock.limit_ms) == (3012.4, 500)
        gap = rxc.FeedGapError("btcusdt@trade", "lost", first_missing=5, last_missing=9)
        assert (gap.first_missing, gap.last_missing) == (5, 9)
        assert rxc.NotSupportedError("bybit", "mark_price").venue == "bybit"


class TestConfigErrorText:
    def test_missing_setting_has_no_stray_got_none(self) -> None:
        """A rule about a missing setting reads as a sentence, without ``, got None``."""
        error = rxc.ConfigError("ws_api_url", "must be set")
        assert str(error) == "ws_api_url must be set"
        assert error.value is None

    def test_a_bad_value_is_quoted(self) -> None:
        assert str(rxc.ConfigError("recv_window", "must be 1..60000 ms", -1)) == (
            "recv_window must be 1..60000 ms, got -1"
        )
        assert str(rxc.ConfigError("api_key", "must be a string", None)).endswith("got None")

    def test_an_unknown_setting_names_it_without_got_none(self) -> None:
        with pytest.raises(rxc.ConfigError) as info:
            rxc.Config.binance(colour="red")
        assert ", got None" not in str(info.value)


class TestNotSupportedSaysWhatToUse:
    """Asking a venue for a feed it lacks names the feed to use instead."""

    @pytest.mark.parametrize(
        ("config", "feed", "text"),
        [
            (rxc.Config.binance_futures(), "trades", "binance_futures does not support trades; "
             "use agg_trades"),
            (rxc.Config.bybit(), "agg_trades", "bybit does not support agg_trades; use trades"),
            (rxc.Config.binance(), "mark_price", "use a derivatives venue"),
            (rxc.Config.binance(), "liquidations", "Config.binance_futures()"),
            (rxc.Config.binance_futures(), "avg_price", "use ticker"),
            (rxc.Config.bybit(), "mark_price", "Config.bybit('linear')"),
        ],
    )  # fmt: skip
    def test_feed_alternatives(self, config: rxc.Config, feed: str, text: str) -> None:
        conn = rxc.Connector(config)
        with pytest.raises(rxc.NotSupportedError) as info:
            getattr(conn, feed)("BTCUSDT")
        assert text in str(info.value)
        assert info.value.instead

    def test_instead_is_optional(self) -> None:
        error = rxc.NotSupportedError("bybit", "test_order")
        assert str(error) == "bybit does not support test_order"
        assert error.instead == ""
