"""Binance signatures: the documented vectors (PROTOCOL.md §A3) and the key types."""

from __future__ import annotations

import base64
import logging
import pickle
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from rxconnector.config import Secret
from rxconnector.errors import ConfigError
from rxconnector.exchanges.binance.signing import BinanceSigner, ws_signature_payload
from rxconnector.exchanges.query import encode_query

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
#: The documented non-ASCII symbol: six FULLWIDTH DIGITs one to six.
FULLWIDTH = "\uff11\uff12\uff13\uff14\uff15\uff16"


def _hmac_signer() -> BinanceSigner:
    return BinanceSigner(API_KEY, Secret(SECRET))


def _pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class TestDocumentedVectors:
    """The four HMAC vectors Binance publishes must reproduce exactly."""

    def test_rest_1_ascii_query(self) -> None:
        params = {
            "symbol": "LTCBTC",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": 1,
            "price": "0.1",
            "recvWindow": 5000,
            "timestamp": 1499827319559,
        }
        query = encode_query(params)
        assert query == (
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
            "&recvWindow=5000&timestamp=1499827319559"
        )
        assert _hmac_signer().sign(query) == (
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        )

    def test_rest_2_non_ascii_symbol_is_percent_encoded_before_signing(self) -> None:
        params = {
            "symbol": FULLWIDTH,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": 1,
            "price": "0.1",
            "recvWindow": 5000,
            "timestamp": 1499827319559,
        }
        query = encode_query(params)
        assert query.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
        assert _hmac_signer().sign(query) == (
            "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
        )

    def test_wsapi_1_sorted_params(self) -> None:
        params = {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01000000",
            "price": "52000.00",
            "recvWindow": 100,
            "timestamp": 1645423376532,
            "apiKey": API_KEY,
        }
        assert ws_signature_payload(params) == (
            f"apiKey={API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
            "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
        )
        signed = _hmac_signer().sign_ws_params(params)
        assert signed["signature"] == (
            "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
        )
        assert "signature" not in params  # the caller's dict is untouched

    def test_wsapi_2_raw_utf8_not_percent_encoded(self) -> None:
        params = {
            "apiKey": API_KEY,
            "price": "0.10000000",
            "quantity": "1.00000000",
            "recvWindow": 5000,
            "side": "BUY",
            "symbol": FULLWIDTH,
            "timeInForce": "GTC",
            "timestamp": 1645423376532,
            "type": "LIMIT",
        }
        assert f"symbol={FULLWIDTH}&" in ws_signature_payload(params)
        assert _hmac_signer().sign_ws_params(params)["signature"] == (
            "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"
        )

    def test_signature_field_is_excluded_from_ws_payload(self) -> None:
        assert ws_signature_payload({"b": 1, "signature": "x", "a": True}) == "a=true&b=1"


class TestKeyTypes:
    """PEM secrets select Ed25519 or RSA; signatures verify with the public key."""

    def test_hmac_is_the_default(self) -> None:
        assert _hmac_signer().key_type == "hmac"
        assert _hmac_signer().sign_query("a=1") == f"signature={_hmac_signer().sign('a=1')}"

    def test_ed25519_signature_verifies_and_is_url_encoded(self) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        signer = BinanceSigner("k", Secret(_pem(key)))
        assert signer.key_type == "ed25519"
        payload = "symbol=BTCUSDT&timestamp=1"
        signature = signer.sign(payload)
        assert len(signature) == 88  # 64 bytes in base64
        key.public_key().verify(base64.b64decode(signature), payload.encode())
        field = signer.sign_query(payload)
        assert field.startswith("signature=")
        assert "+" not in field and "/" not in field and "=" not in field[len("signature=") :]
        assert unquote(field[len("signature=") :]) == signature

    def test_ed25519_ws_params(self) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        signer = BinanceSigner("k", Secret(_pem(key)))
        signed = signer.sign_ws_params({"timestamp": 5, "apiKey": "k"})
        key.public_key().verify(base64.b64decode(signed["signature"]), b"apiKey=k&timestamp=5")

    def test_rsa_signature_verifies(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signer = BinanceSigner("k", Secret(_pem(key)))
        assert signer.key_type == "rsa"
        signature = signer.sign("a=1")
        key.public_key().verify(
            base64.b64decode(signature), b"a=1", padding.PKCS1v15(), hashes.SHA256()
        )

    def test_other_pem_key_types_are_refused(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(ConfigError) as info:
            BinanceSigner("k", Secret(_pem(key)))
        assert info.value.field == "api_secret"

    def test_missing_credentials_are_a_config_error(self) -> None:
        with pytest.raises(ConfigError):
            BinanceSigner("", Secret(SECRET))
        with pytest.raises(ConfigError):
            BinanceSigner(API_KEY, Secret(""))


class TestSecrecy:
    """The secret never shows in reprs, pickles, errors or logs."""

    def test_repr_hides_both_keys(self) -> None:
        text = repr(_hmac_signer())
        assert SECRET not in text and API_KEY not in text
        assert "hmac" in text

    def test_signer_refuses_pickling(self) -> None:
        with pytest.raises(TypeError):
            pickle.dumps(_hmac_signer())

    def test_broken_pem_error_does_not_quote_the_key(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        broken = (
            "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIALxxxxxxxx\n-----END PRIVATE KEY-----\n"
        )
        caplog.set_level(logging.DEBUG)
        with pytest.raises(ConfigError) as info:
            BinanceSigner("k", Secret(broken))
        assert "TOPSECRET" not in str(info.value)
        assert "TOPSECRET" not in repr(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert "TOPSECRET" not in caplog.text
