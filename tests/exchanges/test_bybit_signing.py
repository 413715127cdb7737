"""Bybit signatures: the self-consistency vectors of PROTOCOL.md §C3 and the frame shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rxconnector.config import Secret
from rxconnector.exchanges.bybit import signing

SECRET = "test_secret"
API_KEY = "XXXXXXXXXX"


class TestVectors:
    """HMAC-SHA256 hex over the documented strings, secret ``test_secret`` (§C3)."""

    def test_get(self) -> None:
        assert (
            signing.sign_rest(
                SECRET, 1658384314791, API_KEY, "category=option&symbol=BTC-29JUL22-25000-C"
            )
            == "2c42d015234a3fc985e5294b2665235b3f51cf59dfbbde6be0097d0bc33256bf"
        )

    def test_post(self) -> None:
        assert (
            signing.sign_rest(Secret(SECRET), 1658385579423, API_KEY, '{"category": "option"}')
            == "7fdd84061f25faa9566fa013c0dd25adcb78a0ab90cbb992c0f12427d82f7221"
        )

    def test_ws_auth(self) -> None:
        assert (
            signing.ws_auth_signature(SECRET, 1662350400000)
            == "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
        )

    def test_recv_window_is_signed(self) -> None:
        a = signing.sign_rest(SECRET, 1, API_KEY, "x=1", recv_window=5000)
        b = signing.sign_rest(SECRET, 1, API_KEY, "x=1", recv_window=10000)
        assert a != b
        assert a == signing.sign(SECRET, f"1{API_KEY}5000x=1")


class TestFrames:
    """Headers and the auth frame have the documented shapes; secrets stay out."""

    def test_rest_headers(self) -> None:
        headers = signing.rest_headers(
            API_KEY, Secret(SECRET), 1658384314791, "category=option&symbol=BTC-29JUL22-25000-C"
        )
        assert headers == {
            "X-BAPI-API-KEY": API_KEY,
            "X-BAPI-TIMESTAMP": "1658384314791",
            "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": "2c42d015234a3fc985e5294b2665235b3f51cf59dfbbde6be0097d0bc33256bf",
        }
        assert SECRET not in repr(headers)

    def test_auth_message_matches_the_documented_request(self, examples: dict[str, Any]) -> None:
        documented = examples["bybit.v5.ws.auth.request"]
        frame = orjson.loads(
            signing.ws_auth_message("api_key", SECRET, 1662350400000, req_id="10001")
        )
        assert frame.keys() == documented.keys()
        assert frame["op"] == documented["op"] == "auth"
        assert frame["req_id"] == "10001"
        assert frame["args"][:2] == documented["args"][:2] == ["api_key", 1662350400000]
        assert frame["args"][2] == (
            "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
        )
        assert SECRET not in orjson.dumps(frame).decode()

    def test_auth_message_without_req_id(self) -> None:
        frame = orjson.loads(signing.ws_auth_message("k", SECRET, 5))
        assert "req_id" not in frame and frame["op"] == "auth"

    @pytest.mark.parametrize("secret", ["", Secret("")])
    def test_missing_secret(self, secret: str | Secret) -> None:
        with pytest.raises(ValueError, match="API secret is required") as info:
            signing.sign_rest(secret, 1, API_KEY, "")
        assert "test_secret" not in str(info.value)
